//! `ferry-agent`: ferry's control plane. It syncs each member cluster with the
//! broker — publishes the cluster's `Cluster` and gateway `Endpoint`s and
//! copies every other cluster's back; turns `ServiceExport`s into per-cluster
//! `ServiceImport` + `EndpointSlice` on the broker and merges every cluster's
//! exports into local `ServiceImport`s and `EndpointSlice`s under the MCS
//! rules ([`mcs`], pure) — and implements `ferry deploy-broker` and
//! `ferry join` ([`install`]).
//!
//! It is not the data plane (gateways, routes) nor DNS: those read what the
//! agent writes. The manifests it applies come from `ferry-deploy`.
#![forbid(unsafe_code)]

pub mod client;
mod error;
pub mod install;
pub mod mcs;
mod store;
pub mod sync;
pub mod token;
mod write_limit;

pub use error::{Error, Result};
pub use sync::{AgentConfig, run};
