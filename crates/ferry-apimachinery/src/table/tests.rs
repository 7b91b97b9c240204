use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{Value, json};

use super::*;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap()
}

fn ago(seconds: i64) -> String {
    (now() - Duration::seconds(seconds)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Prints rows the way kubectl's table printer does (upper-case headers,
/// columns padded to width + 3, null cells as `<none>`), so snapshots read
/// like terminal output. `wide` includes priority > 0 columns.
fn render(printer: &TablePrinter, objects: &[Value], wide: bool) -> String {
    let columns = printer.column_definitions();
    let columns = columns.as_array().unwrap();
    let shown: Vec<usize> = (0..columns.len())
        .filter(|&i| wide || columns[i]["priority"] == 0)
        .collect();
    let mut grid: Vec<Vec<String>> = vec![
        shown
            .iter()
            .map(|&i| columns[i]["name"].as_str().unwrap().to_uppercase())
            .collect(),
    ];
    for obj in objects {
        let cells = printer.row_cells(obj, now());
        assert_eq!(cells.len(), columns.len(), "one cell per column for {obj}");
        grid.push(
            shown
                .iter()
                .map(|&i| match &cells[i] {
                    Value::Null => "<none>".to_string(),
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect(),
        );
    }
    let widths: Vec<usize> = (0..shown.len())
        .map(|c| {
            grid.iter()
                .map(|row| row[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in grid {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(line.join("   ").trim_end());
        out.push('\n');
    }
    out
}

#[test]
fn human_age_matches_kubectl() {
    let cases = [
        (-5, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (59, "59s"),
        (119, "119s"),
        (120, "2m"),
        (150, "2m30s"),
        (599, "9m59s"),
        (600, "10m"),
        (179 * 60 + 59, "179m"),
        (3 * 3600, "3h"),
        (5 * 3600 + 10 * 60, "5h10m"),
        (8 * 3600, "8h"),
        (47 * 3600, "47h"),
        (48 * 3600, "2d"),
        (3 * 86400 + 4 * 3600, "3d4h"),
        (8 * 86400, "8d"),
        (729 * 86400, "729d"),
        (730 * 86400, "2y"),
        (730 * 86400 + 45 * 86400, "2y45d"),
        (365 * 8 * 86400, "8y"),
        (365 * 20 * 86400, "20y"),
    ];
    for (seconds, expected) in cases {
        let created = now() - Duration::seconds(seconds);
        assert_eq!(human_age(created, now()), expected, "{seconds}s");
    }
}

#[test]
fn jsonpath_subset() {
    let obj = json!({
        "metadata": {"name": "x", "annotations": {"a.b/c": "dotted"}},
        "spec": {"ips": ["1.1.1.1", "2.2.2.2"], "ports": [{"port": 80}, {"port": 443}]},
        "status": {"conditions": [
            {"type": "Synced", "status": "False"},
            {"type": "Ready", "status": "True", "observedGeneration": 3}
        ]}
    });
    assert_eq!(jsonpath(&obj, ".metadata.name"), Some(json!("x")));
    assert_eq!(jsonpath(&obj, "{.metadata.name}"), Some(json!("x")));
    assert_eq!(jsonpath(&obj, "$.metadata.name"), Some(json!("x")));
    assert_eq!(jsonpath(&obj, "metadata.name"), Some(json!("x")));
    assert_eq!(
        jsonpath(&obj, ".metadata.annotations['a.b/c']"),
        Some(json!("dotted"))
    );
    assert_eq!(
        jsonpath(&obj, ".metadata.annotations[\"a.b/c\"]"),
        Some(json!("dotted"))
    );
    assert_eq!(
        jsonpath(&obj, ".spec.ips"),
        Some(json!(["1.1.1.1", "2.2.2.2"]))
    );
    assert_eq!(jsonpath(&obj, ".spec.ips[1]"), Some(json!("2.2.2.2")));
    assert_eq!(jsonpath(&obj, ".spec.ips[-1]"), Some(json!("2.2.2.2")));
    assert_eq!(jsonpath(&obj, ".spec.ips[5]"), None);
    assert_eq!(jsonpath(&obj, ".spec.ports[*].port"), Some(json!(80)));
    assert_eq!(
        table::jsonpath_all(&obj, ".spec.ports[*].port"),
        vec![json!(80), json!(443)]
    );
    assert_eq!(
        jsonpath(&obj, ".status.conditions[?(@.type==\"Ready\")].status"),
        Some(json!("True"))
    );
    assert_eq!(
        jsonpath(&obj, ".status.conditions[?(@.type=='Synced')].status"),
        Some(json!("False"))
    );
    assert_eq!(
        jsonpath(&obj, ".status.conditions[?(@.type != 'Synced')].type"),
        Some(json!("Ready"))
    );
    assert_eq!(
        jsonpath(&obj, ".status.conditions[?(@.observedGeneration>=3)].type"),
        Some(json!("Ready"))
    );
    assert_eq!(
        jsonpath(&obj, ".status.conditions[?(@.observedGeneration)].type"),
        Some(json!("Ready"))
    );
    assert_eq!(jsonpath(&obj, ".status.missing.deeper"), None);
    assert_eq!(jsonpath(&obj, "."), Some(obj.clone()));

    for bad in [
        ".a..b",
        ".a[",
        ".a[1:2]",
        "{.a",
        ".a[?(x)]",
        ".a.",
        ".a[?(@.b==)]",
    ] {
        let error = JsonPath::parse(bad).expect_err(bad);
        assert!(error.to_string().contains(&format!("{bad:?}")), "{error}");
        assert_eq!(jsonpath(&obj, bad), None);
    }
}

mod table {
    pub use super::super::jsonpath_all;
}

#[test]
fn default_columns_are_name_and_age() {
    let printer = TablePrinter::for_builtin("example.com", "widgets");
    let columns = printer.column_definitions();
    assert_eq!(columns[0]["name"], "Name");
    assert_eq!(columns[0]["format"], "name");
    assert_eq!(columns[0]["type"], "string");
    assert_eq!(columns[0]["priority"], 0);
    assert_eq!(columns[1]["name"], "Age");
    let obj = json!({"metadata": {"name": "w", "creationTimestamp": ago(150)}});
    assert_eq!(
        printer.row_cells(&obj, now()),
        vec![json!("w"), json!("2m30s")]
    );
    // No creationTimestamp: kubectl's `<unknown>`.
    assert_eq!(
        printer.row_cells(&json!({"metadata": {"name": "w"}}), now())[1],
        json!("<unknown>")
    );
}

#[test]
fn pods() {
    let running = json!({
        "metadata": {"name": "web-1", "creationTimestamp": ago(3600 * 5)},
        "spec": {"nodeName": "node-a", "containers": [{"name": "a"}, {"name": "b"}]},
        "status": {
            "phase": "Running",
            "podIP": "10.1.0.5",
            "podIPs": [{"ip": "10.1.0.5"}],
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [
                {"name": "a", "ready": true, "restartCount": 2, "state": {"running": {}},
                 "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(300)}}},
                {"name": "b", "ready": true, "restartCount": 0, "state": {"running": {}}}
            ]
        }
    });
    let crash_looping = json!({
        "metadata": {"name": "crashy", "creationTimestamp": ago(600)},
        "spec": {"containers": [{"name": "a"}]},
        "status": {"phase": "Running", "containerStatuses": [
            {"name": "a", "ready": false, "restartCount": 4, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
        ]}
    });
    let initializing = json!({
        "metadata": {"name": "init", "creationTimestamp": ago(30)},
        "spec": {"initContainers": [{"name": "i1"}, {"name": "i2"}], "containers": [{"name": "a"}],
                 "readinessGates": [{"conditionType": "example.com/gate"}]},
        "status": {"phase": "Pending", "initContainerStatuses": [
            {"name": "i1", "state": {"terminated": {"exitCode": 0}}},
            {"name": "i2", "state": {"running": {}}}
        ]}
    });
    let terminating = json!({
        "metadata": {"name": "going", "creationTimestamp": ago(86400 * 3), "deletionTimestamp": ago(1)},
        "spec": {"containers": [{"name": "a"}]},
        "status": {"phase": "Running"}
    });
    let completed = json!({
        "metadata": {"name": "job-x", "creationTimestamp": ago(7200)},
        "spec": {"containers": [{"name": "a"}]},
        "status": {"phase": "Succeeded", "containerStatuses": [
            {"name": "a", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
        ]}
    });
    let pending = json!({"metadata": {"name": "new", "creationTimestamp": ago(2)}, "spec": {"containers": [{"name": "a"}]}, "status": {"phase": "Pending"}});
    let pods = [
        running,
        crash_looping,
        initializing,
        terminating,
        completed,
        pending,
    ];
    let printer = TablePrinter::for_builtin("", "pods");
    insta::assert_snapshot!("pods", render(&printer, &pods, false));
    insta::assert_snapshot!("pods_wide", render(&printer, &pods, true));
}

#[test]
fn services_and_endpoint_slices() {
    let services = [
        json!({"metadata": {"name": "kubernetes", "creationTimestamp": ago(86400 * 10)},
               "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.1", "clusterIPs": ["10.96.0.1"],
                        "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]}}),
        json!({"metadata": {"name": "web", "creationTimestamp": ago(90)},
               "spec": {"type": "NodePort", "clusterIPs": ["10.96.4.7"], "selector": {"tier": "front", "app": "web"},
                        "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]}}),
        json!({"metadata": {"name": "lb", "creationTimestamp": ago(90)},
               "spec": {"type": "LoadBalancer", "clusterIPs": ["10.96.4.8"], "ports": [{"port": 80}]}}),
        json!({"metadata": {"name": "lb-ready", "creationTimestamp": ago(90)},
               "spec": {"type": "LoadBalancer", "clusterIPs": ["10.96.4.9"], "ports": [{"port": 80, "nodePort": 31000}]},
               "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}]}}}),
        json!({"metadata": {"name": "ext", "creationTimestamp": ago(90)},
               "spec": {"type": "ExternalName", "externalName": "example.com"}}),
        json!({"metadata": {"name": "headless", "creationTimestamp": ago(90)},
               "spec": {"clusterIP": "None", "clusterIPs": ["None"], "ports": [{"port": 5432}]}}),
    ];
    let printer = TablePrinter::for_builtin("", "services");
    insta::assert_snapshot!("services_wide", render(&printer, &services, true));

    let slices = [
        json!({"metadata": {"name": "web-abc12", "creationTimestamp": ago(90)}, "addressType": "IPv4",
        "ports": [{"name": "http", "port": 80, "protocol": "TCP"}, {"name": "metrics", "port": 9090}],
        "endpoints": [
            {"addresses": ["10.1.0.1"]}, {"addresses": ["10.1.0.2"]}, {"addresses": ["10.1.0.3"]},
            {"addresses": ["10.1.0.4"]}, {"addresses": ["10.1.0.5"]}
        ]}),
        json!({"metadata": {"name": "empty-xyz", "creationTimestamp": ago(90)}, "addressType": "IPv6", "endpoints": []}),
        json!({"metadata": {"name": "named-port", "creationTimestamp": ago(90)}, "addressType": "FQDN",
               "ports": [{"name": "dns"}, {}], "endpoints": [{"addresses": ["a.example.com"]}]}),
    ];
    let printer = TablePrinter::for_builtin("discovery.k8s.io", "endpointslices");
    insta::assert_snapshot!("endpointslices", render(&printer, &slices, false));
}

#[test]
fn nodes_namespaces_and_config() {
    let nodes = [
        json!({"metadata": {"name": "cp-1", "creationTimestamp": ago(86400 * 40),
                            "labels": {"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/etcd": "true"}},
               "status": {"conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
                          "addresses": [{"type": "InternalIP", "address": "192.0.2.10"}, {"type": "Hostname", "address": "cp-1"}],
                          "nodeInfo": {"kubeletVersion": "v1.33.1", "osImage": "Debian GNU/Linux 13", "kernelVersion": "6.12.0", "containerRuntimeVersion": "containerd://2.0.0"}}}),
        json!({"metadata": {"name": "worker", "creationTimestamp": ago(3600), "labels": {"kubernetes.io/role": "edge"}},
               "spec": {"unschedulable": true},
               "status": {"conditions": [{"type": "Ready", "status": "Unknown"}], "nodeInfo": {"kubeletVersion": "v1.33.1"}}}),
        json!({"metadata": {"name": "fresh", "creationTimestamp": ago(5)}}),
    ];
    insta::assert_snapshot!(
        "nodes_wide",
        render(&TablePrinter::for_builtin("", "nodes"), &nodes, true)
    );

    let namespaces = [
        json!({"metadata": {"name": "default", "creationTimestamp": ago(86400)}, "status": {"phase": "Active"}}),
        json!({"metadata": {"name": "old", "creationTimestamp": ago(86400)}, "status": {"phase": "Terminating"}}),
    ];
    let printer = TablePrinter::for_builtin("", "namespaces");
    assert_eq!(
        printer.row_cells(&namespaces[1], now()),
        vec![json!("old"), json!("Terminating"), json!("24h")]
    );

    let config_map = json!({"metadata": {"name": "cfg", "creationTimestamp": ago(60)}, "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}});
    assert_eq!(
        TablePrinter::for_builtin("", "configmaps").row_cells(&config_map, now()),
        vec![json!("cfg"), json!(3), json!("60s")]
    );
    let secret = json!({"metadata": {"name": "tok", "creationTimestamp": ago(60)}, "type": "kubernetes.io/service-account-token", "data": {"token": "eA=="}});
    assert_eq!(
        TablePrinter::for_builtin("", "secrets").row_cells(&secret, now()),
        vec![
            json!("tok"),
            json!("kubernetes.io/service-account-token"),
            json!(1),
            json!("60s")
        ]
    );
    let account = json!({"metadata": {"name": "default", "creationTimestamp": ago(60)}});
    assert_eq!(
        TablePrinter::for_builtin("", "serviceaccounts").row_cells(&account, now()),
        vec![json!("default"), json!(0), json!("60s")]
    );
    let lease = json!({"metadata": {"name": "ferry-leader", "creationTimestamp": ago(60)}, "spec": {"holderIdentity": "broker-0"}});
    assert_eq!(
        TablePrinter::for_builtin("coordination.k8s.io", "leases").row_cells(&lease, now()),
        vec![json!("ferry-leader"), json!("broker-0"), json!("60s")]
    );
}

#[test]
fn events() {
    let events = [
        json!({"metadata": {"name": "web-1.17a", "creationTimestamp": ago(400)}, "type": "Normal", "reason": "Scheduled",
               "involvedObject": {"kind": "Pod", "name": "web-1", "fieldPath": "spec.containers{web}"},
               "source": {"component": "default-scheduler"}, "message": "Successfully assigned default/web-1 to node-a\n",
               "firstTimestamp": ago(400), "lastTimestamp": ago(30), "count": 3}),
        json!({"metadata": {"name": "new-api.1", "creationTimestamp": ago(10)}, "type": "Warning", "reason": "Failed",
               "involvedObject": {"kind": "Node"}, "reportingComponent": "kubelet", "reportingInstance": "node-a",
               "message": "disk", "eventTime": "2025-06-01T11:59:50.123456Z"}),
        json!({"metadata": {"name": "series.1", "creationTimestamp": ago(900)}, "type": "Normal", "reason": "Pulled",
               "involvedObject": {"kind": "Pod", "name": "p"}, "message": "again", "firstTimestamp": ago(900),
               "series": {"count": 7, "lastObservedTime": "2025-06-01T11:58:00.000000Z"}}),
    ];
    let printer = TablePrinter::for_builtin("", "events");
    let columns = printer.column_definitions();
    let name_column = columns
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["format"] == "name")
        .unwrap();
    assert_eq!(name_column["name"], "Name");
    insta::assert_snapshot!("events_wide", render(&printer, &events, true));
}

#[test]
fn workloads_and_rbac() {
    let deployment = json!({
        "metadata": {"name": "web", "creationTimestamp": ago(7200)},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]}]},
                 "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}, {"name": "log", "image": "busybox"}]}}},
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}
    });
    insta::assert_snapshot!(
        "deployments_wide",
        render(
            &TablePrinter::for_builtin("apps", "deployments"),
            &[deployment],
            true
        )
    );

    let daemon_set = json!({
        "metadata": {"name": "agent", "creationTimestamp": ago(7200)},
        "spec": {"selector": {"matchLabels": {"app": "agent"}},
                 "template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"}, "containers": [{"name": "agent", "image": "ferry:dev"}]}}},
        "status": {"desiredNumberScheduled": 2, "currentNumberScheduled": 2, "numberReady": 1, "updatedNumberScheduled": 2, "numberAvailable": 1}
    });
    insta::assert_snapshot!(
        "daemonsets_wide",
        render(
            &TablePrinter::for_builtin("apps", "daemonsets"),
            &[daemon_set],
            true
        )
    );

    let role =
        json!({"metadata": {"name": "reader", "creationTimestamp": "2025-05-31T10:00:00.5+02:00"}});
    assert_eq!(
        TablePrinter::for_builtin("rbac.authorization.k8s.io", "roles").row_cells(&role, now()),
        vec![json!("reader"), json!("2025-05-31T08:00:00Z")]
    );
    let binding = json!({
        "metadata": {"name": "read", "creationTimestamp": ago(60)},
        "roleRef": {"kind": "Role", "name": "reader", "apiGroup": "rbac.authorization.k8s.io"},
        "subjects": [{"kind": "User", "name": "alice"}, {"kind": "User", "name": "bob"},
                     {"kind": "Group", "name": "devs"}, {"kind": "ServiceAccount", "name": "ferry", "namespace": "ferry-broker"}]
    });
    assert_eq!(
        TablePrinter::for_builtin("rbac.authorization.k8s.io", "rolebindings")
            .row_cells(&binding, now()),
        vec![
            json!("read"),
            json!("Role/reader"),
            json!("60s"),
            json!("alice, bob"),
            json!("devs"),
            json!("ferry-broker:ferry")
        ]
    );
    let crd_printer =
        TablePrinter::for_builtin("apiextensions.k8s.io", "customresourcedefinitions");
    assert_eq!(crd_printer.column_definitions()[1]["name"], "Created At");
    let crd = json!({"metadata": {"name": "serviceimports.multicluster.x-k8s.io", "creationTimestamp": "2025-01-02T03:04:05Z"}});
    assert_eq!(
        crd_printer.row_cells(&crd, now()),
        vec![
            json!("serviceimports.multicluster.x-k8s.io"),
            json!("2025-01-02T03:04:05Z")
        ]
    );
}

#[test]
fn crd_printer_columns() {
    // ServiceImport as ferry-api declares it: NAME TYPE IP AGE.
    let columns = [
        json!({"name": "Type", "type": "string", "description": "Type of the import", "jsonPath": ".spec.type"}),
        json!({"name": "IP", "type": "string", "jsonPath": ".spec.ips"}),
        json!({"name": "Ports", "type": "integer", "jsonPath": ".spec.ports[*].port", "priority": 1}),
        json!({"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status", "priority": 1}),
        json!({"name": "Weight", "type": "number", "jsonPath": ".spec.weight", "priority": 1}),
        json!({"name": "Exported", "type": "boolean", "jsonPath": ".status.exported", "priority": 1}),
        json!({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}),
    ];
    let printer = TablePrinter::from_crd_columns(&columns).unwrap();
    let definitions = printer.column_definitions();
    assert_eq!(definitions[0]["name"], "Name");
    assert_eq!(definitions[0]["format"], "name");
    assert_eq!(definitions[1]["description"], "Type of the import");
    assert_eq!(
        definitions[2]["description"],
        "Custom resource definition column (in JSONPath format): .spec.ips"
    );
    assert_eq!(definitions[3]["priority"], 1);

    let imports = [
        json!({"metadata": {"name": "nginx", "namespace": "ferry-broker", "creationTimestamp": ago(420)},
               "spec": {"type": "ClusterSetIP", "ips": ["11.96.112.197"], "ports": [{"port": 80}, {"port": 443}], "weight": 1.5},
               "status": {"exported": true, "conditions": [{"type": "Ready", "status": "True"}]}}),
        json!({"metadata": {"name": "pending", "creationTimestamp": ago(5)}, "spec": {"type": "Headless"}}),
        json!({"metadata": {"name": "bad-date", "creationTimestamp": "yesterday"}, "spec": {"type": 7, "weight": "heavy"}}),
    ];
    insta::assert_snapshot!("serviceimports_wide", render(&printer, &imports, true));
    let cells = printer.row_cells(&imports[0], now());
    assert_eq!(cells[2], json!("[\"11.96.112.197\"]"));
    assert_eq!(cells[3], json!(80));
    assert_eq!(cells[5], json!(1.5));
    assert_eq!(cells[6], json!(true));
    assert_eq!(cells[7], json!("7m"));
    let missing = printer.row_cells(&imports[1], now());
    assert_eq!(missing[2], Value::Null);
    assert_eq!(missing[3], Value::Null);
}

#[test]
fn crd_without_columns_gets_age() {
    let printer = TablePrinter::from_crd_columns(&[]).unwrap();
    let definitions = printer.column_definitions();
    assert_eq!(definitions[1]["name"], "Age");
    assert_eq!(definitions[1]["type"], "date");
    let obj = json!({"metadata": {"name": "c1", "creationTimestamp": ago(86400 * 3)}});
    assert_eq!(
        printer.row_cells(&obj, now()),
        vec![json!("c1"), json!("3d")]
    );
}

#[test]
fn bad_crd_columns_are_rejected() {
    for (column, needle) in [
        (json!({"type": "string", "jsonPath": ".a"}), "name must be"),
        (json!({"name": "X", "type": "string"}), "jsonPath must be"),
        (
            json!({"name": "X", "type": "string", "jsonPath": ".a[1:2]"}),
            "unsupported subscript",
        ),
        (
            json!({"name": "X", "type": "color", "jsonPath": ".a"}),
            "\"color\"",
        ),
        (
            json!({"name": "X", "type": "string", "jsonPath": ".a", "priority": "high"}),
            "priority",
        ),
    ] {
        let error = TablePrinter::from_crd_columns(std::slice::from_ref(&column)).unwrap_err();
        assert!(error.to_string().contains(needle), "{column}: {error}");
    }
}

#[test]
fn table_row_carries_partial_object_metadata() {
    let obj = json!({"metadata": {"name": "a", "namespace": "ns", "labels": {"x": "y"}, "creationTimestamp": ago(5)}, "data": {}});
    let row = TablePrinter::for_builtin("", "configmaps").row(&obj, now());
    assert_eq!(row["cells"], json!(["a", 0, "5s"]));
    assert_eq!(row["object"]["kind"], "PartialObjectMetadata");
    assert_eq!(row["object"]["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(row["object"]["metadata"]["labels"], json!({"x": "y"}));
}
