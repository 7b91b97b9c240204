use super::*;

fn local(driver: CableDriver) -> LocalGateway {
    LocalGateway {
        driver,
        private_ip: "198.18.100.10".parse().unwrap(),
        public_ip: "198.19.0.10".parse().unwrap(),
        attached: Cidr::parse_list("198.18.100.0/24,198.19.0.0/16").unwrap(),
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

#[test]
fn address_choice() {
    struct Case {
        name: &'static str,
        private: &'static str,
        public: Option<&'static str>,
        using: &'static str,
        nat: bool,
    }
    let cases = [
        Case {
            name: "other network: public address, NAT in between",
            private: "198.18.101.10",
            public: Some("198.19.1.10"),
            using: "198.19.1.10",
            nat: true,
        },
        Case {
            name: "same node network: private address",
            private: "198.18.100.11",
            public: Some("198.19.1.10"),
            using: "198.18.100.11",
            nat: false,
        },
        Case {
            name: "behind the same public address: private",
            private: "198.18.101.10",
            public: Some("198.19.0.10"),
            using: "198.18.101.10",
            nat: false,
        },
        Case {
            name: "no public address: private",
            private: "198.18.101.10",
            public: None,
            using: "198.18.101.10",
            nat: false,
        },
        Case {
            name: "public equals private: no NAT",
            private: "198.18.102.10",
            public: Some("198.18.102.10"),
            using: "198.18.102.10",
            nat: false,
        },
    ];
    for c in cases {
        let r = plan(
            &local(CableDriver::Wireguard),
            "cluster1",
            &spec(CableDriver::Wireguard, c.private, c.public),
        )
        .unwrap();
        assert_eq!(r.using_ip.to_string(), c.using, "{}", c.name);
        assert_eq!(r.using_nat, c.nat, "{}", c.name);
    }
}

#[test]
fn carries_ports_key_health_check_and_v4_subnets() {
    let r = plan(
        &local(CableDriver::Wireguard),
        "cluster1",
        &spec(CableDriver::Wireguard, "198.18.101.10", None),
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
    )
    .unwrap_err();
    assert!(
        err.0.starts_with(
            "cable driver mismatch: cluster cluster1 uses vxlan, this cluster uses wireguard"
        ),
        "{}",
        err.0
    );
    let mut no_key = spec(CableDriver::Wireguard, "198.18.101.10", None);
    no_key.backend_config.remove(backend_config::PUBLIC_KEY);
    let err = plan(&local(CableDriver::Wireguard), "cluster1", &no_key).unwrap_err();
    assert!(err.0.contains("no WireGuard public key"), "{}", err.0);
    // VXLAN needs no key.
    let mut vx = spec(CableDriver::Vxlan, "198.18.101.10", None);
    vx.backend_config.remove(backend_config::PUBLIC_KEY);
    assert!(plan(&local(CableDriver::Vxlan), "cluster1", &vx).is_ok());
    let mut bad_port = spec(CableDriver::Wireguard, "198.18.101.10", None);
    bad_port
        .backend_config
        .insert(backend_config::PORT.into(), "99999".into());
    let err = plan(&local(CableDriver::Wireguard), "cluster1", &bad_port).unwrap_err();
    assert!(err.0.contains("\"99999\" is not a UDP port"), "{}", err.0);
}
