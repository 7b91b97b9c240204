//! The active gateway's nftables table [`TABLE`]: Globalnet's translation,
//! rendered as one `nft -f` transaction (pure, snapshot-tested).
//!
//! - Egress (`egress`, nat postrouting, priority 80 = srcnat − 20): a new
//!   connection leaving through the cable gets the source of the first
//!   [`EgressRule`] whose sources contain it (most specific first: pod
//!   selector, namespace, cluster), unless its source is already one of the
//!   cluster's global addresses (the gateway's own). It runs before the route
//!   agent's identity SNAT (srcnat − 10), which then leaves it alone: the
//!   first NAT binding wins. Host-network traffic leaves the other nodes from
//!   their pod-CIDR address, so it is translated too.
//! - Ingress (`ingress`, filter prerouting, priority raw): a packet from the
//!   cable to a global ingress IP is readdressed, statelessly and before
//!   connection tracking sees it, to its target — the Service's cluster IP
//!   or the pod's IP. Connection tracking and the cluster's own service proxy
//!   (kube-proxy in any mode, or another) then take it as traffic to the
//!   Service: no `externalIPs` Service, no dependence on the proxy's mode.
//! - `ingress-reply` (filter postrouting, priority 110, after the proxy's
//!   reply translation at 100): a reply leaving through the cable from a
//!   target gets the global address back as its source.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::net::Ipv4Addr;

use ferry_api::Cidr;

/// The table's name (family `ip`).
pub const TABLE: &str = "ferry-globalnet";

/// Where one set of sources leaves from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EgressRule {
    /// Which object asked for it (`ClusterGlobalEgressIP cluster-egress.ferry.dev`),
    /// as the rule's comment.
    pub owner: String,
    /// Sources it applies to: pod addresses as /32s, or the cluster's CIDRs.
    pub sources: Vec<Cidr>,
    /// Its global IPs (contiguous, as the agent allocates them).
    pub ips: Vec<Ipv4Addr>,
}

/// What the gateway translates.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Translation {
    /// The cable device: only traffic through it is translated.
    pub cable: String,
    /// This cluster's global CIDRs (sources there are never translated).
    pub global_cidrs: Vec<Cidr>,
    /// Egress rules, most specific first.
    pub egress: Vec<EgressRule>,
    /// Global ingress IP → its target.
    pub ingress: BTreeMap<Ipv4Addr, Ipv4Addr>,
}

fn elements<T: ToString>(items: impl IntoIterator<Item = T>) -> String {
    items
        .into_iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `a-b` for a run of addresses, `a` for one.
fn range(ips: &[Ipv4Addr]) -> Option<String> {
    let first = ips.iter().min()?;
    let last = ips.iter().max()?;
    Some(if first == last {
        first.to_string()
    } else {
        format!("{first}-{last}")
    })
}

fn map(out: &mut String, name: &str, comment: &str, pairs: &[(Ipv4Addr, Ipv4Addr)]) {
    let _ = writeln!(out, "\t# {comment}");
    let _ = writeln!(out, "\tmap {name} {{");
    out.push_str("\t\ttype ipv4_addr : ipv4_addr\n");
    if !pairs.is_empty() {
        let items = pairs.iter().map(|(k, v)| format!("{k} : {v}"));
        let _ = writeln!(out, "\t\telements = {{ {} }}", elements(items));
    }
    out.push_str("\t}\n");
}

/// The table definition.
pub fn render(t: &Translation) -> String {
    let cable = &t.cable;
    let mut out = String::new();
    let _ = writeln!(out, "table ip {TABLE} {{");
    let forward: Vec<(Ipv4Addr, Ipv4Addr)> = t.ingress.iter().map(|(g, t)| (*g, *t)).collect();
    // Two global IPs never share a target; if they did, replies take the first.
    let mut seen = BTreeSet::new();
    let mut reverse: Vec<(Ipv4Addr, Ipv4Addr)> = forward
        .iter()
        .filter(|(_, target)| seen.insert(*target))
        .map(|(g, target)| (*target, *g))
        .collect();
    reverse.sort();
    map(
        &mut out,
        "ingress",
        "global ingress IP : its target",
        &forward,
    );
    map(
        &mut out,
        "ingress-reply",
        "target : its global ingress IP",
        &reverse,
    );
    let _ = writeln!(
        out,
        "\tchain ingress {{\n\t\ttype filter hook prerouting priority raw; policy accept;\n\t\tiifname \"{cable}\" ip daddr set ip daddr map @ingress\n\t}}"
    );
    let _ = writeln!(
        out,
        "\tchain ingress-reply {{\n\t\ttype filter hook postrouting priority 110; policy accept;\n\t\toifname \"{cable}\" ip saddr set ip saddr map @ingress-reply\n\t}}"
    );
    out.push_str("\tchain egress {\n\t\ttype nat hook postrouting priority 80; policy accept;\n");
    let v4_globals: Vec<&Cidr> = t.global_cidrs.iter().filter(|c| c.is_ipv4()).collect();
    if !v4_globals.is_empty() {
        let _ = writeln!(
            out,
            "\t\toifname \"{cable}\" ip saddr {{ {} }} return",
            elements(v4_globals)
        );
    }
    for rule in &t.egress {
        let (Some(to), false) = (range(&rule.ips), rule.sources.is_empty()) else {
            continue;
        };
        let _ = writeln!(
            out,
            "\t\toifname \"{cable}\" ip saddr {{ {} }} snat to {to} comment \"{}\"",
            elements(&rule.sources),
            rule.owner.replace('"', "'")
        );
    }
    out.push_str("\t}\n}\n");
    out
}

/// One transaction that replaces the table atomically.
pub fn apply_script(t: &Translation) -> String {
    format!("{}{}", delete_script(), render(t))
}

/// One transaction that removes the table, present or not.
pub fn delete_script() -> String {
    format!("table ip {TABLE}\ndelete table ip {TABLE}\n")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }
    fn c(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    fn translation() -> Translation {
        Translation {
            cable: "ferry-wg".into(),
            global_cidrs: vec![c("100.120.1.0/24")],
            egress: vec![
                EgressRule {
                    owner: "GlobalEgressIP web/frontend".into(),
                    sources: vec![c("100.64.1.7/32"), c("100.64.2.9/32")],
                    ips: vec![ip("100.120.1.10")],
                },
                EgressRule {
                    owner: "GlobalEgressIP web/web".into(),
                    sources: vec![c("100.64.1.5/32")],
                    ips: vec![],
                },
                EgressRule {
                    owner: "ClusterGlobalEgressIP cluster-egress.ferry.dev".into(),
                    sources: vec![c("100.64.0.0/16")],
                    ips: (2..10).map(|i| Ipv4Addr::new(100, 120, 1, i)).collect(),
                },
            ],
            ingress: [
                (ip("100.120.1.11"), ip("100.96.0.10")),
                (ip("100.120.1.12"), ip("100.64.2.9")),
            ]
            .into(),
        }
    }

    #[test]
    fn ruleset_snapshot() {
        insta::assert_snapshot!(apply_script(&translation()));
    }

    #[test]
    fn nothing_allocated_translates_nothing() {
        let t = Translation {
            cable: "ferry-vxc".into(),
            ..Default::default()
        };
        let text = render(&t);
        assert!(!text.contains("elements"), "{text}");
        assert!(!text.contains("snat"), "{text}");
        assert!(text.contains("iifname \"ferry-vxc\""), "{text}");
    }

    #[test]
    fn a_shared_target_replies_from_the_first_global_ip() {
        let mut t = translation();
        t.ingress.insert(ip("100.120.1.13"), ip("100.96.0.10"));
        let text = render(&t);
        assert!(
            text.contains("100.64.2.9 : 100.120.1.12, 100.96.0.10 : 100.120.1.11 }"),
            "{text}"
        );
    }
}
