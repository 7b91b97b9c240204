#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use ferry_api::{CableDriver, Cidr, EndpointSpec};

use super::*;

fn state() -> NatState {
    let (identity, _) = watch::channel(None);
    let (outgoing, _) = mpsc::channel(1);
    NatState::new(identity, outgoing)
}

/// Cluster `cluster1`'s Endpoint with its gateway on node `k`.
fn remotes(k: u8) -> BTreeMap<String, EndpointSpec> {
    let spec = EndpointSpec {
        cluster_id: "cluster1".into(),
        hostname: format!("cluster1-node{k}"),
        cable_driver: CableDriver::Vxlan,
        public_ip: Some(format!("198.19.1.{}", 10 + k).parse().unwrap()),
        private_ip: format!("198.18.101.{}", 10 + k).parse().unwrap(),
        subnets: Cidr::parse_list("100.65.0.0/16").unwrap(),
        backend_config: Default::default(),
        health_check_ip: None,
    };
    [("cluster1".to_string(), spec)].into()
}

/// A probe from cluster1's gateway on node `k`, as sent over the public net.
fn probe(k: u8) -> (SocketAddrV4, Request) {
    let from: SocketAddrV4 = format!("198.19.1.{}:4490", 10 + k).parse().unwrap();
    let req = Request {
        request_number: 7,
        sender: Peer {
            cluster_id: "cluster1".into(),
            endpoint: "cluster1".into(),
        },
        receiver: Peer {
            cluster_id: "cluster0".into(),
            endpoint: "cluster0".into(),
        },
        using_src: from,
        using_dst: "198.19.0.10:4490".parse().unwrap(),
    };
    (from, req)
}

fn inbound_seen(s: &NatState) -> bool {
    s.found("cluster1", Instant::now()).inbound_seen
}

#[test]
fn a_new_gateways_probe_before_its_endpoint_counts_for_its_discovery() {
    let mut s = state();
    s.track(&remotes(0), "cluster0");
    assert!(!inbound_seen(&s));
    // Failover in cluster1: node1 probes before its Endpoint arrives.
    let (from, req) = probe(1);
    assert!(s.on_request(from, req, true));
    s.track(&remotes(1), "cluster0");
    assert!(
        inbound_seen(&s),
        "node1's probe was lost with the old discovery"
    );
}

#[test]
fn the_old_gateways_probe_does_not_count_for_the_new_one() {
    let mut s = state();
    s.track(&remotes(0), "cluster0");
    let (from, req) = probe(0);
    assert!(s.on_request(from, req, true));
    s.track(&remotes(1), "cluster0");
    assert!(!inbound_seen(&s));
}

#[test]
fn a_probe_before_any_endpoint_is_kept_and_a_passive_gateway_ignores_probes() {
    let mut s = state();
    let (from, req) = probe(0);
    assert!(!s.on_request(from, req.clone(), false));
    assert!(s.on_request(from, req, true));
    s.track(&remotes(0), "cluster0");
    assert!(inbound_seen(&s));
}
