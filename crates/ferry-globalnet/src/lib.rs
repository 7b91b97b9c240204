//! `ferry-globalnet`: Globalnet's logic without I/O. Globalnet lets clusters
//! whose pod and service CIDRs overlap reach each other through *global*
//! addresses: each cluster takes a block of the broker's pool ([`Pool`]),
//! hands out egress and ingress addresses inside it ([`Block`]), and its
//! active gateway translates between local and global addresses with the
//! nftables table [`rules::render`] writes.
//!
//! It is not the code that watches the API or runs `nft` (the agent
//! allocates, `ferry-gateway` applies the rules) nor the API types
//! (`ferry_api::globalnet`).
#![forbid(unsafe_code)]

mod error;
mod pool;
pub mod rules;

pub use error::{Error, Result};
pub use pool::{Block, Pool, check_global_cidr};
pub use rules::{EgressRule, Translation};
