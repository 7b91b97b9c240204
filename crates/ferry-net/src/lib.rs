//! `ferry-net`: ferry's Linux network plumbing, shared by the gateway and the
//! route agent.
//!
//! It runs the iproute2 and nftables commands (`ip`, `bridge`, `nft`,
//! `sysctl`) and parses their JSON output: the `vx-ferry` VXLAN interface,
//! static fdb and neighbour entries, routes in ferry's own tables, policy
//! rules, addresses, link facts, nftables scripts and sysctls. Every function
//! is blocking (async callers use `spawn_blocking`) and takes an optional
//! network namespace name: `None` means the namespace the process runs in
//! (daemons run in the node's namespace), `Some(ns)` a named namespace under
//! `/run/netns` (tests, the sandbox). A failing command becomes an
//! [`Error::Command`] naming the exact command line and its stderr.
//!
//! It is not a netlink library and holds no state: no caches, no watchers, no
//! policy. What to install and when is the callers' business
//! (`ferry-route-agent`, `ferry-gateway`); the constants below are the only
//! shared agreement (interface, VNI, port, tables, rule priorities, nftables
//! table). IPv4 only for routes and neighbours for now.
//!
//! [`testing`] has a network-namespace guard for root-only tests.
#![forbid(unsafe_code)]

mod cmd;
mod error;
mod link;
mod mac;
mod neigh;
mod route;
pub mod testing;

use std::net::Ipv4Addr;

pub use cmd::{bridge, ip, ip_batch, netns_exec, nft, nft_apply, run, sysctl_get, sysctl_set};
pub use error::{Error, Result};
pub use link::{
    IfAddr, Vxlan, add_addr, attached_networks, delete_addr, delete_link, ensure_vxlan,
    interface_of, link_exists, link_mtu, link_up, list_addrs, local_ipv4_addresses,
};
pub use mac::{Mac, format_mac, parse_mac, vtep_mac};
pub use neigh::{
    FdbEntry, NeighEntry, delete_fdb, delete_neigh, ensure_fdb, ensure_neigh, list_fdb, list_neigh,
};
pub use route::{
    Route, delete_route, delete_rule, ensure_rule, flush_table, list_routes, replace_route,
    route_batch, rule_exists,
};

/// Name of the VXLAN interface between a cluster's nodes and its active gateway.
pub const VX_FERRY: &str = "vx-ferry";
/// VXLAN network identifier of [`VX_FERRY`].
pub const VX_FERRY_VNI: u32 = 7100;
/// UDP destination port of [`VX_FERRY`] (Submariner's `vx-submariner` uses 4800).
pub const VX_FERRY_PORT: u16 = 4799;
/// A host-scoped /32 address on `vx-ferry`. Reverse-path filtering
/// (`rp_filter` 1 or 2) drops every packet arriving on an interface that has
/// no IPv4 address unless the route back to its source uses that same
/// interface, and the effective setting is the maximum of `all` and the
/// interface's, so a node with `all.rp_filter=1` would drop everything
/// arriving on an unnumbered `vx-ferry`. Any address fixes that; one from
/// 127/8 with scope host is never chosen as a source, never routed and never
/// collides with a network.
pub const VX_FERRY_HOST_ADDR: Ipv4Addr = Ipv4Addr::new(127, 0, 71, 1);
/// Bytes a VXLAN-over-IPv4 header adds: outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14.
pub const VXLAN_OVERHEAD: u32 = 50;
/// Routing table of the route agent: remote CIDRs through `vx-ferry` to the gateway.
pub const ROUTE_AGENT_TABLE: u32 = 7100;
/// Priority of the rule `lookup ROUTE_AGENT_TABLE`.
pub const ROUTE_AGENT_RULE_PRIORITY: u32 = 7100;
/// Routing table of the gateway: remote CIDRs into the cables.
pub const GATEWAY_TABLE: u32 = 7101;
/// Priority of the rule `lookup GATEWAY_TABLE`; lower than the route agent's,
/// so on the gateway node the cable routes win.
pub const GATEWAY_RULE_PRIORITY: u32 = 7099;
/// nftables table (family `ip`) of the route agent.
pub const NFT_TABLE: &str = "ferry";
