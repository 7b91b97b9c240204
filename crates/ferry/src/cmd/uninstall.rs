//! `ferry uninstall`: remove ferry from a cluster.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use ferry_ctl::uninstall::{self, Options};
use ferry_ctl::{Target, TargetSpec};

/// Remove ferry from a cluster: everything `ferry join` made, and this
/// cluster's objects on the broker.
///
/// In order: the ferry-gateway and ferry-route-agent DaemonSets, then the
/// ferry-agent and ferry-dns Deployments; then it waits (up to --timeout,
/// showing which pods are left) for their pods to stop, since on stopping
/// the node daemons remove the routes, rules and interfaces they made.
/// Then, with this cluster's own broker token: its Cluster, Endpoints,
/// ServiceImports and EndpointSlices on the broker (other clusters stop
/// seeing it). Then the clusterset forward block in CoreDNS, the
/// ServiceImports and EndpointSlices the agent made, the cluster-id
/// ClusterProperty, the ferry.dev/gateway node labels, ferry's ClusterRoles
/// and bindings, and the ferry-system namespace (with the broker Secret).
/// ServiceExports are yours and stay; CRDs stay unless --crds (other
/// multi-cluster tools may use the MCS ones).
///
/// If the broker cannot be reached it stops before removing the broker
/// credentials, so running it again later finishes the job; --skip-broker
/// leaves this cluster's objects there instead. Safe to re-run.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  ferry uninstall --kubeconfig east.kubeconfig
  ferry uninstall --yes --crds      # no question; also delete the CRDs")]
pub struct Args {
    /// Kubeconfig of the cluster (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Context of the kubeconfig (default: its current context).
    #[arg(long)]
    context: Option<String>,
    /// Do not ask for confirmation (needed when stdin is not a terminal).
    #[arg(short = 'y', long)]
    yes: bool,
    /// Also delete ferry's and the MCS CustomResourceDefinitions, and so
    /// every ServiceExport and ServiceImport in the cluster.
    #[arg(long)]
    crds: bool,
    /// Leave this cluster's objects on the broker (e.g. the broker is gone for good).
    #[arg(long)]
    skip_broker: bool,
    /// How long to wait for ferry's pods to stop, and then for the namespace to go.
    #[arg(long, default_value = "30s", value_parser = super::errors::parse_duration)]
    timeout: Duration,
}

fn confirm(question: &str) -> anyhow::Result<bool> {
    let mut err = std::io::stderr().lock();
    write!(err, "{question} [y/N] ")?;
    err.flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(run_async(args))
}

async fn run_async(args: Args) -> anyhow::Result<()> {
    let spec = TargetSpec {
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
    };
    let t = Target::connect(&spec).await?;
    let inst = uninstall::inspect(&t).await?;
    if (inst.found() || args.crds) && !args.yes {
        if !std::io::stdin().is_terminal() {
            return Err(ferry_ctl::Error::Usage(
                "ferry uninstall asks for confirmation; pass --yes when stdin is not a terminal"
                    .into(),
            )
            .into());
        }
        let id = inst.cluster_id.as_deref().unwrap_or("(no id)");
        let mut q = format!("Remove ferry from cluster {id} at {}", t.url);
        if let (Some(b), false) = (&inst.broker, args.skip_broker) {
            q.push_str(&format!(
                " and its objects from the broker at {}",
                b.api_server_url
            ));
        }
        if args.crds {
            q.push_str(", and delete the CRDs with every ServiceExport and ServiceImport");
        }
        if !confirm(&format!("{q}?"))? {
            anyhow::bail!("uninstall aborted; nothing was changed");
        }
    }
    let opts = Options {
        crds: args.crds,
        skip_broker: args.skip_broker,
        pod_timeout: args.timeout,
        namespace_timeout: args.timeout,
    };
    let shown = super::progress::Progress::new("  ");
    let progress = |line: &str| shown.line(line);
    let report = uninstall::uninstall(&t, &inst, &opts, &progress).await;
    drop(shown);
    let report = report?;
    for n in &report.notes {
        eprintln!("note: {n}");
    }
    report.check()?;
    let what = inst
        .cluster_id
        .as_deref()
        .map_or_else(|| t.label.clone(), |id| format!("cluster {id}"));
    if report.removed.is_empty() {
        super::errors::print(&format!(
            "Nothing to remove: ferry is not installed in {what}.\n"
        ))
    } else {
        super::errors::print(&format!(
            "Removed ferry from {what} ({} steps).\n",
            report.removed.len()
        ))
    }
}
