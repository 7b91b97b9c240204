#![allow(clippy::unwrap_used)]

use super::*;
use ferry_net::IfAddr;

const HEALTH_CHECK: &str = "100.64.0.1";

fn addr(dev: &str, ip: &str) -> IfAddr {
    IfAddr {
        dev: dev.into(),
        ip: ip.parse().unwrap(),
        prefix: 16,
    }
}

fn ovn0(within: &str) -> HostSourceDev {
    HostSourceDev {
        dev: "ovn0".into(),
        within: Cidr::parse_list(within).unwrap(),
    }
}

#[test]
fn without_a_host_source_device_the_health_check_address_is_the_source() {
    let hc = HEALTH_CHECK.parse().unwrap();
    let addrs = [addr("ovn0", "100.64.100.2")];
    assert_eq!(host_source(hc, None, &addrs), (hc, None));
}

#[test]
fn kube_ovn_sources_the_gateway_nodes_traffic_from_ovn0_in_the_join_subnet() {
    let hc = HEALTH_CHECK.parse().unwrap();
    let want = ovn0("100.64.0.0/16,100.65.0.0/16");
    let addrs = [
        addr("eth0", "198.18.0.10"),
        addr("ovn0", "198.18.99.1"),
        addr("ovn0", "100.65.0.3"),
        addr("ovn0", "100.65.0.2"),
    ];
    let (ip, why) = host_source(hc, Some(&want), &addrs);
    assert_eq!(ip, "100.65.0.2".parse::<Ipv4Addr>().unwrap());
    assert_eq!(why, None);
}

#[test]
fn an_ovn0_address_outside_the_pod_cidrs_falls_back_to_the_health_check_address() {
    let hc: Ipv4Addr = HEALTH_CHECK.parse().unwrap();
    let want = ovn0("100.64.0.0/16");
    for addrs in [vec![], vec![addr("ovn0", "100.65.0.2")]] {
        let (ip, why) = host_source(hc, Some(&want), &addrs);
        assert_eq!(ip, hc);
        let why = why.unwrap();
        assert!(why.contains("ovn0") && why.contains(HEALTH_CHECK), "{why}");
    }
}
