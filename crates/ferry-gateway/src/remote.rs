//! From a remote cluster's `Endpoint` and what NAT discovery found to the
//! cable this gateway should hold to it: which address to use (the one that
//! answered discovery: private when both answer), whether NAT is in the way,
//! which side opens the cable (with IPsec exactly one), and the reasons a cable cannot be built
//! (different cable drivers, a missing key, VXLAN through a NAT) or is not
//! decided yet. Pure.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use ferry_api::ferry::backend_config;
use ferry_api::ports::{self, DEFAULT_CABLE_PORT};
use ferry_api::{CableDriver, Cidr, EndpointSpec};

use crate::nat_discovery::{Outcome, Target};

/// This gateway as the planner needs it.
#[derive(Clone, Debug)]
pub struct LocalGateway {
    /// This cluster's id (IPsec: the lower id opens the cable).
    pub cluster_id: String,
    /// Cable driver of this cluster.
    pub driver: CableDriver,
    /// Underlay address inside the cluster's node network.
    pub private_ip: Ipv4Addr,
    /// Address other clusters reach (may equal the private one).
    pub public_ip: Ipv4Addr,
    /// This cluster joined with `--preferred-server`: with a remote that can
    /// reach it, it waits to be contacted instead of opening the cable.
    pub preferred_server: bool,
}

/// What NAT discovery has found about one remote so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    /// The verdict.
    pub outcome: Outcome,
    /// The remote's probes reach this gateway.
    pub inbound_seen: bool,
    /// Discovery has run its full timeout.
    pub timed_out: bool,
}

/// A remote cluster's gateway, ready to be cabled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteGateway {
    /// Remote cluster id.
    pub cluster_id: String,
    /// Name of its Endpoint object.
    pub endpoint: String,
    /// Its node name.
    pub hostname: String,
    /// Its underlay address inside its own cluster.
    pub private_ip: Ipv4Addr,
    /// The address this cable uses: the one that answered NAT discovery,
    /// or, when only its probes reach us, the NAT address they come from.
    pub using_ip: Ipv4Addr,
    /// Whether NAT discovery saw address or port rewriting on the way.
    pub using_nat: bool,
    /// Whether this side opens the cable (sends to `using_ip:port` first).
    /// When not, the remote does and WireGuard learns its address from its
    /// authenticated packets. With IPsec exactly one side opens (see
    /// [`ipsec_initiates`]).
    pub initiate: bool,
    /// UDP port of its cable (WireGuard).
    pub port: u16,
    /// Its WireGuard public key (base64), for the wireguard driver.
    pub public_key: Option<String>,
    /// MAC of its VXLAN cable interface, for the vxlan driver.
    pub vtep_mac: Option<String>,
    /// Its health-check address and port.
    pub health_check: Option<SocketAddr>,
    /// Its IPv4 subnets (pods and services): routed into the cable.
    pub subnets: Vec<Cidr>,
}

/// Why a remote is not cabled; the text goes into the Gateway status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotCabled {
    /// Not decided yet (NAT discovery still running): `connecting`.
    Waiting(String),
    /// It cannot be: `error`.
    Unusable(String),
}

impl NotCabled {
    /// The reason.
    pub fn message(&self) -> &str {
        match self {
            NotCabled::Waiting(m) | NotCabled::Unusable(m) => m,
        }
    }
}

/// Where NAT discovery probes `spec`'s gateway, if it has an IPv4 address.
pub fn discovery_target(name: &str, spec: &EndpointSpec) -> Option<Target> {
    let IpAddr::V4(private_ip) = spec.private_ip else {
        return None;
    };
    Some(Target {
        peer: ferry_api::nat_discovery::Peer {
            cluster_id: spec.cluster_id.clone(),
            endpoint: name.to_string(),
        },
        private_ip,
        public_ip: match spec.public_ip {
            Some(IpAddr::V4(p)) => Some(p),
            _ => None,
        },
        port: ports::NAT_DISCOVERY_PORT,
    })
}

fn flag(spec: &EndpointSpec, key: &str, default: bool) -> bool {
    spec.backend_config
        .get(key)
        .map_or(default, |v| v.eq_ignore_ascii_case("true"))
}

/// Plans the cable to one remote endpoint from its spec and what NAT
/// discovery found.
pub fn plan(
    local: &LocalGateway,
    name: &str,
    spec: &EndpointSpec,
    found: &Found,
) -> Result<RemoteGateway, NotCabled> {
    let unusable = |m: String| NotCabled::Unusable(m);
    if spec.cable_driver != local.driver {
        return Err(unusable(format!(
            "cable driver mismatch: cluster {} uses {}, this cluster uses {}; \
             every cluster of a clusterset must use the same driver (ferry join --cable-driver)",
            spec.cluster_id, spec.cable_driver, local.driver
        )));
    }
    let IpAddr::V4(private) = spec.private_ip else {
        return Err(unusable(format!(
            "IPv6 gateway address {} is not supported yet",
            spec.private_ip
        )));
    };
    let public = match spec.public_ip {
        Some(IpAddr::V4(p)) => Some(p),
        Some(IpAddr::V6(p)) => {
            return Err(unusable(format!(
                "IPv6 gateway address {p} is not supported yet"
            )));
        }
        None => None,
    };
    let port = match spec.backend_config.get(backend_config::PORT) {
        Some(p) => p
            .parse()
            .map_err(|_| unusable(format!("its backendConfig port {p:?} is not a UDP port")))?,
        None => DEFAULT_CABLE_PORT,
    };
    let public_key = spec.backend_config.get(backend_config::PUBLIC_KEY).cloned();
    if local.driver == CableDriver::Wireguard && public_key.is_none() {
        return Err(unusable(
            "its Endpoint has no WireGuard public key (backendConfig.publicKey)".into(),
        ));
    }
    let path = choose_path(local, spec, private, public, port, found)?;
    let initiate = match local.driver {
        CableDriver::Ipsec => ipsec_initiates(local, spec, found, path.initiate),
        CableDriver::Wireguard | CableDriver::Vxlan => path.initiate,
    };
    let health_check = ports::health_check_addr(spec);
    Ok(RemoteGateway {
        cluster_id: spec.cluster_id.clone(),
        endpoint: name.into(),
        hostname: spec.hostname.clone(),
        private_ip: private,
        using_ip: path.ip,
        using_nat: path.nat,
        initiate,
        port,
        public_key,
        vtep_mac: spec.backend_config.get(backend_config::VTEP_MAC).cloned(),
        health_check,
        subnets: spec
            .subnets
            .iter()
            .filter(|c| matches!(c.addr(), IpAddr::V4(_)))
            .copied()
            .collect(),
    })
}

/// Whether this side opens the IPsec cable, given that NAT discovery lets
/// it (`can`). IKE needs exactly one initiator: IKE SAs opened from both
/// sides at once can leave each side keeping a different one (a black hole
/// until dead-peer detection). Both sides decide alike from what both know:
/// the side that is not `--preferred-server` when exactly one is, else the
/// lower cluster id, opens; the other one opens only when the first cannot
/// reach it (our probes are answered, but its probes never arrived within
/// discovery's timeout).
pub fn ipsec_initiates(
    local: &LocalGateway,
    spec: &EndpointSpec,
    found: &Found,
    can: bool,
) -> bool {
    if !can {
        return false;
    }
    let remote_preferred = flag(spec, backend_config::PREFERRED_SERVER, false);
    let designated = if local.preferred_server == remote_preferred {
        local.cluster_id < spec.cluster_id
    } else {
        !local.preferred_server
    };
    let first_cannot_reach_us =
        matches!(found.outcome, Outcome::Reach { .. }) && found.timed_out && !found.inbound_seen;
    designated || first_cannot_reach_us
}

/// Where and how the cable goes.
struct CablePath {
    ip: Ipv4Addr,
    nat: bool,
    initiate: bool,
}

/// The address, NAT and opening side from NAT discovery's verdict, or why
/// there is no cable (yet). VXLAN has no handshake to open a NAT's mapping,
/// so it needs both directions to pass, as Submariner's `vxlan` (no NAT).
fn choose_path(
    local: &LocalGateway,
    spec: &EndpointSpec,
    private: Ipv4Addr,
    public: Option<Ipv4Addr>,
    port: u16,
    found: &Found,
) -> Result<CablePath, NotCabled> {
    let cluster = &spec.cluster_id;
    let vxlan = local.driver == CableDriver::Vxlan;
    // The preferred server answers; the other side opens the cable.
    let responder = local.preferred_server && !flag(spec, backend_config::PREFERRED_SERVER, false);
    let vxlan_hint = format!(
        "use --cable-driver wireguard (its handshake opens the NAT), or give the gateway \
         behind the NAT a port forward of UDP {port} and {} (ferry sandbox \
         create --nat=port-forward)",
        ports::NAT_DISCOVERY_PORT
    );
    match found.outcome {
        Outcome::Probing => Err(NotCabled::Waiting(format!(
            "NAT discovery: probing cluster {cluster}'s gateway on UDP {}",
            ports::NAT_DISCOVERY_PORT
        ))),
        Outcome::Reach {
            ip, nat, seen_as, ..
        } => {
            if vxlan && !found.inbound_seen {
                if !found.timed_out {
                    return Err(NotCabled::Waiting(format!(
                        "NAT discovery: cluster {cluster} answers at {ip}; waiting for its \
                         probes to reach this gateway (vxlan needs both directions)"
                    )));
                }
                return Err(NotCabled::Unusable(format!(
                    "the vxlan cable cannot cross this NAT: cluster {cluster} answers at {ip} \
                     and sees this gateway as {seen_as}, but none of its probes reach this \
                     gateway, so its VXLAN packets would not either; {vxlan_hint}"
                )));
            }
            Ok(CablePath {
                ip,
                nat,
                initiate: !(responder && found.inbound_seen),
            })
        }
        Outcome::InboundOnly { from, nat } => {
            if vxlan && !found.timed_out {
                return Err(NotCabled::Waiting(format!(
                    "NAT discovery: cluster {cluster}'s probes arrive from {from}; waiting \
                     for its addresses to answer (vxlan needs both directions)"
                )));
            }
            if vxlan {
                return Err(NotCabled::Unusable(format!(
                    "the vxlan cable cannot cross this NAT: cluster {cluster} is behind a NAT \
                     (its probes arrive from {from}; its addresses do not answer), and VXLAN \
                     has no handshake to open it; {vxlan_hint}"
                )));
            }
            Ok(CablePath {
                ip: *from.ip(),
                nat,
                initiate: false,
            })
        }
        Outcome::Unreachable => {
            // As Submariner after its discovery timeout: the Endpoint's
            // settings decide (natEnabled: its public IP), and the cable is
            // tried anyway; the status names the discovery failure.
            let nat_enabled = flag(spec, backend_config::NAT_ENABLED, true);
            let ip = match public {
                Some(p) if nat_enabled => p,
                _ => private,
            };
            Ok(CablePath {
                ip,
                nat: ip != private,
                initiate: !responder,
            })
        }
    }
}

/// Which remote gateway this one cables, per remote cluster: the remote
/// Endpoints it pairs with (by name). With active-active gateways a
/// cluster publishes one Endpoint per gateway; WireGuard routes a subnet
/// to one peer only and accepts a packet only from the peer whose subnets
/// hold its source, so each gateway holds at most one cable per remote
/// cluster, and the gateways pair by the slots their Endpoints claim
/// ([`ferry_api::gateway_pairs`]): both sides compute the same pairs, and a
/// gateway that leaves moves only its own pair. A remote cluster with
/// fewer gateways is cabled by some of them only (the route agents send
/// its traffic to those: see `ferry-route-agent`'s plan).
///
/// `me` is this gateway's Endpoint (the cluster's only one with
/// active-passive gateways); until it is among `endpoints` there is no
/// cable.
pub fn partners(
    local_cluster: &str,
    me: &str,
    endpoints: &BTreeMap<String, EndpointSpec>,
) -> BTreeMap<String, EndpointSpec> {
    ferry_api::gateway_pairs::pairs_by_cluster(local_cluster, endpoints)
        .into_values()
        .filter_map(|pairs| pairs.get(me).cloned())
        .filter_map(|name| Some((name.clone(), endpoints.get(&name)?.clone())))
        .collect()
}

#[cfg(test)]
mod tests;
