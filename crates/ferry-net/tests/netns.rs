#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Root-only: two namespaces on a veth pair ("nodes" with underlay addresses
//! in 198.18.0.0/15) talk through a `vx-ferry`-style VXLAN whose peer is
//! known only through static fdb and neighbour entries (no learning, no ARP),
//! with the route in ferry's own table behind ferry's own rule. Also checks
//! the idempotence and removal paths of every helper against the kernel.

use std::net::{IpAddr, Ipv4Addr};

use ferry_net::require_root;
use ferry_net::testing::Netns;
use ferry_net::*;

const A_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 251, 1);
const B_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 251, 2);
/// An address behind B ("a remote pod"), routed from A through vx-ferry.
const REMOTE: Ipv4Addr = Ipv4Addr::new(100, 127, 0, 1);

/// A and B joined by a veth pair `u0`/`u0` with MTU 1500.
fn two_nodes() -> (Netns, Netns) {
    let a = Netns::new("a").unwrap();
    let b = Netns::new("b").unwrap();
    ip(
        a.ns(),
        &[
            "link", "add", "u0", "type", "veth", "peer", "name", "u0", "netns", &b.name,
        ],
    )
    .unwrap();
    for (ns, addr) in [(&a, A_IP), (&b, B_IP)] {
        add_addr(ns.ns(), "u0", IpAddr::V4(addr), 24).unwrap();
        link_up(ns.ns(), "u0").unwrap();
    }
    (a, b)
}

fn counter(ns: &Netns, dev: &str, which: &str) -> u64 {
    let path = format!("/sys/class/net/{dev}/statistics/{which}");
    netns_exec(ns.ns(), &["cat", &path], None)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn ping(ns: &Netns, dst: Ipv4Addr) -> bool {
    netns_exec(
        ns.ns(),
        &["ping", "-c", "1", "-W", "2", "-q", &dst.to_string()],
        None,
    )
    .is_ok()
}

#[test]
fn ping_through_vx_ferry_with_static_fdb_and_neigh() {
    require_root!();
    let (a, b) = two_nodes();
    assert_eq!(interface_of(a.ns(), IpAddr::V4(A_IP)).unwrap(), "u0");
    assert!(matches!(
        interface_of(a.ns(), IpAddr::V4(B_IP)),
        Err(Error::NoInterface(_))
    ));
    assert_eq!(link_mtu(a.ns(), "u0").unwrap(), 1500);

    // The "remote pod" address lives on B's loopback.
    add_addr(b.ns(), "lo", IpAddr::V4(REMOTE), 32).unwrap();
    sysctl_set(b.ns(), "net.ipv4.ip_forward", "1").unwrap();
    // Strict reverse-path filtering by default, as on many distributions:
    // vx-ferry's own loose setting and its host address must make B accept
    // packets whose source is routed via u0.
    sysctl_set(b.ns(), "net.ipv4.conf.all.rp_filter", "1").unwrap();

    for (ns, local, peer) in [(&a, A_IP, B_IP), (&b, B_IP, A_IP)] {
        let vx = Vxlan::vx_ferry(local, "u0", link_mtu(ns.ns(), "u0").unwrap());
        assert!(ensure_vxlan(ns.ns(), &vx).unwrap(), "first call creates");
        assert!(!ensure_vxlan(ns.ns(), &vx).unwrap(), "second call keeps");
        assert_eq!(link_mtu(ns.ns(), VX_FERRY).unwrap(), 1450);
        ensure_fdb(ns.ns(), VX_FERRY, &vtep_mac(peer), IpAddr::V4(peer)).unwrap();
        ensure_fdb(ns.ns(), VX_FERRY, &vtep_mac(peer), IpAddr::V4(peer)).unwrap();
        ensure_neigh(ns.ns(), VX_FERRY, peer, &vtep_mac(peer)).unwrap();
        ensure_neigh(ns.ns(), VX_FERRY, peer, &vtep_mac(peer)).unwrap();
        sysctl_set(ns.ns(), "net.ipv4.conf.vx-ferry.rp_filter", "2").unwrap();
        assert_eq!(
            sysctl_get(ns.ns(), "net.ipv4.conf.vx-ferry.rp_filter").unwrap(),
            "2"
        );
    }
    assert_eq!(
        list_fdb(a.ns(), VX_FERRY).unwrap(),
        vec![FdbEntry {
            mac: vtep_mac(B_IP),
            dst: IpAddr::V4(B_IP)
        }]
    );
    assert_eq!(
        list_neigh(a.ns(), VX_FERRY).unwrap(),
        vec![NeighEntry {
            ip: B_IP,
            mac: Some(vtep_mac(B_IP)),
            permanent: true
        }]
    );

    // A: the remote address through vx-ferry to B, in ferry's table and rule.
    let route = Route {
        via: Some(IpAddr::V4(B_IP)),
        dev: Some(VX_FERRY.into()),
        onlink: true,
        mtu: Some(1420),
        ..Route::to("100.127.0.0/16".parse().unwrap())
    };
    replace_route(a.ns(), ROUTE_AGENT_TABLE, &route).unwrap();
    replace_route(a.ns(), ROUTE_AGENT_TABLE, &route).unwrap();
    assert_eq!(
        list_routes(a.ns(), ROUTE_AGENT_TABLE).unwrap(),
        vec![route.clone()]
    );
    assert!(
        !ping(&a, REMOTE),
        "no rule yet: the main table has no route"
    );
    ensure_rule(a.ns(), ROUTE_AGENT_RULE_PRIORITY, ROUTE_AGENT_TABLE).unwrap();
    ensure_rule(a.ns(), ROUTE_AGENT_RULE_PRIORITY, ROUTE_AGENT_TABLE).unwrap();
    assert!(rule_exists(a.ns(), ROUTE_AGENT_RULE_PRIORITY, ROUTE_AGENT_TABLE).unwrap());

    // The host address on vx-ferry is never picked as a source.
    let get = ip(a.ns(), &["-j", "route", "get", &REMOTE.to_string()]).unwrap();
    assert!(get.contains(&format!("\"prefsrc\":\"{A_IP}\"")), "{get}");

    let b_rx = counter(&b, VX_FERRY, "rx_packets");
    let a_tx = counter(&a, VX_FERRY, "tx_packets");
    assert!(ping(&a, REMOTE), "ping through vx-ferry");
    assert!(
        counter(&a, VX_FERRY, "tx_packets") > a_tx,
        "left A by vx-ferry"
    );
    assert!(
        counter(&b, VX_FERRY, "rx_packets") > b_rx,
        "arrived on B's vx-ferry"
    );
    // No ARP was needed: the neighbour entry is still the static one.
    let neigh = list_neigh(a.ns(), VX_FERRY).unwrap();
    assert_eq!(neigh.len(), 1);
    assert!(neigh[0].permanent);

    // Removing the fdb entry breaks the path (nothing learned it back).
    assert!(delete_fdb(a.ns(), VX_FERRY, &vtep_mac(B_IP), IpAddr::V4(B_IP)).unwrap());
    assert!(!delete_fdb(a.ns(), VX_FERRY, &vtep_mac(B_IP), IpAddr::V4(B_IP)).unwrap());
    assert!(!ping(&a, REMOTE), "no fdb entry, no path");
    ensure_fdb(a.ns(), VX_FERRY, &vtep_mac(B_IP), IpAddr::V4(B_IP)).unwrap();
    assert!(ping(&a, REMOTE));

    // Routes, rules, neighbours and links go away and report what they did.
    assert!(delete_route(a.ns(), ROUTE_AGENT_TABLE, &route.dst).unwrap());
    assert!(!delete_route(a.ns(), ROUTE_AGENT_TABLE, &route.dst).unwrap());
    assert!(list_routes(a.ns(), ROUTE_AGENT_TABLE).unwrap().is_empty());
    assert!(!ping(&a, REMOTE));
    // A batch replaces and deletes in one process.
    let other = Route {
        dev: Some("u0".into()),
        ..Route::to("100.126.0.0/16".parse().unwrap())
    };
    route_batch(
        a.ns(),
        ROUTE_AGENT_TABLE,
        &[route.clone(), other.clone()],
        &[],
    )
    .unwrap();
    assert_eq!(
        list_routes(a.ns(), ROUTE_AGENT_TABLE).unwrap(),
        vec![other.clone(), route.clone()]
    );
    route_batch(a.ns(), ROUTE_AGENT_TABLE, &[], &[other.dst]).unwrap();
    assert_eq!(
        list_routes(a.ns(), ROUTE_AGENT_TABLE).unwrap(),
        vec![route.clone()]
    );
    assert!(route_batch(a.ns(), ROUTE_AGENT_TABLE, &[], &[other.dst]).is_err());
    flush_table(a.ns(), ROUTE_AGENT_TABLE).unwrap();
    flush_table(a.ns(), ROUTE_AGENT_TABLE).unwrap();
    assert!(list_routes(a.ns(), ROUTE_AGENT_TABLE).unwrap().is_empty());
    assert_eq!(delete_rule(a.ns(), ROUTE_AGENT_RULE_PRIORITY).unwrap(), 1);
    assert_eq!(delete_rule(a.ns(), ROUTE_AGENT_RULE_PRIORITY).unwrap(), 0);
    assert!(!rule_exists(a.ns(), ROUTE_AGENT_RULE_PRIORITY, ROUTE_AGENT_TABLE).unwrap());
    assert!(delete_neigh(a.ns(), VX_FERRY, B_IP).unwrap());
    assert!(!delete_neigh(a.ns(), VX_FERRY, B_IP).unwrap());
    assert!(delete_link(a.ns(), VX_FERRY).unwrap());
    assert!(!delete_link(a.ns(), VX_FERRY).unwrap());
    assert!(!link_exists(a.ns(), VX_FERRY).unwrap());
}

#[test]
fn ensure_vxlan_modifies_or_recreates_as_needed() {
    require_root!();
    let (a, _b) = two_nodes();
    let vx = Vxlan::vx_ferry(A_IP, "u0", 1500);
    assert!(ensure_vxlan(a.ns(), &vx).unwrap());
    ensure_fdb(a.ns(), VX_FERRY, &vtep_mac(B_IP), IpAddr::V4(B_IP)).unwrap();

    // MTU only: changed in place, fdb entries survive.
    let smaller = Vxlan {
        mtu: 1400,
        ..vx.clone()
    };
    assert!(!ensure_vxlan(a.ns(), &smaller).unwrap());
    assert_eq!(link_mtu(a.ns(), VX_FERRY).unwrap(), 1400);
    assert_eq!(list_fdb(a.ns(), VX_FERRY).unwrap().len(), 1);

    // Another VNI: recreated, so the fdb is empty again.
    let other = Vxlan {
        vni: 7200,
        ..smaller
    };
    assert!(ensure_vxlan(a.ns(), &other).unwrap());
    assert!(list_fdb(a.ns(), VX_FERRY).unwrap().is_empty());
    assert!(!ensure_vxlan(a.ns(), &other).unwrap());

    // The host address is there once, however often ensure runs.
    let addrs = ip(a.ns(), &["-4", "-o", "addr", "show", "dev", VX_FERRY]).unwrap();
    assert_eq!(addrs.matches("127.0.71.1/32").count(), 1, "{addrs}");

    // A link of another kind under the name is replaced too.
    delete_link(a.ns(), VX_FERRY).unwrap();
    ip(
        a.ns(),
        &[
            "link", "add", VX_FERRY, "type", "veth", "peer", "name", "x0",
        ],
    )
    .unwrap();
    assert!(ensure_vxlan(a.ns(), &vx).unwrap());
    assert!(!ensure_vxlan(a.ns(), &vx).unwrap());
}

#[test]
fn ensure_rule_replaces_foreign_rules_at_its_priority() {
    require_root!();
    let a = Netns::new("r").unwrap();
    ip(
        a.ns(),
        &[
            "rule",
            "add",
            "pref",
            "7100",
            "from",
            "100.64.0.1",
            "lookup",
            "7100",
        ],
    )
    .unwrap();
    assert!(!rule_exists(a.ns(), 7100, 7100).unwrap());
    ensure_rule(a.ns(), 7100, 7100).unwrap();
    assert!(rule_exists(a.ns(), 7100, 7100).unwrap());
    ensure_rule(a.ns(), 7100, 7101).unwrap();
    assert!(rule_exists(a.ns(), 7100, 7101).unwrap());
    assert!(!rule_exists(a.ns(), 7100, 7100).unwrap());
}

#[test]
fn nft_scripts_apply_atomically_and_errors_name_the_command() {
    require_root!();
    let a = Netns::new("n").unwrap();
    nft_apply(
        a.ns(),
        "table ip ferry {\n chain c {\n  type filter hook forward priority 0;\n }\n}\n",
    )
    .unwrap();
    // A failing script changes nothing (one transaction) and says why.
    let err = nft_apply(
        a.ns(),
        "delete table ip ferry\ntable ip ferry {\n chain c {\n  nonsense\n }\n}\n",
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("nft -f -"), "{text}");
    assert!(text.contains("nonsense"), "{text}");
    let tables = nft(a.ns(), &["list", "tables"]).unwrap();
    assert!(tables.contains("table ip ferry"), "{tables}");
    // And the failing command names the namespace.
    let err = ip(a.ns(), &["link", "show", "dev", "nope0"]).unwrap_err();
    assert!(
        err.to_string().contains(&format!("ip -n {}", a.name)),
        "{err}"
    );
}
