//! TUN → encrypt → UDP. One thread: reads a (possibly 64 KiB TSO) packet from the TUN,
//! lets tun-rs split it into MTU-sized segments, seals each on the SA its destination
//! routes to, straight into one contiguous send buffer, and hands runs of equal-sized
//! datagrams for one peer to the kernel in single UDP GSO sends.

use super::{Route, Shared, ip_dst};
use crate::proto::esp::{ESP_OVERHEAD, NEXT_HEADER_IPV4, NEXT_HEADER_IPV6};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;
use std::sync::atomic::Ordering;

/// Segments one TUN read may split into.
const BATCH: usize = tun_rs::IDEAL_BATCH_SIZE;
/// Keep GSO sends below the 64 KiB IP limit.
const MAX_GSO_BYTES: usize = 65_000;

/// One sealed datagram in `out`.
struct Slot {
    dst: SocketAddr,
    off: usize,
    len: usize,
}

pub(crate) fn run_outbound(sh: &Shared) {
    let seg_cap = usize::from(sh.mtu).max(1500) + 256;
    let mut orig = vec![0u8; tun_rs::VIRTIO_NET_HDR_LEN + 65_536];
    let mut bufs: Vec<Vec<u8>> = (0..BATCH).map(|_| vec![0u8; seg_cap]).collect();
    let mut sizes = vec![0usize; BATCH];
    let mut out = vec![0u8; BATCH * (seg_cap + ESP_OVERHEAD)];
    let mut slots: Vec<Slot> = Vec::with_capacity(BATCH);
    let max_gso = sh.udp.max_gso_segments().max(1);
    let mut errors = 0u64;

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
        let mut off = 0;
        let mut last: Option<(IpAddr, Option<&Route>)> = None;
        for (buf, &size) in bufs.iter().zip(&sizes[..n]) {
            let pkt = &buf[..size];
            let Some(dst) = ip_dst(pkt) else { continue };
            let route = match last {
                Some((d, r)) if d == dst => r,
                _ => {
                    let r = table.route(dst);
                    last = Some((dst, r));
                    r
                }
            };
            let Some(route) = route else {
                sh.counters.tx_no_route.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let nh = if dst.is_ipv4() {
                NEXT_HEADER_IPV4
            } else {
                NEXT_HEADER_IPV6
            };
            match route.sa.seal(pkt, nh, &mut out[off..]) {
                Ok(len) => {
                    slots.push(Slot {
                        dst: route.dst,
                        off,
                        len,
                    });
                    off += len;
                }
                Err(e) => {
                    errors += 1;
                    if errors.is_power_of_two() {
                        tracing::warn!(iface = %sh.name, errors, "esp seal: {e}");
                    }
                }
            }
        }
        send_runs(sh, &out, &slots, max_gso, &mut errors);
    }
}

/// Send consecutive datagrams to the same peer with GSO: a run of equal sizes, ended by
/// a shorter one (the kernel cuts the buffer into `segment`-sized datagrams).
fn send_runs(sh: &Shared, out: &[u8], slots: &[Slot], max_gso: usize, errors: &mut u64) {
    let mut i = 0;
    while i < slots.len() {
        let (start, seg, dst) = (slots[i].off, slots[i].len, slots[i].dst);
        let mut end = start + seg;
        let mut count = 1;
        let mut j = i + 1;
        let max = max_gso.min(MAX_GSO_BYTES / seg).max(1);
        while j < slots.len() && count < max {
            let s = &slots[j];
            if s.dst != dst || s.off != end || s.len > seg || end + s.len - start > MAX_GSO_BYTES {
                break;
            }
            end += s.len;
            count += 1;
            j += 1;
            if s.len < seg {
                break;
            }
        }
        if let Err(e) = sh
            .udp
            .send(dst, &out[start..end], (count > 1).then_some(seg))
        {
            *errors += 1;
            if errors.is_power_of_two() {
                tracing::warn!(iface = %sh.name, %dst, errors = *errors, "udp send: {e}");
            }
        }
        i = j;
    }
}
