//! ESP (RFC 4303) in tunnel mode with AEAD ciphers (RFC 4106, RFC 7634), carried in
//! UDP (RFC 3948): sealing and opening packets, sequence numbers (32-bit, or 64-bit
//! ESN), the anti-replay window, and telling ESP from IKE and keepalives on the
//! shared UDP port. No I/O: the fast path hands buffers in.

use super::crypto::{AeadKey, IV_LEN, TAG_LEN};
use crate::Error;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// SPI + sequence number + IV.
pub const ESP_HEADER_LEN: usize = 8 + IV_LEN;
/// Worst-case bytes ESP adds to an inner packet: header, up to 3 bytes of padding,
/// pad length and next header, tag.
pub const ESP_OVERHEAD: usize = ESP_HEADER_LEN + 3 + 2 + TAG_LEN;
/// Next header values of tunnel-mode ESP.
pub const NEXT_HEADER_IPV4: u8 = 4;
/// Next header for IPv6 inner packets.
pub const NEXT_HEADER_IPV6: u8 = 41;
/// Next header of a dummy (TFC) packet, to be dropped silently.
pub const NEXT_HEADER_NONE: u8 = 59;
/// Size of the anti-replay window in packets.
pub const REPLAY_WINDOW: u64 = 1024;

/// What a UDP datagram on the NAT-T port is (RFC 3948 §2).
#[derive(Debug, PartialEq, Eq)]
pub enum Datagram<'a> {
    /// An IKE message (after the 4-byte non-ESP marker).
    Ike(&'a [u8]),
    /// An ESP packet (starts with its SPI).
    Esp(u32),
    /// A NAT-keepalive (one 0xff byte).
    Keepalive,
    /// Anything else.
    Invalid,
}

/// Classify a datagram received on the NAT-T port.
pub fn classify(d: &[u8]) -> Datagram<'_> {
    match d {
        [0xff] => Datagram::Keepalive,
        [0, 0, 0, 0, rest @ ..] => Datagram::Ike(rest),
        [a, b, c, e, ..] if d.len() >= ESP_HEADER_LEN + TAG_LEN => {
            Datagram::Esp(u32::from_be_bytes([*a, *b, *c, *e]))
        }
        _ => Datagram::Invalid,
    }
}

/// Packet and byte counters of one SA direction.
#[derive(Debug, Default)]
pub struct SaCounters {
    /// Packets sealed or accepted.
    pub packets: AtomicU64,
    /// Inner bytes sealed or accepted.
    pub bytes: AtomicU64,
    /// Packets refused: failed integrity or malformed.
    pub invalid: AtomicU64,
    /// Packets refused as replays.
    pub replayed: AtomicU64,
}

/// The sending half of a child SA.
#[derive(Debug)]
pub struct EspOutbound {
    /// The peer's SPI (it chose it).
    pub spi: u32,
    key: AeadKey,
    esn: bool,
    /// Last sequence number used (64-bit even without ESN).
    seq: AtomicU64,
    /// Counters.
    pub counters: SaCounters,
}

impl EspOutbound {
    /// A new outbound SA.
    pub fn new(spi: u32, key: AeadKey, esn: bool) -> Self {
        Self {
            spi,
            key,
            esn,
            seq: AtomicU64::new(0),
            counters: SaCounters::default(),
        }
    }

    /// Sequence numbers used so far (rekey well before the limit).
    pub fn used(&self) -> u64 {
        self.seq.load(Ordering::Relaxed)
    }

    /// Whether the sequence space is close enough to its end to rekey now.
    pub fn needs_rekey(&self) -> bool {
        let limit = if self.esn {
            u64::MAX
        } else {
            u64::from(u32::MAX)
        };
        self.used() >= limit - limit / 8
    }

    /// Seal `inner` (an IP packet) into `out` as an ESP packet; returns its length.
    /// `out` needs `inner.len() + ESP_OVERHEAD` bytes.
    pub fn seal(&self, inner: &[u8], next_header: u8, out: &mut [u8]) -> Result<usize, Error> {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        if !self.esn && seq > u64::from(u32::MAX) {
            return Err(Error::SequenceExhausted(self.spi));
        }
        // Payload, padding to a 4-byte boundary (RFC 4303 §2.4), pad length, next header.
        let pad = (4 - (inner.len() + 2) % 4) % 4;
        let pt_len = inner.len() + pad + 2;
        let total = ESP_HEADER_LEN + pt_len + TAG_LEN;
        if out.len() < total {
            return Err(Error::BufferTooSmall);
        }
        out[0..4].copy_from_slice(&self.spi.to_be_bytes());
        out[4..8].copy_from_slice(&(seq as u32).to_be_bytes());
        // The IV is the 64-bit sequence number: unique per key (RFC 4106 §3.1).
        let iv = seq.to_be_bytes();
        out[8..16].copy_from_slice(&iv);
        let body = &mut out[ESP_HEADER_LEN..ESP_HEADER_LEN + pt_len];
        body[..inner.len()].copy_from_slice(inner);
        for (i, b) in body[inner.len()..inner.len() + pad].iter_mut().enumerate() {
            *b = i as u8 + 1;
        }
        body[pt_len - 2] = pad as u8;
        body[pt_len - 1] = next_header;
        let aad = aad(self.spi, seq, self.esn);
        let tag = self.key.seal(&iv, aad.as_slice(), body)?;
        out[ESP_HEADER_LEN + pt_len..total].copy_from_slice(&tag);
        self.counters.packets.fetch_add(1, Ordering::Relaxed);
        self.counters
            .bytes
            .fetch_add(inner.len() as u64, Ordering::Relaxed);
        Ok(total)
    }
}

/// AAD: SPI and the sequence number (high half first with ESN; RFC 4106 §5).
struct Aad {
    buf: [u8; 12],
    len: usize,
}
impl Aad {
    fn as_slice(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}
fn aad(spi: u32, seq: u64, esn: bool) -> Aad {
    let mut buf = [0u8; 12];
    buf[..4].copy_from_slice(&spi.to_be_bytes());
    if esn {
        buf[4..12].copy_from_slice(&seq.to_be_bytes());
        Aad { buf, len: 12 }
    } else {
        buf[4..8].copy_from_slice(&(seq as u32).to_be_bytes());
        Aad { buf, len: 8 }
    }
}

/// The receiving half of a child SA.
#[derive(Debug)]
pub struct EspInbound {
    /// Our SPI.
    pub spi: u32,
    key: AeadKey,
    esn: bool,
    replay: Mutex<ReplayWindow>,
    /// Counters.
    pub counters: SaCounters,
}

/// An accepted packet: where the inner packet sits in the buffer, and its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opened {
    /// Offset of the inner packet.
    pub start: usize,
    /// Its length.
    pub len: usize,
    /// Next header (4: IPv4, 41: IPv6, 59: dummy).
    pub next_header: u8,
}

impl EspInbound {
    /// A new inbound SA.
    pub fn new(spi: u32, key: AeadKey, esn: bool) -> Self {
        Self {
            spi,
            key,
            esn,
            replay: Mutex::new(ReplayWindow::default()),
            counters: SaCounters::default(),
        }
    }

    /// Authenticate and decrypt `pkt` (an ESP packet for this SA) in place.
    pub fn open(&self, pkt: &mut [u8]) -> Result<Opened, Error> {
        let r = self.open_inner(pkt);
        match &r {
            Ok(o) => {
                self.counters.packets.fetch_add(1, Ordering::Relaxed);
                self.counters
                    .bytes
                    .fetch_add(o.len as u64, Ordering::Relaxed);
            }
            Err(Error::Replay(_)) => {
                self.counters.replayed.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                self.counters.invalid.fetch_add(1, Ordering::Relaxed);
            }
        }
        r
    }

    fn open_inner(&self, pkt: &mut [u8]) -> Result<Opened, Error> {
        if pkt.len() < ESP_HEADER_LEN + 2 + TAG_LEN {
            return Err(Error::Malformed("ESP packet too short"));
        }
        let seq32 = u32::from_be_bytes([pkt[4], pkt[5], pkt[6], pkt[7]]);
        let seq = {
            let w = crate::proto::lock(&self.replay);
            let seq = if self.esn {
                w.infer_esn(seq32)
            } else {
                u64::from(seq32)
            };
            if !w.check(seq) {
                return Err(Error::Replay(seq));
            }
            seq
        };
        let mut iv = [0u8; IV_LEN];
        iv.copy_from_slice(&pkt[8..16]);
        let n = pkt.len();
        let (body, tag) = pkt[ESP_HEADER_LEN..].split_at_mut(n - ESP_HEADER_LEN - TAG_LEN);
        let aad = aad(self.spi, seq, self.esn);
        self.key.open(&iv, aad.as_slice(), body, tag)?;
        // Only an authentic packet moves the window.
        if !crate::proto::lock(&self.replay).update(seq) {
            return Err(Error::Replay(seq));
        }
        let pt_len = body.len();
        let next_header = body[pt_len - 1];
        let pad = usize::from(body[pt_len - 2]);
        if pad + 2 > pt_len {
            return Err(Error::Malformed("ESP padding length"));
        }
        Ok(Opened {
            start: ESP_HEADER_LEN,
            len: pt_len - 2 - pad,
            next_header,
        })
    }
}

/// The anti-replay window (RFC 4303 §3.4.3, bitmap as in RFC 6479): the highest
/// sequence number seen and which of the `REPLAY_WINDOW` before it were seen.
#[derive(Debug, Clone)]
pub struct ReplayWindow {
    top: u64,
    bits: [u64; (REPLAY_WINDOW / 64) as usize],
}

impl Default for ReplayWindow {
    fn default() -> Self {
        Self {
            top: 0,
            bits: [0; (REPLAY_WINDOW / 64) as usize],
        }
    }
}

impl ReplayWindow {
    fn bit(seq: u64) -> (usize, u64) {
        let i = seq % REPLAY_WINDOW;
        ((i / 64) as usize, 1u64 << (i % 64))
    }

    /// Whether `seq` may be accepted (not zero, not seen, not left of the window).
    pub fn check(&self, seq: u64) -> bool {
        if seq == 0 {
            return false;
        }
        if seq > self.top {
            return true;
        }
        if self.top - seq >= REPLAY_WINDOW {
            return false;
        }
        let (w, b) = Self::bit(seq);
        self.bits[w] & b == 0
    }

    /// Record `seq` as seen (after authentication); false if it was a replay.
    pub fn update(&mut self, seq: u64) -> bool {
        if !self.check(seq) {
            return false;
        }
        if seq > self.top {
            let shift = seq - self.top;
            if shift >= REPLAY_WINDOW {
                self.bits = [0; (REPLAY_WINDOW / 64) as usize];
            } else {
                // Clear the slots of the sequence numbers the window slides over.
                for s in self.top + 1..seq {
                    let (w, b) = Self::bit(s);
                    self.bits[w] &= !b;
                }
            }
            self.top = seq;
        }
        let (w, b) = Self::bit(seq);
        self.bits[w] |= b;
        true
    }

    /// The full 64-bit sequence number for the low 32 bits received
    /// (RFC 4303 Appendix A2.2).
    pub fn infer_esn(&self, low: u32) -> u64 {
        let top_low = self.top as u32;
        let top_high = self.top >> 32;
        let bottom = top_low.wrapping_sub((REPLAY_WINDOW - 1) as u32);
        let high = if top_low >= (REPLAY_WINDOW - 1) as u32 {
            // Window within one subspace.
            if low >= bottom {
                top_high
            } else {
                top_high + 1
            }
        } else if low >= bottom && top_high > 0 {
            // Window spans two subspaces; `low` is in the older one.
            top_high - 1
        } else {
            top_high
        };
        (high << 32) | u64::from(low)
    }
}

#[cfg(test)]
mod tests;
