//! The figures, their targets and the anchor, printed.

use std::time::Duration;

use crate::Args;
use crate::observe::SyncFigures;

/// Issue #19's targets (250 clusters × 100 services).
const SYNC_TARGET: Duration = Duration::from_secs(30);
const CHANGE_P99_TARGET: Duration = Duration::from_millis(500);
/// Submariner's Lighthouse syncer is rate-limited to 10 items/s (see
/// bench/propagation): the anchor for the sync.
const SUBMARINER_ITEMS_PER_SEC: f64 = 10.0;

pub struct Outcome {
    pub sync: SyncFigures,
    pub change: Vec<Vec<Duration>>,
    pub load_before: f64,
    pub load_after: f64,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

pub fn print(args: &Args, o: &Outcome) {
    let s = &o.sync;
    let (n, m) = (args.clusters, args.services);
    println!();
    println!(
        "== ferry scale benchmark: broker + {n} members x {m} exported services ({} imports per member) ==",
        (n - 1) * m
    );
    println!(
        "load average (1 min) {:.1} before, {:.1} after, on {} cores (shared machine: other work runs too)",
        o.load_before,
        o.load_after,
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    println!(
        "sync: every member has every import in {:.2} s (median member {:.2} s)",
        s.all.as_secs_f64(),
        s.median_member.as_secs_f64()
    );
    println!(
        "  CPU: agents {:.1} s, members' API servers (this process) {:.1} s, broker {:.1} s",
        s.agents_cpu, s.members_cpu, s.broker_cpu
    );
    println!(
        "broker: RSS {:.1} MB (peak {:.1} MB), {} writes = {:.0} writes/s",
        s.broker_rss.0,
        s.broker_rss.1,
        s.broker_writes,
        s.broker_writes as f64 / s.all.as_secs_f64()
    );
    let total: u64 = s.watch_events.iter().map(|e| e.1).sum();
    println!(
        "broker watches: {} open, {total} events sent during the sync ({:.0} per agent)",
        s.broker_watches,
        total as f64 / n as f64
    );
    for (resource, events) in &s.watch_events {
        println!(
            "  {resource}: {events} events, {:.0} per agent",
            *events as f64 / n as f64
        );
    }
    print_agents(s);
    print_changes(n, &o.change);
    print_targets(args, o);
}

fn print_agents(s: &SyncFigures) {
    let rss = &s.agent_rss;
    let mut hwm: Vec<f64> = rss.iter().map(|r| r.1).collect();
    hwm.sort_by(f64::total_cmp);
    if let (Some(first), Some(last)) = (rss.first(), rss.last()) {
        println!(
            "agents' RSS: min {:.1} / median {:.1} / max {:.1} MB (peak max {:.1} MB), {:.0} MB together",
            first.0,
            rss[rss.len() / 2].0,
            last.0,
            hwm.last().copied().unwrap_or(0.0),
            rss.iter().map(|r| r.0).sum::<f64>()
        );
    }
    println!(
        "this process (the members' API servers): RSS {:.0} MB, {:.1} MB per member",
        s.this_rss,
        s.this_rss / rss.len().max(1) as f64
    );
}

fn print_changes(n: usize, change: &[Vec<Duration>]) {
    let mut all: Vec<Duration> = change.iter().flatten().copied().collect();
    all.sort();
    println!(
        "one change → all {} other members ({} changes): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        n - 1,
        change.len(),
        ms(pct(&all, 0.5)),
        ms(pct(&all, 0.99)),
        ms(pct(&all, 1.0))
    );
    for (k, lat) in change.iter().enumerate() {
        println!(
            "  change {k}: p50 {:.1} ms, p99 {:.1} ms, last {:.1} ms",
            ms(pct(lat, 0.5)),
            ms(pct(lat, 0.99)),
            ms(pct(lat, 1.0))
        );
    }
}

fn print_targets(args: &Args, o: &Outcome) {
    let (n, m) = (args.clusters, args.services);
    let mut all: Vec<Duration> = o.change.iter().flatten().copied().collect();
    all.sort();
    let p99 = pct(&all, 0.99);
    let sync = o.sync.all.as_secs_f64();
    println!();
    println!("targets (issue #19, set for 250 x 100; ratio = measured / target, <= 1 meets it):");
    println!(
        "  every import everywhere <= 30 s: {sync:.2} s (ratio {:.2}){}",
        sync / SYNC_TARGET.as_secs_f64(),
        if (n, m) == (250, 100) {
            ""
        } else {
            " — at a smaller scale than the target's"
        }
    );
    println!(
        "  one change to all others p99 <= 500 ms: {:.1} ms (ratio {:.2})",
        ms(p99),
        ms(p99) / ms(CHANGE_P99_TARGET)
    );
    let items = ((n - 1) * m * 2) as f64;
    println!(
        "  anchor: Submariner's syncer handles 10 items/s per cluster: {} imports (ServiceImport + EndpointSlice each) take >= {:.0} s per member ({:.0}x ferry's {sync:.1} s)",
        (n - 1) * m,
        items / SUBMARINER_ITEMS_PER_SEC,
        items / SUBMARINER_ITEMS_PER_SEC / sync
    );
}
