//! The result table: one row a figure, ferry against its anchor and target,
//! and the notes printed under it.

use std::time::Duration;

use crate::args::Args;

/// Published anchors (shared/reference/anchors.md): Submariner needs ≥5 s
/// (5 health checks of 1 s) to declare a connection down; its Lease is 15 s.
pub const SUBMARINER_DOWN: Duration = Duration::from_secs(5);

/// One line of the result table.
pub struct Row {
    pub metric: String,
    pub ferry: String,
    pub anchor: String,
    /// ferry / anchor.
    pub ratio: Option<f64>,
    pub target: String,
    pub pass: Option<bool>,
}

#[derive(Default)]
pub struct Report {
    pub rows: Vec<Row>,
    pub notes: Vec<String>,
}

impl Report {
    pub fn print(&self, args: &Args, load: (&str, &str), elapsed: Duration) {
        println!();
        println!(
            "== ferry data plane vs anchors: sandbox clusters, pod -> pod across clusters ({:.0} s) ==",
            elapsed.as_secs_f64()
        );
        println!(
            "iperf3 {} s per run, {} pings at 10 ms, {} rounds (ferry and anchor back to back, order alternating); {} kills; {} cable cuts; probe every {} ms",
            args.secs,
            args.pings,
            args.rounds,
            args.kills,
            args.cuts,
            args.interval.as_millis()
        );
        println!(
            "load average (1/5/15 min): start {}, end {}",
            load.0, load.1
        );
        println!(
            "{:<56} {:>10} {:>26} {:>7} {:>9} {:>6}",
            "metric", "ferry", "anchor", "ratio", "target", "result"
        );
        for r in &self.rows {
            println!(
                "{:<56} {:>10} {:>26} {:>7} {:>9} {:>6}",
                r.metric,
                r.ferry,
                r.anchor,
                r.ratio.map_or("-".into(), |x| format!("{x:.2}x")),
                r.target,
                match r.pass {
                    Some(true) => "PASS",
                    Some(false) => "FAIL",
                    None => "-",
                }
            );
        }
        for n in &self.notes {
            println!("note: {n}");
        }
    }
}

/// Rows ipsec/wireguard: each figure's ratio to wireguard-go on the ipsec
/// pair over the same on the wireguard pair (same anchor, same run, so the
/// anchor cancels out). Issue #15's targets: throughput ≥ 0.8× ferry's
/// WireGuard, RTT ≤ 1.1×.
pub fn vs_wireguard(report: &mut Report, ipsec: &[(&str, f64)], wireguard: &[(&str, f64)]) {
    for ((name, ip), (_, wg)) in ipsec.iter().zip(wireguard) {
        let ratio = ip / wg;
        let (target, pass) = if name.starts_with("ping") {
            ("<= 1.1x", ratio <= 1.1)
        } else {
            (">= 0.8x", ratio >= 0.8)
        };
        report.rows.push(Row {
            metric: format!("ipsec vs ferry wireguard: {name} (ratio)"),
            ferry: format!("{ip:.2}x"),
            anchor: format!("{wg:.2}x ferry wireguard"),
            ratio: Some(ratio),
            target: target.into(),
            pass: Some(pass),
        });
    }
}

pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

pub fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NAN, f64::max)
}
