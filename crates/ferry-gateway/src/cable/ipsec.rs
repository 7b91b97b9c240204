//! The `ipsec` driver (`libreswan` is accepted as its name): ferry's
//! user-space IPsec device (`ferry-ipsec`, IKEv2 + ESP over a TUN device)
//! with one IKE SA and one child SA per remote cluster. The child SA's
//! traffic selectors are all of this cluster's subnets and all of the
//! remote's, so one SA pair carries every pod and service subnet (Libreswan
//! builds one tunnel per subnet pair, four for two subnets each side; one
//! IKEv2 child SA may carry several selectors, so one is enough). IKE and
//! ESP both use the cable's UDP port (NAT-T, 4500 by default): ESP is always
//! UDP-encapsulated, since a user-space process cannot receive plain ESP
//! (IP protocol 50) without raw sockets.
//!
//! Authentication is the clusterset's preshared key from broker-info; each
//! side proves its cluster id (an `ID_FQDN`). Exactly one side initiates
//! ([`crate::remote::ipsec_initiates`]).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ferry_api::Cidr;
use ferry_api::ferry::backend_config;
use ferry_ipsec::{Device, DeviceConfig, Identity, PeerConfig, Psk, Timers, TrafficSelector};

use super::{CableConfig, net_err};
use crate::config::IpsecLifetimes;
use crate::metrics::{CableCounters, SaRekeys};
use crate::remote::RemoteGateway;
use crate::{Error, Result};

/// Name of the IPsec cable interface.
pub const IPSEC_CABLE: &str = "ferry-ipsec";

/// IKE proposals, most preferred first (AES-GCM has hardware support on
/// most gateways; ChaCha20-Poly1305 is quicker without it).
const IKE_SUITES: [&str; 2] = [
    "aes256gcm16-prfsha256-x25519",
    "chacha20poly1305-prfsha256-x25519",
];
/// ESP proposals, most preferred first.
const ESP_SUITES: [&str; 2] = ["aes256gcm16", "chacha20poly1305"];

pub struct IpsecCable {
    device: Device,
    /// Everything every peer shares: key, our identity, our subnets.
    template: PeerConfig,
    /// Remote cluster → its peer's configuration.
    peers: BTreeMap<String, PeerConfig>,
}

/// Timers for cables between gateways: the configured lifetimes (rekeyed
/// in their last tenth), and quicker retransmissions and retries than
/// strongSwan's defaults (2 s, 5 s), so a gateway that took over after a
/// failover is answered within the failover budget.
pub fn timers(lifetimes: IpsecLifetimes) -> Timers {
    Timers {
        ike_rekey: lifetimes.ike,
        child_rekey: lifetimes.child,
        retransmit_base: Duration::from_millis(500),
        retransmit_tries: 6,
        retry: Duration::from_secs(1),
        dpd: Duration::from_secs(10),
    }
}

/// The traffic selectors of `cidrs` (IPv4 only, as the cable's routes).
pub fn selectors(cidrs: &[Cidr]) -> Result<Vec<TrafficSelector>> {
    cidrs
        .iter()
        .filter(|c| matches!(c.addr(), IpAddr::V4(_)))
        .map(|c| {
            TrafficSelector::subnet(c.addr(), c.prefix_len())
                .map_err(|e| net_err(&format!("traffic selector {c}"), e))
        })
        .collect()
}

/// The peer configuration shared by every remote: its remote fields are
/// filled in by [`peer_config`].
pub fn template(cfg: &CableConfig) -> Result<PeerConfig> {
    let psk = cfg.psk.as_ref().ok_or_else(|| {
        Error::Cable("the ipsec cable needs the clusterset's preshared key".into())
    })?;
    let parse = |what: &str, e: ferry_ipsec::Error| net_err(what, e);
    Ok(PeerConfig {
        psk: Psk::new(psk.as_bytes().to_vec()),
        local_id: Identity::fqdn(&cfg.cluster_id),
        remote_id: Identity::fqdn(""),
        local_addr: SocketAddr::new(IpAddr::V4(cfg.private_ip), cfg.port),
        remote_addr: SocketAddr::new(IpAddr::V4(cfg.private_ip), cfg.port),
        ike_suites: IKE_SUITES
            .iter()
            .map(|s| s.parse().map_err(|e| parse("IKE proposal", e)))
            .collect::<Result<_>>()?,
        esp_suites: ESP_SUITES
            .iter()
            .map(|s| s.parse().map_err(|e| parse("ESP proposal", e)))
            .collect::<Result<_>>()?,
        local_ts: selectors(&cfg.subnets)?,
        remote_ts: Vec::new(),
        initiate: false,
        // This implementation always sends ESP in UDP; claiming a NAT makes
        // a peer that could send plain ESP (strongSwan) do the same.
        force_encap: true,
        timers: timers(cfg.ipsec_lifetimes),
    })
}

/// The peer configuration for `remote`: its cluster id as identity, the
/// address the plan chose, its subnets, and whether we initiate.
pub fn peer_config(template: &PeerConfig, remote: &RemoteGateway) -> Result<PeerConfig> {
    let remote_ts = selectors(&remote.subnets)?;
    if remote_ts.is_empty() {
        return Err(Error::Cable(format!(
            "cluster {} publishes no IPv4 subnet to build an IPsec child SA for",
            remote.cluster_id
        )));
    }
    Ok(PeerConfig {
        remote_id: Identity::fqdn(&remote.cluster_id),
        remote_addr: SocketAddr::new(IpAddr::V4(remote.using_ip), remote.port),
        remote_ts,
        initiate: remote.initiate,
        ..template.clone()
    })
}

impl IpsecCable {
    pub fn up(cfg: &CableConfig, mtu: u32) -> Result<Self> {
        let template = template(cfg)?;
        let device = Device::start(DeviceConfig {
            name: IPSEC_CABLE.into(),
            mtu: u16::try_from(mtu).unwrap_or(u16::MAX),
            address: Some((cfg.health_check_ip, 32)),
            port: cfg.port,
            peers: Vec::new(),
        })
        .map_err(|e| net_err("starting the IPsec device", e))?;
        Ok(Self {
            device,
            template,
            peers: BTreeMap::new(),
        })
    }

    pub fn backend_config(&self) -> BTreeMap<String, String> {
        [(
            backend_config::PORT.to_string(),
            self.device.port().to_string(),
        )]
        .into()
    }

    pub fn connect(&mut self, remote: &RemoteGateway) -> Result<()> {
        let want = peer_config(&self.template, remote)?;
        if let Some(have) = self.peers.get(&remote.cluster_id)
            && have.same_peer(&want)
            && have.initiate == want.initiate
        {
            return Ok(());
        }
        self.device
            .upsert_peer(want.clone())
            .map_err(|e| net_err(&format!("IPsec peer {}", remote.cluster_id), e))?;
        self.peers.insert(remote.cluster_id.clone(), want);
        Ok(())
    }

    pub fn disconnect(&mut self, cluster_id: &str) -> Result<()> {
        if let Some(p) = self.peers.remove(cluster_id) {
            self.device.remove_peer(&p.remote_id);
        }
        Ok(())
    }

    /// Why the IKE negotiation with `cluster_id` failed, if it did.
    pub fn failure(&self, cluster_id: &str) -> Option<String> {
        let id = &self.peers.get(cluster_id)?.remote_id;
        self.device
            .peers()
            .into_iter()
            .find(|p| p.remote_id == *id)
            .and_then(|p| match p.status {
                ferry_ipsec::Status::Failed(why) => Some(format!("IPsec: {why}")),
                _ => None,
            })
    }

    /// IKE and child SA rekeys per remote cluster.
    pub fn counters(&self) -> Vec<CableCounters> {
        let stats = self.device.peers();
        self.peers
            .iter()
            .filter_map(|(cluster, cfg)| {
                let s = stats.iter().find(|s| s.remote_id == cfg.remote_id)?;
                Some(CableCounters {
                    remote_cluster: cluster.clone(),
                    rx_bytes: None,
                    tx_bytes: None,
                    last_handshake: None,
                    rekeys: Some(SaRekeys {
                        ike: s.ike_rekeys,
                        child: s.child_rekeys,
                    }),
                })
            })
            .collect()
    }

    /// What the Gateway status should say about a working cable to
    /// `cluster_id`: that its peer changed address mid-session (a NAT
    /// rebinding, say) and the SAs followed it there.
    pub fn notice(&self, cluster_id: &str) -> Option<String> {
        let id = &self.peers.get(cluster_id)?.remote_id;
        let p = self
            .device
            .peers()
            .into_iter()
            .find(|p| p.remote_id == *id)?;
        let from = p.moved_from?;
        Some(format!(
            "IPsec: the peer moved mid-session from {from} to {}; following it",
            p.remote
        ))
    }

    pub fn down(self) {
        self.device.shutdown();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn cable_config() -> CableConfig {
        CableConfig {
            driver: ferry_api::CableDriver::Ipsec,
            health_check_ip: "100.64.0.1".parse().unwrap(),
            private_ip: "198.18.0.10".parse().unwrap(),
            public_ip: "198.18.0.10".parse().unwrap(),
            port: 4500,
            underlay_mtu: 1500,
            private_key: None,
            psk: Some(
                "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
                    .parse()
                    .unwrap(),
            ),
            cluster_id: "cluster0".into(),
            subnets: Cidr::parse_list("100.64.0.0/16,100.96.0.0/16,fd00::/64").unwrap(),
            ipsec_lifetimes: IpsecLifetimes {
                ike: Duration::from_secs(40),
                child: Duration::from_secs(20),
            },
            host_source_dev: None,
        }
    }

    fn remote(initiate: bool) -> RemoteGateway {
        RemoteGateway {
            cluster_id: "cluster1".into(),
            endpoint: "cluster1".into(),
            hostname: "cluster1-node0".into(),
            private_ip: "198.18.1.10".parse().unwrap(),
            using_ip: "198.19.1.10".parse().unwrap(),
            using_nat: true,
            initiate,
            port: 4600,
            public_key: None,
            vtep_mac: None,
            health_check: None,
            subnets: Cidr::parse_list("100.65.0.0/16,100.97.0.0/16").unwrap(),
        }
    }

    #[test]
    fn one_child_sa_covers_every_subnet_of_both_clusters() {
        let t = template(&cable_config()).unwrap();
        assert_eq!(t.psk.as_bytes(), &[1u8; 32]);
        assert_eq!(t.local_id, Identity::fqdn("cluster0"));
        // IPv6 subnets are not routed into the cable: not offered either.
        let local: Vec<String> = t.local_ts.iter().map(ToString::to_string).collect();
        assert_eq!(local, ["100.64.0.0/16", "100.96.0.0/16"]);
        assert!(t.force_encap, "ESP is always UDP-encapsulated");
        // The configured lifetimes are when the SAs are rekeyed.
        assert_eq!(t.timers.ike_rekey, Duration::from_secs(40));
        assert_eq!(t.timers.child_rekey, Duration::from_secs(20));
        let p = peer_config(&t, &remote(true)).unwrap();
        assert_eq!(p.remote_id, Identity::fqdn("cluster1"));
        assert_eq!(p.remote_addr, "198.19.1.10:4600".parse().unwrap());
        let theirs: Vec<String> = p.remote_ts.iter().map(ToString::to_string).collect();
        assert_eq!(theirs, ["100.65.0.0/16", "100.97.0.0/16"]);
        assert!(p.initiate);
        p.validate().unwrap();
        // Who initiates may change without renegotiating; the address may not.
        let q = peer_config(&t, &remote(false)).unwrap();
        assert!(p.same_peer(&q));
        let mut moved = remote(true);
        moved.using_ip = "198.19.1.11".parse().unwrap();
        assert!(!p.same_peer(&peer_config(&t, &moved).unwrap()));
    }

    #[test]
    fn a_remote_without_ipv4_subnets_is_refused_with_its_name() {
        let t = template(&cable_config()).unwrap();
        let mut r = remote(true);
        r.subnets = Cidr::parse_list("fd01::/64").unwrap();
        let e = peer_config(&t, &r).unwrap_err().to_string();
        assert!(e.contains("cluster1") && e.contains("IPv4"), "{e}");
        let mut no_psk = cable_config();
        no_psk.psk = None;
        assert!(template(&no_psk).is_err());
    }
}
