//! CREATE_CHILD_SA (RFC 7296 §1.3): rekeying a child SA or the IKE SA.

use super::super::child;
use super::super::sa::{IkeSa, Phase, Request};
use super::super::{Config, Shared};
use crate::Error;
use crate::proto::consts::{exchange as ex, notify as nt, protocol};
use crate::proto::crypto::{self, DhKey};
use crate::proto::message::{Notify, Payload, PayloadsExt};
use crate::proto::proposal::{self};
use std::time::Instant;

use super::common::{Outcome, check_nonce, jitter, nonce};

pub(super) fn create_child_request(
    ike: &mut IkeSa,
    cfg: &Config,
    st: &mut Shared,
    p: &[Payload],
    id: u32,
    now: Instant,
) -> Result<Outcome, Error> {
    if !ike.is_established() {
        return Err(Error::Malformed("CREATE_CHILD_SA before IKE_AUTH"));
    }
    let is_ike = p
        .sa()
        .is_some_and(|s| s.iter().any(|x| x.protocol == protocol::IKE));
    if is_ike {
        return rekey_ike_request(ike, cfg, st, p, id, now);
    }
    let ni = check_nonce(p.nonce())?;
    let nr = nonce()?;
    let rekeyed = p.notify(nt::REKEY_SA).map(|n| n.spi.clone());
    let old_out = match rekeyed {
        Some(spi) => {
            let spi = <[u8; 4]>::try_from(spi.as_slice())
                .map(u32::from_be_bytes)
                .map_err(|_| Error::Malformed("REKEY_SA SPI"))?;
            if !st.children.iter().any(|c| c.outbound.spi == spi) {
                let n = Notify {
                    protocol: protocol::ESP,
                    spi: spi.to_be_bytes().to_vec(),
                    ty: nt::CHILD_SA_NOT_FOUND,
                    data: Vec::new(),
                };
                ike.respond(st, ex::CREATE_CHILD_SA, id, &[Payload::Notify(n)])?;
                return Ok(Outcome::None);
            }
            if let Some(n) = child::rekey_collision(ike, st, spi) {
                ike.respond(st, ex::CREATE_CHILD_SA, id, &[Payload::Notify(n)])?;
                return Ok(Outcome::None);
            }
            Some(spi)
        }
        None => None,
    };
    match child::respond_child(ike, cfg, st, p, old_out, &ni, &nr, now) {
        Ok(mut payloads) => {
            payloads.insert(1, Payload::Nonce(nr));
            ike.respond(st, ex::CREATE_CHILD_SA, id, &payloads)?;
        }
        Err(n) => ike.respond(st, ex::CREATE_CHILD_SA, id, &[Payload::Notify(n)])?,
    }
    Ok(Outcome::None)
}

fn rekey_ike_request(
    ike: &mut IkeSa,
    cfg: &Config,
    st: &mut Shared,
    p: &[Payload],
    id: u32,
    now: Instant,
) -> Result<Outcome, Error> {
    let refuse = |ike: &mut IkeSa, st: &mut Shared, n: Notify| {
        ike.respond(st, ex::CREATE_CHILD_SA, id, &[Payload::Notify(n)])
    };
    // Both sides rekeying at once: the original initiator's rekey wins (see
    // `child::rekey_collision`); a rekey of ours not yet sent is dropped.
    if ike.rekeying {
        if ike.initiator && ike.has_sent(|r| matches!(r, Request::RekeyIke { .. })) {
            refuse(ike, st, Notify::new(nt::TEMPORARY_FAILURE, Vec::new()))?;
            return Ok(Outcome::None);
        }
        ike.drop_queued(|r| matches!(r, Request::RekeyIke { .. }));
    }
    let theirs = p.sa().ok_or(Error::Malformed("no SA"))?;
    let (suite, mut chosen) = match proposal::choose_ike(&cfg.ike_suites, theirs) {
        Ok(c) => c,
        Err(_) => {
            refuse(ike, st, Notify::new(nt::NO_PROPOSAL_CHOSEN, Vec::new()))?;
            return Ok(Outcome::None);
        }
    };
    let (group, ke) = p.ke().ok_or(Error::Malformed("IKE rekey without KE"))?;
    if group != suite.dh.id() {
        refuse(
            ike,
            st,
            Notify::new(nt::INVALID_KE_PAYLOAD, suite.dh.id().to_be_bytes().to_vec()),
        )?;
        return Ok(Outcome::None);
    }
    let spi_i = <[u8; 8]>::try_from(chosen.spi.as_slice())
        .map(u64::from_be_bytes)
        .map_err(|_| Error::Malformed("IKE rekey SPI"))?;
    let ni = check_nonce(p.nonce())?;
    let nr = nonce()?;
    let dh = DhKey::generate(suite.dh)?;
    let public = dh.public().to_vec();
    let shared = dh.agree(ke)?;
    let spi_r = crypto::random_ike_spi()?;
    let keys = ike.keys.as_ref().ok_or(Error::Malformed("keys"))?;
    let new_keys = keys.rekeyed(&suite, &shared, &ni, &nr, spi_i, spi_r)?;
    chosen.spi = spi_r.to_be_bytes().to_vec();
    let out = [
        Payload::Sa(vec![chosen]),
        Payload::Nonce(nr.clone()),
        Payload::Ke {
            group: suite.dh.id(),
            data: public,
        },
    ];
    ike.respond(st, ex::CREATE_CHILD_SA, id, &out)?;
    let mut new = IkeSa::new(spi_i, spi_r, false, Phase::Established, now);
    new.keys = Some(new_keys);
    new.suite = Some(suite);
    new.ni = ni;
    new.nr = nr;
    new.rekey_at = Some(now + jitter(cfg.timers.ike_rekey));
    tracing::info!(peer = %st.remote, "IKE SA rekeyed by the peer");
    Ok(Outcome::Rekeyed(Box::new(new)))
}

#[allow(clippy::too_many_arguments)]
pub(super) fn rekey_ike_response(
    ike: &mut IkeSa,
    cfg: &Config,
    st: &mut Shared,
    p: &[Payload],
    spi_i: u64,
    ni: &[u8],
    dh: Option<DhKey>,
    now: Instant,
) -> Result<Outcome, Error> {
    ike.rekeying = false;
    if let Some(n) = p.error_notify() {
        tracing::warn!(peer = %st.remote, notify = n.ty, "the peer refused to rekey the IKE SA; retrying later");
        ike.rekey_at = Some(now + cfg.timers.retry);
        return Ok(Outcome::None);
    }
    let theirs = p.sa().ok_or(Error::Malformed("no SA"))?;
    let (suite, chosen) = proposal::accepted_ike(&cfg.ike_suites, theirs)?;
    let spi_r = <[u8; 8]>::try_from(chosen.spi.as_slice())
        .map(u64::from_be_bytes)
        .map_err(|_| Error::Malformed("IKE rekey SPI"))?;
    let (group, ke) = p
        .ke()
        .ok_or(Error::Malformed("IKE rekey response without KE"))?;
    let dh = dh.ok_or(Error::Malformed("IKE rekey state"))?;
    if group != dh.group.id() || dh.group != suite.dh {
        return Err(Error::Malformed("IKE rekey response KE group"));
    }
    let nr = check_nonce(p.nonce())?;
    let shared = dh.agree(ke)?;
    let keys = ike.keys.as_ref().ok_or(Error::Malformed("keys"))?;
    let new_keys = keys.rekeyed(&suite, &shared, ni, &nr, spi_i, spi_r)?;
    let mut new = IkeSa::new(spi_i, spi_r, true, Phase::Established, now);
    new.keys = Some(new_keys);
    new.suite = Some(suite);
    new.ni = ni.to_vec();
    new.nr = nr;
    new.rekey_at = Some(now + jitter(cfg.timers.ike_rekey));
    ike.queue_delete_ike();
    tracing::info!(peer = %st.remote, "IKE SA rekeyed");
    Ok(Outcome::Rekeyed(Box::new(new)))
}

/// Queue a rekey of this IKE SA.
pub(crate) fn queue_rekey_ike(ike: &mut IkeSa, cfg: &Config) -> Result<(), Error> {
    let spi = crypto::random_ike_spi()?;
    let ni = nonce()?;
    let dh = DhKey::generate(ike.suite.map_or(cfg.ike_suites[0].dh, |s| s.dh))?;
    let payloads = vec![
        Payload::Sa(vec![proposal::ike_proposal(
            &cfg.ike_suites,
            spi.to_be_bytes().to_vec(),
        )]),
        Payload::Nonce(ni.clone()),
        Payload::Ke {
            group: dh.group.id(),
            data: dh.public().to_vec(),
        },
    ];
    ike.rekeying = true;
    ike.request(
        ex::CREATE_CHILD_SA,
        payloads,
        Request::RekeyIke {
            spi,
            nonce: ni,
            dh: Some(dh),
        },
    );
    Ok(())
}
