//! The service proxy's nftables rules: DNAT from ClusterIP:port to ready
//! endpoints (random choice; with `sessionAffinity: ClientIP` the endpoint a
//! client last reached, as kube-proxy's nftables mode keeps it: one dynamic
//! set of client addresses per endpoint, with the affinity timeout), in a
//! table of the proxy's own per node, plus
//! masquerading of pod traffic to the host's bridge addresses (API servers, DNS)
//! and out of the node's WAN interface, and of hairpin service traffic.
//! Rendering is a pure function so it can be snapshot-tested.

use std::fmt::Write;
use std::net::Ipv4Addr;

use crate::plan::{POD_SPACE, Plan};

/// Packets from an endpoint to its own service (hairpin) carry this mark
/// and are masqueraded, so the reply does not come from the pod's own address.
pub const HAIRPIN_MARK: u32 = 0x4000;

/// One service port and the endpoints behind it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServicePort {
    /// `namespace/name:port-name`, for comments.
    pub id: String,
    pub cluster_ip: Ipv4Addr,
    /// `tcp` or `udp`.
    pub protocol: String,
    pub port: u16,
    /// Ready endpoints: address and target port.
    pub endpoints: Vec<(Ipv4Addr, u16)>,
    /// `sessionAffinity: ClientIP`: how long (seconds) a client stays with
    /// the endpoint it last reached.
    pub affinity_timeout: Option<u32>,
}

/// kube-proxy's default `sessionAffinityConfig.clientIP.timeoutSeconds`.
pub const DEFAULT_AFFINITY_TIMEOUT: u32 = 10_800;

/// The complete script that atomically replaces the node's table.
pub fn render(plan: &Plan, services: &[ServicePort]) -> String {
    let table = plan.nft_table();
    let mut s = String::new();
    // Declaring then deleting makes the first run succeed too; the whole
    // script is one transaction, so there is never a moment without rules.
    let _ = writeln!(s, "table ip {table}");
    let _ = writeln!(s, "delete table ip {table}");
    let _ = writeln!(s, "table ip {table} {{");
    let _ = writeln!(
        s,
        "\tchain prerouting {{\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n\t\tjump services\n\t}}"
    );
    let _ = writeln!(
        s,
        "\tchain output {{\n\t\ttype nat hook output priority -100; policy accept;\n\t\tjump services\n\t}}"
    );
    let _ = writeln!(
        s,
        "\tchain postrouting {{\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n\t\tip saddr {POD_SPACE} ip daddr {{ {} }} masquerade\n\t\tip saddr {POD_SPACE} oifname \"wan0\" masquerade\n\t\tmeta mark & {HAIRPIN_MARK:#x} == {HAIRPIN_MARK:#x} masquerade\n\t}}",
        std::iter::once(plan.host_ip())
            .chain(plan.other_host_ips())
            .map(|ip| ip.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut sorted: Vec<&ServicePort> = services.iter().collect();
    sorted.sort();
    let _ = writeln!(s, "\tchain services {{");
    for (i, sp) in sorted.iter().enumerate() {
        if sp.endpoints.is_empty() {
            continue;
        }
        let _ = writeln!(
            s,
            "\t\tip daddr {} {} dport {} jump svc{i} comment \"{}\"",
            sp.cluster_ip, sp.protocol, sp.port, sp.id
        );
    }
    let _ = writeln!(s, "\t}}");
    for (i, sp) in sorted.iter().enumerate() {
        if !sp.endpoints.is_empty() {
            render_service(&mut s, &format!("svc{i}"), sp);
        }
    }
    let _ = writeln!(s, "}}");
    s
}

/// The chains (and affinity sets) of one service port with endpoints.
fn render_service(s: &mut String, chain: &str, sp: &ServicePort) {
    let n = sp.endpoints.len();
    if let Some(timeout) = sp.affinity_timeout {
        for e in 0..n {
            let _ = writeln!(
                s,
                "\tset {chain}-ep{e}-affinity {{\n\t\ttype ipv4_addr\n\t\tflags dynamic,timeout\n\t\ttimeout {timeout}s\n\t}}"
            );
        }
    }
    let _ = writeln!(s, "\tchain {chain} {{");
    if sp.affinity_timeout.is_some() {
        for e in 0..n {
            let _ = writeln!(s, "\t\tip saddr @{chain}-ep{e}-affinity jump {chain}-ep{e}");
        }
    }
    if n == 1 {
        let _ = writeln!(s, "\t\tjump {chain}-ep0");
    } else {
        let arms: Vec<String> = (0..n)
            .map(|e| format!("{e} : jump {chain}-ep{e}"))
            .collect();
        let _ = writeln!(
            s,
            "\t\tnumgen random mod {n} vmap {{ {} }}",
            arms.join(", ")
        );
    }
    let _ = writeln!(s, "\t}}");
    for (e, (ip, port)) in sp.endpoints.iter().enumerate() {
        let _ = writeln!(s, "\tchain {chain}-ep{e} {{");
        if sp.affinity_timeout.is_some() {
            let _ = writeln!(s, "\t\tupdate @{chain}-ep{e}-affinity {{ ip saddr }}");
        }
        let _ = writeln!(
            s,
            "\t\tip saddr {ip} meta mark set mark | {HAIRPIN_MARK:#x}\n\t\tmeta l4proto {} dnat to {ip}:{port}\n\t}}",
            sp.protocol
        );
    }
}

/// Script that removes the table (ignored if absent).
pub fn render_delete(plan: &Plan) -> String {
    let table = plan.nft_table();
    format!("table ip {table}\ndelete table ip {table}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_snapshot() {
        let plan = Plan::new("east", 1, 2, None, None).unwrap();
        let services = vec![
            ServicePort {
                id: "nginx-test/nginx:http".into(),
                cluster_ip: Ipv4Addr::new(100, 97, 0, 10),
                protocol: "tcp".into(),
                port: 8080,
                endpoints: vec![
                    (Ipv4Addr::new(100, 65, 0, 2), 8080),
                    (Ipv4Addr::new(100, 65, 1, 2), 8080),
                ],
                affinity_timeout: None,
            },
            ServicePort {
                id: "nginx-test/derived-2d1d634929d607c5:http".into(),
                cluster_ip: Ipv4Addr::new(100, 97, 1, 1),
                protocol: "tcp".into(),
                port: 8080,
                endpoints: vec![
                    (Ipv4Addr::new(100, 98, 1, 1), 8080),
                    (Ipv4Addr::new(100, 99, 1, 1), 8080),
                ],
                affinity_timeout: Some(DEFAULT_AFFINITY_TIMEOUT),
            },
            ServicePort {
                id: "default/dns:dns".into(),
                cluster_ip: Ipv4Addr::new(100, 97, 0, 11),
                protocol: "udp".into(),
                port: 53,
                endpoints: vec![(Ipv4Addr::new(100, 65, 0, 3), 5353)],
                affinity_timeout: None,
            },
            ServicePort {
                id: "default/empty:".into(),
                cluster_ip: Ipv4Addr::new(100, 97, 0, 12),
                protocol: "tcp".into(),
                port: 80,
                endpoints: vec![],
                affinity_timeout: Some(60),
            },
        ];
        insta::assert_snapshot!(render(&plan, &services));
    }

    #[test]
    fn delete_snapshot() {
        let plan = Plan::new("east", 1, 2, None, None).unwrap();
        insta::assert_snapshot!(render_delete(&plan));
    }
}
