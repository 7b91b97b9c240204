#![allow(clippy::unwrap_used)]
use std::collections::BTreeSet;
use std::fmt::Write;
use std::net::Ipv4Addr;

use ferry_net::IfAddr;

use super::*;
use crate::plan::{ActiveGateway, ClusterView};

fn cidrs(list: &[&str]) -> BTreeSet<Cidr> {
    list.iter().map(|c| c.parse().unwrap()).collect()
}

fn addr(dev: &str, ip: &str) -> IfAddr {
    IfAddr {
        dev: dev.into(),
        ip: ip.parse().unwrap(),
        prefix: 16,
    }
}

/// A kube-ovn-shaped cluster: pods in ovn-default 100.70.0.0/16, nodes'
/// ovn0 in join 100.71.0.0/16, services 100.72.0.0/16; one remote cluster.
fn view(plugin: NetworkPlugin, gateway: &str) -> ClusterView {
    ClusterView {
        gateway: Some(ActiveGateway {
            hostname: gateway.into(),
            ip: Ipv4Addr::new(198, 18, 0, 10),
        }),
        local_cidrs: cidrs(&["100.70.0.0/16", "100.71.0.0/16", "100.72.0.0/16"]),
        local_pod_cidrs: cidrs(&["100.70.0.0/16", "100.71.0.0/16"]),
        remote_cidrs: cidrs(&["100.80.0.0/16", "100.82.0.0/16"]),
        network_plugin: plugin,
        ..ClusterView::default()
    }
}

/// Node n1: kube-ovn gives it no podCIDR but `ovn0` in the join subnet
/// (and Calico a `vxlan.calico` address in the pod range).
fn node(addresses: Vec<IfAddr>) -> NodeFacts {
    let mut all = vec![addr("eth0", "198.18.0.11")];
    all.extend(addresses);
    NodeFacts {
        name: "n1".into(),
        ip: Ipv4Addr::new(198, 18, 0, 11),
        underlay_dev: "eth0".into(),
        underlay_mtu: 1500,
        pod_cidrs: Vec::new(),
        addresses: all,
    }
}

/// What a plan does, as text: host source, routes, rp_filter, CNI objects
/// (the nft ruleset is the generic one, snapshot in `nft`).
fn describe(d: &Desired) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "role: {:?}", d.role);
    let _ = writeln!(out, "host source: {:?}", d.host_source);
    for r in &d.routes {
        let _ = writeln!(
            out,
            "route {} via {:?} dev {:?} src {:?}",
            r.dst, r.via, r.dev, r.src
        );
    }
    let _ = writeln!(out, "loose rp_filter: {:?}", d.loose_rp_filter);
    let _ = writeln!(out, "nft local: {:?}", d.nft.local);
    for o in &d.cni_objects {
        out.push_str("---\n");
        out.push_str(&serde_yaml_ng::to_string(o).unwrap());
    }
    out
}

#[test]
fn kube_ovn_sources_node_traffic_from_ovn0_in_the_join_subnet() {
    let n = node(vec![
        addr("ovn0", "100.71.0.3"),
        addr("br-int", "100.70.0.1"),
    ]);
    let d = plan(&n, &view(NetworkPlugin::KubeOvn, "n0"));
    insta::assert_snapshot!(describe(&d));
    // The generic handler would have picked the lowest address inside the
    // pod CIDRs, not ovn0's.
    let generic = plan(&n, &view(NetworkPlugin::Generic, "n0"));
    assert_eq!(
        generic.host_source.unwrap().origin,
        SourceOrigin::Interface("br-int".into())
    );
}

#[test]
fn kube_ovn_refuses_a_source_outside_the_pod_cidrs_or_without_ovn0() {
    let mut v = view(NetworkPlugin::KubeOvn, "n0");
    // Joined with only ovn-default in --clustercidr.
    v.local_pod_cidrs = cidrs(&["100.70.0.0/16"]);
    let d = plan(&node(vec![addr("ovn0", "100.71.0.3")]), &v);
    let why = d.host_source.unwrap_err();
    assert!(why.contains("--clustercidr"), "{why}");
    assert!(d.routes.iter().all(|r| r.src.is_none()));
    let d = plan(&node(vec![]), &view(NetworkPlugin::KubeOvn, "n0"));
    assert!(
        d.host_source
            .unwrap_err()
            .contains("no IPv4 address on ovn0")
    );
}

#[test]
fn calico_gateway_keeps_an_ippool_per_remote_cidr() {
    let n = node(vec![addr("vxlan.calico", "100.70.4.0")]);
    let on_gateway = plan(&n, &view(NetworkPlugin::Calico, "n1"));
    insta::assert_snapshot!(describe(&on_gateway));
    // Other nodes leave the IPPools to the gateway.
    let elsewhere = plan(&n, &view(NetworkPlugin::Calico, "n0"));
    assert!(elsewhere.cni_objects.is_empty());
    assert_eq!(
        elsewhere.host_source.unwrap().origin,
        SourceOrigin::Interface("vxlan.calico".into())
    );
}

#[test]
fn generic_and_flannel_plans_are_the_plain_plan() {
    let n = node(vec![addr("cni0", "100.70.1.1")]);
    for p in [NetworkPlugin::Generic, NetworkPlugin::Flannel] {
        let v = view(p, "n0");
        assert_eq!(plan(&n, &v), plan::plan(&n, &v), "{p}");
    }
}
