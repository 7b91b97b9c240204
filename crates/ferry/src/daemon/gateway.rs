//! `ferry gateway` (and the `ferry-gateway` binary): the gateway engine on one node.

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
/// ferry-system/ferry-gateway, renewed every 10 s. Standbys probe the holder
/// directly on the node network (UDP --peer-probe-port, every
/// --peer-probe-interval) and take the Lease as soon as a probe is refused
/// (the holder's process is gone) or more than --peer-probe-multiplier
/// probes in a row go unanswered; a graceful stop
/// hands it over at once. The active one brings up the
/// cable device (ferry-wg for WireGuard, ferry-vxc for VXLAN, ferry-ipsec for
/// IPsec), publishes this
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
/// `ferry join`'s cable flags (--natt, --nattport, --health-check, …) arrive
/// as this command's flags of the same meaning.
///
/// Per node, as Submariner's gateway.submariner.io annotations:
/// gateway.ferry.dev/public-ip=ipv4:ADDR|dns:NAME|api:HOST (comma-separated,
/// tried in order; api: is skipped with --air-gapped) sets the public IP, and
/// gateway.ferry.dev/udp-port=PORT the cable port. A value that cannot be
/// used stops the gateway with the cause in its Gateway's statusFailure.
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
    /// UDP port of the WireGuard cable, or of the IPsec cable (IKE and
    /// UDP-encapsulated ESP, NAT-T).
    #[arg(long, default_value_t = ferry_api::ports::DEFAULT_CABLE_PORT)]
    port: u16,
    /// UDP port of the health checker.
    #[arg(long, default_value_t = ferry_api::ports::DEFAULT_HEALTH_CHECK_PORT)]
    health_check_port: u16,
    /// Health-check interval, e.g. 100ms (default: the clusterset's setting).
    #[arg(long, value_parser = parse_duration)]
    health_check_interval: Option<Duration>,
    /// A connection turns `error` after this long without a health-check
    /// reply (default: 2.5 health-check intervals, 250 ms at 100 ms).
    #[arg(long, value_parser = parse_duration)]
    error_after: Option<Duration>,
    /// A standby takes over a lease left unrenewed for this long (when its
    /// peer probes never reached the holder; otherwise they decide).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    lease_duration: Duration,
    /// How often the active gateway renews the lease (an API write each).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    lease_renew: Duration,
    /// UDP port on the node's private IP where this gateway answers the
    /// other gateway nodes' probes, and from which a standby probes the
    /// active one.
    #[arg(long, default_value_t = ferry_gateway::peer::DEFAULT_PEER_PROBE_PORT)]
    peer_probe_port: u16,
    /// How often a standby probes the active gateway.
    #[arg(long, default_value = "50ms", value_parser = parse_duration)]
    peer_probe_interval: Duration,
    /// A standby takes over once more than this many probes in a row, sent
    /// over at least this many intervals, went unanswered by the active
    /// gateway (RFC 5880's detect multiplier).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    peer_probe_multiplier: u32,
    /// Node-local directory for this node's WireGuard private key (mode 0600).
    #[arg(long, env = "FERRY_STATE_DIR", default_value = "/var/lib/ferry")]
    state_dir: PathBuf,
    /// NAT traversal (join --natt); published as the Endpoint's natEnabled.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1,
        require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    natt: bool,
    /// With NAT on both sides, be the side that waits to be contacted
    /// (published as the Endpoint's preferredServer).
    #[arg(long)]
    preferred_server: bool,
    /// Encapsulate ESP in UDP even where plain ESP would pass (published as
    /// the Endpoint's forceUdpEncaps). ferry's IPsec cable always does.
    #[arg(long)]
    force_udp_encaps: bool,
    /// Never ask an outside service for the public IP (api: lookups are skipped).
    #[arg(long)]
    air_gapped: bool,
    /// active-passive: one gateway node holds the Lease and carries the
    /// cluster's cross-cluster traffic; active-active: every gateway node
    /// does, flows spread over them (wireguard and vxlan, no Globalnet).
    #[arg(long, value_enum, default_value_t = GatewayMode::ActivePassive)]
    gateway_mode: GatewayMode,
    /// Health-check the cables; false: a cable counts as connected once attached.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1,
        require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    health_check: bool,
    /// A connection turns `error` after more than this many health-check
    /// probes in a row go unanswered (instead of --error-after).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    health_check_max_packet_loss_count: Option<u32>,
    /// Lifetime of the ipsec cable's IKE SAs: each is rekeyed in the last
    /// tenth of it (strongSwan's default; Libreswan's is 8h).
    #[arg(long, default_value = "4h", value_parser = ipsec_lifetime)]
    ipsec_ike_lifetime: Duration,
    /// Lifetime of the ipsec cable's child (ESP) SAs: each is rekeyed in the
    /// last tenth of it (strongSwan's default; Libreswan's is 8h).
    #[arg(long, default_value = "1h", value_parser = ipsec_lifetime)]
    ipsec_child_lifetime: Duration,
    /// UDP port of NAT discovery (answered and probed, as Submariner's 4490).
    #[arg(long, default_value_t = ferry_api::ports::NAT_DISCOVERY_PORT)]
    nat_discovery_port: u16,
    /// Address to serve Prometheus /metrics on (ferry_gateway_*); empty to disable.
    #[arg(long, visible_alias = "metrics-addr", value_name = "HOST:PORT",
        default_value_t = format!("0.0.0.0:{}", ferry_api::ports::GATEWAY_METRICS_PORT))]
    metrics_listen: String,
}

/// `100ms`, `1.5s`, or plain seconds as Submariner's flags take them.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = crate::errors::parse_duration(s)?;
    if d.is_zero() {
        return Err(format!("{s:?} must be longer than zero"));
    }
    Ok(d)
}

/// A duration of at least [`ferry_gateway::config::IpsecLifetimes::MIN`].
pub fn ipsec_lifetime(s: &str) -> Result<Duration, String> {
    let d = crate::errors::parse_duration(s)?;
    let min = ferry_gateway::config::IpsecLifetimes::MIN;
    if d < min {
        return Err(format!(
            "{s:?} is shorter than {min:?}, too short for a rekey exchange"
        ));
    }
    Ok(d)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    // The holder steps down after --lease-duration minus one renewal
    // without success: at least one more renewal must fit in.
    if args.lease_renew * 2 > args.lease_duration {
        anyhow::bail!(
            "--lease-renew ({:?}) must be at most half of --lease-duration ({:?})",
            args.lease_renew,
            args.lease_duration
        );
    }
    // One worker: packets go through the cable's own threads; the runtime
    // only carries probes, the Lease and status writes. Still multi-thread:
    // cable set-up runs in block_in_place, which needs it.
    super::runtime(1)?.block_on(run_async(args))
}

async fn run_async(args: Args) -> anyhow::Result<()> {
    let client = ferry_kube::client_from_kubeconfig(args.kubeconfig.as_deref()).await?;
    let metrics_listen = args.metrics_listen.clone();
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
        peer: ferry_gateway::config::PeerSettings {
            port: args.peer_probe_port,
            detect: ferry_gateway::peer::Detect {
                interval: args.peer_probe_interval,
                multiplier: args.peer_probe_multiplier,
            },
        },
        state_dir: args.state_dir,
        nat_discovery_port: args.nat_discovery_port,
        join: ferry_gateway::config::JoinSettings {
            nat_traversal: args.natt,
            preferred_server: args.preferred_server,
            force_udp_encaps: args.force_udp_encaps,
            air_gapped: args.air_gapped,
            health_check: args.health_check,
            max_packet_loss: args.health_check_max_packet_loss_count,
            active_active: args.gateway_mode == GatewayMode::ActiveActive,
            ipsec_lifetimes: ferry_gateway::config::IpsecLifetimes {
                ike: args.ipsec_ike_lifetime,
                child: args.ipsec_child_lifetime,
            },
        },
    };
    let (namespace, node) = (settings.namespace.clone(), settings.node_name.clone());
    let cfg = match ferry_gateway::resolve(&client, settings).await {
        Ok(cfg) => cfg,
        Err(ferry_gateway::Error::NodeAnnotation { cluster_id, error }) => {
            // Say why in the Gateway status, where `ferry show` looks.
            let failure = error.to_string();
            if let Err(e) =
                ferry_gateway::report_failure(&client, &namespace, &node, &cluster_id, &failure)
                    .await
            {
                tracing::warn!("reporting the failure in Gateway {node}: {e}");
            }
            return Err(anyhow::Error::new(error).context("configuring the gateway"));
        }
        Err(e) => return Err(anyhow::Error::new(e).context("configuring the gateway")),
    };
    tracing::info!(
        cluster = %cfg.cluster_id, node = %cfg.node_name, driver = %cfg.driver,
        private_ip = %cfg.private_ip, public_ip = %cfg.public_ip,
        public_ip_from = cfg.public_ip_from, port = cfg.port,
        health_check = cfg.join.health_check, health_check_ip = %cfg.health_check_ip, "gateway starting"
    );
    super::serve_metrics(
        &metrics_listen,
        ferry_kube::metrics::render_registry(cfg.metrics.registry()),
    )
    .await;
    ferry_gateway::run(cfg, client, ferry_kube::shutdown_signal())
        .await
        .context("gateway")
}

/// How a cluster's gateway nodes share its cross-cluster traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum GatewayMode {
    /// One active gateway (the Lease holder), the others on standby.
    ActivePassive,
    /// Every gateway node active, flows spread over them.
    ActiveActive,
}
