//! `ferry-route-agent`: the per-node half of ferry's data plane (`ferry
//! route-agent`, a hostNetwork DaemonSet on every node).
//!
//! On every node it keeps `vx-ferry`, a VXLAN interface (VNI 7100, UDP 4799,
//! no learning, MAC derived from the node's address), and an nftables table
//! `ip ferry` that clamps TCP MSS to the route MTU for traffic to and from
//! remote clusters and keeps that traffic out of masquerade rules. On a node
//! that is not the active gateway it also points every remote cluster's CIDR
//! at the gateway: routes in table 7100 (rule priority 7100) `via <gateway>
//! dev vx-ferry onlink`, with a static fdb and neighbour entry for the
//! gateway so no ARP or learning is involved. On the gateway node itself
//! table 7100 stays empty: the gateway installs its cable routes (table 7101,
//! priority 7099).
//!
//! Host-network traffic (a node shell, kubelet probes, host-network pods)
//! to other clusters leaves from the node's address inside this cluster's
//! pod CIDR ([`plan::host_source`]: the CNI's address on the node, else the
//! first of its podCIDR), which the routes carry as `src`, `vx-ferry` holds
//! as a /32 and the Node's `ferry.dev/cni-iface-ip` annotation names; the
//! node IP is outside every cluster CIDR, so no other cluster would route
//! the replies back.
//!
//! The node plumbing that depends on the CNI (kube-ovn's `ovn0`, Calico's
//! IPPools) is [`cni`]'s, chosen by the `networkPlugin` of this cluster's
//! `Cluster`.
//!
//! Inputs, all watched ([`daemon`]): this cluster's `Endpoint` (the active
//! gateway's node name and underlay IP; replaced in place on failover), the
//! `Cluster` objects in the system namespace (remote CIDRs) and this node's
//! `Node` (its InternalIP and podCIDRs). Layers: [`plan`] (pure: inputs → desired state),
//! [`nft`] (pure: the ruleset), [`apply`] (kernel, through `ferry-net`) and
//! [`daemon`] (watches, reconcile loop, shutdown); [`metrics`] counts
//! what it programs.
//!
//! It is not the gateway (cables, health checks, HA) and does not route IPv6
//! yet; it never touches routes, rules or tables other than its own.
#![forbid(unsafe_code)]

pub mod apply;
pub mod cni;
pub mod daemon;
pub mod metrics;
pub mod nft;
pub mod plan;

pub use apply::{Applier, cleanup};
pub use daemon::{Config, Outcome, run};

/// Everything that can go wrong in the route agent.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A kernel operation failed (the message names the command).
    #[error(transparent)]
    Net(#[from] ferry_net::Error),
    /// The Kubernetes API refused or failed a request.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The Node object has no IPv4 InternalIP.
    #[error("node {0} has no IPv4 InternalIP in its status")]
    NoNodeIp(String),
    /// A blocking task panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(String),
    /// An apply came after the uninstall cleanup and was not done.
    #[error("the data plane was removed at uninstall; not applying")]
    Retired,
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
