//! The crate's error type.

use ferry_api::Cidr;

/// What Globalnet refuses, with the numbers that make it so.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The pool or a block is not IPv4 (Globalnet is IPv4 only).
    #[error("{0} is not an IPv4 CIDR: Globalnet is IPv4 only")]
    NotIpv4(Cidr),
    /// The cluster size is not a power of two of at least 4.
    #[error(
        "cluster size {0} is not a power of two between 4 and 2^31 (a block is a CIDR: 256 is a /24, 65536 a /16)"
    )]
    BadClusterSize(u32),
    /// The pool is smaller than one cluster's block.
    #[error(
        "global CIDR range {range} has {have} addresses, fewer than one cluster's {size} (--globalnet-cluster-size)"
    )]
    PoolTooSmall {
        /// The pool.
        range: Cidr,
        /// Its size.
        have: u64,
        /// The cluster size asked.
        size: u32,
    },
    /// Every block of the pool is taken.
    #[error(
        "global CIDR range {range} is full: all {blocks} blocks of {size} addresses are taken (or overlap a cluster's CIDRs)"
    )]
    PoolExhausted {
        /// The pool.
        range: Cidr,
        /// Blocks in it.
        blocks: u64,
        /// Addresses per block.
        size: u32,
    },
    /// A global CIDR overlaps one of the cluster's own CIDRs.
    #[error("global CIDR {global} overlaps this cluster's CIDR {cidr}")]
    OverlapsClusterCidr {
        /// The global CIDR.
        global: Cidr,
        /// The cluster's CIDR it overlaps.
        cidr: Cidr,
    },
    /// A block is too small to hold the gateway and any other address.
    #[error("global CIDR {0} is too small: Globalnet needs at least a /30 per cluster")]
    BlockTooSmall(Cidr),
    /// An egress object asks for more addresses than allowed.
    #[error("numberOfIPs {asked} is over the limit of {max}")]
    TooManyIps {
        /// What was asked.
        asked: u32,
        /// The limit.
        max: u32,
    },
    /// The block has no run of free addresses that long.
    #[error("global CIDR {block} has no {asked} free contiguous addresses ({free} free in all)")]
    BlockExhausted {
        /// The cluster's block.
        block: Cidr,
        /// What was asked.
        asked: u32,
        /// Free addresses left.
        free: u64,
    },
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
