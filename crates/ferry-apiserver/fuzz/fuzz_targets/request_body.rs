//! Arbitrary request bodies through a real server's write paths: the first
//! byte picks the Content-Type, the rest is the body, sent as create,
//! replace, patch (JSON, merge, strategic, apply), status patch and delete
//! options to every sample resource (see `ferry_apiserver::fuzzing`).
#![no_main]

use libfuzzer_sys::fuzz_target;

const CONTENT_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/merge-patch+json",
    "application/json-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
    "application/vnd.kubernetes.protobuf",
    "application/json; charset=utf-8",
    "",
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let content_type = CONTENT_TYPES[usize::from(selector) % CONTENT_TYPES.len()];
    ferry_apiserver::fuzzing::fuzz_request_body(content_type, body);
});
