//! The `mesh` section: what health probing costs a gateway as the
//! clusterset grows. `--clusters N` one-node clusters joined through one
//! broker cluster (wireguard, a full mesh: N−1 cables per gateway); once
//! every gateway reports all its cables `connected`, nothing happens for
//! `--idle-secs`, and the CPU of every `ferry gateway` process over that
//! window is reported, per gateway and per cable (issue #19: ≤ 0.05 % of a
//! core per cable), with the threads that spent it as a note.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use ferry_sandbox::harness::Cluster;

use crate::args::Args;
use crate::cluster::{Ferry, Joined};
use crate::report::{Report, Row};
use crate::sys::{self, wait_for};

/// Issue #19's target: CPU of one gateway per cable at idle, % of a core.
const TARGET_PCT_PER_CABLE: f64 = 0.05;

/// Where the gateways publish their status.
const SYSTEM_NAMESPACE: &str = "ferry-system";

/// CPU time so far of every thread of `pid` by thread name (schedstat: ns).
pub fn cpu_ns_by_thread(pid: i32) -> Result<BTreeMap<String, u64>> {
    let mut by_name = BTreeMap::new();
    for t in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let dir = t?.path();
        let stat = std::fs::read_to_string(dir.join("schedstat")).unwrap_or_default();
        let ns = stat
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        *by_name.entry(comm.trim().to_string()).or_default() += ns;
    }
    Ok(by_name)
}

/// Entries in the kernel's neighbour (ARP) table — one table for all
/// namespaces — and its hard limit (`gc_thresh3`, 1024 by default). A full
/// mesh of ~30 one-node clusters fills it: a gateway then cannot send to
/// some next hops, every cable of it goes silent and stays `error`.
fn neighbour_table() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/net/stat/arp_cache").ok()?;
    let first = stat.lines().nth(1)?.split_whitespace().next()?;
    let entries = u64::from_str_radix(first, 16).ok()?;
    let limit = std::fs::read_to_string("/proc/sys/net/ipv4/neigh/default/gc_thresh3").ok()?;
    Some((entries, limit.trim().parse().ok()?))
}

/// The kernel's neighbour-table limits, host-wide: the hard one first, so
/// that raising and then restoring in reverse keeps `gc_thresh2 <= gc_thresh3`.
const GC_THRESH: [&str; 2] = [
    "/proc/sys/net/ipv4/neigh/default/gc_thresh3",
    "/proc/sys/net/ipv4/neigh/default/gc_thresh2",
];

/// Neighbour entries a mesh of `n` one-node clusters needs, with room:
/// each gateway's namespace resolves every other gateway (n − 1 entries),
/// plus pods, nodes and the broker — 370 entries were seen at n = 16.
fn neighbours_needed(n: usize) -> u64 {
    (2 * n * n + 512) as u64
}

/// Raises the host's neighbour-table limits for the mesh's lifetime and
/// puts the old values back on drop. The table is one for all namespaces
/// and its limits exist only in the host's namespace, so a mesh of more
/// than ~24 clusters cannot run on the defaults (1024 entries). Nothing
/// else changes: no address, route or rule outside our namespaces.
struct NeighbourLimit {
    saved: Vec<(&'static str, String)>,
}

impl NeighbourLimit {
    /// Raises `gc_thresh2`/`gc_thresh3` to at least `need` (never lowers).
    fn at_least(need: u64) -> Result<Self> {
        let mut saved = Vec::new();
        for path in &GC_THRESH {
            let old = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
            let old = old.trim().to_string();
            if old.parse::<u64>().is_ok_and(|v| v >= need) {
                continue;
            }
            std::fs::write(path, need.to_string()).with_context(|| format!("writing {path}"))?;
            eprintln!("mesh: {path} {old} -> {need} while the mesh runs");
            saved.push((*path, old));
        }
        Ok(Self { saved })
    }
}

impl Drop for NeighbourLimit {
    fn drop(&mut self) {
        for (path, old) in self.saved.iter().rev() {
            match std::fs::write(path, old) {
                Ok(()) => eprintln!("mesh: {path} restored to {old}"),
                Err(e) => eprintln!("mesh: could not restore {path} to {old}: {e}"),
            }
        }
    }
}

/// `entries of limit`, or "unknown".
fn neighbour_note() -> String {
    neighbour_table().map_or("unknown".into(), |(n, max)| format!("{n} of {max}"))
}

/// Number of this cluster's gateway connections in state `connected`.
fn connected_cables(c: &Cluster) -> Option<usize> {
    let out = c
        .kubectl(&["-n", SYSTEM_NAMESPACE, "get", "gateways", "-o", "json"])
        .ok()?;
    let v: serde_json::Value = serde_json::from_str(&out).ok()?;
    let active = v["items"]
        .as_array()?
        .iter()
        .find(|g| g["status"]["haStatus"] == "active")?;
    let n = active["status"]["connections"]
        .as_array()?
        .iter()
        .filter(|c| c["status"] == "connected")
        .count();
    Some(n)
}

/// Member `k`'s own pod and service CIDRs in a mesh too big for the
/// sandbox's default /16s (32 clusters): two /24s in 100.127.0.0/16,
/// which is default cluster 31's service CIDR — no member uses defaults.
fn member_cidrs(n: usize, k: usize) -> Option<[String; 4]> {
    (n >= ferry_sandbox::plan::DEFAULT_CIDR_CLUSTERS as usize).then(|| {
        [
            "--pod-cidr".into(),
            format!("100.127.{k}.0/24"),
            "--service-cidr".into(),
            format!("100.127.{}.0/24", 128 + k),
        ]
    })
}

/// Creates the broker cluster and `n` one-node member clusters and joins them.
fn up(args: &Args, ferry: &Ferry, dir: &Path, n: usize) -> Result<(Cluster, Vec<Cluster>)> {
    let broker = ferry.create(&format!("{}-mk", args.prefix), 1, &[], args.keep)?;
    let info = broker.deploy_broker(dir, &[])?;
    let mut members = Vec::with_capacity(n);
    for k in 0..n {
        let cidrs = member_cidrs(n, k);
        let extra: Vec<&str> = cidrs.iter().flatten().map(String::as_str).collect();
        let c = ferry.create(&format!("{}-m{k:02}", args.prefix), 1, &extra, args.keep)?;
        c.join(&info, "wireguard")?;
        eprintln!("mesh: {} joined", c.name);
        members.push(c);
    }
    Ok((broker, members))
}

/// Mesh: `--clusters` one-node clusters, every gateway's CPU at idle.
pub fn mesh(args: &Args, ferry: &Ferry, dir: &Path, report: &mut Report) -> Result<()> {
    let n = args.clusters;
    eprintln!("--- mesh ({n} clusters) ---");
    // Declared before the clusters so it is dropped after they are deleted.
    let limit = NeighbourLimit::at_least(neighbours_needed(n))?;
    if args.keep {
        // Kept clusters still need the room after we exit.
        for (path, old) in &limit.saved {
            eprintln!("mesh: --keep: {path} stays raised; restore with: echo {old} > {path}");
        }
        std::mem::forget(limit);
    }
    let (_broker, members) = up(args, ferry, dir, n)?;
    let joined = Instant::now();
    for c in &members {
        wait_for(
            &format!("{} with {} connected cables", c.name, n - 1),
            Duration::from_secs(300),
            Duration::from_millis(500),
            || connected_cables(c).filter(|k| *k == n - 1),
        )
        .with_context(|| format!("kernel neighbour table: {} entries", neighbour_note()))?;
    }
    eprintln!(
        "mesh: all cables connected {:.1} s after the last join",
        joined.elapsed().as_secs_f64()
    );
    // Let start-up work (NAT discovery settling, first status writes) pass.
    std::thread::sleep(Duration::from_secs(5));
    let pids: Vec<i32> = members
        .iter()
        .map(|c| {
            let ns = c.node_netns(0)?;
            sys::gateway_pid(&ns).ok_or_else(|| anyhow!("no gateway in {ns}"))
        })
        .collect::<Result<_>>()?;
    let cpu0: Vec<_> = pids
        .iter()
        .map(|p| cpu_ns_by_thread(*p))
        .collect::<Result<_>>()?;
    let t0 = Instant::now();
    std::thread::sleep(args.idle);
    let cpu1: Vec<_> = pids
        .iter()
        .map(|p| cpu_ns_by_thread(*p))
        .collect::<Result<_>>()
        .context("a gateway restarted during the idle window")?;
    let secs = t0.elapsed().as_secs_f64();
    let pct = |ns: u64| ns as f64 / 1e9 / secs * 100.0;

    let mut per_gateway: Vec<f64> = Vec::new();
    let mut by_thread: BTreeMap<String, u64> = BTreeMap::new();
    for (before, after) in cpu0.iter().zip(&cpu1) {
        let mut total = 0;
        for (name, ns) in after {
            let d = ns.saturating_sub(*before.get(name).unwrap_or(&0));
            total += d;
            *by_thread.entry(name.clone()).or_default() += d;
        }
        per_gateway.push(pct(total));
    }
    per_gateway.sort_by(f64::total_cmp);
    let median = per_gateway[per_gateway.len() / 2];
    let max = per_gateway[per_gateway.len() - 1];
    let cables = (n - 1) as f64;
    for (what, v) in [("median", median), ("max", max)] {
        report.rows.push(Row {
            metric: format!("mesh {n}: CPU of a gateway, {what} of {n} (% of a core)"),
            ferry: format!("{v:.3}"),
            anchor: "-".into(),
            ratio: None,
            target: "-".into(),
            pass: None,
        });
    }
    report.rows.push(Row {
        metric: format!(
            "mesh {n}: CPU per cable, median gateway / {} cables (%)",
            n - 1
        ),
        ferry: format!("{:.4}", median / cables),
        anchor: "-".into(),
        ratio: None,
        target: format!("<= {TARGET_PCT_PER_CABLE}"),
        pass: Some(median / cables <= TARGET_PCT_PER_CABLE),
    });
    let mut threads: Vec<(String, u64)> = by_thread.into_iter().collect();
    threads.sort_by_key(|(_, ns)| std::cmp::Reverse(*ns));
    let threads: Vec<String> = threads
        .iter()
        .take(6)
        .map(|(name, ns)| format!("{name} {:.3}", pct(*ns) / n as f64))
        .collect();
    report.notes.push(format!(
        "mesh {n}: kernel neighbour table (all namespaces) {} entries",
        neighbour_note()
    ));
    report.notes.push(format!(
        "mesh {n}: over {secs:.0} s; per gateway by thread (% of a core, mean of {n}): {}; all gateways: {}",
        threads.join(", "),
        per_gateway.iter().map(|v| format!("{v:.2}")).collect::<Vec<_>>().join(" ")
    ));
    Ok(())
}
