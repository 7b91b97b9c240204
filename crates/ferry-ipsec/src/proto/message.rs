//! IKEv2 message encoding and decoding (RFC 7296 §3): the fixed header, the generic
//! payload chain, and every payload this implementation uses. Unknown payloads are
//! kept (or refused when marked critical). The Encrypted (SK) payload is located
//! here but opened and sealed by [`super::sk`], which owns the cipher.

use super::consts::{self, payload as pt};
use super::proposal::Proposal;
use super::ts::TrafficSelector;
use super::wire::{be16, be32, be64, need};
use crate::Error;

/// Length of the fixed IKE header.
pub const HEADER_LEN: usize = 28;
/// Length of a generic payload header.
pub const GENERIC_LEN: usize = 4;

/// The fixed IKE header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Initiator's SPI.
    pub spi_i: u64,
    /// Responder's SPI (zero in the first message).
    pub spi_r: u64,
    /// Type of the first payload.
    pub next_payload: u8,
    /// Exchange type.
    pub exchange: u8,
    /// Flags (initiator, response).
    pub flags: u8,
    /// Message ID.
    pub message_id: u32,
    /// Length of the whole message.
    pub length: u32,
}

impl Header {
    /// Whether the message is a response.
    pub fn is_response(&self) -> bool {
        self.flags & consts::FLAG_RESPONSE != 0
    }
    /// Whether the sender is the original initiator of the IKE SA.
    pub fn from_initiator(&self) -> bool {
        self.flags & consts::FLAG_INITIATOR != 0
    }

    /// Parse and check the header of `msg` (version 2, length equal to the datagram).
    pub fn parse(msg: &[u8]) -> Result<Self, Error> {
        if msg.len() < HEADER_LEN {
            return Err(Error::Malformed("IKE header: too short"));
        }
        let h = Self {
            spi_i: be64(&msg[0..8]),
            spi_r: be64(&msg[8..16]),
            next_payload: msg[16],
            exchange: msg[18],
            flags: msg[19],
            message_id: be32(&msg[20..24]),
            length: be32(&msg[24..28]),
        };
        if msg[17] >> 4 != 2 {
            return Err(Error::Malformed("IKE header: major version is not 2"));
        }
        if h.length as usize != msg.len() {
            return Err(Error::Malformed("IKE header: length differs from datagram"));
        }
        Ok(h)
    }

    /// Append the header (with `self.length` as given) to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.spi_i.to_be_bytes());
        out.extend_from_slice(&self.spi_r.to_be_bytes());
        out.push(self.next_payload);
        out.push(consts::IKE_VERSION);
        out.push(self.exchange);
        out.push(self.flags);
        out.extend_from_slice(&self.message_id.to_be_bytes());
        out.extend_from_slice(&self.length.to_be_bytes());
    }
}

/// An identity (IDi/IDr body without the generic header).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// ID type (`consts::id`).
    pub id_type: u8,
    /// The identification data.
    pub data: Vec<u8>,
}

impl Identity {
    /// An `ID_IPV4_ADDR` / `ID_IPV6_ADDR` identity.
    pub fn ip(ip: std::net::IpAddr) -> Self {
        match ip {
            std::net::IpAddr::V4(a) => Self {
                id_type: consts::id::IPV4_ADDR,
                data: a.octets().to_vec(),
            },
            std::net::IpAddr::V6(a) => Self {
                id_type: consts::id::IPV6_ADDR,
                data: a.octets().to_vec(),
            },
        }
    }
    /// An `ID_FQDN` identity.
    pub fn fqdn(name: &str) -> Self {
        Self {
            id_type: consts::id::FQDN,
            data: name.as_bytes().to_vec(),
        }
    }
    /// The payload body: type, three reserved bytes, data (what AUTH is computed over).
    pub fn body(&self) -> Vec<u8> {
        let mut b = vec![self.id_type, 0, 0, 0];
        b.extend_from_slice(&self.data);
        b
    }
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.id_type, self.data.len()) {
            (consts::id::IPV4_ADDR, 4) => {
                let o: [u8; 4] = self.data[..4].try_into().map_err(|_| std::fmt::Error)?;
                write!(f, "{}", std::net::Ipv4Addr::from(o))
            }
            (consts::id::IPV6_ADDR, 16) => {
                let o: [u8; 16] = self.data[..16].try_into().map_err(|_| std::fmt::Error)?;
                write!(f, "{}", std::net::Ipv6Addr::from(o))
            }
            (consts::id::FQDN, _) => write!(f, "{}", String::from_utf8_lossy(&self.data)),
            (t, _) => write!(f, "id-type-{t}:{} bytes", self.data.len()),
        }
    }
}

/// A Notify payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notify {
    /// Protocol id (0 when no SPI).
    pub protocol: u8,
    /// SPI the notify is about (may be empty).
    pub spi: Vec<u8>,
    /// Notify message type.
    pub ty: u16,
    /// Notification data.
    pub data: Vec<u8>,
}

impl Notify {
    /// A notify without SPI.
    pub fn new(ty: u16, data: Vec<u8>) -> Self {
        Self {
            protocol: 0,
            spi: Vec::new(),
            ty,
            data,
        }
    }
}

/// A Delete payload: SAs of one protocol. An IKE delete has no SPIs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delete {
    /// Protocol id (IKE or ESP).
    pub protocol: u8,
    /// ESP SPIs (the deleting side's inbound SPIs).
    pub spis: Vec<u32>,
}

/// One payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// Security association: proposals.
    Sa(Vec<Proposal>),
    /// Key exchange: group and public value.
    Ke { group: u16, data: Vec<u8> },
    /// Identification of the initiator.
    IdI(Identity),
    /// Identification of the responder.
    IdR(Identity),
    /// Authentication: method and data.
    Auth { method: u8, data: Vec<u8> },
    /// Nonce.
    Nonce(Vec<u8>),
    /// Notify.
    Notify(Notify),
    /// Delete.
    Delete(Delete),
    /// Traffic selectors of the initiator.
    TsI(Vec<TrafficSelector>),
    /// Traffic selectors of the responder.
    TsR(Vec<TrafficSelector>),
    /// A payload this implementation ignores (vendor ID, CERTREQ, ...).
    Other { ty: u8, body: Vec<u8> },
}

impl Payload {
    /// The payload type number.
    pub fn ty(&self) -> u8 {
        match self {
            Self::Sa(_) => pt::SA,
            Self::Ke { .. } => pt::KE,
            Self::IdI(_) => pt::IDI,
            Self::IdR(_) => pt::IDR,
            Self::Auth { .. } => pt::AUTH,
            Self::Nonce(_) => pt::NONCE,
            Self::Notify(_) => pt::NOTIFY,
            Self::Delete(_) => pt::DELETE,
            Self::TsI(_) => pt::TSI,
            Self::TsR(_) => pt::TSR,
            Self::Other { ty, .. } => *ty,
        }
    }

    fn write_body(&self, out: &mut Vec<u8>) {
        match self {
            Self::Sa(props) => {
                for (i, p) in props.iter().enumerate() {
                    p.write(out, i + 1 == props.len());
                }
            }
            Self::Ke { group, data } => {
                out.extend_from_slice(&group.to_be_bytes());
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(data);
            }
            Self::IdI(id) | Self::IdR(id) => out.extend_from_slice(&id.body()),
            Self::Auth { method, data } => {
                out.extend_from_slice(&[*method, 0, 0, 0]);
                out.extend_from_slice(data);
            }
            Self::Nonce(n) => out.extend_from_slice(n),
            Self::Notify(n) => {
                out.push(n.protocol);
                out.push(n.spi.len() as u8);
                out.extend_from_slice(&n.ty.to_be_bytes());
                out.extend_from_slice(&n.spi);
                out.extend_from_slice(&n.data);
            }
            Self::Delete(d) => {
                out.push(d.protocol);
                out.push(if d.protocol == consts::protocol::IKE {
                    0
                } else {
                    4
                });
                out.extend_from_slice(&(d.spis.len() as u16).to_be_bytes());
                for s in &d.spis {
                    out.extend_from_slice(&s.to_be_bytes());
                }
            }
            Self::TsI(ts) | Self::TsR(ts) => {
                out.extend_from_slice(&[ts.len() as u8, 0, 0, 0]);
                for t in ts {
                    t.write(out);
                }
            }
            Self::Other { body, .. } => out.extend_from_slice(body),
        }
    }

    fn parse(ty: u8, critical: bool, body: &[u8]) -> Result<Self, Error> {
        Ok(match ty {
            pt::SA => Self::Sa(Proposal::parse_all(body)?),
            pt::KE => {
                need(body, 4, "KE payload")?;
                Self::Ke {
                    group: be16(&body[0..2]),
                    data: body[4..].to_vec(),
                }
            }
            pt::IDI | pt::IDR => {
                need(body, 4, "ID payload")?;
                let id = Identity {
                    id_type: body[0],
                    data: body[4..].to_vec(),
                };
                if ty == pt::IDI {
                    Self::IdI(id)
                } else {
                    Self::IdR(id)
                }
            }
            pt::AUTH => {
                need(body, 4, "AUTH payload")?;
                Self::Auth {
                    method: body[0],
                    data: body[4..].to_vec(),
                }
            }
            pt::NONCE => Self::Nonce(body.to_vec()),
            pt::NOTIFY => {
                need(body, 4, "Notify payload")?;
                let spi_len = usize::from(body[1]);
                need(body, 4 + spi_len, "Notify payload SPI")?;
                Self::Notify(Notify {
                    protocol: body[0],
                    spi: body[4..4 + spi_len].to_vec(),
                    ty: be16(&body[2..4]),
                    data: body[4 + spi_len..].to_vec(),
                })
            }
            pt::DELETE => {
                need(body, 4, "Delete payload")?;
                let (protocol, spi_size, n) = (body[0], usize::from(body[1]), be16(&body[2..4]));
                let mut spis = Vec::new();
                if protocol == consts::protocol::ESP {
                    if spi_size != 4 || body.len() != 4 + 4 * usize::from(n) {
                        return Err(Error::Malformed("Delete payload: SPI list"));
                    }
                    spis = body[4..].chunks(4).map(be32).collect();
                }
                Self::Delete(Delete { protocol, spis })
            }
            pt::TSI | pt::TSR => {
                need(body, 4, "TS payload")?;
                let ts = TrafficSelector::parse_all(usize::from(body[0]), &body[4..])?;
                if ty == pt::TSI {
                    Self::TsI(ts)
                } else {
                    Self::TsR(ts)
                }
            }
            pt::SK => return Err(Error::Malformed("SK payload not last")),
            _ if critical => return Err(Error::UnsupportedCritical(ty)),
            _ => Self::Other {
                ty,
                body: body.to_vec(),
            },
        })
    }
}

/// Append `payloads` as a chain; returns the type of the first one (for the header
/// or the SK payload's next-payload field).
pub fn write_payloads(payloads: &[Payload], out: &mut Vec<u8>) -> u8 {
    for (i, p) in payloads.iter().enumerate() {
        let next = payloads.get(i + 1).map_or(pt::NONE, Payload::ty);
        let start = out.len();
        out.extend_from_slice(&[next, 0, 0, 0]);
        p.write_body(out);
        let len = (out.len() - start) as u16;
        out[start + 2..start + 4].copy_from_slice(&len.to_be_bytes());
    }
    payloads.first().map_or(pt::NONE, Payload::ty)
}

/// Where the Encrypted payload sits in a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SkLocation {
    /// Type of the first payload inside.
    pub first_inner: u8,
    /// Offset just past the SK generic header (end of the AEAD associated data).
    pub body_start: usize,
}

/// A parsed message: header, the plain payloads, and the SK payload if any.
#[derive(Clone, Debug)]
pub struct Parsed {
    /// The header.
    pub header: Header,
    /// Payloads before the SK payload (all of them in IKE_SA_INIT).
    pub payloads: Vec<Payload>,
    /// The Encrypted payload, which is always last.
    pub sk: Option<SkLocation>,
}

/// Parse a whole IKE message (without the non-ESP marker).
pub fn parse(msg: &[u8]) -> Result<Parsed, Error> {
    let header = Header::parse(msg)?;
    let (payloads, sk) = parse_chain(header.next_payload, msg, HEADER_LEN)?;
    Ok(Parsed {
        header,
        payloads,
        sk,
    })
}

/// Parse the payload chain starting at `msg[off..]` with first type `first`.
pub fn parse_chain(
    first: u8,
    msg: &[u8],
    mut off: usize,
) -> Result<(Vec<Payload>, Option<SkLocation>), Error> {
    let mut next = first;
    let mut out = Vec::new();
    while next != pt::NONE {
        need(&msg[off..], GENERIC_LEN, "generic payload header")?;
        let hdr = &msg[off..off + GENERIC_LEN];
        let len = usize::from(be16(&hdr[2..4]));
        if len < GENERIC_LEN || off + len > msg.len() {
            return Err(Error::Malformed("payload length"));
        }
        if next == pt::SK {
            if off + len != msg.len() {
                return Err(Error::Malformed("SK payload not last"));
            }
            return Ok((
                out,
                Some(SkLocation {
                    first_inner: hdr[0],
                    body_start: off + GENERIC_LEN,
                }),
            ));
        }
        let critical = hdr[1] & 0x80 != 0;
        out.push(Payload::parse(
            next,
            critical,
            &msg[off + GENERIC_LEN..off + len],
        )?);
        next = hdr[0];
        off += len;
    }
    if off != msg.len() {
        return Err(Error::Malformed("trailing bytes after last payload"));
    }
    Ok((out, None))
}

/// Build an unencrypted message (IKE_SA_INIT).
pub fn build_plain(mut header: Header, payloads: &[Payload]) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    header.write(&mut out);
    header.next_payload = write_payloads(payloads, &mut out);
    out[16] = header.next_payload;
    let len = out.len() as u32;
    out[24..28].copy_from_slice(&len.to_be_bytes());
    out
}

/// Helpers to find payloads in a list.
pub trait PayloadsExt {
    /// The first notify of type `ty`.
    fn notify(&self, ty: u16) -> Option<&Notify>;
    /// The first error notify (type below 16384).
    fn error_notify(&self) -> Option<&Notify>;
    /// The first nonce.
    fn nonce(&self) -> Option<&[u8]>;
    /// The first KE payload.
    fn ke(&self) -> Option<(u16, &[u8])>;
    /// The first SA payload's proposals.
    fn sa(&self) -> Option<&[Proposal]>;
    /// TSi and TSr.
    fn ts(&self) -> Option<(&[TrafficSelector], &[TrafficSelector])>;
}

impl PayloadsExt for [Payload] {
    fn notify(&self, ty: u16) -> Option<&Notify> {
        self.iter().find_map(|p| match p {
            Payload::Notify(n) if n.ty == ty => Some(n),
            _ => None,
        })
    }
    fn error_notify(&self) -> Option<&Notify> {
        self.iter().find_map(|p| match p {
            Payload::Notify(n) if n.ty <= consts::notify::LAST_ERROR => Some(n),
            _ => None,
        })
    }
    fn nonce(&self) -> Option<&[u8]> {
        self.iter().find_map(|p| match p {
            Payload::Nonce(n) => Some(n.as_slice()),
            _ => None,
        })
    }
    fn ke(&self) -> Option<(u16, &[u8])> {
        self.iter().find_map(|p| match p {
            Payload::Ke { group, data } => Some((*group, data.as_slice())),
            _ => None,
        })
    }
    fn sa(&self) -> Option<&[Proposal]> {
        self.iter().find_map(|p| match p {
            Payload::Sa(s) => Some(s.as_slice()),
            _ => None,
        })
    }
    fn ts(&self) -> Option<(&[TrafficSelector], &[TrafficSelector])> {
        let i = self.iter().find_map(|p| match p {
            Payload::TsI(t) => Some(t.as_slice()),
            _ => None,
        })?;
        let r = self.iter().find_map(|p| match p {
            Payload::TsR(t) => Some(t.as_slice()),
            _ => None,
        })?;
        Some((i, r))
    }
}

#[cfg(test)]
mod tests;
