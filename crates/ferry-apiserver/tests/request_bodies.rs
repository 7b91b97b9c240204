//! Property tests for request bodies: arbitrary bytes and arbitrary JSON
//! (objects shaped like Kubernetes objects, and JSON patches with random
//! operations and paths), sent as every body content type to every write
//! verb of a real in-process server (see `ferry_apiserver::fuzzing`). The
//! server must never panic or answer 5xx, and must answer 2xx only with an
//! object of the right kind. `fuzz/` runs the same entry point under
//! libFuzzer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ferry_apiserver::fuzzing::fuzz_request_body;
use proptest::prelude::*;
use serde_json::{Value, json};

const CONTENT_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/merge-patch+json",
    "application/json-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
    "",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        "[a-z0-9./-]{0,12}".prop_map(Value::from),
        Just(json!("$patch")),
        Just(json!("replace")),
        Just(json!("delete")),
    ]
}

/// Keys that steer the server's code: metadata fields, strategic-merge
/// directives, list merge keys, and the fields of the sample kinds.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "apiVersion",
            "kind",
            "metadata",
            "name",
            "namespace",
            "labels",
            "annotations",
            "finalizers",
            "resourceVersion",
            "uid",
            "generateName",
            "deletionTimestamp",
            "ownerReferences",
            "spec",
            "status",
            "data",
            "containers",
            "ports",
            "port",
            "env",
            "endpoints",
            "addresses",
            "ips",
            "type",
            "template",
            "$patch",
            "$retainKeys",
            "$deleteFromPrimitiveList/finalizers",
            "$setElementOrder/containers",
            "ferry.dev/cluster",
            "preconditions",
            "dryRun",
        ])
        .prop_map(str::to_string),
        "[a-z]{1,6}",
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(key(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn pointer() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            key(),
            Just("-".to_string()),
            (0u8..4).prop_map(|i| i.to_string()),
            Just("99999999999999999999".to_string()),
            Just("~1".to_string()),
        ],
        0..4,
    )
    .prop_map(|segs| segs.iter().map(|s| format!("/{s}")).collect())
}

fn json_patch() -> impl Strategy<Value = Value> {
    let op = (
        prop::sample::select(vec![
            "add", "remove", "replace", "move", "copy", "test", "bogus",
        ]),
        pointer(),
        pointer(),
        json_value(),
    )
        .prop_map(
            |(op, path, from, value)| json!({"op": op, "path": path, "from": from, "value": value}),
        );
    prop::collection::vec(op, 0..4).prop_map(Value::from)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes(ct in prop::sample::select(CONTENT_TYPES), body in prop::collection::vec(any::<u8>(), 0..64)) {
        fuzz_request_body(ct, &body);
    }

    #[test]
    fn arbitrary_json_documents(ct in prop::sample::select(CONTENT_TYPES), doc in json_value()) {
        fuzz_request_body(ct, &serde_json::to_vec(&doc).unwrap());
    }

    #[test]
    fn arbitrary_json_patches(patch in json_patch()) {
        fuzz_request_body("application/json-patch+json", &serde_json::to_vec(&patch).unwrap());
    }
}

#[test]
fn well_formed_bodies_are_accepted() {
    // The harness reaches the success paths too, not only the refusals.
    for (ct, body) in [
        (
            "application/merge-patch+json",
            r#"{"metadata":{"labels":{"x":"y"}}}"#,
        ),
        (
            "application/strategic-merge-patch+json",
            r#"{"metadata":{"annotations":{"x":"z"}}}"#,
        ),
        (
            "application/json-patch+json",
            r#"[{"op":"add","path":"/metadata/labels/z","value":"1"}]"#,
        ),
        (
            "application/apply-patch+yaml",
            "metadata:\n  labels:\n    q: r\n",
        ),
        ("application/yaml", "metadata:\n  name: fresh\n"),
    ] {
        let (accepted, _) = fuzz_request_body(ct, body.as_bytes());
        assert!(
            accepted >= 4,
            "{ct} {body}: only {accepted} requests succeeded"
        );
    }
}

#[test]
fn failing_json_patch_after_a_move_is_refused_not_a_panic() {
    // Found by `cargo fuzz run request_body`: json-patch 5.0 panicked while
    // rolling this back, taking the request (and under a fuzzer, the
    // process) down.
    let body = r#"[{"op": "add", "path": "/metadata/labels/x", "value": "y"},
        {"op": "move", "from": "/metadata/labels", "path": "/metadata/annotations/a"},
        {"op": "test", "path": "/kind", "value": "Nope"}]"#;
    let (_, refused) = fuzz_request_body("application/json-patch+json", body.as_bytes());
    assert!(refused > 0);
    let crash = [
        r#"[{"op": "add", "path": "/metadata/labels/x", "value": "y"}, "#,
        r#"{"op": "move", "from": "/metadata/labels", "path": "//core/namespaces/fuzzmetadata/annotations"}, "#,
        r#"{"op": "test", "path": "/kind", "value": "ConfigMap"}]"#,
    ]
    .concat();
    fuzz_request_body("application/json-patch+json", crash.as_bytes());
}
