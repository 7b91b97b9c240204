//! Label and field selectors over stored objects, shared by list, watch
//! and deletecollection.

use std::cell::OnceCell;

use ferry_apimachinery::selector::{FieldSelector, LabelSelector, field_value};
use serde_json::Value;

use super::path::Query;
use crate::error::{Error, Result};
use crate::registry::ResourceDef;
use crate::store::Stored;

/// Label and field selection over stored objects.
pub(super) struct Filter {
    labels: LabelSelector,
    fields: FieldSelector,
    namespaced: bool,
}

impl Filter {
    pub fn from_query(query: &Query, def: &ResourceDef) -> Result<Self> {
        let labels = LabelSelector::parse(query.get("labelSelector").unwrap_or(""))
            .map_err(|e| Error::BadRequest(e.to_string()))?;
        let fields = FieldSelector::parse(query.get("fieldSelector").unwrap_or(""))
            .map_err(|e| Error::BadRequest(e.to_string()))?;
        if let Some(field) = fields.fields().find(|f| !selectable(def, f)) {
            return Err(Error::BadRequest(format!(
                "field label not supported: {field}"
            )));
        }
        Ok(Filter {
            labels,
            fields,
            namespaced: def.namespaced,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty()
    }

    pub fn matches(&self, key: &str, stored: &Stored) -> bool {
        if !self.labels.matches(&stored.labels) {
            return false;
        }
        if self.fields.is_empty() {
            return true;
        }
        let mut parts = key.rsplit('/');
        let name = parts.next().unwrap_or("");
        let namespace = if self.namespaced {
            parts.next().unwrap_or("")
        } else {
            ""
        };
        let parsed: OnceCell<Value> = OnceCell::new();
        self.fields.matches_with(|field| match field {
            "metadata.name" => Some(name.to_string()),
            "metadata.namespace" => Some(namespace.to_string()),
            other => {
                let value = parsed.get_or_init(|| stored.value().unwrap_or(Value::Null));
                field_value(value, other)
            }
        })
    }
}

/// True for the fields kube-apiserver lets a field selector use on `def`:
/// `metadata.name` (and `metadata.namespace` when namespaced), the fields
/// each built-in kind indexes, and a CRD version's `selectableFields`.
fn selectable(def: &ResourceDef, field: &str) -> bool {
    if field == "metadata.name" || (def.namespaced && field == "metadata.namespace") {
        return true;
    }
    if def.custom {
        return def.selectable_fields.iter().any(|f| f == field);
    }
    let extra: &[&str] = match (def.group.as_str(), def.plural.as_str()) {
        ("", "pods") => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        ("", "secrets") => &["type"],
        ("", "namespaces") => &["status.phase"],
        ("", "nodes") => &["spec.unschedulable"],
        ("", "services") => &["spec.clusterIP", "spec.type"],
        ("", "events") => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        ("apps", "replicasets") => &["status.replicas"],
        _ => &[],
    };
    extra.contains(&field)
}
