use ferry_api::labels::{
    APP_MANAGED_BY, APP_MANAGED_BY_FERRY, CLUSTER, MANAGED_BY, MANAGED_BY_FERRY, ORIGIN_NAME,
    ORIGIN_NAMESPACE, SERVICE_NAME, SOURCE_CLUSTER,
};
use ferry_api::{
    Cluster, ClusterStatus, ServiceImport, ServiceImportSpec, ServiceImportStatus,
    ServiceImportType, ServicePort,
};
use k8s_openapi::api::discovery::v1::{
    Endpoint as SliceEndpoint, EndpointConditions, EndpointPort, EndpointSlice,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::{Value, json};

use super::target::{Body, FIELD_MANAGER};
use super::wanted::{WantedImport, WantedSlice, WantedSpec, to_json};
use crate::mcs::ExportedMeta;
use crate::store::{self, Data, EXPORT_CREATED, Side, Watched};

/// `body` as a server stores and returns it: with system fields, a
/// label and an annotation of someone else's, and a status.
fn as_stored<K: Watched>(body: &Body, rv: u64, status: Option<Value>) -> K {
    let mut v = serde_json::to_value(body).unwrap();
    let m = v["metadata"].as_object_mut().unwrap();
    m.insert("uid".into(), json!("5f0c"));
    m.insert("resourceVersion".into(), json!(rv.to_string()));
    m.insert("creationTimestamp".into(), json!("2026-01-02T03:04:05Z"));
    m.insert("generation".into(), json!(1));
    m.insert(
        "managedFields".into(),
        json!([{"manager": FIELD_MANAGER, "operation": "Apply", "fieldsV1": {"f:metadata": {}}}]),
    );
    m.entry("labels")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .unwrap()
        .insert("team".into(), json!("x"));
    m.entry("annotations")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .unwrap()
        .insert("note".into(), json!("y"));
    if let Some(s) = status {
        v["status"] = s;
    }
    serde_json::from_value(v).unwrap()
}

fn spec(port: i32) -> ServiceImportSpec {
    ServiceImportSpec {
        ports: vec![ServicePort {
            name: Some("http".into()),
            protocol: "TCP".into(),
            app_protocol: None,
            port,
        }],
        ips: vec!["100.96.0.10".into()],
        type_: ServiceImportType::ClusterSetIp,
        session_affinity: None,
        session_affinity_config: None,
        ip_families: vec!["IPv4".into()],
        internal_traffic_policy: None,
        traffic_distribution: None,
    }
}

const EXPORT_LABELS: [(&str, &str); 6] = [
    (CLUSTER, "a"),
    (SOURCE_CLUSTER, "a"),
    (SERVICE_NAME, "web"),
    (ORIGIN_NAME, "web"),
    (ORIGIN_NAMESPACE, "shop"),
    (APP_MANAGED_BY, APP_MANAGED_BY_FERRY),
];

#[test]
fn written_imports_read_back_with_the_digest_they_were_written_with() {
    // A cluster's export on the broker.
    let spec80 = spec(80);
    let created = "2026-01-01T00:00:00Z";
    let labels_json = r#"{"tier":"web"}"#;
    let annotations = [
        (EXPORT_CREATED, created),
        (store::EXPORTED_LABELS, labels_json),
    ];
    let wanted = WantedImport {
        labels: &EXPORT_LABELS,
        annotations: &annotations,
        exported: None,
        spec: &spec80,
    };
    let stored: ServiceImport = as_stored(&wanted.body("web-shop-a", "ferry-broker"), 7, None);
    let obj = stored.into_obj(Side::Broker);
    assert_eq!(obj.digest, wanted.digest());
    assert_eq!(obj.rv, 7);
    assert_eq!(obj.label(ORIGIN_NAMESPACE), Some("shop"));
    assert_eq!(obj.label("team"), None, "only ferry's labels are kept");
    let Data::Import(Some(export)) = &obj.data else {
        panic!("a broker import is parsed: {:?}", obj.data);
    };
    assert_eq!(export.cluster, "a");
    assert_eq!(store::time_string(&export.created), created);
    assert_eq!(export.ports, spec80.ports);
    assert_eq!(export.ip_families, ["IPv4"]);
    assert_eq!(export.exported_labels["tier"], "web");
    assert_eq!(
        export.clusterset_ip, None,
        "no annotation: the clusterset's default"
    );

    // Any written difference changes the digest.
    let spec81 = spec(81);
    let changed = [
        WantedImport {
            spec: &spec81,
            ..wanted
        },
        WantedImport {
            annotations: &[(EXPORT_CREATED, "2026-01-01T00:00:01Z")],
            ..wanted
        },
        WantedImport {
            labels: &EXPORT_LABELS[1..],
            ..wanted
        },
    ];
    for w in changed {
        assert_ne!(w.digest(), obj.digest);
    }

    // The aggregated import in a cluster, with its status.
    let labels = [(APP_MANAGED_BY, APP_MANAGED_BY_FERRY)];
    let exported = ExportedMeta {
        labels: [("tier".to_string(), "web".to_string())].into(),
        ..Default::default()
    };
    let wanted = WantedImport {
        labels: &labels,
        annotations: &[(store::EXPORTED_LABELS, labels_json)],
        exported: Some(&exported),
        spec: &spec80,
    };
    let t0 = Time(k8s_openapi::jiff::Timestamp::from_second(1_000_000).unwrap());
    let t1 = Time(k8s_openapi::jiff::Timestamp::from_second(2_000_000).unwrap());
    let status = ServiceImportStatus {
        clusters: vec![ClusterStatus {
            cluster: "a".into(),
        }],
        conditions: vec![crate::mcs::import_ready(None, &t0)],
    };
    // Only the transition time differs: no difference.
    let later = ServiceImportStatus {
        conditions: vec![crate::mcs::import_ready(None, &t1)],
        ..status.clone()
    };
    assert_eq!(
        store::import_status_digest(Some(&status)),
        store::import_status_digest(Some(&later))
    );
    let stored: ServiceImport = as_stored(&wanted.body("web", "shop"), 8, Some(to_json(&status)));
    assert_eq!(
        stored.metadata.labels.as_ref().unwrap()["tier"],
        "web",
        "exported labels are on the import"
    );
    let obj = stored.into_obj(Side::Local);
    assert_eq!(obj.digest, wanted.digest());
    assert_eq!(
        obj.status_digest,
        store::import_status_digest(Some(&status))
    );
    assert_ne!(obj.status_digest, store::import_status_digest(None));
}

#[test]
fn written_slices_and_specs_read_back_with_the_digest_they_were_written_with() {
    let endpoints = vec![SliceEndpoint {
        addresses: vec!["100.64.0.7".into()],
        conditions: Some(EndpointConditions {
            ready: Some(true),
            serving: Some(true),
            terminating: Some(false),
        }),
        hostname: Some("web-0".into()),
        ..Default::default()
    }];
    let ports = vec![EndpointPort {
        name: Some("http".into()),
        port: Some(8080),
        protocol: Some("TCP".into()),
        app_protocol: None,
    }];
    let mut labels = EXPORT_LABELS.to_vec();
    labels.push((MANAGED_BY, MANAGED_BY_FERRY));
    let wanted = WantedSlice {
        labels: &labels,
        address_type: "IPv4",
        endpoints: &endpoints,
        ports: &ports,
    };
    for side in [Side::Broker, Side::Local] {
        let stored: EndpointSlice = as_stored(&wanted.body("web-a", "shop"), 9, None);
        let obj = stored.into_obj(side);
        assert_eq!(obj.digest, wanted.digest(), "{side:?}");
        // Ferry's own slices in a cluster are only written, never read.
        assert_eq!(
            matches!(obj.data, Data::Slice(_)),
            side == Side::Broker,
            "{side:?}"
        );
    }
    let not_ready = vec![SliceEndpoint {
        conditions: Some(EndpointConditions {
            ready: Some(false),
            serving: Some(false),
            terminating: Some(false),
        }),
        ..endpoints[0].clone()
    }];
    let flipped = WantedSlice {
        endpoints: &not_ready,
        ..wanted
    };
    assert_ne!(flipped.digest(), wanted.digest());

    let spec = json!({"clusterId": "a", "clusterCidrs": ["100.64.0.0/16"], "serviceCidrs": ["100.96.0.0/16"]});
    let labels = [(CLUSTER, "a"), (APP_MANAGED_BY, APP_MANAGED_BY_FERRY)];
    let wanted = WantedSpec {
        kind: "Cluster",
        labels: &labels,
        spec: &spec,
    };
    let stored: Cluster = as_stored(&wanted.body("a", "ferry-broker"), 3, None);
    let obj = stored.into_obj(Side::Broker);
    assert_eq!(obj.digest, wanted.digest());
    assert!(matches!(&obj.data, Data::Spec(s) if **s == spec));
}

#[test]
fn a_derived_service_reads_back_with_its_digest_once_the_api_server_gave_it_a_cluster_ip() {
    use super::wanted::derived_service_body;
    use crate::store::DerivedSpec;
    use k8s_openapi::api::core::v1::Service;

    let labels = [
        (SERVICE_NAME, "web"),
        (APP_MANAGED_BY, APP_MANAGED_BY_FERRY),
    ];
    let spec = DerivedSpec {
        ports: vec![("http", "TCP", 8080)],
        session_affinity: Some("ClientIP"),
        session_affinity_timeout: Some(300),
    };
    let body = derived_service_body("derived-1", "shop", &labels, &spec);
    let written = serde_json::to_value(&body).unwrap();
    assert!(
        written["spec"].get("clusterIP").is_none(),
        "the API server allocates it: {written}"
    );
    assert!(written["spec"].get("selector").is_none(), "{written}");
    let digest = store::derived_service_digest(&store::label_pairs(&labels), &spec);
    // As stored: the allocated address and the server's defaults added.
    let mut stored: Service = as_stored(&body, 4, None);
    let s = stored.spec.as_mut().unwrap();
    s.cluster_ip = Some("100.96.1.1".into());
    s.cluster_ips = Some(vec!["100.96.1.1".into()]);
    s.ip_families = Some(vec!["IPv4".into()]);
    s.internal_traffic_policy = Some("Cluster".into());
    let obj = stored.into_obj(Side::Local);
    assert_eq!(obj.digest, digest, "no rewrite for what the server added");
    let Data::Derived(ip) = &obj.data else {
        panic!("{:?}", obj.data)
    };
    assert_eq!(*ip, Some("100.96.1.1".parse().unwrap()));
}
