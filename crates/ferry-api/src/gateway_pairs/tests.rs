use super::*;
use crate::CableDriver;

fn ep(cluster: &str, slot: Option<usize>) -> EndpointSpec {
    EndpointSpec {
        cluster_id: cluster.into(),
        hostname: "n".into(),
        cable_driver: CableDriver::Wireguard,
        public_ip: None,
        private_ip: "198.18.0.1".parse().unwrap(),
        subnets: vec![],
        backend_config: slot
            .map(|s| BTreeMap::from([(GATEWAY_SLOT.to_string(), s.to_string())]))
            .unwrap_or_default(),
        health_check_ip: None,
    }
}

fn eps(list: &[(&str, &str, Option<usize>)]) -> BTreeMap<String, EndpointSpec> {
    list.iter()
        .map(|(n, c, s)| ((*n).to_string(), ep(c, *s)))
        .collect()
}

fn slot_map(list: &[(&str, usize)]) -> BTreeMap<String, usize> {
    list.iter().map(|(n, s)| ((*n).to_string(), *s)).collect()
}

fn pair_map(list: &[(&str, &str)]) -> BTreeMap<String, String> {
    list.iter()
        .map(|(l, r)| ((*l).to_string(), (*r).to_string()))
        .collect()
}

#[test]
fn claimed_slots_are_kept_and_a_clash_goes_to_the_lower_name() {
    let all = eps(&[
        ("a-n0", "a", Some(1)),
        ("a-n1", "a", Some(1)),
        ("a-n2", "a", None),
        ("b-m0", "b", Some(0)),
    ]);
    // n0 keeps 1; n1 (clash) and n2 (no claim) take 0 and 2 in name order.
    assert_eq!(
        slots("a", &all),
        slot_map(&[("a-n0", 1), ("a-n1", 0), ("a-n2", 2)])
    );
}

#[test]
fn a_new_gateway_claims_the_lowest_free_slot_and_a_published_one_keeps_its_own() {
    let all = eps(&[("a-n1", "a", Some(1)), ("a-n2", "a", Some(2))]);
    assert_eq!(slot_to_claim("a", "a-n0", &all), 0);
    assert_eq!(slot_to_claim("a", "a-n2", &all), 2);
    assert_eq!(slot_to_claim("a", "a-n0", &BTreeMap::new()), 0);
}

#[test]
fn equal_slots_pair_and_the_leftovers_pair_in_slot_order() {
    let local = slot_map(&[("a0", 0), ("a1", 1), ("a3", 3)]);
    let remote = slot_map(&[("b1", 1), ("b2", 2), ("b5", 5)]);
    assert_eq!(
        pairs(&local, &remote),
        pair_map(&[("a1", "b1"), ("a0", "b2"), ("a3", "b5")])
    );
    // Fewer remote gateways: the extra local ones have no partner.
    let one = slot_map(&[("b0", 0)]);
    assert_eq!(pairs(&local, &one), pair_map(&[("a0", "b0")]));
}

#[test]
fn losing_a_gateway_moves_only_its_own_pair() {
    let before = eps(&[
        ("a-n0", "a", Some(0)),
        ("a-n1", "a", Some(1)),
        ("b-m0", "b", Some(0)),
        ("b-m1", "b", Some(1)),
    ]);
    assert_eq!(
        pairs_by_cluster("a", &before)["b"],
        pair_map(&[("a-n0", "b-m0"), ("a-n1", "b-m1")])
    );
    let mut after = before.clone();
    after.remove("a-n0");
    // Gateway 1 keeps its partner (rank pairing would move it to m0);
    // m0 idles for cluster a, from both sides' view.
    assert_eq!(
        pairs_by_cluster("a", &after)["b"],
        pair_map(&[("a-n1", "b-m1")])
    );
    assert_eq!(
        pairs_by_cluster("b", &after)["a"],
        pair_map(&[("b-m1", "a-n1")])
    );
    // Holes on both sides still leave a pair.
    after.remove("b-m1");
    assert_eq!(
        pairs_by_cluster("b", &after)["a"],
        pair_map(&[("b-m0", "a-n1")])
    );
}

#[test]
fn active_passive_endpoints_without_slots_pair_with_the_first_gateway() {
    let all = eps(&[
        ("a", "a", None),
        ("b-m0", "b", Some(0)),
        ("b-m1", "b", Some(1)),
    ]);
    assert_eq!(pairs_by_cluster("a", &all)["b"], pair_map(&[("a", "b-m0")]));
    assert_eq!(pairs_by_cluster("b", &all)["a"], pair_map(&[("b-m0", "a")]));
}
