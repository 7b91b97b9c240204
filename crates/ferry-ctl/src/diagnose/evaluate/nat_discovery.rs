//! The `nat-discovery` check: what the active gateway's own NAT discovery
//! probes (UDP 4490, sent and answered by the gateways themselves) found
//! towards each remote cluster, and whether the cable can work with it.

use ferry_api::{CableDriver, ConnectionStatus, NatDiscoveryResult};

use super::common::*;
use crate::check::{Line, Status};
use crate::cluster::Facts;
use crate::diagnose::checks::Check;

const BLOCKED_HINT: &str = "let UDP 4490 (NAT discovery) and the cable port (4500 wireguard and ipsec, 4800 \
     vxlan) pass between the gateways; with NAT on both sides, join one cluster with \
     --preferred-server and forward those ports to its gateway";

/// `nat-discovery`: one line per remote cluster.
pub fn nat_discovery(f: &Facts) -> Vec<Line> {
    let name = Check::NatDiscovery.name();
    let id = f.id();
    let remotes = match remotes_or_skip(f, name) {
        Ok(r) => r,
        Err(skip) => return skip,
    };
    let Some(gw) = f.active_gateway() else {
        return vec![Line::with(
            name,
            Status::Fail,
            format!("{id}: no gateway of this cluster is active, so nothing probes"),
            "label a node ferry.dev/gateway=true (`ferry diagnose deployment` says more)",
        )];
    };
    let node = &gw.spec.hostname;
    remotes
        .iter()
        .map(|r| {
            let subject = format!("{id} → {r}");
            let Some(c) = f.connection_to(r) else {
                return Line::with(
                    name,
                    Status::Fail,
                    format!("{subject}: gateway {node} has no connection to {r}"),
                    "is the remote's Endpoint on the broker? (`ferry show endpoints`)",
                );
            };
            let Some(nd) = &c.nat_discovery else {
                return Line::with(
                    name,
                    Status::Warn,
                    format!("{subject}: gateway {node} reports no NAT discovery"),
                    "its ferry predates NAT discovery; upgrade the gateways",
                );
            };
            let using = c
                .using_ip
                .map(|ip| {
                    format!(
                        "; cable to {ip}, NAT {}",
                        if c.using_nat { "yes" } else { "no" }
                    )
                })
                .unwrap_or_default();
            let text = format!("{subject}: {}{using}", nd.message);
            match nd.result {
                NatDiscoveryResult::Probing => Line::with(
                    name,
                    Status::Warn,
                    text,
                    "discovery is still running; re-run in a few seconds",
                ),
                NatDiscoveryResult::Unreachable => {
                    Line::with(name, Status::Fail, text, BLOCKED_HINT)
                }
                NatDiscoveryResult::InboundOnly
                    if c.cable_driver == CableDriver::Vxlan
                        || c.status == ConnectionStatus::Error =>
                {
                    Line::with(
                        name,
                        Status::Fail,
                        format!("{text}; {}", c.status_message),
                        "VXLAN cannot cross a NAT: use --cable-driver wireguard, or forward \
                         UDP 4490 and 4800 to the gateway behind the NAT",
                    )
                }
                _ if c.status == ConnectionStatus::Error => Line::with(
                    name,
                    Status::Fail,
                    format!("{text}; but the cable is in error: {}", c.status_message),
                    "`ferry diagnose connections firewall` shows where packets stop",
                ),
                _ => Line::pass(name, text),
            }
        })
        .collect()
}
