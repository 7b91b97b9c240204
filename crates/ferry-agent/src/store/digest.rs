//! The digests of what the engine writes: SipHash over the JSON of exactly
//! the written fields (the labels in [`WRITTEN_LABELS`], the export-creation
//! annotation, the spec or endpoints, and separately the status), computed
//! the same way for what is stored and for what is wanted.

use std::collections::BTreeMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::Hasher;

use ferry_api::labels::{
    APP_MANAGED_BY, CLUSTER, MANAGED_BY, ORIGIN_NAME, ORIGIN_NAMESPACE, SERVICE_NAME,
    SOURCE_CLUSTER,
};
use ferry_api::{ServiceImportSpec, ServiceImportStatus};
use k8s_openapi::api::discovery::v1::{Endpoint as SliceEndpoint, EndpointPort};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use serde::Serialize;
use serde_json::Value;

/// The labels ferry writes on the objects it owns; a target's digest covers
/// these (and no others, so labels added by anyone else never look like a
/// difference).
pub(crate) const WRITTEN_LABELS: [&str; 7] = [
    CLUSTER,
    SOURCE_CLUSTER,
    SERVICE_NAME,
    ORIGIN_NAME,
    ORIGIN_NAMESPACE,
    APP_MANAGED_BY,
    MANAGED_BY,
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
/// [`written_labels`] or [`label_pairs`].
pub(crate) fn import_digest(
    labels: &[(&str, &str)],
    export_created: Option<&str>,
    spec: &ServiceImportSpec,
) -> u64 {
    digest(&(labels, export_created, spec))
}

/// Digest of a ServiceImport's status (absent counts as empty).
pub(crate) fn import_status_digest(status: Option<&ServiceImportStatus>) -> u64 {
    match status {
        Some(s) => digest(s),
        None => digest(&ServiceImportStatus::default()),
    }
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
