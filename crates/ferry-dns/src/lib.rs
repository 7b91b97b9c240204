//! `ferry dns`: the authoritative DNS server for `clusterset.local` (and any
//! extra zones), following the Multi-Cluster Services DNS specification 1.0.0.
//!
//! What it is:
//! - a zone model and the answer choice ([`model`]): which exporting cluster a
//!   service name resolves to, from endpoint readiness, gateway connection
//!   health and RTT, under a [`Policy`];
//! - the answerer ([`answerer`]): names, record types, NXDOMAIN vs NODATA
//!   with SOA, REFUSED outside our zones, EDNS0 and truncation;
//! - the network side ([`server`]): a hickory-server [`RequestHandler`]
//!   (TCP) and a UDP fast path sharing the same answerer, plus `/metrics`;
//! - the reflectors ([`reflector`]) that keep the zone in memory from
//!   `ServiceImport`s, MCS-labelled `EndpointSlice`s and `Gateway` status.
//!
//! What it is not: a recursor or forwarder (names outside our zones are
//! REFUSED), a DNSSEC signer, or a client of the API per query — every answer
//! comes from the in-memory snapshot.
//!
//! [`RequestHandler`]: hickory_server::server::RequestHandler
#![forbid(unsafe_code)]

pub mod answerer;
pub mod metrics;
pub mod model;
pub mod reflector;
pub mod server;

pub use answerer::{Answerer, AnswererConfig};
pub use model::{Policy, ZoneData};
pub use server::{DnsServer, ServerConfig};

/// Errors of the DNS server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `--policy` is not one we know.
    #[error("unknown policy {0:?} (expected local-first, round-robin or lowest-latency)")]
    InvalidPolicy(String),
    /// A zone name does not parse.
    #[error("invalid zone {0:?}: {1}")]
    InvalidZone(String, String),
    /// A static zone file is malformed.
    #[error("static zone: {0}")]
    StaticZone(String),
    /// Binding or serving a socket failed.
    #[error("{context}: {source}")]
    Io {
        /// What we were doing.
        context: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Talking to the Kubernetes API failed.
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}
