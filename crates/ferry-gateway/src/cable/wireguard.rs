//! The `wireguard` driver: ferry's user-space WireGuard device (`ferry-wireguard`)
//! with one peer per remote cluster, keyed by the remote gateway's public key,
//! the clusterset's preshared key, and the remote subnets as allowed IPs.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use ferry_api::ferry::backend_config;
use ferry_wireguard::{Device, DeviceConfig, IpNet, PeerConfig, PublicKey};

use super::{CableConfig, net_err};
use crate::remote::RemoteGateway;
use crate::{Error, Result};

/// Name of the WireGuard cable interface.
pub const WIREGUARD_CABLE: &str = "ferry-wg";

/// Keepalive through NATs: their UDP mappings often live 30 s. The health
/// checker keeps a busy cable warm anyway; this covers a quiet one.
const KEEPALIVE_SECS: u16 = 15;

pub struct WireguardCable {
    device: Device,
    psk: Option<ferry_wireguard::PresharedKey>,
    peers: BTreeMap<String, PeerConfig>,
}

impl WireguardCable {
    pub fn up(cfg: &CableConfig, mtu: u32) -> Result<Self> {
        let key = cfg
            .private_key
            .clone()
            .ok_or_else(|| Error::Cable("the wireguard cable needs a private key".into()))?;
        let mut dc = DeviceConfig::new(WIREGUARD_CABLE, key);
        dc.listen_port = Some(cfg.port);
        dc.mtu = u16::try_from(mtu).unwrap_or(u16::MAX);
        dc.addresses = vec![(IpAddr::V4(cfg.health_check_ip), 32)];
        // Status comes from the Gateway object; the UAPI socket path
        // (/var/run/wireguard/NAME.sock) is shared by every network namespace
        // on a host, so it would collide between sandbox nodes.
        dc.uapi = false;
        let device = Device::start(dc).map_err(|e| net_err("starting the WireGuard device", e))?;
        Ok(Self {
            device,
            psk: cfg.psk.clone(),
            peers: BTreeMap::new(),
        })
    }

    pub fn backend_config(&self) -> BTreeMap<String, String> {
        [
            (
                backend_config::PUBLIC_KEY.to_string(),
                self.device.public_key().to_string(),
            ),
            (
                backend_config::PORT.to_string(),
                self.device.listen_port().to_string(),
            ),
        ]
        .into()
    }

    pub fn connect(&mut self, remote: &RemoteGateway) -> Result<()> {
        let key: PublicKey = remote
            .public_key
            .as_deref()
            .unwrap_or_default()
            .parse()
            .map_err(|e| net_err(&format!("cluster {}'s public key", remote.cluster_id), e))?;
        let mut allowed = Vec::new();
        for c in &remote.subnets {
            allowed.push(
                IpNet::new(c.addr(), c.prefix_len())
                    .map_err(|e| net_err(&format!("allowed IP {c}"), e))?,
            );
        }
        let want = PeerConfig {
            public_key: key,
            preshared_key: self.psk.clone(),
            // A remote behind a NAT opens the cable; its authenticated
            // packets tell the device where it is (WireGuard roaming).
            endpoint: remote
                .initiate
                .then(|| SocketAddr::new(IpAddr::V4(remote.using_ip), remote.port)),
            allowed_ips: allowed,
            persistent_keepalive: Some(KEEPALIVE_SECS),
        };
        match self.peers.get(&remote.cluster_id) {
            Some(have) if *have == want => return Ok(()),
            Some(have) if have.public_key != key => {
                // A new gateway took over that cluster: a new identity.
                self.device.remove_peer(&have.public_key);
            }
            _ => {}
        }
        self.device.upsert_peer(want.clone());
        self.peers.insert(remote.cluster_id.clone(), want);
        Ok(())
    }

    pub fn disconnect(&mut self, cluster_id: &str) -> Result<()> {
        if let Some(p) = self.peers.remove(cluster_id) {
            self.device.remove_peer(&p.public_key);
        }
        Ok(())
    }

    /// Bytes and the last handshake per remote cluster.
    pub fn counters(&self) -> Vec<crate::metrics::CableCounters> {
        let stats = self.device.peers();
        self.peers
            .iter()
            .filter_map(|(cluster, cfg)| {
                let s = stats
                    .iter()
                    .find(|s| s.config.public_key == cfg.public_key)?;
                Some(crate::metrics::CableCounters {
                    remote_cluster: cluster.clone(),
                    rx_bytes: Some(s.rx_bytes),
                    tx_bytes: Some(s.tx_bytes),
                    last_handshake: s.last_handshake,
                    rekeys: None,
                })
            })
            .collect()
    }

    pub fn down(self) {
        self.device.shutdown();
    }
}
