//! Child SAs: negotiating one (in IKE_AUTH or CREATE_CHILD_SA, from either side),
//! installing it, rekeying it before it expires while the old one keeps decrypting,
//! and deleting it.

use super::exchange::common::jitter;
use super::sa::{IkeSa, Request};
use super::{ChildSa, Config, Shared, Status};
use crate::Error;
use crate::proto::consts::{exchange as ex, notify as nt, protocol};
use crate::proto::crypto::{self, DhKey};
use crate::proto::message::{Delete, Notify, Payload, PayloadsExt};
use crate::proto::proposal;
use crate::proto::ts::{self, TrafficSelector};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How long an old child SA may outlive its replacement if the peer never deletes it.
const OLD_SA_GRACE: Duration = Duration::from_secs(60);

/// A child SA negotiated but not yet installed.
pub(crate) type NewChild = ChildSa;

fn notify(ty: u16) -> Notify {
    Notify::new(ty, Vec::new())
}

/// Responder: choose algorithms and selectors for a child SA the peer asks for, derive
/// its keys and install it. `old_out` is the outbound SPI of the SA it rekeys. Returns
/// the payloads of the answer (SA, [KE], TSi, TSr) or the error notify to send.
#[allow(clippy::too_many_arguments)]
pub(crate) fn respond_child(
    ike: &IkeSa,
    cfg: &Config,
    st: &mut Shared,
    p: &[Payload],
    old_out: Option<u32>,
    ni: &[u8],
    nr: &[u8],
    now: Instant,
) -> Result<Vec<Payload>, Notify> {
    let sa = p.sa().ok_or_else(|| notify(nt::INVALID_SYNTAX))?;
    let ke = p.ke();
    let (suite, mut chosen) =
        proposal::choose_esp(&cfg.esp_suites, sa, ke.is_some()).map_err(|e| {
            tracing::warn!(peer = %st.remote, "child SA: {e}");
            notify(nt::NO_PROPOSAL_CHOSEN)
        })?;
    let (tsi, tsr) = p.ts().ok_or_else(|| notify(nt::INVALID_SYNTAX))?;
    let remote_ts = ts::narrow(tsi, &cfg.remote_ts);
    let local_ts = ts::narrow(tsr, &cfg.local_ts);
    if remote_ts.is_empty() || local_ts.is_empty() {
        tracing::warn!(peer = %st.remote, "child SA: {}", Error::TsUnacceptable);
        return Err(notify(nt::TS_UNACCEPTABLE));
    }
    let mut out = Vec::new();
    let shared = match (suite.dh, ke) {
        (Some(g), Some((group, data))) => {
            if group != g.id() {
                return Err(Notify::new(
                    nt::INVALID_KE_PAYLOAD,
                    g.id().to_be_bytes().to_vec(),
                ));
            }
            let dh = DhKey::generate(g).map_err(|_| notify(nt::TEMPORARY_FAILURE))?;
            out.push(Payload::Ke {
                group,
                data: dh.public().to_vec(),
            });
            Some(dh.agree(data).map_err(|_| notify(nt::INVALID_SYNTAX))?)
        }
        _ => None,
    };
    let spi_out = u32::from_be_bytes(
        chosen.spi[..]
            .try_into()
            .map_err(|_| notify(nt::INVALID_SYNTAX))?,
    );
    let spi_in = crypto::random_esp_spi().map_err(|_| notify(nt::TEMPORARY_FAILURE))?;
    chosen.spi = spi_in.to_be_bytes().to_vec();
    let keys = ike
        .keys
        .as_ref()
        .ok_or_else(|| notify(nt::TEMPORARY_FAILURE))?;
    let (inbound, outbound) = keys
        .child(&suite, shared.as_deref(), ni, nr, false, spi_in, spi_out)
        .map_err(|_| notify(nt::TEMPORARY_FAILURE))?;
    let replaces = old_out.and_then(|o| {
        st.children
            .iter()
            .find(|c| c.outbound.spi == o)
            .map(|c| c.inbound.spi)
    });
    let child = ChildSa {
        inbound: Arc::new(inbound),
        outbound: Arc::new(outbound),
        local_ts: local_ts.clone(),
        remote_ts: remote_ts.clone(),
        suite,
        // Rekeyed by the peer: send on the new SA once the peer uses it (or deletes the
        // old one), so nothing is sent before the peer has installed it.
        use_outbound: replaces.is_none(),
        created: now,
        rekey_at: now + jitter(cfg.timers.child_rekey),
        rekeyed: false,
        expire_at: None,
        seen_packets: 0,
    };
    install(st, child, replaces, now);
    let mut payloads = vec![Payload::Sa(vec![chosen])];
    payloads.extend(out);
    payloads.push(Payload::TsI(remote_ts));
    payloads.push(Payload::TsR(local_ts));
    Ok(payloads)
}

/// Initiator: the child SA from the responder's answer.
#[allow(clippy::too_many_arguments)]
pub(crate) fn accept_child(
    ike: &IkeSa,
    cfg: &Config,
    p: &[Payload],
    dh: Option<DhKey>,
    spi_in: u32,
    ni: &[u8],
    nr: &[u8],
    now: Instant,
) -> Result<NewChild, Error> {
    if let Some(n) = p.error_notify() {
        return Err(Error::PeerRefused(match n.ty {
            nt::NO_PROPOSAL_CHOSEN => "no common ESP proposal".to_string(),
            nt::TS_UNACCEPTABLE => {
                "our subnets do not match the peer's (TS_UNACCEPTABLE)".to_string()
            }
            t => format!("child SA refused with notify {t}"),
        }));
    }
    let sa = p.sa().ok_or(Error::Malformed("no SA in child SA answer"))?;
    let (suite, spi_out) = proposal::accepted_esp(&cfg.esp_suites, sa, dh.is_some())?;
    let shared = match (dh, suite.dh) {
        (Some(dh), Some(_)) => {
            let (group, data) = p.ke().ok_or(Error::Malformed("no KE in child SA answer"))?;
            if group != dh.group.id() {
                return Err(Error::Malformed("child SA KE group"));
            }
            Some(dh.agree(data)?)
        }
        _ => None,
    };
    let (tsi, tsr) = p.ts().ok_or(Error::Malformed("no TS in child SA answer"))?;
    let inside = |got: &[TrafficSelector], ours: &[TrafficSelector]| {
        !got.is_empty() && got.iter().all(|t| ours.iter().any(|o| t.within(o)))
    };
    if !inside(tsi, &cfg.local_ts) || !inside(tsr, &cfg.remote_ts) {
        return Err(Error::TsUnacceptable);
    }
    let keys = ike.keys.as_ref().ok_or(Error::Malformed("keys"))?;
    let (inbound, outbound) =
        keys.child(&suite, shared.as_deref(), ni, nr, true, spi_in, spi_out)?;
    Ok(ChildSa {
        inbound: Arc::new(inbound),
        outbound: Arc::new(outbound),
        local_ts: tsi.to_vec(),
        remote_ts: tsr.to_vec(),
        suite,
        use_outbound: true,
        created: now,
        rekey_at: now + jitter(cfg.timers.child_rekey),
        rekeyed: false,
        expire_at: None,
        seen_packets: 0,
    })
}

/// Add a child SA; the one it replaces (by inbound SPI) is marked rekeyed and given a
/// grace period.
pub(crate) fn install(st: &mut Shared, child: ChildSa, replaces: Option<u32>, now: Instant) {
    if let Some(old) = replaces.and_then(|s| st.children.iter_mut().find(|c| c.inbound.spi == s)) {
        st.counters.child_rekeys += 1;
        old.rekeyed = true;
        old.expire_at = Some(now + OLD_SA_GRACE);
    }
    tracing::info!(
        peer = %st.remote,
        spi_in = format_args!("{:#010x}", child.inbound.spi),
        spi_out = format_args!("{:#010x}", child.outbound.spi),
        suite = %child.suite,
        local = %list(&child.local_ts),
        remote = %list(&child.remote_ts),
        "child SA installed"
    );
    st.children.push(child);
    st.status = Status::Established;
    st.changed();
}

fn list(v: &[TrafficSelector]) -> String {
    v.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Queue a CREATE_CHILD_SA rekeying the child with inbound SPI `old_in`.
pub(crate) fn queue_rekey(
    ike: &mut IkeSa,
    cfg: &Config,
    st: &mut Shared,
    old_in: u32,
) -> Result<(), Error> {
    let Some(old) = st.children.iter_mut().find(|c| c.inbound.spi == old_in) else {
        return Ok(());
    };
    let spi_in = crypto::random_esp_spi()?;
    let ni = crypto::random_bytes(32)?;
    let dh = match cfg.esp_suites[0].dh {
        Some(g) => Some(DhKey::generate(g)?),
        None => None,
    };
    let mut payloads = vec![
        Payload::Notify(Notify {
            protocol: protocol::ESP,
            spi: old_in.to_be_bytes().to_vec(),
            ty: nt::REKEY_SA,
            data: Vec::new(),
        }),
        Payload::Sa(proposal::esp_proposals(
            &cfg.esp_suites,
            spi_in,
            dh.is_some(),
        )),
        Payload::Nonce(ni.clone()),
    ];
    if let Some(dh) = &dh {
        payloads.push(Payload::Ke {
            group: dh.group.id(),
            data: dh.public().to_vec(),
        });
    }
    payloads.push(Payload::TsI(old.local_ts.clone()));
    payloads.push(Payload::TsR(old.remote_ts.clone()));
    old.rekeyed = true;
    ike.request(
        ex::CREATE_CHILD_SA,
        payloads,
        Request::RekeyChild {
            old_spi_in: old_in,
            spi_in,
            nonce: ni,
            dh,
        },
    );
    Ok(())
}

/// The peer asks to rekey the child SA whose outbound SPI is `spi_out`, which we may be
/// rekeying ourselves. Rather than RFC 7296 §2.8.1's nonce comparison (which leaves a
/// redundant SA to delete), the original initiator of the IKE SA wins: it refuses the
/// peer's rekey with TEMPORARY_FAILURE; the other side drops or abandons its own.
/// Returns the notify to refuse with, if any.
pub(crate) fn rekey_collision(ike: &mut IkeSa, st: &Shared, spi_out: u32) -> Option<Notify> {
    let old_in = st
        .children
        .iter()
        .find(|c| c.outbound.spi == spi_out)?
        .inbound
        .spi;
    let ours =
        |r: &Request| matches!(r, Request::RekeyChild { old_spi_in, .. } if *old_spi_in == old_in);
    if ike.initiator && ike.has_sent(ours) {
        return Some(notify(nt::TEMPORARY_FAILURE));
    }
    ike.drop_queued(ours);
    None
}

/// Initiator: the answer to our child rekey.
#[allow(clippy::too_many_arguments)]
pub(crate) fn rekey_response(
    ike: &mut IkeSa,
    cfg: &Config,
    st: &mut Shared,
    p: &[Payload],
    old_in: u32,
    spi_in: u32,
    ni: &[u8],
    dh: Option<DhKey>,
    now: Instant,
) -> Result<(), Error> {
    let nr = p.nonce().map(<[u8]>::to_vec);
    let child = match nr {
        Some(nr) if p.error_notify().is_none() => {
            accept_child(ike, cfg, p, dh, spi_in, ni, &nr, now)
        }
        _ => accept_child(ike, cfg, p, None, spi_in, ni, &[], now),
    };
    match child {
        Ok(c) => {
            install(st, c, Some(old_in), now);
            ike.request(
                ex::INFORMATIONAL,
                vec![Payload::Delete(Delete {
                    protocol: protocol::ESP,
                    spis: vec![old_in],
                })],
                Request::DeleteChildren { spis: vec![old_in] },
            );
            Ok(())
        }
        Err(e) => {
            tracing::warn!(peer = %st.remote, "child SA rekey failed: {e}; retrying later");
            // Unless the peer's own rekey replaced it meanwhile (its expiry is set).
            if let Some(old) = st
                .children
                .iter_mut()
                .find(|c| c.inbound.spi == old_in && c.expire_at.is_none())
            {
                old.rekeyed = false;
                old.rekey_at = now + cfg.timers.retry;
            }
            Ok(())
        }
    }
}

/// The peer deleted child SAs (their inbound = our outbound SPIs): drop them, and
/// return our inbound SPIs of those SAs for the answer.
pub(crate) fn deleted_by_peer(st: &mut Shared, spis: &[u32], _now: Instant) -> Vec<u32> {
    let mut ours = Vec::new();
    st.children.retain(|c| {
        let gone = spis.contains(&c.outbound.spi);
        if gone {
            ours.push(c.inbound.spi);
        }
        !gone
    });
    if !ours.is_empty() {
        ensure_outbound(st);
        st.changed();
    }
    ours
}

/// The peer confirmed deleting child SAs we asked to delete (our inbound SPIs).
pub(crate) fn deleted_by_us(st: &mut Shared, spis: &[u32]) {
    let before = st.children.len();
    st.children.retain(|c| !spis.contains(&c.inbound.spi));
    if st.children.len() != before {
        ensure_outbound(st);
        st.changed();
    }
}

fn ensure_outbound(st: &mut Shared) {
    if !st.children.iter().any(|c| c.use_outbound)
        && let Some(c) = st.children.last_mut()
    {
        c.use_outbound = true;
    }
    if st.children.is_empty() {
        st.status = super::Status::Connecting;
    }
}

/// Child SA timers: expire old SAs, switch outbound to a new SA the peer uses, and
/// return the inbound SPIs of SAs due for rekeying.
pub(crate) fn poll_children(st: &mut Shared, now: Instant) -> Vec<u32> {
    let before = st.children.len();
    st.children.retain(|c| c.expire_at.is_none_or(|t| now < t));
    let mut changed = st.children.len() != before;
    let mut due = Vec::new();
    for c in &mut st.children {
        if !c.use_outbound && c.inbound.counters.packets.load(Ordering::Relaxed) > 0 {
            c.use_outbound = true;
            changed = true;
        }
        if !c.rekeyed && (now >= c.rekey_at || c.outbound.needs_rekey()) {
            due.push(c.inbound.spi);
        }
    }
    if changed {
        ensure_outbound(st);
        st.changed();
    }
    due
}

/// Whether any child SA received packets since the last call (the peer is alive).
pub(crate) fn note_esp_activity(st: &mut Shared) -> bool {
    let mut heard = false;
    for c in &mut st.children {
        let n = c.inbound.counters.packets.load(Ordering::Relaxed);
        if n > c.seen_packets {
            c.seen_packets = n;
            heard = true;
        }
    }
    heard
}

impl ChildSa {
    /// Age of this SA.
    pub fn age(&self, now: Instant) -> Duration {
        now.duration_since(self.created)
    }
}
