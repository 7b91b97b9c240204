//! `ferry recover-broker-info`: write broker-info.ferry again from a joined
//! cluster.

use std::path::PathBuf;

use anyhow::Context;

/// Rebuild broker-info.ferry from a cluster that has joined (when the file
/// is lost), as `subctl recover-broker-info` does.
///
/// The broker's URL, CA, namespace, clusterset domain, cable key and shared
/// settings come from the ferry-broker Secret of ferry-system; the joiner
/// credential from the ferry-joiner Secret `join` keeps beside it (the
/// agent's own token is scoped to its cluster and cannot join another). The
/// joiner credential is checked against the broker before the file is
/// written.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:
  ferry recover-broker-info --kubeconfig east.kubeconfig -o broker-info.ferry")]
pub struct Args {
    /// Kubeconfig of a joined cluster (default: $KUBECONFIG, ~/.kube/config).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Where to write broker-info.ferry.
    #[arg(short = 'o', long = "output", default_value = "broker-info.ferry")]
    output: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async {
        let local = ferry_ctl::Target::connect(&ferry_ctl::TargetSpec {
            kubeconfig: args.kubeconfig.clone(),
            context: None,
        })
        .await?;
        local.probe().await?;
        let (info, cluster) = ferry_ctl::install::recover_broker_info(&local.client).await?;
        ferry_ctl::Target::broker(&info, &info.token)
            .await?
            .probe()
            .await?;
        ferry_kube::write_private(&args.output, info.encode()?.as_bytes())?;
        eprintln!(
            "wrote {} from cluster {cluster}: broker {} namespace {}",
            args.output.display(),
            info.api_server_url,
            info.broker_namespace
        );
        anyhow::Ok(())
    })
}
