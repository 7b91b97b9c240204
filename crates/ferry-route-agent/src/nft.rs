//! The route agent's nftables table `ip ferry`, rendered as text (pure) and
//! applied as one `nft -f` transaction.
//!
//! Two chains:
//! - `forward` (filter, priority mangle): TCP SYNs to or from a remote CIDR
//!   get their MSS clamped to the MTU of the route they take
//!   (`tcp option maxseg size set rt mtu`; the kernel only ever lowers an
//!   MSS this way). With the routes' `mtu` (underlay − 80), TCP never sends
//!   segments that would not fit through `vx-ferry` and the cable.
//! - `postrouting` (nat, priority srcnat − 10): traffic between this
//!   cluster's CIDRs and remote CIDRs gets an identity source NAT (`snat to
//!   ip saddr`: the source stays what it was). See [`render`] for what that
//!   guarantees against masquerade rules elsewhere.

use std::fmt::Write;

use ferry_api::Cidr;
use ferry_net::NFT_TABLE;

/// The contents of the two named sets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sets {
    /// This cluster's pod and service CIDRs (IPv4).
    pub local: Vec<Cidr>,
    /// Remote clusters' pod and service CIDRs (IPv4).
    pub remote: Vec<Cidr>,
}

/// The CIDRs not inside another one of the list, sorted: an interval set
/// rejects overlapping elements, and two CIDRs overlap only by nesting.
fn outermost(cidrs: &[Cidr]) -> Vec<Cidr> {
    let mut by_size = cidrs.to_vec();
    by_size.sort_by_key(|c| (c.prefix_len(), *c));
    let mut kept: Vec<Cidr> = Vec::new();
    for c in by_size {
        if !kept.iter().any(|k| k.overlaps(&c)) {
            kept.push(c);
        }
    }
    kept.sort();
    kept
}

fn set(out: &mut String, name: &str, comment: &str, cidrs: &[Cidr]) {
    let _ = writeln!(out, "\t# {comment}");
    let _ = writeln!(out, "\tset {name} {{");
    out.push_str("\t\ttype ipv4_addr\n");
    out.push_str("\t\tflags interval\n");
    let v4: Vec<String> = outermost(cidrs)
        .iter()
        .filter(|c| c.is_ipv4())
        .map(ToString::to_string)
        .collect();
    if !v4.is_empty() {
        let _ = writeln!(out, "\t\telements = {{ {} }}", v4.join(", "));
    }
    out.push_str("\t}\n");
}

/// The table definition.
///
/// About the `postrouting` chain and other tables' masquerade rules: in
/// netfilter, an `accept` in one NAT chain does not stop NAT chains of other
/// tables (iptables' `nat` table, kube-proxy's or a CNI's nftables tables)
/// from masquerading the same packet later; only a NAT binding does. So the
/// chain binds the connection to its own source address (identity SNAT),
/// which makes every NAT chain hooked after priority srcnat − 10 skip it.
/// This guarantees no masquerade by netfilter NAT chains at a later priority
/// (the usual `srcnat` / 100) for connections whose first packet passes
/// here. It does not cover: NAT chains at a priority below srcnat − 10,
/// connections already tracked before this table existed (their binding was
/// made earlier), and address translation outside netfilter (eBPF
/// datapaths such as Cilium's masquerade). Only traffic from a local CIDR to
/// a remote one, or from a remote CIDR to a local one, is matched; nothing
/// else is touched.
pub fn render(sets: &Sets) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "table ip {NFT_TABLE} {{");
    set(
        &mut out,
        "local",
        "this cluster's pod and service CIDRs",
        &sets.local,
    );
    set(
        &mut out,
        "remote",
        "pod and service CIDRs of the other clusters",
        &sets.remote,
    );
    out.push_str(
        "\t# Clamp the MSS of TCP SYNs to the MTU of the route they take.\n\
         \tchain forward {\n\
         \t\ttype filter hook forward priority mangle; policy accept;\n\
         \t\tip daddr @remote tcp flags syn tcp option maxseg size set rt mtu\n\
         \t\tip saddr @remote tcp flags syn tcp option maxseg size set rt mtu\n\
         \t}\n\
         \t# Identity SNAT between local and remote CIDRs: sources stay as they\n\
         \t# are, and later NAT chains (masquerade) skip these connections.\n\
         \tchain postrouting {\n\
         \t\ttype nat hook postrouting priority srcnat - 10; policy accept;\n\
         \t\tip saddr @local ip daddr @remote snat to ip saddr\n\
         \t\tip saddr @remote ip daddr @local snat to ip saddr\n\
         \t}\n",
    );
    out.push_str("}\n");
    out
}

/// One transaction that replaces the table atomically: declare it (so the
/// delete cannot fail), delete it, define it anew.
pub fn apply_script(sets: &Sets) -> String {
    format!(
        "table ip {NFT_TABLE}\ndelete table ip {NFT_TABLE}\n{}",
        render(sets)
    )
}

/// One transaction that removes the table, present or not.
pub fn delete_script() -> String {
    format!("table ip {NFT_TABLE}\ndelete table ip {NFT_TABLE}\n")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn sets() -> Sets {
        Sets {
            local: vec![
                "100.64.0.0/16".parse().unwrap(),
                "100.65.0.0/16".parse().unwrap(),
            ],
            remote: vec![
                "100.80.0.0/16".parse().unwrap(),
                "100.81.0.0/16".parse().unwrap(),
                "100.96.0.0/16".parse().unwrap(),
            ],
        }
    }

    #[test]
    fn ruleset_snapshot() {
        insta::assert_snapshot!(apply_script(&sets()));
    }

    #[test]
    fn empty_sets_have_no_elements_line() {
        let text = render(&Sets::default());
        assert!(!text.contains("elements"), "{text}");
        assert_eq!(text.matches("\tset ").count(), 2);
    }

    #[test]
    fn ipv6_cidrs_never_reach_the_ip_table() {
        let mut s = sets();
        s.remote.push("fd00::/64".parse().unwrap());
        assert!(!render(&s).contains("fd00"));
    }

    #[test]
    fn nested_and_duplicate_cidrs_collapse_to_the_outer_one() {
        let s = Sets {
            local: vec![],
            remote: vec![
                "100.81.0.0/16".parse().unwrap(),
                "100.80.1.0/24".parse().unwrap(),
                "100.80.0.0/16".parse().unwrap(),
                "100.81.0.0/16".parse().unwrap(),
            ],
        };
        let text = render(&s);
        assert!(
            text.contains("elements = { 100.80.0.0/16, 100.81.0.0/16 }"),
            "{text}"
        );
    }

    #[test]
    fn delete_script_is_safe_when_absent() {
        assert_eq!(delete_script(), "table ip ferry\ndelete table ip ferry\n");
    }
}
