//! The fast I/O path: a TUN device with virtio-net header offload and a UDP socket
//! with GSO/GRO and `recvmmsg`, one dedicated thread per direction (so every flow keeps
//! its order), buffers allocated once per thread. The ESP SAs are read from an
//! immutable [`SaTable`] snapshot swapped in by the control plane; IKE datagrams go to
//! the control plane over a bounded channel.

pub(crate) mod inbound;
mod outbound;

pub(crate) use ferry_tun::{Udp, open_tun};
pub(crate) use inbound::run_inbound;
pub(crate) use outbound::run_outbound;

use crate::proto::esp::{EspInbound, EspOutbound};
use crate::proto::ts::TrafficSelector;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// An IKE datagram for the control plane: source and message (marker stripped).
pub(crate) type IkeDatagram = (SocketAddr, Vec<u8>);

/// One inbound SA with the selectors inner sources must match.
#[derive(Debug)]
pub(crate) struct InboundEntry {
    pub sa: Arc<EspInbound>,
    pub remote_ts: Vec<TrafficSelector>,
}

/// A route: inner destinations in `net` go out on `sa` to `dst`.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    pub net: TrafficSelector,
    pub prefix: u8,
    pub sa: Arc<EspOutbound>,
    pub dst: SocketAddr,
}

/// What the data path reads: SAs by SPI and routes by inner destination.
#[derive(Debug, Default)]
pub(crate) struct SaTable {
    pub inbound: HashMap<u32, InboundEntry>,
    /// Longest prefix first.
    pub routes: Vec<Route>,
}

impl SaTable {
    /// The route for an inner destination.
    pub fn route(&self, dst: IpAddr) -> Option<&Route> {
        self.routes.iter().find(|r| r.net.contains(dst))
    }
}

/// Drop counters, for diagnostics and tests.
#[derive(Default, Debug)]
pub(crate) struct Counters {
    /// Datagrams that were neither IKE, ESP nor keepalives, or ESP too short.
    pub rx_invalid: AtomicU64,
    /// ESP packets for an SPI we do not have.
    pub rx_unknown_spi: AtomicU64,
    /// ESP packets refused by their SA (integrity, replay, bad padding).
    pub rx_refused: AtomicU64,
    /// Decrypted packets whose inner source is outside the SA's selectors.
    pub rx_bad_source: AtomicU64,
    /// IKE datagrams dropped because the control plane was backed up.
    pub ike_dropped: AtomicU64,
    /// IKE datagrams that did not parse or belong to no session.
    pub ike_unmatched: AtomicU64,
    /// Packets from the TUN with no SA for their destination.
    pub tx_no_route: AtomicU64,
}

/// State shared by the data-path threads and the control plane.
pub(crate) struct Shared {
    pub name: String,
    pub tun: tun_rs::SyncDevice,
    pub udp: Udp,
    pub mtu: u16,
    table: RwLock<Arc<SaTable>>,
    pub stop: AtomicBool,
    pub counters: Counters,
    pub ike_tx: tokio::sync::mpsc::Sender<IkeDatagram>,
}

impl Shared {
    pub fn new(
        name: String,
        tun: tun_rs::SyncDevice,
        udp: Udp,
        mtu: u16,
        ike_tx: tokio::sync::mpsc::Sender<IkeDatagram>,
    ) -> Self {
        Self {
            name,
            tun,
            udp,
            mtu,
            table: RwLock::new(Arc::new(SaTable::default())),
            stop: AtomicBool::new(false),
            counters: Counters::default(),
            ike_tx,
        }
    }
    /// The current SA table (one read lock and an `Arc` clone).
    pub fn table(&self) -> Arc<SaTable> {
        self.table.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
    /// Swap in a new table.
    pub fn set_table(&self, t: SaTable) {
        *self.table.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(t);
    }
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// Destination address of an IP packet.
pub(crate) fn ip_dst(p: &[u8]) -> Option<IpAddr> {
    ip_addr(p, 16, 24)
}

/// Source address of an IP packet.
pub(crate) fn ip_src(p: &[u8]) -> Option<IpAddr> {
    ip_addr(p, 12, 8)
}

fn ip_addr(p: &[u8], v4: usize, v6: usize) -> Option<IpAddr> {
    match p.first()? >> 4 {
        4 if p.len() >= 20 => {
            let b: [u8; 4] = p[v4..v4 + 4].try_into().ok()?;
            Some(IpAddr::V4(Ipv4Addr::from(b)))
        }
        6 if p.len() >= 40 => {
            let b: [u8; 16] = p[v6..v6 + 16].try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(b)))
        }
        _ => None,
    }
}
