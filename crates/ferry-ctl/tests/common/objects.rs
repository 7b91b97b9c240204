//! Reading and seeding objects in a test's API servers.

use kube::api::{Api, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A namespaced object, or `None` if it does not exist (or cannot be read).
pub async fn get<K>(c: &Client, ns: &str, name: &str) -> Option<K>
where
    K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    Api::<K>::namespaced(c.clone(), ns)
        .get_opt(name)
        .await
        .ok()
        .flatten()
}

/// Creates an object given as JSON through `api`.
pub async fn create<K>(api: Api<K>, v: Value)
where
    K: Resource + Clone + DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let obj: K = serde_json::from_value(v).unwrap();
    api.create(&PostParams::default(), &obj).await.unwrap();
}

/// Server-side applies an object given as JSON (its resource found by
/// discovery).
pub async fn apply(c: &Client, v: Value) {
    let obj: DynamicObject = serde_json::from_value(v.clone()).unwrap();
    let api_version = v["apiVersion"].as_str().unwrap();
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, v["kind"].as_str().unwrap());
    let (ar, _) = kube::discovery::pinned_kind(c, &gvk).await.unwrap();
    let api: Api<DynamicObject> = match obj.metadata.namespace.as_deref() {
        Some(ns) => Api::namespaced_with(c.clone(), ns, &ar),
        None => Api::all_with(c.clone(), &ar),
    };
    let name = obj.metadata.name.clone().unwrap();
    api.patch(
        &name,
        &PatchParams::apply("test").force(),
        &Patch::Apply(&obj),
    )
    .await
    .unwrap();
}

/// Merge-patches the status subresource of a namespaced object.
pub async fn set_status<K>(c: &Client, ns: &str, name: &str, status: Value)
where
    K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(c.clone(), ns);
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({ "status": status })),
    )
    .await
    .unwrap();
}
