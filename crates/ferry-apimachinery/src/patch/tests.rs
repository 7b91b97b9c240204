use serde_json::{Value, json};

use super::*;

fn smp(mut target: Value, patch: Value, group: &str, kind: &str) -> Value {
    strategic_merge_patch(&mut target, &patch, group, kind).unwrap();
    target
}

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": "nginx:1.25",
                            "ports": [{"containerPort": 80, "protocol": "TCP"}],
                            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
                        },
                        {"name": "sidecar", "image": "busybox:1.36", "args": ["sleep", "inf"]}
                    ],
                    "tolerations": [{"key": "k1", "operator": "Exists"}],
                    "volumes": [{"name": "data", "emptyDir": {}}]
                }
            }
        }
    })
}

// ---------------------------------------------------------------------------
// RFC 7386 / RFC 6902

#[test]
fn merge_patch_rfc7386_examples() {
    // The test vectors of RFC 7386 appendix A.
    let cases = [
        (json!({"a":"b"}), json!({"a":"c"}), json!({"a":"c"})),
        (json!({"a":"b"}), json!({"b":"c"}), json!({"a":"b","b":"c"})),
        (json!({"a":"b"}), json!({"a":null}), json!({})),
        (
            json!({"a":"b","b":"c"}),
            json!({"a":null}),
            json!({"b":"c"}),
        ),
        (json!({"a":["b"]}), json!({"a":"c"}), json!({"a":"c"})),
        (json!({"a":"c"}), json!({"a":["b"]}), json!({"a":["b"]})),
        (
            json!({"a":{"b":"c"}}),
            json!({"a":{"b":"d","c":null}}),
            json!({"a":{"b":"d"}}),
        ),
        (json!({"a":[{"b":"c"}]}), json!({"a":[1]}), json!({"a":[1]})),
        (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
        (json!({"a":"b"}), json!(["c"]), json!(["c"])),
        (json!({"a":"foo"}), json!(null), json!(null)),
        (json!({"a":"foo"}), json!("bar"), json!("bar")),
        (json!({"e":null}), json!({"a":1}), json!({"e":null,"a":1})),
        (json!([1, 2]), json!({"a":"b","c":null}), json!({"a":"b"})),
        (
            json!({}),
            json!({"a":{"bb":{"ccc":null}}}),
            json!({"a":{"bb":{}}}),
        ),
    ];
    for (mut target, patch, expected) in cases {
        merge_patch(&mut target, &patch);
        assert_eq!(target, expected, "patch {patch}");
    }
}

#[test]
fn json_patch_applies_and_reports_errors() {
    let mut object = json!({"metadata": {"labels": {"a": "b"}}, "spec": {"list": [1, 2]}});
    json_patch(
        &mut object,
        &json!([
            {"op": "add", "path": "/metadata/labels/c", "value": "d"},
            {"op": "remove", "path": "/metadata/labels/a"},
            {"op": "replace", "path": "/spec/list/0", "value": 9},
            {"op": "add", "path": "/spec/list/-", "value": 3},
            {"op": "test", "path": "/spec/list/1", "value": 2},
        ]),
    )
    .unwrap();
    assert_eq!(
        object,
        json!({"metadata": {"labels": {"c": "d"}}, "spec": {"list": [9, 2, 3]}})
    );

    let before = object.clone();
    let error = json_patch(
        &mut object,
        &json!([
            {"op": "add", "path": "/spec/x", "value": 1},
            {"op": "remove", "path": "/nope"},
        ]),
    )
    .unwrap_err();
    assert!(matches!(error, Error::InvalidJsonPatch { .. }), "{error}");
    assert_eq!(
        object, before,
        "failed patch must leave the object unchanged"
    );

    let error = json_patch(&mut object, &json!({"op": "add"})).unwrap_err();
    assert!(
        error.to_string().contains("not a list of operations"),
        "{error}"
    );
}

// ---------------------------------------------------------------------------
// Strategic merge: what kubectl sends.

#[test]
fn kubectl_label_and_annotate() {
    let pod = json!({"kind": "Pod", "metadata": {"name": "p", "labels": {"x": "y"}}});
    let labelled = smp(pod, json!({"metadata": {"labels": {"a": "b"}}}), "", "Pod");
    insta::assert_json_snapshot!("kubectl_label", labelled);

    // `kubectl label pod p x-`
    let unlabelled = smp(
        labelled,
        json!({"metadata": {"labels": {"x": null}}}),
        "",
        "Pod",
    );
    assert_eq!(unlabelled["metadata"]["labels"], json!({"a": "b"}));

    // `kubectl annotate pod p note=hi` on an object without annotations
    let annotated = smp(
        unlabelled,
        json!({"metadata": {"annotations": {"note": "hi"}}}),
        "",
        "Pod",
    );
    assert_eq!(annotated["metadata"]["annotations"], json!({"note": "hi"}));
}

#[test]
fn apply_three_way_patch_with_set_element_order() {
    // kubectl apply after changing the web image and adding a third container.
    let patch = json!({
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}\n"}},
        "spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "web"}, {"name": "sidecar"}, {"name": "metrics"}],
            "containers": [
                {"image": "nginx:1.27", "name": "web"},
                {"image": "prom/exporter", "name": "metrics"}
            ]
        }}}
    });
    let patched = smp(deployment(), patch, "apps", "Deployment");
    insta::assert_json_snapshot!(
        "apply_set_element_order",
        patched["spec"]["template"]["spec"]["containers"]
    );
}

#[test]
fn apply_removes_container_with_patch_delete() {
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "web"}],
        "containers": [{"$patch": "delete", "name": "sidecar"}]
    }}}});
    let patched = smp(deployment(), patch, "apps", "Deployment");
    let names: Vec<&str> = patched["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web"]);
}

#[test]
fn apply_reorders_and_merges_nested_lists() {
    // Reorder containers, change an env var, drop another, add a port.
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "web"}],
        "containers": [{
            "name": "web",
            "$setElementOrder/env": [{"name": "B"}],
            "env": [{"$patch": "delete", "name": "A"}, {"name": "B", "value": "22"}],
            "$setElementOrder/ports": [{"containerPort": 80}, {"containerPort": 443}],
            "ports": [{"containerPort": 443, "protocol": "TCP"}]
        }]
    }}}});
    let patched = smp(deployment(), patch, "apps", "Deployment");
    insta::assert_json_snapshot!(
        "apply_nested_lists",
        patched["spec"]["template"]["spec"]["containers"]
    );
}

#[test]
fn new_list_items_without_order_go_first_like_kubernetes() {
    // The `kubectl patch` example of the Kubernetes docs: the added
    // container ends up before the existing one.
    let patch = json!({"spec": {"template": {"spec": {
        "containers": [{"name": "patch-demo-ctr-2", "image": "redis"}]
    }}}});
    let patched = smp(deployment(), patch, "apps", "Deployment");
    let names: Vec<&str> = patched["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["patch-demo-ctr-2", "web", "sidecar"]);
}

#[test]
fn atomic_lists_are_replaced() {
    let patch = json!({"spec": {"template": {"spec": {"tolerations": [{"key": "k2", "operator": "Exists"}]}}}});
    let patched = smp(deployment(), patch, "apps", "Deployment");
    assert_eq!(
        patched["spec"]["template"]["spec"]["tolerations"],
        json!([{"key": "k2", "operator": "Exists"}])
    );
    // Container args are atomic too.
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "args": ["true"]}]}}}});
    let patched = smp(deployment(), patch, "apps", "Deployment");
    assert_eq!(
        patched["spec"]["template"]["spec"]["containers"][1]["args"],
        json!(["true"])
    );
    assert_eq!(
        patched["spec"]["template"]["spec"]["containers"][1]["image"],
        json!("busybox:1.36")
    );
}

#[test]
fn retain_keys_clears_other_fields() {
    // kubectl apply switching a Deployment to Recreate.
    let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": null}}});
    let patched = smp(deployment(), patch, "apps", "Deployment");
    assert_eq!(patched["spec"]["strategy"], json!({"type": "Recreate"}));

    // A volume changing source: emptyDir is dropped, configMap kept.
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/volumes": [{"name": "data"}],
        "volumes": [{"$retainKeys": ["configMap", "name"], "name": "data", "configMap": {"name": "cfg"}}]
    }}}});
    let patched = smp(deployment(), patch, "apps", "Deployment");
    assert_eq!(
        patched["spec"]["template"]["spec"]["volumes"],
        json!([{"name": "data", "configMap": {"name": "cfg"}}])
    );
}

#[test]
fn patch_replace_and_delete_on_maps_and_lists() {
    let patch = json!({"metadata": {"labels": {"$patch": "replace", "only": "this"}}});
    let patched = smp(deployment(), patch, "apps", "Deployment");
    assert_eq!(patched["metadata"]["labels"], json!({"only": "this"}));

    let patch = json!({"spec": {"strategy": {"$patch": "delete"}}});
    let patched = smp(deployment(), patch, "apps", "Deployment");
    assert_eq!(patched["spec"]["strategy"], json!({}));

    let patch = json!({"spec": {"template": {"spec": {
        "containers": [{"name": "only", "image": "x"}, {"$patch": "replace"}]
    }}}});
    let patched = smp(deployment(), patch, "apps", "Deployment");
    assert_eq!(
        patched["spec"]["template"]["spec"]["containers"],
        json!([{"name": "only", "image": "x"}])
    );
}

#[test]
fn finalizers_merge_as_a_set_and_delete_from_primitive_list() {
    let object = json!({"metadata": {"name": "n", "finalizers": ["a", "b"]}});
    let patched = smp(
        object,
        json!({"metadata": {"finalizers": ["b", "c"]}}),
        "",
        "ConfigMap",
    );
    let finalizers: Vec<&str> = patched["metadata"]["finalizers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    let mut sorted = finalizers.clone();
    sorted.sort();
    assert_eq!(sorted, ["a", "b", "c"]);

    // kubectl apply dropping "a" from its configuration.
    let patch = json!({"metadata": {
        "$setElementOrder/finalizers": ["b", "c"],
        "$deleteFromPrimitiveList/finalizers": ["a"]
    }});
    let patched = smp(patched, patch, "", "ConfigMap");
    assert_eq!(patched["metadata"]["finalizers"], json!(["b", "c"]));

    // Removing the last finalizer with a merge patch-style null.
    let patched = smp(
        patched,
        json!({"metadata": {"finalizers": null}}),
        "",
        "ConfigMap",
    );
    assert!(patched["metadata"].get("finalizers").is_none());
}

#[test]
fn owner_references_merge_by_uid() {
    let object = json!({"metadata": {"ownerReferences": [{"uid": "1", "name": "a", "kind": "X", "apiVersion": "v1"}]}});
    let patch = json!({"metadata": {"ownerReferences": [{"uid": "2", "name": "b", "kind": "X", "apiVersion": "v1"}]}});
    let patched = smp(object, patch, "", "Secret");
    assert_eq!(
        patched["metadata"]["ownerReferences"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn service_ports_and_node_status_merge_by_key() {
    let service = json!({"spec": {"ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}], "selector": {"app": "web"}}});
    let patch = json!({"spec": {
        "$setElementOrder/ports": [{"port": 80}, {"port": 443}],
        "ports": [{"port": 80, "targetPort": 9090}, {"port": 443, "targetPort": 8443}],
        "selector": {"app": null, "tier": "front"}
    }});
    let patched = smp(service, patch, "", "Service");
    insta::assert_json_snapshot!("service_ports", patched);

    let node = json!({"status": {
        "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}, {"type": "Hostname", "address": "n1"}],
        "conditions": [{"type": "Ready", "status": "False", "reason": "Starting"}]
    }});
    let patch = json!({"status": {
        "addresses": [{"type": "InternalIP", "address": "10.0.0.2"}],
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]
    }});
    let patched = smp(node, patch, "", "Node");
    assert_eq!(
        patched["status"]["addresses"],
        json!([{"type": "InternalIP", "address": "10.0.0.2"}, {"type": "Hostname", "address": "n1"}])
    );
    assert_eq!(
        patched["status"]["conditions"],
        json!([{"type": "Ready", "status": "True", "reason": "KubeletReady"}])
    );
}

#[test]
fn nulls_and_unknown_directives_are_never_stored() {
    let patch = json!({
        "$foo": 1,
        "metadata": {"$bar": {"x": 1}, "labels": {"new": "v", "gone": null}},
        "spec": {"template": {"spec": {
            "containers": [{"name": "extra", "image": "x", "resources": null, "$weird": true, "env": [{"name": "A", "value": null}]}],
            "nodeSelector": {"disk": "ssd", "old": null}
        }}}
    });
    let patched = smp(
        json!({"metadata": {"name": "d"}}),
        patch,
        "apps",
        "Deployment",
    );
    insta::assert_json_snapshot!("cleaned_new_values", patched);
}

#[test]
fn custom_resources_fall_back_to_merge_patch() {
    let object = json!({"spec": {"ips": ["1.1.1.1", "2.2.2.2"], "ports": [{"port": 80}]}});
    let patch =
        json!({"spec": {"ips": ["3.3.3.3"], "ports": [{"port": 81}], "type": "ClusterSetIP"}});
    let patched = smp(object, patch, "multicluster.x-k8s.io", "ServiceImport");
    assert_eq!(
        patched,
        json!({"spec": {"ips": ["3.3.3.3"], "ports": [{"port": 81}], "type": "ClusterSetIP"}})
    );
    // A built-in kind name in another group is a custom resource too.
    assert!(!schema::is_builtin("example.com", "Pod"));
    assert!(schema::is_builtin("core", "Pod"));
}

#[test]
fn malformed_patches_are_rejected_and_leave_the_object_alone() {
    let original = deployment();
    for (patch, needle) in [
        (
            json!({"spec": {"template": {"spec": {"containers": [{"image": "no-name"}]}}}}),
            "merge key \"name\"",
        ),
        (
            json!({"spec": {"strategy": {"$patch": "explode"}}}),
            "unknown $patch directive",
        ),
        (
            json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "$patch": "merge"}]}}}}),
            "cannot yet",
        ),
        (
            json!({"spec": {"strategy": {"$retainKeys": "type"}}}),
            "$retainKeys",
        ),
        (
            json!({"spec": {"template": {"spec": {"containers": ["web"]}}}}),
            "objects merged by",
        ),
        (
            json!({"metadata": {"$setElementOrder/finalizers": "a"}}),
            "must be a list",
        ),
        (json!([1, 2]), "must be a JSON object"),
    ] {
        let mut target = original.clone();
        let error = strategic_merge_patch(&mut target, &patch, "apps", "Deployment").unwrap_err();
        assert!(error.to_string().contains(needle), "{patch}: {error}");
        assert_eq!(target, original);
    }
    let error = strategic_merge_patch(
        &mut deployment(),
        &json!({"spec": {"template": {"spec": {"containers": [{"image": "no-name"}]}}}}),
        "apps",
        "Deployment",
    )
    .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("\"spec.template.spec.containers\""),
        "{error}"
    );
}

#[test]
fn merge_keys_compare_numbers_by_value() {
    let pod = json!({"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80, "name": "http"}]}]}});
    let patch = json!({"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80.0, "protocol": "TCP"}]}]}});
    let patched = smp(pod, patch, "", "Pod");
    assert_eq!(
        patched["spec"]["containers"][0]["ports"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn failed_json_patch_after_a_move_leaves_the_target_unchanged() {
    // json-patch's own rollback panics on this sequence; ours must not.
    let mut target = serde_json::json!({"metadata": {"labels": {"a": "b"}}});
    let before = target.clone();
    let patch = serde_json::json!([
        {"op": "add", "path": "/metadata/labels/c", "value": "d"},
        {"op": "move", "from": "/metadata/labels", "path": "/moved"},
        {"op": "test", "path": "/nope", "value": 1}
    ]);
    assert!(super::json_patch(&mut target, &patch).is_err());
    assert_eq!(target, before);
}

#[test]
fn service_ports_of_one_number_and_two_protocols_stay_apart() {
    // A DNS Service (53/UDP and 53/TCP) applied again, unchanged: with
    // `port` alone as the key both patch ports merged into the first one.
    let dns = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "dns", "namespace": "default"},
        "spec": {"ports": [
            {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 5353},
            {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 5353}
        ]}
    });
    let again = smp(dns.clone(), dns.clone(), "", "Service");
    assert_eq!(again["spec"]["ports"], dns["spec"]["ports"]);

    // A patch naming a port without its protocol still merges by number.
    let renamed = smp(
        dns.clone(),
        json!({"spec": {"ports": [{"port": 53, "name": "domain"}]}}),
        "",
        "Service",
    );
    assert_eq!(renamed["spec"]["ports"][0]["name"], "domain");
    assert_eq!(renamed["spec"]["ports"][1]["name"], "dns-tcp");

    // Deleting the TCP port leaves the UDP one.
    let udp_only = smp(
        dns,
        json!({"spec": {"ports": [{"$patch": "delete", "port": 53, "protocol": "TCP"}]}}),
        "",
        "Service",
    );
    assert_eq!(
        udp_only["spec"]["ports"],
        json!([{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 5353}])
    );
}
