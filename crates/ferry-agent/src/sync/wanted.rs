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
use crate::store::{self, EXPORT_CREATED};

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
    /// The export-creation annotation (exports on the broker only).
    pub created_at: Option<&'a str>,
    pub spec: &'a ServiceImportSpec,
}

impl WantedImport<'_> {
    pub(super) fn digest(&self) -> u64 {
        store::import_digest(&store::label_pairs(self.labels), self.created_at, self.spec)
    }

    pub(super) fn body(&self, name: &str, ns: &str) -> Body {
        let mut metadata = meta(name, ns, self.labels);
        metadata.annotations = self
            .created_at
            .map(|c| BTreeMap::from([(EXPORT_CREATED.to_string(), c.to_string())]));
        Body::Import(Box::new(ServiceImport {
            metadata,
            spec: self.spec.clone(),
            status: None,
        }))
    }
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
