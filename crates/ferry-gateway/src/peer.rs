//! Direct liveness probes between the gateway nodes of one cluster, without
//! I/O: the wire format and the standby's view of the lease holder.
//!
//! The Lease only arbitrates who is active; it is renewed every few seconds
//! (Kubernetes' leader-election cadence), far too rarely to detect a dead
//! holder quickly. So every standby sends small fixed-size UDP probes to the
//! address the holder advertises in the Lease, on the node network, every
//! `interval`, and the holder answers each with whether it is active (RFC
//! 5880's ideas: fixed small packets, detection after `multiplier`
//! intervals without an answer). Once the holder has answered as active,
//! more than `multiplier` probes in a row sent without an answer over at
//! least `multiplier × interval` — or an answer saying it is no longer
//! active — make it [`Verdict::Down`], and the standby takes the Lease at
//! once. Counting the probes actually sent, not only the time, keeps a
//! standby that was itself descheduled (a loaded node) from blaming the
//! holder for answers it never asked for. So does a refused probe (ICMP port unreachable: the holder's
//! process is gone while its node lives, as after a kill -9), which
//! usually comes back within one interval. A holder that never answered
//! stays [`Verdict::Unknown`]: probes
//! that cannot pass (a firewall, an older gateway) never trigger a takeover,
//! and the Lease's expiry still decides.
//!
//! The socket loop lives in `peer_prober`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Default UDP port of the peer probes (on the node's private IP).
pub const DEFAULT_PEER_PROBE_PORT: u16 = ferry_api::ports::PEER_PROBE_PORT;

/// First bytes of every peer probe, so stray datagrams are ignored.
pub const MAGIC: [u8; 4] = *b"FRYP";
/// Size of a peer probe on the wire.
pub const PEER_PROBE_LEN: usize = 14;

const FLAG_REPLY: u8 = 1;
const FLAG_ACTIVE: u8 = 2;

/// One peer probe: a standby's request or the holder's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerProbe {
    /// `false` for a request, `true` for an answer.
    pub reply: bool,
    /// In an answer: whether the answering gateway is active now.
    pub active: bool,
    /// Chosen by the requester, echoed in the answer.
    pub seq: u64,
}

impl PeerProbe {
    /// The wire form: magic, flags, seq (big-endian).
    pub fn encode(&self) -> [u8; PEER_PROBE_LEN] {
        let mut b = [0u8; PEER_PROBE_LEN];
        b[..4].copy_from_slice(&MAGIC);
        b[4] = if self.reply { FLAG_REPLY } else { 0 } | if self.active { FLAG_ACTIVE } else { 0 };
        b[6..14].copy_from_slice(&self.seq.to_be_bytes());
        b
    }

    /// Parses a datagram; anything that is not exactly a peer probe is `None`.
    pub fn decode(b: &[u8]) -> Option<PeerProbe> {
        if b.len() != PEER_PROBE_LEN || b[..4] != MAGIC || b[4] & !(FLAG_REPLY | FLAG_ACTIVE) != 0 {
            return None;
        }
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&b[6..14]);
        Some(PeerProbe {
            reply: b[4] & FLAG_REPLY != 0,
            active: b[4] & FLAG_ACTIVE != 0,
            seq: u64::from_be_bytes(seq),
        })
    }
}

/// Probe timing: a request every `interval`; `multiplier` intervals without
/// an answer mean the holder is down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Detect {
    pub interval: Duration,
    pub multiplier: u32,
}

impl Detect {
    /// How long a holder that answered may stay silent.
    pub fn time(&self) -> Duration {
        self.interval.saturating_mul(self.multiplier.max(1))
    }
}

/// The lease holder a standby probes: its identity and advertised address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub holder: String,
    pub addr: SocketAddr,
}

/// What the probes say of the current target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It has not answered as active yet: only the Lease's expiry decides.
    Unknown,
    /// It answers as active.
    Alive,
    /// It answered as active, then went silent or said it no longer is.
    Down,
}

/// The verdict on one target, as the lease loop receives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HolderVerdict {
    pub target: Option<Target>,
    pub verdict: Verdict,
}

impl Default for HolderVerdict {
    fn default() -> Self {
        Self {
            target: None,
            verdict: Verdict::Unknown,
        }
    }
}

/// A standby's monitor of the lease holder.
#[derive(Debug)]
pub struct HolderMonitor {
    detect: Detect,
    target: Option<Target>,
    verdict: Verdict,
    last_active: Option<Instant>,
    /// Requests sent since the holder last answered as active.
    unanswered: u32,
    next_seq: u64,
    /// Answers to requests sent before this target was set are ignored.
    first_seq: u64,
}

impl HolderMonitor {
    /// A monitor with no target; `seq_base` tells this process's requests
    /// from an earlier one's.
    pub fn new(detect: Detect, seq_base: u64) -> Self {
        Self {
            detect,
            target: None,
            verdict: Verdict::Unknown,
            last_active: None,
            unanswered: 0,
            next_seq: seq_base,
            first_seq: seq_base,
        }
    }

    /// The holder to probe (`None`: this node holds the lease, or nobody
    /// does, or the holder advertises no address). A new target starts
    /// from [`Verdict::Unknown`].
    pub fn set_target(&mut self, target: Option<Target>) {
        if self.target == target {
            return;
        }
        self.target = target;
        self.verdict = Verdict::Unknown;
        self.last_active = None;
        self.unanswered = 0;
        self.first_seq = self.next_seq;
    }

    /// Whether there is anyone to probe.
    pub fn has_target(&self) -> bool {
        self.target.is_some()
    }

    /// The next request and where it goes.
    pub fn next_request(&mut self) -> Option<(SocketAddr, PeerProbe)> {
        let addr = self.target.as_ref()?.addr;
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.unanswered = self.unanswered.saturating_add(1);
        Some((
            addr,
            PeerProbe {
                reply: false,
                active: false,
                seq,
            },
        ))
    }

    /// Takes an answer from `from`; returns `true` when the verdict changed.
    pub fn on_reply(&mut self, now: Instant, from: SocketAddr, p: PeerProbe) -> bool {
        let Some(t) = &self.target else { return false };
        if !p.reply
            || from != t.addr
            || p.seq.wrapping_sub(self.first_seq) >= self.next_seq.wrapping_sub(self.first_seq)
        {
            return false;
        }
        let before = self.verdict;
        if p.active {
            self.last_active = Some(now);
            self.unanswered = 0;
            self.verdict = Verdict::Alive;
        } else if self.verdict == Verdict::Alive {
            // It stepped down, or a restarted process answers on its address.
            self.verdict = Verdict::Down;
        }
        self.verdict != before
    }

    /// The holder's node refused a probe (ICMP port unreachable): no
    /// process listens there any more, so a holder that answered is down
    /// now, without waiting for the detection time. Returns `true` when the
    /// verdict changed.
    pub fn on_refused(&mut self) -> bool {
        if self.verdict != Verdict::Alive {
            return false;
        }
        self.verdict = Verdict::Down;
        true
    }

    /// Applies the detection time; returns `true` when the verdict changed.
    pub fn poll(&mut self, now: Instant) -> bool {
        match self.deadline() {
            Some(d) if now >= d => {
                self.verdict = Verdict::Down;
                true
            }
            _ => false,
        }
    }

    /// When the holder is down unless it answers before: once more than
    /// `multiplier` requests went unanswered (each of the first
    /// `multiplier` had an interval to be answered), and at least the
    /// detection time after its last answer.
    pub fn deadline(&self) -> Option<Instant> {
        match self.verdict {
            Verdict::Alive if self.unanswered > self.detect.multiplier.max(1) => {
                Some(self.last_active? + self.detect.time())
            }
            Verdict::Alive | Verdict::Unknown | Verdict::Down => None,
        }
    }

    /// The current verdict alone (no clone of the target's name, for
    /// loops that ask every probe).
    pub fn current(&self) -> Verdict {
        self.verdict
    }

    /// The current verdict with its target.
    pub fn verdict(&self) -> HolderVerdict {
        HolderVerdict {
            target: self.target.clone(),
            verdict: self.verdict,
        }
    }
}

/// A request-number base for a new monitor: only tells its answers from
/// an earlier monitor's on the same address, so a clock-seeded hash is
/// enough (halved: room to count up without wrapping).
pub fn random_seq_base() -> u64 {
    crate::random_u64() >> 1
}

#[cfg(test)]
mod tests;
