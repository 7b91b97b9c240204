//! The objects ferry writes, as it wants them: for each, the digest of its
//! written fields and the body to apply come from the same parts, so what is
//! compared is exactly what would be written.

use std::collections::BTreeMap;

use ferry_api::{ServiceImport, ServiceImportSpec};
use k8s_openapi::api::discovery::v1::{Endpoint as SliceEndpoint, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use serde_json::{Value, json};

use super::target::Body;
use crate::mcs::ExportedMeta;
use crate::store::{self, DerivedSpec};

fn labels_of(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub(super) fn to_json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn meta(name: &str, ns: &str, labels: &[(&str, &str)]) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some(ns.into()),
        labels: Some(labels_of(labels)),
        ..Default::default()
    }
}

/// A ServiceImport as ferry writes it: the digest of its written fields and
/// the object to apply come from the same parts.
pub(super) struct WantedImport<'a> {
    pub labels: &'a [(&'a str, &'a str)],
    /// ferry's annotations (`store::WRITTEN_ANNOTATIONS`), sorted by key:
    /// the export-creation time and exported metadata (exports on the
    /// broker), the record of the exported metadata (local imports).
    pub annotations: &'a [(&'a str, &'a str)],
    /// Exported labels and annotations put on the object itself (local
    /// imports); recorded in `annotations`, which the digest covers.
    pub exported: Option<&'a ExportedMeta>,
    pub spec: &'a ServiceImportSpec,
}

/// A map as the JSON string of an annotation.
pub(super) fn map_annotation(map: &BTreeMap<String, String>) -> String {
    serde_json::to_string(map).unwrap_or_default()
}

impl WantedImport<'_> {
    pub(super) fn digest(&self) -> u64 {
        store::import_digest(
            &store::label_pairs(self.labels),
            self.annotations,
            self.spec,
        )
    }

    pub(super) fn body(&self, name: &str, ns: &str) -> Body {
        let mut metadata = meta(name, ns, self.labels);
        let mut annotations: BTreeMap<String, String> = BTreeMap::new();
        if let Some(exported) = self.exported {
            let labels = metadata.labels.get_or_insert_with(BTreeMap::new);
            for (k, v) in &exported.labels {
                labels.entry(k.clone()).or_insert_with(|| v.clone());
            }
            annotations.extend(exported.annotations.clone());
        }
        annotations.extend(
            self.annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        metadata.annotations = (!annotations.is_empty()).then_some(annotations);
        Body::Import(Box::new(ServiceImport {
            metadata,
            spec: self.spec.clone(),
            status: None,
        }))
    }
}

/// A derived Service as ferry writes it: selector-less, the import's ports
/// (its EndpointSlices are the import's), no ClusterIP — the API server
/// allocates it from the cluster's service range, and it becomes the
/// clusterset IP.
pub(super) fn derived_service_body(
    name: &str,
    ns: &str,
    labels: &[(&str, &str)],
    spec: &DerivedSpec<'_>,
) -> Body {
    let ports: Vec<Value> = spec
        .ports
        .iter()
        .map(|(name, protocol, port)| {
            let mut p = json!({"protocol": protocol, "port": port, "targetPort": port});
            if !name.is_empty() {
                p["name"] = json!(name);
            }
            p
        })
        .collect();
    let mut service_spec = json!({
        "type": "ClusterIP",
        "ports": ports,
        "sessionAffinity": spec.session_affinity.unwrap_or("None"),
    });
    if let Some(timeout) = spec.session_affinity_timeout {
        service_spec["sessionAffinityConfig"] = json!({"clientIP": {"timeoutSeconds": timeout}});
    }
    Body::Json(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "labels": labels_of(labels)},
        "spec": service_spec,
    }))
}

/// An EndpointSlice as ferry writes it (see [`WantedImport`]).
pub(super) struct WantedSlice<'a> {
    pub labels: &'a [(&'a str, &'a str)],
    pub address_type: &'a str,
    pub endpoints: &'a [SliceEndpoint],
    pub ports: &'a [EndpointPort],
}

impl WantedSlice<'_> {
    pub(super) fn digest(&self) -> u64 {
        store::slice_digest(
            &store::label_pairs(self.labels),
            self.address_type,
            self.endpoints,
            self.ports,
        )
    }

    pub(super) fn body(&self, name: &str, ns: &str) -> Body {
        Body::Slice(Box::new(EndpointSlice {
            metadata: meta(name, ns, self.labels),
            address_type: self.address_type.to_string(),
            endpoints: self.endpoints.to_vec(),
            ports: Some(self.ports.to_vec()),
        }))
    }
}

/// A Cluster or an Endpoint as ferry writes it (see [`WantedImport`]).
pub(super) struct WantedSpec<'a> {
    pub kind: &'a str,
    pub labels: &'a [(&'a str, &'a str)],
    pub spec: &'a Value,
}

impl WantedSpec<'_> {
    pub(super) fn digest(&self) -> u64 {
        store::spec_digest(&store::label_pairs(self.labels), self.spec)
    }

    pub(super) fn body(&self, name: &str, ns: &str) -> Body {
        Body::Json(json!({
            "apiVersion": "ferry.dev/v1alpha1", "kind": self.kind,
            "metadata": {"name": name, "namespace": ns, "labels": labels_of(self.labels)},
            "spec": self.spec,
        }))
    }
}
