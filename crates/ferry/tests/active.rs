//! `diagnose`, `verify`, `benchmark` and the probe helper through the built
//! binary, without a data plane: usage errors, unreachable and unjoined
//! clusters, a joined in-process cluster whose test pods never start (no
//! kubelet) — the checks fail with the reason and the pods are removed —
//! and `ferry tools probe serve|run` talking to each other on the loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{broker, client, dead_kubeconfig, ferry, ferry_async, start};

use std::process::{Command, Output};

use ferry_ctl::install::{self, JoinOptions};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn verify_and_benchmark_need_two_clusters() {
    let home = tempfile::tempdir().unwrap();
    let kc = home.path().join("one.kubeconfig");
    std::fs::write(&kc, "apiVersion: v1\nkind: Config\n").unwrap();
    for args in [
        &["verify", "--kubeconfig", kc.to_str().unwrap()][..],
        &["benchmark", "latency", "--kubeconfig", kc.to_str().unwrap()],
    ] {
        let out = ferry(home.path(), args);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("error: ") && stderr.contains("give two"),
            "{stderr}"
        );
        assert!(stderr.contains("hint: "), "{stderr}");
    }
    for args in [
        &["diagnose", "cni-plugin"][..],
        &["verify", "--only", "dns"],
        &["benchmark", "bandwidth"],
        &["diagnose", "--timeout", "soon"],
    ] {
        assert_eq!(ferry(home.path(), args).status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn diagnose_reports_an_unreachable_cluster_as_a_failure() {
    let home = tempfile::tempdir().unwrap();
    let kc = dead_kubeconfig(home.path());
    let out = ferry(
        home.path(),
        &["diagnose", "all", "--kubeconfig", kc.to_str().unwrap()],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("FAIL  cannot reach the cluster API")
            && stdout.contains("connection refused"),
        "{stdout}"
    );
    assert!(stdout.contains("hint: nothing listens there"), "{stdout}");
    assert!(
        stderr.starts_with("error: 1 of 1 checks failed"),
        "{stderr}"
    );
}

#[test]
fn probe_run_talks_to_probe_serve() {
    let home = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args([
            "tools",
            "probe",
            "serve",
            "--port",
            &port.to_string(),
            "--max-duration",
            "20s",
        ])
        .env("RUST_LOG", "off")
        .spawn()
        .unwrap();
    let tasks = json!([
        {"id": "udp", "kind": "echo", "target": format!("127.0.0.1:{port}"), "count": 3,
         "intervalMs": 10, "timeoutMs": 500, "size": 200},
        {"id": "tcp", "kind": "tcp", "target": format!("localhost:{port}"), "bytes": 4096, "timeoutMs": 3000},
        {"id": "bad", "kind": "echo", "target": "nowhere", "count": 1, "intervalMs": 1, "timeoutMs": 1},
    ])
    .to_string();
    // The server may need a moment to listen, on TCP and UDP (bound one
    // after the other: a run between the two sees TCP work and UDP refused).
    let mut report = serde_json::Value::Null;
    for _ in 0..50 {
        let out = ferry(
            home.path(),
            &["tools", "probe", "run", "--no-publish", "--tasks", &tasks],
        );
        assert!(out.status.success(), "{:?}", text(&out));
        report = serde_json::from_slice(&out.stdout).unwrap();
        if report["results"][1]["outcome"] == "tcp" && report["results"][0]["received"] == 3 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = server.kill();
    let _ = server.wait();
    let r = &report["results"];
    assert_eq!(r[0]["id"], "udp");
    assert_eq!(r[0]["received"], 3, "{report}");
    assert_eq!(r[1]["outcome"], "tcp", "{report}");
    assert_eq!(r[1]["echoed"], 4096, "{report}");
    assert_eq!(r[2]["outcome"], "error", "{report}");

    // Outside a pod, publishing the report is a usage error, with the
    // reason (after printing the report).
    let out = ferry(home.path(), &["tools", "probe", "run", "--tasks", "[]"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stdout.contains("\"results\":[]"), "{stdout}");
    assert!(stderr.contains("$POD_NAME is not set"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_pods_that_never_start_fail_the_checks_and_are_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let (_broker, info) = broker(tmp.path().join("broker")).await;
    let east = start(tmp.path().join("east")).await;
    let ec = client(&east.admin_kubeconfig).await;
    install::join(
        &ec,
        &info,
        &JoinOptions {
            cluster_id: "east".into(),
            cluster_cidrs: vec!["100.64.0.0/16".parse().unwrap()],
            service_cidrs: vec!["100.65.0.0/16".parse().unwrap()],
            cable_driver: None,
            gateway_node: None,
            image: "ferry:test".into(),
            gateway: Default::default(),
            globalnet: None,
            network_plugin: None,
        },
    )
    .await
    .unwrap();
    // A ready node, but nothing runs pods on it.
    let nodes: Api<Node> = Api::all(ec.clone());
    let node: Node = serde_json::from_value(json!({"metadata": {"name": "east-node1"}})).unwrap();
    nodes.create(&PostParams::default(), &node).await.unwrap();
    nodes
        .patch_status(
            "east-node1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}})),
        )
        .await
        .unwrap();
    let not_joined = start(tmp.path().join("new")).await;

    let kc = east.admin_kubeconfig.to_str().unwrap().to_string();
    let out = ferry_async(
        home,
        &["diagnose", "all", "--kubeconfig", &kc, "--timeout", "1s"],
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("Cluster east ("), "{stdout}");
    assert!(stdout.contains("PASS  k8s-version"), "{stdout}");
    assert!(
        stdout.contains("FAIL  deployment          Deployment ferry-system/ferry-agent: 0/1 ready"),
        "{stdout}"
    );
    assert!(
        stdout.contains("not running after 1s") || stdout.contains("no report after 1s"),
        "the pod's timeout is the reason: {stdout}"
    );
    assert!(
        stdout.contains("on east-node1"),
        "the pod ran on the ordinary node: {stdout}"
    );
    let pods: Api<Pod> = Api::namespaced(ec.clone(), "ferry-system");
    let left = pods
        .list(&ListParams::default().labels("app.kubernetes.io/name=ferry-probe"))
        .await
        .unwrap();
    assert!(left.items.is_empty(), "test pods left: {:?}", left.items);
    // The RBAC the pods report with stays (it is cheap and reused).
    let sa: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::namespaced(ec.clone(), "ferry-system");
    assert!(sa.get_opt("ferry-probe").await.unwrap().is_some());

    let nk = not_joined.admin_kubeconfig.to_str().unwrap().to_string();
    let out = ferry_async(home, &["diagnose", "connections", "--kubeconfig", &nk]).await;
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout.contains("FAIL  ferry is not installed"), "{stdout}");
    assert!(stdout.contains("hint: join the cluster first"), "{stdout}");
}
