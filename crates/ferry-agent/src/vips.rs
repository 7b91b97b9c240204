//! ClusterSet IPs: what an importing cluster answers and routes for an
//! imported ClusterSetIP service is the ClusterIP of a selector-less
//! "derived" Service (`derived-<hash>`) that the agent writes next to the
//! ServiceImport, **allocated by the importing cluster's own API server
//! from its service range** and then copied into the ServiceImport's `ips`
//! — as the mcs-api reference controller does it.
//!
//! Why not a range of the broker's: a real kube-apiserver refuses a
//! ClusterIP outside its service range (`--service-cluster-ip-range`, or a
//! `ServiceCIDR` object on 1.33+), and a ClusterIP is what every service
//! proxy (kube-proxy iptables/IPVS/nftables, Cilium) already routes. So the
//! address is always one the cluster accepts, unique there by the API
//! server's own allocator (never two services with one VIP), and it never
//! leaves the cluster — the client's node turns it into a remote endpoint —
//! so it needs no coordination with other clusters and no overlap check
//! against their CIDRs. The price: the same service usually has a
//! different ClusterSet IP in each importing cluster (MCS allows that).
//!
//! This module names the derived Service and reads its address; the import
//! reconciler writes it.

use std::net::Ipv4Addr;

/// FNV-1a: a hash that stays the same across Rust releases (a derived
/// Service's name must not move with the toolchain).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// How every derived Service's name starts.
pub(crate) const DERIVED_PREFIX: &str = "derived-";

/// The name of the selector-less Service that carries `ns/svc`'s VIP in an
/// importing cluster (`derived-` and a hash, as the mcs-api controller
/// names them: the imported name may be up to 63 characters already).
pub fn derived_service_name(ns: &str, svc: &str) -> String {
    format!(
        "{DERIVED_PREFIX}{:016x}",
        fnv1a(format!("{ns}/{svc}").as_bytes())
    )
}

/// The ClusterSet IP a derived Service carries: its allocated IPv4
/// ClusterIP (`None` until the API server has given one, and for `None`,
/// the headless value).
pub fn clusterset_ip(cluster_ip: Option<&str>) -> Option<Ipv4Addr> {
    cluster_ip.and_then(|ip| ip.parse().ok())
}

#[cfg(test)]
mod tests;
