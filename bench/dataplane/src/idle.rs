//! The `idle` section: what a joined cluster with two gateway nodes costs
//! when nothing happens — API writes per second (from its API server's
//! `/metrics`: committed revisions and write requests by resource) and the
//! CPU of each `ferry gateway` process (health checks, peer probes, lease).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use ferry_sandbox::harness::Cluster;

use crate::args::Args;
use crate::cluster::{Joined, Pair, cable};
use crate::report::{Report, Row};
use crate::sys::{self, wait_for};

/// Anchor: client-go leader election (kube-controller-manager, scheduler)
/// renews its Lease every RetryPeriod = 2 s.
const CLIENT_GO_WRITES_PER_SEC: f64 = 0.5;

/// Issue #19's target for ferry's steady-state API writes per cluster.
const TARGET_WRITES_PER_SEC: f64 = 0.2;

/// Verbs that write.
const WRITE_VERBS: [&str; 4] = ["create", "update", "patch", "delete"];

/// One scrape of an API server's `/metrics`.
struct Scrape {
    revision: u64,
    /// resource → write requests answered so far.
    writes: BTreeMap<String, u64>,
}

fn scrape(c: &Cluster) -> Result<Scrape> {
    let text = c.kubectl(&["get", "--raw", "/metrics"])?;
    let mut revision = None;
    let mut writes = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let value = value.parse::<f64>().unwrap_or(0.0) as u64;
        if series == "ferry_apiserver_revision" {
            revision = Some(value);
        }
        let Some(labels) = series.strip_prefix("ferry_apiserver_requests_total{") else {
            continue;
        };
        let label = |k: &str| {
            labels
                .split(',')
                .find_map(|kv| kv.strip_prefix(&format!("{k}=\"")))
                .map(|v| v.trim_end_matches(['"', '}']).to_string())
        };
        let (Some(verb), Some(resource)) = (label("verb"), label("resource")) else {
            continue;
        };
        if WRITE_VERBS.contains(&verb.as_str()) {
            *writes.entry(resource).or_default() += value;
        }
    }
    Ok(Scrape {
        revision: revision.ok_or_else(|| anyhow!("no ferry_apiserver_revision in /metrics"))?,
        writes,
    })
}

/// CPU time of every thread of `pid` so far (schedstat: nanoseconds).
fn cpu_ns(pid: i32) -> Result<u64> {
    let mut total = 0;
    for t in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let stat = std::fs::read_to_string(t?.path().join("schedstat")).unwrap_or_default();
        total += stat
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Ok(total)
}

/// Idle: A with two gateway nodes (one active, one standby), B with one,
/// one cable between them; `--idle-secs` of nothing.
pub fn idle(args: &Args, pair: &Pair, report: &mut Report) -> Result<()> {
    eprintln!("--- idle ({}) ---", pair.driver);
    pair.a.set_gateway(1, true)?;
    wait_for(
        "a ferry gateway on A's node 1",
        Duration::from_secs(60),
        Duration::from_millis(50),
        || sys::gateway_pid(&pair.a_nodes[1]),
    )?;
    pair.wait_path(Duration::from_secs(60))?;
    // Let the new gateway's start-up writes (Gateway object, status) pass.
    std::thread::sleep(Duration::from_secs(5));
    let active = usize::from(sys::link_exists(&pair.a_nodes[1], cable(pair)));
    let nodes = [
        &pair.a_nodes[active],
        &pair.a_nodes[1 - active],
        &pair.b_nodes[0],
    ];
    let pids: Vec<i32> = nodes
        .iter()
        .map(|n| sys::gateway_pid(n).ok_or_else(|| anyhow!("no gateway in {n}")))
        .collect::<Result<_>>()?;
    let cpu0: Vec<u64> = pids.iter().map(|p| cpu_ns(*p)).collect::<Result<_>>()?;
    let (a0, b0) = (scrape(&pair.a)?, scrape(&pair.b)?);
    let t0 = Instant::now();
    std::thread::sleep(args.idle);
    let (a1, b1) = (scrape(&pair.a)?, scrape(&pair.b)?);
    let secs = t0.elapsed().as_secs_f64();
    let cpu1: Vec<u64> = pids
        .iter()
        .map(|p| cpu_ns(*p))
        .collect::<Result<_>>()
        .context("a gateway restarted during the idle window")?;
    pair.a.set_gateway(1, false)?;

    let per_sec = |d: u64| d as f64 / secs;
    for (name, s0, s1, gateways) in [("A", &a0, &a1, 2), ("B", &b0, &b1, 1)] {
        let revisions = s1.revision.saturating_sub(s0.revision);
        report.rows.push(Row {
            metric: format!("idle: API writes/s, cluster {name} ({gateways} gateway nodes)"),
            ferry: format!("{:.2}", per_sec(revisions)),
            anchor: format!("{CLIENT_GO_WRITES_PER_SEC} client-go lease"),
            ratio: Some(per_sec(revisions) / CLIENT_GO_WRITES_PER_SEC),
            target: format!("<= {TARGET_WRITES_PER_SEC}"),
            pass: Some(per_sec(revisions) <= TARGET_WRITES_PER_SEC),
        });
        let by_resource: Vec<String> = s1
            .writes
            .iter()
            .filter_map(|(r, n)| {
                let d = n.saturating_sub(*s0.writes.get(r).unwrap_or(&0));
                (d > 0).then(|| format!("{r} {:.2}/s", per_sec(d)))
            })
            .collect();
        report.notes.push(format!(
            "idle: cluster {name}: {revisions} revisions in {secs:.0} s; write requests by resource: {}",
            if by_resource.is_empty() { "none".into() } else { by_resource.join(", ") }
        ));
    }
    let cpu: Vec<f64> = cpu0
        .iter()
        .zip(&cpu1)
        .map(|(a, b)| b.saturating_sub(*a) as f64 / 1e9 / secs * 100.0)
        .collect();
    for (who, pct) in [
        ("A's active gateway (1 cable)", cpu[0]),
        ("A's standby gateway (probing)", cpu[1]),
        ("B's gateway (1 cable)", cpu[2]),
    ] {
        report.rows.push(Row {
            metric: format!("idle: CPU of {who} (% of a core)"),
            ferry: format!("{pct:.3}"),
            anchor: "-".into(),
            ratio: None,
            target: "-".into(),
            pass: None,
        });
    }
    report.notes.push(format!(
        "idle: gateway CPU over {secs:.0} s from /proc/PID/task/*/schedstat (A's active gateway: node{active})"
    ));
    Ok(())
}
