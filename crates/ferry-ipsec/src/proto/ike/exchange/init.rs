//! IKE_SA_INIT (RFC 7296 §1.2) from both sides, with NAT detection (§2.23).

use super::super::keys::{self, IkeKeys};
use super::super::sa::{IkeSa, Phase, Request};
use super::super::{Config, Shared, Status};
use crate::Error;
use crate::proto::consts::{AUTH_SHARED_KEY_MIC, exchange as ex, notify as nt};
use crate::proto::crypto::{self, DhKey};
use crate::proto::message::{self, Notify, Payload, PayloadsExt};
use crate::proto::proposal::{self, DhGroup};
use std::net::SocketAddr;
use std::time::Instant;

use super::common::{Outcome, check_nonce, list, nonce};

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

pub(super) fn init_response(
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
