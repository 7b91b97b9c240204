//! The wire format of the gateways' health-check probe: a request one
//! gateway sends through the cable to another's health checker, and the
//! reply echoing it. `ferry-gateway` sends and answers them; `ferry-ctl`
//! speaks the same format to test a cable from outside the gateway.

/// First bytes of every probe, so stray datagrams are ignored.
pub const MAGIC: [u8; 4] = *b"FRYH";
/// Size of a probe on the wire.
pub const PROBE_LEN: usize = 21;

/// A health-check datagram: a request, or the reply echoing it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    /// `false` for a request, `true` for the echoed reply.
    pub reply: bool,
    /// Sequence number chosen by the sender.
    pub seq: u64,
    /// Sender's clock at send time, in nanoseconds since its own epoch; only
    /// the sender interprets it.
    pub sent_nanos: u64,
}

impl Probe {
    /// The wire form: magic, kind, seq, timestamp (big-endian).
    pub fn encode(&self) -> [u8; PROBE_LEN] {
        let mut b = [0u8; PROBE_LEN];
        b[..4].copy_from_slice(&MAGIC);
        b[4] = u8::from(self.reply);
        b[5..13].copy_from_slice(&self.seq.to_be_bytes());
        b[13..21].copy_from_slice(&self.sent_nanos.to_be_bytes());
        b
    }

    /// Parses a datagram; anything that is not exactly a probe is `None`.
    pub fn decode(b: &[u8]) -> Option<Probe> {
        if b.len() != PROBE_LEN || b[..4] != MAGIC || b[4] > 1 {
            return None;
        }
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&b[5..13]);
        let mut sent = [0u8; 8];
        sent.copy_from_slice(&b[13..21]);
        Some(Probe {
            reply: b[4] == 1,
            seq: u64::from_be_bytes(seq),
            sent_nanos: u64::from_be_bytes(sent),
        })
    }
}

#[cfg(test)]
mod tests;
