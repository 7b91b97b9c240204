//! ferry's API types: the `ferry.dev/v1alpha1` custom resources ([`Cluster`],
//! [`Endpoint`], [`Gateway`], and Globalnet's in [`globalnet`]), the MCS `multicluster.x-k8s.io/v1alpha1` types
//! ([`ServiceExport`], [`ServiceImport`]), the KEP-2149 [`ClusterProperty`],
//! their CRDs ([`all_crds`]), label and name constants ([`labels`]), the
//! `broker-info.ferry` format ([`BrokerInfo`]), the contracts between
//! components (default data-plane [`ports`], the gateways' [`health_probe`]
//! and [`nat_discovery`] wire formats) and small validated value types ([`Cidr`],
//! [`validate_cluster_id`]).
//!
//! It is not a client and does no I/O: talking to an API server, syncing and
//! reconciling live in the crates above it.
#![forbid(unsafe_code)]

pub mod about;
pub mod broker_info;
pub mod cidr;
pub mod crds;
mod error;
pub mod ferry;
pub mod gateway_pairs;
pub mod globalnet;
pub mod health_probe;
pub mod labels;
pub mod mcs;
pub mod names;
pub mod nat_discovery;
pub mod ports;

pub use about::{ClusterProperty, ClusterPropertySpec};
pub use broker_info::{BrokerInfo, Component, Components, SharedSettings};
pub use cidr::{Cidr, check_disjoint, check_no_self_overlap, find_overlap};
pub use crds::{all_crds, all_crds_yaml, crd_yaml};
pub use error::{Error, Result};
pub use ferry::{
    CableDriver, CableTraffic, Cluster, ClusterSpec, Connection, ConnectionStatus, Endpoint,
    EndpointSpec, Gateway, GatewaySpec, GatewayStatus, HaStatus, LatencyRtt, NatDiscovery,
    NatDiscoveryResult, NetworkPlugin,
};
pub use globalnet::{
    ClusterGlobalEgressIP, ClusterGlobalEgressIPSpec, GlobalCidr, GlobalCidrSpec, GlobalEgressIP,
    GlobalEgressIPSpec, GlobalEgressIPStatus, GlobalIngressIP, GlobalIngressIPSpec,
    GlobalIngressIPStatus,
};
pub use mcs::{
    ClusterStatus, ServiceExport, ServiceExportSpec, ServiceExportStatus, ServiceImport,
    ServiceImportSpec, ServiceImportStatus, ServiceImportType, ServicePort,
};
pub use names::validate_cluster_id;
