use serde_json::{Value, json};

use super::admit;

fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "required": ["host"],
                "properties": {
                    "host": {"type": "string", "minLength": 1, "pattern": "^[a-z.]+$"},
                    "replicas": {"type": "integer", "minimum": 0, "default": 1},
                    "mode": {"type": "string", "enum": ["Fast", "Safe"]},
                    "port": {"x-kubernetes-int-or-string": true},
                    "tags": {"type": "array", "items": {"type": "string"},
                             "x-kubernetes-list-type": "set"},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    "note": {"type": "string", "nullable": true},
                    "ratio": {"type": "number"},
                },
            },
            "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
        },
    })
}

fn fields(errors: &[crate::FieldError]) -> Vec<String> {
    errors.iter().map(|e| e.field.clone()).collect()
}

#[test]
fn a_valid_object_is_pruned_and_defaulted() {
    let mut obj = json!({
        "apiVersion": "x.dev/v1", "kind": "Thing", "metadata": {"name": "a", "labels": {"k": "v"}},
        "spec": {"host": "a.b", "unknown": 1, "port": "http", "ratio": 1,
                 "free": {"anything": {"goes": [1]}}, "labels": {"a": "b"}, "mode": null},
        "extra": true,
    });
    let errors = admit(&schema(), &mut obj);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        obj,
        json!({
            "apiVersion": "x.dev/v1", "kind": "Thing", "metadata": {"name": "a", "labels": {"k": "v"}},
            "spec": {"host": "a.b", "replicas": 1, "port": "http", "ratio": 1,
                     "free": {"anything": {"goes": [1]}}, "labels": {"a": "b"}},
        })
    );
}

#[test]
fn wrong_types_missing_fields_and_enums_name_their_field() {
    let mut obj = json!({
        "spec": {"replicas": "three", "mode": "Slow", "port": 1.5, "tags": ["a", "a"],
                 "labels": {"a": 1}, "host": ""},
        "status": {"ready": "yes"},
    });
    let errors = admit(&schema(), &mut obj);
    let mut got = fields(&errors);
    got.sort();
    assert_eq!(
        got,
        [
            "spec.host",
            "spec.host",
            "spec.labels[a]",
            "spec.mode",
            "spec.port",
            "spec.replicas",
            "spec.tags[1]",
            "status.ready"
        ]
    );
    let replicas = errors.iter().find(|e| e.field == "spec.replicas").unwrap();
    assert_eq!(
        replicas.to_string(),
        "spec.replicas: Invalid value: \"three\": must be of type integer"
    );
    let mut missing = json!({"spec": {}});
    let errors = admit(&schema(), &mut missing);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].to_string(), "spec.host: Required value");
    assert_eq!(errors[0].kind.reason(), "FieldValueRequired");
}

#[test]
fn bounds_and_null_handling() {
    let mut obj = json!({"spec": {"host": "a", "replicas": -1, "note": null}});
    let errors = admit(&schema(), &mut obj);
    assert_eq!(fields(&errors), ["spec.replicas"]);
    // A nullable field keeps its null; a float is not an integer.
    assert_eq!(obj["spec"]["note"], Value::Null);
    let mut obj = json!({"spec": {"host": "a", "replicas": 2.5}});
    assert_eq!(fields(&admit(&schema(), &mut obj)), ["spec.replicas"]);
}

#[test]
fn preserve_unknown_fields_at_the_root_keeps_everything() {
    let schema = json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
    let mut obj = json!({"spec": {"a": [1, {"b": null}]}, "other": 1});
    let before = obj.clone();
    assert!(admit(&schema, &mut obj).is_empty());
    assert_eq!(obj, before);
}

#[test]
fn combinators_check_values() {
    let schema = json!({"type": "object", "properties": {"spec": {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "oneOf": [{"required": ["a"]}, {"required": ["b"]}],
    }}});
    assert!(admit(&schema, &mut json!({"spec": {"a": 1}})).is_empty());
    assert_eq!(
        fields(&admit(&schema, &mut json!({"spec": {"a": 1, "b": 2}}))),
        ["spec"]
    );
    assert_eq!(fields(&admit(&schema, &mut json!({"spec": {}}))), ["spec"]);
}
