use super::*;
use serde_json::json;

#[test]
fn cluster_round_trips_camel_case() {
    let spec = ClusterSpec {
        cluster_id: "cluster0".into(),
        cluster_cidrs: Cidr::parse_list("100.64.0.0/16,fd00:64::/64").unwrap(),
        service_cidrs: Cidr::parse_list("100.96.0.0/16").unwrap(),
        global_cidrs: vec![],
        network_plugin: None,
    };
    let obj = Cluster::new("cluster0", spec);
    let v = serde_json::to_value(&obj).unwrap();
    assert_eq!(v["apiVersion"], "ferry.dev/v1alpha1");
    assert_eq!(v["kind"], "Cluster");
    assert_eq!(
        v["spec"],
        json!({
            "clusterId": "cluster0",
            "clusterCidrs": ["100.64.0.0/16", "fd00:64::/64"],
            "serviceCidrs": ["100.96.0.0/16"],
        })
    );
    let back: Cluster = serde_json::from_value(v).unwrap();
    assert_eq!(back, obj);
}

#[test]
fn cluster_rejects_a_bad_cidr() {
    let v = json!({"clusterId": "c", "clusterCidrs": ["10.0.0.1/8"], "serviceCidrs": []});
    let err = serde_json::from_value::<ClusterSpec>(v)
        .unwrap_err()
        .to_string();
    assert!(err.contains("host bits"), "{err}");
}

#[test]
fn endpoint_round_trips() {
    let spec = EndpointSpec {
        cluster_id: "cluster1".into(),
        hostname: "gw-1".into(),
        cable_driver: CableDriver::Wireguard,
        public_ip: Some("198.18.0.2".parse().unwrap()),
        private_ip: "100.64.1.2".parse().unwrap(),
        subnets: Cidr::parse_list("100.65.0.0/16,100.97.0.0/16").unwrap(),
        backend_config: [
            (
                backend_config::PUBLIC_KEY.to_string(),
                "cHVibGlj".to_string(),
            ),
            (backend_config::PORT.to_string(), "4500".to_string()),
        ]
        .into(),
        health_check_ip: None,
    };
    let v = serde_json::to_value(&spec).unwrap();
    assert_eq!(
        v,
        json!({
            "clusterId": "cluster1",
            "hostname": "gw-1",
            "cableDriver": "wireguard",
            "publicIp": "198.18.0.2",
            "privateIp": "100.64.1.2",
            "subnets": ["100.65.0.0/16", "100.97.0.0/16"],
            "backendConfig": {"port": "4500", "publicKey": "cHVibGlj"},
        })
    );
    assert_eq!(serde_json::from_value::<EndpointSpec>(v).unwrap(), spec);
}

#[test]
fn cable_driver_names() {
    for d in CableDriver::ALL {
        assert_eq!(d.as_str().parse::<CableDriver>().unwrap(), d);
        assert_eq!(serde_json::to_value(d).unwrap(), json!(d.to_string()));
    }
    assert_eq!(CableDriver::default(), CableDriver::Wireguard);
    // Submariner's name for its IPsec driver, on the command line and in objects.
    assert_eq!(
        "libreswan".parse::<CableDriver>().unwrap(),
        CableDriver::Ipsec
    );
    assert_eq!(
        serde_json::from_value::<CableDriver>(json!("libreswan")).unwrap(),
        CableDriver::Ipsec
    );
    assert_eq!(
        serde_json::to_value(CableDriver::Ipsec).unwrap(),
        json!("ipsec")
    );
    let err = "gre".parse::<CableDriver>().unwrap_err().to_string();
    assert_eq!(
        err,
        r#"unknown cable driver "gre" (expected wireguard, vxlan or ipsec)"#
    );
}

#[test]
fn gateway_status_shape() {
    let status = GatewayStatus {
        ha_status: HaStatus::Active,
        local_endpoint: Some("cluster0-gw-0".into()),
        status_failure: None,
        connections: vec![Connection {
            endpoint: "cluster1-gw-1".into(),
            cluster_id: "cluster1".into(),
            cable_driver: CableDriver::Vxlan,
            status: ConnectionStatus::Connected,
            status_message: String::new(),
            using_ip: Some("100.64.1.2".parse().unwrap()),
            using_nat: false,
            latency_rtt: Some(LatencyRtt::new(
                std::time::Duration::from_micros(1200),
                std::time::Duration::from_micros(900),
                std::time::Duration::from_micros(1100),
                std::time::Duration::from_micros(2500),
                std::time::Duration::from_micros(300),
            )),
            nat_discovery: Some(NatDiscovery {
                result: NatDiscoveryResult::PublicIp,
                seen_as: Some("198.19.0.1:40123".parse().unwrap()),
                remote_seen_from: None,
                src_ip_nat_detected: true,
                src_port_nat_detected: true,
                dst_ip_nat_detected: false,
                message: "public IP answered".into(),
            }),
        }],
        traffic: Some(CableTraffic {
            tx_bytes: 3_000_000,
            rx_bytes: 1_000_000,
            window_bytes: 250_000,
            window_seconds: 30,
        }),
    };
    let v = serde_json::to_value(&status).unwrap();
    assert_eq!(
        v,
        json!({
            "haStatus": "active",
            "localEndpoint": "cluster0-gw-0",
            "connections": [{
                "endpoint": "cluster1-gw-1",
                "clusterId": "cluster1",
                "cableDriver": "vxlan",
                "status": "connected",
                "usingIp": "100.64.1.2",
                "usingNat": false,
                "latencyRtt": {
                    "last": "1.2ms", "min": "900µs", "average": "1.1ms",
                    "max": "2.5ms", "stdDev": "300µs",
                },
                "natDiscovery": {
                    "result": "publicIp", "seenAs": "198.19.0.1:40123",
                    "srcIpNatDetected": true, "srcPortNatDetected": true,
                    "message": "public IP answered",
                },
            }],
            "traffic": {
                "txBytes": 3_000_000, "rxBytes": 1_000_000,
                "windowBytes": 250_000, "windowSeconds": 30,
            },
        })
    );
    assert_eq!(serde_json::from_value::<GatewayStatus>(v).unwrap(), status);

    // Go-formatted durations from other writers parse too.
    let rtt: LatencyRtt = serde_json::from_value(json!({
        "last": "1.5ms", "min": "1ms", "average": "1.25ms", "max": "2ms", "stdDev": "250us"
    }))
    .unwrap();
    assert_eq!(rtt.std_dev, std::time::Duration::from_micros(250));
}
