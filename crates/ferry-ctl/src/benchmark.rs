//! `ferry benchmark`: throughput and latency between two clusters, built
//! in (no iperf3 or netperf image): a `ferry tools probe serve` pod in one
//! cluster, a client pod in the other — TCP bulk transfer over N streams
//! for a set time (both directions, one after the other), or UDP echoes
//! whose round-trip times give p50/p90/p99. Pods run on the active gateway
//! nodes by default (the cable alone), or on non-gateway nodes
//! (`--non-gateway`: the whole path, through both route agents).

use std::time::Duration;

use serde::Serialize;

use crate::cluster::{self, Facts};
use crate::explain::explain_error;
use crate::pods::{self, Cleanup, PodPlan, ProbeRun, Role};
use crate::probe::spec::{EchoFormat, Probe, Task};
use crate::probe::stats::{RttSummary, summarize};
use crate::probe::{Outcome, SERVE_PORT};
use crate::show::render::fmt_duration;
use crate::table::Table;
use crate::target::{Target, TargetSpec};
use crate::{Error, Result};

/// What to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// TCP throughput, both directions.
    Throughput,
    /// UDP round-trip times.
    Latency,
}

/// How to measure.
#[derive(Clone, Debug)]
pub struct Options {
    /// What.
    pub kind: Kind,
    /// Cluster id (or position, 1-based) to measure from; default the first.
    pub from: Option<String>,
    /// Cluster id (or position) to measure to; default the other one.
    pub to: Option<String>,
    /// Pods on non-gateway nodes instead of the active gateways'.
    pub non_gateway: bool,
    /// TCP streams.
    pub streams: u32,
    /// How long each throughput direction sends.
    pub duration: Duration,
    /// Echoes for latency.
    pub count: u32,
    /// Pause between echoes.
    pub interval: Duration,
    /// How long a test pod may take to start and report.
    pub timeout: Duration,
}

/// One measured direction.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    /// Sending (or pinging) cluster.
    pub from: String,
    /// Its node.
    pub from_node: String,
    /// Receiving (or echoing) cluster.
    pub to: String,
    /// Its node.
    pub to_node: String,
    /// What was measured, or why it failed.
    pub result: std::result::Result<Measure, String>,
}

/// A measurement.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Measure {
    /// TCP throughput.
    #[serde(rename_all = "camelCase")]
    Throughput {
        /// Streams that carried data.
        streams: u32,
        /// Sending time.
        duration: Duration,
        /// Bytes received.
        bytes: u64,
        /// Bits per second.
        bits_per_second: f64,
    },
    /// UDP round trips.
    #[serde(rename_all = "camelCase")]
    Latency {
        /// Echoes sent.
        sent: u32,
        /// Echoes received.
        received: u32,
        /// Percentiles (None: nothing came back).
        rtt: Option<RttSummary>,
    },
}

/// A benchmark's results.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Results {
    /// What was measured.
    pub kind: String,
    /// `gateway` or `non-gateway`.
    pub nodes: String,
    /// One row per direction.
    pub rows: Vec<Row>,
}

impl Results {
    /// [`Error::ChecksFailed`] when a direction could not be measured.
    pub fn check(&self) -> Result<()> {
        let failed = self.rows.iter().filter(|r| r.result.is_err()).count();
        if failed == 0 {
            Ok(())
        } else {
            Err(Error::ChecksFailed {
                failed,
                total: self.rows.len(),
            })
        }
    }
}

/// `1.23 Gbit/s`, `456 Mbit/s`, `7.8 kbit/s`.
pub fn fmt_rate(bps: f64) -> String {
    let (v, unit) = if bps >= 1e9 {
        (bps / 1e9, "Gbit/s")
    } else if bps >= 1e6 {
        (bps / 1e6, "Mbit/s")
    } else if bps >= 1e3 {
        (bps / 1e3, "kbit/s")
    } else {
        (bps, "bit/s")
    };
    if v >= 100.0 {
        format!("{v:.0} {unit}")
    } else if v >= 10.0 {
        format!("{v:.1} {unit}")
    } else {
        format!("{v:.2} {unit}")
    }
}

/// The results as a table (and a line per failed direction).
pub fn render(r: &Results) -> String {
    let mut errors = Vec::new();
    let table = match r.kind.as_str() {
        "throughput" => {
            let mut t = Table::new(&[
                "FROM",
                "FROM-NODE",
                "TO",
                "TO-NODE",
                "STREAMS",
                "DURATION",
                "TRANSFERRED",
                "THROUGHPUT",
            ]);
            for row in &r.rows {
                match &row.result {
                    Ok(Measure::Throughput {
                        streams,
                        duration,
                        bytes,
                        bits_per_second,
                    }) => t.row(vec![
                        row.from.clone(),
                        row.from_node.clone(),
                        row.to.clone(),
                        row.to_node.clone(),
                        streams.to_string(),
                        format!("{:.1}s", duration.as_secs_f64()),
                        format!("{:.1} MiB", *bytes as f64 / (1024.0 * 1024.0)),
                        fmt_rate(*bits_per_second),
                    ]),
                    Ok(_) => {}
                    Err(e) => errors.push(format!("✗ {} → {}: {e}", row.from, row.to)),
                }
            }
            t
        }
        _ => {
            let mut t = Table::new(&[
                "FROM",
                "FROM-NODE",
                "TO",
                "TO-NODE",
                "SAMPLES",
                "LOSS",
                "MIN",
                "P50",
                "P90",
                "P99",
                "MAX",
            ]);
            for row in &r.rows {
                match &row.result {
                    Ok(Measure::Latency {
                        sent,
                        received,
                        rtt,
                    }) => {
                        let d = |f: fn(&RttSummary) -> Duration| {
                            rtt.as_ref()
                                .map_or_else(|| "-".to_string(), |s| fmt_duration(f(s)))
                        };
                        let loss = if *sent == 0 {
                            0.0
                        } else {
                            100.0 * f64::from(sent - received) / f64::from(*sent)
                        };
                        t.row(vec![
                            row.from.clone(),
                            row.from_node.clone(),
                            row.to.clone(),
                            row.to_node.clone(),
                            received.to_string(),
                            format!("{loss:.1}%"),
                            d(|s| s.min),
                            d(|s| s.p50),
                            d(|s| s.p90),
                            d(|s| s.p99),
                            d(|s| s.max),
                        ]);
                    }
                    Ok(_) => {}
                    Err(e) => errors.push(format!("✗ {} → {}: {e}", row.from, row.to)),
                }
            }
            t
        }
    };
    let mut out = format!(
        "{} between {} nodes\n\n",
        if r.kind == "throughput" {
            "TCP throughput"
        } else {
            "UDP round-trip time"
        },
        r.nodes
    );
    if !table.is_empty() {
        out.push_str(&table.render());
    }
    for e in errors {
        out.push_str(&e);
        out.push('\n');
    }
    out
}

struct Side {
    target: Target,
    facts: Facts,
    run: ProbeRun,
    node: String,
}

/// Picks the cluster named by `sel` (a cluster id, or a 1-based position).
fn pick(read: &[(Target, Facts)], sel: Option<&str>, not: Option<usize>) -> Result<usize> {
    match sel {
        Some(s) => {
            if let Some(i) = read.iter().position(|(_, f)| f.id() == s) {
                return Ok(i);
            }
            if let Ok(n) = s.parse::<usize>()
                && (1..=read.len()).contains(&n)
            {
                return Ok(n - 1);
            }
            Err(Error::Usage(format!(
                "no cluster {s:?} among those given ({})",
                read.iter()
                    .map(|(_, f)| f.id().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
        None => (0..read.len())
            .find(|i| Some(*i) != not)
            .ok_or_else(|| Error::Usage("give two clusters".into())),
    }
}

/// Runs the benchmark between two of `specs`.
pub async fn benchmark(
    specs: &[TargetSpec],
    opts: &Options,
    cleanup: &Cleanup,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Results> {
    crate::target::require_two(specs, "benchmark measures between clusters")?;
    let mut read = Vec::new();
    for r in futures::future::join_all(specs.iter().map(cluster::read)).await {
        read.push(r?);
    }
    let a = pick(&read, opts.from.as_deref(), None)?;
    let b = pick(&read, opts.to.as_deref(), Some(a))?;
    if a == b {
        return Err(Error::Usage("--from and --to name the same cluster".into()));
    }
    let run_id = pods::run_id();
    let side = |i: usize| -> Result<Side> {
        let (target, facts) = read[i].clone();
        let node = if opts.non_gateway {
            facts
                .non_gateway_nodes()
                .into_iter()
                .next()
                .ok_or_else(|| {
                    Error::Usage(format!("{} has no ready non-gateway node", facts.id()))
                })?
        } else {
            facts
                .active_gateway_node()
                .ok_or_else(|| Error::NotJoined {
                    what: facts.id().to_string(),
                    detail: "no gateway is active (`ferry diagnose deployment`)".into(),
                })?
        };
        Ok(Side {
            run: ProbeRun {
                id: run_id.clone(),
                image: facts.image(),
                timeout: opts.timeout,
                cleanup: cleanup.clone(),
            },
            target,
            facts,
            node,
        })
    };
    let (sa, sb) = (side(a)?, side(b)?);
    progress(&format!(
        "benchmarking {} ({}) ↔ {} ({}) (run {run_id})",
        sa.facts.id(),
        sa.node,
        sb.facts.id(),
        sb.node
    ));
    let result = measure(&sa, &sb, opts).await;
    cleanup.run().await;
    let rows = result?;
    Ok(Results {
        kind: match opts.kind {
            Kind::Throughput => "throughput".into(),
            Kind::Latency => "latency".into(),
        },
        nodes: if opts.non_gateway {
            "non-gateway".into()
        } else {
            "gateway".into()
        },
        rows,
    })
}

/// Starts a server pod on `s`'s node; its IP once ready.
async fn server(s: &Side) -> Result<String> {
    s.run.start_server(&s.target, &s.node).await
}

async fn measure(a: &Side, b: &Side, opts: &Options) -> Result<Vec<Row>> {
    let (ra, rb) = tokio::join!(pods::ensure_rbac(&a.target), pods::ensure_rbac(&b.target));
    ra?;
    rb?;
    let directions: Vec<(&Side, &Side)> = match opts.kind {
        Kind::Throughput => vec![(a, b), (b, a)],
        Kind::Latency => vec![(a, b)],
    };
    let (ip_a, ip_b) = match opts.kind {
        Kind::Throughput => {
            let (x, y) = tokio::join!(server(a), server(b));
            (Some(x?), y?)
        }
        Kind::Latency => (None, server(b).await?),
    };
    let mut rows = Vec::new();
    for (k, (from, to)) in directions.into_iter().enumerate() {
        let ip = if std::ptr::eq(to, b) {
            ip_b.clone()
        } else {
            ip_a.clone().unwrap_or_default()
        };
        let target = format!("{ip}:{SERVE_PORT}");
        let probe = match opts.kind {
            Kind::Throughput => Probe::Throughput {
                target,
                streams: opts.streams.max(1),
                duration_ms: u64::try_from(opts.duration.as_millis()).unwrap_or(5000),
            },
            Kind::Latency => Probe::Echo {
                target,
                count: opts.count.max(1),
                interval_ms: u64::try_from(opts.interval.as_millis()).unwrap_or(2),
                timeout_ms: 1000,
                size: 64,
                format: EchoFormat::Raw,
            },
        };
        let plan = PodPlan {
            name: from.run.pod_name(Role::Client, &k.to_string()),
            node: from.node.clone(),
            role: Role::Client,
            tasks: vec![Task {
                id: "bench".into(),
                probe,
            }],
        };
        let report = from.run.run_to_report(&from.target, &plan).await;
        let result = match report {
            Err(e) => Err(explain_error(&e).message),
            Ok(r) => match r.get("bench") {
                Some(Outcome::Throughput(t)) => Ok(Measure::Throughput {
                    streams: t.streams,
                    duration: Duration::from_micros(t.elapsed_us),
                    bytes: t.bytes,
                    bits_per_second: t.bits_per_second(),
                }),
                Some(Outcome::Echo(e)) if e.received > 0 => Ok(Measure::Latency {
                    sent: e.sent,
                    received: e.received,
                    rtt: summarize(&e.rtt_us),
                }),
                Some(Outcome::Echo(e)) => Err(format!(
                    "none of {} echoes came back: run `ferry diagnose connections`",
                    e.sent
                )),
                Some(Outcome::Error { message }) => Err(message.clone()),
                _ => Err("the test pod did not measure".into()),
            },
        };
        rows.push(Row {
            from: from.facts.id().to_string(),
            from_node: from.node.clone(),
            to: to.facts.id().to_string(),
            to_node: to.node.clone(),
            result,
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn row(from: &str, to: &str, result: std::result::Result<Measure, String>) -> Row {
        Row {
            from: from.into(),
            from_node: format!("{from}-node0"),
            to: to.into(),
            to_node: format!("{to}-node0"),
            result,
        }
    }

    #[test]
    fn throughput_table() {
        let r = Results {
            kind: "throughput".into(),
            nodes: "gateway".into(),
            rows: vec![
                row(
                    "east",
                    "west",
                    Ok(Measure::Throughput {
                        streams: 4,
                        duration: Duration::from_millis(3012),
                        bytes: 1_180_000_000,
                        bits_per_second: 3.134e9,
                    }),
                ),
                row("west", "east", Err("test pod x: ErrImagePull".into())),
            ],
        };
        insta::assert_snapshot!(render(&r));
        assert!(r.check().is_err());
    }

    #[test]
    fn latency_table() {
        let samples: Vec<u64> = (1..=200).map(|i| 300 + i * 5).collect();
        let r = Results {
            kind: "latency".into(),
            nodes: "non-gateway".into(),
            rows: vec![row(
                "east",
                "west",
                Ok(Measure::Latency {
                    sent: 202,
                    received: 200,
                    rtt: summarize(&samples),
                }),
            )],
        };
        insta::assert_snapshot!(render(&r));
        assert!(r.check().is_ok());
    }

    #[test]
    fn rates_read_like_iperf() {
        assert_eq!(fmt_rate(3.134e9), "3.13 Gbit/s");
        assert_eq!(fmt_rate(456.7e6), "457 Mbit/s");
        assert_eq!(fmt_rate(45.67e6), "45.7 Mbit/s");
        assert_eq!(fmt_rate(7_800.0), "7.80 kbit/s");
        assert_eq!(fmt_rate(12.0), "12.0 bit/s");
    }
}
