//! Which lists of the built-in kinds merge, and by which key.
//!
//! This is the `patchStrategy` / `patchMergeKey` struct-tag information of
//! `k8s.io/api` for the kinds ferry's API server hosts, written as path
//! patterns. A path is the chain of object keys from the root; list elements
//! do not add a segment (`spec.containers.ports` is the `ports` list inside
//! any container). Lists not listed here are atomic: a patch replaces them.

/// How a list field is merged by a strategic merge patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListStrategy {
    /// A list of objects merged element-wise by the value of this key.
    MergeByKey(&'static str),
    /// A list of scalars merged as a set union (e.g. `metadata.finalizers`).
    MergePrimitives,
}

/// The `(group, kind)` pairs whose strategic merge follows this schema;
/// everything else is treated as a custom resource.
const BUILTIN_KINDS: &[(&str, &str)] = &[
    ("", "Namespace"),
    ("", "Node"),
    ("", "Pod"),
    ("", "Service"),
    ("", "Endpoints"),
    ("", "ConfigMap"),
    ("", "Secret"),
    ("", "ServiceAccount"),
    ("", "Event"),
    ("events.k8s.io", "Event"),
    ("discovery.k8s.io", "EndpointSlice"),
    ("coordination.k8s.io", "Lease"),
    ("apps", "Deployment"),
    ("apps", "DaemonSet"),
    ("apps", "ReplicaSet"),
    ("apps", "StatefulSet"),
    ("rbac.authorization.k8s.io", "Role"),
    ("rbac.authorization.k8s.io", "RoleBinding"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
];

/// Whether `(group, kind)` is a built-in kind with a strategic-merge schema.
/// The core group may be given as `""` or `"core"`.
pub fn is_builtin(group: &str, kind: &str) -> bool {
    let group = if group == "core" { "" } else { group };
    BUILTIN_KINDS.iter().any(|&(g, k)| g == group && k == kind)
}

/// The merge strategy of the list at `path` in an object of `kind`, or
/// `None` if that list is replaced as a whole.
pub fn list_strategy(kind: &str, path: &[&str]) -> Option<ListStrategy> {
    if let ["metadata", rest @ ..] = path {
        return object_meta(rest);
    }
    match kind {
        "Pod" => match path {
            ["spec", rest @ ..] => pod_spec(rest),
            ["status", "conditions"] => Some(ListStrategy::MergeByKey("type")),
            ["status", "podIPs" | "hostIPs"] => Some(ListStrategy::MergeByKey("ip")),
            _ => None,
        },
        "Deployment" | "DaemonSet" | "ReplicaSet" | "StatefulSet" => match path {
            ["spec", "template", "metadata", rest @ ..] => object_meta(rest),
            ["spec", "template", "spec", rest @ ..] => pod_spec(rest),
            ["status", "conditions"] => Some(ListStrategy::MergeByKey("type")),
            _ => None,
        },
        "Service" => match path {
            ["spec", "ports"] => Some(ListStrategy::MergeByKey("port")),
            ["status", "conditions"] => Some(ListStrategy::MergeByKey("type")),
            _ => None,
        },
        "Node" => match path {
            ["spec", "podCIDRs"] => Some(ListStrategy::MergePrimitives),
            ["status", "addresses" | "conditions"] => Some(ListStrategy::MergeByKey("type")),
            _ => None,
        },
        "Namespace" => match path {
            ["status", "conditions"] => Some(ListStrategy::MergeByKey("type")),
            _ => None,
        },
        "ServiceAccount" => match path {
            ["secrets"] => Some(ListStrategy::MergeByKey("name")),
            _ => None,
        },
        _ => None,
    }
}

/// `metav1.ObjectMeta`, for objects and pod templates alike.
fn object_meta(path: &[&str]) -> Option<ListStrategy> {
    match path {
        ["finalizers"] => Some(ListStrategy::MergePrimitives),
        ["ownerReferences"] => Some(ListStrategy::MergeByKey("uid")),
        _ => None,
    }
}

/// `core/v1.PodSpec`, for pods and pod templates alike.
fn pod_spec(path: &[&str]) -> Option<ListStrategy> {
    match path {
        ["containers" | "initContainers" | "ephemeralContainers"] => {
            Some(ListStrategy::MergeByKey("name"))
        }
        [
            "containers" | "initContainers" | "ephemeralContainers",
            rest @ ..,
        ] => container(rest),
        ["volumes" | "imagePullSecrets" | "resourceClaims" | "schedulingGates"] => {
            Some(ListStrategy::MergeByKey("name"))
        }
        ["hostAliases"] => Some(ListStrategy::MergeByKey("ip")),
        ["topologySpreadConstraints"] => Some(ListStrategy::MergeByKey("topologyKey")),
        _ => None,
    }
}

/// `core/v1.Container` (and `EphemeralContainer`, which has the same tags).
fn container(path: &[&str]) -> Option<ListStrategy> {
    match path {
        ["ports"] => Some(ListStrategy::MergeByKey("containerPort")),
        ["env"] => Some(ListStrategy::MergeByKey("name")),
        ["volumeMounts"] => Some(ListStrategy::MergeByKey("mountPath")),
        ["volumeDevices"] => Some(ListStrategy::MergeByKey("devicePath")),
        _ => None,
    }
}
