//! UDP → decrypt → TUN. One thread: `recvmmsg` with UDP GRO brings batches of
//! datagrams; each is authenticated and decrypted by its peer's session straight into
//! the next slot of a [`TunBatch`], its inner source is checked against the peer's
//! allowed IPs, and the batch coalesces TCP/UDP flows as packets arrive (GRO, see
//! `ferry_tun::TunBatch`) before it is written to the TUN.

use super::Shared;
use crate::proto::packet::{MSG_DATA, MSG_HANDSHAKE_INIT, MSG_HANDSHAKE_RESP, classify};
use crate::proto::peer::{Peer, PeerTable};
use boringtun::noise::errors::WireGuardError;
use boringtun::noise::{Packet, Tunn, TunnResult, handshake::parse_handshake_anon};
use ferry_tun::TunBatch;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};

const RX_BATCH: usize = 32;
const RX_BUF: usize = 65_536;
const TUN_BATCH: usize = 128;

/// Where the receive path sends replies (handshake responses, cookies, queued
/// packets) and counts drops: the real socket, or nothing (fuzzing).
pub(crate) trait Wire {
    fn send(&self, dst: SocketAddr, contents: &[u8]);
    fn name(&self) -> &str;
    fn counters(&self) -> &super::Counters;
    fn write_tun(&self, batch: &mut TunBatch) -> io::Result<()>;
    /// Whether the TUN takes UDP segmentation (so UDP flows may be coalesced).
    fn udp_gso(&self) -> bool;
}

impl Wire for Shared {
    fn send(&self, dst: SocketAddr, contents: &[u8]) {
        let _ = self.udp.send(dst, contents, None);
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn counters(&self) -> &super::Counters {
        &self.counters
    }
    fn write_tun(&self, batch: &mut TunBatch) -> io::Result<()> {
        batch.flush(|b| self.tun.send(b))
    }
    fn udp_gso(&self) -> bool {
        self.tun.udp_gso()
    }
}

/// Per-thread reusable buffers and the pending TUN batch.
pub(crate) struct Inbound<'a, W: Wire> {
    sh: &'a W,
    batch: TunBatch,
    /// The last (peer, source) whose endpoint was confirmed since the last flush:
    /// the next packet from there need not lock the endpoint again.
    roamed: Option<(*const Peer, SocketAddr)>,
    scratch: Vec<u8>,
    tun_errors: u64,
}

pub(crate) fn run_inbound(sh: &Shared) {
    let mut rx: Vec<Vec<u8>> = (0..RX_BATCH).map(|_| vec![0u8; RX_BUF]).collect();
    let mut meta = vec![ferry_tun::RecvMeta::default(); RX_BATCH];
    let mut st = Inbound::new(sh);
    let mut drained = false;
    while !sh.stopping() {
        // A short batch emptied the socket: wait for the next datagram at
        // once rather than ask the socket again for nothing (at idle, where
        // datagrams come one at a time, one syscall of four per wake-up;
        // issue #19). `poll` returns at once if one arrived meanwhile.
        if drained {
            sh.udp.wait_readable(200);
        }
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
        drained = n < rx.len();
        let table = sh.table();
        for (buf, m) in rx.iter().zip(&meta[..n]) {
            st.datagrams(&table, buf[..m.len].chunks(m.stride.max(1)), m.addr);
        }
        st.flush();
    }
}

impl<'a, W: Wire> Inbound<'a, W> {
    pub(crate) fn new(sh: &'a W) -> Self {
        Self {
            sh,
            // 64 KiB per slot (a coalesced packet); untouched pages cost no RSS.
            batch: TunBatch::new(TUN_BATCH, sh.udp_gso()),
            roamed: None,
            scratch: vec![0u8; 2048],
            tun_errors: 0,
        }
    }

    /// Handle the datagrams of one GRO batch from `src`: a run of data messages
    /// for one peer (the usual case: one peer's bulk traffic) takes that peer's
    /// protocol lock once, not once per datagram (the lock's atomic exchange
    /// was ~4 % of this thread); anything else goes through [`Self::datagram`].
    pub(crate) fn datagrams<'t>(
        &mut self,
        table: &'t PeerTable,
        batch: impl Iterator<Item = &'t [u8]>,
        src: SocketAddr,
    ) {
        let mut held: Option<(&'t Arc<Peer>, MutexGuard<'t, Tunn>)> = None;
        for d in batch {
            let data_peer = match classify(d) {
                Some((MSG_DATA, Some(idx))) => table.by_receiver_index(idx),
                _ => None,
            };
            let Some(peer) = data_peer else {
                drop(held.take()); // unlock: the control path locks by itself
                self.datagram(table, d, src);
                continue;
            };
            if !held.as_ref().is_some_and(|(p, _)| Arc::ptr_eq(p, peer)) {
                drop(held.take()); // unlock before locking another peer
                held = Some((peer, peer.tunn()));
            }
            if let Some((peer, tunn)) = held.as_mut() {
                self.data(table, peer, tunn, d, src);
            }
        }
    }

    /// Handle one datagram from `src`. Anything malformed or unauthenticated is
    /// dropped and counted; nothing here panics on hostile input.
    pub(crate) fn datagram(&mut self, table: &PeerTable, d: &[u8], src: SocketAddr) {
        let Some((ty, idx)) = classify(d) else {
            self.sh
                .counters()
                .rx_invalid
                .fetch_add(1, Ordering::Relaxed);
            return;
        };
        let peer = match (ty, idx) {
            (MSG_HANDSHAKE_INIT, _) => match self.handshake_peer(table, d, src) {
                Some(p) => p,
                None => return,
            },
            (_, Some(idx)) => match table.by_receiver_index(idx) {
                Some(p) => p.clone(),
                None => {
                    self.sh
                        .counters()
                        .rx_invalid
                        .fetch_add(1, Ordering::Relaxed);
                    return;
                }
            },
            _ => return,
        };
        let mut tunn = peer.tunn();
        if ty == MSG_DATA {
            self.data(table, &peer, &mut tunn, d, src);
        } else {
            self.control(&peer, &mut tunn, ty, d, src);
        }
    }

    /// Find the peer a handshake initiation comes from (mac1 and rate limiting first).
    fn handshake_peer(
        &mut self,
        table: &PeerTable,
        d: &[u8],
        src: SocketAddr,
    ) -> Option<Arc<Peer>> {
        let id = table.identity()?;
        let parsed = match id
            .rate_limiter
            .verify_packet(Some(src.ip()), d, &mut self.scratch)
        {
            Ok(Packet::HandshakeInit(p)) => p,
            Err(TunnResult::WriteToNetwork(cookie)) => {
                self.sh.send(src, cookie);
                return None;
            }
            _ => {
                self.sh
                    .counters()
                    .rx_invalid
                    .fetch_add(1, Ordering::Relaxed);
                return None;
            }
        };
        let half = match parse_handshake_anon(&id.secret, &id.public, &parsed) {
            Ok(h) => h,
            Err(_) => {
                self.sh
                    .counters()
                    .rx_invalid
                    .fetch_add(1, Ordering::Relaxed);
                return None;
            }
        };
        let key = crate::PublicKey::from_bytes(half.peer_static_public);
        match table.get(&key) {
            Some(p) => Some(p.clone()),
            None => {
                tracing::debug!(iface = %self.sh.name(), peer = %key.short(), %src, "handshake from unknown peer");
                None
            }
        }
    }

    fn control(
        &mut self,
        peer: &Peer,
        tunn: &mut MutexGuard<'_, Tunn>,
        ty: u32,
        d: &[u8],
        src: SocketAddr,
    ) {
        match tunn.decapsulate(Some(src.ip()), d, &mut self.scratch) {
            TunnResult::WriteToNetwork(p) => {
                self.sh.send(src, p);
                self.roam(peer, src);
                self.flush_queue(tunn, src);
            }
            TunnResult::Done => {
                self.roam(peer, src);
            }
            TunnResult::Err(e) => {
                self.sh
                    .counters()
                    .rx_invalid
                    .fetch_add(1, Ordering::Relaxed);
                let auth = matches!(
                    e,
                    WireGuardError::InvalidAeadTag | WireGuardError::InvalidMac
                );
                if ty == MSG_HANDSHAKE_RESP && auth && peer.may_warn_auth() {
                    tracing::warn!(
                        iface = %self.sh.name(),
                        peer = %peer.public_key.short(),
                        %src,
                        "handshake response from peer failed authentication: \
                         preshared key mismatch (or the peer has a different key for us); \
                         no traffic will flow"
                    );
                } else {
                    tracing::debug!(peer = %peer.public_key.short(), "handshake message rejected: {e:?}");
                }
            }
            _ => {}
        }
    }

    /// Send packets boringtun queued while the handshake was in flight.
    fn flush_queue(&mut self, tunn: &mut MutexGuard<'_, Tunn>, dst: SocketAddr) {
        while let TunnResult::WriteToNetwork(p) = tunn.decapsulate(None, &[], &mut self.scratch) {
            self.sh.send(dst, p);
        }
    }

    fn roam(&self, peer: &Peer, src: SocketAddr) {
        if peer.set_endpoint(src) {
            tracing::debug!(iface = %self.sh.name(), peer = %peer.public_key.short(), %src, "peer endpoint moved");
        }
    }

    fn data(
        &mut self,
        table: &PeerTable,
        peer: &Arc<Peer>,
        tunn: &mut MutexGuard<'_, Tunn>,
        d: &[u8],
        src: SocketAddr,
    ) {
        let res = tunn.decapsulate(Some(src.ip()), d, self.batch.next_buf());
        let (len, inner_src) = match res {
            TunnResult::WriteToTunnelV4(p, a) => (p.len(), std::net::IpAddr::V4(a)),
            TunnResult::WriteToTunnelV6(p, a) => (p.len(), std::net::IpAddr::V6(a)),
            TunnResult::Done => {
                // keepalive
                self.roam(peer, src);
                return;
            }
            TunnResult::WriteToNetwork(p) => {
                self.sh.send(src, p);
                return;
            }
            TunnResult::Err(e) => {
                self.sh
                    .counters()
                    .rx_invalid
                    .fetch_add(1, Ordering::Relaxed);
                tracing::trace!(peer = %peer.public_key.short(), "data rejected: {e:?}");
                return;
            }
        };
        if self.roamed != Some((Arc::as_ptr(peer), src)) {
            self.roam(peer, src);
            self.roamed = Some((Arc::as_ptr(peer), src));
        }
        if !table.route(inner_src).is_some_and(|p| Arc::ptr_eq(p, peer)) {
            peer.dropped_src.fetch_add(1, Ordering::Relaxed);
            tracing::trace!(peer = %peer.public_key.short(), %inner_src, "inner source not in allowed IPs");
            return;
        }
        self.batch.push(len);
        if self.batch.is_full() {
            self.flush();
        }
    }

    /// Write the pending batch to the TUN, coalescing TCP/UDP flows.
    pub(crate) fn flush(&mut self) {
        self.roamed = None;
        if self.batch.is_empty() {
            return;
        }
        if let Err(e) = self.sh.write_tun(&mut self.batch) {
            self.tun_errors += 1;
            if self.tun_errors.is_power_of_two() {
                tracing::warn!(iface = %self.sh.name(), errors = self.tun_errors, "tun write: {e}");
            }
        }
    }
}
