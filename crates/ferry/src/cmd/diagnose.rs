//! `ferry diagnose`: find what is broken, with real traffic.

use std::time::{Duration, Instant};

use anyhow::Context;
use ferry_ctl::diagnose::{self, Check, Options};
use ferry_ctl::pods::Cleanup;

const EXAMPLES: &str = "Examples:
  ferry diagnose all
  ferry diagnose connections --kubeconfig east.kubeconfig,west.kubeconfig
  ferry diagnose host-network --kubeconfig east.kubeconfig,west.kubeconfig
  ferry diagnose service-discovery --context east";

/// Check a cluster's ferry installation and its paths to the other
/// clusters with real traffic; print PASS/WARN/FAIL lines with hints.
///
/// Checks: k8s-version (the API server is recent enough); cni (the CNI
/// its objects show — kube-ovn, Calico, flannel, or one ferry cannot drive
/// such as Cilium — against the one join recorded, which chooses the route
/// agent's handler); kube-proxy-mode (the mode in kube-system/kube-proxy);
/// deployment
/// (ferry's Deployments and DaemonSets are ready, a gateway node is
/// labelled, one gateway is active); cidr-overlap (this cluster's pod and
/// service CIDRs against every other cluster's, and the addresses its pods
/// and Services really have against the declared CIDRs); connections (from
/// a temporary pod on a non-gateway node: UDP probes through the cable to
/// every remote gateway's health-check address — and to a pod in the
/// remote cluster when it is diagnosed too — judged together with the
/// gateway's status); host-network (the same from a host-network pod on
/// that node — its traffic leaves from the node's address inside the pod
/// CIDR, annotation ferry.dev/cni-iface-ip — plus TCP, as a kubelet probe
/// connects); /// nat-discovery (what the active gateway's own probes on UDP 4490 found
/// towards each remote gateway: which address answers, NAT on the way, or
/// that UDP is blocked); firewall (a packet sniffer on the active gateway
/// node watches its cable port for the remote gateways' traffic, or for
/// test datagrams sent from the remote gateway node when that cluster is
/// diagnosed too); mtu (a don't-fragment packet bigger than the cable MTU
/// is answered with 'fragmentation needed', not black-holed; with the
/// remote cluster too, cable-MTU packets and a TCP transfer cross);
/// service-discovery (through the cluster DNS: the clusterset zone reaches
/// ferry dns, unknown names get NXDOMAIN at once, and every ServiceImport
/// resolves to what it says).
///
/// Test pods run ferry's image in ferry-system (ServiceAccount
/// ferry-probe) and are removed at the end, also on failure and Ctrl-C.
/// Exit code 1 when any check fails.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// What to check.
    #[arg(value_enum, default_value_t = What::All)]
    what: What,
    #[command(flatten)]
    clusters: super::targets::ClusterTargets,
    /// How long a test pod may take to start and report (image pulls).
    #[arg(long, default_value = "60s", value_parser = super::errors::parse_duration)]
    timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum What {
    All,
    Connections,
    HostNetwork,
    Deployment,
    Firewall,
    ServiceDiscovery,
    CidrOverlap,
    K8sVersion,
    Cni,
    KubeProxyMode,
    Mtu,
    NatDiscovery,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let checks = match args.what {
        What::All => Check::ALL.to_vec(),
        What::Connections => vec![Check::Connections],
        What::HostNetwork => vec![Check::HostNetwork],
        What::Deployment => vec![Check::Deployment],
        What::Firewall => vec![Check::Firewall],
        What::ServiceDiscovery => vec![Check::ServiceDiscovery],
        What::CidrOverlap => vec![Check::CidrOverlap],
        What::K8sVersion => vec![Check::K8sVersion],
        What::Cni => vec![Check::Cni],
        What::KubeProxyMode => vec![Check::KubeProxyMode],
        What::Mtu => vec![Check::Mtu],
        What::NatDiscovery => vec![Check::NatDiscovery],
    };
    let specs = args.clusters.specs()?;
    let opts = Options {
        checks,
        timeout: args.timeout,
    };
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let cleanup = Cleanup::new();
    let started = Instant::now();
    let progress = |line: &str| eprintln!("{line}");
    let findings = rt.block_on(until_interrupted(
        &cleanup,
        diagnose::diagnose(&specs, &opts, &cleanup, &progress),
    ))?;
    super::errors::print(&findings.render(Some(started.elapsed())))?;
    findings.check()?;
    Ok(())
}

/// Runs `work`; on Ctrl-C or SIGTERM, removes what `cleanup` holds and
/// fails with `Interrupted`.
pub async fn until_interrupted<T>(
    cleanup: &Cleanup,
    work: impl std::future::Future<Output = T>,
) -> anyhow::Result<T> {
    tokio::select! {
        r = work => Ok(r),
        _ = ferry_kube::shutdown_signal() => {
            eprintln!("interrupted: removing the test pods");
            cleanup.run().await;
            Err(ferry_ctl::Error::Interrupted.into())
        }
    }
}
