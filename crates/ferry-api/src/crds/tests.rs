use super::*;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps;

#[test]
fn all_crds_yaml_snapshot() {
    insta::assert_snapshot!("all_crds", all_crds_yaml().unwrap());
}

#[test]
fn crds_are_in_a_stable_order_with_expected_names_and_scopes() {
    let got: Vec<(String, String)> = all_crds()
        .into_iter()
        .map(|c| (c.metadata.name.unwrap(), c.spec.scope))
        .collect();
    let want = [
        ("clusters.ferry.dev", "Namespaced"),
        ("endpoints.ferry.dev", "Namespaced"),
        ("gateways.ferry.dev", "Namespaced"),
        ("clusterglobalegressips.ferry.dev", "Cluster"),
        ("globalegressips.ferry.dev", "Namespaced"),
        ("globalingressips.ferry.dev", "Namespaced"),
        ("globalcidrs.ferry.dev", "Namespaced"),
        ("serviceexports.multicluster.x-k8s.io", "Namespaced"),
        ("serviceimports.multicluster.x-k8s.io", "Namespaced"),
        ("clusterproperties.about.k8s.io", "Cluster"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(n, s)| (n.to_string(), s.to_string()))
        .collect();
    assert_eq!(got, want);
}

fn crd(name: &str) -> CustomResourceDefinition {
    all_crds()
        .into_iter()
        .find(|c| c.metadata.name.as_deref() == Some(name))
        .unwrap()
}

fn columns(name: &str) -> Vec<(String, String, String)> {
    crd(name).spec.versions[0]
        .additional_printer_columns
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|c| (c.name, c.type_, c.json_path))
        .collect()
}

fn col(n: &str, t: &str, p: &str) -> (String, String, String) {
    (n.into(), t.into(), p.into())
}

#[test]
fn serviceimport_prints_name_type_ip_age_like_the_seed() {
    assert_eq!(
        columns("serviceimports.multicluster.x-k8s.io"),
        vec![
            col("TYPE", "string", ".spec.type"),
            col("IP", "string", ".spec.ips"),
            col("AGE", "date", ".metadata.creationTimestamp"),
        ]
    );
    let c = crd("serviceimports.multicluster.x-k8s.io");
    assert_eq!(c.spec.names.short_names, Some(vec!["svcim".to_string()]));
    let export = crd("serviceexports.multicluster.x-k8s.io");
    assert_eq!(
        export.spec.names.short_names,
        Some(vec!["svcex".to_string(), "svcexport".to_string()])
    );
}

#[test]
fn endpoint_columns() {
    let names: Vec<String> = columns("endpoints.ferry.dev")
        .into_iter()
        .map(|c| c.0)
        .collect();
    assert_eq!(
        names,
        ["CLUSTER", "DRIVER", "PUBLIC-IP", "PRIVATE-IP", "AGE"]
    );
}

#[test]
fn status_subresource_where_declared() {
    for (name, want) in [
        ("clusters.ferry.dev", false),
        ("endpoints.ferry.dev", false),
        ("gateways.ferry.dev", true),
        ("serviceexports.multicluster.x-k8s.io", true),
        ("serviceimports.multicluster.x-k8s.io", true),
        ("clusterproperties.about.k8s.io", false),
    ] {
        let versions = &crd(name).spec.versions;
        for v in versions {
            let has = v
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some();
            assert_eq!(has, want, "{name} {}", v.name);
            assert!(v.served, "{name} {}", v.name);
        }
        assert_eq!(versions.iter().filter(|v| v.storage).count(), 1, "{name}");
    }
}

#[test]
fn mcs_serves_v1alpha1_and_v1beta1_with_v1beta1_stored_and_one_schema() {
    for name in [
        "serviceexports.multicluster.x-k8s.io",
        "serviceimports.multicluster.x-k8s.io",
    ] {
        let c = crd(name);
        let versions: Vec<(&str, bool, bool)> = c
            .spec
            .versions
            .iter()
            .map(|v| (v.name.as_str(), v.served, v.storage))
            .collect();
        assert_eq!(
            versions,
            [("v1alpha1", true, false), ("v1beta1", true, true)],
            "{name}"
        );
        // No conversion webhook: the versions differ only in name.
        assert!(c.spec.conversion.is_none(), "{name}");
        assert_eq!(
            c.spec.versions[0].schema, c.spec.versions[1].schema,
            "{name}"
        );
    }
}

/// Kubernetes accepts only structural schemas: every node has a `type`
/// (or preserves unknown fields / is int-or-string), no `$ref`.
fn assert_structural(path: &str, s: &JSONSchemaProps) {
    assert!(s.ref_path.is_none(), "{path}: $ref");
    let exempt = s.x_kubernetes_int_or_string == Some(true)
        || s.x_kubernetes_preserve_unknown_fields == Some(true);
    assert!(s.type_.is_some() || exempt, "{path}: no type");
    for (k, v) in s.properties.iter().flatten() {
        assert_structural(&format!("{path}.{k}"), v);
    }
    if let Some(items) = &s.items {
        match items {
            k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrArray::Schema(i) => {
                assert_structural(&format!("{path}[]"), i)
            }
            other => panic!("{path}: unexpected items {other:?}"),
        }
    }
    assert!(
        s.any_of.is_none() && s.one_of.is_none(),
        "{path}: anyOf/oneOf"
    );
}

#[test]
fn schemas_are_structural() {
    for c in all_crds() {
        let name = c.metadata.name.clone().unwrap();
        let schema = c.spec.versions[0]
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .unwrap();
        assert_structural(&name, schema);
    }
}

#[test]
fn yaml_stream_has_one_document_per_crd() {
    let yaml = all_crds_yaml().unwrap();
    assert!(yaml.starts_with("---\n"));
    assert_eq!(yaml.matches("\n---\n").count() + 1, all_crds().len());
    let docs: Vec<CustomResourceDefinition> = yaml
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_yaml_ng::from_str(d).unwrap())
        .collect();
    assert_eq!(docs, all_crds());
}

/// Every `cableDriver` field's enum, by path, across all CRDs.
fn cable_driver_enums(path: &str, s: &JSONSchemaProps, out: &mut Vec<(String, Vec<String>)>) {
    for (k, v) in s.properties.iter().flatten() {
        let here = format!("{path}.{k}");
        if k == "cableDriver" {
            let names = v
                .enum_
                .iter()
                .flatten()
                .map(|n| n.0.as_str().unwrap().to_string())
                .collect();
            out.push((here.clone(), names));
        }
        cable_driver_enums(&here, v, out);
    }
    if let Some(
        k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrArray::Schema(i),
    ) = &s.items
    {
        cable_driver_enums(&format!("{path}[]"), i, out);
    }
}

#[test]
fn cable_driver_fields_accept_libreswan() {
    let mut found = Vec::new();
    for c in all_crds() {
        let name = c.metadata.name.clone().unwrap();
        for v in &c.spec.versions {
            let schema = v
                .schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref());
            cable_driver_enums(&name, schema.unwrap(), &mut found);
        }
    }
    let paths: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "endpoints.ferry.dev.spec.cableDriver",
            "gateways.ferry.dev.status.connections[].cableDriver",
        ]
    );
    for (path, names) in found {
        assert_eq!(
            names,
            ["wireguard", "vxlan", "ipsec", "libreswan"],
            "{path}"
        );
    }
}
