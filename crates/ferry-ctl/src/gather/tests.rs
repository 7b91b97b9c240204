#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::objects::{Kind, cluster_kinds, scrub};
use super::*;

fn kind(name: &str) -> Kind {
    cluster_kinds()
        .into_iter()
        .find(|k| k.resource.kind == name)
        .unwrap()
}

fn object(v: Value) -> DynamicObject {
    serde_json::from_value(v).unwrap()
}

#[test]
fn secret_values_are_left_out_unless_asked_for() {
    let secret = object(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {
            "name": "ferry-broker", "namespace": "ferry-system",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"data\":{\"token\":\"c2VjcmV0\"}}"},
            "managedFields": [{"manager": "ferry"}],
        },
        "data": {"brokerInfo": "c2VjcmV0LXRva2Vu"},
        "stringData": {"psk": "plain"},
    }));
    let k = kind("Secret");
    let text = serde_json::to_string(&scrub(&k, &secret, false)).unwrap();
    for secret in ["c2VjcmV0LXRva2Vu", "plain", "c2VjcmV0", "managedFields"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    assert!(text.contains("REDACTED (16 bytes"), "{text}");
    let kept = serde_json::to_string(&scrub(&k, &secret, true)).unwrap();
    assert!(kept.contains("c2VjcmV0LXRva2Vu"), "{kept}");
}

#[test]
fn other_kinds_are_kept_whole_with_their_type() {
    let gw = object(json!({
        "metadata": {"name": "east-node0", "namespace": "ferry-system"},
        "status": {"haStatus": "active"},
    }));
    let v = scrub(&kind("Gateway"), &gw, false);
    assert_eq!(v["kind"], "Gateway");
    assert_eq!(v["apiVersion"], "ferry.dev/v1alpha1");
    assert_eq!(v["status"]["haStatus"], "active");
}

#[test]
fn file_names_name_the_resource_and_group() {
    assert_eq!(kind("Endpoint").file_name(), "endpoints.ferry.dev.yaml");
    assert_eq!(kind("Pod").file_name(), "pods.yaml");
}

#[test]
fn only_ferrys_nft_tables_are_listed() {
    let list = "table ip nat\ntable ip ferry\ntable inet ferry-globalnet\ntable ip filter\n";
    assert_eq!(ferry_tables(list), vec!["ip ferry", "inet ferry-globalnet"]);
}

#[test]
fn the_summary_links_every_file_and_escapes_what_it_shows() {
    let bundle = Bundle {
        cluster: "east<1>".into(),
        dir: PathBuf::from("/nonexistent"),
        archive: None,
        files: vec![
            PathBuf::from("objects/pods.yaml"),
            PathBuf::from("notes.txt"),
        ],
        notes: vec!["node east-node1: ip -d addr show: <dead>".into()],
    };
    let gw = object(json!({
        "metadata": {"name": "east-node0", "namespace": "ferry-system"},
        "status": {"haStatus": "active", "connections": [
            {"clusterId": "west", "status": "error", "statusMessage": "no reply"}
        ]},
    }));
    let listed: Listed = vec![
        (kind("Gateway"), Ok(vec![gw])),
        (kind("Node"), Err("connection refused".into())),
    ];
    let page = html::summary(&bundle, &listed);
    assert!(page.contains("<a href=\"objects/pods.yaml\">"), "{page}");
    assert!(page.contains("<a href=\"notes.txt\">"), "{page}");
    assert!(page.contains("east&lt;1&gt;"), "{page}");
    assert!(page.contains("&lt;dead&gt;"), "{page}");
    assert!(page.contains("class=\"error\">error</td>"), "{page}");
    assert!(page.contains("connection refused"), "{page}");
}

#[test]
fn a_real_cluster_gets_no_node_state_but_its_logs_from_the_api() {
    let access = ApiOnly;
    assert!(access.run("n", &["ip", "rule"]).is_err());
    assert!(access.pod_logs("ferry-system", "p").is_none());
}
