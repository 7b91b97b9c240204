//! `deploy-broker` minting its joiner credential through TokenRequest, CIDR
//! discovery from what a cluster says, and `join` refusing unknown CIDRs
//! before it changes anything — against in-process `ferry apiserver`s.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Server, create, get};
use ferry_api::Cidr;
use ferry_ctl::install::cidrs::Records;
use ferry_ctl::install::{self, CidrSource, DeployBrokerOptions, JoinOptions};
use k8s_openapi::api::core::v1::{ConfigMap, Node, Secret};
use kube::api::Api;
use kube::config::Kubeconfig;
use serde_json::json;

fn cidrs(list: &str) -> Vec<Cidr> {
    Cidr::parse_list(list).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_broker_hands_out_a_joiner_token_not_its_admin_one() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = Server::start(tmp.path().join("broker")).await;
    let kc = Kubeconfig::read_from(&broker.kubeconfig).unwrap();
    let info = install::deploy_broker(&broker.client, &kc, &DeployBrokerOptions::default())
        .await
        .unwrap();
    let admin = ferry_kube::kubeconfig_endpoint(&kc).unwrap().token.unwrap();
    assert_ne!(info.token, admin);
    // The joiner reads the broker but not its Secrets (the cable key, or a
    // member's broker token when the broker is also a member).
    let joiner = ferry_kube::broker_client(&info, &info.token).await.unwrap();
    let secrets: Api<Secret> = Api::namespaced(joiner.clone(), "ferry-broker");
    let e = secrets.list(&Default::default()).await.unwrap_err();
    assert!(matches!(e, kube::Error::Api(ref s) if s.code == 403), "{e}");
    // …and can join a cluster with it.
    let member = Server::start(tmp.path().join("m")).await;
    let opts = JoinOptions {
        cluster_id: "m".into(),
        cluster_cidrs: cidrs("100.80.0.0/16"),
        service_cidrs: cidrs("100.81.0.0/16"),
        cable_driver: None,
        gateway_node: None,
        image: "ferry:test".into(),
        gateway: Default::default(),
        globalnet: None,
        network_plugin: None,
    };
    install::join(&member.client, &info, &opts).await.unwrap();
    // --ipsec-psk-from: the given key replaces the kept one, and is kept.
    let with_psk = DeployBrokerOptions {
        psk: Some([3u8; 32]),
        ..Default::default()
    };
    let again = install::deploy_broker(&broker.client, &kc, &with_psk)
        .await
        .unwrap();
    assert_eq!(again.cable_psk_bytes().unwrap(), [3u8; 32]);
    let later = install::deploy_broker(&broker.client, &kc, &DeployBrokerOptions::default())
        .await
        .unwrap();
    assert_eq!(later.cable_psk_bytes().unwrap(), [3u8; 32]);
    // recover-broker-info gives back the same file.
    let (recovered, id) = install::recover_broker_info(&member.client).await.unwrap();
    assert_eq!((recovered, id.as_str()), (info, "m"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cidrs_are_discovered_from_the_cluster_and_unknown_ones_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let c = Server::start(tmp.path().join("c")).await;
    // Nothing says the pod CIDRs: every source reports why, and join
    // refuses, changing nothing. The service range is known from the API
    // server's answer to an out-of-range ClusterIP, as on kube-apiserver.
    let found = install::discover_cidrs(&c.client, true, true, Records::default()).await;
    assert!(found.pods.is_empty(), "{found:?}");
    assert_eq!(
        found.services.first().map(|f| &f.source),
        Some(&CidrSource::ApiServerAnswer),
        "{found:?}"
    );
    assert!(
        found
            .misses
            .iter()
            .any(|m| m.starts_with("kubeadm-config: no ConfigMap")),
        "{found:?}"
    );
    let cs = common::clusterset(&[]).await;
    let opts = JoinOptions {
        cluster_id: "c".into(),
        cluster_cidrs: Vec::new(),
        service_cidrs: Vec::new(),
        cable_driver: None,
        gateway_node: None,
        image: "ferry:test".into(),
        gateway: Default::default(),
        globalnet: None,
        network_plugin: None,
    };
    let e = install::join(&c.client, &cs.info, &opts).await.unwrap_err();
    assert!(
        matches!(
            e,
            ferry_ctl::Error::Refused(ferry_ctl::Refusal::CidrsUnknown { kind: "pod", .. })
        ),
        "{e}"
    );
    assert!(
        get::<Secret>(&c.client, "ferry-system", "ferry-broker")
            .await
            .is_none()
    );

    // kubeadm's and kube-proxy's ConfigMaps, and the nodes' podCIDRs.
    let cms: Api<ConfigMap> = Api::namespaced(c.client.clone(), "kube-system");
    create(cms.clone(), json!({"metadata": {"name": "kubeadm-config"}, "data": {"ClusterConfiguration":
        "kind: ClusterConfiguration\nnetworking:\n  podSubnet: 100.90.0.0/16\n  serviceSubnet: 100.91.0.0/16\n"}})).await;
    create(cms, json!({"metadata": {"name": "kube-proxy"}, "data": {"config.conf": "clusterCIDR: 100.90.0.0/16\n"}})).await;
    for (n, cidr) in [("n0", "100.90.0.0/24"), ("n1", "100.90.1.0/24")] {
        create(
            Api::<Node>::all(c.client.clone()),
            json!({"metadata": {"name": n}, "spec": {"podCIDR": cidr, "podCIDRs": [cidr]}}),
        )
        .await;
    }
    let found = install::discover_cidrs(&c.client, true, true, Records::default()).await;
    let sources: Vec<(CidrSource, Vec<Cidr>)> = found
        .pods
        .iter()
        .map(|f| (f.source.clone(), f.cidrs.clone()))
        .collect();
    assert_eq!(
        sources,
        [
            (CidrSource::KubeadmConfig, cidrs("100.90.0.0/16")),
            (CidrSource::KubeProxyConfig, cidrs("100.90.0.0/16")),
            (
                CidrSource::NodePodCidrs { nodes: 2 },
                cidrs("100.90.0.0/23")
            ),
        ]
    );
    let kubeadm = found
        .services
        .iter()
        .find(|f| f.source == CidrSource::KubeadmConfig)
        .unwrap_or_else(|| panic!("{found:?}"));
    assert_eq!(kubeadm.cidrs, cidrs("100.91.0.0/16"));
}
