use super::*;
use ferry_api::CableDriver;
use ferry_api::ferry::backend_config::GATEWAY_SLOT;

fn ep(cluster: &str, ip: &str, slot: Option<usize>) -> EndpointSpec {
    EndpointSpec {
        cluster_id: cluster.into(),
        hostname: "n".into(),
        cable_driver: CableDriver::Wireguard,
        public_ip: None,
        private_ip: ip.parse().unwrap(),
        subnets: vec![],
        backend_config: slot
            .map(|s| BTreeMap::from([(GATEWAY_SLOT.to_string(), s.to_string())]))
            .unwrap_or_default(),
        health_check_ip: None,
    }
}

fn eps(list: &[(&str, &str, &str, Option<usize>)]) -> BTreeMap<String, EndpointSpec> {
    list.iter()
        .map(|(n, c, ip, s)| ((*n).to_string(), ep(c, ip, *s)))
        .collect()
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn a_gateway_probes_the_other_gateways_of_its_cluster_only() {
    let all = eps(&[
        ("a-n0", "a", "198.18.0.10", Some(0)),
        ("a-n1", "a", "198.18.0.11", Some(1)),
        ("a-n2", "a", "fd00::12", Some(2)),
        ("b-m0", "b", "198.18.1.10", Some(0)),
    ]);
    let t = peer_targets("a", "a-n0", &all, 4802);
    assert_eq!(
        t,
        BTreeMap::from([("a-n1".to_string(), addr("198.18.0.11:4802"))])
    );
    assert!(peer_targets("b", "b-m0", &all, 4802).is_empty());
}

#[test]
fn only_a_down_verdict_on_a_current_peer_withdraws_it() {
    let peers = BTreeMap::from([("a-n1".to_string(), addr("198.18.0.11:4802"))]);
    let at = addr("198.18.0.11:4802");
    assert!(should_withdraw("a-n1", at, Verdict::Down, &peers));
    assert!(!should_withdraw("a-n1", at, Verdict::Alive, &peers));
    assert!(!should_withdraw("a-n1", at, Verdict::Unknown, &peers));
    // Already withdrawn, or re-published from another address.
    assert!(!should_withdraw("a-n2", at, Verdict::Down, &peers));
    assert!(!should_withdraw(
        "a-n1",
        addr("198.18.0.12:4802"),
        Verdict::Down,
        &peers
    ));
}

#[test]
fn an_own_endpoint_withdrawn_while_alive_is_published_again() {
    let before = eps(&[
        ("a-n0", "a", "198.18.0.10", Some(0)),
        ("a-n1", "a", "198.18.0.11", Some(1)),
    ]);
    let mut after = before.clone();
    after.remove("a-n0");
    assert_eq!(
        check_own_endpoint("a", "a-n0", &before, &after),
        Some(Republish::Withdrawn)
    );
    // Not published yet (never seen): nothing to do; unchanged: nothing.
    assert_eq!(check_own_endpoint("a", "a-n0", &after, &after), None);
    assert_eq!(check_own_endpoint("a", "a-n1", &before, &before), None);
}

#[test]
fn a_slot_clash_makes_the_higher_name_claim_the_slot_it_holds_once() {
    let clash = eps(&[
        ("a-n0", "a", "198.18.0.10", Some(0)),
        ("a-n1", "a", "198.18.0.11", Some(0)),
    ]);
    assert_eq!(check_own_endpoint("a", "a-n0", &clash, &clash), None);
    assert_eq!(
        check_own_endpoint("a", "a-n1", &clash, &clash),
        Some(Republish::SlotClash {
            claimed: Some(0),
            holds: 1
        })
    );
    // Once it claims what it holds, nobody has to write again.
    let settled = eps(&[
        ("a-n0", "a", "198.18.0.10", Some(0)),
        ("a-n1", "a", "198.18.0.11", Some(1)),
    ]);
    for me in ["a-n0", "a-n1"] {
        assert_eq!(check_own_endpoint("a", me, &clash, &settled), None);
    }
}
