//! What a write must pass before it is stored, after the metadata rules of
//! [`objects`](crate::objects): status and defaults on create (the field
//! defaults themselves are in `defaults`), Secret
//! `stringData` folded into `data`, the value checks typed clients rely on
//! (built-in kinds must decode as their k8s-openapi type, ConfigMap and
//! Secret keys and values), a CRD's own rules and status, and custom objects
//! pruned, defaulted and validated against their CRD's OpenAPI v3 schema.
//!
//! Failures are 422 `Invalid` with one `details.causes` entry per field;
//! nothing is written.

use base64::Engine;
use ferry_apimachinery::field::{self, FieldError};
use ferry_apimachinery::schema;
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::objects::{self, check_string_map, meta_str};
use crate::registry::ResourceDef;

/// Resource-specific defaults and status on create.
pub fn defaults_on_create(def: &ResourceDef, object: &mut Value) -> Result<()> {
    let obj = object
        .as_object_mut()
        .ok_or_else(|| Error::BadRequest("the request body is not a JSON object".into()))?;
    match (def.group.as_str(), def.plural.as_str()) {
        ("", "namespaces") => {
            obj.insert("spec".into(), json!({"finalizers": ["kubernetes"]}));
            obj.insert("status".into(), json!({"phase": "Active"}));
        }
        ("", "pods") => {
            obj.insert("status".into(), json!({"phase": "Pending"}));
        }
        ("", "nodes") => {}
        ("", "secrets") => {
            obj.entry("type").or_insert_with(|| json!("Opaque"));
        }
        ("", "services") => {
            obj.remove("status");
        }
        ("apiextensions.k8s.io", "customresourcedefinitions") => {}
        _ if def.status => {
            obj.remove("status");
        }
        _ => {}
    }
    crate::defaults::apply(def, object);
    Ok(())
}

/// Validates a CRD and sets the status a real server would report.
pub fn prepare_crd(object: &mut Value) -> Result<()> {
    let name = meta_str(object, "name").to_string();
    let invalid = |cause: FieldError| Error::invalid("CustomResourceDefinition", &name, cause);
    let spec = object
        .get("spec")
        .ok_or_else(|| invalid(FieldError::required("spec", "")))?;
    let group = spec
        .get("group")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(FieldError::required("spec.group", "")))?;
    let names = spec
        .get("names")
        .cloned()
        .ok_or_else(|| invalid(FieldError::required("spec.names", "")))?;
    let plural = names
        .get("plural")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(FieldError::required("spec.names.plural", "")))?;
    if names.get("kind").and_then(Value::as_str).is_none() {
        return Err(invalid(FieldError::required("spec.names.kind", "")));
    }
    if name != format!("{plural}.{group}") {
        return Err(invalid(FieldError::invalid(
            "metadata.name",
            json!(name),
            "must be spec.names.plural+\".\"+spec.group",
        )));
    }
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            invalid(FieldError::invalid(
                "spec.versions",
                json!([]),
                "must have at least one version",
            ))
        })?;
    let stored: Vec<Value> = versions
        .iter()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .filter_map(|v| v.get("name").cloned())
        .collect();
    if stored.len() != 1 {
        return Err(invalid(FieldError::invalid(
            "spec.versions",
            json!(stored),
            "must have exactly one version marked as storage version",
        )));
    }
    let now = objects::now_rfc3339();
    let mut accepted = names.clone();
    if accepted.get("singular").is_none()
        && let Some(kind) = names.get("kind").and_then(Value::as_str)
    {
        accepted["singular"] = json!(kind.to_lowercase());
    }
    if accepted.get("listKind").is_none()
        && let Some(kind) = names.get("kind").and_then(Value::as_str)
    {
        accepted["listKind"] = json!(format!("{kind}List"));
    }
    object["status"] = json!({
        "acceptedNames": accepted,
        "storedVersions": stored,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
             "message": "no conflicts found", "lastTransitionTime": now},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
             "message": "the initial names have been accepted", "lastTransitionTime": now},
        ],
    });
    Ok(())
}

/// The checks of every write of `def`'s objects, on the object as it will
/// be stored (system fields set, defaults filled). May rewrite it: Secret
/// `stringData` moves into `data`, custom objects lose unknown fields.
pub fn admit(def: &ResourceDef, object: &mut Value) -> Result<()> {
    let mut causes = Vec::new();
    match (def.group.as_str(), def.plural.as_str()) {
        ("", "secrets") => fold_string_data(object, &mut causes),
        ("", "configmaps") => check_config_map(object, &mut causes),
        _ => {}
    }
    if causes.is_empty() {
        if let Some(schema) = &def.schema {
            causes = schema::admit(schema, object);
        } else if !def.custom {
            causes.extend(crate::typed::check(def, object));
        }
    }
    if causes.is_empty() {
        return Ok(());
    }
    Err(Error::Invalid {
        kind: def.kind.clone(),
        name: meta_str(object, "name").to_string(),
        causes,
    })
}

/// Secret `stringData` is write-only: its entries are base64-encoded into
/// `data` (winning over a `data` entry of the same key) and it is never
/// stored. `data` values must be base64.
fn fold_string_data(object: &mut Value, causes: &mut Vec<FieldError>) {
    let Some(obj) = object.as_object_mut() else {
        return;
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    if let Some(data) = obj.get("data") {
        check_string_map(data, "data", causes);
        for (k, v) in data.as_object().into_iter().flatten() {
            check_key("data", k, causes);
            if let Some(s) = v.as_str()
                && b64.decode(s).is_err()
            {
                causes.push(FieldError::invalid(
                    field::key("data", k),
                    json!("<secret contents redacted>"),
                    "must be base64-encoded (a Secret's data holds bytes; put plain text in stringData)",
                ));
            }
        }
    }
    let Some(string_data) = obj.remove("stringData") else {
        return;
    };
    check_string_map(&string_data, "stringData", causes);
    let Value::Object(entries) = string_data else {
        return;
    };
    let data = obj
        .entry("data")
        .or_insert_with(|| Value::Object(Map::new()));
    if data.is_null() {
        *data = Value::Object(Map::new());
    }
    let Some(data) = data.as_object_mut() else {
        return;
    };
    for (k, v) in entries {
        check_key("stringData", &k, causes);
        if let Value::String(s) = v {
            data.insert(k, json!(b64.encode(s)));
        }
    }
}

/// ConfigMap `data` is a map of strings, `binaryData` of base64, with valid
/// keys, no key in both.
fn check_config_map(object: &Value, causes: &mut Vec<FieldError>) {
    let b64 = base64::engine::general_purpose::STANDARD;
    let data = object.get("data");
    if let Some(data) = data {
        check_string_map(data, "data", causes);
        for k in data.as_object().into_iter().flatten().map(|(k, _)| k) {
            check_key("data", k, causes);
        }
    }
    if let Some(binary) = object.get("binaryData") {
        check_string_map(binary, "binaryData", causes);
        for (k, v) in binary.as_object().into_iter().flatten() {
            check_key("binaryData", k, causes);
            if data.and_then(|d| d.get(k)).is_some() {
                causes.push(FieldError::invalid(
                    field::key("binaryData", k),
                    json!(k),
                    "duplicate of key present in data",
                ));
            }
            if let Some(s) = v.as_str()
                && b64.decode(s).is_err()
            {
                causes.push(FieldError::invalid(
                    field::key("binaryData", k),
                    v.clone(),
                    "must be base64-encoded",
                ));
            }
        }
    }
}

/// A ConfigMap or Secret key (`IsConfigMapKey`).
fn check_key(path: &str, key: &str, causes: &mut Vec<FieldError>) {
    let valid = !key.is_empty()
        && key.len() <= 253
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && key != "."
        && key != ".."
        && !key.starts_with("..");
    if !valid {
        causes.push(FieldError::invalid(
            field::key(path, key),
            json!(key),
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name', or 'KEY_NAME', or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
        ));
    }
}
