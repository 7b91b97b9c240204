#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};

use super::*;

const MAIN: Scope = Scope::Main {
    status_subresource: false,
};

fn writer(manager: &str) -> Writer<'_> {
    Writer {
        manager,
        api_version: "v1",
        subresource: "",
        now: "2026-01-01T00:00:00Z",
    }
}

fn cm_type() -> Type<'static> {
    Type::of_resource("", "ConfigMap", None)
}

fn apply_cm(
    live: Option<&Value>,
    config: Value,
    manager: &str,
    force: bool,
) -> Result<Applied, Error> {
    let managed = live
        .map(|l| ManagedFields::of(l).unwrap())
        .unwrap_or_default();
    let mut out = apply(
        live,
        &config,
        managed,
        &writer(manager),
        force,
        cm_type(),
        MAIN,
    )?;
    out.managed.store_in(&mut out.object);
    Ok(out)
}

fn fields_of(object: &Value, manager: &str) -> Value {
    object["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["manager"] == manager)
        .map(|e| e["fieldsV1"].clone())
        .unwrap_or(Value::Null)
}

fn cm(data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": "a", "namespace": "ns"}, "data": data})
}

#[test]
fn fields_v1_keys_read_back_and_print_like_kubernetes() {
    let fields = json!({
        "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
        "f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {".": {}, "f:image": {}, "f:ports": {
            "k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}}}},
        "f:finalizers": {"v:\"a.b/c\"": {}},
    });
    let set = FieldSet::from_fields_v1(&fields).unwrap();
    assert_eq!(set.to_fields_v1(), fields);
    let printed: Vec<String> = set.paths().iter().map(|p| path_string(p)).collect();
    assert_eq!(
        printed,
        [
            ".finalizers[=\"a.b/c\"]",
            ".metadata.labels",
            ".metadata.labels.app",
            ".spec.containers[name=\"web\"]",
            ".spec.containers[name=\"web\"].image",
            ".spec.containers[name=\"web\"].ports[containerPort=80,protocol=\"TCP\"]",
            ".spec.containers[name=\"web\"].ports[containerPort=80,protocol=\"TCP\"].containerPort",
        ]
    );
    assert!(FieldSet::from_fields_v1(&json!({"x:1": {}})).is_ok());
    assert!(FieldSet::from_fields_v1(&json!({"k:{": {}})).is_err());
    assert!(FieldSet::from_fields_v1(&json!([])).is_err());
}

#[test]
fn a_deployment_apply_owns_its_fields_by_keys() {
    let ty = Type::of_resource("apps", "Deployment", None);
    let config = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx",
                    "ports": [{"containerPort": 80}],
                    "env": [{"name": "A", "value": "1"}]}],
                    "nodeSelector": {"disk": "ssd"}}}}});
    let out = apply(
        None,
        &config,
        ManagedFields::default(),
        &writer("kubectl"),
        false,
        ty,
        MAIN,
    )
    .unwrap();
    let list = out.managed.to_list();
    assert_eq!(list[0]["manager"], "kubectl");
    assert_eq!(list[0]["operation"], "Apply");
    assert_eq!(list[0]["fieldsType"], "FieldsV1");
    assert_eq!(
        list[0]["fieldsV1"],
        json!({
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {"f:replicas": {}, "f:selector": {}, "f:template": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {".": {},
                    "f:env": {"k:{\"name\":\"A\"}": {".": {}, "f:name": {}, "f:value": {}}},
                    "f:image": {}, "f:name": {},
                    "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}}},
                    "f:nodeSelector": {}}}}
        })
    );
    assert_eq!(out.object, config);
}

#[test]
fn identical_reapply_changes_nothing() {
    let first = apply_cm(None, cm(json!({"k": "v"})), "kubectl", false).unwrap();
    let again = apply_cm(Some(&first.object), cm(json!({"k": "v"})), "kubectl", false).unwrap();
    assert_eq!(again.object, first.object);
    assert_eq!(
        fields_of(&first.object, "kubectl"),
        json!({"f:data": {"f:k": {}}})
    );
}

#[test]
fn changing_a_field_another_applier_owns_conflicts_unless_forced() {
    let first = apply_cm(None, cm(json!({"k": "v", "j": "1"})), "alice", false).unwrap();
    let err = apply_cm(Some(&first.object), cm(json!({"k": "w"})), "bob", false).unwrap_err();
    let Error::ApplyConflict { conflicts } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        conflicts,
        &[Conflict {
            manager: "\"alice\"".into(),
            field: ".data.k".into(),
            path: vec![
                PathElement::Field("data".into()),
                PathElement::Field("k".into())
            ],
        }]
    );
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"alice\": .data.k"
    );
    // Forced: bob takes .data.k; alice keeps .data.j.
    let forced = apply_cm(Some(&first.object), cm(json!({"k": "w"})), "bob", true).unwrap();
    assert_eq!(forced.object["data"], json!({"k": "w", "j": "1"}));
    assert_eq!(
        fields_of(&forced.object, "alice"),
        json!({"f:data": {"f:j": {}}})
    );
    assert_eq!(
        fields_of(&forced.object, "bob"),
        json!({"f:data": {"f:k": {}}})
    );
}

#[test]
fn agreeing_values_are_owned_jointly_and_survive_one_owner_dropping_them() {
    let first = apply_cm(None, cm(json!({"k": "v", "j": "1"})), "alice", false).unwrap();
    let shared = apply_cm(Some(&first.object), cm(json!({"k": "v"})), "bob", false).unwrap();
    assert_eq!(
        fields_of(&shared.object, "alice"),
        json!({"f:data": {"f:j": {}, "f:k": {}}})
    );
    assert_eq!(
        fields_of(&shared.object, "bob"),
        json!({"f:data": {"f:k": {}}})
    );
    // Alice drops both: j goes, k stays (bob owns it).
    let mut no_data = cm(json!({}));
    no_data.as_object_mut().unwrap().remove("data");
    let dropped = apply_cm(Some(&shared.object), no_data, "alice", false).unwrap();
    assert_eq!(dropped.object["data"], json!({"k": "v"}));
    assert_eq!(fields_of(&dropped.object, "alice"), Value::Null);
}

#[test]
fn fields_dropped_from_the_configuration_are_removed() {
    let mut config = cm(json!({"k": "v", "j": "1"}));
    config["metadata"]["labels"] = json!({"a": "1", "b": "2"});
    let first = apply_cm(None, config, "alice", false).unwrap();
    let mut config = cm(json!({"k": "v"}));
    config["metadata"]["labels"] = json!({"a": "1"});
    let second = apply_cm(Some(&first.object), config, "alice", false).unwrap();
    assert_eq!(second.object["data"], json!({"k": "v"}));
    assert_eq!(second.object["metadata"]["labels"], json!({"a": "1"}));
    // Dropping every label removes the map; the name stays.
    let third = apply_cm(Some(&second.object), cm(json!({"k": "v"})), "alice", false).unwrap();
    assert!(third.object["metadata"].get("labels").is_none());
    assert_eq!(third.object["metadata"]["name"], "a");
}

#[test]
fn an_update_takes_fields_without_conflict_and_then_holds_them() {
    let ty = cm_type();
    let first = apply_cm(None, cm(json!({"k": "v"})), "alice", false).unwrap();
    let mut edited = first.object.clone();
    edited["data"]["k"] = json!("edited");
    edited["data"]["new"] = json!("x");
    let managed = update(
        Some(&first.object),
        &edited,
        ManagedFields::of(&first.object).unwrap(),
        &writer("kubectl-edit"),
        ty,
        MAIN,
    );
    managed.store_in(&mut edited);
    assert_eq!(
        fields_of(&edited, "kubectl-edit"),
        json!({"f:data": {"f:k": {}, "f:new": {}}})
    );
    assert_eq!(fields_of(&edited, "alice"), Value::Null);
    let entry = &edited["metadata"]["managedFields"][0];
    assert_eq!(entry["operation"], "Update");
    assert_eq!(entry["apiVersion"], "v1");
    assert_eq!(entry["time"], "2026-01-01T00:00:00Z");
    let err = apply_cm(Some(&edited), cm(json!({"k": "v"})), "alice", false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"kubectl-edit\" using v1: .data.k"
    );
}

#[test]
fn a_create_owns_everything_but_server_metadata() {
    let object = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "a", "namespace": "ns", "uid": "u", "resourceVersion": "5",
                     "creationTimestamp": "t", "labels": {"x": "y"}},
        "data": {"k": "v"}});
    let managed = update(
        None,
        &object,
        ManagedFields::default(),
        &writer("kubectl-create"),
        cm_type(),
        MAIN,
    );
    assert_eq!(
        managed.entries()[0].fields.to_fields_v1(),
        json!({"f:data": {".": {}, "f:k": {}}, "f:metadata": {"f:labels": {".": {}, "f:x": {}}}})
    );
    // An object nobody tracked stays untracked on update.
    let mut changed = object.clone();
    changed["data"]["k"] = json!("w");
    let untracked = update(
        Some(&object),
        &changed,
        ManagedFields::default(),
        &writer("x"),
        cm_type(),
        MAIN,
    );
    assert!(untracked.is_empty());
}

#[test]
fn the_first_apply_to_an_untracked_object_conflicts_with_what_was_there() {
    let live = cm(json!({"k": "v"}));
    let err = apply_cm(Some(&live), cm(json!({"k": "w"})), "alice", false).unwrap_err();
    assert!(
        err.to_string()
            .contains("conflict with \"before-first-apply\" using v1: .data.k"),
        "{err}"
    );
}

fn pod_type() -> Type<'static> {
    Type::of_resource("", "Pod", None)
}

fn pod(containers: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": containers}})
}

#[test]
fn associative_lists_merge_by_key_and_keep_other_managers_items() {
    let ty = pod_type();
    let first = apply(
        None,
        &pod(json!([{"name": "a", "image": "1"}, {"name": "b", "image": "1"}])),
        ManagedFields::default(),
        &writer("alice"),
        false,
        ty,
        MAIN,
    )
    .unwrap();
    let mut object = first.object.clone();
    first.managed.store_in(&mut object);
    // Bob adds a sidecar and sets b's image.
    let second = apply(
        Some(&object),
        &pod(json!([{"name": "side", "image": "s"}, {"name": "b", "image": "1"}])),
        first.managed.clone(),
        &writer("bob"),
        false,
        ty,
        MAIN,
    )
    .unwrap();
    let names: Vec<&str> = second.object["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "side", "b"]);
    let mut object = second.object.clone();
    second.managed.store_in(&mut object);
    // Alice drops a and b: a goes; b stays (bob applied it), side stays.
    let third = apply(
        Some(&object),
        &pod(json!([])),
        second.managed.clone(),
        &writer("alice"),
        false,
        ty,
        MAIN,
    )
    .unwrap();
    let names: Vec<&str> = third.object["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["side", "b"]);
    // Duplicated keys in a configuration are refused.
    let err = apply(
        None,
        &pod(json!([{"name": "a"}, {"name": "a"}])),
        ManagedFields::default(),
        &writer("alice"),
        false,
        ty,
        MAIN,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        ".spec.containers[name=\"a\"]: duplicate entries for key"
    );
}

#[test]
fn sets_merge_by_value_and_atomic_fields_replace() {
    let ty = pod_type();
    let live = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "finalizers": ["x"]},
        "spec": {"nodeSelector": {"a": "1", "b": "2"}, "tolerations": [{"key": "k"}]}});
    let managed = update(
        None,
        &live,
        ManagedFields::default(),
        &writer("creator"),
        ty,
        MAIN,
    );
    let config = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "finalizers": ["y"]},
        "spec": {"nodeSelector": {"c": "3"}}});
    let err = apply(
        Some(&live),
        &config,
        managed.clone(),
        &writer("alice"),
        false,
        ty,
        MAIN,
    )
    .unwrap_err();
    assert!(err.to_string().contains(".spec.nodeSelector"), "{err}");
    let out = apply(
        Some(&live),
        &config,
        managed,
        &writer("alice"),
        true,
        ty,
        MAIN,
    )
    .unwrap();
    assert_eq!(out.object["metadata"]["finalizers"], json!(["x", "y"]));
    assert_eq!(out.object["spec"]["nodeSelector"], json!({"c": "3"}));
    assert_eq!(out.object["spec"]["tolerations"], json!([{"key": "k"}]));
    let alice = out
        .managed
        .entries()
        .iter()
        .find(|e| e.manager == "alice")
        .unwrap();
    assert_eq!(
        alice.fields.to_fields_v1(),
        json!({"f:metadata": {"f:finalizers": {"v:\"y\"": {}}}, "f:spec": {"f:nodeSelector": {}}})
    );
}

#[test]
fn crd_schemas_declare_list_and_map_types() {
    let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "ports": {"type": "array", "x-kubernetes-list-type": "map",
                  "x-kubernetes-list-map-keys": ["port", "protocol"],
                  "items": {"type": "object", "properties": {
                      "port": {"type": "integer"}, "protocol": {"type": "string", "default": "TCP"}}}},
        "ips": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
        "selector": {"type": "object", "x-kubernetes-map-type": "atomic",
                     "additionalProperties": {"type": "string"}},
        "tags": {"type": "object", "additionalProperties": {"type": "object"}},
        "args": {"type": "array", "items": {"type": "string"}}}}}});
    let ty = Type::of_resource("example.com", "Thing", Some(&schema));
    let config = json!({"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "t"},
        "spec": {"ports": [{"port": 80}], "ips": ["1.1.1.1"], "selector": {"a": "b"},
                 "tags": {"x": {"y": 1}}, "args": ["-v"]}});
    let out = apply(
        None,
        &config,
        ManagedFields::default(),
        &writer("m"),
        false,
        ty,
        MAIN,
    )
    .unwrap();
    assert_eq!(
        out.managed.entries()[0].fields.to_fields_v1(),
        json!({"f:spec": {
            "f:args": {},
            "f:ips": {"v:\"1.1.1.1\"": {}},
            "f:ports": {"k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {}, "f:port": {}}},
            "f:selector": {},
            "f:tags": {"f:x": {".": {}, "f:y": {}}}}})
    );
}

#[test]
fn the_status_of_a_kind_with_a_status_subresource_is_not_owned_through_the_main_resource() {
    let ty = Type::of_resource("apps", "Deployment", None);
    let config = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"replicas": 1}, "status": {"replicas": 5}});
    let scope = Scope::Main {
        status_subresource: true,
    };
    let out = apply(
        None,
        &config,
        ManagedFields::default(),
        &writer("m"),
        false,
        ty,
        scope,
    )
    .unwrap();
    assert_eq!(
        out.managed.entries()[0].fields.to_fields_v1(),
        json!({"f:spec": {"f:replicas": {}}})
    );
    let status_writer = Writer {
        subresource: "status",
        ..writer("ctl")
    };
    let mut new = config.clone();
    new["spec"]["replicas"] = json!(3);
    new["status"]["replicas"] = json!(1);
    let managed = update(
        Some(&config),
        &new,
        out.managed,
        &status_writer,
        ty,
        Scope::Status,
    );
    let ctl = managed
        .entries()
        .iter()
        .find(|e| e.manager == "ctl")
        .unwrap();
    assert_eq!(ctl.subresource, "status");
    assert_eq!(
        ctl.fields.to_fields_v1(),
        json!({"f:status": {"f:replicas": {}}})
    );
}

#[test]
fn update_managers_past_the_cap_merge_into_ancient_changes() {
    let ty = cm_type();
    let mut object = cm(json!({}));
    let mut managed = update(
        None,
        &object,
        ManagedFields::default(),
        &writer("creator"),
        ty,
        MAIN,
    );
    for i in 0..12 {
        let mut next = object.clone();
        next["data"][format!("k{i}")] = json!("v");
        let name = format!("m{i:02}");
        let now = format!("2026-01-01T00:00:{i:02}Z");
        let w = Writer {
            manager: &name,
            now: &now,
            ..writer("")
        };
        managed = update(Some(&object), &next, managed, &w, ty, MAIN);
        object = next;
    }
    assert_eq!(managed.entries().len(), MAX_UPDATE_MANAGERS);
    let ancient = managed
        .entries()
        .iter()
        .find(|e| e.manager == ANCIENT_CHANGES)
        .unwrap();
    assert!(ancient.fields.has(&[
        PathElement::Field("data".into()),
        PathElement::Field("k0".into())
    ]));
}

#[test]
fn many_conflicts_are_listed_by_manager() {
    let conflicts = [
        Conflict {
            manager: "\"b\"".into(),
            field: ".x".into(),
            path: vec![],
        },
        Conflict {
            manager: "\"a\" using v1".into(),
            field: ".y".into(),
            path: vec![],
        },
        Conflict {
            manager: "\"b\"".into(),
            field: ".z".into(),
            path: vec![],
        },
    ];
    assert_eq!(
        conflicts_message(&conflicts),
        "Apply failed with 3 conflicts: conflicts with \"a\" using v1:\n- .y\nconflicts with \"b\":\n- .x\n- .z"
    );
}

#[test]
fn managed_fields_that_cannot_be_read_are_refused() {
    let bad = json!({"metadata": {"managedFields": [{"manager": "a", "fieldsType": "FieldsV2"}]}});
    assert!(matches!(
        ManagedFields::of(&bad),
        Err(Error::InvalidManagedFields { .. })
    ));
    let twice = json!({"metadata": {"managedFields": [
        {"manager": "a", "operation": "Apply"}, {"manager": "a", "operation": "Apply"}]}});
    assert!(ManagedFields::of(&twice).is_err());
    let config = json!({"metadata": {"name": "a", "managedFields": []}});
    assert!(
        apply(
            None,
            &config,
            ManagedFields::default(),
            &writer("a"),
            false,
            cm_type(),
            MAIN
        )
        .is_err()
    );
}
