//! The `active-active` section (issue #19): two clusters joined with
//! `--gateway-mode active-active` (wireguard cable), three nodes each;
//! iperf3 with [`STREAMS`] parallel streams from a pod on A's node 2 to a
//! pod on B's node 2 (neither a gateway: every stream crosses the route
//! agents' vx-ferry, then a gateway, each way). Measured with one gateway
//! per cluster (the anchor: node 0) and with two (nodes 0 and 1), back to
//! back in alternating order over `--rounds`; the ratio is the median of
//! the per-round 2-gateway/1-gateway ratios, target ≥ 1.7×. Each run also
//! gives the CPU seconds per GB of ferry's processes on A's and B's nodes,
//! how busy the host was, and each gateway's share of its cluster's cable
//! bytes (from the cable devices' counters).

use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use ferry_sandbox::harness::{Cluster, Pod};

use crate::args::Args;
use crate::cluster::{Ferry, Joined, WIREGUARD_CABLE};
use crate::measure;
use crate::report::{Report, Row, median};
use crate::sys::{self, wait_for};

#[cfg(test)]
mod tests;

/// Parallel iperf3 streams: enough flows that the hash spreads them over
/// both gateways.
const STREAMS: u32 = 16;

/// Issue #19's target: 2 gateways per cluster ≥ 1.7× one.
const TARGET_RATIO: f64 = 1.7;

/// Clock ticks per second of `/proc/*/stat` and `/proc/stat` (USER_HZ:
/// 100 on every Linux architecture ferry runs on).
const USER_HZ: f64 = 100.0;

/// The route agents' routing table on non-gateway nodes.
const ROUTE_AGENT_TABLE: &str = "7100";

/// A and B with three nodes each, their broker, and the pods on node 2.
struct Setup {
    a: Cluster,
    b: Cluster,
    /// Node namespaces of A and of B, by node index.
    nodes: [[String; 3]; 2],
    from: Pod,
    to: Pod,
    /// Held so it lives (and is deleted) with the clusters; dropped last.
    _broker: Cluster,
}

/// One run's figures.
#[derive(Clone, Debug, Default)]
struct Run {
    gbps: f64,
    /// CPU seconds of ferry's processes on A's and B's nodes per GB received.
    cpu_per_gb: f64,
    /// CPU seconds of every process on the host (and the kernel's) per GB.
    host_cpu_per_gb: f64,
    /// ferry's processes' CPU during the run, in % of one core.
    ferry_busy: f64,
    /// Host CPU busy during the run, in % of one core.
    host_busy: f64,
    /// Each cluster's gateway 0 and 1 share of its cable bytes, in %.
    shares: [[f64; 2]; 2],
}

pub fn active_active(
    args: &Args,
    ferry: &Ferry,
    dir: &std::path::Path,
    report: &mut Report,
) -> Result<()> {
    eprintln!("--- active-active: 1 vs 2 gateways per cluster (wireguard) ---");
    let s = setup(args, ferry, dir)?;
    let mut runs: [Vec<Run>; 2] = [Vec::new(), Vec::new()];
    let mut gateways = 1;
    for round in 0..args.rounds {
        let order = if round % 2 == 0 { [1, 2] } else { [2, 1] };
        for n in order {
            if n != gateways {
                set_gateways(&s, n)?;
                gateways = n;
            }
            let r = measure_run(args, &s)?;
            eprintln!(
                "round {round}, {n} gateway(s) per cluster: {:.2} Gbit/s, ferry {:.1} CPU-s/GB ({:.0}% of a core), host {:.1} CPU-s/GB ({:.0}% busy), shares A {:.0}/{:.0}% B {:.0}/{:.0}% [load {}]",
                r.gbps,
                r.cpu_per_gb,
                r.ferry_busy,
                r.host_cpu_per_gb,
                r.host_busy,
                r.shares[0][0],
                r.shares[0][1],
                r.shares[1][0],
                r.shares[1][1],
                sys::loadavg()
            );
            runs[n - 1].push(r);
        }
    }
    push_rows(&runs, report);
    Ok(())
}

fn setup(args: &Args, ferry: &Ferry, dir: &std::path::Path) -> Result<Setup> {
    let prefix = format!("{}-x", args.prefix);
    let k = ferry.create(&format!("{prefix}k"), 1, &[], args.keep)?;
    let a = ferry.create(&format!("{prefix}a"), 3, &[], args.keep)?;
    let b = ferry.create(&format!("{prefix}b"), 3, &[], args.keep)?;
    let info = k.deploy_broker(dir, &[])?;
    for c in [&a, &b] {
        c.join_with(&info, "wireguard", &["--gateway-mode=active-active"])?;
        c.start_pod("p2", 2)?;
    }
    let (from, to) = (a.wait_pod("p2")?, b.wait_pod("p2")?);
    let ns = |c: &Cluster| -> Result<[String; 3]> {
        Ok([c.node_netns(0)?, c.node_netns(1)?, c.node_netns(2)?])
    };
    let nodes = [ns(&a)?, ns(&b)?];
    let s = Setup {
        a,
        b,
        nodes,
        from,
        to,
        _broker: k,
    };
    wait_ready(&s, 1)?;
    Ok(s)
}

/// Labels (2) or unlabels (1) node 1 of A and B as a gateway, and waits
/// until the data path uses exactly `n` gateways per cluster.
fn set_gateways(s: &Setup, n: usize) -> Result<()> {
    for c in [&s.a, &s.b] {
        c.set_gateway(1, n == 2)?;
    }
    wait_ready(s, n)
}

/// Waits until each cluster has `n` gateways connected to the other, the
/// route agents on node 2 route over `n` of them, and the pods ping.
fn wait_ready(s: &Setup, n: usize) -> Result<()> {
    for (c, remote, nodes) in [(&s.a, &s.b, &s.nodes[0]), (&s.b, &s.a, &s.nodes[1])] {
        wait_for(
            &format!("{n} gateway(s) of {} connected to {}", c.name, remote.name),
            Duration::from_secs(180),
            Duration::from_millis(500),
            || (connected_gateways(c, &remote.name)? == n).then_some(()),
        )?;
        wait_for(
            &format!("{}'s node 2 routing over {n} gateway(s)", c.name),
            Duration::from_secs(120),
            Duration::from_millis(200),
            || (next_hops(&nodes[2]) == n).then_some(()),
        )?;
    }
    wait_for(
        &format!("ping {} -> {}", s.from.ip, s.to.ip),
        Duration::from_secs(60),
        Duration::from_millis(50),
        || measure::ping_once(&s.from.netns, s.to.ip).then_some(()),
    )
}

/// How many of `c`'s Gateways report a connected cable to `remote`.
fn connected_gateways(c: &Cluster, remote: &str) -> Option<usize> {
    let out = c
        .kubectl(&["-n", "ferry-system", "get", "gateways", "-o", "json"])
        .ok()?;
    let v: serde_json::Value = serde_json::from_str(&out).ok()?;
    let connected = v["items"]
        .as_array()?
        .iter()
        .filter(|g| {
            g["status"]["haStatus"] == "active"
                && g["status"]["connections"].as_array().is_some_and(|cs| {
                    cs.iter()
                        .any(|x| x["clusterId"] == remote && x["status"] == "connected")
                })
        })
        .count();
    Some(connected)
}

/// Gateways the route agent of node namespace `ns` sends remote traffic
/// to: the next hops of a multipath route, or 1 for a plain one.
fn next_hops(ns: &str) -> usize {
    let Ok(table) = sys::run(
        "ip",
        &["-n", ns, "route", "show", "table", ROUTE_AGENT_TABLE],
    ) else {
        return 0;
    };
    count_next_hops(&table)
}

/// The most next hops any route of `ip route show` output has.
fn count_next_hops(table: &str) -> usize {
    let mut best = 0;
    let mut current = 0;
    for line in table.lines() {
        if line.trim_start().starts_with("nexthop") {
            current += 1;
        } else {
            current = usize::from(line.contains(" via "));
        }
        best = best.max(current);
    }
    best
}

/// One iperf3 run of [`STREAMS`] streams with the counters around it.
fn measure_run(args: &Args, s: &Setup) -> Result<Run> {
    let pids = ferry_pids(s);
    let cpu0 = cpu_seconds(&pids)?;
    let bytes0 = cable_bytes(s);
    let host0 = host_cpu()?;
    let gbps = measure::iperf(&s.from, &s.to, measure::FERRY_PORT, STREAMS, args.secs)?;
    let host1 = host_cpu()?;
    let bytes1 = cable_bytes(s);
    let cpu1 = cpu_seconds(&pids).context("a ferry process restarted during a run")?;
    let gb = gbps * f64::from(args.secs) / 8.0;
    let mut shares = [[0.0; 2]; 2];
    for (c, share) in shares.iter_mut().enumerate() {
        let moved: Vec<u64> = (0..2)
            .map(|k| bytes1[c][k].saturating_sub(bytes0[c][k]))
            .collect();
        let total = moved.iter().sum::<u64>().max(1) as f64;
        for k in 0..2 {
            share[k] = 100.0 * moved[k] as f64 / total;
        }
    }
    let (busy, all) = (host1.0 - host0.0, host1.1 - host0.1);
    Ok(Run {
        gbps,
        cpu_per_gb: (cpu1 - cpu0) / gb,
        host_cpu_per_gb: busy / USER_HZ / gb,
        ferry_busy: (cpu1 - cpu0) / f64::from(args.secs) * 100.0,
        host_busy: if all > 0.0 {
            busy / all * 100.0 * host1.2
        } else {
            0.0
        },
        shares,
    })
}

/// ferry's processes (any program named `ferry*`) on A's and B's nodes.
fn ferry_pids(s: &Setup) -> Vec<i32> {
    s.nodes
        .iter()
        .flatten()
        .flat_map(|ns| {
            sys::pids_in_netns(ns, |argv| {
                argv.first()
                    .and_then(|a| a.rsplit('/').next())
                    .is_some_and(|p| p.starts_with("ferry"))
            })
        })
        .collect()
}

/// User + system CPU seconds of `pids` so far (`/proc/PID/stat`).
fn cpu_seconds(pids: &[i32]) -> Result<f64> {
    let mut total = 0.0;
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .with_context(|| format!("reading /proc/{pid}/stat"))?;
        // Fields after the `(comm)`: state is field 3, utime 14, stime 15.
        let rest = stat
            .rsplit_once(')')
            .map(|(_, r)| r)
            .ok_or_else(|| anyhow!("/proc/{pid}/stat: no comm"))?;
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        total += (ticks(11) + ticks(12)) / USER_HZ;
    }
    Ok(total)
}

/// tx + rx bytes of the cable device on nodes 0 and 1 of A and of B (0
/// where there is none).
fn cable_bytes(s: &Setup) -> [[u64; 2]; 2] {
    let dev = |ns: &str| -> u64 {
        let Ok(out) = sys::run(
            "ip",
            &["-n", ns, "-s", "-j", "link", "show", "dev", WIREGUARD_CABLE],
        ) else {
            return 0;
        };
        let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        let st = &v[0]["stats64"];
        st["tx"]["bytes"].as_u64().unwrap_or(0) + st["rx"]["bytes"].as_u64().unwrap_or(0)
    };
    [0, 1].map(|c| [0, 1].map(|k| dev(&s.nodes[c][k])))
}

/// The host's CPU time so far from `/proc/stat`: (busy, all) in ticks, and
/// the number of CPUs.
fn host_cpu() -> Result<(f64, f64, f64)> {
    let stat = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    let fields: Vec<f64> = stat
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("cpu "))
        .ok_or_else(|| anyhow!("/proc/stat: no cpu line"))?
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    let all: f64 = fields.iter().take(8).sum();
    // idle and iowait are the 4th and 5th.
    let idle = fields.get(3).copied().unwrap_or(0.0) + fields.get(4).copied().unwrap_or(0.0);
    let cpus = stat
        .lines()
        .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
        .count() as f64;
    Ok((all - idle, all, cpus))
}

fn push_rows(runs: &[Vec<Run>; 2], report: &mut Report) {
    let fig = |n: usize, f: fn(&Run) -> f64| median(&runs[n].iter().map(f).collect::<Vec<_>>());
    let ratios: Vec<f64> = runs[1]
        .iter()
        .zip(&runs[0])
        .map(|(two, one)| two.gbps / one.gbps)
        .collect();
    let ratio = median(&ratios);
    report.rows.push(Row {
        metric: format!("active-active: iperf3 {STREAMS} streams, 2 gw vs 1 gw"),
        ferry: format!("{:.2} Gbit/s", fig(1, |r| r.gbps)),
        anchor: format!("{:.2} Gbit/s 1 gateway", fig(0, |r| r.gbps)),
        ratio: Some(ratio),
        target: format!(">= {TARGET_RATIO}x"),
        pass: Some(ratio >= TARGET_RATIO),
    });
    report.rows.push(Row {
        metric: "active-active: ferry CPU-s per GB, 2 gw vs 1 gw".into(),
        ferry: format!("{:.2}", fig(1, |r| r.cpu_per_gb)),
        anchor: format!("{:.2} 1 gateway", fig(0, |r| r.cpu_per_gb)),
        ratio: Some(fig(1, |r| r.cpu_per_gb) / fig(0, |r| r.cpu_per_gb)),
        target: "-".into(),
        pass: None,
    });
    report.rows.push(Row {
        metric: "active-active: host CPU-s per GB, 2 gw vs 1 gw".into(),
        ferry: format!("{:.2}", fig(1, |r| r.host_cpu_per_gb)),
        anchor: format!("{:.2} 1 gateway", fig(0, |r| r.host_cpu_per_gb)),
        ratio: Some(fig(1, |r| r.host_cpu_per_gb) / fig(0, |r| r.host_cpu_per_gb)),
        target: "-".into(),
        pass: None,
    });
    report.rows.push(Row {
        metric: "active-active: ferry CPU (% of a core), 2 gw vs 1 gw".into(),
        ferry: format!("{:.0}", fig(1, |r| r.ferry_busy)),
        anchor: format!("{:.0} 1 gateway", fig(0, |r| r.ferry_busy)),
        ratio: None,
        target: "-".into(),
        pass: None,
    });
    report.rows.push(Row {
        metric: "active-active: host CPU busy (% of a core), 2 gw vs 1 gw".into(),
        ferry: format!("{:.0}", fig(1, |r| r.host_busy)),
        anchor: format!("{:.0} 1 gateway", fig(0, |r| r.host_busy)),
        ratio: None,
        target: "-".into(),
        pass: None,
    });
    for (c, name) in ["A", "B"].iter().enumerate() {
        let g0 = median(&runs[1].iter().map(|r| r.shares[c][0]).collect::<Vec<_>>());
        report.rows.push(Row {
            metric: format!("active-active: {name}'s cable bytes, gateway 0 / 1 (%)"),
            ferry: format!("{g0:.0} / {:.0}", 100.0 - g0),
            anchor: "-".into(),
            ratio: None,
            target: "both > 0".into(),
            pass: Some(runs[1].iter().all(|r| r.shares[c].iter().all(|s| *s > 0.0))),
        });
    }
    report.notes.push(format!(
        "active-active: pods on node 2 (not a gateway) of A and B; per-round 2/1 ratios {}; GB = 10^9 bytes iperf3 received; ferry CPU = utime+stime of every ferry process on A's and B's nodes; host CPU (/proc/stat, not idle) counts every process and the kernel's forwarding on the box, the other sessions' too: when the host is at its cores' limit in both runs, the ratio cannot exceed host CPU-s/GB 1 gw / 2 gw; shares from the ferry-wg devices' tx+rx bytes during the runs (medians over rounds)",
        ratios
            .iter()
            .map(|r| format!("{r:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
}
