use super::*;

fn local(driver: CableDriver) -> LocalGateway {
    LocalGateway {
        cluster_id: "cluster0".into(),
        driver,
        private_ip: "198.18.100.10".parse().unwrap(),
        public_ip: "198.19.0.10".parse().unwrap(),
        preferred_server: false,
    }
}

fn spec(driver: CableDriver, private: &str, public: Option<&str>) -> EndpointSpec {
    EndpointSpec {
        cluster_id: "cluster1".into(),
        hostname: "cluster1-node0".into(),
        cable_driver: driver,
        public_ip: public.map(|p| p.parse().unwrap()),
        private_ip: private.parse().unwrap(),
        subnets: Cidr::parse_list("100.65.0.0/16,100.97.0.0/16,fd00::/64").unwrap(),
        backend_config: [
            (backend_config::PUBLIC_KEY.to_string(), "a2V5".to_string()),
            (backend_config::PORT.to_string(), "4600".to_string()),
            (
                backend_config::HEALTH_CHECK_PORT.to_string(),
                "4900".to_string(),
            ),
        ]
        .into(),
        health_check_ip: Some("100.65.0.1".parse().unwrap()),
    }
}

fn sa(s: &str) -> std::net::SocketAddrV4 {
    s.parse().unwrap()
}

fn reach(ip: &str, nat: bool) -> Outcome {
    Outcome::Reach {
        via: crate::nat_discovery::Via::Public,
        ip: ip.parse().unwrap(),
        nat,
        seen_as: sa("198.19.0.1:40123"),
    }
}

fn found(outcome: Outcome, inbound_seen: bool, timed_out: bool) -> Found {
    Found {
        outcome,
        inbound_seen,
        timed_out,
    }
}

/// Both sides answer each other: the public address, NAT as reported.
fn reached() -> Found {
    found(reach("198.19.1.10", false), true, false)
}

fn plan_wg(f: &Found) -> Result<RemoteGateway, NotCabled> {
    plan(
        &local(CableDriver::Wireguard),
        "cluster1",
        &spec(CableDriver::Wireguard, "198.18.101.10", Some("198.19.1.10")),
        f,
    )
}

fn plan_vx(f: &Found) -> Result<RemoteGateway, NotCabled> {
    let mut vx = spec(CableDriver::Vxlan, "198.18.101.10", Some("198.19.1.10"));
    vx.backend_config.remove(backend_config::PUBLIC_KEY);
    plan(&local(CableDriver::Vxlan), "cluster1", &vx, f)
}

#[test]
fn the_address_that_answered_is_used_and_this_side_initiates() {
    let r = plan_wg(&found(reach("198.19.1.10", true), false, false)).unwrap();
    assert_eq!(r.using_ip.to_string(), "198.19.1.10");
    assert!(r.using_nat && r.initiate);
    let r = plan_wg(&reached()).unwrap();
    assert!(!r.using_nat, "no rewriting reported: no NAT");
}

#[test]
fn a_remote_behind_nat_opens_the_cable_from_its_side() {
    let f = found(
        Outcome::InboundOnly {
            from: sa("198.19.1.1:51000"),
            nat: true,
        },
        true,
        false,
    );
    let r = plan_wg(&f).unwrap();
    assert_eq!(r.using_ip.to_string(), "198.19.1.1");
    assert!(r.using_nat && !r.initiate);
}

#[test]
fn nothing_decided_yet_is_waiting() {
    let err = plan_wg(&found(Outcome::Probing, false, false)).unwrap_err();
    assert!(matches!(err, NotCabled::Waiting(_)), "{err:?}");
    assert!(err.message().contains("probing"), "{}", err.message());
}

#[test]
fn unreachable_falls_back_to_the_endpoint_settings() {
    let f = found(Outcome::Unreachable, false, true);
    let r = plan_wg(&f).unwrap();
    assert_eq!(r.using_ip.to_string(), "198.19.1.10");
    assert!(r.using_nat && r.initiate);
    // natEnabled=false (join --natt=false): its private IP.
    let mut s = spec(CableDriver::Wireguard, "198.18.101.10", Some("198.19.1.10"));
    s.backend_config
        .insert(backend_config::NAT_ENABLED.into(), "false".into());
    let r = plan(&local(CableDriver::Wireguard), "cluster1", &s, &f).unwrap();
    assert_eq!(r.using_ip.to_string(), "198.18.101.10");
    assert!(!r.using_nat);
}

#[test]
fn a_preferred_server_waits_for_a_remote_that_reaches_it() {
    let mut me = local(CableDriver::Wireguard);
    me.preferred_server = true;
    let s = spec(CableDriver::Wireguard, "198.18.101.10", Some("198.19.1.10"));
    let r = plan(&me, "cluster1", &s, &reached()).unwrap();
    assert!(!r.initiate, "the other side initiates");
    // It still initiates towards a remote that has not reached it…
    let f = found(reach("198.19.1.10", true), false, false);
    assert!(plan(&me, "cluster1", &s, &f).unwrap().initiate);
    // …and towards another preferred server.
    let mut both = s.clone();
    both.backend_config
        .insert(backend_config::PREFERRED_SERVER.into(), "true".into());
    assert!(plan(&me, "cluster1", &both, &reached()).unwrap().initiate);
}

#[test]
fn vxlan_needs_both_directions() {
    assert!(plan_vx(&reached()).is_ok());
    // This side behind NAT: it reaches the remote, the remote's probes never arrive.
    let one_way = found(reach("198.19.1.10", true), false, false);
    assert!(matches!(
        plan_vx(&one_way).unwrap_err(),
        NotCabled::Waiting(_)
    ));
    let err = plan_vx(&found(reach("198.19.1.10", true), false, true)).unwrap_err();
    let NotCabled::Unusable(m) = err else {
        panic!("{err:?}")
    };
    assert!(
        m.starts_with("the vxlan cable cannot cross this NAT")
            && m.contains("198.19.0.1:40123")
            && m.contains("--cable-driver wireguard"),
        "{m}"
    );
    // The remote behind NAT: its addresses may still answer, then not.
    let inbound = Outcome::InboundOnly {
        from: sa("198.19.1.1:51000"),
        nat: true,
    };
    let err = plan_vx(&found(inbound, true, false)).unwrap_err();
    assert!(matches!(err, NotCabled::Waiting(_)), "{err:?}");
    let err = plan_vx(&found(inbound, true, true)).unwrap_err();
    assert!(
        matches!(&err, NotCabled::Unusable(m) if m.contains("its probes arrive from 198.19.1.1:51000")),
        "{err:?}"
    );
}

#[test]
fn carries_ports_key_health_check_and_v4_subnets() {
    let r = plan(
        &local(CableDriver::Wireguard),
        "cluster1",
        &spec(CableDriver::Wireguard, "198.18.101.10", None),
        &reached(),
    )
    .unwrap();
    assert_eq!(r.port, 4600);
    assert_eq!(r.public_key.as_deref(), Some("a2V5"));
    assert_eq!(r.health_check, Some("100.65.0.1:4900".parse().unwrap()));
    assert_eq!(
        r.subnets,
        Cidr::parse_list("100.65.0.0/16,100.97.0.0/16").unwrap()
    );
}

#[test]
fn unusable_remotes_say_why() {
    let err = plan(
        &local(CableDriver::Wireguard),
        "cluster1",
        &spec(CableDriver::Vxlan, "198.18.101.10", None),
        &reached(),
    )
    .unwrap_err();
    assert!(
        err.message().starts_with(
            "cable driver mismatch: cluster cluster1 uses vxlan, this cluster uses wireguard"
        ),
        "{}",
        err.message()
    );
    let mut no_key = spec(CableDriver::Wireguard, "198.18.101.10", None);
    no_key.backend_config.remove(backend_config::PUBLIC_KEY);
    let err = plan(
        &local(CableDriver::Wireguard),
        "cluster1",
        &no_key,
        &reached(),
    )
    .unwrap_err();
    assert!(err.message().contains("no WireGuard public key"), "{err:?}");
    // VXLAN needs no key.
    let mut vx = spec(CableDriver::Vxlan, "198.18.101.10", None);
    vx.backend_config.remove(backend_config::PUBLIC_KEY);
    assert!(plan(&local(CableDriver::Vxlan), "cluster1", &vx, &reached()).is_ok());
    let mut bad_port = spec(CableDriver::Wireguard, "198.18.101.10", None);
    bad_port
        .backend_config
        .insert(backend_config::PORT.into(), "99999".into());
    let err = plan(
        &local(CableDriver::Wireguard),
        "cluster1",
        &bad_port,
        &reached(),
    )
    .unwrap_err();
    assert!(
        err.message().contains("\"99999\" is not a UDP port"),
        "{err:?}"
    );
}

fn plan_ipsec(local: &LocalGateway, remote_preferred: bool, f: &Found) -> RemoteGateway {
    let mut s = spec(CableDriver::Ipsec, "198.18.101.10", Some("198.19.1.10"));
    s.backend_config.remove(backend_config::PUBLIC_KEY);
    if remote_preferred {
        s.backend_config
            .insert(backend_config::PREFERRED_SERVER.into(), "true".into());
    }
    plan(local, "cluster1", &s, f).unwrap()
}

#[test]
fn exactly_one_side_opens_an_ipsec_cable() {
    let lower = local(CableDriver::Ipsec);
    let higher = LocalGateway {
        cluster_id: "cluster2".into(),
        ..local(CableDriver::Ipsec)
    };
    // Both reach each other: the lower cluster id (cluster0 < cluster1) opens,
    // whatever the order the probes arrived in.
    for f in [reached(), found(reach("198.19.1.10", false), false, false)] {
        let r = plan_ipsec(&lower, false, &f);
        assert!(r.initiate, "{f:?}");
        assert_eq!(r.port, 4600, "the port its Endpoint publishes");
        assert!(!plan_ipsec(&higher, false, &f).initiate, "{f:?}");
    }
    // The higher one opens when the lower one cannot reach it: its probes
    // never arrived within the timeout, ours are answered.
    let one_way = found(reach("198.19.1.10", true), false, true);
    assert!(plan_ipsec(&higher, false, &one_way).initiate);
    // Only its probes reach us: it opens, not us, even as the lower id.
    let inbound = found(
        Outcome::InboundOnly {
            from: sa("198.19.1.10:4490"),
            nat: true,
        },
        true,
        true,
    );
    assert!(!plan_ipsec(&lower, false, &inbound).initiate);
    // A preferred server waits; the other side opens whatever the ids.
    assert!(plan_ipsec(&higher, true, &reached()).initiate);
    let preferred_lower = LocalGateway {
        preferred_server: true,
        ..local(CableDriver::Ipsec)
    };
    assert!(!plan_ipsec(&preferred_lower, false, &reached()).initiate);
    // Both preferred: back to the cluster ids.
    assert!(plan_ipsec(&preferred_lower, true, &reached()).initiate);
    // Nothing crossed: the Endpoint's address is tried by the lower id only.
    let blocked = found(Outcome::Unreachable, false, true);
    assert!(plan_ipsec(&lower, false, &blocked).initiate);
    assert!(!plan_ipsec(&higher, false, &blocked).initiate);
}

fn endpoints(names: &[(&str, &str)]) -> BTreeMap<String, EndpointSpec> {
    names
        .iter()
        .map(|(cluster, name)| {
            let mut s = spec(CableDriver::Wireguard, "198.18.100.20", None);
            s.cluster_id = (*cluster).into();
            ((*name).to_string(), s)
        })
        .collect()
}

fn slotted(names: &[(&str, &str, usize)]) -> BTreeMap<String, EndpointSpec> {
    let mut eps = endpoints(&names.iter().map(|(c, n, _)| (*c, *n)).collect::<Vec<_>>());
    for (_, name, slot) in names {
        if let Some(s) = eps.get_mut(*name) {
            s.backend_config.insert(
                ferry_api::ferry::backend_config::GATEWAY_SLOT.into(),
                slot.to_string(),
            );
        }
    }
    eps
}

fn partner_names(local: &str, me: &str, eps: &BTreeMap<String, EndpointSpec>) -> Vec<String> {
    partners(local, me, eps).into_keys().collect()
}

#[test]
fn active_active_gateways_pair_by_slot_and_both_sides_agree() {
    let mut eps = slotted(&[
        ("a", "a-n0", 0),
        ("a", "a-n1", 1),
        ("b", "b-n0", 0),
        ("b", "b-n1", 1),
    ]);
    eps.extend(endpoints(&[("c", "c")]));
    assert_eq!(partner_names("a", "a-n0", &eps), ["b-n0", "c"]);
    // The second gateway has no partner in the one-gateway cluster c.
    assert_eq!(partner_names("a", "a-n1", &eps), ["b-n1"]);
    // b's second gateway pairs back with a's second.
    assert_eq!(partner_names("b", "b-n1", &eps), ["a-n1"]);
    // c's single (active-passive) gateway pairs with each cluster's first.
    assert_eq!(partner_names("c", "c", &eps), ["a-n0", "b-n0"]);
    // Not published yet: no cable.
    assert!(partner_names("a", "a-n9", &eps).is_empty());
}

#[test]
fn losing_a_gateway_keeps_the_other_pairs() {
    // a-n0 is gone: a-n1 keeps b-n1 (its flows never touched a-n0), and
    // b-n0 idles for cluster a.
    let eps = slotted(&[("a", "a-n1", 1), ("b", "b-n0", 0), ("b", "b-n1", 1)]);
    assert_eq!(partner_names("a", "a-n1", &eps), ["b-n1"]);
    assert_eq!(partner_names("b", "b-n1", &eps), ["a-n1"]);
    assert!(partner_names("b", "b-n0", &eps).is_empty());
}
