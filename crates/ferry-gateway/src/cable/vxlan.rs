//! The `vxlan` driver: a kernel VXLAN interface between gateways, unencrypted,
//! for trusted networks. No learning and no ARP: every remote gateway is a
//! static fdb entry (its VTEP MAC → the address we reach it at) plus a
//! permanent neighbour entry for the next hop our routes use (its private
//! IP), and it publishes its MAC in the Endpoint's backendConfig.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use ferry_api::ferry::backend_config;
use ferry_api::ports::VXLAN_CABLE_PORT;
use ferry_net::{Mac, Vxlan};

use super::{CableConfig, net_err};
use crate::remote::RemoteGateway;
use crate::{Error, Result};

/// Name of the VXLAN cable interface.
pub const VXLAN_CABLE: &str = "ferry-vxc";
/// Its VNI (the route agent's vx-ferry uses 7100).
pub const VXLAN_CABLE_VNI: u32 = 7101;

pub struct VxlanCable {
    mac: Mac,
    /// Per remote cluster: (its MAC, the address we send to, its next hop).
    remotes: BTreeMap<String, (Mac, Ipv4Addr, Ipv4Addr)>,
}

/// The next hop our routes to `remote`'s subnets use on the cable: its
/// private IP, resolved by a permanent neighbour entry.
pub fn next_hop(remote: &RemoteGateway) -> IpAddr {
    IpAddr::V4(remote.private_ip)
}

impl VxlanCable {
    pub fn up(cfg: &CableConfig, mtu: u32) -> Result<Self> {
        // Send from the public address when it is on this node (remote
        // gateways expect our packets from there), else from the private one
        // and let the NAT rewrite it.
        let (local, dev) = match ferry_net::interface_of(None, IpAddr::V4(cfg.public_ip)) {
            Ok(dev) => (cfg.public_ip, dev),
            Err(_) => (
                cfg.private_ip,
                ferry_net::interface_of(None, IpAddr::V4(cfg.private_ip))
                    .map_err(|e| net_err("finding the underlay interface", e))?,
            ),
        };
        let mac = ferry_net::vtep_mac(local);
        let want = Vxlan {
            name: VXLAN_CABLE.into(),
            vni: VXLAN_CABLE_VNI,
            port: VXLAN_CABLE_PORT,
            local,
            dev,
            mtu,
            mac,
            // The health-check address is added by the caller.
            host_addr: None,
        };
        ferry_net::ensure_vxlan(None, &want)?;
        Ok(Self {
            mac,
            remotes: BTreeMap::new(),
        })
    }

    pub fn backend_config(&self) -> BTreeMap<String, String> {
        [
            (
                backend_config::VTEP_MAC.to_string(),
                ferry_net::format_mac(&self.mac),
            ),
            (
                backend_config::PORT.to_string(),
                VXLAN_CABLE_PORT.to_string(),
            ),
        ]
        .into()
    }

    pub fn connect(&mut self, remote: &RemoteGateway) -> Result<()> {
        let mac = remote
            .vtep_mac
            .as_deref()
            .and_then(ferry_net::parse_mac)
            .ok_or_else(|| {
                Error::Cable(format!(
                    "cluster {}'s Endpoint has no valid backendConfig.{}",
                    remote.cluster_id,
                    backend_config::VTEP_MAC
                ))
            })?;
        let want = (mac, remote.using_ip, remote.private_ip);
        if self.remotes.get(&remote.cluster_id) == Some(&want) {
            return Ok(());
        }
        if let Some(old) = self.remotes.remove(&remote.cluster_id) {
            self.forget(&old);
        }
        ferry_net::ensure_fdb(None, VXLAN_CABLE, &mac, IpAddr::V4(remote.using_ip))?;
        ferry_net::ensure_neigh(None, VXLAN_CABLE, remote.private_ip, &mac)?;
        self.remotes.insert(remote.cluster_id.clone(), want);
        Ok(())
    }

    pub fn disconnect(&mut self, cluster_id: &str) -> Result<()> {
        if let Some(old) = self.remotes.remove(cluster_id) {
            self.forget(&old);
        }
        Ok(())
    }

    fn forget(&self, (mac, dst, hop): &(Mac, Ipv4Addr, Ipv4Addr)) {
        if let Err(e) = ferry_net::delete_fdb(None, VXLAN_CABLE, mac, IpAddr::V4(*dst)) {
            tracing::warn!("removing fdb entry: {e}");
        }
        if let Err(e) = ferry_net::delete_neigh(None, VXLAN_CABLE, *hop) {
            tracing::warn!("removing neighbour entry: {e}");
        }
    }

    pub fn down(self) {
        if let Err(e) = ferry_net::delete_link(None, VXLAN_CABLE) {
            tracing::warn!("deleting {VXLAN_CABLE}: {e}");
        }
    }
}
