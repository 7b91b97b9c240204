#![allow(clippy::unwrap_used)]
use super::*;

fn cidrs(list: &str) -> Vec<Cidr> {
    Cidr::parse_list(list).unwrap()
}

#[test]
fn the_api_servers_valid_range_is_read_from_its_refusal() {
    // kube-apiserver (and ferry apiserver) word it so:
    let kube = "Service \"ferry-cidr-probe\" is invalid: spec.clusterIPs: Invalid value: []string{\"255.255.255.255\"}: failed to allocate IP 255.255.255.255: provided IP is not in the valid range. The range of valid IPs is 10.96.0.0/12";
    assert_eq!(parse_valid_range(kube), Some(cidrs("10.96.0.0/12")));
    // Older wording, a trailing period, the "CIDR " variant, brackets, dual stack.
    for (msg, want) in [
        (
            "failed to allocated ip:1.1.1.1 with error:provided IP is not in the valid range. The range of valid IPs is 100.96.0.0/16.",
            "100.96.0.0/16",
        ),
        (
            "… The range of valid IPs is CIDR 172.20.0.0/16 …",
            "172.20.0.0/16",
        ),
        (
            "the provided IP (0.0.0.0) is not in the valid range. The range of valid IPs is [10.96.0.0/12 fd00:96::/112]",
            "10.96.0.0/12,fd00:96::/112",
        ),
        (
            "The range of valid IPs is 10.96.0.0/12, fd00::/108",
            "10.96.0.0/12,fd00::/108",
        ),
    ] {
        assert_eq!(parse_valid_range(msg), Some(cidrs(want)), "{msg}");
    }
    for msg in [
        "spec.clusterIPs[0]: Invalid value: \"255.255.255.255\": must be a valid IP",
        "The range of valid IPs is unknown",
        "",
    ] {
        assert_eq!(parse_valid_range(msg), None, "{msg}");
    }
}

#[test]
fn kubeadm_and_kube_proxy_configs() {
    let kubeadm = "apiServer: {}\napiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\nnetworking:\n  dnsDomain: cluster.local\n  podSubnet: 10.244.0.0/16,fd00:10:244::/56\n  serviceSubnet: 10.96.0.0/12\n";
    let (pods, services) = kubeadm_networking(kubeadm);
    assert_eq!(pods, cidrs("10.244.0.0/16,fd00:10:244::/56"));
    assert_eq!(services, cidrs("10.96.0.0/12"));
    let (pods, services) = kubeadm_networking("networking:\n  dnsDomain: cluster.local\n");
    assert!(pods.is_empty() && services.is_empty());
    assert_eq!(kubeadm_networking("{not yaml"), (Vec::new(), Vec::new()));

    let proxy = "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nbindAddress: 0.0.0.0\nclusterCIDR: 10.244.0.0/16\nmode: iptables\n";
    assert_eq!(kube_proxy_cluster_cidr(proxy), cidrs("10.244.0.0/16"));
    assert!(kube_proxy_cluster_cidr("clusterCIDR: \"\"\n").is_empty());
    assert!(kube_proxy_cluster_cidr("mode: ipvs\n").is_empty());
}

#[test]
fn node_pod_cidrs_are_covered_per_family() {
    assert_eq!(
        covering(&cidrs("100.64.0.0/24,100.64.1.0/24")),
        cidrs("100.64.0.0/23")
    );
    assert_eq!(
        covering(&cidrs(
            "100.64.0.0/24,100.64.5.0/24,fd00:1::/64,fd00:2::/64"
        )),
        cidrs("100.64.0.0/21,fd00::/30")
    );
    assert_eq!(covering(&cidrs("100.64.3.0/24")), cidrs("100.64.3.0/24"));
    // A wider one among them bounds the result.
    assert_eq!(
        covering(&cidrs("100.64.0.0/16,100.64.1.0/24")),
        cidrs("100.64.0.0/16")
    );
    assert!(covering(&[]).is_empty());
}

#[test]
fn service_cidr_objects_spec() {
    let data = serde_json::json!({"spec": {"cidrs": ["10.96.0.0/12", "fd00::/108", "junk"]}});
    assert_eq!(service_cidr_spec(&data), cidrs("10.96.0.0/12,fd00::/108"));
    assert!(service_cidr_spec(&serde_json::json!({})).is_empty());
}
