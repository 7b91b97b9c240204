//! The NAT router in front of a cluster created with `--nat`: a namespace on
//! the cluster bridge (the nodes' way to the WAN) and on the WAN bridge (the
//! cluster's one public address), with nftables source NAT that rewrites
//! ports at random (`fully-random`, as a cloud NAT), replies matched by
//! connection tracking, and nothing inbound unless it answers a flow from
//! inside — or, in `port-forward` mode, is for the gateway ports forwarded to
//! node 0. `block-udp` drops every UDP datagram. Rendering is pure and
//! snapshot-tested; [`create`] does the plumbing.

use std::fmt::Write;

use ferry_api::ports::{DEFAULT_CABLE_PORT, NAT_DISCOVERY_PORT, VXLAN_CABLE_PORT};

use crate::cmd::{ip, ip_batch, netns_exec, nft_apply};
use crate::plan::{NatMode, Plan};
use crate::{Error, Result};

/// The router's table.
pub const TABLE: &str = "ferry-sbx-nat";

/// UDP ports `port-forward` sends to node 0: NAT discovery and both cables.
pub const FORWARDED_UDP_PORTS: [u16; 3] =
    [NAT_DISCOVERY_PORT, DEFAULT_CABLE_PORT, VXLAN_CABLE_PORT];

/// The router's nftables script for `mode`.
pub fn render(plan: &Plan, mode: NatMode) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "table ip {TABLE}");
    let _ = writeln!(s, "delete table ip {TABLE}");
    let _ = writeln!(s, "table ip {TABLE} {{");
    let ports = FORWARDED_UDP_PORTS.map(|p| p.to_string()).join(", ");
    let _ = writeln!(
        s,
        "\tchain prerouting {{\n\t\ttype nat hook prerouting priority dstnat; policy accept;"
    );
    if mode == NatMode::PortForward {
        let _ = writeln!(
            s,
            "\t\tiifname \"wan0\" ip daddr {} udp dport {{ {ports} }} dnat to {}",
            plan.router_wan_ip(),
            plan.node_ip(0)
        );
    }
    let _ = writeln!(s, "\t}}");
    let _ = writeln!(
        s,
        "\tchain postrouting {{\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n\t\toifname \"wan0\" masquerade fully-random\n\t}}"
    );
    let _ = writeln!(
        s,
        "\tchain forward {{\n\t\ttype filter hook forward priority filter; policy drop;"
    );
    if mode == NatMode::BlockUdp {
        let _ = writeln!(s, "\t\tmeta l4proto udp drop");
    }
    let _ = writeln!(s, "\t\tct state established,related accept");
    let _ = writeln!(s, "\t\tiifname \"lan0\" oifname \"wan0\" accept");
    if mode == NatMode::PortForward {
        let _ = writeln!(
            s,
            "\t\tiifname \"wan0\" oifname \"lan0\" ct status dnat accept"
        );
    }
    let _ = writeln!(s, "\t}}");
    // Silence, not "port unreachable", for what nobody inside asked for.
    let _ = writeln!(
        s,
        "\tchain input {{\n\t\ttype filter hook input priority filter; policy accept;\n\t\tiifname \"wan0\" ct state established,related accept\n\t\tiifname \"wan0\" drop\n\t}}"
    );
    let _ = writeln!(s, "}}");
    s
}

/// Creates the router namespace with its two veths, addresses and rules.
pub fn create(plan: &Plan, mode: NatMode) -> Result<()> {
    let ns = plan.router_netns();
    let (lan, wan) = plan.router_veths();
    ip(&["netns", "add", &ns])?;
    ip_batch(
        None,
        &[
            format!("link add {lan} type veth peer name lan0 netns {ns}"),
            format!("link set {lan} master {} up", plan.bridge()),
            format!("link add {wan} type veth peer name wan0 netns {ns}"),
            format!("link set {wan} master {} up", crate::plan::WAN_BRIDGE),
        ],
    )?;
    ip_batch(
        Some(&ns),
        &[
            "link set lo up".to_string(),
            format!("addr add {}/24 dev lan0", plan.router_lan_ip()),
            "link set lan0 up".to_string(),
            format!(
                "addr add {}/{} dev wan0",
                plan.router_wan_ip(),
                plan.wan_cidr().prefix
            ),
            "link set wan0 up".to_string(),
        ],
    )?;
    netns_exec(&ns, &["sysctl", "-qw", "net.ipv4.ip_forward=1"], None)?;
    nft_apply(&ns, &render(plan, mode)).map_err(|e| match e {
        Error::Command { command, message } => Error::Command {
            command,
            message: format!("{message} (the NAT router needs nftables NAT: nf_nat, nft_masq)"),
        },
        e => e,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        let mut p = Plan::new("east", 3, 2, None, None).unwrap();
        p.nat = Some(NatMode::Masquerade);
        p
    }

    #[test]
    fn masquerade_rules_snapshot() {
        insta::assert_snapshot!(render(&plan(), NatMode::Masquerade));
    }

    #[test]
    fn port_forward_rules_snapshot() {
        insta::assert_snapshot!(render(&plan(), NatMode::PortForward));
    }

    #[test]
    fn block_udp_rules_snapshot() {
        insta::assert_snapshot!(render(&plan(), NatMode::BlockUdp));
    }
}
