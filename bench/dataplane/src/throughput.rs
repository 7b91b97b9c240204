//! The `wireguard`, `vxlan` and `ipsec` sections: throughput and RTT of
//! ferry's cable against an anchor tunnel between the same gateway
//! namespaces.

use std::time::Duration;

use anyhow::{Result, bail};

use crate::anchor::{self, Anchor, End};
use crate::args::Args;
use crate::cluster::{Pair, cable};
use crate::measure::{self, Sample};
use crate::report::{Report, Row, median};
use crate::sys::{self, wait_for};

fn show(s: &Sample) -> String {
    format!(
        "1 stream {:.2} Gbit/s, 4 streams {:.2} Gbit/s, RTT {:.3} ms ({}% loss)",
        s.s1, s.s4, s.rtt, s.loss
    )
}

/// A figure of a [`Sample`]: name, getter, unit, whether the ratio has a target.
type Metric = (&'static str, fn(&Sample) -> f64, &'static str, bool);

const METRICS: &[Metric] = &[
    ("iperf3 1 stream", |s| s.s1, "Gbit/s", true),
    ("iperf3 4 streams", |s| s.s4, "Gbit/s", true),
    ("ping RTT avg", |s| s.rtt, "ms", false),
];

/// Which tunnel a run goes through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
    Ferry,
    Anchor,
}

/// The two tunnels between the pair's gateway nodes, side by side.
struct Paths<'a> {
    pair: &'a Pair,
    anchor: &'a Anchor,
    kind: anchor::Kind,
}

impl Paths<'_> {
    /// Runs `f` through `via` and checks with the tx counters of A's gateway
    /// devices that the traffic went that way: at least `min_packets` on
    /// that tunnel's device, and (for ferry's runs) next to nothing on the
    /// anchor's, which carries nothing else.
    fn run<T>(&self, via: Via, min_packets: u64, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let ns = &self.pair.a_nodes[0];
        let (fdev, adev) = (cable(self.pair), self.anchor.dev(0));
        let (f0, a0) = (sys::tx_counters(ns, fdev)?.1, sys::tx_counters(ns, adev)?.1);
        let v = f()?;
        let (f1, a1) = (sys::tx_counters(ns, fdev)?.1, sys::tx_counters(ns, adev)?.1);
        let (df, da) = (f1.saturating_sub(f0), a1.saturating_sub(a0));
        let (on, dev) = match via {
            Via::Ferry => (df, fdev),
            Via::Anchor => (da, adev),
        };
        if on < min_packets || (via == Via::Ferry && da * 10 > min_packets) {
            bail!(
                "a {via:?} run did not take its tunnel: {df} packets out of {fdev}, {da} out of {adev} (wanted >= {min_packets} on {dev})"
            );
        }
        Ok(v)
    }

    fn iperf(&self, via: Via, streams: u32, secs: u32) -> Result<f64> {
        let (from, to) = (&self.pair.a_pods[0], &self.pair.b_pods[0]);
        let port = match via {
            Via::Ferry => measure::FERRY_PORT,
            Via::Anchor => anchor::PORT,
        };
        self.run(via, 1000, || measure::iperf(from, to, port, streams, secs))
    }

    fn ping(&self, via: Via, count: u32) -> Result<(f64, f64)> {
        let (from, to) = (&self.pair.a_pods[0], &self.pair.b_pods[0]);
        let tos = (via == Via::Anchor).then_some(anchor::TOS);
        self.run(via, u64::from(count) * 9 / 10, || {
            measure::ping(from, to.ip, count, tos)
        })
    }

    fn label(&self, via: Via) -> &'static str {
        match via {
            Via::Ferry => "ferry",
            Via::Anchor => self.kind.label(),
        }
    }
}

/// Throughput and RTT of ferry's cable and of the anchor `kind` between the
/// same gateway namespaces and pods, each figure measured on both back to
/// back (the order alternating). Returns the ratio (median of the per-round
/// ferry/anchor ratios) of each of [`METRICS`], in that order.
pub fn throughput(
    args: &Args,
    pair: &Pair,
    kind: anchor::Kind,
    report: &mut Report,
) -> Result<Vec<(&'static str, f64)>> {
    let driver = pair.driver.as_str();
    eprintln!("--- {driver}: ferry vs {} ---", kind.label());
    let ends = [
        End::of(
            &pair.a_nodes[0],
            vec![pair.a.pod_cidr.clone(), pair.a.service_cidr.clone()],
        )?,
        End::of(
            &pair.b_nodes[0],
            vec![pair.b.pod_cidr.clone(), pair.b.service_cidr.clone()],
        )?,
    ];
    let (from, to) = (&pair.a_pods[0], &pair.b_pods[0]);
    let (from1, to1) = (&pair.a_pods[1], &pair.b_pods[1]);
    pair.wait_path(Duration::from_secs(60))?;
    let anchor = Anchor::up(kind, ends, &args.tag())?;
    wait_for(
        &format!("a ping over {}", kind.label()),
        Duration::from_secs(30),
        Duration::from_millis(10),
        || measure::ping_once_tos(&from.netns, to.ip, Some(anchor::TOS)).then_some(()),
    )?;
    let paths = Paths {
        pair,
        anchor: &anchor,
        kind,
    };
    // Pods on the other nodes go through the route agent's vx-ferry.
    let non_gateway = wait_for(
        "a ping between the non-gateway pods",
        Duration::from_secs(5),
        Duration::from_millis(50),
        || measure::ping_once(&from1.netns, to1.ip).then_some(()),
    )
    .is_ok();
    if !non_gateway {
        report.notes.push(format!(
            "{driver}: no ping from {}/{} on {} to {}/{} on {} (non-gateway nodes, via the route agent): measured between gateway-node pods only",
            pair.a.name, from1.name, from1.node, pair.b.name, to1.name, to1.node
        ));
    }
    let (mut fe, mut an, mut ng) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..args.rounds {
        let mut s = [Sample::default(), Sample::default()];
        for metric in 0..3 {
            let order = if (round + metric) % 2 == 0 {
                [Via::Ferry, Via::Anchor]
            } else {
                [Via::Anchor, Via::Ferry]
            };
            for via in order {
                let x = &mut s[usize::from(via == Via::Anchor)];
                match metric {
                    0 => x.s1 = paths.iperf(via, 1, args.secs)?,
                    1 => x.s4 = paths.iperf(via, 4, args.secs)?,
                    _ => (x.rtt, x.loss) = paths.ping(via, args.pings)?,
                }
            }
        }
        for (via, x) in [Via::Ferry, Via::Anchor].into_iter().zip(&s) {
            eprintln!(
                "round {round} {} ({driver} pair): {} [load {}]",
                paths.label(via),
                show(x),
                sys::loadavg()
            );
        }
        fe.push(s[0]);
        an.push(s[1]);
        if non_gateway {
            match measure::iperf(from1, to1, measure::FERRY_PORT, 1, args.secs).and_then(|s1| {
                let s4 = measure::iperf(from1, to1, measure::FERRY_PORT, 4, args.secs)?;
                let (rtt, loss) = measure::ping(from1, to1.ip, args.pings, None)?;
                Ok(Sample { s1, s4, rtt, loss })
            }) {
                Ok(x) => {
                    eprintln!(
                        "round {round} ferry {driver}, non-gateway pods: {} [load {}]",
                        show(&x),
                        sys::loadavg()
                    );
                    ng.push(x);
                }
                Err(e) => eprintln!("round {round} non-gateway pods: {e:#}"),
            }
        }
    }
    drop(anchor);

    let target = match (kind, driver) {
        // Issue #15: IPsec ≥ 0.8× ferry's WireGuard, whose target is 4×.
        (anchor::Kind::WireguardGo, "ipsec") => 3.2,
        (anchor::Kind::WireguardGo, _) => 4.0,
        (anchor::Kind::Vxlan, _) => 0.9,
    };
    let mut ratios = Vec::new();
    let pick = |v: &[Sample], f: fn(&Sample) -> f64| median(&v.iter().map(f).collect::<Vec<_>>());
    for &(name, f, unit, has_target) in METRICS {
        let (x, y) = (pick(&fe, f), pick(&an, f));
        // The ratio is the median of each round's ferry/anchor ratio: the
        // two ran back to back, so load that drifts between rounds cancels.
        let per_round: Vec<f64> = fe.iter().zip(&an).map(|(a, b)| f(a) / f(b)).collect();
        let ratio = median(&per_round);
        ratios.push((name, ratio));
        report.notes.push(format!(
            "{driver}: {name}: per-round ferry/{} ratios {}",
            kind.label(),
            per_round
                .iter()
                .map(|r| format!("{r:.2}"))
                .collect::<Vec<_>>()
                .join(" ")
        ));
        report.rows.push(Row {
            metric: format!("{driver}: {name} ({unit})"),
            ferry: format!("{x:.3}"),
            anchor: format!("{y:.3} {}", kind.label()),
            ratio: Some(ratio),
            target: if has_target {
                format!(">= {target}x")
            } else {
                "-".into()
            },
            pass: has_target.then_some(ratio >= target),
        });
    }
    if !ng.is_empty() {
        for &(name, f, unit, _) in METRICS {
            report.rows.push(Row {
                metric: format!("{driver}: {name}, non-gateway pods ({unit})"),
                ferry: format!("{:.3}", pick(&ng, f)),
                anchor: "-".into(),
                ratio: None,
                target: "-".into(),
                pass: None,
            });
        }
    }
    Ok(ratios)
}
