#![allow(clippy::unwrap_used)]
use super::*;

fn cluster(id: &str, cidrs: &[&str]) -> Cluster {
    Cluster::new(
        id,
        ferry_api::ClusterSpec {
            cluster_id: id.into(),
            cluster_cidrs: cidrs.iter().map(|c| c.parse().unwrap()).collect(),
            service_cidrs: Vec::new(),
            global_cidrs: Vec::new(),
            network_plugin: None,
        },
    )
}

#[test]
fn join_checks() {
    let existing = vec![
        cluster("a", &["100.64.0.0/16"]),
        cluster("b", &["100.66.0.0/16"]),
    ];
    let c = |s: &str| -> Vec<Cidr> { vec![s.parse().unwrap()] };
    struct Case {
        name: &'static str,
        id: &'static str,
        own: Option<&'static str>,
        cidrs: Vec<Cidr>,
        err: Option<&'static str>,
    }
    let cases = vec![
        Case {
            name: "free id, disjoint",
            id: "c",
            own: None,
            cidrs: c("100.68.0.0/16"),
            err: None,
        },
        Case {
            name: "bad id",
            id: "C_1",
            own: None,
            cidrs: vec![],
            err: Some("invalid cluster id"),
        },
        Case {
            name: "taken",
            id: "a",
            own: None,
            cidrs: c("100.68.0.0/16"),
            err: Some("is taken"),
        },
        Case {
            name: "re-join of the same cluster",
            id: "a",
            own: Some("a"),
            cidrs: c("100.64.0.0/16"),
            err: None,
        },
        Case {
            name: "already joined under another id",
            id: "c",
            own: Some("a"),
            cidrs: vec![],
            err: Some("already joined"),
        },
        Case {
            name: "overlap names the other cluster and both CIDRs",
            id: "c",
            own: None,
            cidrs: c("100.66.128.0/17"),
            err: Some(
                "CIDR 100.66.128.0/17 of cluster \"c\" overlaps CIDR 100.66.0.0/16 of cluster \"b\"",
            ),
        },
        Case {
            name: "own CIDRs overlap each other",
            id: "c",
            own: None,
            cidrs: vec![
                "100.70.0.0/16".parse().unwrap(),
                "100.70.1.0/24".parse().unwrap(),
            ],
            err: Some("overlaps"),
        },
    ];
    for case in cases {
        let got = check_join(&existing, case.id, case.own, &case.cidrs);
        match (got, case.err) {
            (Ok(()), None) => {}
            (Err(e), Some(want)) => {
                assert!(e.to_string().contains(want), "{}: {e}", case.name)
            }
            (got, want) => panic!("{}: got {got:?}, want {want:?}", case.name),
        }
    }
}

#[test]
fn refusals_are_typed() {
    let existing = vec![cluster("a", &["100.64.0.0/16"])];
    let refusal = |id, own, cidr: Option<&str>| {
        let cidrs: Vec<Cidr> = cidr.iter().map(|c| c.parse().unwrap()).collect();
        match check_join(&existing, id, own, &cidrs) {
            Err(Error::Refused(r)) => r,
            other => panic!("{id}: {other:?}"),
        }
    };
    assert_eq!(
        refusal("a", None, None),
        Refusal::IdTaken { id: "a".into() }
    );
    assert_eq!(
        refusal("b", Some("a"), None),
        Refusal::AlreadyJoined {
            own: "a".into(),
            wanted: "b".into()
        }
    );
    assert_eq!(
        refusal("b", None, Some("100.64.8.0/24")),
        Refusal::CidrOverlap {
            cidr: "100.64.8.0/24".parse().unwrap(),
            cluster: "b".into(),
            other_cidr: "100.64.0.0/16".parse().unwrap(),
            other_cluster: "a".into(),
        }
    );
}

#[test]
fn cable_settings_that_contradict_the_driver_are_refused() {
    let info = BrokerInfo::new("https://b:6443", "ca", "tok", &[1; 32]);
    let opts = |driver: Option<CableDriver>, gateway: GatewaySettings| JoinOptions {
        cluster_id: "c1".into(),
        cluster_cidrs: vec!["100.64.0.0/16".parse().unwrap()],
        service_cidrs: vec!["100.96.0.0/16".parse().unwrap()],
        cable_driver: driver,
        gateway_node: None,
        image: "ferry:0".into(),
        gateway,
        globalnet: None,
        network_plugin: None,
    };
    let lifetimes = GatewaySettings {
        ipsec_child_lifetime: Some(std::time::Duration::from_secs(90)),
        ..GatewaySettings::default()
    };
    check_settings(&opts(Some(CableDriver::Ipsec), lifetimes.clone()), &info).unwrap();
    // The broker's default driver (wireguard) has no SAs to give lifetimes.
    match check_settings(&opts(None, lifetimes), &info) {
        Err(Error::Unsupported(u)) => assert_eq!(
            u,
            Unsupported::IpsecLifetimeWithoutIpsec {
                flag: "--ipsec-child-lifetime",
                driver: CableDriver::Wireguard
            }
        ),
        other => panic!("{other:?}"),
    }
    let port = GatewaySettings {
        nat_port: Some(4501),
        ..GatewaySettings::default()
    };
    check_settings(&opts(Some(CableDriver::Ipsec), port.clone()), &info).unwrap();
    assert!(matches!(
        check_settings(&opts(Some(CableDriver::Vxlan), port), &info),
        Err(Error::Unsupported(Unsupported::NatPortWithVxlan {
            port: 4501
        }))
    ));
}
