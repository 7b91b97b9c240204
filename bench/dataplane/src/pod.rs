//! A pod of a sandbox cluster as the measurements see it: where it runs,
//! its address and the network namespace its commands run in. Made by
//! `cluster`, used by `measure`.

use std::net::Ipv4Addr;

/// A pod: where it runs and its network namespace.
#[derive(Clone, Debug)]
pub struct Pod {
    pub name: String,
    pub node: String,
    pub ip: Ipv4Addr,
    pub netns: String,
}
