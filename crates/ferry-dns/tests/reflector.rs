//! The reflectors against a real (in-process) ferry API server: objects
//! written through kube-rs show up in, change, and leave the answers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use ferry_dns::metrics::Metrics;
use ferry_dns::{Answerer, AnswererConfig};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, Name, RecordType};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::json;

/// The two clusterset names the test asks for.
const WEB: &str = "web.demo.svc.clusterset.local.";
const API: &str = "api.demo.svc.clusterset.local.";

async fn client(dir: &std::path::Path) -> (Client, ferry_apiserver::RunningServer) {
    let config = ferry_apiserver::Config::new(dir, "127.0.0.1:0".parse().unwrap());
    let running = ferry_apiserver::start(config).await.unwrap();
    let client = ferry_kube::client_from_kubeconfig(Some(&running.admin_kubeconfig))
        .await
        .unwrap();
    (client, running)
}

/// Polls the answerer until `name`/A gives `want` (rcode and addresses).
async fn eventually(answerer: &Answerer, name: &str, rcode: ResponseCode, want: &[&str]) {
    let name = Name::from_ascii(name).unwrap();
    let mut last = String::new();
    for _ in 0..600 {
        let l = answerer.lookup(&name, RecordType::A, DNSClass::IN);
        let got: Vec<String> = l.answers.iter().map(|r| r.data.to_string()).collect();
        if l.rcode == rcode && got == want {
            return;
        }
        last = format!("{:?} {got:?}", l.rcode);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{name}: wanted {rcode:?} {want:?}, last saw {last}");
}

async fn create(client: &Client, v: serde_json::Value) {
    let obj: DynamicObject = serde_json::from_value(v.clone()).unwrap();
    let (group, version) = match v["apiVersion"].as_str().unwrap().split_once('/') {
        Some((g, ver)) => (g.to_string(), ver.to_string()),
        None => (String::new(), v["apiVersion"].as_str().unwrap().to_string()),
    };
    let kind = v["kind"].as_str().unwrap();
    let gvk = kube::api::GroupVersionKind::gvk(&group, &version, kind);
    let (ar, _) = kube::discovery::pinned_kind(client, &gvk).await.unwrap();
    let api: Api<DynamicObject> = match obj.metadata.namespace.as_deref() {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    };
    api.create(&PostParams::default(), &obj).await.unwrap();
}

fn slice(name: &str, svc: &str, cluster: &str, ip: &str) -> serde_json::Value {
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": "demo", "labels": {
            "multicluster.kubernetes.io/service-name": svc,
            "multicluster.kubernetes.io/source-cluster": cluster}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [ip], "conditions": {"ready": true}}]
    })
}

fn gateway_status(west: &str) -> serde_json::Value {
    json!({"status": {"haStatus": "active", "connections": [{
        "endpoint": "west-ep", "clusterId": "west", "cableDriver": "wireguard", "status": west,
        "latencyRtt": {"last": "1ms", "min": "1ms", "average": "1ms", "max": "1ms", "stdDev": "0s"}}]}})
}

/// Sets the status of gw-east's connection to west.
async fn set_west(gws: &Api<DynamicObject>, status: &str) {
    gws.patch_status(
        "gw-east",
        &PatchParams::default(),
        &Patch::Merge(gateway_status(status)),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflectors_follow_imports_slices_and_gateway_health() {
    let dir = tempfile::tempdir().unwrap();
    let (client, _running) = client(dir.path()).await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in ferry_api::all_crds() {
        crds.create(&PostParams::default(), &crd).await.unwrap();
    }
    for ns in ["demo", "ferry-system"] {
        create(
            &client,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        )
        .await;
    }

    let answerer = Arc::new(Answerer::new(AnswererConfig::default()).unwrap());
    let feed = tokio::spawn(ferry_dns::reflector::run(
        client.clone(),
        answerer.clone(),
        Arc::new(Metrics::new()),
        Some("east".into()),
    ));

    // A local service appears.
    create(&client, json!({
        "apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceImport",
        "metadata": {"name": "web", "namespace": "demo"},
        "spec": {"type": "ClusterSetIP", "ips": ["242.0.0.1"], "ports": [{"name": "http", "protocol": "TCP", "port": 80}]}
    })).await;
    create(&client, slice("web-east", "web", "east", "10.0.0.1")).await;
    eventually(&answerer, WEB, ResponseCode::NoError, &["242.0.0.1"]).await;

    // A remote-only service: answered once the gateway reports west connected.
    create(
        &client,
        json!({
            "apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceImport",
            "metadata": {"name": "api", "namespace": "demo"},
            "spec": {"type": "ClusterSetIP", "ports": []}
        }),
    )
    .await;
    create(&client, slice("api-west", "api", "west", "10.1.0.7")).await;
    eventually(&answerer, API, ResponseCode::NXDomain, &[]).await;
    create(
        &client,
        json!({
            "apiVersion": "ferry.dev/v1alpha1", "kind": "Gateway",
            "metadata": {"name": "gw-east", "namespace": "ferry-system"},
            "spec": {"clusterId": "east", "hostname": "node-1"}
        }),
    )
    .await;
    let gws: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "ferry-system",
        &kube::discovery::ApiResource::erase::<ferry_api::Gateway>(&()),
    );
    set_west(&gws, "connected").await;
    eventually(&answerer, API, ResponseCode::NoError, &["10.1.0.7"]).await;

    // The connection goes to error: gone.
    set_west(&gws, "error").await;
    eventually(&answerer, API, ResponseCode::NXDomain, &[]).await;

    // The import goes: gone.
    let sis: Api<ferry_api::ServiceImport> = Api::namespaced(client.clone(), "demo");
    sis.delete("web", &DeleteParams::default()).await.unwrap();
    eventually(&answerer, WEB, ResponseCode::NXDomain, &[]).await;

    feed.abort();
}
