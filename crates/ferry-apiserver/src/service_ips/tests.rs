use serde_json::json;

use super::*;
use crate::store::{Precondition, Write};

fn allocator(range: &str) -> ServiceAllocator {
    ServiceAllocator::new(range.parse().unwrap(), 30000..=30002)
}

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state.db")).unwrap();
    (dir, store)
}

fn target(key: &str) -> Target<'_> {
    Target { key, name: "s" }
}

fn message(e: Error) -> String {
    e.to_string()
}

#[test]
fn ranges_parse_like_the_flag() {
    let r: ServiceIpRange = "100.96.3.4/16".parse().unwrap();
    assert_eq!(r.to_string(), "100.96.0.0/16");
    assert!(!r.allocatable("100.96.0.0".parse().unwrap()));
    assert!(r.allocatable("100.96.0.1".parse().unwrap()));
    assert!(!r.allocatable("100.96.255.255".parse().unwrap()));
    assert!(!r.allocatable("100.97.0.1".parse().unwrap()));
    assert!(!r.allocatable("100.95.255.255".parse().unwrap()));
    for bad in ["100.96.0.0", "fd00::/108", "100.96.0.0/31", "x/16"] {
        assert!(bad.parse::<ServiceIpRange>().is_err(), "{bad}");
    }
    assert_eq!(parse_port_range("30000-32767").unwrap(), 30000..=32767);
    assert!(parse_port_range("32767-30000").is_err());
}

#[test]
fn new_services_get_distinct_addresses_past_the_static_band() {
    let (_d, store) = store();
    let a = allocator("100.96.0.0/24");
    let mut one = json!({"spec": {"ports": [{"port": 80}]}});
    let mut two = json!({"spec": {}});
    let r1 = a
        .on_create(&store, &target("/core/services/ns/one"), &mut one)
        .unwrap();
    let r2 = a
        .on_create(&store, &target("/core/services/ns/two"), &mut two)
        .unwrap();
    assert_eq!(one["spec"]["clusterIP"], "100.96.0.16");
    assert_eq!(one["spec"]["clusterIPs"], json!(["100.96.0.16"]));
    assert_eq!(two["spec"]["clusterIP"], "100.96.0.17");
    r1.commit();
    r2.commit();
}

#[test]
fn requested_addresses_are_checked_with_kube_apiservers_words() {
    let (_d, store) = store();
    let a = allocator("100.96.0.0/24");
    let mut outside = json!({"spec": {"clusterIP": "0.0.0.0"}});
    let err = message(
        a.on_create(&store, &target("/core/services/ns/x"), &mut outside)
            .err()
            .unwrap(),
    );
    assert!(
        err.contains("failed to allocate IP 0.0.0.0: the provided IP (0.0.0.0) is not in the valid range. The range of valid IPs is 100.96.0.0/24"),
        "{err}"
    );
    let mut first = json!({"spec": {"clusterIP": "100.96.0.5"}});
    let held = a
        .on_create(&store, &target("/core/services/ns/a"), &mut first)
        .unwrap();
    let mut second = json!({"spec": {"clusterIP": "100.96.0.5"}});
    let err = message(
        a.on_create(&store, &target("/core/services/ns/b"), &mut second.clone())
            .err()
            .unwrap(),
    );
    assert!(err.contains("provided IP is already allocated"), "{err}");
    // A write that never happened gives its address back.
    drop(held);
    a.on_create(&store, &target("/core/services/ns/b"), &mut second)
        .unwrap()
        .commit();
    let mut bad = json!({"spec": {"clusterIP": "nope"}});
    assert!(
        a.on_create(&store, &target("/core/services/ns/c"), &mut bad)
            .is_err()
    );
}

#[test]
fn headless_and_external_name_services_get_no_address() {
    let (_d, store) = store();
    let a = allocator("100.96.0.0/24");
    let mut headless = json!({"spec": {"clusterIP": "None"}});
    let _r = a
        .on_create(&store, &target("/core/services/ns/h"), &mut headless)
        .unwrap();
    assert_eq!(headless["spec"]["clusterIPs"], json!(["None"]));
    let mut external = json!({"spec": {"type": "ExternalName", "externalName": "a.example"}});
    let _r = a
        .on_create(&store, &target("/core/services/ns/e"), &mut external)
        .unwrap();
    assert_eq!(external["spec"].get("clusterIP"), None);
}

#[test]
fn cluster_ip_is_immutable_and_carried_over() {
    let (_d, store) = store();
    let a = allocator("100.96.0.0/24");
    let old = json!({"spec": {"clusterIP": "100.96.0.20", "clusterIPs": ["100.96.0.20"]}});
    let t = target("/core/services/ns/s");
    let mut omitted = json!({"spec": {"ports": [{"port": 81}]}});
    let _r = a.on_update(&store, &t, &old, &mut omitted).unwrap();
    assert_eq!(omitted["spec"]["clusterIP"], "100.96.0.20");
    assert_eq!(omitted["spec"]["clusterIPs"], json!(["100.96.0.20"]));
    let mut changed = json!({"spec": {"clusterIP": "100.96.0.21"}});
    let err = message(a.on_update(&store, &t, &old, &mut changed).err().unwrap());
    assert!(
        err.contains("spec.clusterIP: Invalid value: \"100.96.0.21\": field is immutable"),
        "{err}"
    );
}

#[test]
fn node_ports_come_from_their_range() {
    let (_d, store) = store();
    let a = allocator("100.96.0.0/24");
    let t = target("/core/services/ns/np");
    let mut np = json!({"spec": {"type": "NodePort", "ports": [
        {"port": 80, "protocol": "TCP"}, {"port": 443, "protocol": "TCP"}]}});
    let r = a.on_create(&store, &t, &mut np).unwrap();
    assert_eq!(np["spec"]["ports"][0]["nodePort"], 30000);
    assert_eq!(np["spec"]["ports"][1]["nodePort"], 30001);
    // Held while its write is in flight.
    let mut taken =
        json!({"spec": {"type": "NodePort", "ports": [{"port": 1, "nodePort": 30000}]}});
    let err = message(
        a.on_create(&store, &target("/core/services/ns/o"), &mut taken)
            .err()
            .unwrap(),
    );
    assert!(
        err.contains(
            "spec.ports[0].nodePort: Invalid value: 30000: provided port is already allocated"
        ),
        "{err}"
    );
    drop(r);
    let mut outside = json!({"spec": {"type": "NodePort", "ports": [{"port": 1, "nodePort": 80}]}});
    let err = message(
        a.on_create(&store, &target("/core/services/ns/p"), &mut outside)
            .err()
            .unwrap(),
    );
    assert!(err.contains("spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-30002"), "{err}");
    let mut forbidden =
        json!({"spec": {"type": "ClusterIP", "ports": [{"port": 1, "nodePort": 30002}]}});
    let err = message(
        a.on_create(&store, &target("/core/services/ns/q"), &mut forbidden)
            .err()
            .unwrap(),
    );
    assert!(err.contains("spec.ports[0].nodePort: Forbidden"), "{err}");
}

#[tokio::test]
async fn holds_follow_the_store() {
    let (_d, store) = store();
    let key = "/core/services/ns/s";
    let object = json!({"metadata": {"name": "s"}, "spec": {"clusterIP": "100.96.0.30",
        "type": "NodePort", "ports": [{"port": 80, "nodePort": 30001}]}});
    store
        .write(Write::Put {
            key: key.into(),
            object,
            precondition: Precondition::Absent,
        })
        .await
        .unwrap();
    // As after a restart.
    let a = allocator("100.96.0.0/24");
    a.load(&store, "/core/services/").unwrap();
    let mut same = json!({"spec": {"clusterIP": "100.96.0.30"}});
    let err = message(
        a.on_create(&store, &target("/core/services/ns/t"), &mut same.clone())
            .err()
            .unwrap(),
    );
    assert!(err.contains("already allocated"), "{err}");
    let mut port = json!({"spec": {"type": "NodePort", "ports": [{"port": 1, "nodePort": 30001}]}});
    assert!(
        a.on_create(&store, &target("/core/services/ns/u"), &mut port)
            .is_err()
    );
    store
        .write(Write::Delete {
            key: key.into(),
            precondition: Precondition::Exists,
        })
        .await
        .unwrap();
    // Gone from the store: free, whether or not anyone called release.
    a.on_create(&store, &target("/core/services/ns/t"), &mut same)
        .unwrap()
        .commit();
}
