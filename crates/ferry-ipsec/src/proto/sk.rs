//! The Encrypted payload with an AEAD cipher (RFC 5282 §5, RFC 7634 §3): build a
//! sealed message and open a received one. The associated data is the IKE header
//! plus the SK payload's generic header; the IV is a per-SA counter.

use super::consts::payload as pt;
use super::crypto::{AeadKey, IV_LEN, TAG_LEN};
use super::message::{self, GENERIC_LEN, HEADER_LEN, Header, Parsed, Payload};
use crate::Error;

/// Build `header` + SK{`payloads`} sealed with `key`, using `iv` (unique per key).
pub fn seal(
    header: Header,
    payloads: &[Payload],
    key: &AeadKey,
    iv: u64,
) -> Result<Vec<u8>, Error> {
    let mut inner = Vec::with_capacity(256);
    let first = message::write_payloads(payloads, &mut inner);
    inner.push(0); // pad length: AEAD ciphers need no padding
    let sk_len = GENERIC_LEN + IV_LEN + inner.len() + TAG_LEN;
    let mut out = Vec::with_capacity(HEADER_LEN + sk_len);
    let mut h = header;
    h.next_payload = pt::SK;
    h.length = (HEADER_LEN + sk_len) as u32;
    h.write(&mut out);
    out.extend_from_slice(&[first, 0]);
    out.extend_from_slice(&(sk_len as u16).to_be_bytes());
    let aad_end = out.len();
    let iv = iv.to_be_bytes();
    out.extend_from_slice(&iv);
    out.extend_from_slice(&inner);
    let (aad, rest) = out.split_at_mut(aad_end);
    let tag = key.seal(&iv, aad, &mut rest[IV_LEN..IV_LEN + inner.len()])?;
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Decrypt and parse the SK payload of `parsed` (from `msg`) with `key`; the inner
/// payloads are appended to `parsed.payloads`.
pub fn open(msg: &[u8], parsed: &mut Parsed, key: &AeadKey) -> Result<(), Error> {
    let Some(sk) = parsed.sk else {
        return Err(Error::Malformed("expected an Encrypted payload"));
    };
    let body = &msg[sk.body_start..];
    if body.len() < IV_LEN + 1 + TAG_LEN {
        return Err(Error::Malformed("Encrypted payload too short"));
    }
    let mut iv = [0u8; IV_LEN];
    iv.copy_from_slice(&body[..IV_LEN]);
    let mut plain = body[IV_LEN..body.len() - TAG_LEN].to_vec();
    key.open(
        &iv,
        &msg[..sk.body_start],
        &mut plain,
        &body[body.len() - TAG_LEN..],
    )?;
    let pad = usize::from(*plain.last().ok_or(Error::Malformed("SK padding"))?);
    if pad + 1 > plain.len() {
        return Err(Error::Malformed("SK padding length"));
    }
    plain.truncate(plain.len() - pad - 1);
    let (inner, nested) = message::parse_chain(sk.first_inner, &plain, 0)?;
    if nested.is_some() {
        return Err(Error::Malformed("nested Encrypted payload"));
    }
    parsed.payloads.extend(inner);
    Ok(())
}
