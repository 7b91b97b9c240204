//! Traffic selectors (RFC 7296 §3.13): address and port ranges with a protocol, their
//! wire form, narrowing (the responder's intersection), and the CIDR view the data
//! path routes with.

use super::consts::{TS_IPV4_ADDR_RANGE, TS_IPV6_ADDR_RANGE};
use super::wire::{be16, need};
use crate::Error;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One traffic selector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TrafficSelector {
    /// IP protocol (0: any).
    pub protocol: u8,
    /// First port.
    pub start_port: u16,
    /// Last port.
    pub end_port: u16,
    /// First address.
    pub start: IpAddr,
    /// Last address (same family as `start`).
    pub end: IpAddr,
}

impl TrafficSelector {
    /// All traffic to and from `addr/prefix`.
    pub fn subnet(addr: IpAddr, prefix: u8) -> Result<Self, Error> {
        let (start, end) = match addr {
            IpAddr::V4(a) if prefix <= 32 => {
                let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                let s = u32::from(a) & mask;
                (
                    IpAddr::V4(Ipv4Addr::from(s)),
                    IpAddr::V4(Ipv4Addr::from(s | !mask)),
                )
            }
            IpAddr::V6(a) if prefix <= 128 => {
                let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                let s = u128::from(a) & mask;
                (
                    IpAddr::V6(Ipv6Addr::from(s)),
                    IpAddr::V6(Ipv6Addr::from(s | !mask)),
                )
            }
            _ => return Err(Error::Config(format!("bad prefix length {addr}/{prefix}"))),
        };
        Ok(Self {
            protocol: 0,
            start_port: 0,
            end_port: 65535,
            start,
            end,
        })
    }

    /// Whether this selector covers address `ip` (any port and protocol).
    pub fn contains(&self, ip: IpAddr) -> bool {
        key(ip) >= key(self.start)
            && key(ip) <= key(self.end)
            && ip.is_ipv4() == self.start.is_ipv4()
    }

    /// The intersection with `other`, if not empty.
    pub fn intersect(&self, other: &Self) -> Option<Self> {
        if self.start.is_ipv4() != other.start.is_ipv4() {
            return None;
        }
        let protocol = match (self.protocol, other.protocol) {
            (0, p) | (p, 0) => p,
            (a, b) if a == b => a,
            _ => return None,
        };
        let start_port = self.start_port.max(other.start_port);
        let end_port = self.end_port.min(other.end_port);
        let start = if key(self.start) >= key(other.start) {
            self.start
        } else {
            other.start
        };
        let end = if key(self.end) <= key(other.end) {
            self.end
        } else {
            other.end
        };
        (start_port <= end_port && key(start) <= key(end)).then_some(Self {
            protocol,
            start_port,
            end_port,
            start,
            end,
        })
    }

    /// Whether `self` lies within `other`.
    pub fn within(&self, other: &Self) -> bool {
        self.intersect(other).as_ref() == Some(self)
    }

    /// The address range as CIDR blocks (for routing).
    pub fn cidrs(&self) -> Vec<(IpAddr, u8)> {
        let (mut lo, hi, bits) = match (self.start, self.end) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                (u128::from(u32::from(a)), u128::from(u32::from(b)), 32u32)
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128u32),
            _ => return Vec::new(),
        };
        // Last address of the 2^s block starting at the aligned `lo`.
        let span_end = |lo: u128, s: u32| {
            if s >= 128 {
                u128::MAX
            } else {
                lo + ((1u128 << s) - 1)
            }
        };
        let mut out = Vec::new();
        while lo <= hi {
            let mut s = if lo == 0 {
                bits
            } else {
                lo.trailing_zeros().min(bits)
            };
            while s > 0 && span_end(lo, s) > hi {
                s -= 1;
            }
            let ip = if bits == 32 {
                IpAddr::V4(Ipv4Addr::from(lo as u32))
            } else {
                IpAddr::V6(Ipv6Addr::from(lo))
            };
            out.push((ip, (bits - s) as u8));
            let end = span_end(lo, s);
            if end >= hi {
                break;
            }
            lo = end + 1;
        }
        out
    }

    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        let v4 = self.start.is_ipv4();
        out.push(if v4 {
            TS_IPV4_ADDR_RANGE
        } else {
            TS_IPV6_ADDR_RANGE
        });
        out.push(self.protocol);
        out.extend_from_slice(&(if v4 { 16u16 } else { 40 }).to_be_bytes());
        out.extend_from_slice(&self.start_port.to_be_bytes());
        out.extend_from_slice(&self.end_port.to_be_bytes());
        for a in [self.start, self.end] {
            match a {
                IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
                IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
            }
        }
    }

    pub(crate) fn parse_all(n: usize, mut b: &[u8]) -> Result<Vec<Self>, Error> {
        let mut out = Vec::with_capacity(n.min(64));
        for _ in 0..n {
            need(b, 8, "traffic selector")?;
            let len = usize::from(be16(&b[2..4]));
            let (start, end) = match (b[0], len) {
                (TS_IPV4_ADDR_RANGE, 16) if b.len() >= 16 => {
                    let s: [u8; 4] = b[8..12].try_into().map_err(|_| Error::Malformed("TS"))?;
                    let e: [u8; 4] = b[12..16].try_into().map_err(|_| Error::Malformed("TS"))?;
                    (IpAddr::from(s), IpAddr::from(e))
                }
                (TS_IPV6_ADDR_RANGE, 40) if b.len() >= 40 => {
                    let s: [u8; 16] = b[8..24].try_into().map_err(|_| Error::Malformed("TS"))?;
                    let e: [u8; 16] = b[24..40].try_into().map_err(|_| Error::Malformed("TS"))?;
                    (IpAddr::from(s), IpAddr::from(e))
                }
                _ => return Err(Error::Malformed("traffic selector type or length")),
            };
            out.push(Self {
                protocol: b[1],
                start_port: be16(&b[4..6]),
                end_port: be16(&b[6..8]),
                start,
                end,
            });
            b = &b[len..];
        }
        if !b.is_empty() {
            return Err(Error::Malformed("bytes after last traffic selector"));
        }
        Ok(out)
    }
}

impl std::fmt::Display for TrafficSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = self.cidrs();
        if let [(a, p)] = c.as_slice() {
            write!(f, "{a}/{p}")?;
        } else {
            write!(f, "{}-{}", self.start, self.end)?;
        }
        if self.protocol != 0 || self.start_port != 0 || self.end_port != 65535 {
            write!(
                f,
                "[{}/{}-{}]",
                self.protocol, self.start_port, self.end_port
            )?;
        }
        Ok(())
    }
}

fn key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// The responder's narrowing: every non-empty intersection of a proposed selector
/// with one of ours. Empty when nothing overlaps (TS_UNACCEPTABLE).
pub fn narrow(proposed: &[TrafficSelector], ours: &[TrafficSelector]) -> Vec<TrafficSelector> {
    let mut out = Vec::new();
    for p in proposed {
        for o in ours {
            if let Some(i) = p.intersect(o)
                && !out.contains(&i)
            {
                out.push(i);
            }
        }
    }
    out
}
