//! Entry points for the fuzz target (`fuzz/fuzz_targets/request_body.rs`)
//! and the property tests: arbitrary request bodies through the real
//! request path — routing, authentication, body decoding, create, replace,
//! every patch kind, delete options — of a real server, with `dryRun=All`
//! so the state every input sees is the same. Not a stable API.
//!
//! The oracle: the server never panics and never answers a body with a
//! 5xx; a 2xx answer is a JSON object of the resource's kind.

// A harness reports by panicking: that is what fuzzers and tests look for.
#![allow(clippy::expect_used)]

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};

use crate::auth::Identity;
use crate::server::{Config, RunningServer};
use crate::state::App;

struct Fixture {
    rt: tokio::runtime::Runtime,
    app: Arc<App>,
    admin: String,
    cluster: String,
    _server: RunningServer,
}

/// The objects every input is tried against: (collection URL, name, kind).
const TARGETS: &[(&str, &str, &str)] = &[
    ("/api/v1/namespaces/fuzz/configmaps", "sample", "ConfigMap"),
    ("/api/v1/namespaces/fuzz/services", "web", "Service"),
    ("/api/v1/namespaces/fuzz/pods", "web-0", "Pod"),
    (
        "/apis/apps/v1/namespaces/fuzz/deployments",
        "web",
        "Deployment",
    ),
    (
        "/apis/discovery.k8s.io/v1/namespaces/fuzz/endpointslices",
        "web-1",
        "EndpointSlice",
    ),
    (
        "/apis/multicluster.x-k8s.io/v1alpha1/namespaces/fuzz/serviceimports",
        "web",
        "ServiceImport",
    ),
    ("/api/v1/nodes", "node-1", "Node"),
    ("/api/v1/namespaces", "fuzz", "Namespace"),
];

fn seed_objects() -> Vec<(&'static str, Value)> {
    vec![
        (
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            json!({
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {"name": "serviceimports.multicluster.x-k8s.io"},
                "spec": {
                    "group": "multicluster.x-k8s.io",
                    "scope": "Namespaced",
                    "names": {"plural": "serviceimports", "singular": "serviceimport",
                              "kind": "ServiceImport", "shortNames": ["svcim"]},
                    "versions": [{
                        "name": "v1alpha1", "served": true, "storage": true,
                        "schema": {"openAPIV3Schema": {"type": "object",
                            "x-kubernetes-preserve-unknown-fields": true}},
                        "subresources": {"status": {}},
                        "additionalPrinterColumns": [
                            {"name": "Type", "type": "string", "jsonPath": ".spec.type"},
                            {"name": "IP", "type": "string", "jsonPath": ".spec.ips"},
                            {"name": "Age", "type": "date",
                             "jsonPath": ".metadata.creationTimestamp"}
                        ]
                    }]
                }
            }),
        ),
        (
            "/api/v1/namespaces",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "fuzz"}}),
        ),
        (
            "/api/v1/namespaces/fuzz/configmaps",
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "sample", "labels": {"a": "b", "ferry.dev/cluster": "c1"},
                                "annotations": {"x": "y"}, "finalizers": ["f/one"]},
                   "data": {"k": "v", "other": "w"}}),
        ),
        (
            "/api/v1/namespaces/fuzz/services",
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                   "spec": {"selector": {"app": "web"}, "ports": [
                       {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080},
                       {"name": "https", "port": 443, "protocol": "TCP"}]}}),
        ),
        (
            "/api/v1/namespaces/fuzz/pods",
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-0"},
                   "spec": {"containers": [{"name": "web", "image": "nginx",
                       "ports": [{"containerPort": 80, "protocol": "TCP"}],
                       "env": [{"name": "A", "value": "1"}],
                       "volumeMounts": [{"name": "v", "mountPath": "/v"}]}],
                       "volumes": [{"name": "v", "emptyDir": {}}],
                       "tolerations": [{"key": "k", "operator": "Exists"}]}}),
        ),
        (
            "/apis/apps/v1/namespaces/fuzz/deployments",
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                   "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                       "template": {"metadata": {"labels": {"app": "web"}},
                           "spec": {"containers": [
                               {"name": "web", "image": "nginx", "args": ["a", "b"],
                                "env": [{"name": "A", "value": "1"}]},
                               {"name": "side", "image": "busybox"}]}}}}),
        ),
        (
            "/apis/discovery.k8s.io/v1/namespaces/fuzz/endpointslices",
            json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                   "metadata": {"name": "web-1",
                                "labels": {"kubernetes.io/service-name": "web"}},
                   "addressType": "IPv4",
                   "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": true}}],
                   "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}),
        ),
        (
            "/apis/multicluster.x-k8s.io/v1alpha1/namespaces/fuzz/serviceimports",
            json!({"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceImport",
                   "metadata": {"name": "web", "labels": {"ferry.dev/cluster": "c1"}},
                   "spec": {"type": "ClusterSetIP", "ips": ["11.96.112.197"],
                            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}}),
        ),
        (
            "/api/v1/nodes",
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1"},
                   "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}}),
        ),
    ]
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a Tokio runtime for the fuzzing fixture");
        let dir = std::env::temp_dir().join(format!("ferry-apiserver-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let server = rt
            .block_on(crate::server::start(Config::new(&dir, listen)))
            .expect("the fuzzing fixture's server starts");
        let app = server.app.clone();
        let admin = app.tokens.create(&Identity::Admin).expect("admin token");
        let cluster = app
            .tokens
            .create(&Identity::Cluster("c1".into()))
            .expect("cluster token");
        let fixture = Fixture {
            rt,
            app,
            admin,
            cluster,
            _server: server,
        };
        for (url, object) in seed_objects() {
            let body = serde_json::to_vec(&object).expect("seed objects serialize");
            let (code, answer) =
                fixture.request(Method::POST, url, "application/json", &body, &fixture.admin);
            assert!(
                code.is_success(),
                "seeding {url} failed: {code} {}",
                String::from_utf8_lossy(&answer)
            );
        }
        // Everything the server needs is open; nothing is left in /tmp.
        let _ = std::fs::remove_dir_all(&dir);
        fixture
    })
}

impl Fixture {
    fn request(
        &self,
        method: Method,
        uri: &str,
        content_type: &str,
        body: &[u8],
        token: &str,
    ) -> (StatusCode, bytes::Bytes) {
        let mut builder = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::ACCEPT, "application/json");
        if !content_type.is_empty() {
            builder = builder.header(header::CONTENT_TYPE, content_type);
        }
        let req = builder
            .body(Body::from(body.to_vec()))
            .expect("a well-formed request");
        self.rt.block_on(async {
            let (_, _, resp) = crate::http::route(&self.app, req).await;
            let code = resp.status();
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            (code, bytes)
        })
    }
}

/// Checks one answer against the oracle.
fn check(what: &str, kind: &str, code: StatusCode, answer: &[u8], body: &[u8]) {
    let body = String::from_utf8_lossy(body);
    let answer_text = String::from_utf8_lossy(answer);
    assert!(
        !code.is_server_error(),
        "{what}: {code} for body {body:?}: {answer_text}"
    );
    let Ok(value) = serde_json::from_slice::<Value>(answer) else {
        panic!("{what}: {code}, answer is not JSON: {answer_text}");
    };
    if code.is_success() {
        assert_eq!(
            value.get("kind").and_then(Value::as_str),
            Some(kind),
            "{what}: {code} for body {body:?}: {answer_text}"
        );
    } else {
        assert_eq!(
            value.get("kind").and_then(Value::as_str),
            Some("Status"),
            "{what}: {code} for body {body:?}: {answer_text}"
        );
    }
}

/// Sends `body` with `content_type` as every kind of write the server
/// takes a body for (create, replace, patch, status patch, delete), to each
/// sample resource, as the admin and as a cluster-scoped identity, all with
/// `dryRun=All`. Panics when the oracle fails; returns how many requests
/// succeeded (2xx) and how many were refused (4xx).
#[doc(hidden)]
pub fn fuzz_request_body(content_type: &str, body: &[u8]) -> (usize, usize) {
    let f = fixture();
    let (mut accepted, mut refused) = (0, 0);
    for (i, (collection, name, kind)) in TARGETS.iter().enumerate() {
        // Alternate identities so authorization runs on fuzzed labels too.
        let token = if i % 2 == 0 { &f.admin } else { &f.cluster };
        let object = format!("{collection}/{name}");
        let requests: [(Method, String, &str); 6] = [
            (Method::POST, format!("{collection}?dryRun=All"), *kind),
            (Method::PUT, format!("{object}?dryRun=All"), *kind),
            (Method::PATCH, format!("{object}?dryRun=All"), *kind),
            (
                Method::PATCH,
                format!("{collection}/missing-{name}?dryRun=All&fieldManager=fuzz"),
                *kind,
            ),
            (Method::PATCH, format!("{object}/status?dryRun=All"), *kind),
            (Method::DELETE, format!("{object}?dryRun=All"), *kind),
        ];
        for (method, uri, kind) in requests {
            let what = format!("{method} {uri} ({content_type})");
            let (code, answer) = f.request(method.clone(), &uri, content_type, body, token);
            check(&what, kind, code, &answer, body);
            if code.is_success() {
                accepted += 1;
            } else {
                refused += 1;
            }
        }
    }
    (accepted, refused)
}
