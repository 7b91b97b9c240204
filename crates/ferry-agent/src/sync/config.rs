//! The agent's configuration: its cluster, namespaces and write concurrency.

use ferry_api::Cidr;
use ferry_api::labels as l;

/// What the agent needs to know about its cluster.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// This cluster's id.
    pub cluster_id: String,
    /// Pod CIDRs.
    pub cluster_cidrs: Vec<Cidr>,
    /// Service CIDRs.
    pub service_cidrs: Vec<Cidr>,
    /// Namespace of ferry's components in this cluster (`ferry-system`).
    pub system_namespace: String,
    /// The broker namespace.
    pub broker_namespace: String,
    /// Most writes in flight at once, over one HTTP/2 connection per API
    /// server ([`ferry_kube::client`]). The API server commits concurrent writes
    /// together, so more in flight means fewer, larger commits: at 10k
    /// services 256 synced ~25 % faster than 64 for ~6 MB more. A server
    /// that answers 429 (kube-apiserver's API Priority and Fairness) halves
    /// it for a while ([`crate::write_limit`]).
    pub write_concurrency: usize,
    /// Whether imported ClusterSetIP services get a ClusterSet IP (a
    /// derived Service's ClusterIP; see [`crate::vips`]).
    pub clusterset_ip: bool,
    /// Where the engine reports its Prometheus metrics.
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
    /// Global CIDRs (Globalnet; empty: off): exports carry global IPs.
    pub global_cidrs: Vec<Cidr>,
    /// The CNI `join` detected, published in this cluster's `Cluster`.
    pub network_plugin: Option<ferry_api::NetworkPlugin>,
}

impl AgentConfig {
    /// A config with default namespaces and concurrency.
    pub fn new(
        cluster_id: impl Into<String>,
        cluster_cidrs: Vec<Cidr>,
        service_cidrs: Vec<Cidr>,
    ) -> Self {
        AgentConfig {
            cluster_id: cluster_id.into(),
            cluster_cidrs,
            service_cidrs,
            system_namespace: l::SYSTEM_NAMESPACE.into(),
            broker_namespace: l::BROKER_NAMESPACE.into(),
            write_concurrency: 256,
            clusterset_ip: false,
            metrics: Default::default(),
            global_cidrs: Vec::new(),
            network_plugin: None,
        }
    }
}
