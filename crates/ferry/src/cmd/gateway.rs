//! `ferry gateway`: the gateway engine on one node.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use ferry_api::CableDriver;
use ferry_gateway::lease::LeaseTiming;

/// Run the gateway engine on this node (the `ferry-gateway` DaemonSet on
/// nodes labelled ferry.dev/gateway=true).
///
/// The labelled nodes elect one active gateway through the Lease
/// ferry-system/ferry-gateway (500 ms without renewal hands it to a standby;
/// a graceful stop hands it over at once). The active one brings up the
/// cable device (ferry-wg for WireGuard, ferry-vxc for VXLAN), publishes this
/// cluster's Endpoint (addresses, subnets, public key, health-check address),
/// connects to every remote cluster's Endpoint, routes their subnets into the
/// cable (table 7101, rule priority 7099), and probes each cable through the
/// tunnel every 100 ms: a connection is `connected` while replies arrive and
/// `error` after --error-after without one. Status: `kubectl -n ferry-system
/// get gateways -o yaml` or `ferry show connections`.
///
/// In a cluster it needs no flags: the cluster id, CIDRs, cable driver and
/// preshared key come from the ferry-broker Secret written by `ferry join`,
/// the addresses from this node's Node object (InternalIP = private,
/// ExternalIP = public, podCIDR's first address = health-check address).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Kubeconfig of this cluster (default: in-cluster, $KUBECONFIG, ~/.kube/config).
    #[arg(long, env = "FERRY_KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// Namespace of ferry's components (and of the ferry-broker Secret).
    #[arg(long, env = "POD_NAMESPACE", default_value = ferry_api::labels::SYSTEM_NAMESPACE)]
    namespace: String,
    /// This node's name.
    #[arg(long, env = "NODE_NAME")]
    node_name: String,
    /// Underlay address of this node inside its cluster (default: the Node's InternalIP).
    #[arg(long)]
    private_ip: Option<Ipv4Addr>,
    /// Address remote gateways reach this node at (default: the Node's
    /// ExternalIP, else the private IP).
    #[arg(long)]
    public_ip: Option<Ipv4Addr>,
    /// This node's health-check address, inside the cluster CIDR (default:
    /// the first address of the Node's podCIDR).
    #[arg(long)]
    health_check_ip: Option<Ipv4Addr>,
    /// Cable driver (default: the one `ferry join` recorded).
    #[arg(long)]
    cable_driver: Option<CableDriver>,
    /// UDP port of the WireGuard cable.
    #[arg(long, default_value_t = ferry_api::ports::DEFAULT_CABLE_PORT)]
    port: u16,
    /// UDP port of the health checker.
    #[arg(long, default_value_t = ferry_api::ports::DEFAULT_HEALTH_CHECK_PORT)]
    health_check_port: u16,
    /// Health-check interval, e.g. 100ms (default: the clusterset's setting).
    #[arg(long, value_parser = parse_duration)]
    health_check_interval: Option<Duration>,
    /// A connection turns `error` after this long without a health-check reply.
    #[arg(long, default_value = "800ms", value_parser = parse_duration)]
    error_after: Duration,
    /// A standby takes over when the active gateway has not renewed the lease
    /// for this long.
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    lease_duration: Duration,
    /// How often the active gateway renews the lease.
    #[arg(long, default_value = "100ms", value_parser = parse_duration)]
    lease_renew: Duration,
    /// Node-local directory for this node's WireGuard private key (mode 0600).
    #[arg(long, env = "FERRY_STATE_DIR", default_value = "/var/lib/ferry")]
    state_dir: PathBuf,
    /// With NAT on both sides, be the side that waits to be contacted
    /// (published as the Endpoint's preferredServer).
    #[arg(long)]
    preferred_server: bool,
    /// UDP port of NAT discovery (answered and probed, as Submariner's 4490).
    #[arg(long, default_value_t = ferry_api::ports::NAT_DISCOVERY_PORT)]
    nat_discovery_port: u16,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let d: kube::core::Duration = s
        .parse()
        .map_err(|e| format!("{s:?} is not a duration like 100ms or 1.5s: {e}"))?;
    Ok(d.into())
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if args.lease_renew >= args.lease_duration {
        anyhow::bail!(
            "--lease-renew ({:?}) must be shorter than --lease-duration ({:?})",
            args.lease_renew,
            args.lease_duration
        );
    }
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(run_async(args))
}

async fn run_async(args: Args) -> anyhow::Result<()> {
    let client = ferry_kube::client_from_kubeconfig(args.kubeconfig.as_deref()).await?;
    let settings = ferry_gateway::Settings {
        namespace: args.namespace,
        node_name: args.node_name,
        private_ip: args.private_ip,
        public_ip: args.public_ip,
        health_check_ip: args.health_check_ip,
        cable_driver: args.cable_driver,
        port: args.port,
        health_check_port: args.health_check_port,
        health_check_interval: args.health_check_interval,
        error_after: args.error_after,
        lease: LeaseTiming {
            duration: args.lease_duration,
            renew: args.lease_renew,
        },
        state_dir: args.state_dir,
        preferred_server: args.preferred_server,
        nat_discovery_port: args.nat_discovery_port,
    };
    let cfg = ferry_gateway::resolve(&client, settings)
        .await
        .context("configuring the gateway")?;
    tracing::info!(
        cluster = %cfg.cluster_id, node = %cfg.node_name, driver = %cfg.driver,
        private_ip = %cfg.private_ip, public_ip = %cfg.public_ip,
        health_check_ip = %cfg.health_check_ip, "gateway starting"
    );
    ferry_gateway::run(cfg, client, ferry_kube::shutdown_signal())
        .await
        .context("gateway")
}
