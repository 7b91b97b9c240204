//! Reading big-endian fields from a received buffer, length-checked first.

use crate::Error;

/// `b` holds at least `n` bytes, or the message is malformed (`what` says where).
pub(crate) fn need(b: &[u8], n: usize, what: &'static str) -> Result<(), Error> {
    if b.len() < n {
        Err(Error::Malformed(what))
    } else {
        Ok(())
    }
}

/// Big-endian u16 at the start of `b` (checked by [`need`] first).
pub(crate) fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}
/// Big-endian u32 at the start of `b`.
pub(crate) fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}
/// Big-endian u64 at the start of `b`.
pub(crate) fn be64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_be_bytes(a)
}
