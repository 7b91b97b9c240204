//! UDP → decrypt → TUN. One thread: `recvmmsg` with UDP GRO brings batches of
//! datagrams; ESP packets are authenticated and decrypted in place by their SA, the
//! inner source is checked against the SA's selectors, and the inner packets are
//! gathered in a [`TunBatch`] that coalesces TCP/UDP flows as they arrive (GRO)
//! and written to the TUN per receive batch. IKE datagrams go to the control plane.

use super::{Counters, IkeDatagram, SaTable, Shared, ip_src};
use crate::proto::esp::{Datagram, NEXT_HEADER_NONE, classify};
use ferry_tun::TunBatch;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;

const RX_BATCH: usize = 32;
const RX_BUF: usize = 65_536;
const TUN_BATCH: usize = 128;

/// Where the receive path delivers: the real TUN and control channel, or sinks
/// (fuzzing).
pub(crate) trait Sink {
    fn counters(&self) -> &Counters;
    fn ike(&self, d: IkeDatagram) -> bool;
    fn write_tun(&self, batch: &mut TunBatch) -> io::Result<()>;
    /// Whether the TUN takes UDP segmentation (so UDP flows may be coalesced).
    fn udp_gso(&self) -> bool;
    fn name(&self) -> &str;
}

impl Sink for Shared {
    fn counters(&self) -> &Counters {
        &self.counters
    }
    fn ike(&self, d: IkeDatagram) -> bool {
        self.ike_tx.try_send(d).is_ok()
    }
    fn write_tun(&self, batch: &mut TunBatch) -> io::Result<()> {
        batch.flush(|b| self.tun.send(b))
    }
    fn udp_gso(&self) -> bool {
        self.tun.udp_gso()
    }
    fn name(&self) -> &str {
        &self.name
    }
}

/// Per-thread reusable buffers and the pending TUN batch.
pub(crate) struct Inbound<'a, S: Sink> {
    sink: &'a S,
    batch: TunBatch,
    tun_errors: u64,
}

pub(crate) fn run_inbound(sh: &Shared) {
    let mut rx: Vec<Vec<u8>> = (0..RX_BATCH).map(|_| vec![0u8; RX_BUF]).collect();
    let mut meta = vec![ferry_tun::RecvMeta::default(); RX_BATCH];
    let mut st = Inbound::new(sh);
    while !sh.stopping() {
        let n = {
            let mut iovs: Vec<IoSliceMut<'_>> = rx.iter_mut().map(|b| IoSliceMut::new(b)).collect();
            match sh.udp.recv(&mut iovs, &mut meta) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    sh.udp.wait_readable(200);
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::debug!(iface = %sh.name, "udp recv: {e}");
                    continue;
                }
            }
        };
        let table = sh.table();
        for (buf, m) in rx.iter_mut().zip(&meta[..n]) {
            let stride = m.stride.max(1);
            for d in buf[..m.len].chunks_mut(stride) {
                st.datagram(&table, d, m.addr);
            }
        }
        st.flush();
    }
}

impl<'a, S: Sink> Inbound<'a, S> {
    pub(crate) fn new(sink: &'a S) -> Self {
        Self {
            sink,
            // 64 KiB per slot (a coalesced packet); untouched pages cost no RSS.
            batch: TunBatch::new(TUN_BATCH, sink.udp_gso()),
            tun_errors: 0,
        }
    }

    /// Handle one datagram from `src`. Anything malformed or unauthenticated is
    /// dropped and counted; nothing here panics on hostile input.
    pub(crate) fn datagram(&mut self, table: &SaTable, d: &mut [u8], src: SocketAddr) {
        let c = self.sink.counters();
        let spi = match classify(d) {
            Datagram::Esp(spi) => spi,
            Datagram::Ike(msg) => {
                if !self.sink.ike((src, msg.to_vec())) {
                    c.ike_dropped.fetch_add(1, Ordering::Relaxed);
                }
                return;
            }
            Datagram::Keepalive => return,
            Datagram::Invalid => {
                c.rx_invalid.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        let Some(entry) = table.inbound.get(&spi) else {
            c.rx_unknown_spi.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let Ok(o) = entry.sa.open(d) else {
            c.rx_refused.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if o.next_header == NEXT_HEADER_NONE {
            return;
        }
        let inner = &d[o.start..o.start + o.len];
        if !ip_src(inner).is_some_and(|ip| entry.remote_ts.iter().any(|t| t.contains(ip))) {
            c.rx_bad_source.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.batch.next_buf()[..inner.len()].copy_from_slice(inner);
        self.batch.push(inner.len());
        if self.batch.is_full() {
            self.flush();
        }
    }

    /// Write the pending batch to the TUN, coalescing TCP/UDP flows.
    pub(crate) fn flush(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        if let Err(e) = self.sink.write_tun(&mut self.batch) {
            self.tun_errors += 1;
            if self.tun_errors.is_power_of_two() {
                tracing::warn!(iface = %self.sink.name(), errors = self.tun_errors, "tun write: {e}");
            }
        }
    }
}
