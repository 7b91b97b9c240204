//! Cables: the tunnel device of the active gateway and one connection per
//! remote cluster, with the routes that send that cluster's subnets into it.
//!
//! All drivers share the plumbing here: the health-check address on the
//! cable device, and routing table [`GATEWAY_TABLE`] (looked up before the
//! route agent's table by rule [`GATEWAY_RULE_PRIORITY`]) holding one route
//! per remote subnet. The table is ours alone, so it is rebuilt freely and
//! flushed when the cable goes down. The drivers differ only in the device and
//! how a remote is attached: a WireGuard peer, an IPsec peer (one IKE SA and
//! one child SA), or a static VXLAN fdb + neighbour entry.

mod ipsec;
mod vxlan;
mod wireguard;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use ferry_api::{CableDriver, Cidr};
use ferry_net::{GATEWAY_RULE_PRIORITY, GATEWAY_TABLE, Route};

use crate::config::IpsecLifetimes;
use crate::remote::RemoteGateway;
use crate::{Error, Result};

pub use ipsec::IPSEC_CABLE;
pub use vxlan::{VXLAN_CABLE, VXLAN_CABLE_VNI};
pub use wireguard::WIREGUARD_CABLE;

/// WireGuard over IPv4 adds at most 60 bytes; like wg-quick we leave 80 so the
/// same MTU also fits an IPv6 underlay.
pub const WIREGUARD_OVERHEAD: u32 = 80;

/// UDP-encapsulated ESP over IPv4 adds at most 65 bytes (IPv4 20, UDP 8,
/// SPI and sequence 8, IV 8, padding 3, pad length and next header 2, ICV
/// 16); 100 leaves room for an IPv6 underlay and makes the usual 1400 on a
/// 1500 underlay.
pub const IPSEC_OVERHEAD: u32 = 100;

/// What the active gateway's cable is built from.
#[derive(Clone, Debug)]
pub struct CableConfig {
    /// Driver of this cluster.
    pub driver: CableDriver,
    /// This gateway's health-check address (inside the cluster's pod CIDR);
    /// put on the cable device as a /32.
    pub health_check_ip: Ipv4Addr,
    /// The node's underlay address inside its cluster.
    pub private_ip: Ipv4Addr,
    /// The address remote gateways reach; may be a NAT's, not on this node.
    pub public_ip: Ipv4Addr,
    /// UDP port of the WireGuard cable, or of the IPsec cable (IKE and ESP).
    pub port: u16,
    /// MTU of the underlay interface.
    pub underlay_mtu: u32,
    /// WireGuard private key (wireguard driver).
    pub private_key: Option<ferry_wireguard::PrivateKey>,
    /// The clusterset's preshared key (wireguard and ipsec drivers).
    pub psk: Option<ferry_wireguard::PresharedKey>,
    /// This cluster's id (the IPsec identity).
    pub cluster_id: String,
    /// This cluster's subnets (the IPsec child SAs' local traffic selectors).
    pub subnets: Vec<Cidr>,
    /// When the IPsec cable rekeys its SAs.
    pub ipsec_lifetimes: IpsecLifetimes,
    /// The interface whose address the node's own traffic into the cable
    /// leaves from instead of the health-check address (kube-ovn: `ovn0`).
    pub host_source_dev: Option<HostSourceDev>,
}

/// An interface of the node whose address inside `within` is the source
/// of the node's own traffic into the cable: kube-ovn's `ovn0` in the join
/// subnet, as the route agent's kube-ovn handler sources it on every other
/// node (remote clusters route the join subnet back, and replies arrive
/// at an address of this node).
#[derive(Clone, Debug)]
pub struct HostSourceDev {
    /// The interface.
    pub dev: String,
    /// The CIDRs its address must lie in (this cluster's pod CIDRs).
    pub within: Vec<Cidr>,
}

/// The source of the node's own traffic into the cable: the lowest address
/// of `want`'s interface inside its CIDRs among `addrs`, else the
/// health-check address, with the reason when `want` was not met.
pub fn host_source(
    health_check_ip: Ipv4Addr,
    want: Option<&HostSourceDev>,
    addrs: &[ferry_net::IfAddr],
) -> (Ipv4Addr, Option<String>) {
    let Some(want) = want else {
        return (health_check_ip, None);
    };
    let found = addrs
        .iter()
        .filter(|a| a.dev == want.dev)
        .filter(|a| want.within.iter().any(|c| c.contains(IpAddr::V4(a.ip))))
        .map(|a| a.ip)
        .min();
    match found {
        Some(ip) => (ip, None),
        None => (
            health_check_ip,
            Some(format!(
                "no IPv4 address of {} inside the cluster CIDRs {:?}; the node's own traffic \
                 to other clusters leaves from the health-check address {health_check_ip}",
                want.dev,
                want.within
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
            )),
        ),
    }
}

/// [`host_source`] with the addresses the node has now.
fn resolve_host_source(cfg: &CableConfig) -> Ipv4Addr {
    let addrs = match &cfg.host_source_dev {
        Some(want) => ferry_net::list_addrs(None, Some(&want.dev)).unwrap_or_else(|e| {
            tracing::warn!("listing {}'s addresses: {e}", want.dev);
            Vec::new()
        }),
        None => Vec::new(),
    };
    let (ip, why) = host_source(cfg.health_check_ip, cfg.host_source_dev.as_ref(), &addrs);
    match why {
        Some(why) => tracing::warn!("{why}"),
        None if ip != cfg.health_check_ip => {
            tracing::info!("the node's own traffic to other clusters leaves from {ip}")
        }
        None => {}
    }
    ip
}

/// The active gateway's cable device and its connections.
pub struct Cable {
    driver: Driver,
    /// Remote subnets routed into the cable, by cluster.
    routes: BTreeMap<String, BTreeSet<Cidr>>,
    mtu: u32,
    /// The source of this node's own traffic into the cable: the
    /// health-check address, or [`CableConfig::host_source_dev`]'s (inside
    /// the cluster's pod CIDRs either way, so remote clusters route the
    /// replies back).
    source: Ipv4Addr,
}

enum Driver {
    Wireguard(wireguard::WireguardCable),
    Vxlan(vxlan::VxlanCable),
    // Boxed: the IPsec peer template makes it several times the others' size.
    Ipsec(Box<ipsec::IpsecCable>),
}

impl Cable {
    /// Brings the device up with the health-check address and installs the
    /// policy rule. Leftovers of an earlier run are removed first.
    pub fn up(cfg: &CableConfig) -> Result<Cable> {
        cleanup();
        let (driver, mtu) = match cfg.driver {
            CableDriver::Wireguard => {
                let mtu = cfg.underlay_mtu.saturating_sub(WIREGUARD_OVERHEAD);
                (
                    Driver::Wireguard(wireguard::WireguardCable::up(cfg, mtu)?),
                    mtu,
                )
            }
            CableDriver::Vxlan => {
                let mtu = cfg.underlay_mtu.saturating_sub(ferry_net::VXLAN_OVERHEAD);
                (Driver::Vxlan(vxlan::VxlanCable::up(cfg, mtu)?), mtu)
            }
            CableDriver::Ipsec => {
                let mtu = cfg.underlay_mtu.saturating_sub(IPSEC_OVERHEAD);
                (
                    Driver::Ipsec(Box::new(ipsec::IpsecCable::up(cfg, mtu)?)),
                    mtu,
                )
            }
        };
        let dev = driver.device();
        ferry_net::add_addr(None, dev, IpAddr::V4(cfg.health_check_ip), 32)?;
        // Replies from remote clusters arrive here from the cable while the
        // route back to their source is the cable too, but pod traffic from
        // other nodes arrives on vx-ferry; loose mode accepts both.
        ferry_net::sysctl_set(None, &format!("net.ipv4.conf.{dev}.rp_filter"), "2")?;
        ferry_net::sysctl_set(None, "net.ipv4.ip_forward", "1")?;
        ferry_net::ensure_rule(None, GATEWAY_RULE_PRIORITY, GATEWAY_TABLE)?;
        Ok(Cable {
            driver,
            routes: BTreeMap::new(),
            mtu,
            source: resolve_host_source(cfg),
        })
    }

    /// The cable interface's name.
    pub fn device(&self) -> &str {
        self.driver.device()
    }

    /// The cable interface's MTU.
    pub fn mtu(&self) -> u32 {
        self.mtu
    }

    /// Settings remote gateways need, for our Endpoint's backendConfig.
    pub fn backend_config(&self) -> BTreeMap<String, String> {
        match &self.driver {
            Driver::Wireguard(w) => w.backend_config(),
            Driver::Vxlan(v) => v.backend_config(),
            Driver::Ipsec(i) => i.backend_config(),
        }
    }

    /// Why the cable to `cluster_id` cannot be negotiated, when the driver
    /// knows (IPsec: the IKE failure, e.g. a wrong preshared key).
    pub fn failure(&self, cluster_id: &str) -> Option<String> {
        match &self.driver {
            Driver::Ipsec(i) => i.failure(cluster_id),
            Driver::Wireguard(_) | Driver::Vxlan(_) => None,
        }
    }

    /// What the driver has to say about a cable that works (IPsec: its
    /// peer moved to another address mid-session).
    pub fn notice(&self, cluster_id: &str) -> Option<String> {
        match &self.driver {
            Driver::Ipsec(i) => i.notice(cluster_id),
            Driver::Wireguard(_) | Driver::Vxlan(_) => None,
        }
    }

    /// Attaches (or updates) the cable to `remote` and routes its subnets
    /// into it; idempotent.
    pub fn connect(&mut self, remote: &RemoteGateway) -> Result<()> {
        match &mut self.driver {
            Driver::Wireguard(w) => w.connect(remote)?,
            Driver::Vxlan(v) => v.connect(remote)?,
            Driver::Ipsec(i) => i.connect(remote)?,
        }
        let want: BTreeSet<Cidr> = remote.subnets.iter().copied().collect();
        let have = self
            .routes
            .get(&remote.cluster_id)
            .cloned()
            .unwrap_or_default();
        for gone in have.difference(&want) {
            ferry_net::delete_route(None, GATEWAY_TABLE, gone)?;
        }
        for cidr in &want {
            let mut route = Route::to(*cidr);
            route.dev = Some(self.device().to_string());
            // The gateway node's host-network traffic (a node shell's ping,
            // kubelet probes) leaves from its pod-CIDR (kube-ovn: ovn0's
            // join-subnet) address, not its node IP.
            route.src = Some(IpAddr::V4(self.source));
            if let Driver::Vxlan(_) = self.driver {
                route.via = Some(vxlan::next_hop(remote));
                route.onlink = true;
            }
            ferry_net::replace_route(None, GATEWAY_TABLE, &route)?;
        }
        self.routes.insert(remote.cluster_id.clone(), want);
        Ok(())
    }

    /// Detaches the cable from a cluster and removes its routes.
    pub fn disconnect(&mut self, cluster_id: &str) -> Result<()> {
        if let Some(cidrs) = self.routes.remove(cluster_id) {
            for c in &cidrs {
                ferry_net::delete_route(None, GATEWAY_TABLE, c)?;
            }
        }
        match &mut self.driver {
            Driver::Wireguard(w) => w.disconnect(cluster_id),
            Driver::Vxlan(v) => v.disconnect(cluster_id),
            Driver::Ipsec(i) => i.disconnect(cluster_id),
        }
    }

    /// Clusters currently attached.
    pub fn connected(&self) -> impl Iterator<Item = &str> {
        self.routes.keys().map(String::as_str)
    }

    /// What the driver counts per remote cluster (WireGuard: bytes and
    /// handshakes; IPsec: rekeys; the VXLAN driver counts nothing per
    /// cluster).
    pub fn counters(&self) -> Vec<crate::metrics::CableCounters> {
        match &self.driver {
            Driver::Wireguard(w) => w.counters(),
            Driver::Ipsec(i) => i.counters(),
            Driver::Vxlan(_) => Vec::new(),
        }
    }

    /// Takes the cable down: routes, rule and device.
    pub fn down(self) {
        match self.driver {
            Driver::Wireguard(w) => w.down(),
            Driver::Vxlan(v) => v.down(),
            Driver::Ipsec(i) => i.down(),
        }
        cleanup();
    }
}

impl Driver {
    fn device(&self) -> &str {
        match self {
            Driver::Wireguard(_) => WIREGUARD_CABLE,
            Driver::Vxlan(_) => VXLAN_CABLE,
            Driver::Ipsec(_) => IPSEC_CABLE,
        }
    }
}

/// Removes everything a cable may have left on this node: the gateway's
/// table and rule, and the cable devices (a WireGuard or IPsec TUN
/// disappears with its process). Errors are logged: cleanup must get as far
/// as it can.
pub fn cleanup() {
    if let Err(e) = ferry_net::flush_table(None, GATEWAY_TABLE) {
        tracing::warn!("flushing table {GATEWAY_TABLE}: {e}");
    }
    if let Err(e) = ferry_net::delete_rule(None, GATEWAY_RULE_PRIORITY) {
        tracing::warn!("deleting rule {GATEWAY_RULE_PRIORITY}: {e}");
    }
    for dev in [VXLAN_CABLE, WIREGUARD_CABLE, IPSEC_CABLE] {
        if let Err(e) = ferry_net::delete_link(None, dev) {
            tracing::warn!("deleting {dev}: {e}");
        }
    }
}

fn net_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Cable(format!("{what}: {e}"))
}

#[cfg(test)]
mod tests;
