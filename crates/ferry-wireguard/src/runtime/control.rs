//! The control-plane state of a device: its key and the configured peers. Every change
//! rebuilds the immutable [`PeerTable`] the data path reads; peers whose protocol
//! settings did not change keep their sessions.

use crate::Error;
use crate::fastpath::Shared;
use crate::proto::allowed_ips::IpNet;
use crate::proto::key::{PrivateKey, PublicKey};
use crate::proto::peer::{Identity, Peer, PeerConfig, PeerTable};
use crate::proto::uapi::{PeerState, SetRequest};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

pub(crate) struct Entry {
    pub peer: Arc<Peer>,
    pub allowed_ips: Vec<IpNet>,
}

pub(crate) struct Control {
    pub private_key: PrivateKey,
    pub identity: Arc<Identity>,
    pub peers: BTreeMap<PublicKey, Entry>,
    next_index: u32,
}

impl Control {
    pub fn new(private_key: PrivateKey) -> Self {
        let identity = Arc::new(Identity::new(&private_key));
        Self {
            private_key,
            identity,
            peers: BTreeMap::new(),
            // Random start so indexes differ across restarts.
            next_index: rand::random::<u32>() & 0x00ff_ffff,
        }
    }

    fn alloc_index(&mut self) -> u32 {
        loop {
            self.next_index = (self.next_index + 1) & 0x00ff_ffff;
            let i = self.next_index;
            if !self.peers.values().any(|e| e.peer.index == i) {
                return i;
            }
        }
    }

    /// The table for the data path.
    pub fn table(&self) -> PeerTable {
        PeerTable::new(
            Some(self.identity.clone()),
            self.peers
                .values()
                .map(|e| (e.peer.clone(), &e.allowed_ips[..])),
        )
    }

    /// Add a peer, or change one. The session survives unless the preshared key or
    /// keepalive changed.
    pub fn upsert(&mut self, cfg: PeerConfig) {
        if let Some(e) = self.peers.get_mut(&cfg.public_key) {
            let p = &e.peer.config;
            if p.preshared_key == cfg.preshared_key
                && p.persistent_keepalive == cfg.persistent_keepalive
            {
                if let Some(ep) = cfg.endpoint {
                    e.peer.set_endpoint(ep);
                }
                e.allowed_ips = cfg.allowed_ips;
                return;
            }
        }
        let old_endpoint = self
            .peers
            .get(&cfg.public_key)
            .and_then(|e| e.peer.endpoint());
        let index = self.alloc_index();
        let allowed_ips = cfg.allowed_ips.clone();
        let peer = Peer::new(&self.private_key, cfg, index);
        if peer.endpoint().is_none()
            && let Some(ep) = old_endpoint
        {
            peer.set_endpoint(ep);
        }
        self.peers.insert(
            peer.public_key,
            Entry {
                peer: Arc::new(peer),
                allowed_ips,
            },
        );
    }

    pub fn remove(&mut self, key: &PublicKey) -> bool {
        self.peers.remove(key).is_some()
    }

    /// Change the private key: every session is rebuilt.
    pub fn set_private_key(&mut self, key: PrivateKey) {
        self.private_key = key;
        self.identity = Arc::new(Identity::new(&self.private_key));
        let cfgs: Vec<(PeerConfig, Vec<IpNet>, Option<std::net::SocketAddr>)> = self
            .peers
            .values()
            .map(|e| {
                (
                    e.peer.config.clone(),
                    e.allowed_ips.clone(),
                    e.peer.endpoint(),
                )
            })
            .collect();
        self.peers.clear();
        for (mut c, ips, ep) in cfgs {
            c.allowed_ips = ips;
            c.endpoint = ep.or(c.endpoint);
            self.upsert(c);
        }
    }

    /// The live configuration of a peer.
    pub fn peer_config(&self, key: &PublicKey) -> Option<PeerConfig> {
        self.peers.get(key).map(|e| {
            let mut c = e.peer.config.clone();
            c.allowed_ips = e.allowed_ips.clone();
            c.endpoint = e.peer.endpoint();
            c
        })
    }

    /// Apply a UAPI `set` request.
    pub fn apply(&mut self, req: SetRequest) -> Result<(), Error> {
        if let Some(Some(k)) = req.private_key
            && k != self.private_key
        {
            self.set_private_key(k);
        }
        if req.replace_peers {
            self.peers.clear();
        }
        for u in req.peers {
            if u.remove {
                self.remove(&u.public_key);
                continue;
            }
            let mut cfg = match self.peer_config(&u.public_key) {
                Some(c) => c,
                None if u.update_only => continue,
                None => PeerConfig::new(u.public_key),
            };
            if let Some(psk) = u.preshared_key {
                cfg.preshared_key = psk;
            }
            if let Some(ep) = u.endpoint {
                cfg.endpoint = Some(ep);
            }
            if let Some(ka) = u.persistent_keepalive {
                cfg.persistent_keepalive = (ka > 0).then_some(ka);
            }
            if u.replace_allowed_ips {
                cfg.allowed_ips.clear();
            }
            for a in u.allowed_ips {
                if !cfg.allowed_ips.contains(&a) {
                    cfg.allowed_ips.push(a);
                }
            }
            self.upsert(cfg);
        }
        Ok(())
    }

    /// Peer states for `wg show` and [`crate::Device::peers`].
    pub fn states(&self) -> Vec<PeerState> {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        self.peers
            .values()
            .map(|e| {
                let (hs, tx, rx) = e.peer.stats();
                PeerState {
                    public_key: e.peer.public_key,
                    preshared_key: e.peer.config.preshared_key.clone(),
                    endpoint: e.peer.endpoint(),
                    persistent_keepalive: e.peer.config.persistent_keepalive.unwrap_or(0),
                    allowed_ips: e.allowed_ips.clone(),
                    last_handshake: hs.map(|d| now.saturating_sub(d)),
                    rx_bytes: rx,
                    tx_bytes: tx,
                }
            })
            .collect()
    }

    /// Publish the current table to the data path.
    pub fn publish(&self, sh: &Shared) {
        sh.set_table(self.table());
    }
}
