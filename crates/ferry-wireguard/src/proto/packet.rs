//! Just enough IP and WireGuard header parsing to route packets: no I/O, no copies.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// WireGuard message types (first little-endian u32 of a datagram).
pub const MSG_HANDSHAKE_INIT: u32 = 1;
/// Handshake response.
pub const MSG_HANDSHAKE_RESP: u32 = 2;
/// Cookie reply.
pub const MSG_COOKIE_REPLY: u32 = 3;
/// Transport data.
pub const MSG_DATA: u32 = 4;
/// Bytes a data message adds to an IP packet (header 16 + AEAD tag 16).
pub const DATA_OVERHEAD: usize = 32;

/// The destination address of an IP packet, if it has a plausible header.
pub fn ip_dst(p: &[u8]) -> Option<IpAddr> {
    match p.first()? >> 4 {
        4 if p.len() >= 20 => {
            let b: [u8; 4] = p[16..20].try_into().ok()?;
            Some(IpAddr::V4(Ipv4Addr::from(b)))
        }
        6 if p.len() >= 40 => {
            let b: [u8; 16] = p[24..40].try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(b)))
        }
        _ => None,
    }
}

/// What kind of WireGuard message a datagram claims to be, and the receiver index
/// that selects our peer (for responses, cookies and data). `None` when the datagram
/// is too short or of an unknown type: such datagrams are dropped unread.
pub fn classify(d: &[u8]) -> Option<(u32, Option<u32>)> {
    let le = |o: usize| -> Option<u32> {
        let b: [u8; 4] = d.get(o..o + 4)?.try_into().ok()?;
        Some(u32::from_le_bytes(b))
    };
    let ty = le(0)?;
    match ty {
        MSG_HANDSHAKE_INIT if d.len() == 148 => Some((ty, None)),
        MSG_HANDSHAKE_RESP if d.len() == 92 => Some((ty, Some(le(8)?))),
        MSG_COOKIE_REPLY if d.len() == 64 => Some((ty, Some(le(4)?))),
        MSG_DATA if d.len() >= 32 => Some((ty, Some(le(4)?))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dst_of_v4_and_v6() {
        let mut v4 = [0u8; 20];
        v4[0] = 0x45;
        v4[16..20].copy_from_slice(&[100, 64, 0, 2]);
        assert_eq!(ip_dst(&v4), Some("100.64.0.2".parse().unwrap()));
        assert_eq!(ip_dst(&v4[..19]), None);
        let mut v6 = [0u8; 40];
        v6[0] = 0x60;
        v6[39] = 1;
        assert_eq!(ip_dst(&v6), Some("::1".parse().unwrap()));
        assert_eq!(ip_dst(&[]), None);
        assert_eq!(ip_dst(&[0x10; 40]), None);
    }

    #[test]
    fn classify_rejects_garbage() {
        assert_eq!(classify(&[]), None);
        assert_eq!(classify(&[4, 0, 0]), None);
        assert_eq!(classify(&[1; 148]), None);
        let mut d = [0u8; 32];
        d[0] = 4;
        d[4] = 7;
        assert_eq!(classify(&d), Some((MSG_DATA, Some(7))));
        let mut r = [0u8; 92];
        r[0] = 2;
        r[8] = 9;
        assert_eq!(classify(&r), Some((MSG_HANDSHAKE_RESP, Some(9))));
        assert_eq!(classify(&r[..91]), None);
    }
}
