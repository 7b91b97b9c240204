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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn globalnet_enable_on_a_joined_cluster_refuses_bad_input_and_changes_only_that_cluster() {
    use ferry_ctl::install::GlobalnetRequest;
    use ferry_ctl::install::globalnet::{GLOBAL_CIDRS_ANNOTATION, enable};
    use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
    use k8s_openapi::api::core::v1::Secret;

    let cs = common::clusterset(&["a", "b"]).await;
    let b = &cs.members[1];
    let secret = || get::<Secret>(&b.client, "ferry-system", "ferry-broker");
    let before = secret().await.unwrap();
    // No pool on this broker and no CIDR given; a CIDR inside a's pods;
    // one inside b's own services: refused with the numbers, nothing changed.
    let e = enable(&b.client, &GlobalnetRequest::default())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no Globalnet pool"), "{e}");
    let inside_a = GlobalnetRequest {
        cidr: Some("100.64.9.0/24".parse().unwrap()),
        cluster_size: None,
    };
    let e = enable(&b.client, &inside_a).await.unwrap_err().to_string();
    assert_eq!(
        e,
        "global CIDR 100.64.9.0/24 overlaps CIDR 100.64.0.0/16 of cluster \"a\""
    );
    let inside_own = GlobalnetRequest {
        cidr: Some("100.67.1.0/24".parse().unwrap()),
        cluster_size: None,
    };
    let e = enable(&b.client, &inside_own)
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "global CIDR 100.67.1.0/24 overlaps this cluster's CIDR 100.67.0.0/16"
    );
    assert_eq!(secret().await.unwrap().data, before.data, "nothing changed");

    // A free block: the Secret, b's Cluster on the broker and the restart
    // annotation of its agent and gateways; a's Cluster is untouched.
    let good = GlobalnetRequest {
        cidr: Some("100.120.7.0/24".parse().unwrap()),
        cluster_size: None,
    };
    let report = enable(&b.client, &good).await.unwrap();
    assert!(!report.already_on);
    let data = secret().await.unwrap().data.unwrap();
    assert_eq!(data["global-cidrs"].0, b"100.120.7.0/24");
    let cluster =
        |id: &'static str| get::<ferry_api::Cluster>(&cs.broker.client, "ferry-broker", id);
    let globals = |c: ferry_api::Cluster| -> Vec<String> {
        c.spec
            .global_cidrs
            .iter()
            .map(ToString::to_string)
            .collect()
    };
    assert_eq!(globals(cluster("b").await.unwrap()), ["100.120.7.0/24"]);
    assert!(globals(cluster("a").await.unwrap()).is_empty());
    let agent: Deployment = get(&b.client, "ferry-system", "ferry-agent").await.unwrap();
    let gateway: DaemonSet = get(&b.client, "ferry-system", "ferry-gateway")
        .await
        .unwrap();
    for annotations in [
        agent.spec.unwrap().template.metadata.unwrap().annotations,
        gateway.spec.unwrap().template.metadata.unwrap().annotations,
    ] {
        assert_eq!(
            annotations.unwrap()[GLOBAL_CIDRS_ANNOTATION],
            "100.120.7.0/24"
        );
    }
    // Again: nothing to do; another block: refused (a re-join does that).
    assert!(enable(&b.client, &good).await.unwrap().already_on);
    let other = GlobalnetRequest {
        cidr: Some("100.120.8.0/24".parse().unwrap()),
        cluster_size: None,
    };
    let e = enable(&b.client, &other).await.unwrap_err().to_string();
    assert!(e.contains("already on"), "{e}");
}
