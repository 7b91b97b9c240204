//! One IKE SA: its SPIs, keys, and the request/response bookkeeping of RFC 7296 §2.1-2.2
//! (message IDs, a window of one, retransmission with exponential back-off, the
//! cached last response for retransmitted requests).

use super::keys::IkeKeys;
use super::{Config, Shared};
use crate::Error;
use crate::proto::consts::{FLAG_INITIATOR, FLAG_RESPONSE};
use crate::proto::crypto::{AeadKey, DhKey};
use crate::proto::message::{Header, Payload};
use crate::proto::proposal::{DhGroup, IkeSuite};
use crate::proto::sk;
use std::collections::VecDeque;
use std::time::Instant;

/// Where the IKE SA is in its life.
#[derive(Debug)]
pub(crate) enum Phase {
    /// We sent IKE_SA_INIT.
    InitSent {
        dh: Option<DhKey>,
        group: DhGroup,
        cookie: Option<Vec<u8>>,
    },
    /// We answered IKE_SA_INIT and wait for IKE_AUTH.
    ResponderInit,
    /// We sent IKE_AUTH.
    AuthSent,
    /// Authenticated.
    Established,
}

/// A request of ours, with what its response needs.
#[derive(Debug)]
pub(crate) enum Request {
    /// IKE_SA_INIT.
    Init,
    /// IKE_AUTH with the first child SA.
    Auth { spi_in: u32 },
    /// CREATE_CHILD_SA rekeying the child whose inbound SPI is `old_spi_in`.
    RekeyChild {
        old_spi_in: u32,
        spi_in: u32,
        nonce: Vec<u8>,
        dh: Option<DhKey>,
    },
    /// CREATE_CHILD_SA rekeying this IKE SA.
    RekeyIke {
        spi: u64,
        nonce: Vec<u8>,
        dh: Option<DhKey>,
    },
    /// INFORMATIONAL deleting child SAs (our inbound SPIs).
    DeleteChildren { spis: Vec<u32> },
    /// INFORMATIONAL deleting this IKE SA.
    DeleteIke,
    /// Empty INFORMATIONAL: liveness check.
    Dpd,
}

/// Our request in flight.
#[derive(Debug)]
pub(crate) struct Pending {
    pub id: u32,
    bytes: Vec<u8>,
    tries: u32,
    next_at: Instant,
    pub req: Request,
}

/// One IKE SA.
#[derive(Debug)]
pub(crate) struct IkeSa {
    pub spi_i: u64,
    pub spi_r: u64,
    /// We are the (original) initiator of this IKE SA.
    pub initiator: bool,
    pub phase: Phase,
    pub suite: Option<IkeSuite>,
    pub keys: Option<IkeKeys>,
    pub ni: Vec<u8>,
    pub nr: Vec<u8>,
    /// The IKE_SA_INIT request and response as sent (signed by AUTH).
    pub init_req: Vec<u8>,
    pub init_resp: Vec<u8>,
    next_id: u32,
    pub pending: Option<Pending>,
    queue: VecDeque<(u8, Vec<Payload>, Request)>,
    /// Next request id expected from the peer.
    pub peer_id: u32,
    last_response: Option<(u32, Vec<u8>)>,
    iv: u64,
    pub rekey_at: Option<Instant>,
    pub last_heard: Instant,
    /// Replaced by a rekeyed IKE SA; waits for deletion.
    pub superseded: bool,
    /// A rekey of this IKE SA is queued or in flight.
    pub rekeying: bool,
}

impl IkeSa {
    pub fn new(spi_i: u64, spi_r: u64, initiator: bool, phase: Phase, now: Instant) -> Self {
        Self {
            spi_i,
            spi_r,
            initiator,
            phase,
            suite: None,
            keys: None,
            ni: Vec::new(),
            nr: Vec::new(),
            init_req: Vec::new(),
            init_resp: Vec::new(),
            next_id: 0,
            pending: None,
            queue: VecDeque::new(),
            peer_id: 0,
            last_response: None,
            iv: 0,
            rekey_at: None,
            last_heard: now,
            superseded: false,
            rekeying: false,
        }
    }

    pub fn spis(&self) -> (u64, u64) {
        (self.spi_i, self.spi_r)
    }

    pub fn matches(&self, spi_i: u64, spi_r: u64) -> bool {
        spi_i == self.spi_i && (spi_r == self.spi_r || matches!(self.phase, Phase::InitSent { .. }))
    }

    pub fn is_responder_init(&self, spi_i: u64) -> bool {
        !self.initiator && spi_i == self.spi_i && matches!(self.phase, Phase::ResponderInit)
    }

    pub fn is_established(&self) -> bool {
        matches!(self.phase, Phase::Established)
    }

    pub fn is_negotiating(&self) -> bool {
        !self.is_established()
    }

    /// Key for what we send / what the peer sends.
    pub fn out_key(&self) -> Result<&AeadKey, Error> {
        let k = self.keys.as_ref().ok_or(Error::Malformed("no keys yet"))?;
        Ok(if self.initiator { &k.sk_ei } else { &k.sk_er })
    }
    pub fn in_key(&self) -> Result<&AeadKey, Error> {
        let k = self.keys.as_ref().ok_or(Error::Malformed("no keys yet"))?;
        Ok(if self.initiator { &k.sk_er } else { &k.sk_ei })
    }

    pub fn header(&self, exchange: u8, message_id: u32, response: bool) -> Header {
        let mut flags = 0;
        if self.initiator {
            flags |= FLAG_INITIATOR;
        }
        if response {
            flags |= FLAG_RESPONSE;
        }
        Header {
            spi_i: self.spi_i,
            spi_r: self.spi_r,
            next_payload: 0,
            exchange,
            flags,
            message_id,
            length: 0,
        }
    }

    /// Queue a request (sent when the window is free).
    pub fn request(&mut self, exchange: u8, payloads: Vec<Payload>, req: Request) {
        self.queue.push_back((exchange, payloads, req));
    }

    /// Send already-built IKE_SA_INIT bytes as request 0.
    pub fn send_init(&mut self, st: &mut Shared, bytes: Vec<u8>, cfg: &Config, now: Instant) {
        st.send(&bytes);
        self.pending = Some(Pending {
            id: 0,
            bytes,
            tries: 0,
            next_at: now + cfg.timers.retransmit_base,
            req: Request::Init,
        });
        self.next_id = 1;
    }

    /// Whether a request of this kind is queued or in flight.
    pub fn has_request(&self, f: impl Fn(&Request) -> bool) -> bool {
        self.pending.as_ref().is_some_and(|p| f(&p.req)) || self.queue.iter().any(|(_, _, r)| f(r))
    }

    /// Whether a request of this kind is in flight (sent, unanswered).
    pub fn has_sent(&self, f: impl Fn(&Request) -> bool) -> bool {
        self.pending.as_ref().is_some_and(|p| f(&p.req))
    }

    /// Drop queued (unsent) requests of this kind.
    pub fn drop_queued(&mut self, f: impl Fn(&Request) -> bool) {
        self.queue.retain(|(_, _, r)| !f(r));
    }

    /// Queue deleting this IKE SA.
    pub fn queue_delete_ike(&mut self) {
        if !self.has_request(|r| matches!(r, Request::DeleteIke)) {
            let d = crate::proto::message::Delete {
                protocol: crate::proto::consts::protocol::IKE,
                spis: Vec::new(),
            };
            self.request(
                crate::proto::consts::exchange::INFORMATIONAL,
                vec![Payload::Delete(d)],
                Request::DeleteIke,
            );
        }
    }

    fn send_next(&mut self, cfg: &Config, st: &mut Shared, now: Instant) {
        if self.pending.is_some() || self.keys.is_none() {
            return;
        }
        let Some((exchange, payloads, req)) = self.queue.pop_front() else {
            return;
        };
        let id = self.next_id;
        match self.seal(self.header(exchange, id, false), &payloads) {
            Ok(bytes) => {
                st.send(&bytes);
                self.next_id = self.next_id.wrapping_add(1);
                self.pending = Some(Pending {
                    id,
                    bytes,
                    tries: 0,
                    next_at: now + cfg.timers.retransmit_base,
                    req,
                });
            }
            Err(e) => tracing::warn!("IKE: cannot seal request: {e}"),
        }
    }

    pub fn seal(&mut self, header: Header, payloads: &[Payload]) -> Result<Vec<u8>, Error> {
        self.iv += 1;
        let iv = self.iv;
        sk::seal(header, payloads, self.out_key()?, iv)
    }

    /// Send (and remember) the response to request `id`.
    pub fn respond(
        &mut self,
        st: &mut Shared,
        exchange: u8,
        id: u32,
        payloads: &[Payload],
    ) -> Result<(), Error> {
        let bytes = self.seal(self.header(exchange, id, true), payloads)?;
        st.send(&bytes);
        self.last_response = Some((id, bytes));
        self.peer_id = id.wrapping_add(1);
        Ok(())
    }

    /// Remember an unencrypted response (IKE_SA_INIT).
    pub fn remember_response(&mut self, id: u32, bytes: Vec<u8>) {
        self.last_response = Some((id, bytes));
        self.peer_id = id.wrapping_add(1);
    }

    /// Resend the cached response if `id` is the request it answered.
    pub fn retransmit_response(&self, st: &mut Shared, id: u32) -> bool {
        match &self.last_response {
            Some((rid, bytes)) if *rid == id => {
                st.send(bytes);
                true
            }
            _ => false,
        }
    }

    /// Take the pending request if `id` answers it.
    pub fn take_pending(&mut self, id: u32) -> Option<Pending> {
        if self.pending.as_ref().is_some_and(|p| p.id == id) {
            self.pending.take()
        } else {
            None
        }
    }

    /// Put a request back in flight (an IKE_SA_INIT retried with a cookie or group).
    pub fn resend_init(&mut self, st: &mut Shared, bytes: Vec<u8>, cfg: &Config, now: Instant) {
        self.send_init(st, bytes, cfg, now);
    }

    /// Retransmit, give up, or send the next request. False: the peer is dead (or the
    /// negotiation timed out) and this IKE SA must go.
    pub fn poll_io(&mut self, cfg: &Config, st: &mut Shared, now: Instant) -> bool {
        if let Some(p) = &mut self.pending
            && now >= p.next_at
        {
            if p.tries >= cfg.timers.retransmit_tries {
                return false;
            }
            p.tries += 1;
            let backoff = cfg.timers.retransmit_base * (1u32 << p.tries.min(10));
            p.next_at = now + backoff;
            let b = p.bytes.clone();
            st.send(&b);
        }
        self.send_next(cfg, st, now);
        true
    }
}
