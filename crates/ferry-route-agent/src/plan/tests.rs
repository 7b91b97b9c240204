#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::collections::BTreeMap;

use super::*;
use ferry_api::CableDriver;
use ferry_net::{VX_FERRY_HOST_ADDR, format_mac};

fn cidr(s: &str) -> Cidr {
    s.parse().unwrap()
}

fn node(name: &str, ip: [u8; 4]) -> NodeFacts {
    NodeFacts {
        name: name.into(),
        ip: Ipv4Addr::from(ip),
        underlay_dev: "eth0".into(),
        underlay_mtu: 1500,
        pod_cidrs: vec![cidr(&format!("100.64.{}.0/24", ip[3] - 10))],
        addresses: vec![addr("eth0", &Ipv4Addr::from(ip).to_string())],
    }
}

fn addr(dev: &str, ip: &str) -> IfAddr {
    IfAddr {
        dev: dev.into(),
        ip: ip.parse().unwrap(),
        prefix: 32,
    }
}

fn endpoint(cluster: &str, host: &str, ip: &str) -> EndpointSpec {
    EndpointSpec {
        cluster_id: cluster.into(),
        hostname: host.into(),
        cable_driver: CableDriver::Wireguard,
        public_ip: None,
        private_ip: ip.parse().unwrap(),
        subnets: vec![],
        backend_config: BTreeMap::new(),
        health_check_ip: None,
    }
}

fn cluster(id: &str, pods: &[&str], services: &[&str]) -> ClusterSpec {
    ClusterSpec {
        cluster_id: id.into(),
        cluster_cidrs: pods.iter().map(|c| cidr(c)).collect(),
        service_cidrs: services.iter().map(|c| cidr(c)).collect(),
        global_cidrs: vec![],
        network_plugin: None,
    }
}

fn gw(host: &str, ip: [u8; 4]) -> Option<ActiveGateway> {
    Some(ActiveGateway {
        hostname: host.into(),
        ip: Ipv4Addr::from(ip),
    })
}

fn set(list: &[&str]) -> BTreeSet<Cidr> {
    list.iter().map(|c| cidr(c)).collect()
}

#[test]
fn cluster_view_splits_local_and_remote_and_drops_ipv6() {
    let c0 = cluster("c0", &["100.64.0.0/16", "fd00:64::/64"], &["100.65.0.0/16"]);
    let c1 = cluster("c1", &["100.80.0.0/16"], &["100.81.0.0/16"]);
    let c2 = cluster(
        "c2",
        &["100.80.0.0/16", "100.90.0.0/16"],
        &["fd00:91::/108"],
    );
    let ep = endpoint("c0", "c0-node0", "198.18.0.10");
    let (view, notes) = cluster_view("c0", Some(&ep), &[&c0, &c1, &c2]);
    assert_eq!(view.gateway, gw("c0-node0", [198, 18, 0, 10]));
    assert_eq!(view.local_cidrs, set(&["100.64.0.0/16", "100.65.0.0/16"]));
    assert_eq!(
        view.remote_cidrs,
        set(&["100.80.0.0/16", "100.81.0.0/16", "100.90.0.0/16"])
    );
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes.iter().all(|n| n.contains("IPv6")), "{notes:?}");
}

#[test]
fn a_globalnet_cluster_is_reached_only_through_its_global_cidrs() {
    // Identical pod and service CIDRs in both clusters, as Globalnet allows.
    let mut c0 = cluster("c0", &["100.64.0.0/16"], &["100.96.0.0/16"]);
    c0.global_cidrs = vec![cidr("100.120.0.0/24")];
    let mut c1 = c0.clone();
    c1.cluster_id = "c1".into();
    c1.global_cidrs = vec![cidr("100.120.1.0/24")];
    let (view, _) = cluster_view("c0", None, &[&c0, &c1]);
    assert_eq!(view.remote_cidrs, set(&["100.120.1.0/24"]));
    assert_eq!(
        view.local_cidrs,
        set(&["100.64.0.0/16", "100.96.0.0/16", "100.120.0.0/24"])
    );
}

#[test]
fn cluster_view_without_or_with_foreign_or_v6_endpoint_has_no_gateway() {
    let c1 = cluster("c1", &["100.80.0.0/16"], &[]);
    let cases: [(Option<EndpointSpec>, usize); 3] = [
        (None, 0),
        (Some(endpoint("c1", "c1-node0", "198.18.1.10")), 1),
        (Some(endpoint("c0", "c0-node0", "fd00::10")), 1),
    ];
    for (ep, notes_len) in cases {
        let (view, notes) = cluster_view("c0", ep.as_ref(), &[&c1]);
        assert_eq!(view.gateway, None, "{ep:?}");
        assert_eq!(notes.len(), notes_len, "{ep:?}: {notes:?}");
        assert_eq!(view.remote_cidrs, set(&["100.80.0.0/16"]));
    }
}

fn view(gateway: Option<ActiveGateway>, remote: &[&str]) -> ClusterView {
    ClusterView {
        gateway,
        local_cidrs: set(&["100.64.0.0/16", "100.65.0.0/16"]),
        local_pod_cidrs: set(&["100.64.0.0/16"]),
        remote_cidrs: set(remote),
        network_plugin: NetworkPlugin::Generic,
        ..ClusterView::default()
    }
}

fn route_text(r: &Route) -> String {
    format!(
        "{} via {} dev {} onlink={} src {} mtu {}",
        r.dst,
        r.via.map(|v| v.to_string()).unwrap_or_default(),
        r.dev.clone().unwrap_or_default(),
        r.onlink,
        r.src.map(|v| v.to_string()).unwrap_or_default(),
        r.mtu.unwrap_or(0)
    )
}

/// Table-driven: (case, node, view) → (role, routes, fdb, neigh, sysctls).
#[test]
fn planner_table() {
    struct Case {
        name: &'static str,
        node: NodeFacts,
        view: ClusterView,
        role: Role,
        routes: Vec<&'static str>,
        fdb: Vec<&'static str>,
        neigh: Vec<&'static str>,
        forward: bool,
        skipped: Vec<&'static str>,
    }
    let remote = ["100.80.0.0/16", "100.81.0.0/16"];
    let cases = vec![
        Case {
            name: "non-gateway node routes every remote CIDR to the gateway",
            node: node("n1", [198, 18, 0, 11]),
            view: view(gw("n0", [198, 18, 0, 10]), &remote),
            role: Role::Node(gw("n0", [198, 18, 0, 10]).unwrap()),
            routes: vec![
                "100.80.0.0/16 via 198.18.0.10 dev vx-ferry onlink=true src 100.64.1.1 mtu 1420",
                "100.81.0.0/16 via 198.18.0.10 dev vx-ferry onlink=true src 100.64.1.1 mtu 1420",
            ],
            fdb: vec!["02:fe:c6:12:00:0a -> 198.18.0.10"],
            neigh: vec!["198.18.0.10 -> 02:fe:c6:12:00:0a"],
            forward: false,
            skipped: vec![],
        },
        Case {
            name: "the gateway node routes nothing but forwards",
            node: node("n0", [198, 18, 0, 10]),
            view: view(gw("n0", [198, 18, 0, 10]), &remote),
            role: Role::Gateway,
            routes: vec![],
            fdb: vec![],
            neigh: vec![],
            forward: true,
            skipped: vec![],
        },
        Case {
            name: "after failover the same node points at the new gateway",
            node: node("n1", [198, 18, 0, 11]),
            view: view(gw("n2", [198, 18, 0, 12]), &remote),
            role: Role::Node(gw("n2", [198, 18, 0, 12]).unwrap()),
            routes: vec![
                "100.80.0.0/16 via 198.18.0.12 dev vx-ferry onlink=true src 100.64.1.1 mtu 1420",
                "100.81.0.0/16 via 198.18.0.12 dev vx-ferry onlink=true src 100.64.1.1 mtu 1420",
            ],
            fdb: vec!["02:fe:c6:12:00:0c -> 198.18.0.12"],
            neigh: vec!["198.18.0.12 -> 02:fe:c6:12:00:0c"],
            forward: false,
            skipped: vec![],
        },
        Case {
            name: "no gateway: vx-ferry only",
            node: node("n1", [198, 18, 0, 11]),
            view: view(None, &remote),
            role: Role::NoGateway,
            routes: vec![],
            fdb: vec![],
            neigh: vec![],
            forward: false,
            skipped: vec![],
        },
        Case {
            name: "no remote clusters: the gateway is known, nothing routed",
            node: node("n1", [198, 18, 0, 11]),
            view: view(gw("n0", [198, 18, 0, 10]), &[]),
            role: Role::Node(gw("n0", [198, 18, 0, 10]).unwrap()),
            routes: vec![],
            fdb: vec!["02:fe:c6:12:00:0a -> 198.18.0.10"],
            neigh: vec!["198.18.0.10 -> 02:fe:c6:12:00:0a"],
            forward: false,
            skipped: vec![],
        },
        Case {
            name: "dangerous remote CIDRs are skipped",
            node: node("n1", [198, 18, 0, 11]),
            view: view(
                gw("n0", [198, 18, 1, 10]),
                &[
                    "100.80.0.0/16",
                    "100.64.128.0/17", // inside a local CIDR
                    "100.0.0.0/8",     // covers the local CIDRs
                    "198.18.0.0/24",   // holds this node's address
                    "198.18.1.0/24",   // holds the gateway's address
                ],
            ),
            role: Role::Node(gw("n0", [198, 18, 1, 10]).unwrap()),
            routes: vec![
                "100.80.0.0/16 via 198.18.1.10 dev vx-ferry onlink=true src 100.64.1.1 mtu 1420",
            ],
            fdb: vec!["02:fe:c6:12:01:0a -> 198.18.1.10"],
            neigh: vec!["198.18.1.10 -> 02:fe:c6:12:01:0a"],
            forward: false,
            skipped: vec![
                "100.0.0.0/8",
                "100.64.128.0/17",
                "198.18.0.0/24",
                "198.18.1.0/24",
            ],
        },
    ];
    for c in cases {
        let d = plan(&c.node, &c.view);
        assert_eq!(d.role, c.role, "{}", c.name);
        let routes: Vec<String> = d.routes.iter().map(route_text).collect();
        assert_eq!(routes, c.routes, "{}", c.name);
        let fdb: Vec<String> = d
            .fdb
            .iter()
            .map(|e| format!("{} -> {}", format_mac(&e.mac), e.dst))
            .collect();
        assert_eq!(fdb, c.fdb, "{}", c.name);
        let neigh: Vec<String> = d
            .neigh
            .iter()
            .map(|(ip, mac)| format!("{ip} -> {}", format_mac(mac)))
            .collect();
        assert_eq!(neigh, c.neigh, "{}", c.name);
        let forwards = d
            .sysctls
            .contains(&("net.ipv4.ip_forward".to_string(), "1".to_string()));
        assert_eq!(forwards, c.forward, "{}", c.name);
        let skipped: Vec<String> = d.skipped.iter().map(|s| s.cidr.to_string()).collect();
        assert_eq!(skipped, c.skipped, "{}", c.name);

        // On every node: host traffic leaves from the first address of
        // the node's podCIDR (nothing holds one here).
        let k = u32::from(c.node.ip.octets()[3]) - 10;
        assert_eq!(
            d.host_source,
            Ok(HostSource {
                ip: Ipv4Addr::new(100, 64, k as u8, 1),
                origin: SourceOrigin::NodePodCidr(cidr(&format!("100.64.{k}.0/24"))),
            }),
            "{}",
            c.name
        );
        // On every node: vx-ferry from the node's own address, loose
        // rp_filter on it, and the remote set equal to what may be routed.
        assert_eq!(d.vxlan.local, c.node.ip, "{}", c.name);
        assert_eq!(d.vxlan.dev, "eth0");
        assert_eq!(d.vxlan.mtu, 1450);
        assert_eq!(d.vxlan.mac, ferry_net::vtep_mac(c.node.ip));
        assert_eq!(d.vxlan.host_addr, Some(VX_FERRY_HOST_ADDR));
        assert_eq!(
            d.sysctls[0],
            ("net.ipv4.conf.vx-ferry.rp_filter".into(), "2".into())
        );
        assert_eq!(d.loose_rp_filter, vec!["eth0".to_string()]);
        assert_eq!(
            d.nft.local,
            vec![cidr("100.64.0.0/16"), cidr("100.65.0.0/16")]
        );
        let mut expected_remote: Vec<Cidr> = c.view.remote_cidrs.iter().copied().collect();
        expected_remote.retain(|r| !c.skipped.contains(&r.to_string().as_str()));
        assert_eq!(d.nft.remote, expected_remote, "{}", c.name);
    }
}

#[test]
fn route_mtu_follows_the_underlay() {
    let mut n = node("n1", [198, 18, 0, 11]);
    n.underlay_mtu = 9000;
    let d = plan(&n, &view(gw("n0", [198, 18, 0, 10]), &["100.80.0.0/16"]));
    assert_eq!(d.vxlan.mtu, 8950);
    assert_eq!(d.routes[0].mtu, Some(8920));
}

/// Table-driven: which address a node's host-network traffic leaves from.
#[test]
fn host_source_prefers_the_cni_address_of_the_node() {
    let iface = |dev: &str, ip: &str| {
        Ok(HostSource {
            ip: ip.parse().unwrap(),
            origin: SourceOrigin::Interface(dev.into()),
        })
    };
    let fallback = Ok(HostSource {
        ip: Ipv4Addr::new(100, 64, 1, 1),
        origin: SourceOrigin::NodePodCidr(cidr("100.64.1.0/24")),
    });
    type Case = (
        &'static str,
        Vec<IfAddr>,
        Vec<&'static str>,
        Vec<&'static str>,
    );
    let cases: Vec<(Case, Result<HostSource, String>)> = vec![
        (
            (
                "a bridge CNI's bridge",
                vec![addr("cni0", "100.64.1.1")],
                vec!["100.64.1.0/24"],
                vec!["100.64.0.0/16"],
            ),
            iface("cni0", "100.64.1.1"),
        ),
        (
            (
                "ptp veths all holding the pod gateway: the first by name",
                vec![addr("vp7", "100.64.1.1"), addr("vp3", "100.64.1.1")],
                vec!["100.64.1.0/24"],
                vec!["100.64.0.0/16"],
            ),
            iface("vp3", "100.64.1.1"),
        ),
        (
            (
                "a tunnel address of the cluster CIDR outside the node's podCIDR",
                vec![addr("tunl0", "100.64.37.192")],
                vec!["100.64.1.0/24"],
                vec!["100.64.0.0/16"],
            ),
            iface("tunl0", "100.64.37.192"),
        ),
        (
            (
                "the node's podCIDR wins over the rest of the cluster CIDR",
                vec![addr("tunl0", "100.64.0.7"), addr("cni0", "100.64.1.1")],
                vec!["100.64.1.0/24"],
                vec!["100.64.0.0/16"],
            ),
            iface("cni0", "100.64.1.1"),
        ),
        (
            (
                "ClusterIPs on kube-ipvs0 and loopback addresses are never chosen",
                vec![addr("kube-ipvs0", "100.65.0.10"), addr("lo", "127.0.0.1")],
                vec!["100.64.1.0/24"],
                vec!["100.64.0.0/16"],
            ),
            fallback.clone(),
        ),
        (
            (
                "nothing on the node: the first address of its podCIDR",
                vec![],
                vec!["100.64.1.0/24"],
                vec!["100.64.0.0/16"],
            ),
            fallback.clone(),
        ),
        (
            (
                "the cluster's CIDRs not known yet: the podCIDR is trusted",
                vec![],
                vec!["100.64.1.0/24"],
                vec![],
            ),
            fallback,
        ),
        (
            (
                "a podCIDR outside the cluster CIDRs is of no use",
                vec![addr("cni0", "10.244.1.1")],
                vec!["10.244.1.0/24"],
                vec!["100.64.0.0/16"],
            ),
            Err("Node n1's podCIDR 10.244.1.0/24 lies outside the cluster's pod CIDRs 100.64.0.0/16".into()),
        ),
        (
            (
                "no podCIDR and nothing of the cluster on the node",
                vec![],
                vec![],
                vec!["100.64.0.0/16"],
            ),
            Err("Node n1 has no IPv4 podCIDR and no interface address inside the cluster's pod CIDRs 100.64.0.0/16".into()),
        ),
    ];
    for ((name, addresses, pod_cidrs, cluster), want) in cases {
        let mut n = node("n1", [198, 18, 0, 11]);
        n.addresses.extend(addresses);
        n.pod_cidrs = pod_cidrs.iter().map(|c| cidr(c)).collect();
        let mut v = view(gw("n0", [198, 18, 0, 10]), &["100.80.0.0/16"]);
        v.local_pod_cidrs = set(&cluster);
        assert_eq!(host_source(&n, &v), want, "{name}");
        // The routes carry it as their source, or none without one.
        let d = plan(&n, &v);
        let src = want.as_ref().ok().map(|h| IpAddr::V4(h.ip));
        assert!(
            d.routes.iter().all(|r| r.src == src),
            "{name}: {:?}",
            d.routes
        );
    }
}

/// Cluster c0 with active-active gateways on n0 and n1; c1 has two
/// gateways, c2 one (active-passive).
fn active_active_view() -> ClusterView {
    let c0 = cluster("c0", &["100.64.0.0/16"], &[]);
    let c1 = cluster("c1", &["100.80.0.0/16"], &[]);
    let c2 = cluster("c2", &["100.90.0.0/16"], &[]);
    let eps = [
        ("c0-n1", endpoint("c0", "n1", "198.18.0.11")),
        ("c0-n0", endpoint("c0", "n0", "198.18.0.10")),
        ("c1-m0", endpoint("c1", "m0", "198.18.1.10")),
        ("c1-m1", endpoint("c1", "m1", "198.18.1.11")),
        ("c2", endpoint("c2", "k0", "198.18.2.10")),
    ];
    let by_name: BTreeMap<String, &EndpointSpec> =
        eps.iter().map(|(n, e)| ((*n).to_string(), e)).collect();
    let (view, notes) = cluster_view_of_all("c0", &by_name, &[&c0, &c1, &c2]);
    assert!(notes.is_empty(), "{notes:?}");
    view
}

#[test]
fn active_active_gateways_by_name_and_remote_cidrs_carried_by_the_paired_ones() {
    let view = active_active_view();
    let names: Vec<&str> = view.gateways.iter().map(|g| g.hostname.as_str()).collect();
    assert_eq!(names, ["n0", "n1"]);
    assert_eq!(view.gateway, gw("n0", [198, 18, 0, 10]));
    let hosts = |h: &[&str]| h.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(view.carriers[&cidr("100.80.0.0/16")], hosts(&["n0", "n1"]));
    assert_eq!(view.carriers[&cidr("100.90.0.0/16")], hosts(&["n0"]));
}

#[test]
fn a_remote_cluster_that_lost_a_gateway_goes_to_the_survivors_partner_only() {
    // c0's gateway in slot 0 is gone; c0's survivor keeps slot 1, so in
    // c1 only m1 (slot 1) has a cable to c0: m0 and the nodes send c0's
    // traffic to m1.
    let c0 = cluster("c0", &["100.64.0.0/16"], &[]);
    let c1 = cluster("c1", &["100.80.0.0/16"], &[]);
    let slotted = |c: &str, h: &str, ip: &str, slot: usize| {
        let mut e = endpoint(c, h, ip);
        e.backend_config.insert(
            ferry_api::ferry::backend_config::GATEWAY_SLOT.into(),
            slot.to_string(),
        );
        e
    };
    let eps = [
        ("c0-n1", slotted("c0", "n1", "198.18.0.11", 1)),
        ("c1-m0", slotted("c1", "m0", "198.18.1.10", 0)),
        ("c1-m1", slotted("c1", "m1", "198.18.1.11", 1)),
    ];
    let by_name: BTreeMap<String, &EndpointSpec> =
        eps.iter().map(|(n, e)| ((*n).to_string(), e)).collect();
    let (view, _) = cluster_view_of_all("c1", &by_name, &[&c0, &c1]);
    for (name, ip) in [("m2", [198, 18, 1, 12]), ("m0", [198, 18, 1, 10])] {
        let want = plan(&node(name, ip), &view);
        let r = want
            .routes
            .iter()
            .find(|r| r.dst == cidr("100.64.0.0/16"))
            .unwrap_or_else(|| panic!("{name}: no route to c0: {:?}", want.routes));
        assert_eq!(r.via, Some("198.18.1.11".parse().unwrap()), "{name}");
        assert!(r.more_via.is_empty(), "{name}");
    }
    // m1 carries it itself (its cable's routes).
    let m1 = plan(&node("m1", [198, 18, 1, 11]), &view);
    assert!(m1.routes.is_empty(), "{:?}", m1.routes);
}

#[test]
fn a_node_spreads_flows_over_the_gateways_with_a_multipath_route() {
    let want = plan(&node("n2", [198, 18, 0, 12]), &active_active_view());
    let r80 = want
        .routes
        .iter()
        .find(|r| r.dst == cidr("100.80.0.0/16"))
        .unwrap();
    assert_eq!(r80.via, Some("198.18.0.10".parse().unwrap()));
    assert_eq!(r80.more_via, vec!["198.18.0.11".parse::<IpAddr>().unwrap()]);
    // c2 has one gateway: only n0 has a cable to it.
    let r90 = want
        .routes
        .iter()
        .find(|r| r.dst == cidr("100.90.0.0/16"))
        .unwrap();
    assert_eq!(r90.via, Some("198.18.0.10".parse().unwrap()));
    assert!(r90.more_via.is_empty());
    assert_eq!(want.fdb.len(), 2);
    assert_eq!(want.neigh.len(), 2);
    assert!(want.sysctls.contains(&(
        "net.ipv4.fib_multipath_hash_policy".to_string(),
        "1".to_string()
    )));
}

#[test]
fn a_gateway_without_a_partner_sends_that_cluster_to_the_gateway_that_has_one() {
    let view = active_active_view();
    let first = plan(&node("n0", [198, 18, 0, 10]), &view);
    assert_eq!(first.role, Role::Gateway);
    assert!(first.routes.is_empty(), "{:?}", first.routes);
    let second = plan(&node("n1", [198, 18, 0, 11]), &view);
    assert_eq!(second.role, Role::Gateway);
    let dsts: Vec<String> = second.routes.iter().map(|r| r.dst.to_string()).collect();
    assert_eq!(dsts, ["100.90.0.0/16"]);
    assert_eq!(second.routes[0].via, Some("198.18.0.10".parse().unwrap()));
    assert!(!second.sysctls.iter().any(|(k, _)| k.contains("multipath")));
}

#[test]
fn one_endpoint_keeps_the_active_passive_plan() {
    let c0 = cluster("c0", &["100.64.0.0/16"], &[]);
    let c1 = cluster("c1", &["100.80.0.0/16"], &[]);
    let ep = endpoint("c0", "n0", "198.18.0.10");
    let by_name = BTreeMap::from([("c0".to_string(), &ep)]);
    let (all, _) = cluster_view_of_all("c0", &by_name, &[&c0, &c1]);
    let (one, _) = cluster_view("c0", Some(&ep), &[&c0, &c1]);
    assert_eq!(all, one);
}
