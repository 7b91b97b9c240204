//! `ferry route-agent` (and the `ferry-route-agent` binary): the route agent on one node.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use ferry_route_agent::{Config, Outcome};

/// The long `--help` text (the Args' doc comment is the short one).
const LONG_ABOUT: &str = "\
Route cross-cluster traffic from this node (the `ferry-route-agent` DaemonSet on every \
node, host network).\n\n\
On every node: a VXLAN interface vx-ferry (VNI 7100, UDP 4799, no learning, MAC 02:fe + \
the node's IPv4 address, MTU = underlay − 50, rp_filter=2) and the nftables table `ip \
ferry`, which clamps the TCP MSS of traffic to and from remote clusters to the route MTU \
and exempts traffic between this cluster's and remote CIDRs from masquerading (an \
identity SNAT ahead of other NAT chains). On nodes other than the active gateway: every \
remote cluster's pod and service CIDR routed `via <gateway> dev vx-ferry onlink mtu \
(underlay − 80)` in table 7100 (rule priority 7100), with a static fdb and neighbour \
entry for the gateway. On the active gateway: IP forwarding on and table 7100 empty (the \
gateway routes into its cables in table 7101).\n\n\
Inputs, watched: this cluster's Endpoint in the namespace (the active gateway; \
re-pointed within milliseconds on failover), the Cluster objects there (remote CIDRs; \
IPv4 only) and this Node (its InternalIP picks the underlay interface). If the API goes \
away, the last state stays.\n\n\
On SIGTERM: if the ferry-route-agent DaemonSet is gone (ferry is being uninstalled), \
everything above is removed; otherwise (restart, upgrade) it all stays so traffic keeps \
flowing. `ferry route-agent cleanup` removes it at once.";

/// Route cross-cluster traffic from this node through vx-ferry to the active gateway.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, long_about = LONG_ABOUT)]
pub struct Args {
    #[command(subcommand)]
    action: Option<Action>,
    /// Kubeconfig of this cluster (default: in-cluster, $KUBECONFIG, ~/.kube/config).
    #[arg(long, env = "FERRY_KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// Namespace of ferry's components: the Endpoint, Clusters and the DaemonSet.
    #[arg(long, env = "POD_NAMESPACE", default_value = ferry_api::labels::SYSTEM_NAMESPACE)]
    namespace: String,
    /// This node's name.
    #[arg(long, env = "NODE_NAME")]
    node_name: Option<String>,
    /// This cluster's id (default: the cluster.clusterset.k8s.io ClusterProperty).
    #[arg(long, env = "CLUSTER_ID")]
    cluster_id: Option<String>,
    /// Seconds between full re-applies that repair drift (changes in the
    /// API are applied at once).
    #[arg(long, default_value_t = 60)]
    resync_seconds: u64,
    /// Address to serve Prometheus /metrics on (ferry_route_agent_*); empty to disable.
    #[arg(long, visible_alias = "metrics-addr", value_name = "HOST:PORT",
        default_value_t = format!("0.0.0.0:{}", ferry_api::ports::ROUTE_AGENT_METRICS_PORT))]
    metrics_listen: String,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Remove vx-ferry, the routes of table 7100, rule 7100 and the nftables
    /// table `ip ferry` from this node now (sysctls are left as they are).
    Cleanup,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if let Some(Action::Cleanup) = args.action {
        let removed =
            ferry_route_agent::cleanup(None).context("removing the route agent's state")?;
        println!(
            "removed: {} routes, {} rules, vx-ferry {}, nft table ip {}",
            removed.routes,
            removed.rules,
            if removed.vxlan { "deleted" } else { "absent" },
            ferry_net::NFT_TABLE,
        );
        return Ok(());
    }
    let node_name = args
        .node_name
        .clone()
        .context("--node-name (or NODE_NAME) is required")?;
    if let Some(id) = &args.cluster_id {
        ferry_api::validate_cluster_id(id)?;
    }
    // One worker: a few watches and route writes (netlink work goes to the
    // blocking pool).
    super::runtime(1)?.block_on(async move {
        let client = ferry_kube::client_from_kubeconfig(args.kubeconfig.as_deref())
            .await
            .context("connecting to the cluster")?;
        let mut cfg = Config::new(&node_name, &args.namespace);
        cfg.cluster_id = args.cluster_id;
        cfg.resync = Duration::from_secs(args.resync_seconds.max(1));
        super::serve_metrics(
            &args.metrics_listen,
            ferry_kube::metrics::render_registry(cfg.metrics.registry()),
        )
        .await;
        match ferry_route_agent::run(client, cfg, ferry_kube::shutdown_signal()).await? {
            Outcome::Uninstalled => tracing::info!("uninstalled; exiting"),
            Outcome::LeftInPlace => tracing::info!("exiting; data plane left in place"),
        }
        Ok(())
    })
}
