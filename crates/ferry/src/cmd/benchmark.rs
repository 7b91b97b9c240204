//! `ferry benchmark`: throughput and latency between clusters.

use std::time::Duration;

use anyhow::Context;
use ferry_ctl::benchmark::{self, Kind, Options};
use ferry_ctl::pods::Cleanup;

const EXAMPLES: &str = "Examples:
  ferry benchmark throughput --kubeconfig east.kubeconfig,west.kubeconfig
  ferry benchmark latency --context east,west --non-gateway
  ferry benchmark throughput --kubeconfig a.kc,b.kc --from west --to east --streams 4 --duration 10s";

/// Measure TCP throughput or UDP round-trip times between two clusters,
/// with built-in test pods (no iperf3 image needed).
///
/// throughput: a TCP sender pod in one cluster and a receiver pod in the
/// other, --streams connections for --duration, then the same the other
/// way; the receiver's byte count gives the rate. latency: --count UDP
/// echoes, one every --interval; the table shows loss and the
/// min/p50/p90/p99/max round-trip time. Pods run on the active gateway
/// nodes (the cable alone), or with --non-gateway on ordinary nodes (the
/// whole path through the route agents). The test pods are removed
/// afterwards, also on failure and Ctrl-C.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// What to measure.
    #[arg(value_enum)]
    what: What,
    #[command(flatten)]
    clusters: super::targets::ClusterTargets,
    /// Cluster to measure from (cluster id, or 1-based position; default
    /// the first given).
    #[arg(long)]
    from: Option<String>,
    /// Cluster to measure to (default: the other one).
    #[arg(long)]
    to: Option<String>,
    /// Run the pods on non-gateway nodes instead of the active gateways'.
    #[arg(long)]
    non_gateway: bool,
    /// TCP streams (throughput).
    #[arg(long, default_value_t = 1)]
    streams: u32,
    /// How long each direction sends (throughput).
    #[arg(long, default_value = "3s", value_parser = super::errors::parse_duration)]
    duration: Duration,
    /// Echoes (latency).
    #[arg(long, default_value_t = 500)]
    count: u32,
    /// Pause between echoes (latency).
    #[arg(long, default_value = "2ms", value_parser = super::errors::parse_duration)]
    interval: Duration,
    /// How long a test pod may take to start and report (image pulls).
    #[arg(long, default_value = "60s", value_parser = super::errors::parse_duration)]
    timeout: Duration,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Table)]
    output: Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum What {
    Throughput,
    Latency,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Output {
    Table,
    Json,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let specs = args.clusters.specs()?;
    let opts = Options {
        kind: match args.what {
            What::Throughput => Kind::Throughput,
            What::Latency => Kind::Latency,
        },
        from: args.from,
        to: args.to,
        non_gateway: args.non_gateway,
        streams: args.streams,
        duration: args.duration,
        count: args.count,
        interval: args.interval,
        timeout: args.timeout,
    };
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let cleanup = Cleanup::new();
    let shown = super::progress::Progress::new("");
    let progress = |line: &str| shown.line(line);
    let results = rt.block_on(super::diagnose::until_interrupted(
        &cleanup,
        benchmark::benchmark(&specs, &opts, &cleanup, &progress),
    ));
    drop(shown);
    let results = results??;
    let text = match args.output {
        Output::Table => benchmark::render(&results),
        Output::Json => serde_json::to_string_pretty(&results)? + "\n",
    };
    super::errors::print(&text)?;
    results.check()?;
    Ok(())
}
