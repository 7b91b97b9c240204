//! IKE_AUTH (RFC 7296 §1.2) from both sides: PSK authentication and the first child SA.

use super::super::child;
use super::super::keys;
use super::super::sa::{IkeSa, Phase};
use super::super::{Config, Shared, Status};
use crate::Error;
use crate::proto::consts::{AUTH_SHARED_KEY_MIC, exchange as ex, notify as nt};
use crate::proto::message::{self, Notify, Payload, PayloadsExt};
use std::time::Instant;

use super::common::{Outcome, jitter};

fn id_of(p: &[Payload], initiator: bool) -> Option<&message::Identity> {
    p.iter().find_map(|x| match x {
        Payload::IdI(i) if initiator => Some(i),
        Payload::IdR(i) if !initiator => Some(i),
        _ => None,
    })
}

fn auth_of(p: &[Payload]) -> Option<(u8, &[u8])> {
    p.iter().find_map(|x| match x {
        Payload::Auth { method, data } => Some((*method, data.as_slice())),
        _ => None,
    })
}

pub(super) fn auth_request(
    ike: &mut IkeSa,
    cfg: &Config,
    st: &mut Shared,
    p: &[Payload],
    id: u32,
    now: Instant,
) -> Result<Outcome, Error> {
    if !matches!(ike.phase, Phase::ResponderInit) {
        return Err(Error::Malformed("IKE_AUTH request in the wrong state"));
    }
    let keys = ike.keys.as_ref().ok_or(Error::Malformed("keys"))?;
    let idi = id_of(p, true).ok_or(Error::Malformed("IKE_AUTH without IDi"))?;
    let idr_ok = id_of(p, false).is_none_or(|r| *r == cfg.local_id);
    let auth_ok = auth_of(p).is_some_and(|(m, data)| {
        m == AUTH_SHARED_KEY_MIC
            && keys::verify_psk_auth(
                &cfg.psk,
                &ike.init_req,
                &ike.nr,
                &keys.sk_pi,
                &idi.body(),
                data,
            )
    });
    if *idi != cfg.remote_id || !idr_ok || !auth_ok {
        let why = if *idi != cfg.remote_id {
            format!("the peer identifies as {idi}, expected {}", cfg.remote_id)
        } else if !idr_ok {
            format!(
                "the peer expects another identity than ours ({})",
                cfg.local_id
            )
        } else {
            "the peer's AUTH does not verify: preshared key mismatch".to_string()
        };
        ike.respond(
            st,
            ex::IKE_AUTH,
            id,
            &[Payload::Notify(Notify::new(
                nt::AUTHENTICATION_FAILED,
                Vec::new(),
            ))],
        )?;
        st.fail(format!("authentication of the peer failed: {why}"));
        return Ok(Outcome::Failed);
    }
    let auth = keys::psk_auth(
        &cfg.psk,
        &ike.init_resp,
        &ike.ni,
        &keys.sk_pr,
        &cfg.local_id.body(),
    );
    let mut out = vec![
        Payload::IdR(cfg.local_id.clone()),
        Payload::Auth {
            method: AUTH_SHARED_KEY_MIC,
            data: auth.to_vec(),
        },
    ];
    let (ni, nr) = (ike.ni.clone(), ike.nr.clone());
    match child::respond_child(ike, cfg, st, p, None, &ni, &nr, now) {
        Ok(payloads) => out.extend(payloads),
        Err(n) => out.push(Payload::Notify(n)),
    }
    ike.respond(st, ex::IKE_AUTH, id, &out)?;
    established(ike, cfg, st, now);
    Ok(Outcome::Established)
}

fn established(ike: &mut IkeSa, cfg: &Config, st: &mut Shared, now: Instant) {
    ike.phase = Phase::Established;
    ike.rekey_at = Some(now + jitter(cfg.timers.ike_rekey));
    if !st.children.is_empty() {
        st.status = Status::Established;
    }
    tracing::info!(peer = %st.remote, id = %cfg.remote_id, "IKE SA established");
}

pub(super) fn auth_response(
    ike: &mut IkeSa,
    cfg: &Config,
    st: &mut Shared,
    p: &[Payload],
    spi_in: u32,
    now: Instant,
) -> Result<Outcome, Error> {
    if p.notify(nt::AUTHENTICATION_FAILED).is_some() {
        st.fail(
            "the peer refused our authentication: preshared key mismatch or wrong identity".into(),
        );
        return Ok(Outcome::Failed);
    }
    let keys = ike.keys.as_ref().ok_or(Error::Malformed("keys"))?;
    let idr = id_of(p, false).ok_or(Error::Malformed("IKE_AUTH response without IDr"))?;
    let auth_ok = auth_of(p).is_some_and(|(m, data)| {
        m == AUTH_SHARED_KEY_MIC
            && keys::verify_psk_auth(
                &cfg.psk,
                &ike.init_resp,
                &ike.ni,
                &keys.sk_pr,
                &idr.body(),
                data,
            )
    });
    if *idr != cfg.remote_id || !auth_ok {
        let why = if *idr != cfg.remote_id {
            format!("the peer identifies as {idr}, expected {}", cfg.remote_id)
        } else {
            "the peer's AUTH does not verify: preshared key mismatch".to_string()
        };
        st.fail(format!("authentication of the peer failed: {why}"));
        return Ok(Outcome::Failed);
    }
    let (ni, nr) = (ike.ni.clone(), ike.nr.clone());
    let child = child::accept_child(ike, cfg, p, None, spi_in, &ni, &nr, now);
    established(ike, cfg, st, now);
    match child {
        Ok(c) => {
            child::install(st, c, None, now);
        }
        Err(e) => {
            st.fail(format!("IKE SA up but no child SA: {e}"));
            ike.queue_delete_ike();
        }
    }
    Ok(Outcome::Established)
}
