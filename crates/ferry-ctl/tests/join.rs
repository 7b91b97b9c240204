//! `ferry join` against in-process `ferry apiserver`s: what it refuses
//! (changing nothing), what a re-run keeps, and the CoreDNS forward block.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Server, create, get};
use ferry_ctl::install::{self, JoinOptions};
use kube::api::Api;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_refuses_a_taken_id_and_overlapping_cidrs_and_a_rerun_keeps_the_token() {
    let cs = common::clusterset(&["a", "b"]).await;
    // join refuses a taken id and overlapping CIDRs, changing nothing.
    let tmp = tempfile::tempdir().unwrap();
    let other = Server::start(tmp.path().join("x")).await;
    let mut opts = JoinOptions {
        cluster_id: "a".into(),
        cluster_cidrs: vec!["100.120.0.0/16".parse().unwrap()],
        service_cidrs: vec![],
        cable_driver: None,
        gateway_node: None,
        image: "ferry:test".into(),
        gateway: Default::default(),
        globalnet: None,
        network_plugin: None,
    };
    let e = install::join(&other.client, &cs.info, &opts)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("taken"), "{e}");
    opts.cluster_id = "x".into();
    opts.cluster_cidrs = vec!["100.66.3.0/24".parse().unwrap()];
    let e = install::join(&other.client, &cs.info, &opts)
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("100.66.3.0/24") && e.to_string().contains("\"b\""),
        "{e}"
    );
    assert!(
        get::<k8s_openapi::api::core::v1::Secret>(&other.client, "ferry-system", "ferry-broker")
            .await
            .is_none(),
        "nothing applied"
    );
    // Re-running a join of a member is fine and changes nothing.
    let m = &cs.members[1];
    let secret_before: k8s_openapi::api::core::v1::Secret =
        get(&m.client, "ferry-system", "ferry-broker")
            .await
            .unwrap();
    // The options b joined with (100.66.0.0/16 pods, 100.67.0.0/16 services).
    let again = common::join_options("b", 1);
    let report = install::join(&m.client, &cs.info, &again).await.unwrap();
    assert!(report.rejoined);
    let secret_after: k8s_openapi::api::core::v1::Secret =
        get(&m.client, "ferry-system", "ferry-broker")
            .await
            .unwrap();
    assert_eq!(secret_before.data, secret_after.data, "same token kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_forwards_the_clusterset_zone_in_coredns() {
    let cs = common::clusterset(&[]).await;
    let tmp = tempfile::tempdir().unwrap();
    let c = Server::start(tmp.path().join("c")).await;
    let stock = ".:53 {\n    kubernetes cluster.local\n    forward . /etc/resolv.conf\n}\n";
    create(
        Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(c.client.clone(), "kube-system"),
        json!({"metadata": {"name": "coredns"}, "data": {"Corefile": stock}}),
    )
    .await;
    let opts = JoinOptions {
        cluster_id: "c".into(),
        cluster_cidrs: vec!["100.80.0.0/16".parse().unwrap()],
        service_cidrs: vec!["100.81.0.0/16".parse().unwrap()],
        cable_driver: None,
        gateway_node: None,
        image: "ferry:test".into(),
        gateway: Default::default(),
        globalnet: None,
        network_plugin: None,
    };
    // The API server gives ferry-dns its address at once: the first join
    // adds the block, re-runs keep it once.
    install::join(&c.client, &cs.info, &opts).await.unwrap();
    install::join(&c.client, &cs.info, &opts).await.unwrap();
    let corefile = |cm: k8s_openapi::api::core::v1::ConfigMap| cm.data.unwrap()["Corefile"].clone();
    let svcs: Api<k8s_openapi::api::core::v1::Service> =
        Api::namespaced(c.client.clone(), "ferry-system");
    let dns_ip = svcs
        .get("ferry-dns")
        .await
        .unwrap()
        .spec
        .unwrap()
        .cluster_ip
        .unwrap();
    let updated = corefile(get(&c.client, "kube-system", "coredns").await.unwrap());
    assert!(updated.starts_with(stock), "{updated}");
    assert_eq!(updated.matches("# BEGIN ferry").count(), 1, "{updated}");
    assert!(
        updated.contains("clusterset.local:53 {")
            && updated.contains(&format!("forward . {dns_ip}")),
        "{updated}"
    );
    assert_eq!(ferry_deploy::coredns::remove_forward_block(&updated), stock);
}
