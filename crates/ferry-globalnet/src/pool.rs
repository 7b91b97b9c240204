//! The broker's global pool and one cluster's block of it.
//!
//! A [`Pool`] is cut into equal, aligned blocks of `cluster_size` addresses;
//! a cluster takes the first block no other cluster holds. Inside a
//! cluster's [`Block`] the first host address is the active gateway's (its
//! health-check address and the source of its own traffic); the egress pools
//! and ingress addresses are handed out from the rest, the network and
//! broadcast addresses never.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use ferry_api::Cidr;

use crate::{Error, Result};

/// The global pool clusters take their blocks from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pool {
    range: Cidr,
    cluster_size: u32,
}

/// `cidr`'s network address and size, if it is IPv4.
fn v4(cidr: &Cidr) -> Result<(u32, u64)> {
    match cidr.addr() {
        IpAddr::V4(a) => Ok((u32::from(a), 1u64 << (32 - u32::from(cidr.prefix_len())))),
        IpAddr::V6(_) => Err(Error::NotIpv4(*cidr)),
    }
}

impl Pool {
    /// The pool `range` cut into blocks of `cluster_size` addresses (a power
    /// of two from 4 up, no larger than the range).
    pub fn new(range: Cidr, cluster_size: u32) -> Result<Pool> {
        let (_, have) = v4(&range)?;
        if !cluster_size.is_power_of_two() || cluster_size < 4 {
            return Err(Error::BadClusterSize(cluster_size));
        }
        if u64::from(cluster_size) > have {
            return Err(Error::PoolTooSmall {
                range,
                have,
                size: cluster_size,
            });
        }
        Ok(Pool {
            range,
            cluster_size,
        })
    }

    /// The pool's range.
    pub fn range(&self) -> Cidr {
        self.range
    }

    /// Addresses per cluster.
    pub fn cluster_size(&self) -> u32 {
        self.cluster_size
    }

    /// How many blocks the pool holds.
    pub fn block_count(&self) -> u64 {
        let (_, have) = v4(&self.range).unwrap_or((0, 0));
        have / u64::from(self.cluster_size)
    }

    /// The `k`-th block.
    fn block(&self, k: u64) -> Option<Cidr> {
        let (base, _) = v4(&self.range).ok()?;
        let addr = u64::from(base) + k * u64::from(self.cluster_size);
        let prefix = 32 - self.cluster_size.trailing_zeros() as u8;
        Cidr::new(
            IpAddr::V4(Ipv4Addr::from(u32::try_from(addr).ok()?)),
            prefix,
        )
        .ok()
    }

    /// The first block overlapping none of `taken` (other clusters' blocks
    /// and every CIDR in use in the clusterset).
    pub fn first_free(&self, taken: &[Cidr]) -> Result<Cidr> {
        (0..self.block_count())
            .filter_map(|k| self.block(k))
            .find(|b| !taken.iter().any(|t| t.overlaps(b)))
            .ok_or(Error::PoolExhausted {
                range: self.range,
                blocks: self.block_count(),
                size: self.cluster_size,
            })
    }
}

/// Refuses a global CIDR that is not IPv4 or overlaps one of the cluster's
/// own pod and service CIDRs (its pods could not tell local from global).
pub fn check_global_cidr(global: &Cidr, cluster_cidrs: &[Cidr]) -> Result<()> {
    Block::new(*global)?;
    match cluster_cidrs.iter().find(|c| c.overlaps(global)) {
        Some(c) => Err(Error::OverlapsClusterCidr {
            global: *global,
            cidr: *c,
        }),
        None => Ok(()),
    }
}

/// One cluster's global CIDR and its address plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    cidr: Cidr,
    base: u32,
    size: u64,
}

impl Block {
    /// The plan of `cidr` (IPv4, at least a /30).
    pub fn new(cidr: Cidr) -> Result<Block> {
        let (base, size) = v4(&cidr)?;
        if size < 4 {
            return Err(Error::BlockTooSmall(cidr));
        }
        Ok(Block { cidr, base, size })
    }

    /// The block.
    pub fn cidr(&self) -> Cidr {
        self.cidr
    }

    /// The active gateway's global address: its health-check address and
    /// the source of the gateway node's own traffic to other clusters.
    pub fn gateway_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.base + 1)
    }

    /// Whether `ip` is one the block hands out (not network, broadcast or
    /// the gateway's).
    pub fn allocatable(&self, ip: Ipv4Addr) -> bool {
        let n = u64::from(u32::from(ip));
        let base = u64::from(self.base);
        n >= base + 2 && n < base + self.size - 1
    }

    /// The first run of `n` contiguous addresses none of which is in `used`
    /// (Submariner hands egress IPs out contiguously, so one `snat to A-B`
    /// covers them).
    pub fn allocate(&self, used: &BTreeSet<Ipv4Addr>, n: u32) -> Result<Vec<Ipv4Addr>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let first = u64::from(self.base) + 2;
        let end = u64::from(self.base) + self.size - 1;
        let mut run_start = first;
        let mut at = first;
        while at < end {
            let ip = Ipv4Addr::from(at as u32);
            if used.contains(&ip) {
                run_start = at + 1;
            } else if at + 1 - run_start == u64::from(n) {
                return Ok((run_start..=at).map(|a| Ipv4Addr::from(a as u32)).collect());
            }
            at += 1;
        }
        let in_block = used.iter().filter(|ip| self.allocatable(**ip)).count() as u64;
        Err(Error::BlockExhausted {
            block: self.cidr,
            asked: n,
            free: (end - first).saturating_sub(in_block),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn c(s: &str) -> Cidr {
        s.parse().unwrap()
    }
    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn blocks_are_handed_out_in_order_around_what_is_taken() {
        let pool = Pool::new(c("100.120.0.0/16"), 256).unwrap();
        assert_eq!(pool.block_count(), 256);
        assert_eq!(pool.first_free(&[]).unwrap(), c("100.120.0.0/24"));
        let taken = [c("100.120.0.0/24"), c("100.120.1.128/25")];
        assert_eq!(pool.first_free(&taken).unwrap(), c("100.120.2.0/24"));
    }

    #[test]
    fn a_full_or_too_small_pool_is_refused_with_its_numbers() {
        let pool = Pool::new(c("100.120.0.0/23"), 256).unwrap();
        let e = pool
            .first_free(&[c("100.120.0.0/24"), c("100.120.1.0/24")])
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "global CIDR range 100.120.0.0/23 is full: all 2 blocks of 256 addresses are taken (or overlap a cluster's CIDRs)"
        );
        let e = Pool::new(c("100.120.0.0/24"), 65536)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("has 256 addresses, fewer than one cluster's 65536"),
            "{e}"
        );
        assert!(Pool::new(c("100.120.0.0/16"), 300).is_err());
        assert!(Pool::new(c("fd00::/64"), 256).is_err());
    }

    #[test]
    fn a_global_cidr_may_not_overlap_the_clusters_own() {
        let own = [c("100.64.0.0/16"), c("100.96.0.0/16")];
        check_global_cidr(&c("100.120.0.0/24"), &own).unwrap();
        let e = check_global_cidr(&c("100.64.128.0/24"), &own)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "global CIDR 100.64.128.0/24 overlaps this cluster's CIDR 100.64.0.0/16"
        );
        assert!(check_global_cidr(&c("100.120.0.0/31"), &own).is_err());
    }

    #[test]
    fn addresses_skip_network_gateway_broadcast_and_used_ones() {
        let b = Block::new(c("100.120.1.0/24")).unwrap();
        assert_eq!(b.gateway_ip(), ip("100.120.1.1"));
        let mut used = BTreeSet::new();
        let first = b.allocate(&used, 8).unwrap();
        assert_eq!(first.first(), Some(&ip("100.120.1.2")));
        assert_eq!(first.last(), Some(&ip("100.120.1.9")));
        used.extend(first);
        used.insert(ip("100.120.1.11"));
        // A run of two must skip the hole at .10 (one free address).
        assert_eq!(
            b.allocate(&used, 2).unwrap(),
            vec![ip("100.120.1.12"), ip("100.120.1.13")]
        );
        assert_eq!(b.allocate(&used, 1).unwrap(), vec![ip("100.120.1.10")]);
        assert!(!b.allocatable(ip("100.120.1.255")));
        assert!(!b.allocatable(ip("100.120.1.1")));
    }

    #[test]
    fn an_exhausted_block_says_how_much_is_free() {
        let b = Block::new(c("100.120.1.0/29")).unwrap();
        // .2 to .6 are allocatable: five addresses.
        let used: BTreeSet<Ipv4Addr> = [ip("100.120.1.4")].into();
        let e = b.allocate(&used, 3).unwrap_err().to_string();
        assert_eq!(
            e,
            "global CIDR 100.120.1.0/29 has no 3 free contiguous addresses (4 free in all)"
        );
        assert_eq!(b.allocate(&used, 2).unwrap().len(), 2);
    }
}
