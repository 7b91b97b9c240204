use super::*;
use serde_json::{Value, json};

#[test]
fn service_import_matches_the_seed_document() {
    // The spec of the seed's `kubectl get serviceimport -o yaml`.
    let v = json!({
        "apiVersion": "multicluster.x-k8s.io/v1beta1",
        "kind": "ServiceImport",
        "metadata": {"name": "nginx-nginx-test-cluster1", "namespace": "ferry-broker"},
        "spec": {
            "ips": ["11.96.112.197"],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "sessionAffinityConfig": {},
            "type": "ClusterSetIP",
        },
    });
    let si: ServiceImport = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(si.spec.type_, ServiceImportType::ClusterSetIp);
    assert_eq!(si.spec.ips, ["11.96.112.197"]);
    assert_eq!(si.spec.ports[0].protocol, "TCP");
    assert_eq!(serde_json::to_value(&si).unwrap(), v);
}

#[test]
fn service_import_defaults_and_status() {
    let v = json!({"ports": [{"port": 53}], "type": "Headless"});
    let spec: ServiceImportSpec = serde_json::from_value(v).unwrap();
    assert_eq!(spec.type_, ServiceImportType::Headless);
    assert_eq!(spec.ports[0].protocol, "TCP");
    assert!(spec.ips.is_empty());

    let status = ServiceImportStatus {
        clusters: vec![ClusterStatus {
            cluster: "cluster1".into(),
        }],
        conditions: Vec::new(),
    };
    assert_eq!(
        serde_json::to_value(&status).unwrap(),
        json!({"clusters": [{"cluster": "cluster1"}]})
    );
}

#[test]
fn service_export_without_exported_metadata_has_no_spec_on_the_wire() {
    let se = ServiceExport::new("nginx", ServiceExportSpec::default());
    let v = serde_json::to_value(&se).unwrap();
    assert_eq!(
        v,
        json!({
            "apiVersion": "multicluster.x-k8s.io/v1beta1",
            "kind": "ServiceExport",
            "metadata": {"name": "nginx"},
            "spec": {},
        })
    );
    let with_status = json!({
        "apiVersion": "multicluster.x-k8s.io/v1beta1",
        "kind": "ServiceExport",
        "metadata": {"name": "nginx", "namespace": "nginx-test"},
        "status": {"conditions": [{
            "type": "Valid", "status": "True", "reason": "Valid", "message": "",
            "lastTransitionTime": "2022-04-27T07:27:44Z",
        }]},
    });
    // Without a spec (as every v1alpha1 one): the empty spec.
    let se: ServiceExport = serde_json::from_value(with_status.clone()).unwrap();
    let conds = &se.status.as_ref().unwrap().conditions;
    assert_eq!(conds[0].type_, condition::VALID);
    assert_eq!(conds[0].reason, condition::reason::VALID);
    assert_eq!(se.spec, ServiceExportSpec::default());
    let mut written = with_status;
    written["spec"] = json!({});
    assert_eq!(serde_json::to_value(&se).unwrap(), written);
    let mut null_spec = written.clone();
    null_spec["spec"] = Value::Null;
    let se: ServiceExport = serde_json::from_value(null_spec).unwrap();
    assert_eq!(se.spec, ServiceExportSpec::default());
}

#[test]
fn v1alpha1_objects_read_as_v1beta1_and_the_new_fields_round_trip() {
    // An object an older ferry wrote reads into the v1beta1 types.
    let old = json!({
        "apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceImport",
        "metadata": {"name": "nginx"},
        "spec": {"ports": [{"port": 80}], "type": "ClusterSetIP"},
    });
    let si: ServiceImport = serde_json::from_value(old).unwrap();
    assert!(si.spec.ip_families.is_empty() && si.spec.internal_traffic_policy.is_none());
    let new = json!({
        "apiVersion": "multicluster.x-k8s.io/v1beta1", "kind": "ServiceExport",
        "metadata": {"name": "nginx"},
        "spec": {"exportedLabels": {"tier": "web"}, "exportedAnnotations": {"a": "b"}},
    });
    let se: ServiceExport = serde_json::from_value(new.clone()).unwrap();
    assert_eq!(se.spec.exported_labels["tier"], "web");
    assert_eq!(serde_json::to_value(&se).unwrap(), new);
    let spec = json!({"ports": [{"port": 80, "protocol": "TCP"}], "type": "ClusterSetIP",
        "ips": ["198.18.0.1"], "ipFamilies": ["IPv4"], "internalTrafficPolicy": "Local",
        "trafficDistribution": "PreferClose"});
    let parsed: ServiceImportSpec = serde_json::from_value(spec.clone()).unwrap();
    assert_eq!(serde_json::to_value(&parsed).unwrap(), spec);
}
