//! Async glue and the public handle: [`Device`] starts the data-path threads and one
//! control thread running a small tokio runtime that feeds IKE datagrams and a
//! 100 ms tick to the [`Session`]s, sends what they emit, and publishes their SAs to
//! the data path. It works the same whether or not the caller runs tokio itself.

use crate::Error;
use crate::fastpath::{self, IkeDatagram, Route, SaTable, Shared, Udp};
use crate::proto::consts::exchange;
use crate::proto::ike::{self, Session, Status};
use crate::proto::lock;
use crate::proto::message::{Header, Identity};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Default NAT-T port.
pub const NAT_T_PORT: u16 = 4500;
/// Default TUN MTU: 1500 minus IPv4 + UDP + worst-case ESP overhead (and some slack).
pub const DEFAULT_MTU: u16 = 1400;

/// Everything needed to bring up one device.
#[derive(Clone, Debug)]
pub struct DeviceConfig {
    /// TUN interface name (at most 15 bytes).
    pub name: String,
    /// TUN MTU.
    pub mtu: u16,
    /// Optional IPv4 address of the TUN interface.
    pub address: Option<(Ipv4Addr, u8)>,
    /// UDP port for IKE and ESP (NAT-T); 0 picks a free one.
    pub port: u16,
    /// One IKE configuration per peer.
    pub peers: Vec<ike::Config>,
}

/// What [`Device::peers`] reports about one peer.
#[derive(Clone, Debug)]
pub struct PeerStatus {
    /// The identity the peer must prove (what [`Device::upsert_peer`] keys on).
    pub remote_id: Identity,
    /// The peer's current address.
    pub remote: SocketAddr,
    /// Its address before it last moved mid-session, if it did (the session
    /// followed it to `remote`).
    pub moved_from: Option<SocketAddr>,
    /// Where its session stands.
    pub status: Status,
    /// Child SAs installed (2 while a rekey completes).
    pub child_sas: usize,
    /// IKE SAs held.
    pub ike_sas: usize,
    /// Inner packets received / sent on the current child SAs.
    pub rx_packets: u64,
    /// Inner packets sent.
    pub tx_packets: u64,
    /// ESP packets refused as replays on the current child SAs.
    pub rx_replayed: u64,
    /// IKE messages refused (malformed, unauthenticated or unexpected).
    pub ike_invalid: u64,
    /// IKE SA rekeys so far.
    pub ike_rekeys: u64,
    /// Child SA rekeys so far.
    pub child_rekeys: u64,
}

/// Data-path drop counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DropCounters {
    /// Datagrams neither IKE, ESP nor keepalive.
    pub rx_invalid: u64,
    /// ESP for an unknown SPI.
    pub rx_unknown_spi: u64,
    /// ESP refused by its SA (integrity, replay, padding).
    pub rx_refused: u64,
    /// Inner source outside the SA's selectors.
    pub rx_bad_source: u64,
    /// Outbound packets with no SA.
    pub tx_no_route: u64,
    /// IKE datagrams dropped: unparsable, for no session, or the control plane busy.
    pub ike_dropped: u64,
}

struct Control {
    sessions: Vec<Session>,
    generation: Vec<u64>,
}

/// A running IPsec device. Dropping it deletes the IKE SAs (best effort), stops the
/// threads and removes the TUN interface.
pub struct Device {
    shared: Arc<Shared>,
    ctl: Arc<Mutex<Control>>,
    threads: Vec<JoinHandle<()>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device")
            .field("name", &self.shared.name)
            .finish_non_exhaustive()
    }
}

impl Device {
    /// Create the TUN interface and UDP socket and start the threads; sessions that
    /// initiate start at once.
    pub fn start(cfg: DeviceConfig) -> Result<Self, Error> {
        if cfg.name.is_empty() || cfg.name.len() > 15 || cfg.name.contains('/') {
            return Err(Error::Config(format!("bad interface name {:?}", cfg.name)));
        }
        let now = Instant::now();
        let sessions = cfg
            .peers
            .iter()
            .cloned()
            .map(|p| Session::new(p, now))
            .collect::<Result<Vec<_>, _>>()?;
        let udp = Udp::bind(cfg.port)?;
        let tun = fastpath::open_tun(&cfg.name, cfg.mtu, cfg.address)?;
        let (ike_tx, ike_rx) = tokio::sync::mpsc::channel(1024);
        let shared = Arc::new(Shared::new(cfg.name.clone(), tun, udp, cfg.mtu, ike_tx));
        tracing::info!(
            iface = %cfg.name,
            port = shared.udp.port(),
            peers = sessions.len(),
            gso_segments = shared.udp.max_gso_segments(),
            gro_segments = shared.udp.gro_segments(),
            "ipsec device up"
        );
        let ctl = Arc::new(Mutex::new(Control {
            generation: vec![u64::MAX; sessions.len()],
            sessions,
        }));
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(format!("{name}-{}", cfg.name))
                .spawn(f)
        };
        let mut threads = Vec::new();
        let sh = shared.clone();
        threads.push(spawn(
            "esp-tx",
            Box::new(move || fastpath::run_outbound(&sh)),
        )?);
        let sh = shared.clone();
        threads.push(spawn(
            "esp-rx",
            Box::new(move || fastpath::run_inbound(&sh)),
        )?);
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (sh, c) = (shared.clone(), ctl.clone());
        threads.push(spawn(
            "ike",
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
                rt.block_on(control_loop(sh, c, ike_rx, rx));
            }),
        )?);
        Ok(Self {
            shared,
            ctl,
            threads,
            shutdown: Some(tx),
        })
    }

    /// Interface name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The UDP port actually listened on.
    pub fn port(&self) -> u16 {
        self.shared.udp.port()
    }

    /// Every peer's state.
    pub fn peers(&self) -> Vec<PeerStatus> {
        let ctl = lock(&self.ctl);
        ctl.sessions
            .iter()
            .map(|s| {
                let sum =
                    |f: &dyn Fn(&ike::ChildSa) -> u64| s.children().iter().map(f).sum::<u64>();
                PeerStatus {
                    remote_id: s.config().remote_id.clone(),
                    remote: s.remote(),
                    moved_from: s.moved_from(),
                    status: s.status().clone(),
                    child_sas: s.children().len(),
                    ike_sas: s.ike_sa_count(),
                    rx_packets: sum(&|c| c.inbound.counters.packets.load(Ordering::Relaxed)),
                    tx_packets: sum(&|c| c.outbound.counters.packets.load(Ordering::Relaxed)),
                    rx_replayed: sum(&|c| c.inbound.counters.replayed.load(Ordering::Relaxed)),
                    ike_invalid: s.counters().invalid,
                    ike_rekeys: s.counters().ike_rekeys,
                    child_rekeys: s.counters().child_rekeys,
                }
            })
            .collect()
    }

    /// Add a peer, or change the one with the same `remote_id`. A change of who
    /// initiates or of the timers keeps its SAs; any other change (its address,
    /// subnets, key, algorithms) deletes them and negotiates anew, so a peer that
    /// moved (a failover to another gateway) is reached at its new address.
    pub fn upsert_peer(&self, cfg: ike::Config) -> Result<(), Error> {
        let now = Instant::now();
        let mut c = lock(&self.ctl);
        let existing = c
            .sessions
            .iter()
            .position(|s| s.config().remote_id == cfg.remote_id);
        match existing {
            Some(i) if c.sessions[i].config().same_peer(&cfg) => c.sessions[i].update(&cfg, now),
            Some(i) => {
                let fresh = Session::new(cfg, now)?;
                let old = std::mem::replace(&mut c.sessions[i], fresh);
                self.close_session(old, now);
                // Force the SA table to be rebuilt without the old session's SAs.
                c.generation[i] = u64::MAX;
            }
            None => {
                c.sessions.push(Session::new(cfg, now)?);
                c.generation.push(u64::MAX);
            }
        }
        flush(&self.shared, &mut c);
        Ok(())
    }

    /// Remove the peer proving `remote_id` (deleting its IKE SA, best effort);
    /// false if there was none.
    pub fn remove_peer(&self, remote_id: &Identity) -> bool {
        let now = Instant::now();
        let mut c = lock(&self.ctl);
        let Some(i) = c
            .sessions
            .iter()
            .position(|s| s.config().remote_id == *remote_id)
        else {
            return false;
        };
        let old = c.sessions.remove(i);
        c.generation.remove(i);
        self.close_session(old, now);
        // Lengths and values may now coincide with the old list: rebuild.
        c.generation.iter_mut().for_each(|g| *g = u64::MAX);
        flush(&self.shared, &mut c);
        true
    }

    /// Send a delete for a session's IKE SA; the session is dropped after.
    fn close_session(&self, mut old: Session, now: Instant) {
        old.close(now);
        for t in old.take_transmits() {
            if let Err(e) = self.shared.udp.send(t.dst, &t.bytes, None) {
                tracing::debug!(dst = %t.dst, "IKE send: {e}");
            }
        }
    }

    /// Data-path drop counters since start.
    pub fn drops(&self) -> DropCounters {
        let c = &self.shared.counters;
        let l = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        DropCounters {
            rx_invalid: l(&c.rx_invalid),
            rx_unknown_spi: l(&c.rx_unknown_spi),
            rx_refused: l(&c.rx_refused),
            rx_bad_source: l(&c.rx_bad_source),
            tx_no_route: l(&c.tx_no_route),
            ike_dropped: l(&c.ike_dropped) + l(&c.ike_unmatched),
        }
    }

    /// Stop everything and wait for the threads (also done on drop).
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.shared.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn control_loop(
    sh: Arc<Shared>,
    ctl: Arc<Mutex<Control>>,
    mut ike_rx: tokio::sync::mpsc::Receiver<IkeDatagram>,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut shutdown => {
                let mut c = lock(&ctl);
                let now = Instant::now();
                for s in &mut c.sessions {
                    s.close(now);
                }
                flush(&sh, &mut c);
                return;
            }
            d = ike_rx.recv() => {
                let Some((from, msg)) = d else { return };
                let mut c = lock(&ctl);
                if !dispatch(&mut c, Instant::now(), from, &msg) {
                    sh.counters.ike_unmatched.fetch_add(1, Ordering::Relaxed);
                }
                flush(&sh, &mut c);
            }
            _ = tick.tick() => {
                let mut c = lock(&ctl);
                let now = Instant::now();
                for s in &mut c.sessions {
                    s.poll(now);
                }
                flush(&sh, &mut c);
            }
        }
    }
}

/// Give an IKE message to its session: by SPI, or for a new IKE_SA_INIT by the
/// peer's address. False when it belongs to no session.
fn dispatch(c: &mut Control, now: Instant, from: SocketAddr, msg: &[u8]) -> bool {
    let Ok(h) = Header::parse(msg) else {
        tracing::debug!(%from, "unparsable IKE datagram dropped");
        return false;
    };
    let fresh = h.exchange == exchange::IKE_SA_INIT && h.spi_r == 0 && !h.is_response();
    let by_spi = c.sessions.iter().position(|s| s.owns(h.spi_i, h.spi_r));
    // A new IKE SA from a known peer address (its NAT-T source port may differ).
    let by_addr = || {
        c.sessions
            .iter()
            .position(|s| fresh && s.config().remote_addr.ip() == from.ip())
    };
    match by_spi.or_else(by_addr) {
        Some(i) => {
            let _ = c.sessions[i].handle(now, from, msg);
            true
        }
        None => {
            tracing::debug!(%from, "IKE message for no session of ours dropped");
            false
        }
    }
}

/// Send what the sessions emitted and republish the SA table if anything changed.
fn flush(sh: &Shared, c: &mut Control) {
    for s in &mut c.sessions {
        for t in s.take_transmits() {
            if let Err(e) = sh.udp.send(t.dst, &t.bytes, None) {
                tracing::debug!(dst = %t.dst, "IKE send: {e}");
            }
        }
    }
    let gens: Vec<u64> = c.sessions.iter().map(Session::generation).collect();
    if gens != c.generation {
        c.generation = gens;
        sh.set_table(table(&c.sessions));
    }
}

fn table(sessions: &[Session]) -> SaTable {
    let mut t = SaTable::default();
    for s in sessions {
        for child in s.children() {
            t.inbound.insert(
                child.inbound.spi,
                fastpath::InboundEntry {
                    sa: child.inbound.clone(),
                    remote_ts: child.remote_ts.clone(),
                },
            );
        }
        if let Some(c) = s.outbound() {
            for ts in &c.remote_ts {
                for (_, prefix) in ts.cidrs() {
                    t.routes.push(Route {
                        net: *ts,
                        prefix,
                        sa: c.outbound.clone(),
                        dst: s.remote(),
                    });
                }
            }
        }
    }
    t.routes.sort_by_key(|r| std::cmp::Reverse(r.prefix));
    t
}
