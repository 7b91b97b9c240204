//! `ferry uninstall` after a real `join`, against in-process API servers (a
//! broker and two clusters): the DaemonSets go first and uninstall waits for
//! their pods before touching the namespace and RBAC; this cluster's broker
//! objects go, the other cluster's stay; re-running is harmless; CRDs only
//! with `crds`; an unreachable broker stops it before anything it would need
//! to retry is gone.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Server, apply, cluster_broker_client, clusterset, eventually};
use ferry_api::{Cluster, ClusterProperty, Endpoint, ServiceExport, ServiceImport};
use ferry_ctl::uninstall::{self, Options};
use ferry_ctl::{Error, Target, explain_error};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Pod, Service, ServiceAccount};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::rbac::v1::ClusterRole;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{Value, json};

const STOCK_COREFILE: &str = ".:53 {\n    errors\n    forward . /etc/resolv.conf\n}\n";

/// Objects of cluster `id` on the broker, written with its own token.
async fn seed_broker(member: &Server, id: &str) {
    let b = cluster_broker_client(member).await;
    // Labelled as the agent labels them.
    let labels = json!({"ferry.dev/cluster": id, "multicluster.kubernetes.io/source-cluster": id,
        "multicluster.kubernetes.io/service-name": "nginx", "app.kubernetes.io/managed-by": "ferry",
        "endpointslice.kubernetes.io/managed-by": "agent.ferry.dev"});
    apply(
        &b,
        json!({"apiVersion": "ferry.dev/v1alpha1", "kind": "Endpoint",
            "metadata": {"name": format!("{id}-gw"), "namespace": "ferry-broker", "labels": {"ferry.dev/cluster": id}},
            "spec": {"clusterId": id, "hostname": "gw", "cableDriver": "wireguard", "privateIp": "198.18.0.9", "subnets": []}}),
    )
    .await;
    apply(
        &b,
        json!({"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceImport",
            "metadata": {"name": format!("nginx-web-{id}"), "namespace": "ferry-broker", "labels": labels},
            "spec": {"type": "ClusterSetIP", "ports": [{"port": 80, "protocol": "TCP"}]}}),
    )
    .await;
    apply(
        &b,
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": format!("nginx-web-{id}"), "namespace": "ferry-broker", "labels": labels},
            "addressType": "IPv4", "endpoints": []}),
    )
    .await;
}

async fn names<K>(api: &Api<K>) -> Vec<String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut v: Vec<String> = api
        .list_metadata(&ListParams::default())
        .await
        .map(|l| {
            l.items
                .into_iter()
                .filter_map(|o| o.metadata.name)
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// A pod of the ferry-gateway DaemonSet (owned by it, so garbage collection
/// deletes it with the DaemonSet) that holds a finalizer, like a daemon
/// still cleaning up its node.
async fn gateway_pod(c: &Client) {
    let ds: DaemonSet = Api::namespaced(c.clone(), "ferry-system")
        .get("ferry-gateway")
        .await
        .unwrap();
    apply(
        c,
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "ferry-gateway-x1", "namespace": "ferry-system",
                "labels": {"app.kubernetes.io/name": "ferry-gateway", "app.kubernetes.io/part-of": "ferry",
                    "app.kubernetes.io/managed-by": "ferry"},
                "finalizers": ["test.ferry.dev/node-cleanup"],
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "ferry-gateway",
                    "uid": ds.metadata.uid.unwrap(), "controller": true}]},
            "spec": {"nodeName": "east-gw", "containers": [{"name": "gateway", "image": "ferry:test"}]}}),
    )
    .await;
}

async fn release_pod(c: &Client) {
    let pods: Api<Pod> = Api::namespaced(c.clone(), "ferry-system");
    pods.patch(
        "ferry-gateway-x1",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn uninstall_removes_what_join_made_in_order() {
    let cs = clusterset(&["east", "west"]).await;
    let (east, west) = (&cs.members[0], &cs.members[1]);
    let c = east.client.clone();
    seed_broker(east, "east").await;
    seed_broker(west, "west").await;

    // What the agent and the user added around the join.
    apply(
        &c,
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "east-gw",
            "labels": {"ferry.dev/gateway": "true", "kubernetes.io/hostname": "east-gw"}}}),
    )
    .await;
    let corefile = ferry_deploy::coredns::ensure_forward_block(
        STOCK_COREFILE,
        &["clusterset.local".into()],
        "100.65.0.53",
    );
    apply(
        &c,
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "coredns", "namespace": "kube-system"}, "data": {"Corefile": corefile}}),
    )
    .await;
    apply(
        &c,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "web"}}),
    )
    .await;
    apply(
        &c,
        json!({"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceImport",
            "metadata": {"name": "nginx", "namespace": "web", "labels": {"app.kubernetes.io/managed-by": "ferry"}},
            "spec": {"type": "ClusterSetIP", "ports": [{"port": 80, "protocol": "TCP"}]}}),
    )
    .await;
    apply(
        &c,
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "nginx-west", "namespace": "web", "labels": {
                "endpointslice.kubernetes.io/managed-by": "agent.ferry.dev",
                "multicluster.kubernetes.io/service-name": "nginx",
                "multicluster.kubernetes.io/source-cluster": "west"}},
            "addressType": "IPv4", "endpoints": []}),
    )
    .await;
    apply(
        &c,
        json!({"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceExport",
            "metadata": {"name": "mine", "namespace": "web"}}),
    )
    .await;
    // The derived Service carrying nginx's ClusterSet IP, as the agent
    // labels it, and a user's Service that stays.
    for (name, labels) in [
        (
            "derived-0123456789abcdef",
            json!({"app.kubernetes.io/managed-by": "ferry",
                "multicluster.kubernetes.io/service-name": "nginx"}),
        ),
        ("mine", json!({"app": "mine"})),
    ] {
        apply(
            &c,
            json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": name, "namespace": "web", "labels": labels},
                "spec": {"ports": [{"port": 80, "protocol": "TCP"}]}}),
        )
        .await;
    }
    gateway_pod(&c).await;

    let t = Target::connect(&east.spec()).await.unwrap();
    let inst = uninstall::inspect(&t).await.unwrap();
    assert!(inst.found());
    assert_eq!(inst.cluster_id.as_deref(), Some("east"));
    assert_eq!(
        inst.broker.as_ref().unwrap().api_server_url,
        cs.info.api_server_url
    );

    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let run = {
        let (t, inst, lines) = (t.clone(), inst.clone(), lines.clone());
        tokio::spawn(async move {
            let progress = move |l: &str| lines.lock().unwrap().push(l.to_string());
            uninstall::uninstall(&t, &inst, &Options::default(), &progress).await
        })
    };

    // The DaemonSets go first; while a gateway pod is still cleaning up,
    // nothing it depends on (namespace, RBAC, broker objects) is touched.
    let daemonsets: Api<DaemonSet> = Api::namespaced(c.clone(), "ferry-system");
    eventually("the DaemonSets deleted", || {
        let daemonsets = daemonsets.clone();
        async move { names(&daemonsets).await.is_empty() }
    })
    .await;
    eventually("uninstall waiting for the pod", || {
        let lines = lines.clone();
        async move {
            lines
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.starts_with("waiting for 1 ferry pod(s)"))
        }
    })
    .await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "ferry-system");
    let pod = pods.get("ferry-gateway-x1").await.unwrap();
    assert!(
        pod.metadata.deletion_timestamp.is_some(),
        "the DaemonSet's pod is being deleted"
    );
    let namespaces: Api<Namespace> = Api::all(c.clone());
    assert!(namespaces.get_opt("ferry-system").await.unwrap().is_some());
    assert!(!names(&Api::<ClusterRole>::all(c.clone())).await.is_empty());
    let broker_clusters: Api<Cluster> = Api::namespaced(cs.broker.client.clone(), "ferry-broker");
    assert_eq!(names(&broker_clusters).await, ["east", "west"]);
    assert!(!run.is_finished());
    let waiting = lines
        .lock()
        .unwrap()
        .iter()
        .find(|l| l.starts_with("waiting"))
        .cloned()
        .unwrap();
    assert!(waiting.contains("ferry-gateway-x1 on east-gw"), "{waiting}");

    release_pod(&c).await;
    let report = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    report.check().unwrap();
    let all = lines.lock().unwrap().join("\n");
    assert!(all.contains("ferry's pods are gone"), "{all}");
    assert!(
        all.contains("removed 2 DaemonSets (ferry-gateway, ferry-route-agent)"),
        "{all}"
    );

    // Gone from the cluster.
    assert!(namespaces.get_opt("ferry-system").await.unwrap().is_none());
    assert!(names(&Api::<ClusterRole>::all(c.clone())).await.is_empty());
    let props: Api<ClusterProperty> = Api::all(c.clone());
    assert!(
        props
            .get_opt("cluster.clusterset.k8s.io")
            .await
            .unwrap()
            .is_none()
    );
    let node = Api::<Node>::all(c.clone()).get("east-gw").await.unwrap();
    let labels = node.metadata.labels.unwrap();
    assert!(
        !labels.contains_key("ferry.dev/gateway") && labels.contains_key("kubernetes.io/hostname")
    );
    let cm: ConfigMap = Api::namespaced(c.clone(), "kube-system")
        .get("coredns")
        .await
        .unwrap();
    assert_eq!(cm.data.unwrap()["Corefile"], STOCK_COREFILE);
    assert!(
        names(&Api::<ServiceImport>::namespaced(c.clone(), "web"))
            .await
            .is_empty()
    );
    assert!(
        names(&Api::<EndpointSlice>::namespaced(c.clone(), "web"))
            .await
            .is_empty()
    );
    // Kept: the user's ServiceExport and Service, and the CRDs.
    assert_eq!(
        names(&Api::<ServiceExport>::namespaced(c.clone(), "web")).await,
        ["mine"]
    );
    assert_eq!(
        names(&Api::<Service>::namespaced(c.clone(), "web")).await,
        ["mine"]
    );
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("kept 1 ServiceExport(s), which are yours: mine")),
        "{:?}",
        report.notes
    );
    let crds: Api<CustomResourceDefinition> = Api::all(c.clone());
    assert_eq!(names(&crds).await.len(), ferry_api::all_crds().len());

    // Gone from the broker: east's objects and identity; west's stay.
    let b = cs.broker.client.clone();
    assert_eq!(names(&broker_clusters).await, ["west"]);
    assert_eq!(
        names(&Api::<Endpoint>::namespaced(b.clone(), "ferry-broker")).await,
        ["west-gw"]
    );
    assert_eq!(
        names(&Api::<ServiceImport>::namespaced(b.clone(), "ferry-broker")).await,
        ["nginx-web-west"]
    );
    assert_eq!(
        names(&Api::<EndpointSlice>::namespaced(b.clone(), "ferry-broker")).await,
        ["nginx-web-west"]
    );
    let sas = names(&Api::<ServiceAccount>::namespaced(
        b.clone(),
        "ferry-broker",
    ))
    .await;
    assert!(
        sas.contains(&"cluster-west".to_string()) && !sas.contains(&"cluster-east".to_string()),
        "{sas:?}"
    );

    // West is untouched.
    assert!(
        Api::<Namespace>::all(west.client.clone())
            .get_opt("ferry-system")
            .await
            .unwrap()
            .is_some()
    );

    // Re-running finds nothing and removes nothing.
    let inst = uninstall::inspect(&t).await.unwrap();
    assert!(!inst.found());
    let again = uninstall::uninstall(&t, &inst, &Options::default(), &|_| {})
        .await
        .unwrap();
    assert!(again.removed.is_empty(), "{:?}", again.removed);

    // With --crds the CRDs (and the user's exports with them) go too.
    let opts = Options {
        crds: true,
        ..Options::default()
    };
    let last = uninstall::uninstall(&t, &inst, &opts, &|_| {})
        .await
        .unwrap();
    assert_eq!(last.removed.len(), 1, "{:?}", last.removed);
    eventually("CRDs deleted", || {
        let crds = crds.clone();
        async move { names(&crds).await.is_empty() }
    })
    .await;

    // The cluster can join again afterwards.
    ferry_ctl::install::join(&c, &cs.info, &common::join_options("east", 0))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stuck_pods_time_out_and_a_dead_broker_stops_before_the_secret_goes() {
    let mut cs = clusterset(&["east"]).await;
    let east = &cs.members[0];
    let c = east.client.clone();
    gateway_pod(&c).await;
    let t = Target::connect(&east.spec()).await.unwrap();
    let inst = uninstall::inspect(&t).await.unwrap();

    // The broker is gone: the workloads are removed, then it stops with a
    // clear error, keeping the Secret so a re-run can finish the job.
    cs.broker.stop().await;
    let opts = Options {
        pod_timeout: Duration::from_millis(800),
        ..Options::default()
    };
    let e = uninstall::uninstall(&t, &inst, &opts, &|_| {})
        .await
        .unwrap_err();
    assert!(matches!(e, Error::BrokerCleanup { .. }), "{e:?}");
    let x = explain_error(&e);
    assert!(
        x.message.starts_with(&format!(
            "cannot remove this cluster's objects from the broker at {}",
            cs.info.api_server_url
        )),
        "{}",
        x.message
    );
    assert!(x.message.ends_with("connection refused"), "{}", x.message);
    assert!(x.hint.unwrap().contains("--skip-broker"));
    let inst2 = uninstall::inspect(&t).await.unwrap();
    assert!(inst2.broker.is_some(), "the broker credentials are kept");
    assert!(
        names(&Api::<DaemonSet>::namespaced(c.clone(), "ferry-system"))
            .await
            .is_empty()
    );

    // --skip-broker finishes locally; the stuck pod makes it incomplete.
    let opts = Options {
        skip_broker: true,
        pod_timeout: Duration::from_millis(800),
        namespace_timeout: Duration::from_millis(800),
        ..Options::default()
    };
    let report = uninstall::uninstall(&t, &inst2, &opts, &|_| {})
        .await
        .unwrap();
    let e = report.check().unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("1 ferry pod(s) still present after 0.8s (ferry-gateway-x1 on east-gw)"),
        "{msg}"
    );
    assert!(
        msg.contains("namespace ferry-system is still terminating"),
        "{msg}"
    );
    assert!(report.notes.iter().any(|n| n.contains("--skip-broker")));
    assert!(names(&Api::<ClusterRole>::all(c.clone())).await.is_empty());
    release_pod(&c).await;
    let namespaces: Api<Namespace> = Api::all(c.clone());
    eventually("namespace gone once the pod is released", || {
        let namespaces = namespaces.clone();
        async move { namespaces.get_opt("ferry-system").await.unwrap().is_none() }
    })
    .await;
    let _ = Value::Null;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cluster_that_also_hosts_the_broker_keeps_the_broker_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let hub = Server::start(tmp.path().join("hub")).await;
    let spoke = Server::start(tmp.path().join("spoke")).await;
    let joiner =
        ferry_apiserver::create_token(&hub.dir, &ferry_apiserver::Identity::Joiner).unwrap();
    let info = ferry_ctl::install::deploy_broker(
        &hub.client,
        &kube::config::Kubeconfig::read_from(&hub.kubeconfig).unwrap(),
        &ferry_ctl::install::DeployBrokerOptions {
            namespace: "ferry-broker".into(),
            joiner_token: Some(joiner),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    ferry_ctl::install::join(&hub.client, &info, &common::join_options("hub", 0))
        .await
        .unwrap();
    ferry_ctl::install::join(&spoke.client, &info, &common::join_options("spoke", 1))
        .await
        .unwrap();
    seed_broker(&spoke, "spoke").await;

    // show: the broker's per-cluster ServiceImports are not the hub's imports.
    let report = ferry_ctl::show::show(&[hub.spec()], &[ferry_ctl::show::Section::Services]).await;
    report.check().unwrap();
    assert!(
        report.clusters[0]
            .view
            .services
            .as_ref()
            .unwrap()
            .imports
            .is_empty()
    );

    let t = Target::connect(&hub.spec()).await.unwrap();
    let inst = uninstall::inspect(&t).await.unwrap();
    let opts = Options {
        crds: true,
        ..Options::default()
    };
    let report = uninstall::uninstall(&t, &inst, &opts, &|_| {})
        .await
        .unwrap();
    let e = report.check().unwrap_err().to_string();
    assert!(
        e.contains("kept the CRDs: this cluster also hosts the broker"),
        "{e}"
    );
    let c = hub.client.clone();
    assert_eq!(
        names(&Api::<ServiceImport>::namespaced(c.clone(), "ferry-broker")).await,
        ["nginx-web-spoke"]
    );
    assert_eq!(
        names(&Api::<EndpointSlice>::namespaced(c.clone(), "ferry-broker")).await,
        ["nginx-web-spoke"]
    );
    assert_eq!(
        names(&Api::<Cluster>::namespaced(c.clone(), "ferry-broker")).await,
        ["spoke"]
    );
    let crds: Api<CustomResourceDefinition> = Api::all(c.clone());
    assert_eq!(names(&crds).await.len(), ferry_api::all_crds().len());
}
