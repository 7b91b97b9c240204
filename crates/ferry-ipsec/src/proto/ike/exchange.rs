//! The four exchanges (RFC 7296 §1.2-1.5) from both sides: IKE_SA_INIT, IKE_AUTH,
//! CREATE_CHILD_SA (rekeying a child SA or the IKE SA, or a new child SA) and
//! INFORMATIONAL (deletes, liveness checks).

use super::child;
use super::keys::{self, IkeKeys};
use super::sa::{IkeSa, Phase, Request};
use super::{Config, Shared, Status};
use crate::Error;
use crate::proto::consts::{AUTH_SHARED_KEY_MIC, exchange as ex, notify as nt, protocol};
use crate::proto::crypto::{self, DhKey};
use crate::proto::message::{self, Delete, Header, Notify, Payload, PayloadsExt};
use crate::proto::proposal::{self, DhGroup};
use crate::proto::sk;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Nonce length we send (RFC 7296: at least half the PRF key size, 16..=256 bytes).
const NONCE_LEN: usize = 32;

/// What handling a message did to the IKE SA.
#[derive(Debug)]
pub(crate) enum Outcome {
    None,
    /// IKE_AUTH completed: this IKE SA is up (and replaces older ones).
    Established,
    /// The IKE SA was rekeyed: here is its successor.
    Rekeyed(Box<IkeSa>),
    /// The peer deleted the IKE SA.
    Deleted,
    /// We deleted the IKE SA (rekeyed, or no child SA could be made).
    Closed,
    /// The negotiation failed; the SA goes (the status says why).
    Failed,
}

/// `d` minus up to a tenth, so two peers with equal lifetimes rarely rekey at once.
pub(crate) fn jitter(d: Duration) -> Duration {
    let r = crypto::random_bytes(2).map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
    d - d / 10 * u32::from(r) / u32::from(u16::MAX)
}

fn nonce() -> Result<Vec<u8>, Error> {
    crypto::random_bytes(NONCE_LEN)
}

fn check_nonce(n: Option<&[u8]>) -> Result<Vec<u8>, Error> {
    match n {
        Some(n) if (16..=256).contains(&n.len()) => Ok(n.to_vec()),
        _ => Err(Error::Malformed("missing or bad Nonce payload")),
    }
}

fn nat_notifies(
    cfg: &Config,
    spi_i: u64,
    spi_r: u64,
    dst: SocketAddr,
) -> Result<[Payload; 2], Error> {
    // With forced encapsulation the source hash is random, so the peer sees a NAT.
    let src = if cfg.force_encap {
        crypto::random_bytes(20)?
    } else {
        crypto::nat_hash(spi_i, spi_r, cfg.local_addr)
    };
    Ok([
        Payload::Notify(Notify::new(nt::NAT_DETECTION_SOURCE_IP, src)),
        Payload::Notify(Notify::new(
            nt::NAT_DETECTION_DESTINATION_IP,
            crypto::nat_hash(spi_i, spi_r, dst),
        )),
    ])
}

/// Log what the peer's NAT detection notifies say (we always encapsulate anyway).
fn note_nat(payloads: &[Payload], cfg: &Config, spi_i: u64, spi_r: u64, from: SocketAddr) {
    if let Some(d) = payloads.notify(nt::NAT_DETECTION_DESTINATION_IP)
        && d.data != crypto::nat_hash(spi_i, spi_r, cfg.local_addr)
    {
        tracing::debug!(peer = %from, "NAT detected in front of us");
    }
    if let Some(s) = payloads.notify(nt::NAT_DETECTION_SOURCE_IP)
        && s.data != crypto::nat_hash(spi_i, spi_r, from)
    {
        tracing::debug!(peer = %from, "NAT detected in front of the peer");
    }
}

fn init_request(
    cfg: &Config,
    ike: &IkeSa,
    dh: &DhKey,
    cookie: Option<&[u8]>,
    dst: SocketAddr,
) -> Result<Vec<u8>, Error> {
    let mut p = Vec::new();
    if let Some(c) = cookie {
        p.push(Payload::Notify(Notify::new(nt::COOKIE, c.to_vec())));
    }
    p.push(Payload::Sa(vec![proposal::ike_proposal(
        &cfg.ike_suites,
        Vec::new(),
    )]));
    p.push(Payload::Ke {
        group: dh.group.id(),
        data: dh.public().to_vec(),
    });
    p.push(Payload::Nonce(ike.ni.clone()));
    p.extend(nat_notifies(cfg, ike.spi_i, 0, dst)?);
    Ok(message::build_plain(
        ike.header(ex::IKE_SA_INIT, 0, false),
        &p,
    ))
}

/// Start a new IKE SA as initiator.
pub(crate) fn initiate(cfg: &Config, st: &mut Shared, now: Instant) -> Result<IkeSa, Error> {
    let group = cfg.ike_suites[0].dh;
    let dh = DhKey::generate(group)?;
    let mut ike = IkeSa::new(
        crypto::random_ike_spi()?,
        0,
        true,
        Phase::ResponderInit,
        now,
    );
    ike.ni = nonce()?;
    let bytes = init_request(cfg, &ike, &dh, None, st.remote)?;
    ike.init_req = bytes.clone();
    ike.phase = Phase::InitSent {
        dh: Some(dh),
        group,
        cookie: None,
    };
    ike.send_init(st, bytes, cfg, now);
    st.status = Status::Connecting;
    tracing::debug!(peer = %st.remote, "IKE_SA_INIT sent");
    Ok(ike)
}

/// Answer an IKE_SA_INIT request: a new responder IKE SA.
pub(crate) fn respond_init(
    cfg: &Config,
    st: &mut Shared,
    msg: &[u8],
    now: Instant,
) -> Result<IkeSa, Error> {
    let parsed = message::parse(msg)?;
    let h = parsed.header;
    let p = &parsed.payloads;
    let refuse = |st: &mut Shared, n: Notify| {
        let mut rh = h;
        rh.flags = crate::proto::consts::FLAG_RESPONSE;
        st.send(&message::build_plain(rh, &[Payload::Notify(n)]));
    };
    let theirs = p.sa().ok_or(Error::Malformed("IKE_SA_INIT without SA"))?;
    let (suite, chosen) = match proposal::choose_ike(&cfg.ike_suites, theirs) {
        Ok(c) => c,
        Err(e) => {
            refuse(st, Notify::new(nt::NO_PROPOSAL_CHOSEN, Vec::new()));
            st.fail(format!("{e} (we offer {})", list(&cfg.ike_suites)));
            return Err(e);
        }
    };
    let (group, ke) = p.ke().ok_or(Error::Malformed("IKE_SA_INIT without KE"))?;
    if group != suite.dh.id() {
        refuse(
            st,
            Notify::new(nt::INVALID_KE_PAYLOAD, suite.dh.id().to_be_bytes().to_vec()),
        );
        return Err(Error::PeerRefused(format!(
            "KE group {group} while {} was chosen; asked for it",
            suite.dh.id()
        )));
    }
    let ni = check_nonce(p.nonce())?;
    let dh = DhKey::generate(suite.dh)?;
    let public = dh.public().to_vec();
    let shared = dh.agree(ke)?;
    let mut ike = IkeSa::new(
        h.spi_i,
        crypto::random_ike_spi()?,
        false,
        Phase::ResponderInit,
        now,
    );
    ike.nr = nonce()?;
    ike.keys = Some(IkeKeys::initial(
        &suite, &shared, &ni, &ike.nr, ike.spi_i, ike.spi_r,
    )?);
    ike.ni = ni;
    ike.suite = Some(suite);
    note_nat(p, cfg, ike.spi_i, 0, st.remote);
    let mut out = vec![
        Payload::Sa(vec![chosen]),
        Payload::Ke {
            group: suite.dh.id(),
            data: public,
        },
        Payload::Nonce(ike.nr.clone()),
    ];
    out.extend(nat_notifies(cfg, ike.spi_i, ike.spi_r, st.remote)?);
    let bytes = message::build_plain(ike.header(ex::IKE_SA_INIT, 0, true), &out);
    st.send(&bytes);
    ike.init_req = msg.to_vec();
    ike.init_resp = bytes.clone();
    ike.remember_response(0, bytes);
    tracing::debug!(peer = %st.remote, %suite, "IKE_SA_INIT answered");
    Ok(ike)
}

fn list<T: std::fmt::Display>(v: &[T]) -> String {
    v.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

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

fn init_response(
    ike: &mut IkeSa,
    cfg: &Config,
    st: &mut Shared,
    msg: &[u8],
    now: Instant,
) -> Result<Outcome, Error> {
    let parsed = message::parse(msg)?;
    let p = &parsed.payloads;
    let Phase::InitSent { dh, group, cookie } = &mut ike.phase else {
        return Err(Error::Malformed("IKE_SA_INIT response in the wrong state"));
    };
    if let Some(c) = p.notify(nt::COOKIE) {
        *cookie = Some(c.data.clone());
    } else if let Some(n) = p.notify(nt::INVALID_KE_PAYLOAD) {
        let want = (n.data.len() == 2).then(|| u16::from_be_bytes([n.data[0], n.data[1]]));
        match want.and_then(DhGroup::from_id) {
            Some(g) if cfg.ike_suites.iter().any(|s| s.dh == g) && g != *group => {
                *group = g;
                *dh = Some(DhKey::generate(g)?);
            }
            _ => {
                st.fail(format!(
                    "the peer wants DH group {want:?}, which we do not offer"
                ));
                return Ok(Outcome::Failed);
            }
        }
    } else if let Some(n) = p.error_notify() {
        let why = if n.ty == nt::NO_PROPOSAL_CHOSEN {
            format!(
                "the peer accepts none of our IKE proposals ({})",
                list(&cfg.ike_suites)
            )
        } else {
            format!("the peer refused IKE_SA_INIT with notify {}", n.ty)
        };
        st.fail(why);
        return Ok(Outcome::Failed);
    } else {
        return init_accepted(ike, cfg, st, msg, parsed.header.spi_r, now);
    }
    // Retry with the cookie or the group the peer asked for.
    let Phase::InitSent {
        dh: Some(dh),
        cookie,
        ..
    } = &ike.phase
    else {
        return Err(Error::Malformed("IKE_SA_INIT state"));
    };
    let bytes = init_request(cfg, ike, dh, cookie.as_deref(), st.remote)?;
    ike.init_req = bytes.clone();
    ike.pending = None;
    ike.resend_init(st, bytes, cfg, now);
    Ok(Outcome::None)
}

fn init_accepted(
    ike: &mut IkeSa,
    cfg: &Config,
    st: &mut Shared,
    msg: &[u8],
    spi_r: u64,
    now: Instant,
) -> Result<Outcome, Error> {
    let parsed = message::parse(msg)?;
    let p = &parsed.payloads;
    let (suite, _) =
        proposal::accepted_ike(&cfg.ike_suites, p.sa().ok_or(Error::Malformed("no SA"))?)?;
    let (group, ke) = p
        .ke()
        .ok_or(Error::Malformed("IKE_SA_INIT response without KE"))?;
    let Phase::InitSent { dh, .. } = &mut ike.phase else {
        return Err(Error::Malformed("IKE_SA_INIT state"));
    };
    let dh = dh.take().ok_or(Error::Malformed("IKE_SA_INIT state"))?;
    if group != suite.dh.id() || dh.group != suite.dh || spi_r == 0 {
        return Err(Error::Malformed("IKE_SA_INIT response KE group or SPI"));
    }
    let nr = check_nonce(p.nonce())?;
    let shared = dh.agree(ke)?;
    ike.pending = None;
    ike.spi_r = spi_r;
    ike.keys = Some(IkeKeys::initial(
        &suite, &shared, &ike.ni, &nr, ike.spi_i, spi_r,
    )?);
    ike.nr = nr;
    ike.suite = Some(suite);
    ike.init_resp = msg.to_vec();
    ike.phase = Phase::AuthSent;
    note_nat(p, cfg, ike.spi_i, spi_r, st.remote);
    // IKE_AUTH: our identity, proof, and the first child SA.
    let keys = ike.keys.as_ref().ok_or(Error::Malformed("keys"))?;
    let auth = keys::psk_auth(
        &cfg.psk,
        &ike.init_req,
        &ike.nr,
        &keys.sk_pi,
        &cfg.local_id.body(),
    );
    let spi_in = crypto::random_esp_spi()?;
    let payloads = vec![
        Payload::IdI(cfg.local_id.clone()),
        Payload::Notify(Notify::new(nt::INITIAL_CONTACT, Vec::new())),
        Payload::IdR(cfg.remote_id.clone()),
        Payload::Auth {
            method: AUTH_SHARED_KEY_MIC,
            data: auth.to_vec(),
        },
        Payload::Sa(proposal::esp_proposals(&cfg.esp_suites, spi_in, false)),
        Payload::TsI(cfg.local_ts.clone()),
        Payload::TsR(cfg.remote_ts.clone()),
    ];
    ike.request(ex::IKE_AUTH, payloads, Request::Auth { spi_in });
    ike.poll_io(cfg, st, now);
    Ok(Outcome::None)
}

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

fn auth_request(
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

fn auth_response(
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

fn create_child_request(
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
fn rekey_ike_response(
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
