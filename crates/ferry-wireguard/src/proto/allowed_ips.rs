//! IP prefixes and the allowed-IPs table: longest-prefix match from a destination
//! (outbound) or source (inbound) address to a peer.

use crate::Error;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An IP prefix such as `100.64.0.0/10`. Host bits are cleared on parse.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// A prefix; host bits are masked off. Fails if `prefix` is too long.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self, Error> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(Error::Config(format!(
                "prefix /{prefix} too long for {addr}"
            )));
        }
        Ok(Self {
            addr: mask(addr, prefix),
            prefix,
        })
    }
    /// The network address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }
    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }
    /// Whether `ip` lies inside this prefix.
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.prefix) == self.addr
    }
}

fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let m = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((u32::from(a) & m).into())
        }
        IpAddr::V6(a) => {
            let m = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((u128::from(a) & m).into())
        }
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl fmt::Debug for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for IpNet {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let s = s.trim();
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .parse()
            .map_err(|_| Error::Config(format!("bad IP address {a:?}")))?;
        let prefix = match p {
            Some(p) => p
                .parse()
                .map_err(|_| Error::Config(format!("bad prefix length {p:?}")))?,
            None if addr.is_ipv4() => 32,
            None => 128,
        };
        Self::new(addr, prefix)
    }
}

/// Longest-prefix-match table. Small (one entry per remote CIDR), so a sorted vector
/// beats a trie here; entries are kept longest prefix first.
#[derive(Clone, Debug)]
pub struct AllowedIps<T> {
    entries: Vec<(IpNet, T)>,
}

impl<T> Default for AllowedIps<T> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
        }
    }
}

impl<T: Clone> AllowedIps<T> {
    /// Insert or replace the owner of `net`.
    pub fn insert(&mut self, net: IpNet, value: T) {
        self.entries.retain(|(n, _)| *n != net);
        let pos = self
            .entries
            .iter()
            .position(|(n, _)| n.prefix < net.prefix)
            .unwrap_or(self.entries.len());
        self.entries.insert(pos, (net, value));
    }
    /// Remove every entry whose value matches.
    pub fn remove_where(&mut self, mut f: impl FnMut(&T) -> bool) {
        self.entries.retain(|(_, v)| !f(v));
    }
    /// The owner of the longest prefix containing `ip`.
    pub fn lookup(&self, ip: IpAddr) -> Option<&T> {
        self.entries
            .iter()
            .find(|(n, _)| n.contains(ip))
            .map(|(_, v)| v)
    }
    /// All entries, longest prefix first.
    pub fn iter(&self) -> impl Iterator<Item = &(IpNet, T)> {
        self.entries.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_mask() {
        let n: IpNet = "100.64.1.7/16".parse().unwrap();
        assert_eq!(n.to_string(), "100.64.0.0/16");
        assert!(n.contains("100.64.200.1".parse().unwrap()));
        assert!(!n.contains("100.65.0.1".parse().unwrap()));
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("198.18.0.1".parse().unwrap()));
        assert!(!all.contains("::1".parse().unwrap()));
        let h: IpNet = "fd00::1".parse().unwrap();
        assert_eq!(h.prefix(), 128);
        assert!("1.2.3.4/33".parse::<IpNet>().is_err());
        assert!("x/3".parse::<IpNet>().is_err());
    }

    #[test]
    fn longest_prefix_wins() {
        let mut t = AllowedIps::default();
        t.insert("100.64.0.0/10".parse().unwrap(), 1);
        t.insert("100.64.5.0/24".parse().unwrap(), 2);
        t.insert("0.0.0.0/0".parse().unwrap(), 3);
        assert_eq!(t.lookup("100.64.5.9".parse().unwrap()), Some(&2));
        assert_eq!(t.lookup("100.64.6.9".parse().unwrap()), Some(&1));
        assert_eq!(t.lookup("198.18.0.1".parse().unwrap()), Some(&3));
        t.remove_where(|v| *v == 3);
        assert_eq!(t.lookup("198.18.0.1".parse().unwrap()), None);
        t.insert("100.64.5.0/24".parse().unwrap(), 4);
        assert_eq!(t.lookup("100.64.5.9".parse().unwrap()), Some(&4));
    }
}
