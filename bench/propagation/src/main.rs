//! `bench/propagation`: how fast ferry's agents move MCS exports between
//! clusters. One broker and three member clusters on loopback `ferry
//! apiserver`s (in this process); one `ferry agent` per cluster, each in its
//! own child process (this binary re-executed with `agent`), so its memory
//! can be measured alone.
//!
//! For each service count N (default 10 and 10,000): cluster A gets N
//! Services with a ready EndpointSlice each and N ServiceExports before the
//! agents start; then
//! - initial sync: agents start → B and C each hold N imported
//!   EndpointSlices ("slices") and, for the full figure, N ServiceImports with
//!   `status.clusters` filled, and every ServiceExport in A is `Ready` — only
//!   then does the agent stop writing, so propagation is timed on a quiet system;
//! - propagation: one at a time, flip the readiness of a random service's
//!   EndpointSlice in A and time until B's imported slice shows it (p50/p99);
//! - agent RSS: VmRSS / VmHWM of A's and B's agents, and the CPU seconds all
//!   three agents spent on the initial sync.
//!
//! Targets (issue #5): p99 ≤ 100 ms at 10k; initial sync of 10k ≤ 10 s;
//! agent RSS ≤ 100 MB at 10k. Usage:
//! `cargo run --release -p ferry-bench-propagation -- [N,N…] [--samples S]`.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use ferry_ctl::install::{self, DeployBrokerOptions, JoinOptions};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use serde_json::json;

const NS: &str = "bench";

// mimalloc, tuned: see ferry-alloc.
#[global_allocator]
static ALLOCATOR: ferry_alloc::Allocator = ferry_alloc::Allocator;

async fn client(kubeconfig: &Path) -> anyhow::Result<Client> {
    let kc = Kubeconfig::read_from(kubeconfig)?;
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
    Ok(ferry_kube::multiplexed_client(
        config,
        ferry_kube::ClientFor::Cluster,
    )?)
}

fn main() -> anyhow::Result<()> {
    ferry_alloc::tune();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("agent") {
        let kubeconfig = PathBuf::from(args.get(1).context("agent KUBECONFIG")?);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        return rt.block_on(agent(&kubeconfig));
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut counts = vec![10usize, 10_000];
    let mut samples = 200usize;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--samples" {
            samples = it.next().context("--samples N")?.parse()?;
        } else {
            counts = a
                .split(',')
                .map(str::parse)
                .collect::<Result<_, _>>()
                .context("service counts")?;
        }
    }
    let rt = tokio::runtime::Runtime::new()?;
    let mut results = Vec::new();
    for n in counts {
        results.push(rt.block_on(run(n, samples))?);
    }
    println!();
    println!("== ferry propagation benchmark (3 clusters + broker, loopback ferry apiservers) ==");
    println!(
        "{:>8} {:>9} {:>10} {:>14} {:>9} {:>9} {:>9} {:>16} {:>16}",
        "services",
        "slices",
        "full-sync",
        "CPU agents/API",
        "p50",
        "p99",
        "max",
        "agent-A RSS/HWM",
        "agent-B RSS/HWM"
    );
    for r in &results {
        println!(
            "{:>8} {:>7.2} s {:>8.2} s {:>6.1}/{:>5.1} s {:>6.1} ms {:>6.1} ms {:>6.1} ms {:>7.1}/{:<7.1}MB {:>7.1}/{:<7.1}MB",
            r.n,
            r.slices_synced.as_secs_f64(),
            r.initial_sync.as_secs_f64(),
            r.agent_cpu,
            r.servers_cpu,
            ms(r.p50),
            ms(r.p99),
            ms(r.max),
            r.rss_a.0,
            r.rss_a.1,
            r.rss_b.0,
            r.rss_b.1
        );
    }
    println!(
        "(slices: B and C hold every imported EndpointSlice; full-sync: also every ServiceImport's status and every export Ready; CPU: seconds the three agents / the four API servers used until full sync)"
    );
    if let Some(r) = results.iter().find(|r| r.n == 10_000) {
        println!();
        println!("targets at 10k services (ratio = measured / target, ≤ 1 meets it):");
        println!(
            "  initial (full) sync ≤ 10 s: {:.2} s (ratio {:.2})",
            r.initial_sync.as_secs_f64(),
            r.initial_sync.as_secs_f64() / 10.0
        );
        println!(
            "  p99 ≤ 100 ms: {:.1} ms (ratio {:.2})",
            ms(r.p99),
            ms(r.p99) / 100.0
        );
        let rss = r.rss_a.1.max(r.rss_b.1);
        println!(
            "  agent RSS ≤ 100 MB (peak): {rss:.1} MB (ratio {:.2})",
            rss / 100.0
        );
        println!(
            "  anchor: Submariner's syncer is rate-limited to 10 items/s — 10k slices would take ≥ 1000 s"
        );
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The agent, as `ferry agent --kubeconfig K` would run it.
async fn agent(kubeconfig: &Path) -> anyhow::Result<()> {
    let local = client(kubeconfig).await?;
    let (mut cfg, info) = ferry_agent::load_config(&local, "ferry-system").await?;
    if let Ok(n) = std::env::var("FERRY_BENCH_WRITE_CONCURRENCY") {
        cfg.write_concurrency = n.parse().context("FERRY_BENCH_WRITE_CONCURRENCY")?;
    }
    let broker = ferry_kube::broker_client(&info, &info.token).await?;
    ferry_agent::run(cfg, local, broker, std::future::pending()).await;
    Ok(())
}

struct Outcome {
    n: usize,
    slices_synced: Duration,
    initial_sync: Duration,
    agent_cpu: f64,
    servers_cpu: f64,
    p50: Duration,
    p99: Duration,
    max: Duration,
    rss_a: (f64, f64),
    rss_b: (f64, f64),
}

fn rss_mb(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Watches imported slices of NS in a cluster: name → (ready, when seen).
type Seen = Arc<Mutex<HashMap<String, (bool, Instant)>>>;

fn watch_imports(c: Client) -> (Seen, tokio::task::JoinHandle<()>) {
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let task = tokio::spawn(async move {
        let api: Api<EndpointSlice> = Api::namespaced(c, NS);
        let cfg = watcher::Config::default()
            .labels("endpointslice.kubernetes.io/managed-by=agent.ferry.dev");
        let mut stream = watcher(api, cfg).default_backoff().boxed();
        while let Some(ev) = stream.next().await {
            let now = Instant::now();
            let (watcher::Event::Apply(o) | watcher::Event::InitApply(o)) = (match ev {
                Ok(e) => e,
                Err(_) => continue,
            }) else {
                continue;
            };
            let ready = o
                .endpoints
                .first()
                .and_then(|e| e.conditions.as_ref())
                .and_then(|c| c.ready)
                .unwrap_or(false);
            if let Ok(mut m) = s.lock() {
                m.insert(o.name_any(), (ready, now));
            }
        }
    });
    (seen, task)
}

/// Names of the objects in NS of one cluster that satisfy `pred`, kept
/// current by a watch.
type Matching = Arc<Mutex<std::collections::HashSet<String>>>;

fn watch_matching<K>(api: Api<K>, pred: fn(&K) -> bool) -> (Matching, tokio::task::JoinHandle<()>)
where
    K: kube::Resource
        + Clone
        + for<'de> k8s_openapi::serde::Deserialize<'de>
        + std::fmt::Debug
        + Send
        + 'static,
{
    let set: Matching = Arc::default();
    let s = set.clone();
    let task = tokio::spawn(async move {
        let mut stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        while let Some(ev) = stream.next().await {
            let Ok(mut m) = s.lock() else { return };
            match ev {
                Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => {
                    if pred(&o) {
                        m.insert(o.name_any());
                    } else {
                        m.remove(&o.name_any());
                    }
                }
                Ok(watcher::Event::Delete(o)) => {
                    m.remove(&o.name_any());
                }
                Ok(watcher::Event::Init | watcher::Event::InitDone) | Err(_) => {}
            }
        }
    });
    (set, task)
}

fn import_has_clusters(si: &ferry_api::ServiceImport) -> bool {
    si.status.as_ref().is_some_and(|s| !s.clusters.is_empty())
}

fn export_ready(se: &ferry_api::ServiceExport) -> bool {
    se.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

/// User + system CPU seconds a process has used (USER_HZ is 100 on Linux).
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime: fields 14 and 15 of the line, 11 and 12 after "(comm) ".
    (ticks(11) + ticks(12)) / 100.0
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

async fn run(n: usize, samples: usize) -> anyhow::Result<Outcome> {
    eprintln!("--- {n} services ---");
    let tmp = tempfile::tempdir()?;
    let loopback = "127.0.0.1:0".parse()?;
    let broker = ferry_apiserver::start(ferry_apiserver::Config::new(
        tmp.path().join("broker"),
        loopback,
    ))
    .await?;
    let joiner = ferry_apiserver::create_token(
        &tmp.path().join("broker"),
        &ferry_apiserver::Identity::Joiner,
    )?;
    let kc = Kubeconfig::read_from(&broker.admin_kubeconfig)?;
    let bclient = client(&broker.admin_kubeconfig).await?;
    let info = install::deploy_broker(
        &bclient,
        &kc,
        &DeployBrokerOptions {
            namespace: "ferry-broker".into(),
            joiner_token: Some(joiner),
            ..Default::default()
        },
    )
    .await?;
    let mut servers = Vec::new();
    let mut clients = Vec::new();
    for (i, id) in ["a", "b", "c"].iter().enumerate() {
        let mut config = ferry_apiserver::Config::new(tmp.path().join(id), loopback);
        // Each member allocates from the service range it joins with.
        config.service_cluster_ip_range = format!("100.{}.0.0/16", 65 + 2 * i).parse()?;
        let s = ferry_apiserver::start(config).await?;
        let c = client(&s.admin_kubeconfig).await?;
        install::join(
            &c,
            &info,
            &JoinOptions {
                cluster_id: id.to_string(),
                cluster_cidrs: vec![format!("100.{}.0.0/16", 64 + 2 * i).parse()?],
                service_cidrs: vec![format!("100.{}.0.0/16", 65 + 2 * i).parse()?],
                cable_driver: None,
                gateway_node: None,
                image: "ferry:bench".into(),
                gateway: Default::default(),
                globalnet: None,
            },
        )
        .await?;
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": NS}}))?;
        Api::<Namespace>::all(c.clone())
            .create(&PostParams::default(), &ns)
            .await?;
        servers.push(s);
        clients.push(c);
    }
    let a = clients[0].clone();

    // Cluster A's services, endpoints and exports.
    let t = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let a = a.clone();
            async move {
                let name = format!("svc-{i}");
                let ip = format!("100.65.{}.{}", i / 250, i % 250 + 1);
                let svc: Service = serde_json::from_value(json!({
                    "metadata": {"name": name, "namespace": NS},
                    "spec": {"clusterIP": ip, "ports": [{"name": "http", "port": 80}]},
                }))?;
                Api::<Service>::namespaced(a.clone(), NS).create(&PostParams::default(), &svc).await?;
                let slice: EndpointSlice = serde_json::from_value(json!({
                    "metadata": {"name": format!("{name}-x"), "namespace": NS,
                        "labels": {"kubernetes.io/service-name": name}},
                    "addressType": "IPv4",
                    "endpoints": [{"addresses": [format!("100.64.{}.{}", i / 250, i % 250 + 1)], "conditions": {"ready": true}}],
                    "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                }))?;
                Api::<EndpointSlice>::namespaced(a.clone(), NS).create(&PostParams::default(), &slice).await?;
                let export: ferry_api::ServiceExport = serde_json::from_value(json!({
                    "metadata": {"name": name, "namespace": NS},
                }))?;
                Api::<ferry_api::ServiceExport>::namespaced(a, NS)
                    .create(&PostParams::default(), &export)
                    .await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(64)
        .try_collect::<Vec<()>>()
        .await?;
    eprintln!(
        "created {n} services/slices/exports in A in {:.2?}",
        t.elapsed()
    );

    let (seen_b, task_b) = watch_imports(clients[1].clone());
    let (seen_c, task_c) = watch_imports(clients[2].clone());
    let (imports_b, task_ib) = watch_matching(
        Api::<ferry_api::ServiceImport>::namespaced(clients[1].clone(), NS),
        import_has_clusters,
    );
    let (imports_c, task_ic) = watch_matching(
        Api::<ferry_api::ServiceImport>::namespaced(clients[2].clone(), NS),
        import_has_clusters,
    );
    let (ready_a, task_ra) = watch_matching(
        Api::<ferry_api::ServiceExport>::namespaced(a.clone(), NS),
        export_ready,
    );
    let watches = [task_b, task_c, task_ib, task_ic, task_ra];
    let mut everyone = vec![bclient.clone()];
    everyone.extend(clients.iter().cloned());
    let revs0 = revisions(&everyone).await?;
    let exe = std::env::current_exe()?;
    let servers_cpu0 = cpu_secs(std::process::id());
    let started = Instant::now();
    let mut agents = Vec::new();
    for s in &servers {
        agents.push(
            tokio::process::Command::new(&exe)
                .arg("agent")
                .arg(&s.admin_kubeconfig)
                .env("RUST_LOG", "warn")
                .stdin(Stdio::null())
                .kill_on_drop(true)
                .spawn()?,
        );
    }
    let len = |m: &Seen| m.lock().map(|m| m.len()).unwrap_or(0);
    let count = |m: &Matching| m.lock().map(|m| m.len()).unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut slices_done = None;
    loop {
        let (nb, nc) = (len(&seen_b), len(&seen_c));
        if slices_done.is_none() && nb >= n && nc >= n {
            slices_done = Some(started.elapsed());
        }
        let (ib, ic, ra) = (count(&imports_b), count(&imports_c), count(&ready_a));
        if slices_done.is_some() && ib >= n && ic >= n && ra >= n {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "initial sync incomplete: slices B {nb}, C {nc}; imports with status B {ib}, C {ic}; exports Ready in A {ra}; of {n}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let initial_sync = started.elapsed();
    let slices_done = slices_done.unwrap_or(initial_sync);
    let agent_cpu: f64 = agents.iter().map(|a| cpu_secs(a.id().unwrap_or(0))).sum();
    // This process: the four API servers (and the benchmark's own watches).
    let servers_cpu = cpu_secs(std::process::id()) - servers_cpu0;
    let (ib, ic) = (
        count_imports(&clients[1]).await,
        count_imports(&clients[2]).await,
    );
    anyhow::ensure!(ib == n && ic == n, "imports: B {ib}, C {ic} of {n}");
    eprintln!(
        "initial sync: slices in {slices_done:.2?}, everything (imports' status, exports Ready) in {initial_sync:.2?}; agents used {agent_cpu:.1} CPU s, the API servers {servers_cpu:.1}"
    );
    let revs1 = revisions(&everyone).await?;
    let writes: Vec<u64> = revs1.iter().zip(&revs0).map(|(a, b)| a - b).collect();
    eprintln!(
        "writes during the sync (revisions): broker {}, A {}, B {}, C {}; {:.1} per service",
        writes[0],
        writes[1],
        writes[2],
        writes[3],
        writes.iter().sum::<u64>() as f64 / n as f64
    );

    // Propagation A → B, one change at a time.
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
                &Patch::Merge(json!({"endpoints": [{"addresses": [format!("100.64.{}.{}", i / 250, i % 250 + 1)], "conditions": {"ready": ready}}]})),
            )
            .await?;
        let want = format!("{name}-a");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let hit = seen_b
                .lock()
                .ok()
                .and_then(|m| m.get(&want).copied())
                .filter(|(r, at)| *r == ready && *at >= t0);
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
    let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p).round() as usize];
    let (rss_a, rss_b) = (
        rss_mb(agents[0].id().unwrap_or(0)),
        rss_mb(agents[1].id().unwrap_or(0)),
    );
    for mut a in agents {
        let _ = a.kill().await;
    }
    for w in watches {
        w.abort();
    }
    for s in servers {
        s.shutdown().await;
    }
    broker.shutdown().await;
    Ok(Outcome {
        n,
        slices_synced: slices_done,
        initial_sync,
        agent_cpu,
        servers_cpu,
        p50: pct(0.5),
        p99: pct(0.99),
        max: *lat.last().unwrap_or(&Duration::ZERO),
        rss_a,
        rss_b,
    })
}
