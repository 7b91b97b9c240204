//! From a remote cluster's `Endpoint` to the cable this gateway should hold
//! to it: which address to use (private when both gateways share a network,
//! public otherwise), whether NAT is in the way, and the reasons a cable
//! cannot be built (different cable drivers, a missing key). Pure.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use ferry_api::ferry::backend_config;
use ferry_api::ports::{self, DEFAULT_CABLE_PORT};
use ferry_api::{CableDriver, Cidr, EndpointSpec};

/// This gateway as the planner needs it.
#[derive(Clone, Debug)]
pub struct LocalGateway {
    /// Cable driver of this cluster.
    pub driver: CableDriver,
    /// Underlay address inside the cluster's node network.
    pub private_ip: Ipv4Addr,
    /// Address other clusters reach (may equal the private one).
    pub public_ip: Ipv4Addr,
    /// Networks directly attached to this node (address/prefix of every
    /// local interface): a remote private IP inside one is reachable directly.
    pub attached: Vec<Cidr>,
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
    /// The address this cable uses.
    pub using_ip: Ipv4Addr,
    /// Whether that is a public address different from its private one.
    pub using_nat: bool,
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

/// Why a remote cannot be cabled; the text goes into the Gateway status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unusable(pub String);

/// Plans the cable to one remote endpoint.
pub fn plan(
    local: &LocalGateway,
    name: &str,
    spec: &EndpointSpec,
) -> Result<RemoteGateway, Unusable> {
    if spec.cable_driver != local.driver {
        return Err(Unusable(format!(
            "cable driver mismatch: cluster {} uses {}, this cluster uses {}; \
             every cluster of a clusterset must use the same driver (ferry join --cable-driver)",
            spec.cluster_id, spec.cable_driver, local.driver
        )));
    }
    let IpAddr::V4(private) = spec.private_ip else {
        return Err(Unusable(format!(
            "IPv6 gateway address {} is not supported yet",
            spec.private_ip
        )));
    };
    let public = match spec.public_ip {
        Some(IpAddr::V4(p)) => Some(p),
        Some(IpAddr::V6(p)) => {
            return Err(Unusable(format!(
                "IPv6 gateway address {p} is not supported yet"
            )));
        }
        None => None,
    };
    let shares_network = local
        .attached
        .iter()
        .any(|c| c.contains(IpAddr::V4(private)))
        || public.is_some_and(|p| p == local.public_ip);
    let (using_ip, using_nat) = match public {
        Some(p) if !shares_network => (p, p != private),
        _ => (private, false),
    };
    let port = match spec.backend_config.get(backend_config::PORT) {
        Some(p) => p
            .parse()
            .map_err(|_| Unusable(format!("its backendConfig port {p:?} is not a UDP port")))?,
        None => DEFAULT_CABLE_PORT,
    };
    let public_key = spec.backend_config.get(backend_config::PUBLIC_KEY).cloned();
    if local.driver == CableDriver::Wireguard && public_key.is_none() {
        return Err(Unusable(
            "its Endpoint has no WireGuard public key (backendConfig.publicKey)".into(),
        ));
    }
    let health_check = ports::health_check_addr(spec);
    Ok(RemoteGateway {
        cluster_id: spec.cluster_id.clone(),
        endpoint: name.into(),
        hostname: spec.hostname.clone(),
        private_ip: private,
        using_ip,
        using_nat,
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

#[cfg(test)]
mod tests;
