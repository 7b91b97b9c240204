//! `bench/propagation`: how fast ferry's agents move MCS exports between
//! clusters. One broker and three member clusters on loopback `ferry
//! apiserver`s (in this process); one `ferry agent` per cluster, each in its
//! own child process (this binary re-executed with `agent`), so its memory
//! can be measured alone.
//!
//! For each service count N (default 10, 1,000 and 10,000), and each of
//! "ClusterSet IPs off" and "on" (`deploy-broker --enable-clusterset-ip`),
//! cluster A gets N Services with a ready EndpointSlice each and N
//! ServiceExports before the agents start; then
//! - initial sync: agents start → B and C each hold N imported
//!   EndpointSlices ("slices") and, for the full figure, N ServiceImports with
//!   `status.clusters` filled (and, with ClusterSet IPs, their IP), and every
//!   ServiceExport in A is `Ready` — only then does the agent stop writing,
//!   so propagation is timed on a quiet system;
//! - propagation: one at a time, flip the readiness of a random service's
//!   EndpointSlice in A and time until B's imported slice shows it (p50/p99);
//! - agent RSS: VmRSS / VmHWM of A's and B's agents, and the CPU seconds all
//!   three agents spent on the initial sync;
//! - with ClusterSet IPs: export new services from A one at a time and time
//!   each until B routes and answers its ClusterSet IP ([`vip`]).
//!
//! Targets (issues #5, #17): p99 ≤ 100 ms at 10k; initial sync of 10k ≤ 10 s;
//! agent RSS ≤ 100 MB at 10k; ClusterSet IP p99 ≤ 200 ms at 1k; with
//! ClusterSet IPs, full sync and agent RSS at 10k within 10 % of the run
//! without. `ferry-bench-propagation --help` tells the arguments.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use ferry_bench_kit::procfs::{cpu_secs, rss_mb};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

mod clusterset;
mod report;
mod vip;
mod watch;
mod writes;

use clusterset::Clusterset;

const NS: &str = "bench";

// mimalloc, tuned: see ferry-alloc. Feature `system-alloc` keeps the
// system allocator, which heaptrack can see (mimalloc never calls malloc).
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static ALLOCATOR: ferry_alloc::Allocator = ferry_alloc::Allocator;

const USAGE: &str = "\
ferry-bench-propagation: MCS propagation through ferry agents and a broker
(3 clusters + broker on loopback ferry apiservers, one agent process each)

Usage: ferry-bench-propagation [COUNTS] [--samples S] [--vip-samples V] [--vips MODE]

Arguments:
  COUNTS             comma-separated numbers of exported services [default: 10,1000,10000]

Options:
  --samples S        EndpointSlice changes timed A -> B per count [default: 200]
  --vip-samples V    new exports timed until B routes and answers their
                     ClusterSet IP, per count with ClusterSet IPs on [default: 200]
  --vips MODE        off | on | both: ClusterSet IPs off, on, or a run of each
                     per count, back to back (their cost is the ratio) [default: both]
  -h, --help         print this help

Build with `cargo build --release -p ferry-bench-propagation`; RUST_LOG sets the
log filter (default warn). FERRY_BENCH_WRAP_AGENT_A=\"CMD ARGS\" runs agent A
under a profiler, e.g. \"heaptrack -o /tmp/agent-a\" (with a build of
`--features system-alloc`: heaptrack cannot see mimalloc).
FERRY_BENCH_WRITE_CONCURRENCY sets the agents' writes in flight.
Figures: bench/propagation/README.md.";

/// What to run.
struct Args {
    counts: Vec<usize>,
    samples: usize,
    vip_samples: usize,
    /// ClusterSet IPs off and/or on, in this order.
    modes: Vec<bool>,
}

/// `None`: `--help` was asked for.
fn parse_args(args: &[String]) -> anyhow::Result<Option<Args>> {
    let mut out = Args {
        counts: vec![10, 1_000, 10_000],
        samples: 200,
        vip_samples: 200,
        modes: vec![false, true],
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |flag: &str| it.next().with_context(|| format!("{flag} needs a value"));
        match a.as_str() {
            "-h" | "--help" => return Ok(None),
            "--samples" => out.samples = value(a)?.parse().context("--samples")?,
            "--vip-samples" => out.vip_samples = value(a)?.parse().context("--vip-samples")?,
            "--vips" => {
                out.modes = match value(a)?.as_str() {
                    "off" => vec![false],
                    "on" => vec![true],
                    "both" => vec![false, true],
                    other => anyhow::bail!("--vips {other:?}: expected off, on or both"),
                }
            }
            flag if flag.starts_with('-') => anyhow::bail!("unknown option {flag}\n\n{USAGE}"),
            counts => {
                out.counts = counts
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()
                    .with_context(|| format!("service counts {counts:?}"))?;
            }
        }
    }
    anyhow::ensure!(out.samples > 0, "--samples must be at least 1");
    Ok(Some(out))
}

fn main() -> anyhow::Result<()> {
    ferry_alloc::tune();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("agent") {
        let kubeconfig = PathBuf::from(args.get(1).context("agent KUBECONFIG")?);
        let write_concurrency = match std::env::var("FERRY_BENCH_WRITE_CONCURRENCY") {
            Ok(n) => Some(n.parse().context("FERRY_BENCH_WRITE_CONCURRENCY")?),
            Err(_) => None,
        };
        return ferry_bench_kit::agent_main(&kubeconfig, write_concurrency);
    }
    let Some(args) = parse_args(&args)? else {
        println!("{USAGE}");
        return Ok(());
    };
    ferry_bench_kit::log_warnings_to_stderr();
    let rt = tokio::runtime::Runtime::new()?;
    let mut results = Vec::new();
    for &n in &args.counts {
        for &vips in &args.modes {
            results.push(rt.block_on(run(n, vips, args.samples, args.vip_samples))?);
        }
    }
    report::print(&results);
    Ok(())
}

/// The figures of one run.
pub struct Outcome {
    pub n: usize,
    pub vips: bool,
    pub slices_synced: Duration,
    pub initial_sync: Duration,
    pub agent_cpu: f64,
    pub servers_cpu: f64,
    /// EndpointSlice change A → B, sorted.
    pub flips: Vec<Duration>,
    /// Export → routed and answered ClusterSet IP in B, sorted (empty
    /// without ClusterSet IPs).
    pub vip: Vec<Duration>,
    pub rss_a: (f64, f64),
    pub rss_b: (f64, f64),
}

/// The `p` quantile of sorted `lat` (zero when empty).
pub fn pct(lat: &[Duration], p: f64) -> Duration {
    let i = ((lat.len().max(1) as f64 - 1.0) * p).round() as usize;
    lat.get(i).copied().unwrap_or_default()
}

/// Each API server's current revision (every write adds one).
async fn revisions(clients: &[Client]) -> anyhow::Result<Vec<u64>> {
    let mut out = Vec::new();
    for c in clients {
        let list = Api::<Namespace>::all(c.clone())
            .list_metadata(&kube::api::ListParams::default().limit(1))
            .await?;
        let rv = list.metadata.resource_version.unwrap_or_default();
        out.push(
            rv.parse()
                .with_context(|| format!("resourceVersion {rv:?}"))?,
        );
    }
    Ok(out)
}

async fn count_imports(c: &Client) -> usize {
    let api: Api<ferry_api::ServiceImport> = Api::namespaced(c.clone(), NS);
    let mut total = 0;
    let mut lp = kube::api::ListParams::default().limit(5000);
    loop {
        let Ok(page) = api.list_metadata(&lp).await else {
            return total;
        };
        total += page.items.len();
        match page.metadata.continue_ {
            Some(t) if !t.is_empty() => lp = lp.continue_token(&t),
            _ => return total,
        }
    }
}

/// The benchmark's watches on B, C and A.
struct Watches {
    slices_b: watch::Latest<watch::SliceSeen>,
    slices_c: watch::Latest<watch::SliceSeen>,
    imports_b: watch::Latest<watch::ImportSeen>,
    imports_c: watch::Latest<watch::ImportSeen>,
    services_b: watch::Latest<Option<String>>,
    exports_a: watch::Latest<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Watches {
    fn start(cs: &Clusterset) -> Watches {
        let [a, b, c] = [0, 1, 2].map(|i| cs.clients[i].clone());
        let (slices_b, t1) = watch::imported_slices(b.clone());
        let (slices_c, t2) = watch::imported_slices(c.clone());
        let (imports_b, t3) = watch::imports(b.clone());
        let (imports_c, t4) = watch::imports(c);
        let (services_b, t5) = watch::services(b);
        let (exports_a, t6) = watch::exports(a);
        Watches {
            slices_b,
            slices_c,
            imports_b,
            imports_c,
            services_b,
            exports_a,
            tasks: vec![t1, t2, t3, t4, t5, t6],
        }
    }

    /// Whether an import is complete: its status lists the exporting
    /// cluster and, with ClusterSet IPs, it has its IP.
    fn import_done(vips: bool) -> fn(&watch::ImportSeen) -> bool {
        if vips {
            |(clusters, ip)| *clusters && ip.is_some()
        } else {
            |(clusters, _)| *clusters
        }
    }

    fn stop(self) {
        self.tasks.iter().for_each(|t| t.abort());
    }
}

/// Waits until B and C hold every slice (returns when that happened) and
/// every import is done and every export Ready.
async fn wait_full_sync(
    w: &Watches,
    n: usize,
    vips: bool,
    started: Instant,
) -> anyhow::Result<Duration> {
    let done = Watches::import_done(vips);
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut slices_done = None;
    loop {
        let (nb, nc) = (
            watch::count(&w.slices_b, |_| true),
            watch::count(&w.slices_c, |_| true),
        );
        if slices_done.is_none() && nb >= n && nc >= n {
            slices_done = Some(started.elapsed());
        }
        let (ib, ic, ra) = (
            watch::count(&w.imports_b, done),
            watch::count(&w.imports_c, done),
            watch::count(&w.exports_a, |r| *r),
        );
        if let Some(s) = slices_done
            && ib >= n
            && ic >= n
            && ra >= n
        {
            return Ok(s);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "initial sync incomplete: slices B {nb}, C {nc}; imports done B {ib}, C {ic}; exports Ready in A {ra}; of {n}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Flips the readiness of random services' slices in A, one at a time,
/// timing each until B's imported slice shows it.
async fn time_flips(
    a: &Client,
    slices_b: &watch::Latest<watch::SliceSeen>,
    n: usize,
    samples: usize,
) -> anyhow::Result<Vec<Duration>> {
    let slices = Api::<EndpointSlice>::namespaced(a.clone(), NS);
    let mut lat = Vec::with_capacity(samples);
    let mut state: HashMap<usize, bool> = HashMap::new();
    let mut rng_state: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..samples {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        let i = (rng_state % n as u64) as usize;
        let ready = !state.get(&i).copied().unwrap_or(true);
        state.insert(i, ready);
        let name = format!("svc-{i}");
        let t0 = Instant::now();
        slices
            .patch(
                &format!("{name}-x"),
                &PatchParams::default(),
                &Patch::Merge(json!({"endpoints": [{"addresses": [clusterset::pod_ip(i)], "conditions": {"ready": ready}}]})),
            )
            .await?;
        let want = format!("{name}-a");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let hit = watch::get(slices_b, &want).filter(|((r, _), at)| *r == ready && *at >= t0);
            if let Some((_, at)) = hit {
                lat.push(at - t0);
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "change to {name} never reached B"
            );
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }
    lat.sort();
    Ok(lat)
}

async fn run(n: usize, vips: bool, samples: usize, vip_samples: usize) -> anyhow::Result<Outcome> {
    eprintln!(
        "--- {n} services, ClusterSet IPs {} ---",
        if vips { "on" } else { "off" }
    );
    let cs = Clusterset::start(vips).await?;
    let a = cs.clients[0].clone();
    let t = Instant::now();
    clusterset::create_exported_services(&a, n).await?;
    eprintln!(
        "created {n} services/slices/exports in A in {:.2?}",
        t.elapsed()
    );

    let w = Watches::start(&cs);
    let mut everyone = vec![cs.broker_client.clone()];
    everyone.extend(cs.clients.iter().cloned());
    let revs0 = revisions(&everyone).await?;
    let writes0 = writes::read(&everyone).await?;
    let servers_cpu0 = cpu_secs(std::process::id());
    let started = Instant::now();
    let agents = cs.spawn_agents()?;
    let slices_synced = wait_full_sync(&w, n, vips, started).await?;
    let initial_sync = started.elapsed();
    let agent_cpu: f64 = agents.iter().map(|a| cpu_secs(a.id().unwrap_or(0))).sum();
    // This process: the four API servers (and the benchmark's own watches).
    let servers_cpu = cpu_secs(std::process::id()) - servers_cpu0;
    let (ib, ic) = (
        count_imports(&cs.clients[1]).await,
        count_imports(&cs.clients[2]).await,
    );
    anyhow::ensure!(ib == n && ic == n, "imports: B {ib}, C {ic} of {n}");
    eprintln!(
        "initial sync: slices in {slices_synced:.2?}, everything (imports' status, exports Ready) in {initial_sync:.2?}; agents used {agent_cpu:.1} CPU s, the API servers {servers_cpu:.1}"
    );
    let revs1 = revisions(&everyone).await?;
    let writes: Vec<u64> = revs1.iter().zip(&revs0).map(|(a, b)| a - b).collect();
    eprintln!(
        "writes during the sync (revisions): broker {}, A {}, B {}, C {}; {:.1} per service",
        writes[0],
        writes[1],
        writes[2],
        writes[3],
        writes.iter().sum::<u64>() as f64 / n.max(1) as f64
    );
    let writes1 = writes::read(&everyone).await?;
    eprint!(
        "write requests by server, verb and resource:\n{}",
        writes::report(&["broker", "A", "B", "C"], &writes0, &writes1, n)
    );

    let seen = vip::Seen {
        imports: w.imports_b.clone(),
        services: w.services_b.clone(),
        slices: w.slices_b.clone(),
    };
    if vips {
        // Before the flips, which make some endpoints not ready.
        eprintln!(
            "ClusterSet IPs routed in B after the full sync: {} of {n}",
            vip::count_routed(&seen, n)
        );
    }
    let flips = time_flips(&a, &w.slices_b, n, samples).await?;
    let (rss_a, rss_b) = (
        rss_mb(agents[0].id().unwrap_or(0)),
        rss_mb(agents[1].id().unwrap_or(0)),
    );
    let mut vip = Vec::new();
    if vips {
        vip = vip::latencies(&a, &cs.clients[1], &seen, n, vip_samples).await?;
        vip.sort();
    }
    for mut a in agents {
        let _ = a.kill().await;
    }
    w.stop();
    cs.shutdown().await;
    Ok(Outcome {
        n,
        vips,
        slices_synced,
        initial_sync,
        agent_cpu,
        servers_cpu,
        flips,
        vip,
        rss_a,
        rss_b,
    })
}
