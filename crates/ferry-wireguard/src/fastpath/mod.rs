//! The fast I/O path: a TUN device with virtio-net header offload (TSO/USO in, GRO
//! out) and a UDP socket with GSO/GRO and `recvmmsg`, each direction served by one
//! dedicated thread so that every flow keeps its packet order. Buffers are allocated
//! once per thread and reused; the protocol state of a peer is locked once per run of
//! packets for that peer, not per packet.

pub(crate) mod inbound;
mod outbound;

pub(crate) use ferry_tun::Udp;
pub(crate) use inbound::run_inbound;
pub(crate) use outbound::run_outbound;

use crate::proto::peer::PeerTable;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// State shared by the data-path threads and the control plane.
pub(crate) struct Shared {
    pub name: String,
    pub tun: tun_rs::SyncDevice,
    pub udp: Udp,
    pub mtu: u16,
    table: RwLock<Arc<PeerTable>>,
    pub stop: AtomicBool,
    pub counters: Counters,
}

/// Drop counters, for diagnostics and tests.
#[derive(Default, Debug)]
pub(crate) struct Counters {
    /// UDP datagrams that were not WireGuard messages or failed authentication.
    pub rx_invalid: AtomicU64,
    /// Packets from the TUN with no route to a peer.
    pub tx_no_route: AtomicU64,
}

impl Shared {
    pub fn new(
        name: String,
        tun: tun_rs::SyncDevice,
        udp: Udp,
        mtu: u16,
        table: PeerTable,
    ) -> Self {
        Self {
            name,
            tun,
            udp,
            mtu,
            table: RwLock::new(Arc::new(table)),
            stop: AtomicBool::new(false),
            counters: Counters::default(),
        }
    }
    /// The current peer table (cheap: one read lock and an `Arc` clone).
    pub fn table(&self) -> Arc<PeerTable> {
        self.table.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
    /// Swap in a new peer table.
    pub fn set_table(&self, t: PeerTable) {
        *self.table.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(t);
    }
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}
