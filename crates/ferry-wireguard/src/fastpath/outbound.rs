//! TUN → encrypt → UDP. One thread: reads a (possibly 64 KiB TSO) packet from the TUN,
//! lets tun-rs split it into MTU-sized segments, encrypts each with the peer's
//! current session straight into one contiguous send buffer, and hands runs of
//! equal-sized datagrams to the kernel in single UDP GSO sends.

use super::Shared;
use crate::proto::packet::{DATA_OVERHEAD, ip_dst};
use crate::proto::peer::Peer;
use boringtun::noise::TunnResult;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use std::io;
use std::net::IpAddr;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Segments one TUN read may split into.
const BATCH: usize = tun_rs::IDEAL_BATCH_SIZE;
/// Largest handshake message boringtun may write instead of data.
const MIN_DST: usize = 148;
/// Keep GSO sends below the 64 KiB IP limit.
const MAX_GSO_BYTES: usize = 65_000;

struct Slot {
    /// Index into the per-batch peer list, or `usize::MAX` for "no peer".
    peer: usize,
    off: usize,
    len: usize,
}

pub(crate) fn run_outbound(sh: &Shared) {
    let seg_cap = usize::from(sh.mtu).max(1500) + 256;
    let mut orig = vec![0u8; tun_rs::VIRTIO_NET_HDR_LEN + 65_536];
    let mut bufs: Vec<Vec<u8>> = (0..BATCH).map(|_| vec![0u8; seg_cap]).collect();
    let mut sizes = vec![0usize; BATCH];
    let mut out = vec![0u8; BATCH * (seg_cap + DATA_OVERHEAD) + MIN_DST];
    let mut slots: Vec<Slot> = Vec::with_capacity(BATCH);
    let mut peers: Vec<Arc<Peer>> = Vec::with_capacity(8);
    let max_gso = sh.udp.max_gso_segments().max(1);
    let mut send_errors = 0u64;

    while !sh.stopping() {
        let n = match sh.tun.recv_multiple(&mut orig, &mut bufs, &mut sizes, 0) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let mut fds = [PollFd::new(sh.tun.as_fd(), PollFlags::POLLIN)];
                let _ = poll(&mut fds, PollTimeout::from(200u16));
                continue;
            }
            Err(e) if e.raw_os_error() == Some(libc::EBADFD) => break,
            Err(e) => {
                tracing::debug!(iface = %sh.name, "tun read: {e}");
                continue;
            }
        };
        let table = sh.table();
        slots.clear();
        peers.clear();
        let mut last: Option<(IpAddr, usize)> = None;
        let mut off = 0;
        // Pass 1: route each segment to a peer.
        for (buf, &size) in bufs.iter().zip(&sizes[..n]) {
            let pkt = &buf[..size];
            let peer = match ip_dst(pkt) {
                Some(dst) if last.is_some_and(|(d, _)| d == dst) => {
                    last.map_or(usize::MAX, |l| l.1)
                }
                Some(dst) => {
                    let idx = match table.route(dst) {
                        Some(p) => match peers.iter().position(|q| Arc::ptr_eq(q, p)) {
                            Some(i) => i,
                            None => {
                                peers.push(p.clone());
                                peers.len() - 1
                            }
                        },
                        None => usize::MAX,
                    };
                    last = Some((dst, idx));
                    idx
                }
                None => usize::MAX,
            };
            if peer == usize::MAX {
                sh.counters.tx_no_route.fetch_add(1, Ordering::Relaxed);
            }
            slots.push(Slot {
                peer,
                off: 0,
                len: 0,
            });
        }
        // Pass 2: encrypt, one lock per peer per batch, packed contiguously in `out`.
        for (pi, peer) in peers.iter().enumerate() {
            let mut tunn = peer.tunn();
            for (i, slot) in slots.iter_mut().enumerate() {
                if slot.peer != pi {
                    continue;
                }
                let src = &bufs[i][..sizes[i]];
                match tunn.encapsulate(src, &mut out[off..]) {
                    TunnResult::WriteToNetwork(p) => {
                        slot.off = off;
                        slot.len = p.len();
                        off += p.len();
                    }
                    TunnResult::Done => {}
                    TunnResult::Err(e) => {
                        tracing::debug!(peer = %peer.public_key.short(), "encapsulate: {e:?}")
                    }
                    _ => {}
                }
            }
        }
        // Pass 3: send runs of equal-sized datagrams per peer with GSO.
        for (pi, peer) in peers.iter().enumerate() {
            let Some(dst) = peer.endpoint() else {
                tracing::trace!(peer = %peer.public_key.short(), "no endpoint; dropping");
                continue;
            };
            let mut i = 0;
            while i < slots.len() {
                if slots[i].peer != pi || slots[i].len == 0 {
                    i += 1;
                    continue;
                }
                let start = slots[i].off;
                let seg = slots[i].len;
                let mut end = start + seg;
                let mut count = 1;
                let mut j = i + 1;
                let max = max_gso.min(MAX_GSO_BYTES / seg).max(1);
                while j < slots.len() && count < max {
                    let s = &slots[j];
                    if s.peer != pi
                        || s.len == 0
                        || s.off != end
                        || s.len > seg
                        || end + s.len - start > MAX_GSO_BYTES
                    {
                        break;
                    }
                    end += s.len;
                    count += 1;
                    j += 1;
                    if s.len < seg {
                        break; // a shorter datagram ends a GSO run
                    }
                }
                if let Err(e) = sh
                    .udp
                    .send(dst, &out[start..end], (count > 1).then_some(seg))
                {
                    send_errors += 1;
                    if send_errors.is_power_of_two() {
                        tracing::warn!(iface = %sh.name, %dst, errors = send_errors, "udp send: {e}");
                    }
                }
                i = j;
            }
        }
    }
}
