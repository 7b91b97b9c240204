//! Object metadata rules: names, system fields set on create, what an update
//! may not change, and when `generation` moves.

use bytes::Bytes;
use ferry_apimachinery::field::{self, FieldError};
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::registry::ResourceDef;

/// Now, as Kubernetes writes timestamps (RFC 3339, seconds, `Z`).
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `metadata` of an object, created if missing or malformed.
pub fn metadata_mut(object: &mut Value) -> Result<&mut Map<String, Value>> {
    let obj = object
        .as_object_mut()
        .ok_or_else(|| Error::BadRequest("the request body is not a JSON object".into()))?;
    let meta = obj
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        return Err(Error::BadRequest("metadata must be an object".into()));
    }
    meta.as_object_mut()
        .ok_or_else(|| Error::BadRequest("metadata must be an object".into()))
}

/// A string field of `metadata`, or "".
pub fn meta_str<'a>(object: &'a Value, field: &str) -> &'a str {
    object
        .get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// True if `s` is an RFC 1123 label (namespaces, most names' parts).
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// True if `s` is an RFC 1123 subdomain (most object names).
pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// Names of RBAC objects may be any path segment (`system:controller:x`).
fn is_path_segment(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains('/') && !s.contains('%')
}

/// Checks a name against the rule of its resource (422 when invalid).
pub fn validate_name(def: &ResourceDef, name: &str) -> Result<()> {
    let (ok, rule) = if def.plural == "namespaces" {
        (
            is_dns_label(name),
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
        )
    } else if def.group == "rbac.authorization.k8s.io" {
        (is_path_segment(name), "may not contain '/' or '%'")
    } else {
        (
            is_dns_subdomain(name),
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
        )
    };
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            def.kind.clone(),
            name,
            FieldError::invalid("metadata.name", json!(name), rule),
        ))
    }
}

/// Checks label keys and values, and that annotations are a map of strings
/// (422 naming every invalid entry).
pub fn validate_labels(def: &ResourceDef, name: &str, object: &Value) -> Result<()> {
    let mut causes = Vec::new();
    if let Some(labels) = object.pointer("/metadata/labels") {
        check_string_map(labels, "metadata.labels", &mut causes);
        for (k, v) in labels.as_object().into_iter().flatten() {
            let field = field::key("metadata.labels", k);
            if !is_qualified_name(k) {
                causes.push(FieldError::invalid(
                    field,
                    json!(k),
                    "name part must consist of alphanumeric characters, '-', '_' or '.', with an optional DNS subdomain prefix and '/'",
                ));
            } else if let Some(v) = v.as_str()
                && !is_label_value(v)
            {
                causes.push(FieldError::invalid(
                    field,
                    json!(v),
                    "a valid label must be an empty string or consist of at most 63 alphanumeric characters, '-', '_' or '.', starting and ending with an alphanumeric character",
                ));
            }
        }
    }
    if let Some(annotations) = object.pointer("/metadata/annotations") {
        check_string_map(annotations, "metadata.annotations", &mut causes);
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(Error::Invalid {
            kind: def.kind.clone(),
            name: name.into(),
            causes,
        })
    }
}

/// `value` at `path` must be a map whose values are strings (`null` counts
/// as absent, as Go decodes it).
pub fn check_string_map(value: &Value, path: &str, causes: &mut Vec<FieldError>) {
    match value {
        Value::Null => {}
        Value::Object(map) => {
            for (k, v) in map {
                if !v.is_string() {
                    causes.push(FieldError::type_invalid(
                        field::key(path, k),
                        v.clone(),
                        "string",
                    ));
                }
            }
        }
        other => causes.push(FieldError::type_invalid(path, other.clone(), "object")),
    }
}

fn is_label_value(v: &str) -> bool {
    v.is_empty()
        || (v.len() <= 63
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && v.as_bytes()
                .first()
                .is_some_and(|b| b.is_ascii_alphanumeric())
            && v.as_bytes()
                .last()
                .is_some_and(|b| b.is_ascii_alphanumeric()))
}

fn is_qualified_name(k: &str) -> bool {
    let (prefix, name) = match k.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    prefix.is_none_or(is_dns_subdomain) && !name.is_empty() && is_label_value(name)
}

/// Picks a random suffix for `generateName`, as Kubernetes does.
pub fn generate_name(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut raw = [0u8; 5];
    rand::fill(&mut raw);
    let suffix: String = raw
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect();
    let max = 63usize.saturating_sub(5);
    let prefix = if prefix.len() > max {
        &prefix[..max]
    } else {
        prefix
    };
    format!("{prefix}{suffix}")
}

/// Fills the system fields of a new object and checks its kind and name.
/// `namespace` is the namespace from the URL.
pub fn prepare_create(
    def: &ResourceDef,
    namespace: Option<&str>,
    object: &mut Value,
) -> Result<String> {
    check_kind(def, object)?;
    let meta = metadata_mut(object)?;
    let mut name = meta
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if name.is_empty() {
        let generate = meta
            .get("generateName")
            .and_then(Value::as_str)
            .unwrap_or("");
        if generate.is_empty() {
            return Err(Error::invalid(
                def.kind.clone(),
                "",
                FieldError::required("metadata.name", "name or generateName is required"),
            ));
        }
        name = generate_name(generate);
        meta.insert("name".into(), json!(name));
    }
    match (def.namespaced, namespace) {
        (true, Some(ns)) => {
            let body_ns = meta.get("namespace").and_then(Value::as_str).unwrap_or("");
            if !body_ns.is_empty() && body_ns != ns {
                return Err(Error::BadRequest(format!(
                    "the namespace of the provided object ({body_ns}) does not match the namespace sent on the request ({ns})"
                )));
            }
            meta.insert("namespace".into(), json!(ns));
        }
        (true, None) => {
            return Err(Error::BadRequest(
                "a namespaced object must be created in a namespace".into(),
            ));
        }
        (false, _) => {
            meta.remove("namespace");
        }
    }
    meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
    meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
    meta.insert("generation".into(), json!(1));
    for field in [
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
        "managedFields",
    ] {
        meta.remove(field);
    }
    validate_name(def, &name)?;
    validate_labels(def, &name, object)?;
    set_kind(def, object);
    Ok(name)
}

/// Rejects a body whose kind or apiVersion is not this resource's (400).
pub fn check_kind(def: &ResourceDef, object: &Value) -> Result<()> {
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !kind.is_empty() && kind != def.kind {
        return Err(Error::BadRequest(format!(
            "the kind of the object ({kind}) does not match the resource ({}, kind {})",
            def.plural, def.kind
        )));
    }
    // The stored version is accepted too: a patch applies to the stored
    // object, whatever version the client speaks.
    if !api_version.is_empty()
        && api_version != def.api_version()
        && api_version != def.storage_api_version()
    {
        return Err(Error::BadRequest(format!(
            "the API version of the object ({api_version}) does not match the resource ({})",
            def.api_version()
        )));
    }
    Ok(())
}

/// Sets `kind` and `apiVersion` to the resource's, in its storage version.
pub fn set_kind(def: &ResourceDef, object: &mut Value) {
    if let Some(obj) = object.as_object_mut() {
        obj.insert("apiVersion".into(), json!(def.storage_api_version()));
        obj.insert("kind".into(), json!(def.kind));
    }
}

/// A stored object's JSON as served at `def`'s version: the bytes as they
/// are when the object is in that version (the common case, no parsing),
/// else with `apiVersion` rewritten — the `None` conversion strategy, which
/// is all ferry's multi-version resources need (their versions share one
/// schema).
pub fn served_json(def: &ResourceDef, json: &Bytes) -> Bytes {
    let want = def.api_version();
    if !def.custom {
        return json.clone();
    }
    let mut prefix = Vec::with_capacity(want.len() + 20);
    prefix.extend_from_slice(b"{\"apiVersion\":\"");
    prefix.extend_from_slice(want.as_bytes());
    prefix.push(b'"');
    if json.starts_with(&prefix) {
        return json.clone();
    }
    let Ok(mut object) = serde_json::from_slice::<Value>(json) else {
        return json.clone();
    };
    match object.get("apiVersion").and_then(Value::as_str) {
        Some(v) if v == want => return json.clone(),
        _ => {}
    }
    if let Some(obj) = object.as_object_mut() {
        obj.insert("apiVersion".into(), json!(want));
    }
    serde_json::to_vec(&object).map_or_else(|_| json.clone(), Bytes::from)
}

/// Everything but metadata and status: a change here bumps `generation`.
fn spec_part(object: &Value) -> Map<String, Value> {
    object
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, _)| {
                    !matches!(k.as_str(), "metadata" | "status" | "kind" | "apiVersion")
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// Makes `new` a valid successor of `current`: the system fields a client
/// cannot change are copied over, and `generation` moves when the spec does.
/// With `status_only`, only `status` is taken from `new` (the `/status`
/// subresource); with a status subresource, a main update keeps the old status.
pub fn prepare_update(
    def: &ResourceDef,
    current: &Value,
    mut new: Value,
    status_only: bool,
) -> Result<Value> {
    check_kind(def, &new)?;
    let name = meta_str(current, "name").to_string();
    let new_name = meta_str(&new, "name");
    if !new_name.is_empty() && new_name != name {
        return Err(Error::BadRequest(format!(
            "the name of the object ({new_name}) does not match the name on the URL ({name})"
        )));
    }
    let new_uid = meta_str(&new, "uid");
    if !new_uid.is_empty() && new_uid != meta_str(current, "uid") {
        return Err(Error::Precondition {
            resource: def.qualified(),
            name,
            message: format!(
                "Precondition failed: UID in precondition: {new_uid}, UID in object meta: {}",
                meta_str(current, "uid")
            ),
        });
    }
    if def.namespaced {
        let ns = meta_str(current, "namespace");
        let new_ns = meta_str(&new, "namespace");
        if !new_ns.is_empty() && new_ns != ns {
            return Err(Error::BadRequest(format!(
                "the namespace of the provided object ({new_ns}) does not match the namespace sent on the request ({ns})"
            )));
        }
    }
    if status_only {
        let mut result = current.clone();
        match new.get("status") {
            Some(status) => result["status"] = status.clone(),
            None => {
                if let Some(o) = result.as_object_mut() {
                    o.remove("status");
                }
            }
        }
        return Ok(result);
    }
    if def.status {
        let obj = new
            .as_object_mut()
            .ok_or_else(|| Error::BadRequest("the request body is not a JSON object".into()))?;
        match current.get("status") {
            Some(status) => {
                obj.insert("status".into(), status.clone());
            }
            None => {
                obj.remove("status");
            }
        }
    }
    let generation = current
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let bumped = spec_part(current) != spec_part(&new);
    let meta = metadata_mut(&mut new)?;
    meta.insert("name".into(), json!(name));
    for field in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "namespace",
    ] {
        match current.get("metadata").and_then(|m| m.get(field)) {
            Some(v) => meta.insert(field.into(), v.clone()),
            None => meta.remove(field),
        };
    }
    meta.insert(
        "generation".into(),
        json!(if bumped { generation + 1 } else { generation }),
    );
    meta.remove("managedFields");
    meta.remove("selfLink");
    validate_labels(def, &name, &new)?;
    set_kind(def, &mut new);
    Ok(new)
}

/// The `metadata.finalizers` of an object.
pub fn finalizers(object: &Value) -> Vec<String> {
    object
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// True once deletion has been requested.
pub fn is_terminating(object: &Value) -> bool {
    object
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_dns_subdomain("a.b-c.d"));
        assert!(!is_dns_subdomain("A"));
        assert!(!is_dns_subdomain("-a"));
        assert!(!is_dns_label("a.b"));
        assert!(is_qualified_name("ferry.dev/cluster"));
        assert!(is_qualified_name("app"));
        assert!(!is_qualified_name("a/b/c"));
        assert!(is_label_value(""));
        assert!(!is_label_value("-x"));
        let n = generate_name("web-");
        assert!(n.starts_with("web-") && n.len() == 9);
    }
}
