//! IKEv2 (RFC 7296) with one peer: a [`Session`] negotiates and keeps an IKE SA and
//! the child SA carrying all traffic between the local and remote subnets, rekeys
//! both before they expire (the old SA keeps decrypting until it is deleted), checks
//! liveness (dead-peer detection), retransmits, and starts over when the peer is gone
//! or restarted. Authentication is by preshared key.
//!
//! No I/O and no clock: the caller feeds received IKE messages to
//! [`Session::handle`], calls [`Session::poll`] with the current time, sends what
//! [`Session::take_transmits`] returns, and installs [`Session::children`] in its
//! data path whenever [`Session::generation`] changes.

mod child;
mod exchange;
mod keys;
mod sa;

#[cfg(test)]
mod tests;

use super::esp::{EspInbound, EspOutbound};
use super::message::{self, Identity};
use super::proposal::{EspSuite, IkeSuite};
use super::ts::TrafficSelector;
use crate::Error;
use sa::IkeSa;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use keys::Psk;

/// Interval of NAT keepalives (strongSwan's default).
const NAT_KEEPALIVE: Duration = Duration::from_secs(20);

/// Timers of a session; the defaults follow strongSwan's.
#[derive(Clone, Debug)]
pub struct Timers {
    /// Rekey the IKE SA after this long (strongSwan: 4 h).
    pub ike_rekey: Duration,
    /// Rekey each child SA after this long (strongSwan: 1 h).
    pub child_rekey: Duration,
    /// Send a liveness check after this long without hearing from the peer.
    pub dpd: Duration,
    /// First retransmission timeout; doubled on every retry.
    pub retransmit_base: Duration,
    /// Retransmissions before the peer counts as dead.
    pub retransmit_tries: u32,
    /// Wait this long before initiating again after a failure.
    pub retry: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Self {
            ike_rekey: Duration::from_secs(4 * 3600),
            child_rekey: Duration::from_secs(3600),
            dpd: Duration::from_secs(30),
            retransmit_base: Duration::from_secs(2),
            retransmit_tries: 5,
            retry: Duration::from_secs(5),
        }
    }
}

/// Everything a session needs to know about its peer.
#[derive(Clone, Debug)]
pub struct Config {
    /// Preshared key (at least 32 bytes).
    pub psk: Psk,
    /// Our identity.
    pub local_id: Identity,
    /// The identity the peer must prove.
    pub remote_id: Identity,
    /// Our address as the peer sees it if not behind NAT (for NAT detection).
    pub local_addr: SocketAddr,
    /// The peer's address and NAT-T port.
    pub remote_addr: SocketAddr,
    /// IKE algorithm sets, most preferred first.
    pub ike_suites: Vec<IkeSuite>,
    /// ESP algorithm sets, most preferred first.
    pub esp_suites: Vec<EspSuite>,
    /// Our subnets.
    pub local_ts: Vec<TrafficSelector>,
    /// The peer's subnets.
    pub remote_ts: Vec<TrafficSelector>,
    /// Start the IKE SA ourselves (and again after a failure); else wait for the peer.
    pub initiate: bool,
    /// Claim a NAT in front of us so the peer encapsulates ESP in UDP even without one
    /// (this implementation always sends UDP-encapsulated ESP: there is no XFRM).
    pub force_encap: bool,
    /// Timers.
    pub timers: Timers,
}

impl Config {
    /// Check what a peer would refuse or what would make a black hole.
    pub fn validate(&self) -> Result<(), Error> {
        self.psk.validate()?;
        if self.ike_suites.is_empty() || self.esp_suites.is_empty() {
            return Err(Error::Config("no IKE or no ESP proposal configured".into()));
        }
        if self.local_ts.is_empty() || self.remote_ts.is_empty() {
            return Err(Error::Config(
                "no local or no remote subnet (traffic selector)".into(),
            ));
        }
        if self.timers.retransmit_tries == 0 || self.timers.retransmit_base.is_zero() {
            return Err(Error::Config(
                "retransmission timers must be positive".into(),
            ));
        }
        Ok(())
    }

    /// Whether `other` describes the same peer and the same SAs: everything but
    /// who initiates and the timers, which a running session can take over.
    pub fn same_peer(&self, other: &Config) -> bool {
        self.psk == other.psk
            && self.local_id == other.local_id
            && self.remote_id == other.remote_id
            && self.local_addr == other.local_addr
            && self.remote_addr == other.remote_addr
            && self.ike_suites == other.ike_suites
            && self.esp_suites == other.esp_suites
            && self.local_ts == other.local_ts
            && self.remote_ts == other.remote_ts
            && self.force_encap == other.force_encap
    }
}

/// A datagram to send to the peer (already with the non-ESP marker).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Destination.
    pub dst: SocketAddr,
    /// UDP payload.
    pub bytes: Vec<u8>,
}

/// Where the session stands (for status reports).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// Negotiating (or waiting for the peer to).
    Connecting,
    /// An IKE SA and a child SA are up.
    Established,
    /// The last attempt failed; the reason is for humans (retrying if we initiate).
    Failed(String),
}

/// One installed child SA (an ESP SA pair).
#[derive(Debug)]
pub struct ChildSa {
    /// Decrypts what the peer sends.
    pub inbound: Arc<EspInbound>,
    /// Encrypts what we send.
    pub outbound: Arc<EspOutbound>,
    /// Negotiated local subnets.
    pub local_ts: Vec<TrafficSelector>,
    /// Negotiated remote subnets.
    pub remote_ts: Vec<TrafficSelector>,
    /// Negotiated algorithms.
    pub suite: EspSuite,
    /// Whether outbound traffic should use this SA (the newest usable one).
    pub use_outbound: bool,
    created: Instant,
    rekey_at: Instant,
    /// A rekey of this SA is under way or done (it must not be rekeyed again).
    rekeyed: bool,
    /// Drop it at this time even if the peer never deletes it.
    expire_at: Option<Instant>,
    /// Inbound packet count last seen by `poll` (liveness).
    seen_packets: u64,
}

/// Counters of IKE input refused.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IkeCounters {
    /// Messages that did not parse or did not authenticate.
    pub invalid: u64,
    /// Messages for an IKE SA we do not have (or with an unexpected message id).
    pub unexpected: u64,
    /// IKE SAs rekeyed (by either side).
    pub ike_rekeys: u64,
    /// Child SAs rekeyed (by either side).
    pub child_rekeys: u64,
}

/// Session state shared by all IKE SAs of the session.
#[derive(Debug)]
pub(crate) struct Shared {
    pub remote: SocketAddr,
    pub children: Vec<ChildSa>,
    pub out: Vec<Transmit>,
    pub status: Status,
    pub generation: u64,
    pub counters: IkeCounters,
    /// When to initiate again (if we initiate and no IKE SA is up).
    pub retry_at: Option<Instant>,
    /// When we last sent a NAT keepalive.
    pub keepalive_at: Instant,
    /// The address the peer used before it last moved mid-session (an
    /// authenticated IKE message from another address), for status reports.
    pub moved_from: Option<SocketAddr>,
}

impl Shared {
    pub fn send(&mut self, bytes: &[u8]) {
        let mut b = Vec::with_capacity(bytes.len() + 4);
        b.extend_from_slice(&[0, 0, 0, 0]);
        b.extend_from_slice(bytes);
        self.out.push(Transmit {
            dst: self.remote,
            bytes: b,
        });
    }
    pub fn changed(&mut self) {
        self.generation += 1;
    }
    pub fn fail(&mut self, why: String) {
        tracing::warn!(peer = %self.remote, "IKE: {why}");
        self.status = Status::Failed(why);
    }
}

/// IKEv2 with one peer.
#[derive(Debug)]
pub struct Session {
    cfg: Config,
    ikes: Vec<IkeSa>,
    st: Shared,
}

impl Session {
    /// A session; it initiates at the first `poll` if `cfg.initiate`.
    pub fn new(cfg: Config, now: Instant) -> Result<Self, Error> {
        cfg.validate()?;
        let st = Shared {
            remote: cfg.remote_addr,
            children: Vec::new(),
            out: Vec::new(),
            status: Status::Connecting,
            generation: 0,
            counters: IkeCounters::default(),
            retry_at: cfg.initiate.then_some(now),
            keepalive_at: now,
            moved_from: None,
        };
        Ok(Self {
            cfg,
            ikes: Vec::new(),
            st,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Take over who initiates and the timers of `cfg` (see [`Config::same_peer`])
    /// without touching the SAs. A session that now initiates and holds no IKE SA
    /// starts at the next `poll`; one that no longer does stops retrying.
    pub fn update(&mut self, cfg: &Config, now: Instant) {
        self.cfg.timers = cfg.timers.clone();
        if self.cfg.initiate == cfg.initiate {
            return;
        }
        self.cfg.initiate = cfg.initiate;
        self.st.retry_at = (cfg.initiate && self.ikes.is_empty()).then_some(now);
    }

    /// The peer's current address.
    pub fn remote(&self) -> SocketAddr {
        self.st.remote
    }

    /// Where the peer was before it last changed its address mid-session
    /// (the session follows it to [`Session::remote`]); `None` if it never did.
    pub fn moved_from(&self) -> Option<SocketAddr> {
        self.st.moved_from
    }

    /// Where the session stands.
    pub fn status(&self) -> &Status {
        &self.st.status
    }

    /// Bumped whenever the set of child SAs or the outbound choice changes.
    pub fn generation(&self) -> u64 {
        self.st.generation
    }

    /// The installed child SAs (old ones included until deleted).
    pub fn children(&self) -> &[ChildSa] {
        &self.st.children
    }

    /// The child SA outbound traffic should use.
    pub fn outbound(&self) -> Option<&ChildSa> {
        self.st.children.iter().rev().find(|c| c.use_outbound)
    }

    /// Counters of refused IKE input.
    pub fn counters(&self) -> &IkeCounters {
        &self.st.counters
    }

    /// Whether an IKE message with these SPIs belongs to this session.
    pub fn owns(&self, spi_i: u64, spi_r: u64) -> bool {
        self.ikes.iter().any(|s| s.matches(spi_i, spi_r))
    }

    /// Datagrams to send now.
    pub fn take_transmits(&mut self) -> Vec<Transmit> {
        std::mem::take(&mut self.st.out)
    }

    /// Handle an IKE message (without the non-ESP marker) from `from`.
    pub fn handle(&mut self, now: Instant, from: SocketAddr, msg: &[u8]) -> Result<(), Error> {
        let r = self.handle_inner(now, from, msg);
        if let Err(e) = &r {
            match e {
                Error::UnknownSpi(_) => self.st.counters.unexpected += 1,
                _ => self.st.counters.invalid += 1,
            }
            tracing::debug!(peer = %from, "IKE message dropped: {e}");
        }
        r
    }

    fn handle_inner(&mut self, now: Instant, from: SocketAddr, msg: &[u8]) -> Result<(), Error> {
        let header = message::Header::parse(msg)?;
        if header.exchange == super::consts::exchange::IKE_SA_INIT
            && !header.is_response()
            && header.spi_r == 0
        {
            if let Some(ike) = self
                .ikes
                .iter_mut()
                .find(|s| s.is_responder_init(header.spi_i))
            {
                ike.retransmit_response(&mut self.st, header.message_id);
                return Ok(());
            }
            self.st.remote = from;
            let ike = exchange::respond_init(&self.cfg, &mut self.st, msg, now)?;
            self.ikes.push(ike);
            return Ok(());
        }
        let Some(i) = self
            .ikes
            .iter()
            .position(|s| s.matches(header.spi_i, header.spi_r))
        else {
            return Err(Error::UnknownSpi(header.message_id));
        };
        let Self { cfg, ikes, st } = self;
        let known: Vec<u32> = st.children.iter().map(|c| c.inbound.spi).collect();
        let outcome = exchange::handle(&mut ikes[i], cfg, st, msg, header, from, now)?;
        self.apply(i, outcome, &known, now);
        Ok(())
    }

    /// Act on what an exchange did; `known` are the child SAs (inbound SPIs) that
    /// existed before it.
    fn apply(&mut self, i: usize, outcome: exchange::Outcome, known: &[u32], now: Instant) {
        use exchange::Outcome;
        match outcome {
            Outcome::None => {}
            Outcome::Established => {
                // A fresh IKE SA (not a rekey) replaces everything older: the peer
                // restarted or re-authenticated.
                let spis = self.ikes[i].spis();
                self.ikes.retain(|s| s.spis() == spis);
                let before = self.st.children.len();
                self.st.children.retain(|c| !known.contains(&c.inbound.spi));
                if self.st.children.len() != before {
                    self.st.changed();
                }
            }
            Outcome::Rekeyed(new) => {
                self.st.counters.ike_rekeys += 1;
                self.ikes[i].superseded = true;
                self.ikes.push(*new);
            }
            Outcome::Deleted => {
                self.ikes.remove(i);
                self.after_ike_loss(now, "the peer deleted the IKE SA");
            }
            Outcome::Closed => {
                self.ikes.remove(i);
                self.after_ike_loss(now, "");
            }
            Outcome::Failed => {
                self.ikes.remove(i);
                self.after_ike_loss(now, "");
            }
        }
    }

    /// No IKE SA left: drop the child SAs, retry later if we initiate.
    fn after_ike_loss(&mut self, now: Instant, why: &str) {
        if self.ikes.iter().any(|s| s.is_established()) {
            return;
        }
        if !self.st.children.is_empty() {
            self.st.children.clear();
            self.st.changed();
        }
        if !why.is_empty() {
            self.st.fail(why.to_string());
        }
        if self.cfg.initiate && !self.ikes.iter().any(|s| s.is_negotiating()) {
            self.st.retry_at = Some(now + self.cfg.timers.retry);
        }
    }

    /// Drive timers: retransmissions, rekeying, liveness checks, initiating.
    pub fn poll(&mut self, now: Instant) {
        if self.ikes.is_empty() && self.st.retry_at.is_some_and(|t| now >= t) {
            self.st.retry_at = None;
            match exchange::initiate(&self.cfg, &mut self.st, now) {
                Ok(ike) => self.ikes.push(ike),
                Err(e) => {
                    self.st.fail(format!("cannot initiate: {e}"));
                    self.st.retry_at = Some(now + self.cfg.timers.retry);
                }
            }
        }
        // NAT keepalives (RFC 3948 §2.3): we always claim a NAT, and a NAT in front of
        // either side forgets an idle mapping.
        if !self.st.children.is_empty() && now.duration_since(self.st.keepalive_at) >= NAT_KEEPALIVE
        {
            self.st.keepalive_at = now;
            self.st.out.push(Transmit {
                dst: self.st.remote,
                bytes: vec![0xff],
            });
        }
        let due = child::poll_children(&mut self.st, now);
        let heard = child::note_esp_activity(&mut self.st);
        let current = self.current_index();
        if let Some(i) = current {
            for spi in due {
                if let Err(e) = child::queue_rekey(&mut self.ikes[i], &self.cfg, &mut self.st, spi)
                {
                    tracing::warn!("child SA rekey: {e}");
                }
            }
        }
        let mut dead = Vec::new();
        for (i, ike) in self.ikes.iter_mut().enumerate() {
            if heard {
                ike.last_heard = now;
            }
            if !exchange::poll_ike(ike, &self.cfg, &mut self.st, now, Some(i) == current) {
                dead.push(i);
            }
        }
        for i in dead.into_iter().rev() {
            let was_established = self.ikes[i].is_established();
            self.ikes.remove(i);
            if was_established || self.ikes.is_empty() {
                self.after_ike_loss(now, "the peer does not answer (dead peer detection)");
            }
        }
    }

    /// The IKE SA new requests go on: the newest established one.
    fn current_index(&self) -> Option<usize> {
        self.ikes
            .iter()
            .rposition(|s| s.is_established() && !s.superseded)
    }

    /// Start an orderly shutdown: delete the IKE SA (and with it the child SAs).
    pub fn close(&mut self, now: Instant) {
        if let Some(i) = self.current_index() {
            self.ikes[i].queue_delete_ike();
            self.ikes[i].poll_io(&self.cfg, &mut self.st, now);
        }
    }

    /// IKE SAs held (current, negotiating, or superseded and being deleted).
    pub fn ike_sa_count(&self) -> usize {
        self.ikes.len()
    }
}
