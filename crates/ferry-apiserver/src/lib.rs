//! `ferry apiserver`: an embedded, durable, Kubernetes-API-compatible server.
//!
//! One process and one data directory give ferry's broker and every sandbox
//! cluster a Kubernetes API that kubectl and kube-rs use as they would a real
//! one: discovery and OpenAPI schemas, CRDs, get/list/watch,
//! create/update/patch/delete, status and scale subresources, finalizers,
//! defaults, Service address allocation, server-side tables, TLS and bearer
//! tokens.
//! Objects live in a SQLite revision log (see [`store`]).
//!
//! It is not a full kube-apiserver: no admission webhooks, no aggregation,
//! no protobuf beyond the request bodies kubectl's create generators send
//! (responses are JSON), no CEL validation rules, and no controllers besides namespace cleanup and garbage collection of owned
//! objects.
//!
//! Modules depend downward only: `server` (start-up) builds the shared
//! [`App`] (`state`) and starts `http` and `controllers`, which both act
//! through `ops` (which fills `defaults`, allocates Service addresses with
//! `service_ips`, checks writes with `admission` and records field owners
//! with `ownership`) on `store`, `registry` and `objects`.
#![forbid(unsafe_code)]

mod admission;
pub mod auth;
mod controllers;
mod defaults;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
mod http;
mod metrics;
mod objects;
mod ops;
mod ownership;
mod protobuf;
pub mod registry;
mod server;
pub mod service_ips;
mod state;
pub mod store;
pub mod tls;
mod typed;
mod write_options;

pub use auth::Identity;
pub use error::{Error, Result};
pub use server::{
    Config, DEFAULT_SERVICE_CLUSTER_IP_RANGE, DEFAULT_SERVICE_NODE_PORT_RANGE, RunningServer,
    create_token, db_path, start,
};
pub use service_ips::ServiceIpRange;
pub use state::App;
