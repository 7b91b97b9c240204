use std::collections::BTreeMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::Hasher;

use ferry_api::ServiceExport;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::discovery::v1::{
    Endpoint as SliceEndpoint, EndpointConditions, EndpointPort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

use super::*;

fn item(ns: &str, name: &str, rv: u64, service: Option<&str>) -> Item {
    let mut labels = BTreeMap::new();
    if let Some(s) = service {
        labels.insert(K8S_SERVICE_NAME.to_string(), s.to_string());
    }
    let meta = ObjectMeta {
        resource_version: Some(rv.to_string()),
        labels: Some(labels),
        ..Default::default()
    };
    Item {
        ns: ns.into(),
        name: name.into(),
        obj: Obj::new(&meta, rv, 0, Data::None),
    }
}

fn by_label<'a>(ns: &'a str, o: &'a Obj) -> Option<(&'a str, &'a str)> {
    Some((ns, o.label(K8S_SERVICE_NAME)?))
}

fn names(store: &Store, ns: &str, svc: &str) -> Vec<String> {
    let mut v: Vec<String> = store.indexed(ns, svc).map(|(n, _)| n.into()).collect();
    v.sort();
    v
}

#[test]
fn index_follows_puts_moves_and_removes() {
    let mut store = Store::new(Some(by_label));
    assert!(store.put(item("ns", "web-1", 1, Some("web"))));
    assert!(store.put(item("ns", "web-2", 2, Some("web"))));
    assert!(store.put(item("other", "web-1", 3, Some("web"))));
    assert_eq!(names(&store, "ns", "web"), ["web-1", "web-2"]);
    assert_eq!(names(&store, "other", "web"), ["web-1"]);

    // Relabelled to another service: it moves.
    assert!(store.put(item("ns", "web-2", 4, Some("api"))));
    assert_eq!(names(&store, "ns", "web"), ["web-1"]);
    assert_eq!(names(&store, "ns", "api"), ["web-2"]);
    let mut services: Vec<&str> = store.services_in("ns").collect();
    services.sort();
    assert_eq!(services, ["api", "web"]);

    assert!(store.remove("ns", "web-1").is_some());
    assert!(store.remove("ns", "web-1").is_none());
    assert_eq!(names(&store, "ns", "web"), Vec::<String>::new());
    assert_eq!(store.services_in("ns").collect::<Vec<_>>(), ["api"]);
    assert_eq!(store.take_all().len(), 2);
    assert!(store.get("other", "web-1").is_none());
}

#[test]
fn older_and_same_versions_are_no_news_but_keep_what_a_write_knows() {
    let mut store = Store::new(None);
    assert!(store.put(item("ns", "a", 5, None)));
    assert!(!store.put(item("ns", "a", 4, None)), "older");
    // The watch event of a write, after the write's answer (or the
    // other way round): no news, and the applied digests stay.
    let mut answer = item("ns", "a", 5, None);
    answer.obj.applied_main = Some(42);
    assert!(!store.put(answer));
    assert_eq!(store.get("ns", "a").map(|o| o.applied_main), Some(Some(42)));
    assert!(!store.put(item("ns", "a", 5, None)));
    assert_eq!(store.get("ns", "a").map(|o| o.applied_main), Some(Some(42)));
    // A newer version (someone else's write) replaces it, applied and all.
    assert!(store.put(item("ns", "a", 6, None)));
    assert_eq!(store.get("ns", "a").map(|o| o.applied_main), Some(None));
}

#[test]
fn digests_hash_the_json_of_a_value() {
    // The JSON serialisation, hashed whole.
    let v = serde_json::json!({"a": [1, 2, {"b": "c\"d"}], "e": null});
    let mut h = DefaultHasher::new();
    h.write(serde_json::to_string(&v).unwrap_or_default().as_bytes());
    assert_eq!(digest(&v), h.finish());
    assert_ne!(digest(&v), digest(&serde_json::json!({"a": [1, 2]})));
}

#[test]
fn slices_keep_what_exports_and_imports_carry() {
    let e = SliceEndpoint {
        addresses: vec!["100.64.0.7".into()],
        conditions: Some(EndpointConditions {
            ready: Some(true),
            serving: Some(true),
            terminating: Some(false),
        }),
        hostname: Some("web-0".into()),
        node_name: Some("n1".into()),
        target_ref: Some(ObjectReference {
            kind: Some("Pod".into()),
            name: Some("web-0-abc".into()),
            namespace: Some("shop".into()),
            uid: Some("u".into()),
            ..Default::default()
        }),
        zone: Some("z".into()),
        ..Default::default()
    };
    let port = EndpointPort {
        name: Some("http".into()),
        port: Some(8080),
        protocol: Some("TCP".into()),
        app_protocol: None,
    };
    let info = SliceInfo::of("IPv4".into(), vec![e.clone()], vec![port.clone()]);
    let back = info.slice();
    assert_eq!(back.address_type, "IPv4");
    assert_eq!(back.ports, Some(vec![port]));
    let b = &back.endpoints[0];
    assert_eq!(
        (&b.addresses, &b.conditions, &b.hostname, &b.node_name),
        (&e.addresses, &e.conditions, &e.hostname, &e.node_name)
    );
    // Of the pod reference, its name (a headless endpoint's fallback
    // hostname); a zone is not carried by MCS exports.
    let r = b.target_ref.as_ref().unwrap();
    assert_eq!(
        (r.kind.as_deref(), r.name.as_deref()),
        (Some("Pod"), Some("web-0-abc"))
    );
    assert_eq!(b.zone, None);
}

#[test]
fn export_conditions_compare_as_same_conditions_does() {
    use crate::mcs::{self, Readiness, Validity};
    let t0 = Time(k8s_openapi::jiff::Timestamp::from_second(1_000_000).unwrap());
    let t1 = Time(k8s_openapi::jiff::Timestamp::from_second(2_000_000).unwrap());
    let pending = mcs::export_conditions(
        &Validity::Valid,
        Readiness::Pending,
        &Default::default(),
        &[],
        &t0,
    );
    let se = ServiceExport {
        metadata: ObjectMeta::default(),
        spec: Default::default(),
        status: Some(ferry_api::ServiceExportStatus {
            conditions: pending.clone(),
        }),
    };
    let Data::Export(state) = se.into_obj(Side::Local).data else {
        panic!("a ServiceExport keeps its export state");
    };
    // The same conditions computed later keep their transition times
    // from the reduced previous ones, and compare equal.
    let again = mcs::export_conditions(
        &Validity::Valid,
        Readiness::Pending,
        &Default::default(),
        &state.previous(),
        &t1,
    );
    assert!(mcs::same_conditions(&again, &pending));
    assert_eq!(again, pending, "transition times kept");
    assert_eq!(conditions_digest(&again), state.conditions);
    // Ready: one condition changes, and only its time moves.
    let ready = mcs::export_conditions(
        &Validity::Valid,
        Readiness::Exported,
        &Default::default(),
        &state.previous(),
        &t1,
    );
    assert!(!mcs::same_conditions(&ready, &pending));
    assert_ne!(conditions_digest(&ready), state.conditions);
    let times: Vec<&Time> = ready.iter().map(|c| &c.last_transition_time).collect();
    assert_eq!(times, [&t0, &t1, &t0]);
}

#[test]
fn a_gateway_is_read_as_the_clusters_it_is_connected_to() {
    use ferry_api::Gateway;
    let gw: Gateway = serde_json::from_value(serde_json::json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "Gateway",
        "metadata": {"name": "node0", "namespace": "ferry-system", "resourceVersion": "7"},
        "spec": {"clusterId": "east", "hostname": "node0"},
        "status": {"haStatus": "active", "connections": [
            {"endpoint": "west-node0", "clusterId": "west", "cableDriver": "wireguard", "status": "connected"},
            {"endpoint": "north-node0", "clusterId": "north", "cableDriver": "wireguard", "status": "error"},
            {"endpoint": "south-node0", "clusterId": "south", "cableDriver": "wireguard", "status": "connecting"},
        ]},
    }))
    .unwrap();
    let obj = gw.into_obj(Side::Local);
    let Data::Links(links) = &obj.data else {
        panic!("{:?}", obj.data)
    };
    assert!(links.active);
    assert_eq!(&*links.cluster_id, "east");
    assert_eq!(links.connected.as_ref(), [Box::<str>::from("west")]);
}
