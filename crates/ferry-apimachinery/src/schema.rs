//! CustomResourceDefinition schemas (OpenAPI v3, structural) applied to
//! custom objects as kube-apiserver applies them on every write: unknown
//! fields pruned, `null`s of non-nullable fields dropped, `default`s filled
//! in, then the value validated (types, `required`, `enum`, bounds,
//! `pattern`, list types, `allOf`/`anyOf`/`oneOf`/`not`).
//!
//! At the root, `apiVersion`, `kind` and `metadata` are the server's: never
//! pruned nor checked here. `x-kubernetes-preserve-unknown-fields` keeps
//! unknown fields, `x-kubernetes-embedded-resource` keeps an embedded
//! object's `apiVersion`/`kind`/`metadata`, `x-kubernetes-int-or-string`
//! accepts an integer or a string.

use serde_json::{Map, Value};

use crate::field::{self, FieldError, FieldErrorKind};

/// Prunes, defaults and validates a custom object against its version's
/// `openAPIV3Schema`. Returns every invalid field (empty: valid).
pub fn admit(schema: &Value, object: &mut Value) -> Vec<FieldError> {
    let Some(obj) = object.as_object_mut() else {
        return vec![FieldError::type_invalid("", Value::Null, "object")];
    };
    let properties = schema.get("properties").and_then(Value::as_object);
    let preserve = preserves_unknown(schema);
    let mut errors = Vec::new();
    let keys: Vec<String> = obj.keys().cloned().collect();
    for key in keys {
        if matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        match properties.and_then(|p| p.get(&key)) {
            Some(sub) => {
                if let Some(v) = obj.get_mut(&key) {
                    prune(sub, v);
                    if v.is_null() && !nullable(sub) {
                        obj.remove(&key);
                    }
                }
            }
            None if preserve => {}
            None => {
                obj.remove(&key);
            }
        }
    }
    if let Some(props) = properties {
        default_properties(props, obj);
        for (key, sub) in props {
            if matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            if let Some(v) = obj.get(key) {
                validate(sub, v, key, &mut errors);
            }
        }
    }
    for req in strings(schema.get("required")) {
        if !obj.contains_key(req) && !matches!(req, "apiVersion" | "kind" | "metadata") {
            errors.push(FieldError::required(req, ""));
        }
    }
    errors
}

fn strings(v: Option<&Value>) -> impl Iterator<Item = &str> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

fn flag(schema: &Value, name: &str) -> bool {
    schema.get(name).and_then(Value::as_bool) == Some(true)
}

fn preserves_unknown(schema: &Value) -> bool {
    flag(schema, "x-kubernetes-preserve-unknown-fields")
}

fn nullable(schema: &Value) -> bool {
    flag(schema, "nullable")
}

/// Removes what the schema does not describe, and nulls it does not allow.
fn prune(schema: &Value, value: &mut Value) {
    match value {
        Value::Object(obj) => prune_object(schema, obj),
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items.iter_mut() {
                    prune(item_schema, item);
                }
            }
        }
        _ => {}
    }
}

fn prune_object(schema: &Value, obj: &mut Map<String, Value>) {
    let properties = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties");
    let preserve = preserves_unknown(schema);
    let embedded = flag(schema, "x-kubernetes-embedded-resource");
    let keys: Vec<String> = obj.keys().cloned().collect();
    for key in keys {
        let sub = properties
            .and_then(|p| p.get(&key))
            .or(additional.filter(|a| a.is_object()));
        match sub {
            Some(sub) => {
                if let Some(v) = obj.get_mut(&key) {
                    prune(sub, v);
                    if v.is_null() && !nullable(sub) {
                        obj.remove(&key);
                    }
                }
            }
            None if preserve || additional == Some(&Value::Bool(true)) => {}
            None if embedded && matches!(key.as_str(), "apiVersion" | "kind" | "metadata") => {}
            None => {
                obj.remove(&key);
            }
        }
    }
    if let Some(props) = properties {
        default_properties(props, obj);
    }
}

/// Fills in the `default` of every property that is absent, then the
/// defaults inside the values it filled (as kube defaults recursively).
fn default_properties(properties: &Map<String, Value>, obj: &mut Map<String, Value>) {
    for (key, sub) in properties {
        if obj.contains_key(key) {
            continue;
        }
        if let Some(default) = sub.get("default") {
            let mut v = default.clone();
            prune(sub, &mut v);
            obj.insert(key.clone(), v);
        }
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_matches(expected: &str, v: &Value) -> bool {
    match expected {
        "integer" => type_name(v) == "integer",
        "number" => v.is_number(),
        other => type_name(v) == other,
    }
}

/// Checks `value` against `schema`, appending errors found at `path`.
pub fn validate(schema: &Value, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    if value.is_null() {
        if !nullable(schema) {
            errors.push(FieldError::type_invalid(
                path,
                Value::Null,
                schema.get("type").and_then(Value::as_str).unwrap_or("any"),
            ));
        }
        return;
    }
    if flag(schema, "x-kubernetes-int-or-string") {
        if !(value.is_string() || type_name(value) == "integer") {
            errors.push(FieldError::type_invalid(
                path,
                value.clone(),
                "integer or string",
            ));
            return;
        }
    } else if let Some(expected) = schema.get("type").and_then(Value::as_str)
        && !type_matches(expected, value)
    {
        errors.push(FieldError::type_invalid(path, value.clone(), expected));
        return;
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        errors.push(FieldError::not_supported(path, value.clone(), allowed));
    }
    match value {
        Value::Object(obj) => validate_object(schema, obj, path, errors),
        Value::Array(items) => validate_array(schema, items, path, errors),
        Value::String(s) => validate_string(schema, s, path, errors),
        Value::Number(_) => validate_number(schema, value, path, errors),
        _ => {}
    }
    validate_combinators(schema, value, path, errors);
}

fn validate_object(
    schema: &Value,
    obj: &Map<String, Value>,
    path: &str,
    errors: &mut Vec<FieldError>,
) {
    let properties = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties").filter(|a| a.is_object());
    for (key, v) in obj {
        if let Some(sub) = properties.and_then(|p| p.get(key)) {
            validate(sub, v, &field::child(path, key), errors);
        } else if let Some(sub) = additional {
            validate(sub, v, &field::key(path, key), errors);
        }
    }
    for req in strings(schema.get("required")) {
        if !obj.contains_key(req) {
            errors.push(FieldError::required(field::child(path, req), ""));
        }
    }
    let count = obj.len() as u64;
    if let Some(min) = uint(schema, "minProperties")
        && count < min
    {
        errors.push(FieldError::invalid(
            path,
            Value::from(count),
            format!("must have at least {min} properties"),
        ));
    }
    if let Some(max) = uint(schema, "maxProperties")
        && count > max
    {
        errors.push(
            FieldError::new(FieldErrorKind::TooLong, path, None)
                .with_detail(format!("must have at most {max} properties")),
        );
    }
}

fn validate_array(schema: &Value, items: &[Value], path: &str, errors: &mut Vec<FieldError>) {
    if let Some(item_schema) = schema.get("items") {
        for (i, item) in items.iter().enumerate() {
            validate(item_schema, item, &field::index(path, i), errors);
        }
    }
    let count = items.len() as u64;
    if let Some(min) = uint(schema, "minItems")
        && count < min
    {
        errors.push(FieldError::invalid(
            path,
            Value::from(count),
            format!("must have at least {min} items"),
        ));
    }
    if let Some(max) = uint(schema, "maxItems")
        && count > max
    {
        errors.push(
            FieldError::new(FieldErrorKind::TooLong, path, None)
                .with_detail(format!("must have at most {max} items")),
        );
    }
    let list_type = schema.get("x-kubernetes-list-type").and_then(Value::as_str);
    if flag(schema, "uniqueItems") || list_type == Some("set") {
        for (i, item) in items.iter().enumerate() {
            if items[..i].contains(item) {
                errors.push(FieldError::new(
                    FieldErrorKind::Duplicate,
                    field::index(path, i),
                    Some(item.clone()),
                ));
            }
        }
    }
    if list_type == Some("map") {
        let keys: Vec<&str> = strings(schema.get("x-kubernetes-list-map-keys")).collect();
        let key_of = |item: &Value| -> Vec<Value> {
            keys.iter()
                .map(|k| item.get(*k).cloned().unwrap_or(Value::Null))
                .collect()
        };
        for (i, item) in items.iter().enumerate() {
            let k = key_of(item);
            if items[..i].iter().any(|earlier| key_of(earlier) == k) {
                errors.push(FieldError::new(
                    FieldErrorKind::Duplicate,
                    field::index(path, i),
                    Some(Value::Array(k)),
                ));
            }
        }
    }
}

fn validate_string(schema: &Value, s: &str, path: &str, errors: &mut Vec<FieldError>) {
    let len = s.chars().count() as u64;
    if let Some(min) = uint(schema, "minLength")
        && len < min
    {
        errors.push(FieldError::invalid(
            path,
            Value::from(s),
            format!("should be at least {min} chars long"),
        ));
    }
    if let Some(max) = uint(schema, "maxLength")
        && len > max
    {
        errors.push(
            FieldError::new(FieldErrorKind::TooLong, path, None)
                .with_detail(format!("may not be more than {max} bytes")),
        );
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
        match regex::Regex::new(pattern) {
            Ok(re) if re.is_match(s) => {}
            Ok(_) => errors.push(FieldError::invalid(
                path,
                Value::from(s),
                format!("should match '{pattern}'"),
            )),
            Err(e) => errors.push(FieldError::invalid(
                path,
                Value::from(s),
                format!("the schema's pattern '{pattern}' does not compile: {e}"),
            )),
        }
    }
}

fn validate_number(schema: &Value, v: &Value, path: &str, errors: &mut Vec<FieldError>) {
    let Some(x) = v.as_f64() else { return };
    let bound = |name: &str| schema.get(name).and_then(Value::as_f64);
    if let Some(min) = bound("minimum") {
        let exclusive = flag(schema, "exclusiveMinimum");
        if x < min || (exclusive && x == min) {
            let op = if exclusive {
                "greater than"
            } else {
                "greater than or equal to"
            };
            errors.push(FieldError::invalid(
                path,
                v.clone(),
                format!("should be {op} {min}"),
            ));
        }
    }
    if let Some(max) = bound("maximum") {
        let exclusive = flag(schema, "exclusiveMaximum");
        if x > max || (exclusive && x == max) {
            let op = if exclusive {
                "less than"
            } else {
                "less than or equal to"
            };
            errors.push(FieldError::invalid(
                path,
                v.clone(),
                format!("should be {op} {max}"),
            ));
        }
    }
    if let Some(m) = bound("multipleOf")
        && m > 0.0
        && (x / m).fract() != 0.0
    {
        errors.push(FieldError::invalid(
            path,
            v.clone(),
            format!("should be a multiple of {m}"),
        ));
    }
}

/// `allOf`, `anyOf`, `oneOf` and `not`: value validations only (structural
/// schemas may not declare fields or types there that the main schema lacks).
fn validate_combinators(schema: &Value, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    let passes = |sub: &Value| {
        let mut errs = Vec::new();
        validate(sub, value, path, &mut errs);
        errs.is_empty()
    };
    let list = |name: &str| schema.get(name).and_then(Value::as_array);
    if let Some(all) = list("allOf") {
        for sub in all {
            validate(sub, value, path, errors);
        }
    }
    if let Some(any) = list("anyOf")
        && !any.iter().any(passes)
    {
        errors.push(FieldError::invalid(
            path,
            value.clone(),
            "must validate against at least one schema of anyOf",
        ));
    }
    if let Some(one) = list("oneOf")
        && one.iter().filter(|s| passes(s)).count() != 1
    {
        errors.push(FieldError::invalid(
            path,
            value.clone(),
            "must validate against exactly one schema of oneOf",
        ));
    }
    if let Some(not) = schema.get("not")
        && passes(not)
    {
        errors.push(FieldError::invalid(
            path,
            value.clone(),
            "must not validate against the schema of not",
        ));
    }
}

fn uint(schema: &Value, name: &str) -> Option<u64> {
    schema.get(name).and_then(Value::as_u64)
}

#[cfg(test)]
mod tests;
