//! `ferry-kube`: the Kubernetes plumbing every ferry daemon and the CLI
//! share, below all of them in the stack:
//!
//! - clients ([`client`]): from a kubeconfig or the in-cluster
//!   configuration, and for the broker described by `broker-info.ferry`;
//!   kube-rs's HTTP/1.1 client for light users, one multiplexed HTTP/2
//!   connection for the agent and broker clients;
//! - kubeconfig reading ([`kubeconfig`]);
//! - watching one resource type forever, into a store or event by event,
//!   waking whoever follows it ([`watch`]);
//! - ServiceAccount tokens by TokenRequest ([`token`]);
//! - `/metrics`, served from a daemon's registry ([`metrics`]);
//! - the tokio runtime of a daemon, memory-tuned ([`runtime`]);
//! - the shutdown signal of a daemon ([`signal`]) and files only their
//!   owner may read ([`file`]).
//!
//! It is not a daemon and knows nothing of ferry's own objects beyond
//! `broker-info.ferry` (from `ferry-api`): what to watch, what to write and
//! what the objects mean is each daemon's business.
#![forbid(unsafe_code)]

pub mod client;
mod error;
pub mod file;
pub mod kubeconfig;
pub mod metrics;
pub mod runtime;
pub mod signal;
pub mod token;
pub mod watch;

pub use client::{
    ManagedFields, broker_client, broker_client_reading, broker_client_with_token_file,
    client_from_kubeconfig, config_from_kubeconfig, multiplexed_client,
    multiplexed_client_from_kubeconfig,
};
pub use error::{ClientFor, Error, Result};
pub use file::{create_private, create_private_dir, write_private};
pub use kubeconfig::{ApiEndpoint, kubeconfig_endpoint, read_kubeconfig};
pub use signal::shutdown_signal;
pub use token::request_token;
pub use watch::{Watch, Watchable};
