//! `ferry show` against in-process API servers: a broker and two joined
//! clusters with their real agents, gateway status and service exports
//! seeded; several clusters at once by kubeconfig list and by context list;
//! an unreachable cluster and a cluster that never joined.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{Server, apply, clusterset, eventually, set_status};
use ferry_api::{ConnectionStatus, Gateway, HaStatus, ServiceImport};
use ferry_ctl::show::{self, Format, Section};
use ferry_ctl::{TargetSpec, target};
use kube::Api;
use serde_json::{Value, json};

fn rtt() -> Value {
    json!({"last": "800us", "min": "400us", "average": "700us", "max": "2ms", "stdDev": "150us"})
}

fn gateway_status(west: &str, message: &str) -> Value {
    json!({"haStatus": "active", "localEndpoint": "east-east-gw", "connections": [{
        "endpoint": "west-west-gw", "clusterId": "west", "cableDriver": "wireguard",
        "status": west, "statusMessage": message, "usingIp": "198.18.1.2", "usingNat": false,
        "latencyRtt": rtt()}]})
}

fn endpoint(id: &str, ip: &str, subnets: &[&str]) -> Value {
    json!({"apiVersion": "ferry.dev/v1alpha1", "kind": "Endpoint",
        "metadata": {"name": format!("{id}-{id}-gw"), "namespace": "ferry-system",
            "labels": {"ferry.dev/cluster": id}},
        "spec": {"clusterId": id, "hostname": format!("{id}-gw"), "cableDriver": "wireguard",
            "privateIp": ip, "subnets": subnets}})
}

/// A kubeconfig with both servers' admin kubeconfigs as contexts `east`
/// and `west`.
fn merged_kubeconfig(dir: &Path, servers: &[(&str, &Server)]) -> PathBuf {
    let mut clusters = Vec::new();
    let mut users = Vec::new();
    let mut contexts = Vec::new();
    for (name, s) in servers {
        let v: Value =
            serde_yaml_ng::from_str(&std::fs::read_to_string(&s.kubeconfig).unwrap()).unwrap();
        let mut c = v["clusters"][0].clone();
        c["name"] = json!(name);
        clusters.push(c);
        let mut u = v["users"][0].clone();
        u["name"] = json!(name);
        users.push(u);
        contexts.push(json!({"name": name, "context": {"cluster": name, "user": name}}));
    }
    let kc = json!({"apiVersion": "v1", "kind": "Config", "clusters": clusters,
        "users": users, "contexts": contexts, "current-context": servers[0].0});
    let path = dir.join("merged.kubeconfig");
    std::fs::write(&path, serde_yaml_ng::to_string(&kc).unwrap()).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn show_reads_every_section_from_real_clusters() {
    let mut cs = clusterset(&["east", "west"]).await;
    cs.start_agent(0).await;
    cs.start_agent(1).await;
    let (east, west) = (&cs.members[0], &cs.members[1]);
    let (e, w) = (east.client.clone(), west.client.clone());

    // Gateways: east-gw active and connected to west; east-node2 labelled
    // but silent. Each gateway's Endpoint goes through the agents.
    for node in ["east-gw", "east-node2"] {
        apply(
            &e,
            json!({"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": node, "labels": {"ferry.dev/gateway": "true"}}}),
        )
        .await;
    }
    apply(
        &e,
        json!({"apiVersion": "ferry.dev/v1alpha1", "kind": "Gateway",
            "metadata": {"name": "east-gw", "namespace": "ferry-system"},
            "spec": {"clusterId": "east", "hostname": "east-gw"}}),
    )
    .await;
    set_status::<Gateway>(
        &e,
        "ferry-system",
        "east-gw",
        gateway_status("connected", ""),
    )
    .await;
    apply(
        &e,
        endpoint("east", "198.18.0.2", &["100.64.0.0/16", "100.65.0.0/16"]),
    )
    .await;
    apply(
        &w,
        endpoint("west", "198.18.1.2", &["100.66.0.0/16", "100.67.0.0/16"]),
    )
    .await;

    // west exports nginx with one ready backend; east has the namespace.
    for c in [&e, &w] {
        apply(
            c,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "nginx-test"}}),
        )
        .await;
    }
    apply(
        &w,
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "nginx", "namespace": "nginx-test"},
            "spec": {"clusterIP": "100.67.0.10", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}}),
    )
    .await;
    apply(
        &w,
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "nginx-abc", "namespace": "nginx-test",
                "labels": {"kubernetes.io/service-name": "nginx"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["100.66.1.5"], "conditions": {"ready": true}}],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}),
    )
    .await;
    apply(
        &w,
        json!({"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceExport",
            "metadata": {"name": "nginx", "namespace": "nginx-test"}}),
    )
    .await;

    let imports: Api<ServiceImport> = Api::namespaced(e.clone(), "nginx-test");
    eventually("east imports nginx from west", || {
        let imports = imports.clone();
        async move {
            imports
                .get_opt("nginx")
                .await
                .ok()
                .flatten()
                .and_then(|i| i.status)
                .is_some_and(|s| s.clusters.iter().any(|c| c.cluster == "west"))
        }
    })
    .await;
    let es = east.spec();
    eventually("west's Endpoint and Cluster copied to east", || {
        let es = es.clone();
        async move {
            let r = show::show(
                &[es],
                &[Section::Endpoints, Section::Networks, Section::Services],
            )
            .await;
            let v = &r.clusters[0].view;
            v.endpoints.as_ref().is_some_and(|e| e.len() == 2)
                && v.networks.as_ref().is_some_and(|n| n.len() == 2)
                && v.services.as_ref().is_some_and(|s| {
                    s.imports
                        .first()
                        .is_some_and(|i| i.clusters.first().is_some_and(|c| c.endpoints == 1))
                })
        }
    })
    .await;

    let report = show::show(&[east.spec()], &Section::ALL).await;
    report.check().unwrap();
    let c = &report.clusters[0];
    assert_eq!(c.cluster_id.as_deref(), Some("east"));
    assert_eq!(c.server, east.url.trim_end_matches('/'));
    let v = &c.view;

    let conns = v.connections.as_ref().unwrap();
    assert_eq!(conns.len(), 1, "{conns:?}");
    assert_eq!(conns[0].cluster, "west");
    assert_eq!(conns[0].status, ConnectionStatus::Connected);
    assert_eq!(conns[0].remote_ip.as_deref(), Some("198.18.1.2"));
    assert_eq!(conns[0].subnets, ["100.66.0.0/16", "100.67.0.0/16"]);
    assert!(conns[0].latency_rtt.is_some());

    let eps = v.endpoints.as_ref().unwrap();
    assert_eq!(
        eps.iter()
            .map(|e| (e.cluster.as_str(), e.local))
            .collect::<Vec<_>>(),
        [("east", true), ("west", false)]
    );

    let gws = v.gateways.as_ref().unwrap();
    assert_eq!(gws.len(), 2, "{gws:?}");
    assert_eq!(gws[0].node, "east-gw");
    assert_eq!(gws[0].ha_status, Some(HaStatus::Active));
    assert_eq!(gws[0].summary, "all connections (1) are established");
    assert_eq!(gws[1].node, "east-node2");
    assert!(
        gws[1].summary.contains("no Gateway reported"),
        "{:?}",
        gws[1]
    );

    let nets = v.networks.as_ref().unwrap();
    assert_eq!(nets[0].cluster, "east");
    assert!(nets[0].local);
    assert_eq!(nets[1].cluster_cidrs, ["100.66.0.0/16"]);

    let svcs = v.services.as_ref().unwrap();
    assert_eq!(svcs.imports.len(), 1);
    let nginx = &svcs.imports[0];
    assert_eq!(
        (nginx.namespace.as_str(), nginx.name.as_str()),
        ("nginx-test", "nginx")
    );
    assert_eq!(nginx.ports, ["http:8080/TCP"]);
    assert_eq!(nginx.clusters.len(), 1);
    assert_eq!(nginx.clusters[0].cluster, "west");
    assert!(nginx.clusters[0].healthy, "{:?}", nginx.clusters[0]);
    assert!(svcs.exports.is_empty());

    let brokers = v.brokers.as_ref().unwrap();
    assert_eq!(brokers.len(), 1);
    assert_eq!(brokers[0].url, cs.info.api_server_url);
    assert_eq!(brokers[0].namespace, "ferry-broker");
    assert_eq!(brokers[0].cluster_id, "east");
    assert_eq!(brokers[0].cable_driver.as_deref(), Some("wireguard"));

    let versions = v.versions.as_ref().unwrap();
    let names: Vec<&str> = versions.iter().map(|r| r.component.as_str()).collect();
    assert_eq!(
        names,
        [
            "ferry-agent",
            "ferry-dns",
            "ferry-gateway",
            "ferry-route-agent"
        ]
    );
    assert!(
        versions
            .iter()
            .all(|r| r.repository == "ferry" && r.version == "test")
    );

    // Neither the table nor the JSON carries the broker token.
    let table = show::render(&report, Format::Table).unwrap();
    let json = show::render(&report, Format::Json).unwrap();
    let yaml = show::render(&report, Format::Yaml).unwrap();
    for out in [&table, &json, &yaml] {
        assert!(!out.contains(&cs.info.token), "{out}");
        assert!(!out.contains("BEGIN CERTIFICATE"), "{out}");
    }
    assert!(table.contains("Connections of east"), "{table}");
    assert!(table.contains("Imported services of east"), "{table}");
    let parsed: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        parsed["clusters"][0]["connections"][0]["latencyRtt"]["average"],
        "700µs"
    );

    // The cable to west goes down: the service is no longer healthy there.
    set_status::<Gateway>(
        &e,
        "ferry-system",
        "east-gw",
        gateway_status("error", "no reply for 1s"),
    )
    .await;
    let report = show::show(&[east.spec()], &[Section::Services, Section::Gateways]).await;
    let row = &report.clusters[0].view.services.as_ref().unwrap().imports[0].clusters[0];
    assert!(!row.healthy);
    assert_eq!(row.reason, "connection error: no reply for 1s");
    let gws = report.clusters[0].view.gateways.as_ref().unwrap();
    assert_eq!(
        gws[0].summary,
        "0 of 1 connections established (west error)"
    );

    // Several clusters: by kubeconfig list, with one unreachable.
    let dead = cs.tmp.path().join("dead.kubeconfig");
    let text = std::fs::read_to_string(&east.kubeconfig).unwrap();
    std::fs::write(&dead, text.replace(&east.url, "https://127.0.0.1:1")).unwrap();
    let specs = target::expand(
        &[
            east.kubeconfig.clone(),
            dead.clone(),
            west.kubeconfig.clone(),
        ],
        &[],
    )
    .unwrap();
    let report = show::show(&specs, &[Section::Networks]).await;
    assert_eq!(report.clusters.len(), 3);
    assert_eq!(report.clusters[0].cluster_id.as_deref(), Some("east"));
    assert_eq!(report.clusters[2].cluster_id.as_deref(), Some("west"));
    let err = report.clusters[1].error.as_deref().unwrap();
    assert!(
        err.contains("cannot reach")
            && err.contains("https://127.0.0.1:1")
            && err.contains("connection refused"),
        "{err}"
    );
    let table = show::render(&report, Format::Table).unwrap();
    assert_eq!(table.matches("✗ ").count(), 1, "{table}");
    assert!(table.contains("Networks of west"), "{table}");
    let e = report.check().unwrap_err();
    assert_eq!(e.to_string(), "1 of 3 clusters could not be shown");

    // By context list in one kubeconfig; an unknown context is one error line.
    let merged = merged_kubeconfig(cs.tmp.path(), &[("east", east), ("west", west)]);
    let specs = target::expand(
        std::slice::from_ref(&merged),
        &["west".into(), "east".into(), "north".into()],
    )
    .unwrap();
    let report = show::show(&specs, &[Section::Brokers]).await;
    let ids: Vec<Option<&str>> = report
        .clusters
        .iter()
        .map(|c| c.cluster_id.as_deref())
        .collect();
    assert_eq!(ids, [Some("west"), Some("east"), None]);
    assert_eq!(report.clusters[0].source, "context west");
    let err = report.clusters[2].error.as_deref().unwrap();
    assert!(
        err.contains("no context \"north\"") && err.contains("east, west"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_that_never_joined_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let lone = Server::start(tmp.path().join("lone")).await;
    let report = show::show(&[lone.spec()], &Section::ALL).await;
    let err = report.clusters[0].error.as_deref().unwrap();
    assert!(
        err.starts_with("ferry is not installed in kubeconfig "),
        "{err}"
    );
    assert!(report.check().is_err());
}

#[test]
fn target_lists() {
    let p = |s: &str| PathBuf::from(s);
    let specs = target::expand(&[p("a"), p("b")], &[]).unwrap();
    assert_eq!(
        specs.iter().map(TargetSpec::describe).collect::<Vec<_>>(),
        ["kubeconfig a", "kubeconfig b"]
    );
    let specs = target::expand(&[p("a")], &["x".into(), "y".into()]).unwrap();
    assert_eq!(
        specs[1],
        TargetSpec {
            kubeconfig: Some(p("a")),
            context: Some("y".into())
        }
    );
    let specs = target::expand(&[p("a"), p("b")], &["x".into()]).unwrap();
    assert_eq!(
        specs[1],
        TargetSpec {
            kubeconfig: Some(p("b")),
            context: Some("x".into())
        }
    );
    assert_eq!(target::expand(&[], &[]).unwrap(), [TargetSpec::default()]);
    let e = target::expand(&[p("a"), p("b")], &["x".into(), "y".into()]).unwrap_err();
    assert!(e.is_usage());
}
