//! The four exchanges (RFC 7296 §1.2-1.5) from both sides: IKE_SA_INIT, IKE_AUTH,
//! CREATE_CHILD_SA (rekeying a child SA or the IKE SA, or a new child SA) and
//! INFORMATIONAL (deletes, liveness checks).

mod auth;
pub(super) mod common;
mod create_child;
mod init;

use auth::{auth_request, auth_response};
pub(crate) use common::Outcome;
pub(crate) use create_child::queue_rekey_ike;
use create_child::{create_child_request, rekey_ike_response};
use init::init_response;
pub(crate) use init::{initiate, respond_init};

use super::child;
use super::sa::{IkeSa, Phase, Request};
use super::{Config, Shared};
use crate::Error;
use crate::proto::consts::{exchange as ex, protocol};
use crate::proto::message::{self, Delete, Header, Payload};
use crate::proto::sk;
use std::net::SocketAddr;
use std::time::Instant;

/// Handle a message for an existing IKE SA.
pub(crate) fn handle(
    ike: &mut IkeSa,
    cfg: &Config,
    st: &mut Shared,
    msg: &[u8],
    h: Header,
    from: SocketAddr,
    now: Instant,
) -> Result<Outcome, Error> {
    if h.from_initiator() == ike.initiator {
        return Err(Error::Malformed("initiator flag does not match the IKE SA"));
    }
    if h.is_response() {
        if ike.pending.as_ref().is_none_or(|p| p.id != h.message_id) {
            return Err(Error::UnknownSpi(h.message_id));
        }
        if h.exchange == ex::IKE_SA_INIT {
            return init_response(ike, cfg, st, msg, now);
        }
    } else if h.message_id != ike.peer_id {
        if h.message_id.wrapping_add(1) == ike.peer_id {
            ike.retransmit_response(st, h.message_id);
            return Ok(Outcome::None);
        }
        return Err(Error::UnknownSpi(h.message_id));
    }
    let mut parsed = message::parse(msg)?;
    sk::open(msg, &mut parsed, ike.in_key()?)?;
    ike.last_heard = now;
    if from != st.remote {
        tracing::info!(old = %st.remote, new = %from, "IKE peer address changed; following it");
        st.moved_from = Some(st.remote);
        st.remote = from;
        st.changed();
    }
    let p = parsed.payloads;
    if h.is_response() {
        let Some(pending) = ike.take_pending(h.message_id) else {
            return Err(Error::UnknownSpi(h.message_id));
        };
        match pending.req {
            Request::Auth { spi_in } => auth_response(ike, cfg, st, &p, spi_in, now),
            Request::RekeyChild {
                old_spi_in,
                spi_in,
                nonce,
                dh,
            } => {
                child::rekey_response(ike, cfg, st, &p, old_spi_in, spi_in, &nonce, dh, now)?;
                Ok(Outcome::None)
            }
            Request::RekeyIke { spi, nonce, dh } => {
                rekey_ike_response(ike, cfg, st, &p, spi, &nonce, dh, now)
            }
            Request::DeleteIke => Ok(Outcome::Closed),
            Request::DeleteChildren { spis } => {
                child::deleted_by_us(st, &spis);
                Ok(Outcome::None)
            }
            Request::Dpd | Request::Init => Ok(Outcome::None),
        }
    } else {
        match h.exchange {
            ex::IKE_AUTH => auth_request(ike, cfg, st, &p, h.message_id, now),
            ex::CREATE_CHILD_SA => create_child_request(ike, cfg, st, &p, h.message_id, now),
            ex::INFORMATIONAL => informational_request(ike, st, &p, h.message_id, now),
            _ => Err(Error::Malformed("unknown exchange type")),
        }
    }
}

fn informational_request(
    ike: &mut IkeSa,
    st: &mut Shared,
    p: &[Payload],
    id: u32,
    now: Instant,
) -> Result<Outcome, Error> {
    let mut out = Vec::new();
    let mut deleted = false;
    for d in p.iter().filter_map(|x| match x {
        Payload::Delete(d) => Some(d),
        _ => None,
    }) {
        if d.protocol == protocol::IKE {
            deleted = true;
        } else if d.protocol == protocol::ESP {
            let ours = child::deleted_by_peer(st, &d.spis, now);
            if !ours.is_empty() {
                out.push(Payload::Delete(Delete {
                    protocol: protocol::ESP,
                    spis: ours,
                }));
            }
        }
    }
    if deleted {
        ike.respond(st, ex::INFORMATIONAL, id, &[])?;
        tracing::info!(peer = %st.remote, superseded = ike.superseded, "the peer deleted an IKE SA");
        return Ok(Outcome::Deleted);
    }
    ike.respond(st, ex::INFORMATIONAL, id, &out)?;
    Ok(Outcome::None)
}

/// Timers of one IKE SA: rekey, liveness check, retransmission. False: it is dead.
pub(crate) fn poll_ike(
    ike: &mut IkeSa,
    cfg: &Config,
    st: &mut Shared,
    now: Instant,
    current: bool,
) -> bool {
    if matches!(ike.phase, Phase::ResponderInit) && ike.pending.is_none() {
        // A half-open SA whose initiator never sent IKE_AUTH.
        let budget = cfg.timers.retransmit_base * (1u32 << cfg.timers.retransmit_tries.min(10));
        if now.duration_since(ike.last_heard) > budget {
            return false;
        }
    }
    if current && ike.is_established() {
        if !ike.rekeying
            && ike.rekey_at.is_some_and(|t| now >= t)
            && let Err(e) = queue_rekey_ike(ike, cfg)
        {
            tracing::warn!("IKE rekey: {e}");
        }
        if ike.pending.is_none()
            && !ike.has_request(|_| true)
            && now.duration_since(ike.last_heard) >= cfg.timers.dpd
        {
            ike.request(ex::INFORMATIONAL, Vec::new(), Request::Dpd);
        }
    }
    ike.poll_io(cfg, st, now)
}
