//! A peer: its configuration, its boringtun `Tunn` (the whole protocol state for that
//! peer), its current endpoint, and the immutable [`PeerTable`] snapshot the data path
//! reads once per batch.

use super::allowed_ips::{AllowedIps, IpNet};
use super::key::{PresharedKey, PrivateKey, PublicKey};
use boringtun::noise::Tunn;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Lock a mutex, ignoring poisoning: a panicking data-path thread must not take the
/// control plane down with it, and every critical section leaves the state valid.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Settings of one peer, as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerConfig {
    /// The peer's public key: its identity.
    pub public_key: PublicKey,
    /// Optional preshared key; both sides must agree.
    pub preshared_key: Option<PresharedKey>,
    /// Where to send to, until the peer roams (authenticated packets from a new
    /// address move it).
    pub endpoint: Option<SocketAddr>,
    /// Inner addresses routed to this peer, and accepted from it.
    pub allowed_ips: Vec<IpNet>,
    /// Send a keepalive every this many seconds (0 or `None`: off).
    pub persistent_keepalive: Option<u16>,
}

impl PeerConfig {
    /// A peer with only a public key.
    pub fn new(public_key: PublicKey) -> Self {
        Self {
            public_key,
            preshared_key: None,
            endpoint: None,
            allowed_ips: Vec::new(),
            persistent_keepalive: None,
        }
    }
}

/// One peer at run time.
pub struct Peer {
    /// Identity.
    pub public_key: PublicKey,
    /// Local index (24 bits) given to boringtun; receiver indexes in incoming packets
    /// carry it in their upper 24 bits.
    pub index: u32,
    /// The protocol state machine.
    tunn: Mutex<Tunn>,
    endpoint: Mutex<Option<SocketAddr>>,
    /// The configuration this peer's protocol state was built from (the live endpoint
    /// and allowed IPs are kept elsewhere).
    pub config: PeerConfig,
    created: Instant,
    /// Milliseconds since `created` of the last PSK/auth warning (rate limit).
    last_auth_warning_ms: AtomicU64,
    /// Data packets dropped because their inner source was outside allowed IPs.
    pub dropped_src: AtomicU64,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("public_key", &self.public_key)
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl Peer {
    /// A fresh peer (no session yet).
    pub fn new(own: &PrivateKey, config: PeerConfig, index: u32) -> Self {
        let tunn = Tunn::new(
            own.secret(),
            config.public_key.x25519(),
            config.preshared_key.as_ref().map(|k| k.0),
            config.persistent_keepalive.filter(|k| *k > 0),
            index,
            None,
        );
        Self {
            public_key: config.public_key,
            index,
            tunn: Mutex::new(tunn),
            endpoint: Mutex::new(config.endpoint),
            config,
            created: Instant::now(),
            last_auth_warning_ms: AtomicU64::new(0),
            dropped_src: AtomicU64::new(0),
        }
    }

    /// The protocol state, locked. Hold it for a whole batch, not per packet.
    pub fn tunn(&self) -> MutexGuard<'_, Tunn> {
        lock(&self.tunn)
    }

    /// Current endpoint.
    pub fn endpoint(&self) -> Option<SocketAddr> {
        *lock(&self.endpoint)
    }

    /// Move the endpoint (roaming, or reconfiguration). Returns whether it changed.
    pub fn set_endpoint(&self, addr: SocketAddr) -> bool {
        let mut e = lock(&self.endpoint);
        if *e == Some(addr) {
            return false;
        }
        *e = Some(addr);
        true
    }

    /// Whether a warning about failed authentication may be logged now (at most one
    /// per 10 s per peer).
    pub fn may_warn_auth(&self) -> bool {
        let now = self.created.elapsed().as_millis() as u64 + 10_001;
        let last = self.last_auth_warning_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) > 10_000 {
            self.last_auth_warning_ms.store(now, Ordering::Relaxed);
            true
        } else {
            false
        }
    }

    /// Time since the last completed handshake, bytes sent and received (inner).
    pub fn stats(&self) -> (Option<Duration>, u64, u64) {
        let (hs, tx, rx, _, _) = self.tunn().stats();
        (hs, tx as u64, rx as u64)
    }
}

/// This device's own keys, as the handshake code needs them, and the device-wide
/// handshake rate limiter (cookies under load).
pub struct Identity {
    /// Private key.
    pub secret: boringtun::x25519::StaticSecret,
    /// Public key.
    pub public: boringtun::x25519::PublicKey,
    /// Rate limiter for handshake initiations to this device.
    pub rate_limiter: Arc<boringtun::noise::rate_limiter::RateLimiter>,
}

/// Handshake initiations per second accepted before cookies are demanded.
const HANDSHAKE_RATE_LIMIT: u64 = 100;

impl Identity {
    /// From a private key.
    pub fn new(key: &PrivateKey) -> Self {
        let secret = key.secret();
        let public = boringtun::x25519::PublicKey::from(&secret);
        let rate_limiter = Arc::new(boringtun::noise::rate_limiter::RateLimiter::new(
            &public,
            HANDSHAKE_RATE_LIMIT,
        ));
        Self {
            secret,
            public,
            rate_limiter,
        }
    }
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Identity(<redacted>)")
    }
}

/// An immutable view of all peers; replaced as a whole when peers change, so the data
/// path never sees a half-applied change.
#[derive(Default, Debug)]
pub struct PeerTable {
    identity: Option<Arc<Identity>>,
    by_key: HashMap<PublicKey, Arc<Peer>>,
    by_index: HashMap<u32, Arc<Peer>>,
    routes: AllowedIps<Arc<Peer>>,
}

impl PeerTable {
    /// Build a table from peers.
    pub fn new<'a>(
        identity: Option<Arc<Identity>>,
        peers: impl IntoIterator<Item = (Arc<Peer>, &'a [IpNet])>,
    ) -> Self {
        let mut t = Self {
            identity,
            ..Self::default()
        };
        for (p, nets) in peers {
            for net in nets {
                t.routes.insert(*net, p.clone());
            }
            t.by_index.insert(p.index, p.clone());
            t.by_key.insert(p.public_key, p);
        }
        t
    }
    /// This device's keys (none while it has no private key).
    pub fn identity(&self) -> Option<&Arc<Identity>> {
        self.identity.as_ref()
    }
    /// Peer by public key.
    pub fn get(&self, key: &PublicKey) -> Option<&Arc<Peer>> {
        self.by_key.get(key)
    }
    /// Peer owning an incoming receiver index (upper 24 bits).
    pub fn by_receiver_index(&self, idx: u32) -> Option<&Arc<Peer>> {
        self.by_index.get(&(idx >> 8))
    }
    /// Peer an inner destination routes to.
    pub fn route(&self, dst: IpAddr) -> Option<&Arc<Peer>> {
        self.routes.lookup(dst)
    }
    /// All peers (unordered).
    pub fn peers(&self) -> impl Iterator<Item = &Arc<Peer>> {
        self.by_key.values()
    }
    /// Number of peers.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }
    /// Whether there are no peers.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

#[cfg(test)]
mod tests;
