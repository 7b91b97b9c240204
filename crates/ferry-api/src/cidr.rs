//! [`Cidr`]: an IPv4 or IPv6 network prefix, with parsing, overlap checks and
//! serde/JSON-schema support (it travels as a string such as `10.16.0.0/16`).

use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Error, Result};

/// An IP network: an address with no host bits set and a prefix length.
///
/// Parse with [`str::parse`] or [`Cidr::new`]; both reject host bits
/// (`10.16.0.5/16`) so that two spellings of one network cannot exist.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// The network `addr/prefix`; fails if the prefix is too long for the
    /// address family or `addr` has host bits set.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self> {
        let max = max_prefix(addr);
        let invalid = |reason: String| Error::InvalidCidr {
            input: format!("{addr}/{prefix}"),
            reason,
        };
        if prefix > max {
            return Err(invalid(format!(
                "prefix length {prefix} is longer than {max}"
            )));
        }
        let cidr = Self { addr, prefix };
        let network = cidr.network_address();
        if network != addr {
            return Err(invalid(format!(
                "host bits are set (the network is {network}/{prefix})"
            )));
        }
        Ok(cidr)
    }

    /// The network address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length in bits.
    pub fn prefix_len(&self) -> u8 {
        self.prefix
    }

    /// Whether this is an IPv4 network.
    pub fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }

    /// Whether this is an IPv6 network.
    pub fn is_ipv6(&self) -> bool {
        self.addr.is_ipv6()
    }

    /// Whether `ip` lies inside this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                let mask = mask(self.addr, self.prefix);
                bits(ip) & mask == bits(self.addr)
            }
            _ => false,
        }
    }

    /// Whether the two networks share at least one address (always false
    /// across address families).
    pub fn overlaps(&self, other: &Cidr) -> bool {
        if self.prefix <= other.prefix {
            self.contains(other.addr)
        } else {
            other.contains(self.addr)
        }
    }

    /// Parses a comma-separated list such as `10.0.0.0/16,fd00::/64`
    /// (spaces around items allowed; empty items are an error).
    pub fn parse_list(list: &str) -> Result<Vec<Cidr>> {
        list.split(',').map(|item| item.trim().parse()).collect()
    }

    fn network_address(&self) -> IpAddr {
        let masked = bits(self.addr) & mask(self.addr, self.prefix);
        match self.addr {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(masked as u32)),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(masked)),
        }
    }
}

/// The first pair `(a, b)` with `a` from `left` and `b` from `right` that
/// overlap, if any.
pub fn find_overlap(left: &[Cidr], right: &[Cidr]) -> Option<(Cidr, Cidr)> {
    left.iter()
        .find_map(|a| right.iter().find(|b| a.overlaps(b)).map(|b| (*a, *b)))
}

/// `Ok` if no CIDR of `left` overlaps one of `right`, else
/// [`Error::CidrOverlap`] naming the first such pair (`left`'s first).
pub fn check_disjoint(left: &[Cidr], right: &[Cidr]) -> Result<()> {
    match find_overlap(left, right) {
        Some((first, second)) => Err(Error::CidrOverlap { first, second }),
        None => Ok(()),
    }
}

/// `Ok` if no two CIDRs within `list` overlap, else [`Error::CidrOverlap`].
pub fn check_no_self_overlap(list: &[Cidr]) -> Result<()> {
    for (i, a) in list.iter().enumerate() {
        if let Some(b) = list[i + 1..].iter().find(|b| a.overlaps(b)) {
            return Err(Error::CidrOverlap {
                first: *a,
                second: *b,
            });
        }
    }
    Ok(())
}

fn max_prefix(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// The address as an integer, IPv4 in the low 32 bits.
fn bits(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// The netmask of `prefix` bits in `addr`'s family, in the same layout as [`bits`].
fn mask(addr: IpAddr, prefix: u8) -> u128 {
    let width = u32::from(max_prefix(addr));
    let host = width - u32::from(prefix);
    let low_bits = |n: u32| {
        if n >= 128 {
            u128::MAX
        } else {
            (1u128 << n) - 1
        }
    };
    low_bits(width) & !low_bits(host)
}

impl FromStr for Cidr {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidCidr {
            input: s.to_string(),
            reason: reason.to_string(),
        };
        if s.is_empty() {
            return Err(invalid("empty"));
        }
        let (addr, prefix) = s
            .split_once('/')
            .ok_or_else(|| invalid("missing /PREFIX (e.g. 10.16.0.0/16)"))?;
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| invalid("not an IPv4 or IPv6 address before '/'"))?;
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid("prefix length is not a number"));
        }
        let prefix: u8 = prefix
            .parse()
            .map_err(|_| invalid("prefix length is too large"))?;
        Cidr::new(addr, prefix).map_err(|e| match e {
            Error::InvalidCidr { reason, .. } => Error::InvalidCidr {
                input: s.to_string(),
                reason,
            },
            other => other,
        })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl fmt::Debug for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cidr({self})")
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, ser: S) -> std::result::Result<S::Ok, S::Error> {
        ser.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(de: D) -> std::result::Result<Self, D::Error> {
        let s = Cow::<'de, str>::deserialize(de)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for Cidr {
    fn schema_name() -> Cow<'static, str> {
        "Cidr".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "An IPv4 or IPv6 network in CIDR notation with no host bits set, e.g. 10.16.0.0/16.",
        })
    }
}

#[cfg(test)]
mod tests;
