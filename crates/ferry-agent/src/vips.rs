//! Clusterset IP allocation: each importing cluster's agent gives every
//! imported ClusterSetIP service a VIP from the clusterset-IP range
//! (`deploy-broker --clusterset-ip-cidr`), kept in the ServiceImport's `ips`.
//!
//! Why per importing cluster, with no coordination: the VIP never leaves the
//! cluster — the service proxy on the client's node turns it into one remote
//! endpoint before the packet is routed — so it only has to be unique among
//! the cluster's own imports, and one agent is the only writer of those.
//! Nothing waits for the broker or another cluster, a broker outage stops no
//! allocation, and "never two services with one VIP" holds by construction.
//! Each service's first choice is a hash of `namespace/name` (probing on from
//! there when taken), so the same service usually gets the same VIP in every
//! cluster, which keeps debugging simple but is not relied on.
//!
//! This module is the allocator's state only (IPv4); the agent feeds it the
//! VIPs its imports already carry before it allocates new ones.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use ferry_api::Cidr;

/// Why no VIP could be given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VipError {
    /// Every address of the range is taken.
    Exhausted(Cidr),
    /// The range is not IPv4 (clusterset IPs are IPv4 for now).
    NotIpv4(Cidr),
}

impl std::fmt::Display for VipError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VipError::Exhausted(c) => write!(f, "the clusterset IP range {c} is exhausted"),
            VipError::NotIpv4(c) => write!(f, "the clusterset IP range {c} is not IPv4"),
        }
    }
}

type Svc = (Box<str>, Box<str>);

/// The VIPs given in one cluster, both ways.
#[derive(Debug, Default)]
pub struct VipAllocator {
    cidr: Option<Cidr>,
    by_ip: HashMap<Ipv4Addr, Svc>,
    by_svc: HashMap<Svc, Ipv4Addr>,
}

fn key(ns: &str, svc: &str) -> Svc {
    (ns.into(), svc.into())
}

/// FNV-1a: a hash that stays the same across Rust releases (the first
/// choice of a service's VIP must not move with the toolchain).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl VipAllocator {
    /// An allocator over `cidr`; `None`: clusterset IPs are off.
    pub fn new(cidr: Option<Cidr>) -> Self {
        VipAllocator {
            cidr,
            ..Default::default()
        }
    }

    /// The range, when clusterset IPs are on.
    pub fn cidr(&self) -> Option<Cidr> {
        self.cidr
    }

    /// The usable addresses of the range: first and count (the network and
    /// broadcast addresses left out, as on any subnet).
    fn span(cidr: Cidr) -> Result<(u32, u32), VipError> {
        let IpAddr::V4(addr) = cidr.addr() else {
            return Err(VipError::NotIpv4(cidr));
        };
        let host_bits = 32 - u32::from(cidr.prefix_len());
        let size: u64 = 1 << host_bits;
        let base = u32::from(addr) & !((size - 1) as u32);
        if size <= 2 {
            return Ok((base, size as u32));
        }
        Ok((base + 1, (size - 2) as u32))
    }

    /// Records that `ns/svc`'s import carries `ip` (or none): kept when it
    /// is in the range and no other service holds it; anything else this
    /// service held is released.
    pub fn observe(&mut self, ns: &str, svc: &str, ip: Option<&str>) {
        let k = key(ns, svc);
        let ip: Option<Ipv4Addr> = ip.and_then(|s| s.parse().ok());
        let in_range = |ip: &Ipv4Addr| self.cidr.is_some_and(|c| c.contains(IpAddr::V4(*ip)));
        match ip.filter(in_range) {
            Some(ip) => {
                if self.by_svc.get(&k) == Some(&ip) {
                    return;
                }
                if self.by_ip.get(&ip).is_some_and(|owner| *owner != k) {
                    return; // another service's: this one gets a new VIP
                }
                self.release(ns, svc);
                self.by_ip.insert(ip, k.clone());
                self.by_svc.insert(k, ip);
            }
            None => self.release(ns, svc),
        }
    }

    /// Frees `ns/svc`'s VIP.
    pub fn release(&mut self, ns: &str, svc: &str) {
        if let Some(ip) = self.by_svc.remove(&key(ns, svc)) {
            self.by_ip.remove(&ip);
        }
    }

    /// Forgets every VIP (before the imports are listed again).
    pub fn clear(&mut self) {
        self.by_ip.clear();
        self.by_svc.clear();
    }

    /// `ns/svc`'s VIP: the one it has, else a new one. `Ok(None)` when
    /// clusterset IPs are off.
    pub fn allocate(&mut self, ns: &str, svc: &str) -> Result<Option<Ipv4Addr>, VipError> {
        let Some(cidr) = self.cidr else {
            return Ok(None);
        };
        let k = key(ns, svc);
        if let Some(ip) = self.by_svc.get(&k) {
            return Ok(Some(*ip));
        }
        let (first, count) = Self::span(cidr)?;
        if self.by_ip.len() as u64 >= u64::from(count) {
            return Err(VipError::Exhausted(cidr));
        }
        let start = (fnv1a(format!("{ns}/{svc}").as_bytes()) % u64::from(count)) as u32;
        for i in 0..count {
            let offset = (u64::from(start) + u64::from(i)) % u64::from(count);
            let ip = Ipv4Addr::from(first + offset as u32);
            if let std::collections::hash_map::Entry::Vacant(free) = self.by_ip.entry(ip) {
                free.insert(k.clone());
                self.by_svc.insert(k, ip);
                return Ok(Some(ip));
            }
        }
        Err(VipError::Exhausted(cidr))
    }
}

/// The name of the selector-less Service that carries `ns/svc`'s VIP in an
/// importing cluster (`derived-` and a hash, as the mcs-api controller
/// names them: the imported name may be up to 63 characters already).
pub fn derived_service_name(ns: &str, svc: &str) -> String {
    format!("derived-{:016x}", fnv1a(format!("{ns}/{svc}").as_bytes()))
}

#[cfg(test)]
mod tests;
