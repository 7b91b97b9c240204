//! `ferry-gateway` is the data-plane engine that runs on a cluster's gateway
//! nodes (`ferry gateway`, a DaemonSet on nodes labelled `ferry.dev/gateway=true`):
//! it elects one active gateway per cluster through a Lease renewed every
//! few seconds, with the gateway nodes probing each other directly for a
//! sub-second failover ([`peer`]), publishes that gateway's `Endpoint` (addresses, subnets, cable
//! driver, WireGuard public key, health-check address), holds one cable to
//! every remote cluster's active gateway, health-checks each cable through
//! the tunnel every 100 ms and reports HA role, connection state and RTT in
//! the node's `Gateway` status.
//!
//! It is *not* the WireGuard implementation (`ferry-wireguard`), the Linux
//! plumbing (`ferry-net`), nor the routing on the other nodes
//! (`ferry-route-agent`). On the gateway node it owns routing table
//! [`ferry_net::GATEWAY_TABLE`] (remote subnets into the cable) and the cable
//! devices `ferry-wg` / `ferry-vxc`; everything it creates is removed when it
//! stops or loses the lease. Private keys stay in a 0600 file on the node.
//!
//! Before cabling a remote gateway it runs NAT discovery (UDP 4490, as
//! Submariner): the address that answers is used, and a remote behind a NAT
//! that only reaches us opens the cable from its side.
//!
//! With Globalnet ([`globalnet`]) the active gateway also translates
//! between the cluster's own and its global addresses (nftables table
//! `ferry-globalnet`), following the agent's `ClusterGlobalEgressIP` and
//! `GlobalIngressIP` objects.
//!
//! Layout: pure logic in [`health`], [`lease`]'s `Observer`, [`peer`],
//! [`nat_discovery`] and [`remote`]; I/O in `cable` (devices, routes),
//! `prober` (the health-check socket), [`peer_prober`] (the peer-probe socket), `nat_prober` (the NAT discovery socket),
//! `publish` (API writes) and `engine` (the event loop); [`metrics`] is what
//! it reports to Prometheus, [`traffic`] the cable bytes its status reports.
#![forbid(unsafe_code)]

pub mod cable;
pub mod config;
mod engine;
mod error;
pub mod globalnet;
pub mod health;
pub mod lease;
pub mod metrics;
pub mod nat_discovery;
mod nat_prober;
pub mod node_settings;
pub mod peer;
pub mod peer_prober;
pub mod peers;
mod prober;
mod publish;
pub mod remote;
pub mod traffic;

pub use config::{GatewayConfig, Settings, load_or_create_key, resolve};
pub use engine::{LEASE_NAME, report_failure, run};
pub use error::{Error, Result};

/// A clock-seeded random number (std's per-process random hash keys over
/// the time in ns): for request numbers and probe ids that only need to
/// differ from an earlier process's, never for secrets.
pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.finish()
}
