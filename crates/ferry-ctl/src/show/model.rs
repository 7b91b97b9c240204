//! What `ferry show` prints, as data: one [`ClusterReport`] per cluster
//! asked about, with a list of rows per section. Serialized as is for
//! `-o json|yaml`; never holds a token, key or certificate.

use ferry_api::{
    CableDriver, CableTraffic, ConnectionStatus, HaStatus, LatencyRtt, NatDiscovery,
    ServiceImportType,
};
use serde::Serialize;

/// Everything `show` found, cluster by cluster.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// One entry per cluster, in the order they were named.
    pub clusters: Vec<ClusterReport>,
}

/// One cluster: where it was reached, and its sections or why it could not
/// be read.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterReport {
    /// How the user named it (`context east`, `kubeconfig /path`).
    pub source: String,
    /// API server URL.
    pub server: String,
    /// Its cluster id, once known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    /// Why it could not be shown (one line).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What to do about `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// The sections asked for.
    #[serde(flatten)]
    pub view: ClusterView,
}

/// The sections of one cluster; `None` = not asked for.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterView {
    /// Cables from this cluster's gateways.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connections: Option<Vec<ConnectionRow>>,
    /// Every cluster's active gateway endpoint, as this cluster knows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<Vec<EndpointRow>>,
    /// This cluster's gateway nodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateways: Option<Vec<GatewayRow>>,
    /// Every cluster's CIDRs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub networks: Option<Vec<NetworkRow>>,
    /// Imported services with per-cluster health, and this cluster's exports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub services: Option<ServicesView>,
    /// The broker this cluster syncs through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brokers: Option<Vec<BrokerRow>>,
    /// Images of ferry's components.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub versions: Option<Vec<VersionRow>>,
    /// Globalnet: every cluster's global CIDRs and this cluster's global IPs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub globalnet: Option<GlobalnetView>,
}

/// The `globalnet` section.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GlobalnetView {
    /// Each cluster with Globalnet on and its block(s).
    pub blocks: Vec<GlobalBlockRow>,
    /// This cluster's egress and ingress global IPs.
    pub allocations: Vec<AllocationRow>,
}

/// One cluster's Globalnet block(s).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GlobalBlockRow {
    /// Cluster id.
    pub cluster: String,
    /// Whether it is this cluster.
    pub local: bool,
    /// Its global CIDRs.
    pub global_cidrs: Vec<String>,
}

/// One Globalnet object of this cluster and what it was given.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AllocationRow {
    /// `ClusterGlobalEgressIP`, `GlobalEgressIP` or `GlobalIngressIP`.
    pub kind: String,
    /// Namespace (none for the cluster-wide kind).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// Name.
    pub name: String,
    /// What the addresses are for: `cluster`, `namespace NS`, `pods K=V`,
    /// `service NAME -> IP`, `pod NAME -> IP`.
    #[serde(rename = "for")]
    pub for_: String,
    /// The global IPs.
    pub ips: Vec<String>,
    /// `allocated`, `pending`, or why not.
    pub state: String,
}

/// One cable from a local gateway to a remote cluster.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionRow {
    /// The local gateway node.
    pub gateway: String,
    /// The remote cluster id.
    pub cluster: String,
    /// The remote `Endpoint`.
    pub endpoint: String,
    /// The remote address in use.
    pub remote_ip: Option<String>,
    /// Whether the cable crosses NAT.
    pub using_nat: bool,
    /// What the gateway's NAT discovery found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nat_discovery: Option<NatDiscovery>,
    /// Cable driver.
    pub cable_driver: CableDriver,
    /// CIDRs behind the remote gateway.
    pub subnets: Vec<String>,
    /// Where the cable stands.
    pub status: ConnectionStatus,
    /// Why, when it is not connected.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub status_message: String,
    /// Round-trip times of the health check (Go durations).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_rtt: Option<LatencyRtt>,
}

/// One cluster's gateway endpoint.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointRow {
    /// Cluster id.
    pub cluster: String,
    /// Gateway node name.
    pub hostname: String,
    /// The gateway node's address.
    pub private_ip: String,
    /// Its public address, if it has one.
    pub public_ip: Option<String>,
    /// Cable driver.
    pub cable_driver: CableDriver,
    /// Whether it is this cluster's own.
    pub local: bool,
}

/// One gateway node of this cluster.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayRow {
    /// Node name.
    pub node: String,
    /// Its HA role; `None` when it has not reported yet.
    pub ha_status: Option<HaStatus>,
    /// Connections up.
    pub connected: usize,
    /// Connections in all.
    pub connections: usize,
    /// Its part, in percent, of the bytes this cluster's gateways moved
    /// over their cables in their last status window (~30 s); `None` when
    /// no gateway reported bytes for a window or they moved none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share_percent: Option<f64>,
    /// What its cable device carried, as its status reports it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic: Option<CableTraffic>,
    /// One line about its state.
    pub summary: String,
}

/// One cluster's address ranges.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkRow {
    /// Cluster id.
    pub cluster: String,
    /// Whether it is this cluster.
    pub local: bool,
    /// Pod CIDRs.
    pub cluster_cidrs: Vec<String>,
    /// Service CIDRs.
    pub service_cidrs: Vec<String>,
    /// Global CIDRs (globalnet).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub global_cidrs: Vec<String>,
    /// The CNI `join` detected (`kube-ovn`, `calico`, `flannel`, `generic`);
    /// absent when the cluster joined without recording it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cni: Option<String>,
}

/// The broker, as this cluster's `ferry-broker` Secret describes it (no
/// credentials).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BrokerRow {
    /// Broker API URL.
    pub url: String,
    /// Namespace on the broker.
    pub namespace: String,
    /// DNS zone of the clusterset.
    pub clusterset_domain: String,
    /// This cluster's id there.
    pub cluster_id: String,
    /// This cluster's cable driver.
    pub cable_driver: Option<String>,
    /// Whether globalnet is on.
    pub globalnet: bool,
    /// Health-check interval of the cables (Go duration).
    pub health_check_interval: String,
}

/// One ferry component's workload.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionRow {
    /// Component (workload name).
    pub component: String,
    /// `Deployment` or `DaemonSet`.
    pub kind: String,
    /// Image repository.
    pub repository: String,
    /// Image tag or digest.
    pub version: String,
    /// `ready/desired` pods, when the workload reports them.
    pub ready: Option<String>,
}

/// The `services` section.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicesView {
    /// Every ServiceImport in this cluster.
    pub imports: Vec<ServiceRow>,
    /// Every ServiceExport in this cluster.
    pub exports: Vec<ExportRow>,
}

/// One imported service.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRow {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `ClusterSetIP` or `Headless`.
    #[serde(rename = "type")]
    pub type_: ServiceImportType,
    /// Clusterset IPs.
    pub ips: Vec<String>,
    /// Ports as `name:port/PROTO`.
    pub ports: Vec<String>,
    /// One entry per exporting cluster.
    pub clusters: Vec<ServiceClusterRow>,
}

/// One exporting cluster of an imported service.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceClusterRow {
    /// Cluster id.
    pub cluster: String,
    /// Whether it is this cluster.
    pub local: bool,
    /// Ready endpoints.
    pub ready_endpoints: usize,
    /// All endpoints.
    pub endpoints: usize,
    /// The state of the gateway connection to it (remote clusters only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection: Option<ConnectionStatus>,
    /// Has ready endpoints and, if remote, a connected gateway connection.
    pub healthy: bool,
    /// Why not, when it is not healthy.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// One ServiceExport of this cluster and its conditions.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportRow {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `Valid` condition status (`True`/`False`/`Unknown`).
    pub valid: Option<String>,
    /// `Ready` condition status.
    pub ready: Option<String>,
    /// `Conflict` condition status.
    pub conflict: Option<String>,
    /// The message of the first condition that is not fine.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
}
