//! Reading and making objects: ownership, readiness, selectors and pods
//! from templates.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Resource;

pub(super) fn is_terminating<K: Resource>(o: &K) -> bool {
    o.meta().deletion_timestamp.is_some()
}

pub(super) fn controller_uid<K: Resource>(o: &K) -> Option<String> {
    o.meta()
        .owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
        .map(|r| r.uid.clone())
}

pub(super) fn owner_ref<K: Resource<DynamicType = ()>>(o: &K) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: o.meta().name.clone().unwrap_or_default(),
        uid: o.meta().uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Whether every `k=v` of a selector map is in `labels`.
pub fn map_matches(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

pub fn pod_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

pub(super) fn pod_phase_done(p: &Pod) -> bool {
    matches!(
        p.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded") | Some("Failed")
    )
}

/// A hash of a pod template, the same however empty fields are spelled:
/// `kubectl rollout undo` writes back a template with the `resources: {}`
/// and `creationTimestamp: null` Go's encoder adds, and that must still be
/// the template of the ReplicaSet it came from.
pub(super) fn short_hash(v: &impl serde::Serialize) -> String {
    use sha2::Digest;
    let mut value = serde_json::to_value(v).unwrap_or_default();
    prune_empty(&mut value);
    let bytes = serde_json::to_vec(&value).unwrap_or_default();
    hex::encode(&sha2::Sha256::digest(&bytes)[..5])
}

/// Drops nulls, empty objects and empty lists, innermost first.
fn prune_empty(value: &mut serde_json::Value) {
    use serde_json::Value;
    let empty = |v: &Value| match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    };
    match value {
        Value::Object(map) => {
            map.values_mut().for_each(prune_empty);
            map.retain(|_, v| !empty(v));
        }
        Value::Array(items) => items.iter_mut().for_each(prune_empty),
        _ => {}
    }
}

pub(super) fn pod_from_template(
    template: &k8s_openapi::api::core::v1::PodTemplateSpec,
    generate_name: String,
    owner: OwnerReference,
    extra_labels: &[(&str, &str)],
    node: Option<&str>,
) -> Pod {
    let mut meta = template.metadata.clone().unwrap_or_default();
    meta.name = None;
    meta.generate_name = Some(generate_name);
    let labels = meta.labels.get_or_insert_with(BTreeMap::new);
    for (k, v) in extra_labels {
        labels.insert((*k).into(), (*v).into());
    }
    meta.owner_references = Some(vec![owner]);
    let mut spec = template.spec.clone().unwrap_or_default();
    if let Some(n) = node {
        spec.node_name = Some(n.to_string());
    }
    Pod {
        metadata: meta,
        spec: Some(spec),
        status: None,
    }
}
