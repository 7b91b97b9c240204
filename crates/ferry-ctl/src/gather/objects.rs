//! Which objects a bundle holds, read as they are (dynamic objects, so no
//! field is lost), and what is left out of them unless the user asks:
//! Secret values, and the annotations and fields that repeat them.

use ferry_api::labels::{MANAGED_BY, MANAGED_BY_FERRY, SYSTEM_NAMESPACE};
use ferry_api::{Cluster, ClusterProperty, Endpoint, Gateway, ServiceExport, ServiceImport};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use kube::{Client, Resource};
use serde_json::Value;

/// Where a kind is listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// In ferry's namespace (`ferry-system`).
    System,
    /// In every namespace.
    AllNamespaces,
    /// Cluster-scoped.
    Cluster,
}

/// One kind a bundle lists.
#[derive(Clone, Debug)]
pub struct Kind {
    /// The API resource.
    pub resource: ApiResource,
    /// Where it is listed.
    pub scope: Scope,
    /// A label selector, if only some objects are ferry's.
    pub selector: Option<String>,
}

impl Kind {
    fn of<K: Resource<DynamicType = ()>>(scope: Scope) -> Kind {
        Kind {
            resource: ApiResource::erase::<K>(&()),
            scope,
            selector: None,
        }
    }

    /// The bundle file name: `endpoints.ferry.dev.yaml`, `pods.yaml`.
    pub fn file_name(&self) -> String {
        let r = &self.resource;
        if r.group.is_empty() {
            format!("{}.yaml", r.plural)
        } else {
            format!("{}.{}.yaml", r.plural, r.group)
        }
    }
}

/// The kinds read from a member cluster.
pub fn cluster_kinds() -> Vec<Kind> {
    let mut slices = Kind::of::<EndpointSlice>(Scope::AllNamespaces);
    slices.selector = Some(format!("{MANAGED_BY}={MANAGED_BY_FERRY}"));
    vec![
        Kind::of::<Cluster>(Scope::System),
        Kind::of::<Endpoint>(Scope::System),
        Kind::of::<Gateway>(Scope::System),
        Kind::of::<ServiceExport>(Scope::AllNamespaces),
        Kind::of::<ServiceImport>(Scope::AllNamespaces),
        slices,
        Kind::of::<ClusterProperty>(Scope::Cluster),
        Kind::of::<Lease>(Scope::System),
        Kind::of::<Pod>(Scope::System),
        Kind::of::<DaemonSet>(Scope::System),
        Kind::of::<Deployment>(Scope::System),
        Kind::of::<Service>(Scope::System),
        Kind::of::<ConfigMap>(Scope::System),
        Kind::of::<Secret>(Scope::System),
        Kind::of::<Node>(Scope::Cluster),
    ]
}

/// The kinds read from the broker (in its namespace).
pub fn broker_kinds() -> Vec<Kind> {
    vec![
        Kind::of::<Cluster>(Scope::System),
        Kind::of::<Endpoint>(Scope::System),
        Kind::of::<ServiceImport>(Scope::System),
        Kind::of::<EndpointSlice>(Scope::System),
    ]
}

/// Lists `kind` (`namespace` stands for [`Scope::System`]); a kind the
/// server does not serve lists as empty.
pub async fn list(
    client: &Client,
    kind: &Kind,
    namespace: &str,
) -> Result<Vec<DynamicObject>, kube::Error> {
    let ar = &kind.resource;
    let api: Api<DynamicObject> = match kind.scope {
        Scope::System => Api::namespaced_with(client.clone(), namespace, ar),
        Scope::AllNamespaces | Scope::Cluster => Api::all_with(client.clone(), ar),
    };
    let mut lp = ListParams::default();
    if let Some(s) = &kind.selector {
        lp = lp.labels(s);
    }
    match api.list(&lp).await {
        Ok(l) => Ok(l.items),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// The namespace [`Scope::System`] means in a member cluster.
pub const MEMBER_NAMESPACE: &str = SYSTEM_NAMESPACE;

/// What stands in for a value left out.
pub fn redacted(len: usize) -> String {
    format!("REDACTED ({len} bytes; ferry gather --include-sensitive-data keeps it)")
}

/// `obj` as written to the bundle: without managed fields and the
/// last-applied annotation (a copy of the object, Secret values included),
/// and, unless `sensitive`, with every Secret value replaced by its size.
pub fn scrub(kind: &Kind, obj: &DynamicObject, sensitive: bool) -> Value {
    let mut v = serde_json::to_value(obj).unwrap_or(Value::Null);
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
        if let Some(ann) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
            ann.remove("kubectl.kubernetes.io/last-applied-configuration");
        }
    }
    v["apiVersion"] = Value::String(kind.resource.api_version.clone());
    v["kind"] = Value::String(kind.resource.kind.clone());
    if kind.resource.kind == "Secret" && !sensitive {
        for field in ["data", "stringData"] {
            if let Some(map) = v.get_mut(field).and_then(Value::as_object_mut) {
                for value in map.values_mut() {
                    let len = value.as_str().map_or(0, str::len);
                    *value = Value::String(redacted(len));
                }
            }
        }
    }
    v
}
