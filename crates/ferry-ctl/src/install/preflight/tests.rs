#![allow(clippy::unwrap_used)]
use serde_json::json;

use super::*;
use crate::Error;

fn node(name: &str, gateway: bool, images: &[&str]) -> Node {
    let mut n = json!({"metadata": {"name": name}});
    if gateway {
        n["metadata"]["labels"] = json!({"ferry.dev/gateway": "true"});
    }
    if !images.is_empty() {
        n["status"] = json!({"images": [{"names": images}]});
    }
    serde_json::from_value(n).unwrap()
}

fn refusal(r: Result<impl std::fmt::Debug>) -> String {
    match r {
        Err(e @ Error::Refused(Refusal::Preflight { .. })) => e.to_string(),
        other => panic!("expected a preflight refusal, got {other:?}"),
    }
}

#[test]
fn pod_security_stricter_than_privileged_is_refused_with_the_command() {
    let l =
        |level: &str| BTreeMap::from([(ferry_deploy::POD_SECURITY_ENFORCE.into(), level.into())]);
    assert!(pod_security(None).is_ok());
    assert!(pod_security(Some(&l("privileged"))).is_ok());
    let why = refusal(pod_security(Some(&l("baseline"))));
    assert!(why.contains("\"baseline\""), "{why}");
    assert!(
        why.contains("kubectl label namespace ferry-system pod-security.kubernetes.io/enforce=privileged --overwrite"),
        "{why}"
    );
}

#[test]
fn the_gateway_node_must_exist() {
    let nodes = [node("a", false, &[]), node("b", true, &[])];
    assert_eq!(gateway_node(&nodes, None).unwrap(), Some("b".into()));
    assert_eq!(gateway_node(&nodes, Some("a")).unwrap(), Some("a".into()));
    let why = refusal(gateway_node(&nodes, Some("c")));
    assert!(why.contains("--gateway-node with one of: a, b"), "{why}");
    assert_eq!(gateway_node(&[], None).unwrap(), None);
    assert!(refusal(gateway_node(&[], Some("a"))).contains("does not exist"));
    assert_eq!(gateway_node(&nodes[..1], None).unwrap(), None);
}

#[test]
fn a_host_network_pod_on_the_gateways_udp_port_is_refused() {
    let pod = |ns: &str, host: bool, port: i32| -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "submariner-gateway-x", "namespace": ns},
            "spec": {"hostNetwork": host, "nodeName": "n0", "containers": [{"name": "c",
                "ports": [{"containerPort": port, "protocol": "UDP"}]}]},
        }))
        .unwrap()
    };
    let asked = Asked {
        image: "ferry:0.1.0",
        gateway_node: None,
        cable_driver: CableDriver::Wireguard,
        nat_port: None,
        connectivity: true,
    };
    let wanted = gateway_ports(&asked);
    assert_eq!(wanted, [4500, 4490, 4801, 4802]);
    let why = refusal(udp_ports_free(
        "n0",
        &[pod("submariner-operator", true, 4500)],
        &wanted,
    ));
    assert!(why.contains("UDP port 4500 on node n0"), "{why}");
    assert!(why.contains("--nattport"), "{why}");
    // Not host network, ferry's own, or another port: free.
    for p in [
        pod("x", false, 4500),
        pod("ferry-system", true, 4500),
        pod("x", true, 4501),
    ] {
        assert!(udp_ports_free("n0", &[p], &wanted).is_ok());
    }
    // Another node's pod does not hold this node's port.
    assert!(udp_ports_free("n1", &[pod("x", true, 4500)], &wanted).is_ok());
    let vxlan = Asked {
        cable_driver: CableDriver::Vxlan,
        ..asked
    };
    assert_eq!(gateway_ports(&vxlan)[0], 4800);
}

#[test]
fn an_image_no_node_has_and_no_registry_serves_is_refused() {
    let nodes = [node("a", false, &["docker.io/library/nginx:1"])];
    let why = refusal(image_available(&nodes, "ferry:0.1.0"));
    assert!(why.contains("--image REGISTRY/ferry:TAG"), "{why}");
    assert!(image_available(&nodes, "ghcr.io/x/ferry:0.1.0").is_ok());
    assert!(image_available(&nodes, "localhost:5000/ferry:0.1.0").is_ok());
    assert!(image_available(&nodes, "nginx:1").is_ok());
    // Nodes that report no images cannot tell.
    assert!(image_available(&[node("a", false, &[])], "ferry:0.1.0").is_ok());
}

#[test]
fn an_image_that_is_a_local_path_is_refused_naming_the_flag() {
    let nowhere = |_: &std::path::Path| false;
    for ok in [
        "ferry:0.1.0",
        "ghcr.io/x/ferry:0.1.0",
        "localhost:5000/ferry",
    ] {
        assert!(image_not_a_path(ok, nowhere).is_ok(), "{ok}");
    }
    for path in [
        "./ferry.oci.tar",
        "/tmp/ferry.tar",
        "../out/ferry",
        "ferry.tar.gz",
    ] {
        let why = refusal(image_not_a_path(path, nowhere));
        assert!(why.starts_with("--image "), "{why}");
        assert!(why.contains("does not exist"), "{why}");
        assert!(!why.contains('\n'), "{why}");
    }
    let there = |_: &std::path::Path| true;
    let why = refusal(image_not_a_path("/tmp/ferry.oci.tar", there));
    assert!(
        why.contains("is a local archive, not an image reference"),
        "{why}"
    );
    assert!(why.contains("--image"), "{why}");
}

#[test]
fn a_runc_sandbox_refuses_an_image_its_store_does_not_hold() {
    let stored = vec!["ferry:0.1.0".to_string()];
    assert!(image_in_sandbox_store("ferry:0.1.0", "east", true, &stored).is_ok());
    let why = refusal(image_in_sandbox_store("ferry:9.9", "east", false, &stored));
    assert!(
        why.starts_with("--image \"ferry:9.9\" is not in the OCI store"),
        "{why}"
    );
    assert!(why.contains("sandbox cluster east"), "{why}");
    assert!(why.contains("holds: ferry:0.1.0"), "{why}");
    assert!(
        why.contains("ferry sandbox create east --runtime runc --image ARCHIVE"),
        "{why}"
    );
    assert!(!why.contains('\n'), "{why}");
    let why = refusal(image_in_sandbox_store("ferry:9.9", "east", false, &[]));
    assert!(why.contains("holds: none"), "{why}");
}
