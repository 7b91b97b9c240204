//! `ferry apiserver`: an embedded, durable, Kubernetes-API-compatible server.
#![forbid(unsafe_code)]
