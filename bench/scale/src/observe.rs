//! What is measured: the initial sync (read straight from each member's
//! in-process store, so watching 250 members costs the benchmark no HTTP),
//! the broker's figures, and single changes reaching every other member.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use ferry_api::labels::{MANAGED_BY, MANAGED_BY_FERRY, SERVICE_NAME, SOURCE_CLUSTER};
use ferry_apiserver::store::{Store, Stored};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use crate::Args;
use crate::members::{Broker, Member, NS, service_name};
use ferry_bench_kit::procfs::{cpu_secs, rss_mb};

const IMPORTS: &str = "/multicluster.x-k8s.io/serviceimports/bench/";
const SLICES: &str = "/discovery.k8s.io/endpointslices/bench/";

/// The initial sync's figures.
pub struct SyncFigures {
    /// Agents started → the last member holds every import.
    pub all: Duration,
    /// … the median member.
    pub median_member: Duration,
    pub broker_rss: (f64, f64),
    pub broker_cpu: f64,
    pub broker_writes: u64,
    /// (resource, events the broker's watches sent during the sync).
    pub watch_events: Vec<(String, u64)>,
    pub broker_watches: u64,
    /// Every agent's (VmRSS, VmHWM) in MB, sorted by RSS.
    pub agent_rss: Vec<(f64, f64)>,
    pub agents_cpu: f64,
    /// CPU seconds of this process (the members' API servers) during the sync.
    pub members_cpu: f64,
    pub this_rss: f64,
}

pub struct Sync {
    pub agents: Vec<tokio::process::Child>,
    pub figures: SyncFigures,
}

/// Whether a stored ServiceImport has `status.clusters` filled.
fn has_clusters(s: &Stored) -> bool {
    const NEEDLE: &[u8] = b"\"clusters\":[{";
    s.json.windows(NEEDLE.len()).any(|w| w == NEEDLE)
}

/// (imports with status, imported slices) a member holds of other clusters'
/// services. Counted inside the store's scan (nothing is kept or cloned), so
/// polling 250 members stays cheap.
fn progress(m: &Member) -> (usize, usize) {
    let own = format!("{}{}-", IMPORTS, m.id);
    let store = &m.server.app.store;
    let (mut imports, mut slices) = (0, 0);
    store.list(IMPORTS, None, None, |k, s| {
        imports += usize::from(!k.starts_with(&own) && has_clusters(s));
        false
    });
    store.list(SLICES, None, None, |_, s| {
        let imported = s.labels.get(MANAGED_BY).map(String::as_str) == Some(MANAGED_BY_FERRY)
            && s.labels.get(SOURCE_CLUSTER).is_some_and(|c| *c != m.id);
        slices += usize::from(imported);
        false
    });
    (imports, slices)
}

/// The broker's newest revision (every write adds one).
async fn revision(c: &kube::Client) -> anyhow::Result<u64> {
    let list = Api::<Namespace>::all(c.clone())
        .list_metadata(&kube::api::ListParams::default().limit(1))
        .await?;
    let rv = list.metadata.resource_version.unwrap_or_default();
    rv.parse()
        .with_context(|| format!("resourceVersion {rv:?}"))
}

/// (events sent by resource, open watches) from the broker's /metrics.
async fn watch_metrics(c: &kube::Client) -> anyhow::Result<(Vec<(String, u64)>, u64)> {
    let req = http::Request::get("/metrics").body(Vec::new())?;
    let text = c.request_text(req).await?;
    let mut events = Vec::new();
    let mut open = 0;
    for line in text.lines() {
        let Some((name, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let value: f64 = value.parse().unwrap_or(0.0);
        if let Some(rest) = name.strip_prefix("ferry_apiserver_watch_events_total{resource=\"") {
            events.push((rest.trim_end_matches("\"}").to_string(), value as u64));
        } else if name == "ferry_apiserver_open_watches" {
            open = value as u64;
        }
    }
    Ok((events, open))
}

pub async fn sync(broker: &Broker, members: &[Member], args: &Args) -> anyhow::Result<Sync> {
    let want = (args.clusters - 1) * args.services;
    let rev0 = revision(&broker.client).await?;
    let (events0, _) = watch_metrics(&broker.client).await?;
    let (broker_cpu0, this_cpu0) = (cpu_secs(broker.pid()), cpu_secs(std::process::id()));
    let exe = std::env::current_exe()?;
    let started = Instant::now();
    let mut agents = Vec::new();
    for m in members {
        agents.push(
            tokio::process::Command::new(&exe)
                .arg("agent")
                .arg(&m.server.admin_kubeconfig)
                .stdin(Stdio::null())
                .kill_on_drop(true)
                .spawn()?,
        );
    }
    let mut done: Vec<Option<Duration>> = vec![None; members.len()];
    let mut last_report = Instant::now();
    while done.iter().any(Option::is_none) {
        let mut behind = (0, 0, 0);
        for (m, d) in members.iter().zip(&mut done).filter(|(_, d)| d.is_none()) {
            let (imports, slices) = progress(m);
            if imports >= want && slices >= want {
                *d = Some(started.elapsed());
            } else {
                behind = (behind.0 + 1, behind.1 + imports, behind.2 + slices);
            }
        }
        anyhow::ensure!(
            started.elapsed() < args.timeout,
            "sync incomplete after {:?}: {} members behind (they hold {} imports with status and {} slices of {} each)",
            args.timeout,
            behind.0,
            behind.1,
            behind.2,
            want
        );
        if last_report.elapsed() > Duration::from_secs(10) && behind.0 > 0 {
            eprintln!(
                "  {:.0?}: {} members still syncing (mean {} imports, {} slices of {want})",
                started.elapsed(),
                behind.0,
                behind.1 / behind.0,
                behind.2 / behind.0
            );
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let all = started.elapsed();
    let broker_cpu = cpu_secs(broker.pid()) - broker_cpu0;
    let members_cpu = cpu_secs(std::process::id()) - this_cpu0;
    let agents_cpu = agents.iter().map(|a| cpu_secs(a.id().unwrap_or(0))).sum();
    let broker_writes = revision(&broker.client).await? - rev0;
    let (events1, broker_watches) = watch_metrics(&broker.client).await?;
    let watch_events = events1
        .into_iter()
        .map(|(r, n)| {
            let before = events0.iter().find(|(r0, _)| *r0 == r).map_or(0, |e| e.1);
            (r, n - before)
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    let mut agent_rss: Vec<(f64, f64)> =
        agents.iter().map(|a| rss_mb(a.id().unwrap_or(0))).collect();
    agent_rss.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut times: Vec<Duration> = done.into_iter().flatten().collect();
    times.sort();
    let figures = SyncFigures {
        all,
        median_member: times[times.len() / 2],
        broker_rss: rss_mb(broker.pid()),
        broker_cpu,
        broker_writes,
        watch_events,
        broker_watches,
        agent_rss,
        agents_cpu,
        members_cpu,
        this_rss: rss_mb(std::process::id()).0,
    };
    Ok(Sync { agents, figures })
}

/// Waits until neither the broker nor any member has written for 2 s (the
/// agents finish exports' status after the imports), so changes are timed
/// on a quiet system.
pub async fn settle(broker: &Broker, members: &[Member]) -> anyhow::Result<()> {
    let t = Instant::now();
    let total = |b: u64| {
        b + members
            .iter()
            .map(|m| m.server.app.store.revision())
            .sum::<u64>()
    };
    let mut last = total(revision(&broker.client).await?);
    let mut quiet_since = Instant::now();
    while quiet_since.elapsed() < Duration::from_secs(2) && t.elapsed() < Duration::from_secs(300) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = total(revision(&broker.client).await?);
        if now != last {
            last = now;
            quiet_since = Instant::now();
        }
    }
    eprintln!("quiet after a further {:.1?}", t.elapsed());
    Ok(())
}

/// Single changes' latencies: for each change, the time until each other
/// member stored it.
pub async fn changes(members: &[Member], args: &Args) -> anyhow::Result<Vec<Vec<Duration>>> {
    let mut out = Vec::new();
    for k in 0..args.changes {
        let src = k % members.len();
        let svc = service_name(src, (k * 7) % args.services);
        // The slices start ready; odd rounds of the same service flip back.
        let ready = (k / members.len()) % 2 == 1;
        let t0 = Instant::now();
        let waits: Vec<_> = members
            .iter()
            .filter(|m| m.id != members[src].id)
            .map(|m| {
                let store = m.server.app.store.clone();
                let (src, svc) = (members[src].id.clone(), svc.clone());
                let rx = store.subscribe();
                tokio::spawn(async move { arrival(store, rx, &src, &svc, ready, t0).await })
            })
            .collect();
        Api::<EndpointSlice>::namespaced(members[src].client.clone(), NS)
            .patch(
                &format!("{svc}-x"),
                &PatchParams::default(),
                &Patch::Merge(json!({"endpoints": [{"addresses": [slice_address(&members[src].server, &svc)?], "conditions": {"ready": ready}}]})),
            )
            .await?;
        let mut lat = Vec::new();
        for w in waits {
            lat.push(w.await??);
        }
        lat.sort();
        eprintln!(
            "change {k} ({svc} ready={ready}): last of {} members after {:.1?}",
            lat.len(),
            lat.last().copied().unwrap_or_default()
        );
        out.push(lat);
    }
    Ok(out)
}

/// The address the source slice has now (a merge patch replaces the list).
fn slice_address(server: &ferry_apiserver::RunningServer, svc: &str) -> anyhow::Result<String> {
    let stored = server
        .app
        .store
        .get(&format!("{SLICES}{svc}-x"))
        .context("the source slice")?;
    let v: serde_json::Value = serde_json::from_slice(&stored.json)?;
    v["endpoints"][0]["addresses"][0]
        .as_str()
        .map(str::to_string)
        .context("the source slice's address")
}

/// Whether `s` is `src`'s slice of `svc` with readiness `ready`.
fn is_change(s: &Stored, src: &str, svc: &str, ready: bool) -> bool {
    let needle = format!("\"ready\":{ready}");
    s.labels.get(SOURCE_CLUSTER).map(String::as_str) == Some(src)
        && s.labels.get(SERVICE_NAME).map(String::as_str) == Some(svc)
        && s.json.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Waits (≤ 30 s) until the member's store holds the change; the time since `t0`.
async fn arrival(
    store: Store,
    mut rx: tokio::sync::broadcast::Receiver<ferry_apiserver::store::Event>,
    src: &str,
    svc: &str,
    ready: bool,
    t0: Instant,
) -> anyhow::Result<Duration> {
    let deadline = tokio::time::Instant::from_std(t0) + Duration::from_secs(30);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Err(_) => anyhow::bail!("a change of {svc} never arrived"),
            Ok(Ok(ev)) if ev.key.starts_with(SLICES) && is_change(&ev.object, src, svc, ready) => {
                return Ok(t0.elapsed());
            }
            Ok(Ok(_)) => {}
            Ok(Err(RecvError::Lagged(_))) => {
                let (_, hit, _) =
                    store.list(SLICES, None, None, |_, s| is_change(s, src, svc, ready));
                if !hit.is_empty() {
                    return Ok(t0.elapsed());
                }
            }
            Ok(Err(RecvError::Closed)) => anyhow::bail!("a member stopped"),
        }
    }
}
