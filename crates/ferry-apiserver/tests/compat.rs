//! Kubernetes behaviours clients rely on without checking (issue 21): how
//! boolean query parameters read, deletion propagation policies, Secret
//! `stringData`, and validation of built-in and custom objects. Driven by
//! kube-rs, typed where a typed client would be, raw where the point is
//! what goes over the wire.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use http_body_util::BodyExt;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, ResourceExt};
use serde_json::{Value, json};

struct Server {
    client: Client,
    running: ferry_apiserver::RunningServer,
    _dir: tempfile::TempDir,
}

async fn server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let config = ferry_apiserver::Config::new(dir.path(), "127.0.0.1:0".parse().unwrap());
    let running = ferry_apiserver::start(config).await.unwrap();
    let kubeconfig = Kubeconfig::read_from(&running.admin_kubeconfig).unwrap();
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    Server {
        client: Client::try_from(config).unwrap(),
        running,
        _dir: dir,
    }
}

/// One raw request: (status code, body as text).
async fn raw(s: &Server, method: &str, uri: &str, body: Option<Value>) -> (u16, String) {
    raw_as(s, method, uri, "application/json", body).await
}

async fn raw_as(
    s: &Server,
    method: &str,
    uri: &str,
    content_type: &str,
    body: Option<Value>,
) -> (u16, String) {
    let mut req = http::Request::builder().method(method).uri(uri);
    let bytes = match body {
        Some(v) => {
            req = req.header("content-type", content_type);
            serde_json::to_vec(&v).unwrap()
        }
        None => Vec::new(),
    };
    let resp = s
        .client
        .send(req.body(kube::client::Body::from(bytes)).unwrap())
        .await
        .unwrap();
    let code = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (code, String::from_utf8_lossy(&body).into_owned())
}

/// Asserts a 422 `Status` whose causes name `field`.
fn assert_invalid(code: u16, body: &str, field: &str) {
    assert_eq!(code, 422, "{body}");
    let status: Value = serde_json::from_str(body).unwrap();
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "Invalid");
    let causes = status["details"]["causes"].as_array().expect("causes");
    assert!(
        causes.iter().any(|c| c["field"] == field),
        "no cause names {field}: {body}"
    );
    assert!(
        status["message"].as_str().unwrap().contains(field),
        "{body}"
    );
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

const CMS: &str = "/api/v1/namespaces/default/configmaps";

#[tokio::test]
async fn boolean_parameters_read_as_kube_apiserver_reads_them() {
    let s = server().await;
    let (code, _) = raw(&s, "POST", CMS, Some(json!({"metadata": {"name": "a"}}))).await;
    assert_eq!(code, 201);
    // The Python client up to 36 sends `watch=True`.
    for v in ["True", "true", "1", "TRUE", ""] {
        let (code, body) = raw(
            &s,
            "GET",
            &format!("{CMS}?watch={v}&timeoutSeconds=1"),
            None,
        )
        .await;
        assert_eq!(code, 200);
        assert!(
            body.lines().any(|l| l.contains("\"type\":\"ADDED\"")),
            "watch={v} did not watch: {body}"
        );
    }
    for v in ["false", "False", "0"] {
        let (code, body) = raw(&s, "GET", &format!("{CMS}?watch={v}"), None).await;
        assert_eq!(code, 200);
        let list: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(list["kind"], "ConfigMapList", "watch={v}");
    }
    let (code, _) = raw(&s, "GET", &format!("{CMS}?watch=1&timeoutSeconds=x"), None).await;
    assert_eq!(code, 400);
    let (code, _) = raw(
        &s,
        "POST",
        &format!("{CMS}?dryRun=yes"),
        Some(json!({"metadata": {"name": "b"}})),
    )
    .await;
    assert_eq!(code, 400);
    let (code, _) = raw(
        &s,
        "POST",
        &format!("{CMS}?dryRun=All"),
        Some(json!({"metadata": {"name": "b"}})),
    )
    .await;
    assert_eq!(code, 201);
    let (code, _) = raw(&s, "GET", &format!("{CMS}/b"), None).await;
    assert_eq!(code, 404, "a dry run wrote");
}

#[tokio::test]
async fn secret_string_data_is_folded_into_data_and_data_must_be_base64() {
    let s = server().await;
    let api: Api<Secret> = Api::namespaced(s.client.clone(), "default");
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("s".into()),
            ..Default::default()
        },
        string_data: Some(BTreeMap::from([("a".into(), "hello".into())])),
        data: Some(BTreeMap::from([
            ("a".into(), ByteString(b"overridden".to_vec())),
            ("b".into(), ByteString(b"kept".to_vec())),
        ])),
        ..Default::default()
    };
    let created = api.create(&PostParams::default(), &secret).await.unwrap();
    let data = created.data.clone().unwrap();
    assert_eq!(data["a"].0, b"hello");
    assert_eq!(data["b"].0, b"kept");
    assert_eq!(created.string_data, None);
    let patched = api
        .patch(
            "s",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"c": "new"}})),
        )
        .await
        .unwrap();
    let data = patched.data.unwrap();
    assert_eq!(data["c"].0, b"new");
    assert_eq!(data["a"].0, b"hello");
    assert_eq!(patched.string_data, None);
    // Never stored: a raw read does not show it either.
    let (_, body) = raw(&s, "GET", "/api/v1/namespaces/default/secrets/s", None).await;
    assert!(!body.contains("stringData"), "{body}");

    let bad = json!({"metadata": {"name": "bad"}, "data": {"k": "not base64!"}});
    let (code, body) = raw(&s, "POST", "/api/v1/namespaces/default/secrets", Some(bad)).await;
    assert_invalid(code, &body, "data[k]");
    assert!(
        !body.contains("not base64!"),
        "secret contents echoed: {body}"
    );
    let (code, _) = raw(&s, "GET", "/api/v1/namespaces/default/secrets/bad", None).await;
    assert_eq!(code, 404, "an invalid Secret was written");
    let bad = json!({"metadata": {"name": "bad"}, "stringData": {"k": 1}});
    let (code, body) = raw(&s, "POST", "/api/v1/namespaces/default/secrets", Some(bad)).await;
    assert_invalid(code, &body, "stringData[k]");
}

#[tokio::test]
async fn built_in_objects_must_decode_as_their_types() {
    let s = server().await;
    let bad = json!({"metadata": {"name": "n"}, "data": {"k": 5}});
    let (code, body) = raw(&s, "POST", CMS, Some(bad)).await;
    assert_invalid(code, &body, "data[k]");
    let bad = json!({"metadata": {"name": "n", "annotations": {"a": true}}});
    let (code, body) = raw(&s, "POST", CMS, Some(bad)).await;
    assert_invalid(code, &body, "metadata.annotations[a]");
    let bad = json!({"metadata": {"name": "Not_A_Name"}});
    let (code, body) = raw(&s, "POST", CMS, Some(bad)).await;
    assert_invalid(code, &body, "metadata.name");
    let bad = json!({"metadata": {"name": "n"}, "binaryData": {"k": "%%%"}});
    let (code, body) = raw(&s, "POST", CMS, Some(bad)).await;
    assert_invalid(code, &body, "binaryData[k]");
    let bad = json!({"metadata": {"name": "d"},
        "spec": {"replicas": "two", "selector": {"matchLabels": {"a": "b"}},
                 "template": {"metadata": {"labels": {"a": "b"}},
                              "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
    let (code, body) = raw(
        &s,
        "POST",
        "/apis/apps/v1/namespaces/default/deployments",
        Some(bad),
    )
    .await;
    assert_invalid(code, &body, "spec.replicas");

    // An update may not break a stored object either.
    let (code, _) = raw(&s, "POST", CMS, Some(json!({"metadata": {"name": "ok"}}))).await;
    assert_eq!(code, 201);
    let api: Api<ConfigMap> = Api::namespaced(s.client.clone(), "default");
    let err = api
        .patch(
            "ok",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"k": [1]}})),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, kube::Error::Api(e) if e.code == 422));
    // Nothing invalid was stored: typed clients still list the namespace.
    let names: Vec<String> = api
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(ResourceExt::name_any)
        .collect();
    assert_eq!(names, ["ok"]);
}

fn widget_crd() -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.test.ferry.dev"},
        "spec": {
            "group": "test.ferry.dev",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {"spec": {
                        "type": "object",
                        "required": ["host"],
                        "properties": {
                            "host": {"type": "string"},
                            "replicas": {"type": "integer", "default": 1},
                            "mode": {"type": "string", "enum": ["Fast", "Safe"]},
                            "extra": {"type": "object",
                                      "x-kubernetes-preserve-unknown-fields": true},
                        },
                    }},
                }},
            }],
        },
    }))
    .unwrap()
}

#[tokio::test]
async fn custom_objects_follow_their_crd_schema() {
    let s = server().await;
    let crds: Api<CustomResourceDefinition> = Api::all(s.client.clone());
    crds.create(&PostParams::default(), &widget_crd())
        .await
        .unwrap();
    let url = "/apis/test.ferry.dev/v1/namespaces/default/widgets";
    let widget = |spec: Value| {
        json!({"apiVersion": "test.ferry.dev/v1", "kind": "Widget",
        "metadata": {"name": "w"}, "spec": spec})
    };
    let (code, body) = raw(
        &s,
        "POST",
        url,
        Some(widget(json!({"host": "h", "replicas": "three"}))),
    )
    .await;
    assert_invalid(code, &body, "spec.replicas");
    let (code, body) = raw(&s, "POST", url, Some(widget(json!({"replicas": 2})))).await;
    assert_invalid(code, &body, "spec.host");
    let (code, body) = raw(
        &s,
        "POST",
        url,
        Some(widget(json!({"host": "h", "mode": "Slow"}))),
    )
    .await;
    assert_invalid(code, &body, "spec.mode");
    let (code, _) = raw(&s, "GET", &format!("{url}/w"), None).await;
    assert_eq!(code, 404, "an invalid object was written");

    let good = widget(json!({"host": "h", "unknown": 1, "extra": {"free": {"form": true}}}));
    let (code, body) = raw(&s, "POST", url, Some(good)).await;
    assert_eq!(code, 201, "{body}");
    let stored: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        stored["spec"],
        json!({"host": "h", "replicas": 1, "extra": {"free": {"form": true}}})
    );
    let (code, body) = raw(
        &s,
        "PUT",
        &format!("{url}/w"),
        Some(widget(json!({"host": 5}))),
    )
    .await;
    assert_invalid(code, &body, "spec.host");
}

fn owned(name: &str, owners: &[(&ConfigMap, bool)]) -> Value {
    let refs: Vec<Value> = owners
        .iter()
        .map(|(o, block)| {
            json!({"apiVersion": "v1", "kind": "ConfigMap", "name": o.name_any(),
                   "uid": o.uid().unwrap(), "blockOwnerDeletion": block})
        })
        .collect();
    json!({"metadata": {"name": name, "ownerReferences": refs}})
}

async fn create(api: &Api<ConfigMap>, value: Value) -> ConfigMap {
    let cm: ConfigMap = serde_json::from_value(value).unwrap();
    api.create(&PostParams::default(), &cm).await.unwrap()
}

async fn gone(api: &Api<ConfigMap>, name: &str) -> bool {
    api.get_opt(name).await.unwrap().is_none()
}

#[tokio::test]
async fn orphan_keeps_dependents_and_drops_their_references() {
    let s = server().await;
    let api: Api<ConfigMap> = Api::namespaced(s.client.clone(), "default");
    for (owner_name, by_query) in [("owner-body", false), ("owner-query", true)] {
        let owner = create(&api, json!({"metadata": {"name": owner_name}})).await;
        let dep = format!("{owner_name}-dep");
        create(&api, owned(&dep, &[(&owner, true)])).await;
        if by_query {
            let (code, _) = raw(
                &s,
                "DELETE",
                &format!("{CMS}/{owner_name}?propagationPolicy=Orphan"),
                None,
            )
            .await;
            assert_eq!(code, 200);
        } else {
            api.delete(owner_name, &DeleteParams::orphan())
                .await
                .unwrap();
        }
        eventually("the owner to go", || gone(&api, owner_name)).await;
        let kept = api.get(&dep).await.expect("an orphaned dependent stays");
        assert_eq!(kept.metadata.owner_references, None, "{owner_name}");
    }
}

#[tokio::test]
async fn foreground_holds_the_owner_until_blocking_dependents_are_gone() {
    let s = server().await;
    let api: Api<ConfigMap> = Api::namespaced(s.client.clone(), "default");
    let owner = create(&api, json!({"metadata": {"name": "owner"}})).await;
    let mut held = owned("held", &[(&owner, true)]);
    held["metadata"]["finalizers"] = json!(["test.ferry.dev/hold"]);
    create(&api, held).await;
    create(&api, owned("plain", &[(&owner, false)])).await;
    api.delete("owner", &DeleteParams::foreground())
        .await
        .unwrap();
    eventually("the plain dependent to go", || gone(&api, "plain")).await;
    // The collector deletes the dependents one by one, in no set order.
    eventually("the held dependent to be deleting", || async {
        let dependent = api.get("held").await.unwrap();
        dependent.metadata.deletion_timestamp.is_some()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let waiting = api
        .get("owner")
        .await
        .expect("the owner waits for its dependent");
    assert!(waiting.metadata.deletion_timestamp.is_some());
    assert_eq!(waiting.finalizers(), ["foregroundDeletion"]);
    api.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    eventually("the owner to go", || gone(&api, "owner")).await;
    assert!(gone(&api, "held").await);
}

#[tokio::test]
async fn a_dependent_created_after_its_owner_went_is_collected() {
    let s = server().await;
    let api: Api<ConfigMap> = Api::namespaced(s.client.clone(), "default");
    let owner = create(&api, json!({"metadata": {"name": "owner"}})).await;
    api.delete("owner", &DeleteParams::background())
        .await
        .unwrap();
    eventually("the owner to go", || gone(&api, "owner")).await;
    // A controller that had not seen the delete yet makes a dependent.
    create(&api, owned("late", &[(&owner, false)])).await;
    eventually("the ownerless dependent to go", || gone(&api, "late")).await;
}

#[tokio::test]
async fn background_deletes_dependents_unless_another_owner_remains() {
    let s = server().await;
    let api: Api<ConfigMap> = Api::namespaced(s.client.clone(), "default");
    let first = create(&api, json!({"metadata": {"name": "first"}})).await;
    let second = create(&api, json!({"metadata": {"name": "second"}})).await;
    create(&api, owned("only-first", &[(&first, false)])).await;
    create(&api, owned("both", &[(&first, false), (&second, false)])).await;
    api.delete("first", &DeleteParams::background())
        .await
        .unwrap();
    eventually("the sole dependent to go", || gone(&api, "only-first")).await;
    eventually("the shared dependent to lose its reference", || async {
        let both = api.get("both").await.unwrap();
        let refs = both.metadata.owner_references.unwrap_or_default();
        refs.len() == 1 && refs[0].name == "second"
    })
    .await;
}

#[tokio::test]
async fn metrics_parse_as_what_they_claim_to_be() {
    let s = server().await;
    let (code, _) = raw(&s, "GET", CMS, None).await;
    assert_eq!(code, 200);
    let (code, text) = raw(&s, "GET", "/metrics", None).await;
    assert_eq!(code, 200);
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).unwrap();
    let requests: Vec<_> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "ferry_apiserver_requests_total")
        .collect();
    assert!(!requests.is_empty(), "{text}");
    for sample in requests {
        assert!(
            matches!(sample.value, prometheus_parse::Value::Counter(_)),
            "{sample:?} is not read as a counter:\n{text}"
        );
    }
    let watches = scrape
        .samples
        .iter()
        .find(|s| s.metric == "ferry_apiserver_open_watches")
        .expect("open watches");
    assert!(matches!(watches.value, prometheus_parse::Value::Gauge(_)));
    let latency = scrape
        .samples
        .iter()
        .find(|s| s.metric == "ferry_apiserver_request_duration_seconds")
        .expect("latency");
    assert!(matches!(
        latency.value,
        prometheus_parse::Value::Histogram(_)
    ));
    // Every family is typed: nothing is left for a parser to call unknown
    // (the parser reads a histogram's _sum and _count apart from it).
    for sample in &scrape.samples {
        let histogram_part = ["_sum", "_count"].iter().any(|suffix| {
            sample
                .metric
                .strip_suffix(suffix)
                .is_some_and(|base| text.contains(&format!("# TYPE {base} histogram")))
        });
        assert!(
            histogram_part || !matches!(sample.value, prometheus_parse::Value::Untyped(_)),
            "{} is untyped",
            sample.metric
        );
    }
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap()
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn pages_are_one_snapshot_and_expire_with_compaction() {
    let s = server().await;
    for i in 1..=5 {
        let (code, _) = raw(
            &s,
            "POST",
            CMS,
            Some(json!({"metadata": {"name": format!("c{i}")}})),
        )
        .await;
        assert_eq!(code, 201);
    }
    let (_, body) = raw(&s, "GET", &format!("{CMS}?limit=2"), None).await;
    let first = json_of(&body);
    assert_eq!(names(&first), ["c1", "c2"]);
    let rv = first["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let token = first["metadata"]["continue"].as_str().unwrap().to_string();
    // Changes after the first page do not show in the later ones.
    raw(&s, "POST", CMS, Some(json!({"metadata": {"name": "c9"}}))).await;
    raw(&s, "DELETE", &format!("{CMS}/c4"), None).await;
    raw(
        &s,
        "PUT",
        &format!("{CMS}/c3"),
        Some(json!({"metadata": {"name": "c3"}, "data": {"new": "x"}})),
    )
    .await;
    let (_, body) = raw(&s, "GET", &format!("{CMS}?limit=2&continue={token}"), None).await;
    let second = json_of(&body);
    assert_eq!(names(&second), ["c3", "c4"]);
    assert_eq!(second["items"][0].get("data"), None, "c3 as it was");
    assert_eq!(second["metadata"]["resourceVersion"], rv.as_str());
    let token = second["metadata"]["continue"].as_str().unwrap().to_string();
    let (_, body) = raw(&s, "GET", &format!("{CMS}?limit=2&continue={token}"), None).await;
    let third = json_of(&body);
    assert_eq!(names(&third), ["c5"]);
    assert_eq!(third["metadata"].get("continue"), None);

    // resourceVersionMatch=Exact reads the same snapshot; NotOlderThan the newest.
    let (_, body) = raw(
        &s,
        "GET",
        &format!("{CMS}?resourceVersion={rv}&resourceVersionMatch=Exact"),
        None,
    )
    .await;
    assert_eq!(names(&json_of(&body)), ["c1", "c2", "c3", "c4", "c5"]);
    let (_, body) = raw(
        &s,
        "GET",
        &format!("{CMS}?resourceVersion={rv}&resourceVersionMatch=NotOlderThan"),
        None,
    )
    .await;
    assert_eq!(names(&json_of(&body)), ["c1", "c2", "c3", "c5", "c9"]);
    for bad in [
        "resourceVersionMatch=Exact",
        "resourceVersion=0&resourceVersionMatch=Exact",
        "resourceVersion=1&resourceVersionMatch=Newest",
        "resourceVersion=x",
    ] {
        let (code, _) = raw(&s, "GET", &format!("{CMS}?{bad}"), None).await;
        assert_eq!(code, 400, "{bad}");
    }
    // (A resourceVersion from the future is 504 after a wait, which kube-rs
    // retries: store::tests covers it.)

    // Once the snapshot is compacted away, the token is 410 Expired.
    for i in 0..3 {
        raw(
            &s,
            "PUT",
            &format!("{CMS}/c1"),
            Some(json!({"metadata": {"name": "c1"}, "data": {"i": i.to_string()}})),
        )
        .await;
    }
    s.running.app.store.compact(1).await.unwrap();
    let (code, body) = raw(&s, "GET", &format!("{CMS}?limit=2&continue={token}"), None).await;
    assert_eq!(code, 410, "{body}");
    assert_eq!(json_of(&body)["reason"], "Expired");
}

#[tokio::test]
async fn unsupported_field_selectors_and_media_types_are_refused() {
    let s = server().await;
    let (code, body) = raw(&s, "GET", &format!("{CMS}?fieldSelector=data.k%3Dv"), None).await;
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("field label not supported: data.k"), "{body}");
    let (code, _) = raw(
        &s,
        "GET",
        &format!("{CMS}?fieldSelector=metadata.name%3Da"),
        None,
    )
    .await;
    assert_eq!(code, 200);
    let (code, _) = raw(
        &s,
        "GET",
        "/api/v1/pods?fieldSelector=status.phase%3DRunning",
        None,
    )
    .await;
    assert_eq!(code, 200);
    let cm = json!({"metadata": {"name": "a"}});
    for media in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/cbor",
    ] {
        let (code, body) = raw_as(&s, "POST", CMS, media, Some(cm.clone())).await;
        assert_eq!(code, 415, "{media}: {body}");
    }
    let (code, _) = raw_as(&s, "POST", CMS, "application/yaml", Some(cm.clone())).await;
    assert_eq!(code, 201);
}

#[tokio::test]
async fn watches_that_ask_get_periodic_bookmarks() {
    let s = server().await;
    let (_, body) = raw(
        &s,
        "GET",
        &format!("{CMS}?watch=1&allowWatchBookmarks=true&timeoutSeconds=7"),
        None,
    )
    .await;
    assert!(body.contains("\"type\":\"BOOKMARK\""), "{body}");
    let (_, body) = raw(&s, "GET", &format!("{CMS}?watch=1&timeoutSeconds=6"), None).await;
    assert!(!body.contains("BOOKMARK"), "{body}");
}

/// A client that presents a token minted for `identity`.
async fn client_as(s: &Server, identity: &ferry_apiserver::Identity) -> Client {
    let dir = s.running.admin_kubeconfig.parent().unwrap().to_path_buf();
    let token = ferry_apiserver::create_token(&dir, identity).unwrap();
    let mut kc = Kubeconfig::read_from(&s.running.admin_kubeconfig).unwrap();
    for user in &mut kc.auth_infos {
        if let Some(info) = user.auth_info.as_mut() {
            info.token = Some(token.clone().into());
        }
    }
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

#[tokio::test]
async fn whoami_and_can_i_answer_from_ferry_identities() {
    use k8s_openapi::api::authentication::v1::SelfSubjectReview;
    use k8s_openapi::api::authorization::v1::SelfSubjectAccessReview;

    let s = server().await;
    let cluster = client_as(&s, &ferry_apiserver::Identity::Cluster("east".into())).await;
    let joiner = client_as(&s, &ferry_apiserver::Identity::Joiner).await;
    for (client, name) in [
        (&s.client, "admin"),
        (&cluster, "cluster:east"),
        (&joiner, "joiner"),
    ] {
        let reviews: Api<SelfSubjectReview> = Api::all(client.clone());
        let me = reviews
            .create(&PostParams::default(), &SelfSubjectReview::default())
            .await
            .unwrap();
        let user = me.status.unwrap().user_info.unwrap();
        assert_eq!(user.username.as_deref(), Some(name));
    }
    let can_i = |client: &Client, verb: &str, resource: &str| {
        let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
        let review: SelfSubjectAccessReview = serde_json::from_value(json!({
            "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"verb": verb, "resource": resource, "namespace": "default"}},
        }))
        .unwrap();
        async move {
            let answer = api.create(&PostParams::default(), &review).await.unwrap();
            answer.status.unwrap().allowed
        }
    };
    assert!(can_i(&s.client, "*", "secrets").await);
    // Secrets hold credentials: only admin reads them.
    assert!(!can_i(&joiner, "list", "secrets").await);
    assert!(!can_i(&cluster, "get", "secrets").await);
    assert!(can_i(&joiner, "list", "configmaps").await);
    assert!(!can_i(&joiner, "create", "configmaps").await);
    assert!(can_i(&joiner, "create", "serviceaccounts").await);
    assert!(can_i(&cluster, "update", "configmaps").await);
    assert!(!can_i(&cluster, "*", "configmaps").await);
    let (code, _) = raw(
        &s,
        "GET",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        None,
    )
    .await;
    assert_eq!(code, 405);
}

/// A CRD serving two versions with one schema and no conversion webhook
/// (strategy `None`, as the MCS CRDs): an object written in either version
/// is stored in the storage version and read back in whichever version the
/// client asks for, only `apiVersion` differing — in get, list, watch and
/// the answers of writes, as kube-apiserver does.
#[tokio::test]
async fn two_version_crd_converts_by_api_version() {
    let s = server().await;
    let crds: Api<CustomResourceDefinition> = Api::all(s.client.clone());
    for crd in ferry_api::crds::all_crds() {
        crds.create(&PostParams::default(), &crd).await.unwrap();
    }
    let base = "/apis/multicluster.x-k8s.io";
    let path = |v: &str| format!("{base}/{v}/namespaces/default/serviceexports");
    eventually("both versions served", || async {
        raw(&s, "GET", &path("v1alpha1"), None).await.0 == 200
            && raw(&s, "GET", &path("v1beta1"), None).await.0 == 200
    })
    .await;
    // Written as v1alpha1 (no spec, as older ferry and Submariner's docs do).
    let old = json!({"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceExport",
        "metadata": {"name": "old"}});
    let (code, body) = raw(&s, "POST", &path("v1alpha1"), Some(old)).await;
    assert_eq!(code, 201, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["apiVersion"], "multicluster.x-k8s.io/v1alpha1");
    // Written as v1beta1 with the new fields.
    let new = json!({"apiVersion": "multicluster.x-k8s.io/v1beta1", "kind": "ServiceExport",
        "metadata": {"name": "new"}, "spec": {"exportedLabels": {"tier": "web"}}});
    let (code, body) = raw(&s, "POST", &path("v1beta1"), Some(new)).await;
    assert_eq!(code, 201, "{body}");
    for version in ["v1alpha1", "v1beta1"] {
        let want = format!("multicluster.x-k8s.io/{version}");
        for name in ["old", "new"] {
            let (code, body) = raw(&s, "GET", &format!("{}/{name}", path(version)), None).await;
            assert_eq!(code, 200, "{body}");
            let got: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(got["apiVersion"], want.as_str(), "{name} read as {version}");
        }
        let (_, body) = raw(&s, "GET", &path(version), None).await;
        let list: Value = serde_json::from_str(&body).unwrap();
        let items = list["items"].as_array().unwrap();
        assert_eq!(items.len(), 2);
        assert!(
            items.iter().all(|i| i["apiVersion"] == want.as_str()),
            "{list}"
        );
        let (_, body) = raw(
            &s,
            "GET",
            &format!("{}?watch=true&timeoutSeconds=1", path(version)),
            None,
        )
        .await;
        for line in body.lines() {
            let event: Value = serde_json::from_str(line).unwrap();
            assert_eq!(event["object"]["apiVersion"], want.as_str(), "{line}");
        }
        assert_eq!(body.lines().count(), 2, "{body}");
    }
    // The new fields read back through the old version too (one schema).
    let (_, body) = raw(&s, "GET", &format!("{}/new", path("v1alpha1")), None).await;
    let got: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(got["spec"]["exportedLabels"]["tier"], "web");
    // Typed v1beta1 clients read both.
    let typed: Api<ferry_api::ServiceExport> = Api::namespaced(s.client.clone(), "default");
    let all = typed.list(&Default::default()).await.unwrap();
    assert_eq!(all.items.len(), 2);
    // A patch through the old version applies to the stored object.
    let patch = json!({"metadata": {"labels": {"x": "y"}}});
    let (code, body) = raw_as(
        &s,
        "PATCH",
        &format!("{}/new", path("v1alpha1")),
        "application/merge-patch+json",
        Some(patch),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let got: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(got["apiVersion"], "multicluster.x-k8s.io/v1alpha1");
    assert_eq!(got["metadata"]["labels"]["x"], "y");
}
