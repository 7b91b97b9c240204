//! ferry's API types: the `ferry.dev/v1alpha1` custom resources, the MCS
//! `multicluster.x-k8s.io/v1alpha1` types, label constants and the
//! `broker-info.ferry` format. It is not a client and does no I/O.
#![forbid(unsafe_code)]
