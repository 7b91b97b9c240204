//! Server-side apply and field ownership (issue 21, point 5), over the
//! wire: `metadata.managedFields` kept on every write, 409 conflicts naming
//! the owner, `force`, removal of fields dropped from an applied
//! configuration, associative lists of built-ins and CRDs merged by key,
//! and an identical re-apply that writes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use http_body_util::BodyExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, Config, ResourceExt};
use serde_json::{Value, json};

struct Server {
    client: Client,
    _running: ferry_apiserver::RunningServer,
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
        _running: running,
        _dir: dir,
    }
}

/// One raw request: (status code, body parsed).
async fn raw(
    s: &Server,
    method: &str,
    uri: &str,
    content_type: &str,
    body: &Value,
) -> (u16, Value) {
    let req = http::Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", content_type)
        .body(kube::client::Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap();
    let resp = s.client.send(req).await.unwrap();
    let code = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

const CM: &str = "/api/v1/namespaces/default/configmaps";
const APPLY: &str = "application/apply-patch+yaml";

fn cm(data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": data})
}

fn apply_params(manager: &str, force: bool) -> PatchParams {
    let pp = PatchParams::apply(manager);
    if force { pp.force() } else { pp }
}

/// The `fieldsV1` of `manager`'s entry with `operation`.
fn owned(object: &impl ResourceExt, manager: &str, operation: &str) -> Option<Value> {
    object
        .managed_fields()
        .iter()
        .find(|e| {
            e.manager.as_deref() == Some(manager) && e.operation.as_deref() == Some(operation)
        })
        .and_then(|e| e.fields_v1.as_ref())
        .map(|f| f.0.clone())
}

#[tokio::test]
async fn apply_owns_fields_conflicts_forces_and_prunes() {
    let s = server().await;
    let api: Api<ConfigMap> = Api::default_namespaced(s.client.clone());
    let first = api
        .patch(
            "settings",
            &apply_params("alice", false),
            &Patch::Apply(cm(json!({"k": "v", "j": "1"}))),
        )
        .await
        .unwrap();
    assert_eq!(
        owned(&first, "alice", "Apply"),
        Some(json!({"f:data": {"f:j": {}, "f:k": {}}}))
    );
    let entry = &first.managed_fields()[0];
    assert_eq!(entry.api_version.as_deref(), Some("v1"));
    assert_eq!(entry.fields_type.as_deref(), Some("FieldsV1"));
    assert!(entry.time.is_some());

    // The same configuration again: nothing written.
    let again = api
        .patch(
            "settings",
            &apply_params("alice", false),
            &Patch::Apply(cm(json!({"k": "v", "j": "1"}))),
        )
        .await
        .unwrap();
    assert_eq!(again.resource_version(), first.resource_version());
    assert_eq!(again.managed_fields(), first.managed_fields());

    // Bob changes alice's field: 409 naming her and the field.
    let (code, status) = raw(
        &s,
        "PATCH",
        &format!("{CM}/settings?fieldManager=bob"),
        APPLY,
        &cm(json!({"k": "w"})),
    )
    .await;
    assert_eq!(code, 409, "{status}");
    assert_eq!(status["reason"], "Conflict");
    assert_eq!(
        status["message"],
        "Apply failed with 1 conflict: conflict with \"alice\": .data.k"
    );
    assert_eq!(
        status["details"]["causes"],
        json!([{"reason": "FieldManagerConflict", "message": "conflict with \"alice\"", "field": ".data.k"}])
    );
    let unchanged = api.get("settings").await.unwrap();
    assert_eq!(unchanged.resource_version(), first.resource_version());

    // Agreeing with alice is shared ownership; forcing takes the field.
    let shared = api
        .patch(
            "settings",
            &apply_params("carol", false),
            &Patch::Apply(cm(json!({"j": "1"}))),
        )
        .await
        .unwrap();
    assert_eq!(
        owned(&shared, "carol", "Apply"),
        Some(json!({"f:data": {"f:j": {}}}))
    );
    let forced = api
        .patch(
            "settings",
            &apply_params("bob", true),
            &Patch::Apply(cm(json!({"k": "w"}))),
        )
        .await
        .unwrap();
    assert_eq!(forced.data.as_ref().unwrap()["k"], "w");
    assert_eq!(
        owned(&forced, "alice", "Apply"),
        Some(json!({"f:data": {"f:j": {}}}))
    );
    assert_eq!(
        owned(&forced, "bob", "Apply"),
        Some(json!({"f:data": {"f:k": {}}}))
    );

    // Alice stops applying j: carol still owns it, so it stays. Then carol
    // drops it too, and it goes.
    let mut no_data = cm(json!({}));
    no_data.as_object_mut().unwrap().remove("data");
    let kept = api
        .patch(
            "settings",
            &apply_params("alice", false),
            &Patch::Apply(no_data.clone()),
        )
        .await
        .unwrap();
    assert_eq!(
        kept.data.as_ref().unwrap().get("j").map(String::as_str),
        Some("1")
    );
    let pruned = api
        .patch(
            "settings",
            &apply_params("carol", false),
            &Patch::Apply(no_data),
        )
        .await
        .unwrap();
    let data = pruned.data.unwrap();
    assert_eq!(data.get("j"), None);
    assert_eq!(data.get("k").map(String::as_str), Some("w"));
}

#[tokio::test]
async fn ordinary_writes_take_the_fields_they_change() {
    let s = server().await;
    let api: Api<ConfigMap> = Api::default_namespaced(s.client.clone());
    let pp = PostParams {
        field_manager: Some("creator".into()),
        ..PostParams::default()
    };
    let created: ConfigMap = serde_json::from_value(cm(json!({"k": "v"}))).unwrap();
    let created = api.create(&pp, &created).await.unwrap();
    assert_eq!(
        owned(&created, "creator", "Update"),
        Some(json!({"f:data": {".": {}, "f:k": {}}}))
    );
    // A merge patch by an editor takes k; the applier then conflicts with
    // the editor, named with its API version.
    let pp = PatchParams {
        field_manager: Some("editor".into()),
        ..PatchParams::default()
    };
    let edited = api
        .patch(
            "settings",
            &pp,
            &Patch::Merge(json!({"data": {"k": "edited"}})),
        )
        .await
        .unwrap();
    assert_eq!(
        owned(&edited, "editor", "Update"),
        Some(json!({"f:data": {"f:k": {}}}))
    );
    // The creator keeps `data` itself, which it brought into being.
    assert_eq!(
        owned(&edited, "creator", "Update"),
        Some(json!({"f:data": {}}))
    );
    let err = api
        .patch(
            "settings",
            &apply_params("alice", false),
            &Patch::Apply(cm(json!({"k": "v"}))),
        )
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("{err}")
    };
    assert_eq!(status.code, 409);
    assert_eq!(
        status.message,
        "Apply failed with 1 conflict: conflict with \"editor\" using v1: .data.k"
    );

    // A PUT of the object as it is writes nothing.
    let replaced = api
        .replace("settings", &PostParams::default(), &edited)
        .await
        .unwrap();
    assert_eq!(replaced.resource_version(), edited.resource_version());

    // Apply must name its manager; only apply may force.
    let (code, status) = raw(
        &s,
        "PATCH",
        &format!("{CM}/settings"),
        APPLY,
        &cm(json!({})),
    )
    .await;
    assert_eq!(code, 422, "{status}");
    assert_eq!(
        status["message"],
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
    );
    let (code, status) = raw(
        &s,
        "PATCH",
        &format!("{CM}/settings?fieldManager=x&force=true"),
        "application/merge-patch+json",
        &json!({}),
    )
    .await;
    assert_eq!(code, 422, "{status}");
    assert_eq!(status["details"]["causes"][0]["field"], "force");
}

#[tokio::test]
async fn identical_reapply_fires_no_watch_event() {
    let s = server().await;
    let api: Api<ConfigMap> = Api::default_namespaced(s.client.clone());
    let first = api
        .patch(
            "settings",
            &apply_params("alice", false),
            &Patch::Apply(cm(json!({"k": "v"}))),
        )
        .await
        .unwrap();
    let rv = first.resource_version().unwrap();
    for _ in 0..3 {
        api.patch(
            "settings",
            &apply_params("alice", false),
            &Patch::Apply(cm(json!({"k": "v"}))),
        )
        .await
        .unwrap();
    }
    let changed = api
        .patch(
            "settings",
            &apply_params("alice", false),
            &Patch::Apply(cm(json!({"k": "w"}))),
        )
        .await
        .unwrap();
    // Everything after the first apply, from history: only the change.
    let req = http::Request::builder()
        .uri(format!(
            "{CM}?watch=true&resourceVersion={rv}&timeoutSeconds=1"
        ))
        .body(kube::client::Body::empty())
        .unwrap();
    let resp = s.client.send(req).await.unwrap();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let events: Vec<Value> = String::from_utf8_lossy(&bytes)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|e: &Value| e["type"] != "BOOKMARK")
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "MODIFIED");
    assert_eq!(
        events[0]["object"]["metadata"]["resourceVersion"],
        changed.resource_version().unwrap()
    );
}

#[tokio::test]
async fn containers_merge_by_name_between_managers() {
    let s = server().await;
    let api: Api<Deployment> = Api::default_namespaced(s.client.clone());
    let deployment = |containers: Value| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": containers}}}})
    };
    api.patch(
        "web",
        &apply_params("alice", false),
        &Patch::Apply(deployment(json!([{"name": "web", "image": "nginx:1",
            "ports": [{"containerPort": 80}]}]))),
    )
    .await
    .unwrap();
    let both = api
        .patch(
            "web",
            &apply_params("mesh", false),
            &Patch::Apply(deployment(json!([{"name": "proxy", "image": "envoy"}]))),
        )
        .await
        .unwrap();
    let names: Vec<String> = both
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers
        .iter()
        .map(|c| c.name.clone())
        .collect();
    assert_eq!(names, ["web", "proxy"]);
    let alice = owned(&both, "alice", "Apply").unwrap();
    assert!(
        alice.pointer("/f:spec/f:template/f:spec/f:containers/k:{\"name\":\"web\"}/f:ports/k:{\"containerPort\":80,\"protocol\":\"TCP\"}")
            .is_some(),
        "{alice}"
    );
    // Mesh changing web's image conflicts with alice.
    let err = api
        .patch(
            "web",
            &apply_params("mesh", false),
            &Patch::Apply(deployment(json!([{"name": "proxy", "image": "envoy"},
                {"name": "web", "image": "nginx:2"}]))),
        )
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("{err}")
    };
    assert!(
        status
            .message
            .contains(".spec.template.spec.containers[name=\"web\"].image"),
        "{}",
        status.message
    );
}

#[tokio::test]
async fn crd_list_map_keys_and_sets_drive_the_merge() {
    let s = server().await;
    let crds: Api<CustomResourceDefinition> = Api::all(s.client.clone());
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {
                        "ports": {"type": "array", "x-kubernetes-list-type": "map",
                            "x-kubernetes-list-map-keys": ["name"],
                            "items": {"type": "object", "required": ["name"], "properties": {
                                "name": {"type": "string"}, "port": {"type": "integer"}}}},
                        "tags": {"type": "array", "x-kubernetes-list-type": "set",
                            "items": {"type": "string"}}}}}}}}]}}))
    .unwrap();
    crds.create(&PostParams::default(), &crd).await.unwrap();
    let gvk = GroupVersionKind::gvk("example.com", "v1", "Gadget");
    let api: Api<DynamicObject> =
        Api::default_namespaced_with(s.client.clone(), &ApiResource::from_gvk(&gvk));
    let gadget = |spec: Value| json!({"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g"}, "spec": spec});
    api.patch(
        "g",
        &apply_params("alice", false),
        &Patch::Apply(gadget(
            json!({"ports": [{"name": "http", "port": 80}], "tags": ["a"]}),
        )),
    )
    .await
    .unwrap();
    let both = api
        .patch(
            "g",
            &apply_params("bob", false),
            &Patch::Apply(gadget(
                json!({"ports": [{"name": "dns", "port": 53}], "tags": ["b"]}),
            )),
        )
        .await
        .unwrap();
    assert_eq!(
        both.data["spec"],
        json!({"ports": [{"name": "http", "port": 80}, {"name": "dns", "port": 53}], "tags": ["a", "b"]})
    );
    // Alice drops her port and tag: only bob's remain.
    let pruned = api
        .patch(
            "g",
            &apply_params("alice", false),
            &Patch::Apply(gadget(json!({}))),
        )
        .await
        .unwrap();
    assert_eq!(
        pruned.data["spec"],
        json!({"ports": [{"name": "dns", "port": 53}], "tags": ["b"]})
    );
    assert_eq!(
        owned(&pruned, "bob", "Apply"),
        Some(
            json!({"f:spec": {"f:ports": {"k:{\"name\":\"dns\"}": {".": {}, "f:name": {}, "f:port": {}}},
            "f:tags": {"v:\"b\"": {}}}})
        )
    );
}
