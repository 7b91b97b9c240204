//! `ferry-agent`: ferry's control plane. It syncs each member cluster with the
//! broker — publishes the cluster's `Cluster` and gateway `Endpoint`s and
//! copies every other cluster's back; turns `ServiceExport`s into per-cluster
//! `ServiceImport` + `EndpointSlice` on the broker and merges every cluster's
//! exports into local `ServiceImport`s and `EndpointSlice`s under the MCS
//! rules ([`mcs`], pure), giving each imported ClusterSetIP service a
//! clusterset IP ([`vips`]): the ClusterIP the cluster's API server gives a
//! selector-less "derived" Service whose EndpointSlices list the exporting
//! clusters (those its gateways reach), so any service proxy load-balances
//! it. It starts from the `ferry-broker` Secret `ferry
//! join` wrote ([`config`]) and keeps its broker token fresh ([`token`]).
//!
//! In a Globalnet cluster it also hands out the cluster's global IPs
//! ([`globalnet`]).
//!
//! It is not the data plane (gateways, routes) nor DNS: those read what the
//! agent writes. Nor is it `ferry join` / `ferry deploy-broker` (those are
//! `ferry-ctl`'s `install`), nor the Kubernetes plumbing (clients, watches:
//! `ferry-kube`). What it does is counted in [`metrics`].
#![forbid(unsafe_code)]

pub mod config;
mod error;
pub mod globalnet;
pub mod mcs;
pub mod metrics;
mod store;
pub mod sync;
pub mod token;
pub mod vips;
mod write_limit;

pub use config::{config_from_secret, load_config};
pub use error::{Error, Result};
pub use sync::{AgentConfig, run};

/// The agent's tokio worker threads: JSON (de)serialisation of a large
/// sync uses both cores of a small node; more would only add idle stacks
/// and heaps.
pub const WORKER_THREADS: usize = 2;
