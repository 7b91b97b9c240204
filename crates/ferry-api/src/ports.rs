//! Default UDP ports of ferry's data plane, shared by the components that
//! listen on them (the gateway) and the ones that reach or diagnose them
//! (`ferry-ctl`). An Endpoint's `backendConfig` may publish other values;
//! these apply when it does not. Also the TCP ports each daemon serves
//! Prometheus `/metrics` on (the manifests' scrape annotations name them).

use std::net::SocketAddr;

use crate::ferry::backend_config;
use crate::{CableDriver, EndpointSpec};

/// Default UDP port of the WireGuard cable, and of the IPsec cable (IKE and
/// UDP-encapsulated ESP on the NAT-T port, RFC 3948).
pub const DEFAULT_CABLE_PORT: u16 = 4500;

/// Default UDP port of the gateway's health checker (inside the cable).
pub const DEFAULT_HEALTH_CHECK_PORT: u16 = 4801;

/// UDP port every gateway answers NAT discovery probes on (Submariner's
/// too); see [`crate::nat_discovery`].
pub const NAT_DISCOVERY_PORT: u16 = 4490;

/// UDP port on which a cluster's gateway nodes probe each other directly
/// (the standbys watch the active one; the Lease only arbitrates who takes
/// over). Firewalls between gateway nodes must let it through, else
/// failover waits for the Lease to expire.
pub const PEER_PROBE_PORT: u16 = 4802;

/// UDP port of the VXLAN cable between gateways (`ferry-vxc`).
pub const VXLAN_CABLE_PORT: u16 = 4800;

/// TCP port of `ferry agent`'s `/metrics`.
pub const AGENT_METRICS_PORT: u16 = 9160;

/// TCP port of `ferry gateway`'s `/metrics` (host network).
pub const GATEWAY_METRICS_PORT: u16 = 9161;

/// TCP port of `ferry route-agent`'s `/metrics` (host network).
pub const ROUTE_AGENT_METRICS_PORT: u16 = 9162;

/// TCP port of `ferry dns`'s `/metrics` (CoreDNS's metrics port).
pub const DNS_METRICS_PORT: u16 = 9153;

/// The cable port a driver listens on when the Endpoint publishes none.
pub fn default_cable_port(driver: CableDriver) -> u16 {
    match driver {
        CableDriver::Wireguard | CableDriver::Ipsec => DEFAULT_CABLE_PORT,
        CableDriver::Vxlan => VXLAN_CABLE_PORT,
    }
}

/// The health-check port `spec` publishes (an unparsable value counts as
/// none), else [`DEFAULT_HEALTH_CHECK_PORT`].
pub fn health_check_port(spec: &EndpointSpec) -> u16 {
    spec.backend_config
        .get(backend_config::HEALTH_CHECK_PORT)
        .and_then(|p| p.parse().ok())
        .unwrap_or(DEFAULT_HEALTH_CHECK_PORT)
}

/// Where `spec`'s health checker answers (inside the cable), when it
/// publishes a health-check address.
pub fn health_check_addr(spec: &EndpointSpec) -> Option<SocketAddr> {
    spec.health_check_ip
        .map(|ip| SocketAddr::new(ip, health_check_port(spec)))
}
