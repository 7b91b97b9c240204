//! Receive-side coalescing (GRO) in user space: decrypted packets are written
//! straight into a [`TunBatch`]; consecutive in-order segments of one TCP flow
//! (or equal-sized datagrams of one UDP flow, when the TUN takes UDP
//! segmentation) are appended to the flow's first packet, which then goes to
//! the kernel as one virtio-net GSO packet.
//!
//! It replaces tun-rs's `send_multiple` GRO on the tunnels' receive paths: that
//! one copies every packet into a fresh `Vec` (a malloc, a copy and a free per
//! 1.4 KB segment: ~7 % of the WireGuard receive thread) and verifies every
//! segment's TCP checksum (~2 %). A tunnel's packets were just authenticated
//! by the AEAD, so — like kernel WireGuard, which marks decrypted packets
//! `CHECKSUM_UNNECESSARY` — a coalesced packet is handed over with its
//! checksum to be completed (`NEEDS_CSUM`), never verified here; a packet that
//! is not coalesced keeps its checksum and header untouched.
//!
//! Order: a flow has at most one open packet to append to; a packet of that
//! flow that cannot be appended (a pure ACK, a FIN, a gap) closes it, and a
//! packet with no flow key (fragment, ICMP, other protocols) closes every open
//! packet. Slots are written in arrival order, so no flow is reordered.

use std::io;

/// Length of the virtio-net header in front of every packet.
pub const VNET_HDR_LEN: usize = tun_rs::VIRTIO_NET_HDR_LEN;
/// Largest packet a slot holds (the IP total length limit).
const MAX_PACKET: usize = 65_535;
/// The kernel takes at most this many UDP segments in one GSO packet.
const MAX_UDP_SEGMENTS: u16 = 64;

const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const TCP_ACK: u8 = 0x10;
const TCP_PSH: u8 = 0x08;
const F_NEEDS_CSUM: u8 = 1;
const GSO_TCPV4: u8 = 1;
const GSO_TCPV6: u8 = 4;
const GSO_UDP_L4: u8 = 5;

/// A flow as GRO sees it: protocol, addresses and ports.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct FlowKey {
    proto: u8,
    v6: bool,
    addrs: [u8; 32],
    ports: [u8; 4],
}

/// What one packet looks like to GRO.
#[derive(Clone, Copy, Debug)]
struct Segment {
    key: FlowKey,
    iph_len: usize,
    /// IP + transport header length.
    hdr_len: usize,
    payload: usize,
    /// TCP: sequence number; UDP: unused.
    seq: u32,
    psh: bool,
}

/// A packet that later segments of its flow may be appended to.
#[derive(Clone, Copy, Debug)]
struct OpenFlow {
    slot: usize,
    seg: Segment,
    /// Payload size of the first segment: every appended one but the last equals it.
    gso_size: usize,
    segments: u16,
    /// TCP: the sequence number the next appended segment must carry.
    next_seq: u32,
    /// No more appends (PSH, or a segment shorter than `gso_size` came last).
    closed: bool,
}

/// A batch of packets on their way to the TUN, coalesced as they arrive.
#[derive(Debug)]
pub struct TunBatch {
    /// Each slot: virtio-net header, then room for a 64 KiB packet.
    slots: Vec<Box<[u8]>>,
    lens: Vec<usize>,
    /// Whether the slot's packet had segments appended (needs a GSO header).
    merged: Vec<u16>,
    gso_sizes: Vec<usize>,
    used: usize,
    open: Vec<OpenFlow>,
    udp_gso: bool,
}

impl TunBatch {
    /// `capacity` slots; `udp_gso`: the TUN accepts UDP segmentation
    /// (`VIRTIO_NET_HDR_GSO_UDP_L4`), so UDP datagrams may be coalesced too.
    pub fn new(capacity: usize, udp_gso: bool) -> Self {
        let capacity = capacity.max(1);
        Self {
            slots: (0..capacity)
                .map(|_| vec![0u8; VNET_HDR_LEN + MAX_PACKET].into_boxed_slice())
                .collect(),
            lens: vec![0; capacity],
            merged: vec![0; capacity],
            gso_sizes: vec![0; capacity],
            used: 0,
            open: Vec::with_capacity(16),
            udp_gso,
        }
    }

    /// Packets (after coalescing) waiting to be written.
    pub fn len(&self) -> usize {
        self.used
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.used == 0
    }

    /// Whether every slot is taken: [`flush`](Self::flush) before the next packet.
    pub fn is_full(&self) -> bool {
        self.used == self.slots.len()
    }

    /// Where the next packet goes (64 KiB); then [`push`](Self::push) its length.
    /// Must not be called when [`is_full`](Self::is_full).
    pub fn next_buf(&mut self) -> &mut [u8] {
        &mut self.slots[self.used][VNET_HDR_LEN..]
    }

    /// The packet just written into [`next_buf`](Self::next_buf) is `len` bytes:
    /// append it to its flow's open packet, or keep it in its own slot.
    pub fn push(&mut self, len: usize) {
        let i = self.used;
        let len = len.min(MAX_PACKET);
        let seg = parse(
            &self.slots[i][VNET_HDR_LEN..VNET_HDR_LEN + len],
            self.udp_gso,
        );
        match seg {
            Some(seg) => {
                if let Some(f) = self.open.iter().position(|o| o.seg.key == seg.key) {
                    if self.try_append(f, i, &seg) {
                        return;
                    }
                    self.open.swap_remove(f);
                }
                if seg.payload > 0 {
                    self.open.push(OpenFlow {
                        slot: i,
                        seg,
                        gso_size: seg.payload,
                        segments: 1,
                        next_seq: seg.seq.wrapping_add(seg.payload as u32),
                        closed: seg.psh,
                    });
                }
            }
            None => match flow_of(&self.slots[i][VNET_HDR_LEN..VNET_HDR_LEN + len]) {
                Some(key) => self.open.retain(|o| o.seg.key != key),
                None => self.open.clear(),
            },
        }
        self.lens[i] = len;
        self.merged[i] = 0;
        self.used += 1;
    }

    /// Append slot `from`'s payload to open flow `f`'s packet, if the protocol
    /// allows (see [`can_append`]).
    fn try_append(&mut self, f: usize, from: usize, seg: &Segment) -> bool {
        let o = self.open[f];
        let head_len = self.lens[o.slot];
        let (head, pkt) = two_slots(&mut self.slots, o.slot, from);
        let head = &mut head[VNET_HDR_LEN..];
        let pkt = &pkt[VNET_HDR_LEN..VNET_HDR_LEN + seg.hdr_len + seg.payload];
        if !can_append(&o, &head[..head_len], pkt, seg) {
            return false;
        }
        head[head_len..head_len + seg.payload].copy_from_slice(&pkt[seg.hdr_len..]);
        if seg.psh {
            head[o.seg.iph_len + 13] |= TCP_PSH;
        }
        self.lens[o.slot] = head_len + seg.payload;
        self.merged[o.slot] = o.segments;
        self.gso_sizes[o.slot] = o.gso_size;
        let o = &mut self.open[f];
        o.segments += 1;
        o.next_seq = seg.seq.wrapping_add(seg.payload as u32);
        o.closed = seg.psh || seg.payload < o.gso_size;
        true
    }

    /// Write every packet (coalesced ones with their GSO header) with `write`,
    /// in order, and empty the batch. Returns the first error; later packets
    /// are still written.
    pub fn flush(&mut self, mut write: impl FnMut(&[u8]) -> io::Result<usize>) -> io::Result<()> {
        let mut result = Ok(());
        for i in 0..self.used {
            let len = self.lens[i];
            let slot = &mut self.slots[i][..VNET_HDR_LEN + len];
            if self.merged[i] > 0 {
                finish_merged(slot, self.gso_sizes[i]);
            } else {
                slot[..VNET_HDR_LEN].fill(0);
            }
            if let Err(e) = write(slot)
                && result.is_ok()
            {
                result = Err(e);
            }
        }
        self.used = 0;
        self.open.clear();
        result
    }
}

/// Two distinct slots, mutably.
fn two_slots(slots: &mut [Box<[u8]>], a: usize, b: usize) -> (&mut [u8], &mut [u8]) {
    debug_assert!(a < b, "a flow's open packet always precedes the new one");
    let (lo, hi) = slots.split_at_mut(b);
    (&mut lo[a], &mut hi[0])
}

/// Whether `pkt` (described by `seg`) may be appended to open flow `o`, whose
/// packet so far is `head`: the same IP header fields the kernel's GRO
/// requires equal, TCP in sequence with the same ACK and options, segments no
/// larger than the first, within 64 KiB.
fn can_append(o: &OpenFlow, head: &[u8], pkt: &[u8], seg: &Segment) -> bool {
    if o.closed
        || seg.payload == 0
        || seg.payload > o.gso_size
        || head.len() + seg.payload > MAX_PACKET
    {
        return false;
    }
    if o.seg.hdr_len != seg.hdr_len || !ip_fields_match(head, pkt, seg.key.v6) {
        return false;
    }
    if seg.key.proto == IPPROTO_UDP {
        return o.segments < MAX_UDP_SEGMENTS;
    }
    let t = seg.iph_len;
    seg.seq == o.next_seq
        // ACK number, then the options (timestamps) must be the same.
        && head[t + 8..t + 12] == pkt[t + 8..t + 12]
        && head[t + 20..seg.hdr_len] == pkt[t + 20..seg.hdr_len]
}

/// The IP header fields that must agree for packets to be one GSO packet.
fn ip_fields_match(a: &[u8], b: &[u8], v6: bool) -> bool {
    if v6 {
        // version, traffic class, flow label; hop limit
        a[..4] == b[..4] && a[7] == b[7]
    } else {
        // TOS; DF flag; TTL
        a[1] == b[1] && (a[6] & 0x40) == (b[6] & 0x40) && a[8] == b[8]
    }
}

/// A packet GRO may coalesce: IPv4 without options or fragments, or IPv6
/// without extension headers, carrying TCP (only ACK, or ACK+PSH; payload
/// may be empty, then it only closes its flow) or, with `udp_gso`, UDP.
fn parse(p: &[u8], udp_gso: bool) -> Option<Segment> {
    let (v6, iph_len, proto) = match p.first()? >> 4 {
        4 if p.len() >= 20 && p[0] & 0x0f == 5 => {
            let total = usize::from(u16::from_be_bytes([p[2], p[3]]));
            let fragment = u16::from_be_bytes([p[6], p[7]]) & 0x3fff != 0;
            if total != p.len() || fragment {
                return None;
            }
            (false, 20, p[9])
        }
        6 if p.len() >= 40 => {
            let payload = usize::from(u16::from_be_bytes([p[4], p[5]]));
            if payload + 40 != p.len() {
                return None;
            }
            (true, 40, p[6])
        }
        _ => return None,
    };
    let key = flow_key(p, v6, iph_len, proto)?;
    let (hdr_len, seq, psh) = match proto {
        IPPROTO_TCP => {
            let doff = usize::from(p.get(iph_len + 12)? >> 4) * 4;
            let flags = *p.get(iph_len + 13)?;
            if doff < 20 || p.len() < iph_len + doff {
                return None;
            }
            if flags != TCP_ACK && flags != TCP_ACK | TCP_PSH {
                return None;
            }
            let t = iph_len;
            let seq = u32::from_be_bytes([p[t + 4], p[t + 5], p[t + 6], p[t + 7]]);
            (iph_len + doff, seq, flags & TCP_PSH != 0)
        }
        IPPROTO_UDP if udp_gso => {
            let ulen = usize::from(u16::from_be_bytes([p[iph_len + 4], p[iph_len + 5]]));
            if ulen != p.len() - iph_len {
                return None;
            }
            (iph_len + 8, 0, false)
        }
        _ => return None,
    };
    Some(Segment {
        key,
        iph_len,
        hdr_len,
        payload: p.len() - hdr_len,
        seq,
        psh,
    })
}

/// The flow a TCP or UDP packet belongs to, parsed loosely (also for packets
/// [`parse`] refuses, so that they close their flow's open packet).
fn flow_of(p: &[u8]) -> Option<FlowKey> {
    match p.first()? >> 4 {
        4 if p.len() >= 20 => {
            let iph_len = usize::from(p[0] & 0x0f) * 4;
            let first_fragment = u16::from_be_bytes([p[6], p[7]]) & 0x1fff == 0;
            first_fragment.then_some(())?;
            flow_key(p, false, iph_len, p[9])
        }
        6 if p.len() >= 40 => flow_key(p, true, 40, p[6]),
        _ => None,
    }
}

fn flow_key(p: &[u8], v6: bool, iph_len: usize, proto: u8) -> Option<FlowKey> {
    if proto != IPPROTO_TCP && proto != IPPROTO_UDP {
        return None;
    }
    let ports = p.get(iph_len..iph_len + 4)?;
    let mut key = FlowKey {
        proto,
        v6,
        addrs: [0; 32],
        ports: [ports[0], ports[1], ports[2], ports[3]],
    };
    if v6 {
        key.addrs.copy_from_slice(&p[8..40]);
    } else {
        key.addrs[..8].copy_from_slice(&p[12..20]);
    }
    Some(key)
}

/// Turn a coalesced packet (`slot` = virtio-net header + packet) into one the
/// kernel segments: IP length (and IPv4 header checksum), UDP length, the
/// transport checksum seeded with the pseudo-header for `NEEDS_CSUM`, and the
/// GSO header.
fn finish_merged(slot: &mut [u8], gso_size: usize) {
    let (hdr, p) = slot.split_at_mut(VNET_HDR_LEN);
    let len = p.len();
    let v6 = p[0] >> 4 == 6;
    let (iph_len, proto) = if v6 { (40, p[6]) } else { (20, p[9]) };
    let l4_len = len - iph_len;
    if v6 {
        p[4..6].copy_from_slice(&(l4_len as u16).to_be_bytes());
    } else {
        p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        p[10..12].fill(0);
        let c = !fold(sum(&p[..20], 0));
        p[10..12].copy_from_slice(&c.to_be_bytes());
    }
    let (csum_offset, hdr_len, gso_type) = if proto == IPPROTO_TCP {
        let doff = usize::from(p[iph_len + 12] >> 4) * 4;
        let ty = if v6 { GSO_TCPV6 } else { GSO_TCPV4 };
        (16, iph_len + doff, ty)
    } else {
        p[iph_len + 4..iph_len + 6].copy_from_slice(&(l4_len as u16).to_be_bytes());
        (6, iph_len + 8, GSO_UDP_L4)
    };
    let addrs = if v6 { &p[8..40] } else { &p[12..20] };
    let pseudo = sum(addrs, u64::from(proto) + l4_len as u64);
    let at = iph_len + csum_offset;
    p[at..at + 2].copy_from_slice(&fold(pseudo).to_be_bytes());
    // struct virtio_net_hdr, native endian (the TUN is not set to big endian).
    hdr[0] = F_NEEDS_CSUM;
    hdr[1] = gso_type;
    hdr[2..4].copy_from_slice(&(hdr_len as u16).to_ne_bytes());
    hdr[4..6].copy_from_slice(&(gso_size as u16).to_ne_bytes());
    hdr[6..8].copy_from_slice(&(iph_len as u16).to_ne_bytes());
    hdr[8..10].copy_from_slice(&(csum_offset as u16).to_ne_bytes());
}

/// One's-complement sum of big-endian 16-bit words (headers only: short).
fn sum(b: &[u8], mut acc: u64) -> u64 {
    let mut chunks = b.chunks_exact(2);
    for c in &mut chunks {
        acc += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

#[cfg(test)]
mod tests;
