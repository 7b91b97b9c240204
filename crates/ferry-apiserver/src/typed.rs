//! Built-in objects must decode as the k8s-openapi type of their kind, the
//! type typed clients (kube-rs, client-go, the Python and JavaScript
//! clients) decode them into: a ConfigMap with `data: {k: 5}` stored once
//! would make every later list of its namespace fail in those clients.
//!
//! Unknown fields are not refused here (typed clients skip them too).

use ferry_apimachinery::field::{FieldError, FieldErrorKind};
use k8s_openapi::api::{apps, coordination, core, discovery, rbac};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::registry::ResourceDef;

/// The field that keeps `object` from decoding as its kind's type, if any.
pub fn check(def: &ResourceDef, object: &Value) -> Option<FieldError> {
    match (def.group.as_str(), def.kind.as_str()) {
        ("", "Namespace") => decode::<core::v1::Namespace>(object),
        ("", "Node") => decode::<core::v1::Node>(object),
        ("", "Pod") => decode::<core::v1::Pod>(object),
        ("", "Service") => decode::<core::v1::Service>(object),
        ("", "ConfigMap") => decode::<core::v1::ConfigMap>(object),
        ("", "Secret") => decode::<core::v1::Secret>(object),
        ("", "ServiceAccount") => decode::<core::v1::ServiceAccount>(object),
        ("", "Event") => decode::<core::v1::Event>(object),
        ("discovery.k8s.io", "EndpointSlice") => decode::<discovery::v1::EndpointSlice>(object),
        ("coordination.k8s.io", "Lease") => decode::<coordination::v1::Lease>(object),
        ("apps", "Deployment") => decode::<apps::v1::Deployment>(object),
        ("apps", "DaemonSet") => decode::<apps::v1::DaemonSet>(object),
        ("apps", "ReplicaSet") => decode::<apps::v1::ReplicaSet>(object),
        ("rbac.authorization.k8s.io", "Role") => decode::<rbac::v1::Role>(object),
        ("rbac.authorization.k8s.io", "RoleBinding") => decode::<rbac::v1::RoleBinding>(object),
        ("rbac.authorization.k8s.io", "ClusterRole") => decode::<rbac::v1::ClusterRole>(object),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
            decode::<rbac::v1::ClusterRoleBinding>(object)
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            decode::<apiextensions::v1::CustomResourceDefinition>(object)
        }
        _ => None,
    }
}

fn decode<T: DeserializeOwned>(object: &Value) -> Option<FieldError> {
    let err = serde_path_to_error::deserialize::<_, T>(object).err()?;
    let path = err.path().to_string();
    // serde_path_to_error prints the root as ".".
    let field = if path == "." { String::new() } else { path };
    Some(
        FieldError::new(FieldErrorKind::TypeInvalid, field, None)
            .with_detail(err.into_inner().to_string()),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::registry::Registry;

    fn def(group: &str, plural: &str) -> ResourceDef {
        let registry = Registry::new();
        let def = registry
            .by_group_resource(group, plural)
            .expect("a built-in resource");
        (*def).clone()
    }

    #[test]
    fn what_typed_clients_cannot_decode_is_named() {
        let cm = def("", "configmaps");
        let bad = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a"}, "data": {"k": 5}});
        let err = check(&cm, &bad).expect("refused");
        assert_eq!(err.field, "data.k");
        assert!(err.detail.contains("expected a string"), "{}", err.detail);
        let good = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a"}, "data": {"k": "5"}, "unknown": 1});
        assert_eq!(check(&cm, &good), None);
        let deploy = def("apps", "deployments");
        let bad = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "a"}, "spec": {"replicas": "two",
            "selector": {}, "template": {}}});
        assert_eq!(
            check(&deploy, &bad).expect("refused").field,
            "spec.replicas"
        );
    }
}
