//! `ferry join`: join this cluster to the clusterset.

use std::path::PathBuf;

use anyhow::Context;
use ferry_api::{BrokerInfo, CableDriver, Cidr};
use ferry_ctl::install::{self, JoinOptions};

/// Join a cluster to the broker described by broker-info.ferry.
///
/// Checks first, changing nothing if any check fails: the id is an RFC 1123
/// label not taken on the broker; the CIDRs parse; none overlaps a CIDR of a
/// joined cluster (the error names that cluster and both CIDRs). Then mints
/// this cluster's own broker token (it may write only objects labelled with
/// this cluster's id), and applies to the cluster: CRDs, namespace
/// ferry-system, the ferry-broker Secret, ServiceAccounts and RBAC, the
/// ferry agent and ferry dns Deployments, the ferry gateway DaemonSet (nodes
/// labelled ferry.dev/gateway=true) and the ferry route-agent DaemonSet, and
/// the ClusterProperty cluster.clusterset.k8s.io = ID. Safe to re-run.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:
  ferry join broker-info.ferry --clusterid east --kubeconfig east.kubeconfig \\
      --clustercidr 100.64.0.0/16 --servicecidr 100.65.0.0/16 --gateway-node east-node1")]
pub struct Args {
    /// The broker-info.ferry written by `ferry deploy-broker`.
    broker_info: PathBuf,
    /// This cluster's id: an RFC 1123 label, unique in the clusterset.
    #[arg(long = "clusterid")]
    cluster_id: String,
    /// Kubeconfig of this cluster (default: $KUBECONFIG, ~/.kube/config, in-cluster).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Pod CIDRs, comma-separated (IPv4 and/or IPv6).
    #[arg(long = "clustercidr", value_name = "CIDR[,CIDR…]")]
    cluster_cidrs: Option<String>,
    /// Service CIDRs, comma-separated.
    #[arg(long = "servicecidr", value_name = "CIDR[,CIDR…]")]
    service_cidrs: Option<String>,
    /// Cable driver: wireguard or vxlan (default: the broker's setting).
    #[arg(long)]
    cable_driver: Option<CableDriver>,
    /// Label this node ferry.dev/gateway=true.
    #[arg(long)]
    gateway_node: Option<String>,
    /// Container image of ferry's components.
    #[arg(long, default_value_t = ferry_deploy::default_image())]
    image: String,
}

fn cidrs(flag: &str, list: Option<&str>) -> anyhow::Result<Vec<Cidr>> {
    match list {
        None => Ok(Vec::new()),
        Some(l) => Cidr::parse_list(l).with_context(|| format!("--{flag}")),
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.broker_info)
        .with_context(|| format!("reading {}", args.broker_info.display()))?;
    let info = BrokerInfo::decode(&text)
        .with_context(|| format!("reading {}", args.broker_info.display()))?;
    ferry_api::validate_cluster_id(&args.cluster_id)?;
    let opts = JoinOptions {
        cluster_id: args.cluster_id.clone(),
        cluster_cidrs: cidrs("clustercidr", args.cluster_cidrs.as_deref())?,
        service_cidrs: cidrs("servicecidr", args.service_cidrs.as_deref())?,
        cable_driver: args.cable_driver,
        gateway_node: args.gateway_node.clone(),
        image: args.image.clone(),
    };
    if opts.cluster_cidrs.is_empty() || opts.service_cidrs.is_empty() {
        eprintln!(
            "warning: without --clustercidr and --servicecidr, overlaps with other clusters cannot be checked"
        );
    }
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async {
        // Reach both APIs first, so an unreachable one or a bad token is
        // reported with its URL before anything changes.
        let local = ferry_ctl::Target::connect(&ferry_ctl::TargetSpec {
            kubeconfig: args.kubeconfig.clone(),
            context: None,
        })
        .await?;
        local.probe().await?;
        ferry_ctl::Target::broker(&info, &info.token)
            .await?
            .probe()
            .await?;
        let report = install::join(&local.client, &info, &opts).await?;
        eprintln!(
            "cluster {} {} the clusterset at {} ({} objects applied)",
            args.cluster_id,
            if report.rejoined {
                "re-joined"
            } else {
                "joined"
            },
            info.api_server_url,
            report.applied
        );
        anyhow::Ok(())
    })
}
