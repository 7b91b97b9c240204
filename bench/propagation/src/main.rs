//! `bench/propagation`: how fast ferry's agents move MCS exports between
//! clusters. One broker and three member clusters on loopback `ferry
//! apiserver`s (in this process); one `ferry agent` per cluster, each in its
//! own child process (this binary re-executed with `agent`), so its memory
//! can be measured alone.
//!
//! For each service count N (default 10 and 10,000): cluster A gets N
//! Services with a ready EndpointSlice each and N ServiceExports before the
//! agents start; then
//! - initial sync: agents start → B and C each hold N ServiceImports and N
//!   imported EndpointSlices;
//! - propagation: one at a time, flip the readiness of a random service's
//!   EndpointSlice in A and time until B's imported slice shows it (p50/p99);
//! - agent RSS: VmRSS / VmHWM of A's and B's agents.
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
use ferry_agent::install::{self, DeployBrokerOptions, JoinOptions};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde_json::json;

const NS: &str = "bench";

async fn client(kubeconfig: &Path) -> anyhow::Result<Client> {
    let kc = Kubeconfig::read_from(kubeconfig)?;
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
    Ok(Client::try_from(config)?)
}

fn main() -> anyhow::Result<()> {
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
        "{:>8} {:>14} {:>10} {:>10} {:>10} {:>16} {:>16}",
        "services", "initial-sync", "p50", "p99", "max", "agent-A RSS/HWM", "agent-B RSS/HWM"
    );
    for r in &results {
        println!(
            "{:>8} {:>12.2} s {:>7.1} ms {:>7.1} ms {:>7.1} ms {:>7.1}/{:<7.1}MB {:>7.1}/{:<7.1}MB",
            r.n,
            r.initial_sync.as_secs_f64(),
            ms(r.p50),
            ms(r.p99),
            ms(r.max),
            r.rss_a.0,
            r.rss_a.1,
            r.rss_b.0,
            r.rss_b.1
        );
    }
    if let Some(r) = results.iter().find(|r| r.n == 10_000) {
        println!();
        println!("targets at 10k services (ratio = measured / target, ≤ 1 meets it):");
        println!(
            "  initial sync ≤ 10 s: {:.2} s (ratio {:.2})",
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
    let (cfg, info) = install::load_config(&local, "ferry-system").await?;
    let broker = install::broker_client(&info, &info.token).await?;
    ferry_agent::run(cfg, local, broker, std::future::pending()).await;
    Ok(())
}

struct Outcome {
    n: usize,
    initial_sync: Duration,
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

fn watch_imports(c: Client) -> Seen {
    let seen: Seen = Arc::default();
    let s = seen.clone();
    tokio::spawn(async move {
        let api: Api<EndpointSlice> = Api::namespaced(c, NS);
        let cfg = watcher::Config::default()
            .labels("endpointslice.kubernetes.io/managed-by=agent.ferry.dev");
        let mut stream = watcher(api, cfg).boxed();
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
    seen
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
        },
    )
    .await?;
    let mut servers = Vec::new();
    let mut clients = Vec::new();
    for (i, id) in ["a", "b", "c"].iter().enumerate() {
        let s = ferry_apiserver::start(ferry_apiserver::Config::new(tmp.path().join(id), loopback))
            .await?;
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

    let seen_b = watch_imports(clients[1].clone());
    let seen_c = watch_imports(clients[2].clone());
    let exe = std::env::current_exe()?;
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
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let nb = seen_b.lock().map(|m| m.len()).unwrap_or(0);
        let nc = seen_c.lock().map(|m| m.len()).unwrap_or(0);
        if nb >= n && nc >= n {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "initial sync incomplete: B {nb}, C {nc} of {n}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let slices_done = started.elapsed();
    let (ib, ic) = (
        count_imports(&clients[1]).await,
        count_imports(&clients[2]).await,
    );
    anyhow::ensure!(ib == n && ic == n, "imports: B {ib}, C {ic} of {n}");
    let initial_sync = slices_done.max(Duration::ZERO);
    eprintln!("initial sync: {initial_sync:.2?}");

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
    for s in servers {
        s.shutdown().await;
    }
    broker.shutdown().await;
    Ok(Outcome {
        n,
        initial_sync,
        p50: pct(0.5),
        p99: pct(0.99),
        max: *lat.last().unwrap_or(&Duration::ZERO),
        rss_a,
        rss_b,
    })
}
