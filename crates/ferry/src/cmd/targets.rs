//! The `--kubeconfig` / `--context` pair of the commands that look at one
//! or several clusters at once (show, diagnose, verify, benchmark).

use std::path::PathBuf;

/// Which clusters a command looks at, one per kubeconfig or context.
#[derive(Debug, clap::Args)]
pub struct ClusterTargets {
    /// Kubeconfig file(s), comma-separated, one cluster each (default:
    /// $KUBECONFIG, then ~/.kube/config, then the in-cluster account).
    #[arg(long, value_delimiter = ',', value_name = "FILE[,FILE…]")]
    kubeconfig: Vec<PathBuf>,
    /// Context(s) of the kubeconfig, comma-separated, one cluster each
    /// (default: its current context).
    #[arg(long, value_delimiter = ',', value_name = "CONTEXT[,CONTEXT…]")]
    context: Vec<String>,
}

impl ClusterTargets {
    /// One target per cluster named, in the order given.
    pub fn specs(&self) -> Result<Vec<ferry_ctl::TargetSpec>, ferry_ctl::Error> {
        ferry_ctl::target::expand(&self.kubeconfig, &self.context)
    }
}
