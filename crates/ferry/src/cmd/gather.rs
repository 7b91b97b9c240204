//! `ferry gather`: support bundles (Submariner's `subctl gather`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;
use ferry_ctl::TargetSpec;
use ferry_ctl::gather::{self, ApiOnly, NodeAccess, Options};

const EXAMPLES: &str = "Examples:
  ferry gather --kubeconfig east.kubeconfig,west.kubeconfig
  ferry gather --context east,west --dir /tmp/bundle
  ferry gather --include-sensitive-data";

/// Collect a support bundle per cluster (as Submariner's `subctl gather`).
///
/// For each cluster, DIR/<cluster-id>/ and DIR/<cluster-id>.tar.gz hold:
/// objects/ (Clusters, Endpoints, Gateways, ServiceExports, ServiceImports,
/// ferry's EndpointSlices, ClusterProperties, Leases, Nodes, and the pods,
/// workloads, Services, ConfigMaps and Secrets of ferry-system), broker/
/// (the broker's Clusters, Endpoints, ServiceImports and EndpointSlices,
/// read with the cluster's own broker credentials), logs/ (every container
/// of every ferry pod), nodes/<node>/ (ip -d addr/link, ip rule, ferry's
/// routing tables 7100 and 7101, ferry's nftables tables, and on gateway
/// nodes the cables as `wg show` lists peers: remote cluster, bytes, last
/// handshake, never a key), notes.txt and index.html (a summary linking
/// every file).
///
/// Secret values (broker tokens, the cable preshared key) are replaced by
/// their size unless --include-sensitive-data. What cannot be read (an
/// unreachable cluster or broker, a dead node) is noted in notes.txt and on
/// the page; the command goes on. Node state is read on sandbox clusters
/// (their nodes are network namespaces on this host); on a real cluster it
/// is noted as not collected and logs come from the pods/log API.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    #[command(flatten)]
    clusters: super::targets::ClusterTargets,
    /// Directory for the bundles (default: ferry-gather-<unix time>).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Keep Secret values (broker tokens, the preshared key) in the bundle.
    #[arg(long)]
    include_sensitive_data: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let specs = args.clusters.specs()?;
    let dir = args.dir.unwrap_or_else(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        PathBuf::from(format!("ferry-gather-{now}"))
    });
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let opts = Options {
        dir: dir.clone(),
        include_sensitive_data: args.include_sensitive_data,
    };
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let mut incomplete = 0;
    for spec in &specs {
        let access: Box<dyn NodeAccess> = match sandbox_of(spec) {
            Some(name) => Box::new(SandboxAccess { name }),
            None => Box::new(ApiOnly),
        };
        let bundle = rt
            .block_on(gather::gather(spec, &opts, access.as_ref()))
            .with_context(|| format!("gathering {}", spec.describe()))?;
        let archive = bundle
            .archive
            .as_ref()
            .map(|a| format!(" and {}", a.display()))
            .unwrap_or_default();
        println!(
            "{}: {} files in {}{archive}; {} not collected (see notes.txt)",
            bundle.cluster,
            bundle.files.len(),
            bundle.dir.display(),
            bundle.notes.len()
        );
        if !bundle.notes.is_empty() {
            incomplete += 1;
        }
    }
    if incomplete > 0 {
        eprintln!(
            "{incomplete} of {} bundles are incomplete: their notes.txt says what is missing",
            specs.len()
        );
    }
    Ok(())
}

/// The sandbox cluster whose kubeconfig `spec` names, if any.
fn sandbox_of(spec: &TargetSpec) -> Option<String> {
    let path = spec
        .kubeconfig
        .clone()
        .or_else(|| std::env::var_os("KUBECONFIG").map(PathBuf::from))?;
    let path = path.canonicalize().ok()?;
    ferry_sandbox::state::cluster_names()
        .into_iter()
        .find(|name| {
            ferry_sandbox::state::kubeconfig_path(name)
                .canonicalize()
                .is_ok_and(|p| p == path)
        })
}

/// A sandbox cluster: nodes are network namespaces on this host, pod logs
/// are files.
struct SandboxAccess {
    name: String,
}

impl NodeAccess for SandboxAccess {
    fn run(&self, node: &str, argv: &[&str]) -> Result<String, String> {
        let ns = ferry_sandbox::exec_target(&self.name, node).map_err(|e| e.to_string())?;
        let out = Command::new("ip")
            .args(["netns", "exec", &ns])
            .args(argv)
            .output()
            .map_err(|e| format!("ip netns exec {ns}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "{} ({})",
                String::from_utf8_lossy(&out.stderr).trim(),
                out.status
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn pod_logs(
        &self,
        namespace: &str,
        pod: &str,
    ) -> Option<Result<Vec<(String, String)>, String>> {
        let dir = ferry_sandbox::state::pod_logs_dir(&self.name, namespace, pod);
        Some(read_logs(&dir))
    }
}

fn read_logs(dir: &Path) -> Result<Vec<(String, String)>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut out = Vec::new();
    for e in entries.flatten() {
        let path = e.path();
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        out.push((e.file_name().to_string_lossy().into_owned(), text));
    }
    out.sort();
    Ok(out)
}
