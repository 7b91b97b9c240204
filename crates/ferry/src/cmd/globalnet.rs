//! `ferry globalnet enable`: Globalnet in a cluster that has already joined.

use std::path::PathBuf;

use anyhow::Context;
use ferry_api::Cidr;
use ferry_ctl::install::{self, GlobalnetRequest};

/// Globalnet in a joined cluster.
#[derive(Debug, clap::Subcommand)]
pub enum Globalnet {
    /// Switch Globalnet on in a cluster that has already joined: no
    /// re-join, the other clusters are not touched.
    ///
    /// Takes a block of global addresses for the cluster on the broker
    /// (--globalnet-cidr, else a free block of the broker's pool), publishes
    /// it in the cluster's Cluster object, and restarts ferry's agent and
    /// gateways in this cluster, which then hand out global egress and
    /// ingress IPs and translate on the active gateway. Exported services
    /// then resolve to global IPs in the other clusters. Refused, with
    /// nothing changed, when the broker has no pool and no
    /// --globalnet-cidr is given, when the block overlaps a CIDR the
    /// clusterset uses, or when the pool is full. Running it again is a
    /// no-op.
    #[command(
        after_help = "Examples:\n  ferry globalnet enable --kubeconfig west.kubeconfig\n  ferry globalnet enable --globalnet-cidr 242.3.0.0/16 --kubeconfig west.kubeconfig"
    )]
    Enable(EnableArgs),
}

/// Arguments of `ferry globalnet enable`.
#[derive(Debug, clap::Args)]
pub struct EnableArgs {
    /// Kubeconfig of the cluster (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Context of the kubeconfig (default: its current context).
    #[arg(long)]
    context: Option<String>,
    /// This cluster's global CIDR (default: a free block of the broker's pool).
    #[arg(long, value_name = "CIDR")]
    globalnet_cidr: Option<Cidr>,
    /// Addresses of the block taken from the pool (default: the broker's).
    #[arg(long, value_name = "N")]
    globalnet_cluster_size: Option<u32>,
}

pub fn run(g: Globalnet) -> anyhow::Result<()> {
    let Globalnet::Enable(args) = g;
    let req = GlobalnetRequest {
        cidr: args.globalnet_cidr,
        cluster_size: args.globalnet_cluster_size,
    };
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let report = rt.block_on(async {
        let local = ferry_ctl::Target::connect(&ferry_ctl::TargetSpec {
            kubeconfig: args.kubeconfig.clone(),
            context: args.context.clone(),
        })
        .await?;
        local.probe().await?;
        anyhow::Ok(install::globalnet::enable(&local.client, &req).await?)
    })?;
    let text = if report.already_on {
        format!(
            "Globalnet is already on in cluster {} (global CIDR {}); nothing changed.\n",
            report.cluster_id, report.cidr
        )
    } else {
        format!(
            "Globalnet is on in cluster {}: global CIDR {}; its agent and gateways restart with it, \
             and its exported services resolve to global IPs in the other clusters within seconds.\n",
            report.cluster_id, report.cidr
        )
    };
    super::errors::print(&text)
}
