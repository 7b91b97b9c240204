use serde_json::json;

use super::*;
use crate::registry::{Registry, defs_from_crd};

fn defs_of(group: &str, version: &str) -> Vec<Arc<ResourceDef>> {
    Registry::new().group_version(group, version).unwrap()
}

#[test]
fn builtin_kinds_have_their_schema_and_gvk() {
    let doc = render("apis/apps/v1", &defs_of("apps", "v1"));
    let schemas = &doc["components"]["schemas"];
    let deployment = &schemas["io.k8s.api.apps.v1.Deployment"];
    assert_eq!(
        deployment["x-kubernetes-group-version-kind"],
        json!([{"group": "apps", "version": "v1", "kind": "Deployment"}])
    );
    // What `kubectl explain deployment.spec.replicas` follows.
    let spec_ref = deployment["properties"]["spec"]["allOf"][0]["$ref"]
        .as_str()
        .unwrap();
    assert_eq!(
        spec_ref,
        "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"
    );
    let replicas = &schemas["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["replicas"];
    assert_eq!(replicas["type"], "integer");
    assert!(
        replicas["description"]
            .as_str()
            .unwrap()
            .contains("desired pods")
    );
    for kind in ["ReplicaSet", "DaemonSet"] {
        assert!(
            schemas[format!("io.k8s.api.apps.v1.{kind}")]["x-kubernetes-group-version-kind"]
                .is_array()
        );
    }
    // Everything referred to is in the document.
    let text = doc.to_string();
    for piece in text.split("\"#/components/schemas/").skip(1) {
        let name = piece.split('"').next().unwrap();
        assert!(
            schemas.get(name).is_some(),
            "{name} is referred to but missing"
        );
    }
    assert!(doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments"]["post"].is_object());
}

#[test]
fn every_builtin_kind_is_described() {
    for d in Registry::new().all() {
        let gv = if d.group.is_empty() {
            format!("api/{}", d.version)
        } else {
            format!("apis/{}/{}", d.group, d.version)
        };
        let doc = render(&gv, std::slice::from_ref(&d));
        let schema = &doc["components"]["schemas"][builtin_schema_name(&d)];
        assert_eq!(
            schema["x-kubernetes-group-version-kind"][0]["kind"], d.kind,
            "{}",
            d.kind
        );
    }
}

#[test]
fn custom_resources_have_their_crd_schema() {
    let crd = json!({
        "metadata": {"name": "serviceexports.multicluster.x-k8s.io"},
        "spec": {"group": "multicluster.x-k8s.io", "scope": "Namespaced",
            "names": {"plural": "serviceexports", "kind": "ServiceExport"},
            "versions": [{"name": "v1alpha1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "description": "what is exported"}}}}}]}
    });
    let defs: Vec<Arc<ResourceDef>> = defs_from_crd(&crd)
        .unwrap()
        .into_iter()
        .map(Arc::new)
        .collect();
    let doc = render("apis/multicluster.x-k8s.io/v1alpha1", &defs);
    let schemas = &doc["components"]["schemas"];
    let export = &schemas["io.x-k8s.multicluster.v1alpha1.ServiceExport"];
    assert_eq!(
        export["properties"]["spec"]["description"],
        "what is exported"
    );
    assert_eq!(
        export["x-kubernetes-group-version-kind"][0]["kind"],
        "ServiceExport"
    );
    assert!(schemas["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"].is_object());
}
