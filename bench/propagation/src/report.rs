//! The benchmark's report: one row per run, the ClusterSet IP latencies,
//! the cost of ClusterSet IPs (ratio of the runs with and without, same
//! count, same process) and the targets at 10k (and 1k) services.

use std::time::Duration;

use crate::{Outcome, pct};

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn on_off(vips: bool) -> &'static str {
    if vips { "on" } else { "off" }
}

/// Prints the report of `results` to stdout.
pub fn print(results: &[Outcome]) {
    println!();
    println!("== ferry propagation benchmark (3 clusters + broker, loopback ferry apiservers) ==");
    println!(
        "{:>8} {:>4} {:>9} {:>10} {:>14} {:>9} {:>9} {:>9} {:>16} {:>16}",
        "services",
        "VIPs",
        "slices",
        "full-sync",
        "CPU agents/API",
        "p50",
        "p99",
        "max",
        "agent-A RSS/HWM",
        "agent-B RSS/HWM"
    );
    for r in results {
        println!(
            "{:>8} {:>4} {:>7.2} s {:>8.2} s {:>6.1}/{:>5.1} s {:>6.1} ms {:>6.1} ms {:>6.1} ms {:>7.1}/{:<7.1}MB {:>7.1}/{:<7.1}MB",
            r.n,
            on_off(r.vips),
            r.slices_synced.as_secs_f64(),
            r.initial_sync.as_secs_f64(),
            r.agent_cpu,
            r.servers_cpu,
            ms(pct(&r.flips, 0.5)),
            ms(pct(&r.flips, 0.99)),
            ms(r.flips.last().copied().unwrap_or_default()),
            r.rss_a.0,
            r.rss_a.1,
            r.rss_b.0,
            r.rss_b.1
        );
    }
    println!(
        "(slices: B and C hold every imported EndpointSlice; full-sync: also every ServiceImport's status (and, VIPs on, its ClusterSet IP) and every export Ready; CPU: seconds the three agents / the four API servers used until full sync; p50/p99/max: an EndpointSlice change in A seen in B)"
    );
    print_vip_latency(results);
    print_vip_cost(results);
    print_targets(results);
}

fn print_vip_latency(results: &[Outcome]) {
    let with: Vec<&Outcome> = results.iter().filter(|r| !r.vip.is_empty()).collect();
    if with.is_empty() {
        return;
    }
    println!();
    println!("ClusterSet IP: a new ServiceExport in A → routed and answered in B");
    println!(
        "{:>8} {:>8} {:>9} {:>9} {:>9}",
        "services", "samples", "p50", "p99", "max"
    );
    for r in with {
        println!(
            "{:>8} {:>8} {:>6.1} ms {:>6.1} ms {:>6.1} ms",
            r.n,
            r.vip.len(),
            ms(pct(&r.vip, 0.5)),
            ms(pct(&r.vip, 0.99)),
            ms(r.vip.last().copied().unwrap_or_default())
        );
    }
    println!(
        "(routed: B's ServiceImport has the IP, B's derived Service has it as ClusterIP, the import's EndpointSlice is labelled for that Service with A's endpoint ready; answered: ferry dns on B answers the name with it)"
    );
}

/// The runs with and without ClusterSet IPs of each count, side by side.
fn pairs(results: &[Outcome]) -> impl Iterator<Item = (&Outcome, &Outcome)> {
    results.iter().filter(|r| !r.vips).filter_map(|off| {
        results
            .iter()
            .find(|on| on.vips && on.n == off.n)
            .map(|on| (off, on))
    })
}

fn print_vip_cost(results: &[Outcome]) {
    let mut header = false;
    for (off, on) in pairs(results) {
        if !header {
            println!();
            println!(
                "cost of ClusterSet IPs (ratio on/off, same count, back to back; ≤ 1.10 meets the target):"
            );
            header = true;
        }
        println!(
            "  {:>6} services: full sync {:.2} s / {:.2} s = {:.2}; agent-A RSS {:.1} / {:.1} MB = {:.2}; agent-B RSS {:.1} / {:.1} MB = {:.2}",
            off.n,
            on.initial_sync.as_secs_f64(),
            off.initial_sync.as_secs_f64(),
            on.initial_sync.as_secs_f64() / off.initial_sync.as_secs_f64().max(1e-9),
            on.rss_a.0,
            off.rss_a.0,
            on.rss_a.0 / off.rss_a.0.max(1e-9),
            on.rss_b.0,
            off.rss_b.0,
            on.rss_b.0 / off.rss_b.0.max(1e-9),
        );
    }
}

fn print_targets(results: &[Outcome]) {
    if let Some(r) = results.iter().find(|r| r.n == 10_000 && !r.vips) {
        println!();
        println!("targets at 10k services, VIPs off (ratio = measured / target, ≤ 1 meets it):");
        println!(
            "  initial (full) sync ≤ 10 s: {:.2} s (ratio {:.2})",
            r.initial_sync.as_secs_f64(),
            r.initial_sync.as_secs_f64() / 10.0
        );
        let p99 = ms(pct(&r.flips, 0.99));
        println!("  p99 ≤ 100 ms: {p99:.1} ms (ratio {:.2})", p99 / 100.0);
        let rss = r.rss_a.1.max(r.rss_b.1);
        println!(
            "  agent RSS ≤ 100 MB (peak): {rss:.1} MB (ratio {:.2})",
            rss / 100.0
        );
        println!(
            "  anchor: Submariner's syncer is rate-limited to 10 items/s — 10k slices would take ≥ 1000 s"
        );
    }
    if let Some(r) = results.iter().find(|r| r.n == 1_000 && !r.vip.is_empty()) {
        let p99 = ms(pct(&r.vip, 0.99));
        println!(
            "  ClusterSet IP routed and answered at 1k services, p99 ≤ 200 ms: {p99:.1} ms (ratio {:.2})",
            p99 / 200.0
        );
    }
}
