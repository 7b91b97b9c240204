//! Kubernetes object machinery with no I/O: label and field selectors,
//! JSON merge / JSON / strategic-merge patches, and server-side printing
//! (Table columns, JSONPath). It is not a client and not a server.
#![forbid(unsafe_code)]
