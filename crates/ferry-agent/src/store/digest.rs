//! The digests of what the engine writes: SipHash over the JSON of exactly
//! the written fields (the labels in [`WRITTEN_LABELS`], the export-creation
//! annotation, the spec or endpoints, and separately the status), computed
//! the same way for what is stored and for what is wanted.

use std::collections::BTreeMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::Hasher;

use ferry_api::labels::{
    APP_MANAGED_BY, CLUSTER, CLUSTERSET_IP, MANAGED_BY, ORIGIN_NAME, ORIGIN_NAMESPACE,
    SERVICE_NAME, SOURCE_CLUSTER,
};
use ferry_api::{ServiceImportSpec, ServiceImportStatus};
use k8s_openapi::api::core::v1::ServiceSpec;
use k8s_openapi::api::discovery::v1::{Endpoint as SliceEndpoint, EndpointPort};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use serde::Serialize;
use serde_json::Value;

/// Standard label linking an EndpointSlice to its Service (ferry puts it on
/// the slices of a derived Service).
pub(crate) const K8S_SERVICE_NAME: &str = "kubernetes.io/service-name";

/// The labels ferry writes on the objects it owns; a target's digest covers
/// these (and no others, so labels added by anyone else never look like a
/// difference).
pub(crate) const WRITTEN_LABELS: [&str; 8] = [
    K8S_SERVICE_NAME,
    CLUSTER,
    SOURCE_CLUSTER,
    SERVICE_NAME,
    ORIGIN_NAME,
    ORIGIN_NAMESPACE,
    APP_MANAGED_BY,
    MANAGED_BY,
];

/// Annotation on a cluster's ServiceImport on the broker: when its
/// ServiceExport was created (what "oldest export wins" compares).
pub const EXPORT_CREATED: &str = "ferry.dev/export-created";

/// Annotation on a cluster's ServiceImport on the broker (its ServiceExport's
/// `exportedLabels`, as JSON) and on a local ServiceImport (the exported
/// labels ferry put on it, so its digest covers them).
pub const EXPORTED_LABELS: &str = "ferry.dev/exported-labels";

/// As [`EXPORTED_LABELS`], for `exportedAnnotations`.
pub const EXPORTED_ANNOTATIONS: &str = "ferry.dev/exported-annotations";

/// The annotations ferry writes on ServiceImports; their digest covers these.
pub(crate) const WRITTEN_ANNOTATIONS: [&str; 4] = [
    EXPORT_CREATED,
    EXPORTED_LABELS,
    EXPORTED_ANNOTATIONS,
    CLUSTERSET_IP,
];

/// Digest of conditions as `mcs::same_conditions` compares them (type,
/// status, reason, message; not the transition time).
pub(crate) fn conditions_digest(conditions: &[Condition]) -> u64 {
    let parts: Vec<[&str; 4]> = conditions
        .iter()
        .map(|c| [&*c.type_, &*c.status, &*c.reason, &*c.message])
        .collect();
    digest(&parts)
}

/// SipHash (fixed keys) of `v`'s JSON serialisation, serialised into a
/// reused per-thread buffer and hashed in one pass (serde_json writes in
/// many small pieces; hashing each costs more than the bytes themselves).
pub(crate) fn digest<T: Serialize + ?Sized>(v: &T) -> u64 {
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUF.with(|buf| {
        let mut h = DefaultHasher::new();
        match buf.try_borrow_mut() {
            Ok(mut buf) => {
                buf.clear();
                // Serialising plain data into a Vec cannot fail; a failure
                // would only make the digest differ, costing one write.
                let _ = serde_json::to_writer(&mut *buf, v);
                h.write(&buf);
                // Keep the buffer from holding on to a rare huge object.
                if buf.capacity() > 1 << 20 {
                    *buf = Vec::new();
                }
            }
            // Re-entered (a Serialize impl computing a digest): no reuse.
            Err(_) => h.write(&serde_json::to_vec(v).unwrap_or_default()),
        }
        h.finish()
    })
}

/// The written labels of an object's label map, in key order: the form a
/// digest takes labels in.
pub(crate) fn written_labels(labels: Option<&BTreeMap<String, String>>) -> Vec<(&str, &str)> {
    labels
        .into_iter()
        .flatten()
        .filter(|(k, _)| WRITTEN_LABELS.contains(&k.as_str()))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// The annotations ferry writes of an object's annotation map, in key order.
pub(crate) fn written_annotations(
    annotations: Option<&BTreeMap<String, String>>,
) -> Vec<(&str, &str)> {
    annotations
        .into_iter()
        .flatten()
        .filter(|(k, _)| WRITTEN_ANNOTATIONS.contains(&k.as_str()))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// Desired labels in the form of [`written_labels`] (sorted by key, only
/// written ones).
pub(crate) fn label_pairs<'a>(pairs: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut v: Vec<(&str, &str)> = pairs
        .iter()
        .copied()
        .filter(|(k, _)| WRITTEN_LABELS.contains(k))
        .collect();
    v.sort_unstable();
    v
}

/// Digest of a ServiceImport's written main fields; `labels` as from
/// [`written_labels`] or [`label_pairs`], `annotations` as from
/// [`written_annotations`] (sorted by key).
pub(crate) fn import_digest(
    labels: &[(&str, &str)],
    annotations: &[(&str, &str)],
    spec: &ServiceImportSpec,
) -> u64 {
    digest(&(labels, annotations, spec))
}

/// Digest of a ServiceImport's status (absent counts as empty); its
/// conditions as [`conditions_digest`] reads them, so a rewrite that only
/// moves transition times is no difference.
pub(crate) fn import_status_digest(status: Option<&ServiceImportStatus>) -> u64 {
    let default = ServiceImportStatus::default();
    let s = status.unwrap_or(&default);
    digest(&(&s.clusters, conditions_digest(&s.conditions)))
}

/// Digest of an EndpointSlice's written fields.
pub(crate) fn slice_digest(
    labels: &[(&str, &str)],
    address_type: &str,
    endpoints: &[SliceEndpoint],
    ports: &[EndpointPort],
) -> u64 {
    digest(&(labels, address_type, endpoints, ports))
}

/// What ferry writes of a derived Service's spec: its ports and session
/// affinity (never its ClusterIP: the API server allocates that).
#[derive(Serialize, Default)]
pub(crate) struct DerivedSpec<'a> {
    /// (name, protocol, port), in order.
    pub ports: Vec<(&'a str, &'a str, i32)>,
    pub session_affinity: Option<&'a str>,
    pub session_affinity_timeout: Option<i32>,
}

impl<'a> DerivedSpec<'a> {
    /// The written part of a stored Service's spec.
    pub(crate) fn of(spec: &'a ServiceSpec) -> Self {
        DerivedSpec {
            ports: spec
                .ports
                .iter()
                .flatten()
                .map(|p| {
                    (
                        p.name.as_deref().unwrap_or(""),
                        p.protocol.as_deref().unwrap_or("TCP"),
                        p.port,
                    )
                })
                .collect(),
            session_affinity: spec.session_affinity.as_deref().filter(|a| *a != "None"),
            session_affinity_timeout: spec
                .session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds),
        }
    }
}

/// Digest of a derived Service's written fields.
pub(crate) fn derived_service_digest(labels: &[(&str, &str)], spec: &DerivedSpec<'_>) -> u64 {
    digest(&(labels, spec))
}

/// Digest of a Cluster's or an Endpoint's written fields.
pub(crate) fn spec_digest(labels: &[(&str, &str)], spec: &Value) -> u64 {
    digest(&(labels, spec))
}

/// An RFC 3339 timestamp as Kubernetes writes it.
pub(crate) fn time_string(t: &Time) -> String {
    match serde_json::to_value(t) {
        Ok(Value::String(s)) => s,
        _ => String::new(),
    }
}
