//! Issue #20 against in-process `ferry apiserver`s: kube-ovn's Subnets give
//! the pod CIDRs and the CNI, which `join` records in the Cluster; a CNI
//! ferry cannot drive is recognised; the preflight refuses a namespace
//! whose Pod Security level is stricter than privileged, a
//! `--gateway-node` that does not exist and an `--image` that is a local
//! archive path, before anything changes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Server, apply, create, get};
use ferry_api::{Cidr, Cluster, NetworkPlugin};
use ferry_ctl::install::cidrs::Records;
use ferry_ctl::install::{self, CidrSource, JoinOptions};
use ferry_ctl::{Error, Refusal};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::api::Api;
use serde_json::json;

fn cidrs(list: &str) -> Vec<Cidr> {
    Cidr::parse_list(list).unwrap()
}

fn options(id: &str) -> JoinOptions {
    JoinOptions {
        cluster_id: id.into(),
        cluster_cidrs: cidrs("100.70.0.0/17,100.70.128.0/17"),
        service_cidrs: cidrs("100.71.0.0/16"),
        cable_driver: None,
        gateway_node: None,
        image: "ferry:test".into(),
        gateway: Default::default(),
        globalnet: None,
        network_plugin: Some(NetworkPlugin::KubeOvn),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_ovn_subnets_give_the_cidrs_and_the_cluster_records_the_cni() {
    let cs = common::clusterset(&[]).await;
    let c = Server::start(cs.tmp.path().join("c")).await;
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "subnets.kubeovn.io"},
        "spec": {"group": "kubeovn.io", "scope": "Cluster",
            "names": {"kind": "Subnet", "listKind": "SubnetList", "plural": "subnets", "singular": "subnet"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]},
    });
    apply(&c.client, crd).await;
    for (name, cidr) in [
        ("ovn-default", "100.70.0.0/17"),
        ("join", "100.70.128.0/17"),
    ] {
        apply(
            &c.client,
            json!({"apiVersion": "kubeovn.io/v1", "kind": "Subnet", "metadata": {"name": name},
                "spec": {"cidrBlock": cidr, "protocol": "IPv4"}}),
        )
        .await;
    }
    let found = install::discover_cidrs(&c.client, true, false, Records::default()).await;
    let first = found.pods.first().unwrap();
    assert_eq!(first.source, CidrSource::Cni(NetworkPlugin::KubeOvn));
    assert_eq!(first.cidrs, cidrs("100.70.0.0/17,100.70.128.0/17"));

    install::join(&c.client, &cs.info, &options("c"))
        .await
        .unwrap();
    let broker_cluster: Cluster = get(&cs.broker.client, "ferry-broker", "c").await.unwrap();
    assert_eq!(
        broker_cluster.spec.network_plugin,
        Some(NetworkPlugin::KubeOvn)
    );
    // The agent reads it from the Secret join writes, and keeps publishing it.
    let secret: Secret = get(&c.client, "ferry-system", "ferry-broker")
        .await
        .unwrap();
    let kept = ferry_deploy::BrokerSecret::from_secret(&secret).unwrap();
    assert_eq!(kept.network_plugin, Some(NetworkPlugin::KubeOvn));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cilium_is_recognised_as_a_cni_ferry_cannot_drive() {
    let tmp = tempfile::tempdir().unwrap();
    let c = Server::start(tmp.path().join("c")).await;
    assert_eq!(install::cni::undrivable(&c.client).await, None);
    let cms: Api<ConfigMap> = Api::namespaced(c.client.clone(), "kube-system");
    create(
        cms,
        json!({"metadata": {"name": "cilium-config"}, "data": {"enable-bpf-masquerade": "true"}}),
    )
    .await;
    let u = install::cni::undrivable(&c.client).await.unwrap();
    let why = Error::from(Refusal::from(u)).to_string();
    assert!(why.contains("Cilium"), "{why}");
    assert!(why.contains("pass --cni generic"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_refuses_before_anything_changes() {
    let cs = common::clusterset(&[]).await;
    let c = Server::start(cs.tmp.path().join("c")).await;

    // A --gateway-node that is not a node of the cluster.
    let mut opts = options("c");
    opts.gateway_node = Some("nowhere".into());
    let e = install::join(&c.client, &cs.info, &opts).await.unwrap_err();
    assert!(
        matches!(e, Error::Refused(Refusal::Preflight { .. })),
        "{e}"
    );
    assert!(e.to_string().contains("does not exist"), "{e}");

    // An --image that is a local archive path (one that does not exist),
    // not a reference a node can pull.
    let mut opts = options("c");
    opts.image = "./no-such-ferry.oci.tar".into();
    let e = install::join(&c.client, &cs.info, &opts).await.unwrap_err();
    assert!(
        matches!(e, Error::Refused(Refusal::Preflight { .. })),
        "{e}"
    );
    assert!(
        e.to_string().starts_with(
            "--image \"./no-such-ferry.oci.tar\" names a local archive path that does not exist;"
        ),
        "{e}"
    );

    // ferry-system enforcing baseline Pod Security.
    create(
        Api::<Namespace>::all(c.client.clone()),
        json!({"metadata": {"name": "ferry-system",
            "labels": {"pod-security.kubernetes.io/enforce": "baseline"}}}),
    )
    .await;
    let e = install::join(&c.client, &cs.info, &options("c"))
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("pod-security.kubernetes.io/enforce=privileged"),
        "{e}"
    );
    // Nothing half-applied: no Secret, no Cluster on the broker.
    assert!(
        get::<Secret>(&c.client, "ferry-system", "ferry-broker")
            .await
            .is_none()
    );
    assert!(
        get::<Cluster>(&cs.broker.client, "ferry-broker", "c")
            .await
            .is_none()
    );
}
