//! What every exchange uses: nonces, the outcome of handling a message, jitter.

use super::super::sa::IkeSa;
use crate::Error;
use crate::proto::crypto::{self};
use std::time::Duration;

/// Nonce length we send (RFC 7296: at least half the PRF key size, 16..=256 bytes).
pub(super) const NONCE_LEN: usize = 32;

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

pub(super) fn nonce() -> Result<Vec<u8>, Error> {
    crypto::random_bytes(NONCE_LEN)
}

pub(super) fn check_nonce(n: Option<&[u8]>) -> Result<Vec<u8>, Error> {
    match n {
        Some(n) if (16..=256).contains(&n.len()) => Ok(n.to_vec()),
        _ => Err(Error::Malformed("missing or bad Nonce payload")),
    }
}

pub(super) fn list<T: std::fmt::Display>(v: &[T]) -> String {
    v.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
