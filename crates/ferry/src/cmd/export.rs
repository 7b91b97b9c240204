//! `ferry export service` and `ferry unexport service`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use ferry_ctl::{Target, TargetSpec};

/// Export a Service to the clusterset.
#[derive(Debug, clap::Subcommand)]
pub enum Export {
    /// Export a Service: other clusters then reach it as
    /// NAME.NAMESPACE.svc.clusterset.local.
    ///
    /// Creates the Service's MCS ServiceExport (keeping one that exists),
    /// then waits up to --wait for `ferry agent` to validate and publish it,
    /// and prints its conditions: Valid (the Service exists and can be
    /// exported), Ready (published to the broker), Conflict (its ports or
    /// type differ from another cluster's export of the same name; the
    /// oldest export wins). Fails if the Service does not exist, is of type
    /// ExternalName, or the agent finds the export invalid.
    #[command(
        after_help = "Examples:\n  ferry export service nginx -n nginx-test\n  ferry export service db -n data --wait 30s --kubeconfig east.kubeconfig"
    )]
    Service(ServiceArgs),
}

/// Stop exporting a Service.
#[derive(Debug, clap::Subcommand)]
pub enum Unexport {
    /// Stop exporting a Service: deletes its ServiceExport; within seconds
    /// other clusters stop resolving it to this cluster. Fails if the Service
    /// is not exported.
    #[command(after_help = "Example:\n  ferry unexport service nginx -n nginx-test")]
    Service(ServiceArgs),
}

/// Which Service, in which cluster.
#[derive(Debug, clap::Args)]
pub struct ServiceArgs {
    /// Name of the Service.
    name: String,
    /// Namespace of the Service (default: the kubeconfig context's, else `default`).
    #[arg(short = 'n', long)]
    namespace: Option<String>,
    /// Kubeconfig of the cluster (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Context of the kubeconfig (default: its current context).
    #[arg(long)]
    context: Option<String>,
    /// Export only: how long to wait for the agent's conditions (0 = do not wait).
    #[arg(long, default_value = "5s", value_parser = super::errors::parse_duration)]
    wait: Duration,
    /// Export only: importing clusters give the service a clusterset IP,
    /// also in a clusterset whose default is off (`deploy-broker
    /// --enable-clusterset-ip` turns it on for every export; Submariner's
    /// flag). Annotation `ferry.dev/clusterset-ip: "true"`.
    #[arg(long, conflicts_with = "no_clusterset_ip")]
    use_clusterset_ip: bool,
    /// Export only: no clusterset IP; importing clusters resolve the name to
    /// an exporting cluster's own service IP (annotation
    /// `ferry.dev/clusterset-ip: "false"`).
    #[arg(long)]
    no_clusterset_ip: bool,
}

impl ServiceArgs {
    /// The clusterset-IP choice the flags make, if any.
    fn clusterset_ip(&self) -> Option<bool> {
        match (self.use_clusterset_ip, self.no_clusterset_ip) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        }
    }
}

async fn target(a: &ServiceArgs) -> anyhow::Result<(Target, String)> {
    let t = Target::connect(&TargetSpec {
        kubeconfig: a.kubeconfig.clone(),
        context: a.context.clone(),
    })
    .await?;
    let ns = a.namespace.clone().unwrap_or_else(|| t.namespace.clone());
    Ok((t, ns))
}

pub fn run_export(e: Export) -> anyhow::Result<()> {
    let Export::Service(a) = e;
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let outcome = rt.block_on(async {
        let (t, ns) = target(&a).await?;
        let choice = a.clusterset_ip();
        anyhow::Ok(ferry_ctl::export::export(&t, &ns, &a.name, a.wait, choice).await?)
    })?;
    super::errors::print(&ferry_ctl::export::render_outcome(&outcome))?;
    outcome.check()?;
    Ok(())
}

pub fn run_unexport(u: Unexport) -> anyhow::Result<()> {
    let Unexport::Service(a) = u;
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let ns = rt.block_on(async {
        let (t, ns) = target(&a).await?;
        ferry_ctl::export::unexport(&t, &ns, &a.name).await?;
        anyhow::Ok(ns)
    })?;
    super::errors::print(&format!(
        "Unexported service {ns}/{}: other clusters stop resolving it to this cluster within seconds.\n",
        a.name
    ))
}
