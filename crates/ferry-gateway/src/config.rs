//! The gateway's configuration: flags, completed from the `ferry-broker`
//! Secret that `ferry join` wrote (cluster id, CIDRs, cable driver, the
//! clusterset's preshared key) and from this node's `Node` object (addresses,
//! pod CIDR, and the per-node annotations of [`crate::node_settings`]).

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ferry_api::{CableDriver, Cidr, NetworkPlugin};
use k8s_openapi::api::core::v1::{Node, Secret};
use kube::{Api, Client};

use crate::lease::LeaseTiming;
use crate::node_settings;
use crate::{Error, Result};

/// Flags; `None` means "work it out".
#[derive(Clone, Debug)]
pub struct Settings {
    /// Namespace of ferry's components.
    pub namespace: String,
    /// This node's name.
    pub node_name: String,
    /// Override of the node's underlay address (else its InternalIP).
    pub private_ip: Option<Ipv4Addr>,
    /// Override of the address other clusters reach (else the node's
    /// `gateway.ferry.dev/public-ip` annotation, else its ExternalIP, else
    /// the private IP).
    pub public_ip: Option<Ipv4Addr>,
    /// Override of the health-check address (else the first host address
    /// of the node's pod CIDR — the pods' gateway address).
    pub health_check_ip: Option<Ipv4Addr>,
    /// Override of the cable driver from the Secret.
    pub cable_driver: Option<CableDriver>,
    /// UDP port of the WireGuard cable (the node's
    /// `gateway.ferry.dev/udp-port` annotation overrides it).
    pub port: u16,
    /// UDP port of the health checker.
    pub health_check_port: u16,
    /// Health-check interval (else the clusterset's shared setting).
    pub health_check_interval: Option<Duration>,
    /// A connected cable turns `error` after this long without replies
    /// (else 2.5 health-check intervals).
    pub error_after: Option<Duration>,
    /// Lease timing.
    pub lease: LeaseTiming,
    /// The gateway nodes' direct probes of the lease holder.
    pub peer: PeerSettings,
    /// Directory of the node-local private key.
    pub state_dir: PathBuf,
    /// UDP port of NAT discovery.
    pub nat_discovery_port: u16,
    /// The cluster's subctl-style cable settings (`join --natt`, …).
    pub join: JoinSettings,
}

/// What `ferry join`'s gateway flags set (subctl join's meaning); they
/// reach the gateway as its own flags of the same names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinSettings {
    /// NAT traversal on (`--natt`); published as the Endpoint's `natEnabled`.
    pub nat_traversal: bool,
    /// `--preferred-server`: published as the Endpoint's `preferredServer`.
    pub preferred_server: bool,
    /// `--force-udp-encaps`: published as the Endpoint's `forceUdpEncaps`.
    pub force_udp_encaps: bool,
    /// `--air-gapped`: `api:` public-IP lookups are skipped.
    pub air_gapped: bool,
    /// `--health-check`: probe the cables; off, a cable counts as connected
    /// once attached (probes from other clusters are still answered).
    pub health_check: bool,
    /// `--health-check-max-packet-loss-count`: a connection turns `error`
    /// after more than this many unanswered probes in a row (instead of
    /// `error_after`).
    pub max_packet_loss: Option<u32>,
    /// `--ipsec-ike-lifetime` / `--ipsec-child-lifetime` (ipsec cable).
    pub ipsec_lifetimes: IpsecLifetimes,
    /// `--gateway-mode active-active`: every gateway node is active at once
    /// (no Lease election), publishes its own Endpoint and cables its
    /// partner in each remote cluster ([`crate::remote::partners`]).
    pub active_active: bool,
}

impl JoinSettings {
    /// Why active-active cannot run with the rest of the configuration,
    /// if it cannot: IPsec (one IKE identity per cluster) and Globalnet
    /// (one translating gateway per cluster) are not covered.
    pub fn active_active_refusal(
        &self,
        driver: ferry_api::CableDriver,
        globalnet: bool,
    ) -> Option<String> {
        if !self.active_active {
            return None;
        }
        if driver == ferry_api::CableDriver::Ipsec {
            return Some("--gateway-mode active-active works with the wireguard and vxlan cable drivers, not ipsec".into());
        }
        globalnet.then(|| "--gateway-mode active-active does not work with Globalnet yet".into())
    }
}

/// How long the ipsec cable's SAs live: each is rekeyed (by a
/// CREATE_CHILD_SA exchange, the old SA decrypting on until deleted) at a
/// random point in the last tenth of its lifetime, so both gateways rarely
/// rekey at once; a rekey that fails is retried, the SA staying in use. The defaults are strongSwan's rekey times (IKE 4 h, child
/// 1 h); Libreswan's (`ikelifetime`, `salifetime`) are 8 h each, rekeyed
/// 9 min before. Shorter child lifetimes limit what one key protects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpsecLifetimes {
    /// Lifetime of an IKE SA.
    pub ike: Duration,
    /// Lifetime of a child (ESP) SA.
    pub child: Duration,
}

impl IpsecLifetimes {
    /// Shortest lifetime accepted: a rekey's exchange with retransmissions
    /// must fit in it.
    pub const MIN: Duration = Duration::from_secs(2);
    /// Default IKE SA lifetime.
    pub const DEFAULT_IKE: Duration = Duration::from_secs(4 * 3600);
    /// Default child SA lifetime.
    pub const DEFAULT_CHILD: Duration = Duration::from_secs(3600);
}

impl Default for IpsecLifetimes {
    fn default() -> Self {
        Self {
            ike: Self::DEFAULT_IKE,
            child: Self::DEFAULT_CHILD,
        }
    }
}

impl Default for JoinSettings {
    fn default() -> Self {
        Self {
            nat_traversal: true,
            preferred_server: false,
            force_udp_encaps: false,
            air_gapped: false,
            health_check: true,
            max_packet_loss: None,
            active_active: false,
            ipsec_lifetimes: IpsecLifetimes::default(),
        }
    }
}

/// The peer probes between this cluster's gateway nodes (on the private IP).
#[derive(Clone, Copy, Debug)]
pub struct PeerSettings {
    /// UDP port this node answers on (and advertises while it holds the lease).
    pub port: u16,
    /// Probe interval and detect multiplier.
    pub detect: crate::peer::Detect,
}

/// Everything the engine runs with.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    pub namespace: String,
    pub node_name: String,
    pub cluster_id: String,
    pub cluster_cidrs: Vec<Cidr>,
    pub service_cidrs: Vec<Cidr>,
    /// Global CIDRs (Globalnet; empty: off).
    pub global_cidrs: Vec<Cidr>,
    pub driver: CableDriver,
    pub psk: ferry_wireguard::PresharedKey,
    pub private_ip: Ipv4Addr,
    pub public_ip: Ipv4Addr,
    pub health_check_ip: Ipv4Addr,
    pub port: u16,
    pub health_check_port: u16,
    pub health_check_interval: Duration,
    pub error_after: Duration,
    pub lease: LeaseTiming,
    pub peer: PeerSettings,
    pub key_file: PathBuf,
    /// Where the public IP came from (flag, annotation, ExternalIP, private).
    pub public_ip_from: &'static str,
    pub join: JoinSettings,
    pub nat_discovery_port: u16,
    /// The interface whose address sources the node's own traffic into
    /// the cable (kube-ovn's `ovn0`; else the health-check address does).
    pub host_source_dev: Option<crate::cable::HostSourceDev>,
    /// Where the engine reports its Prometheus metrics.
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
}

impl GatewayConfig {
    /// Subnets behind this gateway: pod and service CIDRs, or with
    /// Globalnet only the global CIDRs (the others may overlap other
    /// clusters' and are reached through global IPs).
    pub fn subnets(&self) -> Vec<Cidr> {
        if !self.global_cidrs.is_empty() {
            return self.global_cidrs.clone();
        }
        self.cluster_cidrs
            .iter()
            .chain(&self.service_cidrs)
            .copied()
            .collect()
    }
}

/// Reads the Secret and the Node and completes `s`.
pub async fn resolve(client: &Client, s: Settings) -> Result<GatewayConfig> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &s.namespace);
    let secret = secrets
        .get(ferry_deploy::BROKER_SECRET)
        .await
        .map_err(|e| {
            Error::kube(
                format!(
                    "reading Secret {}/{} (written by ferry join)",
                    s.namespace,
                    ferry_deploy::BROKER_SECRET
                ),
                e,
            )
        })?;
    let broker = ferry_deploy::BrokerSecret::from_secret(&secret)
        .map_err(|e| Error::Config(e.to_string()))?;
    let info = &broker.broker_info;
    let secret_driver = secret
        .data
        .as_ref()
        .and_then(|d| d.get(ferry_deploy::secret_keys::CABLE_DRIVER))
        .map(|v| String::from_utf8_lossy(&v.0).trim().to_string());
    let driver = match (s.cable_driver, secret_driver) {
        (Some(d), _) => d,
        (None, Some(d)) if !d.is_empty() => d
            .parse()
            .map_err(|e: ferry_api::Error| Error::Config(e.to_string()))?,
        _ => info.settings.default_cable_driver,
    };
    let psk_bytes = info
        .cable_psk_bytes()
        .map_err(|e| Error::Config(e.to_string()))?;
    let psk: ferry_wireguard::PresharedKey = base64_std(&psk_bytes)
        .parse()
        .map_err(|e: ferry_wireguard::Error| Error::Config(format!("cable PSK: {e}")))?;

    let nodes: Api<Node> = Api::all(client.clone());
    let node = nodes
        .get(&s.node_name)
        .await
        .map_err(|e| Error::kube(format!("reading Node {}", s.node_name), e))?;
    let address = |kind: &str| -> Option<Ipv4Addr> {
        node.status
            .as_ref()?
            .addresses
            .as_ref()?
            .iter()
            .filter(|a| a.type_ == kind)
            .find_map(|a| a.address.parse::<Ipv4Addr>().ok())
    };
    let private_ip = s
        .private_ip
        .or_else(|| address("InternalIP"))
        .ok_or_else(|| {
            Error::Config(format!(
                "Node {} has no IPv4 InternalIP; pass --private-ip",
                s.node_name
            ))
        })?;
    let annotated = |e| Error::NodeAnnotation {
        cluster_id: broker.cluster_id.clone(),
        error: e,
    };
    let (public_ip, public_ip_from) = match (
        s.public_ip,
        node_annotation(&node, node_settings::PUBLIC_IP_ANNOTATION),
    ) {
        (Some(ip), _) => (ip, "--public-ip"),
        (None, Some(value)) => {
            let sources = node_settings::parse_public_ip(value).map_err(annotated)?;
            let ip = node_settings::resolve_public_ip(value, &sources, s.join.air_gapped)
                .await
                .map_err(annotated)?;
            (ip, node_settings::PUBLIC_IP_ANNOTATION)
        }
        (None, None) => match address("ExternalIP") {
            Some(ip) => (ip, "the Node's ExternalIP"),
            None => (private_ip, "the private IP (no ExternalIP)"),
        },
    };
    let port = match node_annotation(&node, node_settings::UDP_PORT_ANNOTATION) {
        None => s.port,
        Some(value) => {
            let e = |reason: &str| node_settings::AnnotationError {
                annotation: node_settings::UDP_PORT_ANNOTATION,
                value: value.to_string(),
                reason: reason.to_string(),
            };
            if driver == CableDriver::Vxlan {
                return Err(annotated(e(
                    "the vxlan cable always uses UDP 4800; the port applies to the wireguard cable",
                )));
            }
            node_settings::parse_udp_port(value).map_err(annotated)?
        }
    };
    // With Globalnet the gateway's address is global: the pod CIDR may be
    // another cluster's too.
    let global_gateway_ip = match broker.global_cidrs.first() {
        Some(c) => Some(
            ferry_globalnet::Block::new(*c)
                .map_err(|e| Error::Config(format!("global CIDR: {e}")))?
                .gateway_ip(),
        ),
        None => None,
    };
    let health_check_ip = match s.health_check_ip.or(global_gateway_ip) {
        Some(ip) => ip,
        None => {
            let cidr = node
                .spec
                .as_ref()
                .and_then(|sp| sp.pod_cidr.as_deref())
                .ok_or_else(|| {
                    Error::Config(format!(
                        "Node {} has no spec.podCIDR to take a health-check address from; \
                         pass --health-check-ip (an address of this node inside the cluster CIDR)",
                        s.node_name
                    ))
                })?;
            first_host(cidr)?
        }
    };
    if !broker
        .cluster_cidrs
        .iter()
        .chain(&broker.global_cidrs)
        .any(|c| c.contains(IpAddr::V4(health_check_ip)))
    {
        return Err(Error::Config(format!(
            "health-check address {health_check_ip} is outside the cluster CIDRs {:?}; \
             remote clusters route only those into their cables",
            broker
                .cluster_cidrs
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        )));
    }
    if let Some(why) = s
        .join
        .active_active_refusal(driver, !broker.global_cidrs.is_empty())
    {
        return Err(Error::Config(why));
    }
    let interval = match s.health_check_interval {
        Some(d) => d,
        None => info.settings.health_check_interval.into(),
    };
    let error_after = error_after(interval, s.join.max_packet_loss, s.error_after);
    let host_source_dev = host_source_dev(
        broker.network_plugin,
        &broker.cluster_cidrs,
        &broker.global_cidrs,
    );
    Ok(GatewayConfig {
        key_file: s.state_dir.join("wireguard.key"),
        namespace: s.namespace,
        node_name: s.node_name,
        cluster_id: broker.cluster_id,
        cluster_cidrs: broker.cluster_cidrs,
        service_cidrs: broker.service_cidrs,
        global_cidrs: broker.global_cidrs,
        driver,
        psk,
        private_ip,
        public_ip,
        public_ip_from,
        health_check_ip,
        port,
        health_check_port: s.health_check_port,
        health_check_interval: interval,
        error_after,
        lease: s.lease,
        peer: s.peer,
        join: s.join,
        nat_discovery_port: s.nat_discovery_port,
        host_source_dev,
        metrics: Default::default(),
    })
}

/// kube-ovn's interface from the node into its join subnet.
pub const OVN0: &str = "ovn0";

/// kube-ovn (without Globalnet): the node's own traffic leaves from `ovn0`'s
/// join-subnet address, as the route agent's kube-ovn handler sources it on
/// the other nodes. With Globalnet it must leave from the global
/// health-check address (pod CIDRs may overlap other clusters').
pub fn host_source_dev(
    plugin: Option<NetworkPlugin>,
    cluster_cidrs: &[Cidr],
    global_cidrs: &[Cidr],
) -> Option<crate::cable::HostSourceDev> {
    (plugin == Some(NetworkPlugin::KubeOvn) && global_cidrs.is_empty()).then(|| {
        crate::cable::HostSourceDev {
            dev: OVN0.into(),
            within: cluster_cidrs.to_vec(),
        }
    })
}

/// How long a connected cable may stay silent: with a packet-loss count N
/// ("more than N lost" is an error, as Submariner counts), N+1 intervals;
/// else `flag`, else 2.5 intervals (two probes lost and the third late:
/// 250 ms at the default 100 ms, so a cut cable leaves DNS answers within
/// 300 ms).
fn error_after(
    interval: Duration,
    max_packet_loss: Option<u32>,
    flag: Option<Duration>,
) -> Duration {
    match (max_packet_loss, flag) {
        (Some(n), _) => interval.saturating_mul(n.saturating_add(1)),
        (None, Some(d)) => d,
        (None, None) => interval.saturating_mul(5) / 2,
    }
}

fn node_annotation<'a>(node: &'a Node, key: &str) -> Option<&'a str> {
    node.metadata
        .annotations
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

fn base64_std(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// `100.64.3.0/24` → `100.64.3.1`.
fn first_host(cidr: &str) -> Result<Ipv4Addr> {
    let c: Cidr = cidr
        .parse()
        .map_err(|e: ferry_api::Error| Error::Config(format!("Node podCIDR: {e}")))?;
    match c.addr() {
        IpAddr::V4(a) if c.prefix_len() < 32 => Ok(Ipv4Addr::from(u32::from(a) + 1)),
        _ => Err(Error::Config(format!(
            "Node podCIDR {cidr} has no IPv4 host address; pass --health-check-ip"
        ))),
    }
}

/// Loads this node's WireGuard private key, creating it (mode 0600) on the
/// first start. It never leaves the node: only the public key is published.
pub fn load_or_create_key(path: &Path) -> Result<ferry_wireguard::PrivateKey> {
    let err = |reason: String| Error::KeyFile {
        path: path.display().to_string(),
        reason,
    };
    if path.exists() {
        return ferry_wireguard::read_private_key_file(path).map_err(|e| err(e.to_string()));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| err(format!("creating its directory: {e}")))?;
    }
    let key = ferry_wireguard::PrivateKey::generate();
    ferry_kube::create_private(path, key.to_base64().as_bytes()).map_err(|e| match e {
        ferry_kube::Error::File { source, .. } => err(source.to_string()),
        e => err(e.to_string()),
    })?;
    tracing::info!(path = %path.display(), public_key = %key.public_key(), "created this node's WireGuard key");
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_kube_ovn_without_globalnet_sources_host_traffic_from_ovn0() {
        let pods = Cidr::parse_list("100.64.0.0/16,100.65.0.0/16").unwrap();
        let global = Cidr::parse_list("198.19.0.0/24").unwrap();
        let ovn = host_source_dev(Some(NetworkPlugin::KubeOvn), &pods, &[]).unwrap();
        assert_eq!((ovn.dev.as_str(), ovn.within), (OVN0, pods.clone()));
        assert!(host_source_dev(Some(NetworkPlugin::KubeOvn), &pods, &global).is_none());
        for other in [
            None,
            Some(NetworkPlugin::Generic),
            Some(NetworkPlugin::Calico),
        ] {
            assert!(host_source_dev(other, &pods, &[]).is_none(), "{other:?}");
        }
    }

    #[test]
    fn first_host_of_a_pod_cidr() {
        assert_eq!(
            first_host("100.64.3.0/24").unwrap(),
            "100.64.3.1".parse::<Ipv4Addr>().unwrap()
        );
        assert!(first_host("100.64.3.1/32").is_err());
        assert!(first_host("fd00::/64").is_err());
        assert!(first_host("nonsense").is_err());
    }

    #[test]
    fn packet_loss_count_sets_the_error_timeout() {
        let ms = Duration::from_millis;
        assert_eq!(error_after(ms(100), Some(5), Some(ms(800))), ms(600));
        assert_eq!(
            error_after(Duration::from_secs(1), Some(1), Some(ms(800))),
            ms(2000)
        );
        assert_eq!(error_after(ms(100), None, Some(ms(800))), ms(800));
        assert_eq!(error_after(ms(100), None, None), ms(250));
        assert_eq!(error_after(Duration::from_secs(1), None, None), ms(2500));
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/wireguard.key");
        let k1 = load_or_create_key(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let k2 = load_or_create_key(&path).unwrap();
        assert_eq!(k1.public_key(), k2.public_key());
        // A key others can read is refused.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_or_create_key(&path).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
    }
}
