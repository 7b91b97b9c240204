#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Root-only: the planner and applier against network namespaces. Three
//! nodes on a bridge (n0 the gateway, n1 with a pod, n2), a remote cluster
//! behind whichever node is the gateway. A ping from n1 and from its pod
//! reach the remote pod through vx-ferry, the node's from its pod-CIDR
//! address (kept on vx-ferry when the pod goes); the pod's source address
//! survives a CNI masquerade rule; the TCP MSS is clamped to the route MTU;
//! moving the gateway role to n2 re-points n1; cleanup removes everything.

mod common;

use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::time::Duration;

use common::*;
use ferry_net::require_root;
use ferry_net::{ROUTE_AGENT_RULE_PRIORITY, ROUTE_AGENT_TABLE, VX_FERRY};
use ferry_route_agent::apply::{self, Applier};
use ferry_route_agent::plan::{self, Desired, Role, SourceOrigin};

fn desired(lab: &Lab, i: usize, gateway: usize) -> Desired {
    let (local, remote) = (local_cluster(), remote_cluster());
    let ep = endpoint_spec(gateway);
    let (view, notes) = plan::cluster_view("c0", Some(&ep), &[&local, &remote]);
    assert!(notes.is_empty(), "{notes:?}");
    let facts =
        apply::node_facts(lab.node(i), &node_name(i), NODE_IPS[i], &[node_pod_cidr(i)]).unwrap();
    assert_eq!(facts.underlay_dev, "eth0");
    plan::plan(&facts, &view)
}

fn unchanged_but_nft(ch: &apply::Changes) -> bool {
    !apply::Changes {
        nft_written: false,
        ..ch.clone()
    }
    .any()
}

fn sysctl(ns: Option<&str>, key: &str) -> String {
    ferry_net::sysctl_get(ns, key).unwrap()
}

fn route_vias(ns: Option<&str>) -> Vec<String> {
    ferry_net::list_routes(ns, ROUTE_AGENT_TABLE)
        .unwrap()
        .iter()
        .map(|r| format!("{} via {}", r.dst, r.via.unwrap()))
        .collect()
}

#[test]
fn routes_through_vx_ferry_fail_over_and_clean_up() {
    require_root!();
    let lab = Lab::new();
    let mut appliers: Vec<Applier> = (0..3)
        .map(|i| Applier::new(lab.node(i).map(str::to_string)))
        .collect();

    // Before the route agent: no way to the remote.
    assert!(!ping(lab.node(1), REMOTE_POD));

    // n0 is the gateway.
    lab.cable_up(0);
    for (i, a) in appliers.iter_mut().enumerate() {
        let want = desired(&lab, i, 0);
        assert_eq!(want.role == Role::Gateway, i == 0);
        let ch = a.apply(&want, true).unwrap();
        assert!(ch.vxlan_created && ch.nft_written, "{ch:?}");
        // Applying again changes nothing; a full apply only rewrites the
        // nftables table (atomically, with the same contents).
        let again = a.apply(&want, false).unwrap();
        assert!(!again.any(), "{again:?}");
        let full = a.apply(&want, true).unwrap();
        assert!(unchanged_but_nft(&full), "{full:?}");
    }
    for i in 0..3 {
        assert!(ferry_net::link_exists(lab.node(i), VX_FERRY).unwrap());
        assert!(
            ferry_net::rule_exists(lab.node(i), ROUTE_AGENT_RULE_PRIORITY, ROUTE_AGENT_TABLE)
                .unwrap()
        );
        assert_eq!(sysctl(lab.node(i), "net.ipv4.conf.vx-ferry.rp_filter"), "2");
        // Strict rp_filter on the underlay was loosened.
        assert_eq!(sysctl(lab.node(i), "net.ipv4.conf.eth0.rp_filter"), "2");
        let tables = ferry_net::nft(lab.node(i), &["list", "table", "ip", "ferry"]).unwrap();
        assert!(
            tables.contains("elements = { 100.127.1.0/24, 100.127.2.0/24 }"),
            "{tables}"
        );
    }
    assert!(
        route_vias(lab.node(0)).is_empty(),
        "the gateway routes nothing"
    );
    assert_eq!(sysctl(lab.node(0), "net.ipv4.ip_forward"), "1");
    assert_eq!(sysctl(lab.node(2), "net.ipv4.ip_forward"), "0");
    let via_n0 = vec![
        "100.127.1.0/24 via 198.18.252.1".to_string(),
        "100.127.2.0/24 via 198.18.252.1".to_string(),
    ];
    assert_eq!(route_vias(lab.node(1)), via_n0);
    assert_eq!(route_vias(lab.node(2)), via_n0);

    // Host traffic leaves from each node's pod-CIDR address: n1's pod
    // gateway (its veth holds it), the first of the podCIDR elsewhere; it is
    // on vx-ferry too, so it stays whatever happens to the pods.
    for i in 0..3 {
        let want = desired(&lab, i, 0);
        let source = want.host_source.as_ref().unwrap();
        assert_eq!(source.ip, host_source(i), "n{i}");
        let on_vx: Vec<_> = ferry_net::list_addrs(lab.node(i), Some(VX_FERRY))
            .unwrap()
            .into_iter()
            .map(|a| (a.ip, a.prefix))
            .collect();
        assert!(on_vx.contains(&(host_source(i), 32)), "n{i}: {on_vx:?}");
    }
    assert!(matches!(
        desired(&lab, 1, 0).host_source.unwrap().origin,
        SourceOrigin::Interface(dev) if dev == "vp1"
    ));
    assert!(
        ferry_net::list_routes(lab.node(1), ROUTE_AGENT_TABLE)
            .unwrap()
            .iter()
            .all(|r| r.src == Some(IpAddr::V4(host_source(1))))
    );

    // Node and pod reach the remote through vx-ferry and the gateway.
    let (tx, rx) = (
        counter(lab.node(1), VX_FERRY, "tx_packets"),
        counter(lab.node(0), VX_FERRY, "rx_packets"),
    );
    let seen = lab.remote_saw(host_source(1));
    assert!(ping(lab.node(1), REMOTE_POD), "n1 -> remote");
    assert!(
        lab.remote_saw(host_source(1)) > seen,
        "n1's ping did not come from its pod-CIDR address"
    );
    assert!(ping(lab.pod.ns(), REMOTE_POD), "pod -> remote");
    assert!(counter(lab.node(1), VX_FERRY, "tx_packets") >= tx + 2);
    assert!(counter(lab.node(0), VX_FERRY, "rx_packets") >= rx + 2);
    // ... with its own source address despite the CNI's masquerade rule.
    assert!(
        lab.remote_saw_pod() >= 1,
        "the pod's address was masqueraded"
    );

    // TCP from the pod: the SYN's MSS is clamped to the route MTU (1420 - 40).
    let mut server = mss_server(&lab);
    let mut out = BufReader::new(server.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "listening");
    assert!(tcp_connect_from_pod(&lab), "TCP pod -> remote");
    line.clear();
    out.read_line(&mut line).unwrap();
    server.wait().unwrap();
    let mss: u32 = line.trim().parse().unwrap();
    eprintln!("MSS seen by the remote: {mss}");
    assert!(mss <= 1380, "MSS {mss} was not clamped to 1380");

    // Failover: n2 becomes the gateway.
    lab.cable_down(0);
    lab.cable_up(2);
    let want1 = desired(&lab, 1, 2);
    let ch = appliers[1].apply(&want1, false).unwrap();
    assert_eq!((ch.routes_replaced, ch.routes_deleted), (2, 0), "{ch:?}");
    assert_eq!(
        ch.entries_changed, 4,
        "new fdb + neigh, old fdb + neigh: {ch:?}"
    );
    assert!(!ch.nft_written, "the sets did not change");
    eprintln!("n1 re-pointed in {:?}", ch.took);
    assert!(ch.took < Duration::from_secs(1), "{:?}", ch.took);
    for i in [0, 2] {
        appliers[i].apply(&desired(&lab, i, 2), false).unwrap();
    }
    let via_n2 = vec![
        "100.127.1.0/24 via 198.18.252.3".to_string(),
        "100.127.2.0/24 via 198.18.252.3".to_string(),
    ];
    assert_eq!(route_vias(lab.node(1)), via_n2);
    assert_eq!(route_vias(lab.node(0)), via_n2);
    assert!(route_vias(lab.node(2)).is_empty());
    assert_eq!(sysctl(lab.node(2), "net.ipv4.ip_forward"), "1");
    // The old gateway's entries are gone from n1.
    let fdb = ferry_net::list_fdb(lab.node(1), VX_FERRY).unwrap();
    assert_eq!(fdb.len(), 1);
    assert_eq!(fdb[0].dst, IpAddr::V4(NODE_IPS[2]));
    let neigh = ferry_net::list_neigh(lab.node(1), VX_FERRY).unwrap();
    assert_eq!(neigh.len(), 1);
    assert_eq!(neigh[0].ip, NODE_IPS[2]);
    // A full apply agrees with the incremental one.
    assert!(unchanged_but_nft(&appliers[1].apply(&want1, true).unwrap()));

    let rx = counter(lab.node(2), VX_FERRY, "rx_packets");
    assert!(ping(lab.pod.ns(), REMOTE_POD), "pod -> remote via n2");
    let seen = lab.remote_saw(host_source(0));
    assert!(
        ping(lab.node(0), REMOTE_POD),
        "old gateway -> remote via n2"
    );
    assert!(lab.remote_saw(host_source(0)) > seen, "n0's source");
    assert!(counter(lab.node(2), VX_FERRY, "rx_packets") >= rx + 2);

    // Drift is repaired by a full apply.
    ferry_net::delete_rule(lab.node(1), ROUTE_AGENT_RULE_PRIORITY).unwrap();
    ferry_net::flush_table(lab.node(1), ROUTE_AGENT_TABLE).unwrap();
    assert!(!ping(lab.node(1), REMOTE_POD));
    appliers[1].apply(&want1, true).unwrap();
    assert!(ping(lab.node(1), REMOTE_POD));

    // The pod goes, and with its veth the CNI's copy of the address: the
    // route agent's copy on vx-ferry keeps the routes and the node's traffic.
    ferry_net::delete_link(lab.node(1), "vp1").unwrap();
    let want1 = desired(&lab, 1, 2);
    assert!(matches!(
        want1.host_source.as_ref().unwrap().origin,
        SourceOrigin::NodePodCidr(_)
    ));
    let ch = appliers[1].apply(&want1, false).unwrap();
    assert!(!ch.any(), "the same address, nothing to do: {ch:?}");
    assert!(ping(lab.node(1), REMOTE_POD), "n1 -> remote without pods");

    // Cleanup removes everything, and only ferry's.
    let removed = apply::cleanup(lab.node(1)).unwrap();
    assert_eq!((removed.routes, removed.rules, removed.vxlan), (2, 1, true));
    assert!(!ferry_net::link_exists(lab.node(1), VX_FERRY).unwrap());
    assert!(route_vias(lab.node(1)).is_empty());
    assert!(
        !ferry_net::rule_exists(lab.node(1), ROUTE_AGENT_RULE_PRIORITY, ROUTE_AGENT_TABLE).unwrap()
    );
    let tables = ferry_net::nft(lab.node(1), &["list", "tables"]).unwrap();
    assert!(!tables.contains("ferry"), "{tables}");
    assert!(tables.contains("table ip cni"), "{tables}");
    assert!(!ping(lab.node(1), REMOTE_POD));
    // Cleaning up twice is fine.
    assert_eq!(apply::cleanup(lab.node(1)).unwrap(), Default::default());
}
