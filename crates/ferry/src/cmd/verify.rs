//! `ferry verify`: end-to-end checks between clusters.

use std::time::{Duration, Instant};

use anyhow::Context;
use ferry_ctl::pods::Cleanup;
use ferry_ctl::verify::{self, Options, Part};

const EXAMPLES: &str = "Examples:
  ferry verify --kubeconfig east.kubeconfig,west.kubeconfig
  ferry verify --only connectivity,service-discovery --context east,west";

/// Verify the clusterset end to end with temporary test pods: pod to pod,
/// pod to a remote service, and gateway failover.
///
/// connectivity: from a pod on a non-gateway node of each cluster to a pod
/// on a non-gateway node of each other cluster, UDP echoes and a TCP echo.
/// service-discovery: each cluster exports a test Service (in
/// ferry-system); every other cluster must import it, resolve
/// <name>.ferry-system.svc.clusterset.local to its ClusterIP, and reach it
/// over TCP by ClusterIP and by name. failover: in a cluster with two or
/// more gateway nodes, the active gateway pod is restarted while a pod
/// streams UDP to another cluster; traffic must resume (skipped, with the
/// reason, when a cluster has one gateway node). Every test pod, Service
/// and ServiceExport is removed afterwards, also on failure and Ctrl-C.
/// Exit code 1 when anything fails.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Parts to run, comma-separated (default: all).
    #[arg(long, value_delimiter = ',', value_name = "PART[,PART…]")]
    only: Vec<PartArg>,
    #[command(flatten)]
    clusters: super::targets::ClusterTargets,
    /// How long a test pod may take to start and report, and an export to
    /// show up in the other clusters.
    #[arg(long, default_value = "60s", value_parser = super::errors::parse_duration)]
    timeout: Duration,
    /// How long traffic may take to resume after the gateway restart.
    #[arg(long, default_value = "30s", value_parser = super::errors::parse_duration)]
    failover_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum PartArg {
    Connectivity,
    ServiceDiscovery,
    Failover,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let parts: Vec<Part> = if args.only.is_empty() {
        Part::ALL.to_vec()
    } else {
        args.only
            .iter()
            .map(|p| match p {
                PartArg::Connectivity => Part::Connectivity,
                PartArg::ServiceDiscovery => Part::ServiceDiscovery,
                PartArg::Failover => Part::Failover,
            })
            .collect()
    };
    let specs = args.clusters.specs()?;
    let opts = Options {
        parts,
        timeout: args.timeout,
        failover_budget: args.failover_timeout,
    };
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let cleanup = Cleanup::new();
    let started = Instant::now();
    let shown = super::progress::Progress::new("");
    let progress = |line: &str| shown.line(line);
    let findings = rt.block_on(super::diagnose::until_interrupted(
        &cleanup,
        verify::verify(&specs, &opts, &cleanup, &progress),
    ));
    drop(shown);
    let findings = findings??;
    super::errors::print(&findings.render(Some(started.elapsed())))?;
    findings.check()?;
    Ok(())
}
