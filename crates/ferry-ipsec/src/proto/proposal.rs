//! SA proposals (RFC 7296 §3.3): their wire form, the algorithm suites this
//! implementation offers, strongSwan-style names for them
//! (`aes256gcm16-prfsha256-x25519`, `chacha20poly1305`), and the responder's choice.

use super::consts::{protocol, transform as tf};
use super::wire::{be16, need};
use crate::Error;

/// One transform: type, id and optional key length (bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transform {
    /// Transform type (ENCR, PRF, INTEG, DH, ESN).
    pub ty: u8,
    /// Transform id.
    pub id: u16,
    /// Key length attribute in bits, if present.
    pub key_len: Option<u16>,
    /// Whether the transform carried attributes we do not understand (it then never
    /// matches).
    pub unknown_attrs: bool,
}

impl Transform {
    fn new(ty: u8, id: u16, key_len: Option<u16>) -> Self {
        Self {
            ty,
            id,
            key_len,
            unknown_attrs: false,
        }
    }
}

/// One proposal of an SA payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    /// Proposal number (the responder echoes the chosen one).
    pub num: u8,
    /// Protocol (IKE or ESP).
    pub protocol: u8,
    /// SPI: empty in IKE_SA_INIT, 8 bytes for an IKE rekey, 4 for ESP.
    pub spi: Vec<u8>,
    /// Transforms.
    pub transforms: Vec<Transform>,
}

impl Proposal {
    pub(crate) fn write(&self, out: &mut Vec<u8>, last: bool) {
        let start = out.len();
        out.extend_from_slice(&[if last { 0 } else { 2 }, 0, 0, 0]);
        out.push(self.num);
        out.push(self.protocol);
        out.push(self.spi.len() as u8);
        out.push(self.transforms.len() as u8);
        out.extend_from_slice(&self.spi);
        for (i, t) in self.transforms.iter().enumerate() {
            let ts = out.len();
            let more = i + 1 < self.transforms.len();
            out.extend_from_slice(&[if more { 3 } else { 0 }, 0, 0, 0, t.ty, 0]);
            out.extend_from_slice(&t.id.to_be_bytes());
            if let Some(k) = t.key_len {
                out.extend_from_slice(&tf::ATTR_KEY_LENGTH.to_be_bytes());
                out.extend_from_slice(&k.to_be_bytes());
            }
            let len = (out.len() - ts) as u16;
            out[ts + 2..ts + 4].copy_from_slice(&len.to_be_bytes());
        }
        let len = (out.len() - start) as u16;
        out[start + 2..start + 4].copy_from_slice(&len.to_be_bytes());
    }

    pub(crate) fn parse_all(mut b: &[u8]) -> Result<Vec<Self>, Error> {
        let mut out = Vec::new();
        loop {
            need(b, 8, "proposal")?;
            let len = usize::from(be16(&b[2..4]));
            if len < 8 || len > b.len() {
                return Err(Error::Malformed("proposal length"));
            }
            out.push(Self::parse_one(&b[..len])?);
            let more = b[0] == 2;
            b = &b[len..];
            if !more {
                break;
            }
        }
        if !b.is_empty() {
            return Err(Error::Malformed("bytes after last proposal"));
        }
        Ok(out)
    }

    fn parse_one(b: &[u8]) -> Result<Self, Error> {
        let spi_len = usize::from(b[6]);
        let n = usize::from(b[7]);
        need(b, 8 + spi_len, "proposal SPI")?;
        let mut p = Self {
            num: b[4],
            protocol: b[5],
            spi: b[8..8 + spi_len].to_vec(),
            transforms: Vec::with_capacity(n),
        };
        let mut t = &b[8 + spi_len..];
        for _ in 0..n {
            need(t, 8, "transform")?;
            let len = usize::from(be16(&t[2..4]));
            if len < 8 || len > t.len() {
                return Err(Error::Malformed("transform length"));
            }
            let mut tr = Transform::new(t[4], be16(&t[6..8]), None);
            let mut a = &t[8..len];
            while !a.is_empty() {
                need(a, 4, "transform attribute")?;
                let ty = be16(&a[0..2]);
                if ty & 0x8000 != 0 {
                    if ty == tf::ATTR_KEY_LENGTH {
                        tr.key_len = Some(be16(&a[2..4]));
                    } else {
                        tr.unknown_attrs = true;
                    }
                    a = &a[4..];
                } else {
                    let alen = usize::from(be16(&a[2..4]));
                    need(a, 4 + alen, "transform attribute value")?;
                    tr.unknown_attrs = true;
                    a = &a[4 + alen..];
                }
            }
            p.transforms.push(tr);
            t = &t[len..];
        }
        if !t.is_empty() {
            return Err(Error::Malformed("bytes after last transform"));
        }
        Ok(p)
    }

    fn has(&self, t: Transform) -> bool {
        self.transforms
            .iter()
            .any(|x| !x.unknown_attrs && x.ty == t.ty && x.id == t.id && x.key_len == t.key_len)
    }
    fn has_type(&self, ty: u8) -> bool {
        self.transforms.iter().any(|x| x.ty == ty)
    }
}

/// An AEAD cipher, for IKE and ESP alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encr {
    /// AES-GCM with a 16-byte ICV, 128-bit key (RFC 4106 / 5282).
    AesGcm128,
    /// AES-GCM with a 16-byte ICV, 256-bit key.
    AesGcm256,
    /// ChaCha20-Poly1305 (RFC 7634).
    ChaCha20Poly1305,
}

impl Encr {
    fn transform(self) -> Transform {
        match self {
            Self::AesGcm128 => Transform::new(tf::ENCR, tf::ENCR_AES_GCM_16, Some(128)),
            Self::AesGcm256 => Transform::new(tf::ENCR, tf::ENCR_AES_GCM_16, Some(256)),
            Self::ChaCha20Poly1305 => Transform::new(tf::ENCR, tf::ENCR_CHACHA20_POLY1305, None),
        }
    }
    /// Key material this cipher takes: key plus the 4-byte salt.
    pub fn keymat_len(self) -> usize {
        match self {
            Self::AesGcm128 => 16 + 4,
            Self::AesGcm256 | Self::ChaCha20Poly1305 => 32 + 4,
        }
    }
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "aes128gcm16" | "aes128gcm128" => Self::AesGcm128,
            "aes256gcm16" | "aes256gcm128" => Self::AesGcm256,
            "chacha20poly1305" => Self::ChaCha20Poly1305,
            _ => return None,
        })
    }
    fn name(self) -> &'static str {
        match self {
            Self::AesGcm128 => "aes128gcm16",
            Self::AesGcm256 => "aes256gcm16",
            Self::ChaCha20Poly1305 => "chacha20poly1305",
        }
    }
}

/// A Diffie-Hellman group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DhGroup {
    /// Group 31, X25519 (RFC 8031).
    Curve25519,
    /// Group 19, NIST P-256 (RFC 5903).
    Ecp256,
}

impl DhGroup {
    /// The IANA group number.
    pub fn id(self) -> u16 {
        match self {
            Self::Curve25519 => tf::DH_CURVE25519,
            Self::Ecp256 => tf::DH_ECP_256,
        }
    }
    /// The group with this number, if implemented.
    pub fn from_id(id: u16) -> Option<Self> {
        match id {
            tf::DH_CURVE25519 => Some(Self::Curve25519),
            tf::DH_ECP_256 => Some(Self::Ecp256),
            _ => None,
        }
    }
    fn transform(self) -> Transform {
        Transform::new(tf::DH, self.id(), None)
    }
    fn parse(s: &str) -> Option<Self> {
        match s {
            "x25519" | "curve25519" | "modp31" => Some(Self::Curve25519),
            "ecp256" => Some(Self::Ecp256),
            _ => None,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Self::Curve25519 => "x25519",
            Self::Ecp256 => "ecp256",
        }
    }
}

/// An IKE SA algorithm set: AEAD, PRF (always HMAC-SHA2-256) and DH group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IkeSuite {
    /// Cipher.
    pub encr: Encr,
    /// Key exchange group.
    pub dh: DhGroup,
}

impl IkeSuite {
    /// The transforms of a proposal offering exactly this suite.
    pub fn transforms(&self) -> Vec<Transform> {
        vec![
            self.encr.transform(),
            Transform::new(tf::PRF, tf::PRF_HMAC_SHA2_256, None),
            self.dh.transform(),
        ]
    }
}

impl std::str::FromStr for IkeSuite {
    type Err = Error;
    /// `aes256gcm16-prfsha256-x25519` (strongSwan's spelling; the PRF may be left out).
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || {
            Error::Config(format!(
                "unsupported IKE proposal {s:?} (supported: aes128gcm16|aes256gcm16|chacha20poly1305 - prfsha256 - x25519|ecp256)"
            ))
        };
        let mut encr = None;
        let mut dh = None;
        for part in s.split('-') {
            if let Some(e) = Encr::parse(part) {
                encr = Some(e);
            } else if let Some(g) = DhGroup::parse(part) {
                dh = Some(g);
            } else if part != "prfsha256" {
                return Err(bad());
            }
        }
        Ok(Self {
            encr: encr.ok_or_else(bad)?,
            dh: dh.ok_or_else(bad)?,
        })
    }
}

impl std::fmt::Display for IkeSuite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-prfsha256-{}", self.encr.name(), self.dh.name())
    }
}

/// An ESP SA algorithm set: AEAD, extended sequence numbers, optional PFS group
/// (used only when rekeying: IKE_AUTH never carries a KE).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EspSuite {
    /// Cipher.
    pub encr: Encr,
    /// 64-bit extended sequence numbers.
    pub esn: bool,
    /// Group for perfect forward secrecy on rekeying.
    pub dh: Option<DhGroup>,
}

impl EspSuite {
    /// The transforms of a proposal offering exactly this suite; `with_dh: false`
    /// for IKE_AUTH.
    pub fn transforms(&self, with_dh: bool) -> Vec<Transform> {
        let mut t = vec![self.encr.transform()];
        if let (Some(g), true) = (self.dh, with_dh) {
            t.push(g.transform());
        }
        t.push(Transform::new(
            tf::ESN,
            if self.esn { tf::ESN_YES } else { tf::ESN_NO },
            None,
        ));
        t
    }
}

impl std::str::FromStr for EspSuite {
    type Err = Error;
    /// `aes256gcm16`, `chacha20poly1305-x25519`, `aes128gcm16-esn`.
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || {
            Error::Config(format!(
                "unsupported ESP proposal {s:?} (supported: aes128gcm16|aes256gcm16|chacha20poly1305 [-x25519|-ecp256] [-esn|-noesn])"
            ))
        };
        let mut encr = None;
        let mut dh = None;
        let mut esn = false;
        for part in s.split('-') {
            if let Some(e) = Encr::parse(part) {
                encr = Some(e);
            } else if let Some(g) = DhGroup::parse(part) {
                dh = Some(g);
            } else if part == "esn" {
                esn = true;
            } else if part != "noesn" {
                return Err(bad());
            }
        }
        Ok(Self {
            encr: encr.ok_or_else(bad)?,
            esn,
            dh,
        })
    }
}

impl std::fmt::Display for EspSuite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.encr.name())?;
        if let Some(g) = self.dh {
            write!(f, "-{}", g.name())?;
        }
        if self.esn {
            write!(f, "-esn")?;
        }
        Ok(())
    }
}

/// Our IKE proposal: one proposal listing every transform of every suite (as
/// strongSwan does), so the responder may pick any combination we support.
pub fn ike_proposal(suites: &[IkeSuite], spi: Vec<u8>) -> Proposal {
    let mut transforms: Vec<Transform> = Vec::new();
    for s in suites {
        for t in s.transforms() {
            if !transforms.contains(&t) {
                transforms.push(t);
            }
        }
    }
    // ENCR first, then PRF, then DH: the order RFC 7296 shows.
    transforms.sort_by_key(|t| t.ty);
    Proposal {
        num: 1,
        protocol: protocol::IKE,
        spi,
        transforms,
    }
}

/// Our ESP proposals: one per suite.
pub fn esp_proposals(suites: &[EspSuite], spi: u32, with_dh: bool) -> Vec<Proposal> {
    suites
        .iter()
        .enumerate()
        .map(|(i, s)| Proposal {
            num: i as u8 + 1,
            protocol: protocol::ESP,
            spi: spi.to_be_bytes().to_vec(),
            transforms: s.transforms(with_dh),
        })
        .collect()
}

/// Responder: the first of our IKE suites (in our order of preference) that one of
/// the peer's IKE proposals offers. Returns the suite and the chosen proposal (with
/// only the chosen transforms, the peer's number and SPI) to send back.
pub fn choose_ike(ours: &[IkeSuite], theirs: &[Proposal]) -> Result<(IkeSuite, Proposal), Error> {
    for s in ours {
        for p in theirs.iter().filter(|p| p.protocol == protocol::IKE) {
            let ts = s.transforms();
            if ts.iter().all(|t| p.has(*t)) && !p.has_type(tf::INTEG) {
                return Ok((
                    *s,
                    Proposal {
                        num: p.num,
                        protocol: protocol::IKE,
                        spi: p.spi.clone(),
                        transforms: ts,
                    },
                ));
            }
        }
    }
    Err(Error::NoProposalChosen("IKE"))
}

/// Responder: the first of our ESP suites one of the peer's ESP proposals offers.
/// `with_dh`: whether this exchange carries a KE (a rekey with PFS); a proposal's DH
/// transform must then match ours, else proposals with no DH transform match.
pub fn choose_esp(
    ours: &[EspSuite],
    theirs: &[Proposal],
    with_dh: bool,
) -> Result<(EspSuite, Proposal), Error> {
    for s in ours {
        for p in theirs.iter().filter(|p| p.protocol == protocol::ESP) {
            if p.spi.len() != 4 || p.has_type(tf::INTEG) {
                continue;
            }
            let mut chosen = *s;
            if !p.has(s.encr.transform()) {
                continue;
            }
            // ESN: take ours when offered, else the other value if the peer only has that.
            let esn_t = |v| Transform::new(tf::ESN, v, None);
            let want = if s.esn { tf::ESN_YES } else { tf::ESN_NO };
            if p.has_type(tf::ESN) && !p.has(esn_t(want)) {
                continue;
            }
            chosen.esn = s.esn && p.has_type(tf::ESN);
            // DH: in IKE_AUTH none; on a rekey, the peer's group if we have it.
            chosen.dh = None;
            if with_dh && p.has_type(tf::DH) {
                let Some(g) = s.dh.filter(|g| p.has(g.transform())) else {
                    continue;
                };
                chosen.dh = Some(g);
            } else if with_dh && s.dh.is_some() {
                continue;
            }
            let proposal = Proposal {
                num: p.num,
                protocol: protocol::ESP,
                spi: p.spi.clone(),
                transforms: chosen.transforms(true),
            };
            return Ok((chosen, proposal));
        }
    }
    Err(Error::NoProposalChosen("ESP"))
}

/// Initiator: the suite the responder chose, checked against what we offered.
pub fn accepted_ike(ours: &[IkeSuite], reply: &[Proposal]) -> Result<(IkeSuite, Proposal), Error> {
    let [p] = reply else {
        return Err(Error::Malformed("IKE SA reply must hold one proposal"));
    };
    let (s, _) = choose_ike(ours, reply)?;
    if p.transforms.len() != s.transforms().len() {
        return Err(Error::Malformed(
            "IKE SA reply must hold one transform per type",
        ));
    }
    Ok((s, p.clone()))
}

/// Initiator: the ESP suite and the peer's SPI from the responder's SA payload.
pub fn accepted_esp(
    ours: &[EspSuite],
    reply: &[Proposal],
    with_dh: bool,
) -> Result<(EspSuite, u32), Error> {
    let [p] = reply else {
        return Err(Error::Malformed("ESP SA reply must hold one proposal"));
    };
    let (s, _) = choose_esp(ours, reply, with_dh)?;
    let spi = u32::from_be_bytes(
        p.spi[..]
            .try_into()
            .map_err(|_| Error::Malformed("ESP SPI"))?,
    );
    Ok((s, spi))
}
