//! The Multi-Cluster Services API (KEP-1645), `multicluster.x-k8s.io`:
//! [`ServiceExport`] and [`ServiceImport`], shaped like the upstream CRDs
//! (mcs-api v0.5.0) so MCS tooling works against ferry. The types are
//! `v1beta1`, the storage version; `v1alpha1` is served with the same schema
//! (as upstream: the two versions differ only in name, so the API server
//! converts between them by rewriting `apiVersion`). It is not the logic that
//! fills them (that is the agent's).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::SessionAffinityConfig;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// API group of the MCS resources.
pub const GROUP: &str = "multicluster.x-k8s.io";
/// API version of the MCS resources: the storage version, which ferry writes.
pub const VERSION: &str = "v1beta1";
/// The older version, still served (with the same schema) so clients and
/// agents of older ferry releases keep working.
pub const OLD_VERSION: &str = "v1alpha1";

/// `ServiceExport` condition types and reasons (see `mcs.md`).
pub mod condition {
    /// Condition type: the export is valid (the Service exists and can be exported).
    pub const VALID: &str = "Valid";
    /// Condition type: the export has been propagated.
    pub const READY: &str = "Ready";
    /// Condition type: this export conflicts with another cluster's.
    pub const CONFLICT: &str = "Conflict";

    /// Condition reasons.
    pub mod reason {
        /// `Valid=True`.
        pub const VALID: &str = "Valid";
        /// `Valid=False`: there is no Service of that name.
        pub const NO_SERVICE: &str = "NoService";
        /// `Valid=False`: the Service's type cannot be exported (ExternalName).
        pub const INVALID_SERVICE_TYPE: &str = "InvalidServiceType";
        /// `Ready=True`: exported.
        pub const EXPORTED: &str = "Exported";
        /// `Ready=True`.
        pub const READY: &str = "Ready";
        /// `Ready=False`: not yet propagated.
        pub const PENDING: &str = "Pending";
        /// `Ready=False`: propagation failed.
        pub const FAILED: &str = "Failed";
        /// `Conflict=True`: ports conflict.
        pub const PORT_CONFLICT: &str = "PortConflict";
        /// `Conflict=True`: service types conflict.
        pub const TYPE_CONFLICT: &str = "TypeConflict";
        /// `Conflict=True`: session affinity conflicts.
        pub const SESSION_AFFINITY_CONFLICT: &str = "SessionAffinityConflict";
        /// `Conflict=True`: session affinity configs conflict.
        pub const SESSION_AFFINITY_CONFIG_CONFLICT: &str = "SessionAffinityConfigConflict";
        /// `Conflict=True`: exported labels conflict.
        pub const LABELS_CONFLICT: &str = "LabelsConflict";
        /// `Conflict=True`: exported annotations conflict.
        pub const ANNOTATIONS_CONFLICT: &str = "AnnotationsConflict";
        /// `Conflict=True`: internal traffic policies conflict.
        pub const INTERNAL_TRAFFIC_POLICY_CONFLICT: &str = "InternalTrafficPolicyConflict";
        /// `Conflict=True`: traffic distributions conflict.
        pub const TRAFFIC_DISTRIBUTION_CONFLICT: &str = "TrafficDistributionConflict";
        /// `Conflict=True`: IP families conflict (some backends unreachable
        /// over one family).
        pub const IP_FAMILY_CONFLICT: &str = "IPFamilyConflict";
        /// `Conflict=False`.
        pub const NO_CONFLICTS: &str = "NoConflicts";
    }
}

/// `ServiceImport` condition types and reasons (v1beta1).
pub mod import_condition {
    /// Condition type: the import is ready to be used.
    pub const READY: &str = "Ready";

    /// Condition reasons.
    pub mod reason {
        /// `Ready=True`.
        pub const READY: &str = "Ready";
        /// `Ready=False`: being created or updated (e.g. no clusterset IP yet).
        pub const PENDING: &str = "Pending";
        /// `Ready=False`: the cluster cannot serve the service's IP families.
        pub const IP_FAMILY_NOT_SUPPORTED: &str = "IPFamilyNotSupported";
    }
}

/// Declares that the Service of the same name and namespace is exported to
/// the clusterset; its status carries the conditions.
// kube's repeated `printcolumn(type_ = …)` trips this lint.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[kube(
    group = "multicluster.x-k8s.io",
    version = "v1beta1",
    kind = "ServiceExport",
    namespaced,
    derive = "PartialEq",
    derive = "Default",
    status = "ServiceExportStatus",
    shortname = "svcex",
    shortname = "svcexport",
    doc = "Exports the Service of the same name and namespace to the clusterset.",
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ServiceExportSpec {
    /// Labels put on the ServiceImport in every importing cluster.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub exported_labels: BTreeMap<String, String>,
    /// Annotations put on the ServiceImport in every importing cluster.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub exported_annotations: BTreeMap<String, String>,
}

/// The fields of a [`ServiceExportSpec`] on the wire.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServiceExportSpecFields {
    #[serde(default)]
    exported_labels: BTreeMap<String, String>,
    #[serde(default)]
    exported_annotations: BTreeMap<String, String>,
}

/// A missing (or null) `spec` reads as the empty one: v1alpha1
/// ServiceExports, and most v1beta1 ones, have none. serde asks a missing
/// field for an `Option` (`deserialize_option`), which this answers.
impl<'de> Deserialize<'de> for ServiceExportSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let fields: Option<ServiceExportSpecFields> = Option::deserialize(d)?;
        Ok(
            fields.map_or_else(ServiceExportSpec::default, |f| ServiceExportSpec {
                exported_labels: f.exported_labels,
                exported_annotations: f.exported_annotations,
            }),
        )
    }
}

/// Observed state of a ServiceExport.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceExportStatus {
    /// Standard conditions of types `Valid`, `Ready` and `Conflict`
    /// (constants in the `condition` module).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

/// A service as seen across the clusterset: created by ferry in every cluster
/// (and, one per exporting cluster, on the broker).
// kube's repeated `printcolumn(type_ = …)` trips this lint.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "multicluster.x-k8s.io",
    version = "v1beta1",
    kind = "ServiceImport",
    namespaced,
    derive = "PartialEq",
    derive = "Default",
    status = "ServiceImportStatus",
    shortname = "svcim",
    doc = "A service imported from the clusterset: type, clusterset IPs and ports.",
    printcolumn(
        name = "TYPE",
        type_ = "string",
        json_path = ".spec.type",
        description = "The type of this ServiceImport"
    ),
    printcolumn(
        name = "IP",
        type_ = "string",
        json_path = ".spec.ips",
        description = "The clusterset IPs of this ServiceImport"
    ),
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ServiceImportSpec {
    /// Ports of the service, merged over the exporting clusters.
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub ports: Vec<ServicePort>,
    /// Clusterset IPs, at most one per IP family; empty for headless services.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 2))]
    pub ips: Vec<String>,
    /// Whether the service has a clusterset IP or is headless.
    #[serde(rename = "type")]
    pub type_: ServiceImportType,
    /// `ClientIP` or `None`, as on a Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_affinity: Option<String>,
    /// Session affinity settings, as on a Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_affinity_config: Option<SessionAffinityConfig>,
    /// The IP families of `ips` (`IPv4`, `IPv6`), in the same order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 2))]
    pub ip_families: Vec<String>,
    /// `Cluster` or `Local`, as on a Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_traffic_policy: Option<String>,
    /// A hint such as `PreferClose`, as on a Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_distribution: Option<String>,
}

/// The two kinds of ServiceImport.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum ServiceImportType {
    /// Reached through a clusterset IP.
    #[default]
    #[serde(rename = "ClusterSetIP")]
    ClusterSetIp,
    /// Reached at the endpoints' own addresses.
    Headless,
}

/// One port of a ServiceImport.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServicePort {
    /// The port's name; required when there are several ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `TCP`, `UDP` or `SCTP`.
    #[serde(default = "default_protocol")]
    pub protocol: String,
    /// Application protocol (e.g. `http`), as on a Service port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
    /// The port number.
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
}

fn default_protocol() -> String {
    "TCP".to_string()
}

/// Observed state of a ServiceImport.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceImportStatus {
    /// The clusters that export this service.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["cluster"]))]
    pub clusters: Vec<ClusterStatus>,
    /// Standard conditions; `Ready` (constants in `import_condition`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

/// One exporting cluster of a ServiceImport.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStatus {
    /// The cluster id.
    pub cluster: String,
}

#[cfg(test)]
mod tests;
