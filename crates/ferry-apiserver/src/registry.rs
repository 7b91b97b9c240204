//! Which resources the server serves: the built-in kinds, plus every
//! CustomResourceDefinition as soon as it is stored.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde_json::{Value, json};

/// How a resource's objects are validated and printed.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceDef {
    /// API group; "" for the core group.
    pub group: String,
    /// The version served at this resource's path.
    pub version: String,
    /// The version objects are stored in (a CRD's `storage: true` version;
    /// the served one for built-ins). Versions of one resource share one
    /// schema here (conversion strategy `None`): serving another version
    /// only rewrites `apiVersion`.
    pub storage_version: String,
    pub kind: String,
    /// Lowercase plural, the path segment.
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    /// Has a `/status` subresource: status is written only through it.
    pub status: bool,
    /// CRD `additionalPrinterColumns`, when this is a custom resource.
    pub printer_columns: Option<Vec<Value>>,
    /// Defined by a CRD (custom resources take JSON merge patch only).
    pub custom: bool,
    /// The CRD version's `openAPIV3Schema`, which its objects are pruned,
    /// defaulted and validated against.
    pub schema: Option<Arc<Value>>,
    /// Fields a field selector may use besides `metadata.name` and
    /// `metadata.namespace` (a CRD version's `selectableFields`, without the
    /// leading dot).
    pub selectable_fields: Vec<String>,
}

impl ResourceDef {
    /// `apiVersion` of objects of this resource.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `apiVersion` of stored objects of this resource.
    pub fn storage_api_version(&self) -> String {
        if self.group.is_empty() {
            self.storage_version.clone()
        } else {
            format!("{}/{}", self.group, self.storage_version)
        }
    }

    /// `plural` or `plural.group`, as Kubernetes names a resource in messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// Storage key prefix of all objects of this resource.
    pub fn prefix(&self) -> String {
        let group = if self.group.is_empty() {
            "core"
        } else {
            &self.group
        };
        format!("/{group}/{}/", self.plural)
    }

    /// Storage key prefix of one namespace (or all, for `None`).
    pub fn collection_prefix(&self, namespace: Option<&str>) -> String {
        match (self.namespaced, namespace) {
            (true, Some(ns)) => format!("{}{ns}/", self.prefix()),
            _ => self.prefix(),
        }
    }

    /// Storage key of one object.
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        match (self.namespaced, namespace) {
            (true, Some(ns)) => format!("{}{ns}/{name}", self.prefix()),
            _ => format!("{}{name}", self.prefix()),
        }
    }

    /// The `APIResource` entry for discovery.
    pub fn api_resource(&self) -> Value {
        let mut r = json!({
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
        });
        if !self.short_names.is_empty() {
            r["shortNames"] = json!(self.short_names);
        }
        if !self.categories.is_empty() {
            r["categories"] = json!(self.categories);
        }
        r
    }
}

struct Builtin {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    status: bool,
}

const BUILTINS: &[Builtin] = &[
    b("", "v1", "Namespace", "namespaces", false, &["ns"], true),
    b("", "v1", "Node", "nodes", false, &["no"], true),
    b("", "v1", "Pod", "pods", true, &["po"], true),
    b("", "v1", "Service", "services", true, &["svc"], true),
    b("", "v1", "ConfigMap", "configmaps", true, &["cm"], false),
    b("", "v1", "Secret", "secrets", true, &[], false),
    b(
        "",
        "v1",
        "ServiceAccount",
        "serviceaccounts",
        true,
        &["sa"],
        false,
    ),
    b("", "v1", "Event", "events", true, &["ev"], false),
    b(
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        "endpointslices",
        true,
        &[],
        false,
    ),
    b(
        "coordination.k8s.io",
        "v1",
        "Lease",
        "leases",
        true,
        &[],
        false,
    ),
    b(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        true,
        &["deploy"],
        true,
    ),
    b("apps", "v1", "DaemonSet", "daemonsets", true, &["ds"], true),
    b(
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        true,
        &["rs"],
        true,
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "Role",
        "roles",
        true,
        &[],
        false,
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        true,
        &[],
        false,
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        false,
        &[],
        false,
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        false,
        &[],
        false,
    ),
    b(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        false,
        &["crd", "crds"],
        true,
    ),
];

const fn b(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    status: bool,
) -> Builtin {
    Builtin {
        group,
        version,
        kind,
        plural,
        namespaced,
        short,
        status,
    }
}

/// The CRD resource itself, which the server watches to register kinds.
pub fn crd_resource() -> ResourceDef {
    builtin_defs()
        .into_iter()
        .find(|d| d.plural == "customresourcedefinitions")
        .unwrap_or_else(|| unreachable!("the CRD resource is in the built-in table"))
}

fn builtin_defs() -> Vec<ResourceDef> {
    BUILTINS
        .iter()
        .map(|b| ResourceDef {
            group: b.group.into(),
            version: b.version.into(),
            storage_version: b.version.into(),
            kind: b.kind.into(),
            plural: b.plural.into(),
            singular: b.kind.to_lowercase(),
            namespaced: b.namespaced,
            short_names: b.short.iter().map(|s| s.to_string()).collect(),
            categories: if matches!(
                b.plural,
                "pods" | "services" | "deployments" | "daemonsets" | "replicasets"
            ) {
                vec!["all".into()]
            } else {
                vec![]
            },
            status: b.status,
            printer_columns: None,
            custom: false,
            schema: None,
            selectable_fields: Vec::new(),
        })
        .collect()
}

/// (group, version, plural) → resource.
type DefMap = BTreeMap<(String, String, String), Arc<ResourceDef>>;

/// All served resources, keyed by (group, version, plural).
#[derive(Debug, Clone)]
pub struct Registry {
    inner: Arc<RwLock<DefMap>>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    /// A registry with the built-in resources.
    pub fn new() -> Self {
        let map = builtin_defs()
            .into_iter()
            .map(|d| {
                (
                    (d.group.clone(), d.version.clone(), d.plural.clone()),
                    Arc::new(d),
                )
            })
            .collect();
        Registry {
            inner: Arc::new(RwLock::new(map)),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, DefMap> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The resource at `/apis/<group>/<version>/<plural>`.
    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceDef>> {
        self.read()
            .get(&(group.to_string(), version.to_string(), plural.to_string()))
            .cloned()
    }

    /// The resource stored under `/<group>/<plural>/` (any served version).
    pub fn by_group_resource(&self, group: &str, plural: &str) -> Option<Arc<ResourceDef>> {
        self.read()
            .values()
            .find(|d| d.group == group && d.plural == plural)
            .cloned()
    }

    /// The resource of objects of `kind` in `apiVersion` (any served
    /// version of its group: all versions share one storage).
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<Arc<ResourceDef>> {
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        self.read()
            .values()
            .find(|d| d.group == group && d.kind == kind)
            .cloned()
    }

    /// Splits a storage key into (resource, namespace, name).
    pub fn resolve_key(&self, key: &str) -> Option<(Arc<ResourceDef>, Option<String>, String)> {
        let mut parts = key.trim_start_matches('/').split('/');
        let group = parts.next()?;
        let group = if group == "core" { "" } else { group };
        let plural = parts.next()?;
        let def = self.by_group_resource(group, plural)?;
        let rest: Vec<&str> = parts.collect();
        match (def.namespaced, rest.as_slice()) {
            (true, [ns, name]) => Some((def, Some(ns.to_string()), name.to_string())),
            (false, [name]) => Some((def, None, name.to_string())),
            _ => None,
        }
    }

    /// Every served resource.
    pub fn all(&self) -> Vec<Arc<ResourceDef>> {
        self.read().values().cloned().collect()
    }

    /// Resources of one group/version, or `None` if nothing is served there.
    pub fn group_version(&self, group: &str, version: &str) -> Option<Vec<Arc<ResourceDef>>> {
        let list: Vec<_> = self
            .read()
            .values()
            .filter(|d| d.group == group && d.version == version)
            .cloned()
            .collect();
        (!list.is_empty()).then_some(list)
    }

    /// Groups (other than core) with their versions, preferred first.
    pub fn groups(&self) -> BTreeMap<String, Vec<String>> {
        let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for d in self.read().values() {
            if d.group.is_empty() {
                continue;
            }
            let versions = groups.entry(d.group.clone()).or_default();
            if !versions.contains(&d.version) {
                versions.push(d.version.clone());
            }
        }
        for versions in groups.values_mut() {
            versions.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
        }
        groups
    }

    /// Registers (or re-registers) every served version of a CRD object.
    pub fn apply_crd(&self, crd: &Value) {
        let Some(defs) = defs_from_crd(crd) else {
            return;
        };
        let name = crd.pointer("/metadata/name").and_then(Value::as_str);
        let mut map = self.inner.write().unwrap_or_else(|p| p.into_inner());
        if let Some(name) = name {
            remove_crd_defs(&mut map, name);
        }
        for d in defs {
            map.insert(
                (d.group.clone(), d.version.clone(), d.plural.clone()),
                Arc::new(d),
            );
        }
    }

    /// Forgets the kinds of a deleted CRD (`plural.group`).
    pub fn remove_crd(&self, name: &str) {
        let mut map = self.inner.write().unwrap_or_else(|p| p.into_inner());
        remove_crd_defs(&mut map, name);
    }
}

fn remove_crd_defs(map: &mut DefMap, name: &str) {
    map.retain(|_, d| !(d.custom && format!("{}.{}", d.plural, d.group) == name));
}

/// Kubernetes version ordering: GA > beta > alpha, then by number.
fn version_priority(v: &str) -> (u8, u32, u32) {
    let rest = v.trim_start_matches('v');
    let (major, tail) = rest
        .find(|c: char| !c.is_ascii_digit())
        .map_or((rest, ""), |i| rest.split_at(i));
    let major = major.parse().unwrap_or(0);
    let (stage, minor) = if let Some(m) = tail.strip_prefix("beta") {
        (1, m.parse().unwrap_or(0))
    } else if let Some(m) = tail.strip_prefix("alpha") {
        (0, m.parse().unwrap_or(0))
    } else if tail.is_empty() {
        (2, 0)
    } else {
        (0, 0)
    };
    (stage, major, minor)
}

/// The resources a CRD defines (one per served version).
pub fn defs_from_crd(crd: &Value) -> Option<Vec<ResourceDef>> {
    let spec = crd.get("spec")?;
    let group = spec.get("group")?.as_str()?;
    let names = spec.get("names")?;
    let plural = names.get("plural")?.as_str()?;
    let kind = names.get("kind")?.as_str()?;
    let singular = names
        .get("singular")
        .and_then(Value::as_str)
        .map_or_else(|| kind.to_lowercase(), str::to_string);
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let short_names = strings(names.get("shortNames"));
    let categories = strings(names.get("categories"));
    let namespaced = spec.get("scope").and_then(Value::as_str) != Some("Cluster");
    let versions = spec.get("versions")?.as_array()?;
    let storage_version = versions
        .iter()
        .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .or(versions.first())
        .and_then(|v| v.get("name"))
        .and_then(Value::as_str)?;
    let mut defs = Vec::new();
    for v in versions {
        if v.get("served").and_then(Value::as_bool) == Some(false) {
            continue;
        }
        let Some(version) = v.get("name").and_then(Value::as_str) else {
            continue;
        };
        defs.push(ResourceDef {
            group: group.into(),
            version: version.into(),
            storage_version: storage_version.into(),
            kind: kind.into(),
            plural: plural.into(),
            singular: singular.clone(),
            namespaced,
            short_names: short_names.clone(),
            categories: categories.clone(),
            status: v.pointer("/subresources/status").is_some(),
            printer_columns: v
                .get("additionalPrinterColumns")
                .and_then(Value::as_array)
                .cloned(),
            custom: true,
            schema: v.pointer("/schema/openAPIV3Schema").cloned().map(Arc::new),
            selectable_fields: v
                .get("selectableFields")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|f| f.get("jsonPath").and_then(Value::as_str))
                .map(|p| p.trim_start_matches('.').to_string())
                .collect(),
        });
    }
    Some(defs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crd_registers_and_unregisters() {
        let reg = Registry::new();
        let crd = json!({
            "metadata": {"name": "serviceimports.multicluster.x-k8s.io"},
            "spec": {
                "group": "multicluster.x-k8s.io",
                "names": {"plural": "serviceimports", "kind": "ServiceImport", "shortNames": ["svcim"]},
                "scope": "Namespaced",
                "versions": [{"name": "v1alpha1", "served": true, "storage": true,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [{"name": "Type", "type": "string", "jsonPath": ".spec.type"}]}]
            }
        });
        reg.apply_crd(&crd);
        let d = reg
            .get("multicluster.x-k8s.io", "v1alpha1", "serviceimports")
            .unwrap();
        assert!(d.namespaced && d.status && d.custom);
        assert_eq!(d.singular, "serviceimport");
        assert!(reg.groups().contains_key("multicluster.x-k8s.io"));
        reg.remove_crd("serviceimports.multicluster.x-k8s.io");
        assert!(
            reg.get("multicluster.x-k8s.io", "v1alpha1", "serviceimports")
                .is_none()
        );
    }

    #[test]
    fn every_served_version_knows_the_storage_version() {
        let reg = Registry::new();
        let version = |name: &str, storage: bool| {
            json!({"name": name, "served": true, "storage": storage,
                "subresources": {"status": {}}})
        };
        reg.apply_crd(&json!({
            "metadata": {"name": "serviceexports.multicluster.x-k8s.io"},
            "spec": {
                "group": "multicluster.x-k8s.io",
                "names": {"plural": "serviceexports", "kind": "ServiceExport"},
                "scope": "Namespaced",
                "versions": [version("v1alpha1", false), version("v1beta1", true)],
            }
        }));
        for served in ["v1alpha1", "v1beta1"] {
            let d = reg
                .get("multicluster.x-k8s.io", served, "serviceexports")
                .unwrap();
            assert_eq!(d.api_version(), format!("multicluster.x-k8s.io/{served}"));
            assert_eq!(d.storage_api_version(), "multicluster.x-k8s.io/v1beta1");
        }
        assert_eq!(
            reg.groups()["multicluster.x-k8s.io"],
            vec!["v1beta1", "v1alpha1"]
        );
    }

    #[test]
    fn versions_sort_ga_first() {
        let mut v = vec!["v1alpha1", "v1beta2", "v1", "v2beta1"];
        v.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
        assert_eq!(v, vec!["v1", "v2beta1", "v1beta2", "v1alpha1"]);
    }
}
