//! Async glue and the public handle: [`Device`] starts the data-path threads and one
//! control thread running a small tokio runtime for the protocol timers and the UAPI
//! control socket. It works the same whether or not the caller runs tokio itself.

mod control;
mod timers;
mod uapi_server;

use crate::fastpath::{self, Shared, Udp};
use crate::proto::allowed_ips::IpNet;
use crate::proto::key::PublicKey;
use crate::proto::peer::{PeerConfig, lock};
use crate::{DeviceConfig, Error};
use control::Control;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

pub(crate) struct Inner {
    pub shared: Arc<Shared>,
    pub ctl: Mutex<Control>,
    pub rekey_after: Option<Duration>,
}

/// A running WireGuard device. Dropping it stops the threads, removes the control
/// socket and deletes the TUN interface.
pub struct Device {
    inner: Arc<Inner>,
    threads: Vec<JoinHandle<()>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    uapi_path: Option<PathBuf>,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device")
            .field("name", &self.inner.shared.name)
            .finish_non_exhaustive()
    }
}

/// What [`Device::peers`] reports about one peer.
#[derive(Debug, Clone)]
pub struct PeerStats {
    /// The peer's configuration as it is now (endpoint: the current one).
    pub config: PeerConfig,
    /// Time of the last completed handshake.
    pub last_handshake: Option<SystemTime>,
    /// Inner bytes received from the peer.
    pub rx_bytes: u64,
    /// Inner bytes sent to the peer.
    pub tx_bytes: u64,
}

impl Device {
    /// Create the TUN interface and UDP socket, start the data path, and (if
    /// `cfg.uapi`) serve `/var/run/wireguard/<name>.sock`.
    pub fn start(cfg: DeviceConfig) -> Result<Self, Error> {
        if cfg.name.is_empty() || cfg.name.len() > 15 || cfg.name.contains('/') {
            return Err(Error::Config(format!("bad interface name {:?}", cfg.name)));
        }
        let udp = Udp::bind(cfg.listen_port.unwrap_or(0))?;
        let address = cfg.addresses.iter().find_map(|(a, p)| match a {
            std::net::IpAddr::V4(a) => Some((*a, *p)),
            std::net::IpAddr::V6(_) => None,
        });
        let tun = ferry_tun::open_tun(&cfg.name, cfg.mtu, address)?;
        let mut ctl = Control::new(cfg.private_key.clone());
        for p in cfg.peers.iter().cloned() {
            ctl.upsert(p);
        }
        let shared = Arc::new(Shared::new(
            cfg.name.clone(),
            tun,
            udp,
            cfg.mtu,
            ctl.table(),
        ));
        tracing::info!(
            iface = %cfg.name,
            public_key = %ctl.private_key.public_key(),
            listen_port = shared.udp.port(),
            peers = ctl.peers.len(),
            gso_segments = shared.udp.max_gso_segments(),
            gro_segments = shared.udp.gro_segments(),
            "wireguard device up"
        );
        let inner = Arc::new(Inner {
            shared: shared.clone(),
            ctl: Mutex::new(ctl),
            rekey_after: cfg.rekey_after,
        });
        let mut threads = Vec::new();
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(format!("{name}-{}", cfg.name))
                .spawn(f)
        };
        let sh = shared.clone();
        threads.push(spawn(
            "wg-tx",
            Box::new(move || fastpath::run_outbound(&sh)),
        )?);
        let sh = shared.clone();
        threads.push(spawn(
            "wg-rx",
            Box::new(move || fastpath::run_inbound(&sh)),
        )?);

        let uapi_path = cfg
            .uapi
            .then(|| PathBuf::from(format!("/var/run/wireguard/{}.sock", cfg.name)));
        let listener = match &uapi_path {
            Some(p) => Some(uapi_server::bind(p)?),
            None => None,
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let inn = inner.clone();
        threads.push(spawn(
            "wg-ctl",
            Box::new(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!("control runtime: {e}");
                        return;
                    }
                };
                rt.block_on(async move {
                    let timers = timers::run(inn.clone());
                    let uapi = async {
                        match listener {
                            Some(l) => uapi_server::serve(inn.clone(), l).await,
                            None => std::future::pending().await,
                        }
                    };
                    tokio::select! {
                        _ = rx => {}
                        _ = timers => {}
                        _ = uapi => {}
                    }
                });
            }),
        )?);
        Ok(Self {
            inner,
            threads,
            shutdown: Some(tx),
            uapi_path,
        })
    }

    /// Interface name.
    pub fn name(&self) -> &str {
        &self.inner.shared.name
    }

    /// This device's public key.
    pub fn public_key(&self) -> PublicKey {
        lock(&self.inner.ctl).private_key.public_key()
    }

    /// The UDP port actually listened on.
    pub fn listen_port(&self) -> u16 {
        self.inner.shared.udp.port()
    }

    /// Add a peer or change an existing one (same public key). Other peers are not
    /// disturbed; this peer keeps its session unless its preshared key or keepalive
    /// changed.
    ///
    /// A peer that gets an endpoint it did not have starts a handshake at
    /// once: traffic sent to it meanwhile already made the protocol try one,
    /// which went nowhere, and the protocol would wait its rekey timeout (5 s)
    /// before the next. (A gateway whose remote just failed over is such a
    /// peer: it first waits to be called, then learns where to call.)
    pub fn upsert_peer(&self, cfg: PeerConfig) {
        let key = cfg.public_key;
        let gained_endpoint = {
            let mut ctl = lock(&self.inner.ctl);
            let had = ctl.peers.get(&key).and_then(|e| e.peer.endpoint());
            ctl.upsert(cfg);
            ctl.publish(&self.inner.shared);
            let peer = ctl.peers.get(&key).map(|e| e.peer.clone());
            peer.filter(|p| had.is_none() && p.endpoint().is_some())
        };
        if let Some(peer) = gained_endpoint {
            self.initiate_handshake(&peer);
        }
    }

    fn initiate_handshake(&self, peer: &crate::proto::peer::Peer) {
        let Some(dst) = peer.endpoint() else { return };
        let mut buf = vec![0u8; 256];
        let sent = match peer.tunn().format_handshake_initiation(&mut buf, true) {
            boringtun::noise::TunnResult::WriteToNetwork(p) => {
                self.inner.shared.udp.send(dst, p, None)
            }
            _ => return,
        };
        if let Err(e) = sent {
            tracing::debug!(peer = %peer.public_key.short(), "handshake initiation: {e}");
        }
    }

    /// Remove a peer; returns whether it existed.
    pub fn remove_peer(&self, key: &PublicKey) -> bool {
        let mut ctl = lock(&self.inner.ctl);
        let had = ctl.remove(key);
        ctl.publish(&self.inner.shared);
        had
    }

    /// Point a peer at a new endpoint (roaming initiated by us).
    pub fn set_peer_endpoint(&self, key: &PublicKey, endpoint: SocketAddr) -> Result<(), Error> {
        let ctl = lock(&self.inner.ctl);
        let e = ctl
            .peers
            .get(key)
            .ok_or_else(|| Error::NoSuchPeer(key.to_string()))?;
        e.peer.set_endpoint(endpoint);
        Ok(())
    }

    /// Replace a peer's allowed IPs.
    pub fn set_peer_allowed_ips(&self, key: &PublicKey, ips: Vec<IpNet>) -> Result<(), Error> {
        let mut ctl = lock(&self.inner.ctl);
        let e = ctl
            .peers
            .get_mut(key)
            .ok_or_else(|| Error::NoSuchPeer(key.to_string()))?;
        e.allowed_ips = ips;
        ctl.publish(&self.inner.shared);
        Ok(())
    }

    /// All peers with their live state.
    pub fn peers(&self) -> Vec<PeerStats> {
        let ctl = lock(&self.inner.ctl);
        ctl.states()
            .into_iter()
            .map(|s| PeerStats {
                config: PeerConfig {
                    public_key: s.public_key,
                    preshared_key: s.preshared_key,
                    endpoint: s.endpoint,
                    allowed_ips: s.allowed_ips,
                    persistent_keepalive: (s.persistent_keepalive > 0)
                        .then_some(s.persistent_keepalive),
                },
                last_handshake: s.last_handshake.map(|d| SystemTime::UNIX_EPOCH + d),
                rx_bytes: s.rx_bytes,
                tx_bytes: s.tx_bytes,
            })
            .collect()
    }

    /// Datagrams dropped as invalid or unauthenticated since start.
    pub fn rx_invalid(&self) -> u64 {
        self.inner
            .shared
            .counters
            .rx_invalid
            .load(Ordering::Relaxed)
    }

    /// Stop everything and wait for the threads (also done on drop).
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.inner.shared.stop.store(true, Ordering::Relaxed);
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        if let Some(p) = self.uapi_path.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        self.stop();
    }
}
