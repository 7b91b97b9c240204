//! `about.k8s.io/v1alpha1` [`ClusterProperty`] (KEP-2149): cluster-scoped
//! facts about a cluster, above all its id in the clusterset.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::labels::CLUSTER_ID_PROPERTY;
use crate::{Result, validate_cluster_id};

/// API group of `ClusterProperty`.
pub const GROUP: &str = "about.k8s.io";
/// API version of `ClusterProperty`.
pub const VERSION: &str = "v1alpha1";

/// A property of the cluster. The one named `cluster.clusterset.k8s.io`
/// (`labels::CLUSTER_ID_PROPERTY`) holds the cluster id.
// kube's repeated `printcolumn(type_ = …)` trips this lint.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[kube(
    group = "about.k8s.io",
    version = "v1alpha1",
    kind = "ClusterProperty",
    derive = "PartialEq",
    doc = "A property of this cluster (KEP-2149); cluster.clusterset.k8s.io holds its id.",
    printcolumn(name = "VALUE", type_ = "string", json_path = ".spec.value"),
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterPropertySpec {
    /// The property's value.
    #[schemars(length(min = 1, max = 128000))]
    pub value: String,
}

impl ClusterProperty {
    /// The `cluster.clusterset.k8s.io` property holding `cluster_id`, which
    /// must be an RFC 1123 label.
    pub fn cluster_id(cluster_id: &str) -> Result<Self> {
        validate_cluster_id(cluster_id)?;
        Ok(Self::new(
            CLUSTER_ID_PROPERTY,
            ClusterPropertySpec {
                value: cluster_id.to_string(),
            },
        ))
    }
}
