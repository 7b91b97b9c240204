//! Globalnet's resources (`ferry.dev/v1alpha1`), shaped and named as
//! Submariner's (`submariner.io/v1`) so manifests written for it carry over:
//! [`ClusterGlobalEgressIP`] (the cluster's egress pool; only the one named
//! [`CLUSTER_EGRESS_NAME`] counts), [`GlobalEgressIP`] (a namespace's, with
//! an optional pod selector), [`GlobalIngressIP`] (the global address of an
//! exported Service, its address in `status.allocatedIP`), and, on the
//! broker, [`GlobalCidr`]: one object per cluster block handed out from the
//! broker's pool, so two clusters joining at once cannot take the same one
//! (creating an existing name fails).
//!
//! Both egress kinds accept the IP count as `numberOfIPs` (Submariner's
//! docs and `GlobalEgressIP`) and `numGlobalIPs` (the JSON name of
//! Submariner's `ClusterGlobalEgressIP` field); [`requested_ips`] reads them.
//! No logic that fills them lives here (that is the agent's and the
//! gateway's).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    Condition, LabelSelector as K8sLabelSelector,
};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Cidr;

/// The one `ClusterGlobalEgressIP` that counts (Submariner's is
/// `cluster-egress.submariner.io`, also accepted).
pub const CLUSTER_EGRESS_NAME: &str = "cluster-egress.ferry.dev";
/// Submariner's name of the cluster egress object, read as ferry's own.
pub const SUBMARINER_CLUSTER_EGRESS_NAME: &str = "cluster-egress.submariner.io";
/// Global IPs of the cluster egress pool unless it asks otherwise
/// (Submariner's default).
pub const DEFAULT_CLUSTER_EGRESS_IPS: u32 = 8;
/// Most global IPs one egress object may ask for (Submariner's limit).
pub const MAX_EGRESS_IPS: u32 = 20;
/// Submariner's default global range.
pub const DEFAULT_CIDR_RANGE: &str = "242.0.0.0/8";
/// Submariner's default addresses per cluster.
pub const DEFAULT_CLUSTER_SIZE: u32 = 65536;
/// Condition type on every Globalnet object: whether its IPs are allocated.
pub const ALLOCATED: &str = "Allocated";

/// The cluster's default egress pool: pods with no namespace or pod
/// policy, and host-network traffic, leave from these global IPs.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "ferry.dev",
    version = "v1alpha1",
    kind = "ClusterGlobalEgressIP",
    shortname = "cgeip",
    derive = "PartialEq",
    category = "ferry",
    status = "GlobalEgressIPStatus",
    doc = "The cluster's default Globalnet egress IPs (only cluster-egress.ferry.dev counts).",
    printcolumn(name = "IPS", type_ = "string", json_path = ".status.allocatedIPs")
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterGlobalEgressIPSpec {
    /// How many global IPs (0–20; default 8).
    #[serde(
        default,
        rename = "numberOfIPs",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 0, max = 20))]
    pub number_of_ips: Option<u32>,
    /// The same, under the JSON name of Submariner's Go field.
    #[serde(
        default,
        rename = "numGlobalIPs",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 0, max = 20))]
    pub num_global_ips: Option<u32>,
}

/// Global egress IPs for a namespace's pods (all, or those `podSelector`
/// selects). Precedence: a pod-selector object over a namespace one over the
/// cluster's.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "ferry.dev",
    version = "v1alpha1",
    kind = "GlobalEgressIP",
    namespaced,
    shortname = "geip",
    category = "ferry",
    status = "GlobalEgressIPStatus",
    doc = "Globalnet egress IPs for a namespace's pods (optionally those a podSelector selects).",
    printcolumn(name = "IPS", type_ = "string", json_path = ".status.allocatedIPs")
)]
#[serde(rename_all = "camelCase")]
pub struct GlobalEgressIPSpec {
    /// How many global IPs (0–20; default 1).
    #[serde(
        default,
        rename = "numberOfIPs",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 0, max = 20))]
    pub number_of_ips: Option<u32>,
    /// The same, under the JSON name of Submariner's `ClusterGlobalEgressIP` field.
    #[serde(
        default,
        rename = "numGlobalIPs",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 0, max = 20))]
    pub num_global_ips: Option<u32>,
    /// Which pods of the namespace (all when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_selector: Option<K8sLabelSelector>,
}

/// What an egress object was given.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GlobalEgressIPStatus {
    /// `Allocated`: whether the IPs are there, and why not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The global IPs.
    #[serde(
        default,
        rename = "allocatedIPs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub allocated_ips: Vec<String>,
}

/// The number of IPs an egress object asks for: `numberOfIPs`, else
/// `numGlobalIPs`, else `default`.
pub fn requested_ips(number_of_ips: Option<u32>, num_global_ips: Option<u32>, default: u32) -> u32 {
    number_of_ips.or(num_global_ips).unwrap_or(default)
}

/// The global address of an exported Service (or of a headless service's
/// pod); the address is in `status.allocatedIP`.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "ferry.dev",
    version = "v1alpha1",
    kind = "GlobalIngressIP",
    namespaced,
    shortname = "giip",
    derive = "PartialEq",
    category = "ferry",
    status = "GlobalIngressIPStatus",
    doc = "The Globalnet address of an exported Service; the address is in status.allocatedIP.",
    printcolumn(name = "IP", type_ = "string", json_path = ".status.allocatedIP")
)]
#[serde(rename_all = "camelCase")]
pub struct GlobalIngressIPSpec {
    /// What the address leads to.
    pub target: TargetType,
    /// The Service (`ClusterIPService`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_ref: Option<LocalObjectReference>,
    /// The pod (`HeadlessServicePod`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_ref: Option<LocalObjectReference>,
}

/// A name in the object's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct LocalObjectReference {
    /// The name.
    pub name: String,
}

/// What a [`GlobalIngressIP`] leads to.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum TargetType {
    /// A ClusterIP Service: the global IP is translated to its cluster IP.
    #[serde(rename = "ClusterIPService")]
    ClusterIpService,
    /// A pod of a headless Service: the global IP is translated to its IP.
    HeadlessServicePod,
}

/// What a [`GlobalIngressIP`] was given.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GlobalIngressIPStatus {
    /// `Allocated`: whether the address is there, and why not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The global IP.
    #[serde(
        default,
        rename = "allocatedIP",
        skip_serializing_if = "String::is_empty"
    )]
    pub allocated_ip: String,
    /// The address it is translated to (the Service's cluster IP or the
    /// pod's IP), for the gateway (ferry's addition to Submariner's shape).
    #[serde(default, rename = "targetIP", skip_serializing_if = "String::is_empty")]
    pub target_ip: String,
}

/// One cluster's block of the broker's global pool. Named after the block
/// ([`GlobalCidr::name_for`]), so the second cluster to create it fails.
// kube's repeated `printcolumn(type_ = …)` trips this lint.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[kube(
    group = "ferry.dev",
    version = "v1alpha1",
    kind = "GlobalCidr",
    namespaced,
    derive = "PartialEq",
    category = "ferry",
    doc = "A cluster's Globalnet block, handed out from the broker's pool.",
    printcolumn(name = "CLUSTER", type_ = "string", json_path = ".spec.clusterId"),
    printcolumn(name = "CIDR", type_ = "string", json_path = ".spec.cidr")
)]
#[serde(rename_all = "camelCase")]
pub struct GlobalCidrSpec {
    /// The cluster holding the block.
    pub cluster_id: String,
    /// The block.
    pub cidr: Cidr,
}

impl GlobalCidr {
    /// The object name of `cidr`'s allocation: `100-120-1-0-24`.
    pub fn name_for(cidr: &Cidr) -> String {
        cidr.to_string().replace(['.', '/', ':'], "-")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_spellings_of_the_ip_count_are_read() {
        let a: GlobalEgressIPSpec = serde_json::from_str(r#"{"numberOfIPs": 3}"#).unwrap();
        let b: GlobalEgressIPSpec = serde_json::from_str(r#"{"numGlobalIPs": 4}"#).unwrap();
        assert_eq!(requested_ips(a.number_of_ips, a.num_global_ips, 1), 3);
        assert_eq!(requested_ips(b.number_of_ips, b.num_global_ips, 1), 4);
        let c: ClusterGlobalEgressIPSpec = serde_json::from_str("{}").unwrap();
        assert_eq!(
            requested_ips(
                c.number_of_ips,
                c.num_global_ips,
                DEFAULT_CLUSTER_EGRESS_IPS
            ),
            8
        );
    }

    #[test]
    fn ingress_targets_use_submariners_names() {
        let s: GlobalIngressIPSpec = serde_json::from_str(
            r#"{"target": "ClusterIPService", "serviceRef": {"name": "nginx"}}"#,
        )
        .unwrap();
        assert_eq!(s.target, TargetType::ClusterIpService);
        assert_eq!(
            serde_json::to_value(TargetType::HeadlessServicePod).unwrap(),
            "HeadlessServicePod"
        );
    }

    #[test]
    fn allocation_names_come_from_the_block() {
        let c: Cidr = "100.120.1.0/24".parse().unwrap();
        assert_eq!(GlobalCidr::name_for(&c), "100-120-1-0-24");
    }
}
