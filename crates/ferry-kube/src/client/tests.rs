#![allow(clippy::unwrap_used)]
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;

use super::*;
use crate::kubeconfig_endpoint;

#[test]
fn errors_say_which_api() {
    let cases = [
        (ClientFor::KubeconfigFile("/k/c".into()), "/k/c"),
        (ClientFor::DefaultKubeconfig, "the default kubeconfig"),
        (ClientFor::Kubeconfig, "the kubeconfig"),
        (
            ClientFor::InCluster,
            "this cluster (no --kubeconfig, no KUBECONFIG, not in a pod)",
        ),
        (ClientFor::Cluster, "the cluster"),
        (ClientFor::Broker { url: None }, "the broker"),
        (
            ClientFor::Broker {
                url: Some("https://b:6443".into()),
            },
            "the broker at https://b:6443",
        ),
    ];
    for (api, want) in cases {
        let e = Error::client(api, "why");
        assert_eq!(
            e.to_string(),
            format!("cannot build a client for {want}: why")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_clients_with_a_token_or_a_token_file() {
    let dir = tempfile::tempdir().unwrap();
    let running = ferry_apiserver::start(ferry_apiserver::Config::new(
        dir.path(),
        "127.0.0.1:0".parse().unwrap(),
    ))
    .await
    .unwrap();
    let kc = crate::read_kubeconfig(Some(&running.admin_kubeconfig)).unwrap();
    let ep = kubeconfig_endpoint(&kc).unwrap();
    let info = BrokerInfo::new(ep.server, ep.ca_pem, ep.token.unwrap(), &[7; 32]);

    let list = |c: Client| async move {
        Api::<Namespace>::all(c)
            .list(&Default::default())
            .await
            .map(|l| l.items.len())
    };
    let with_token = broker_client(&info, &info.token).await.unwrap();
    assert!(list(with_token).await.unwrap() > 0);

    let token_file = dir.path().join("token");
    crate::write_private(&token_file, info.token.as_bytes()).unwrap();
    let with_file = broker_client_with_token_file(&info, &token_file, ManagedFields::Read)
        .await
        .unwrap();
    assert!(list(with_file).await.unwrap() > 0);

    let wrong = broker_client(&info, "not-a-token").await.unwrap();
    let e = list(wrong).await.unwrap_err();
    assert!(matches!(e, kube::Error::Api(s) if s.code == 401), "401");

    // The multiplexed and the HTTP/1.1 client of the same kubeconfig agree.
    let h1 = client_from_kubeconfig(Some(&running.admin_kubeconfig))
        .await
        .unwrap();
    let h2 =
        multiplexed_client_from_kubeconfig(Some(&running.admin_kubeconfig), ManagedFields::Read)
            .await
            .unwrap();
    assert_eq!(list(h1).await.unwrap(), list(h2.clone()).await.unwrap());

    // A client that skips managedFields reads the same objects without them.
    let lean =
        multiplexed_client_from_kubeconfig(Some(&running.admin_kubeconfig), ManagedFields::Skip)
            .await
            .unwrap();
    let names = |l: &kube::api::ObjectList<Namespace>| {
        l.items
            .iter()
            .map(|n| n.metadata.name.clone())
            .collect::<Vec<_>>()
    };
    let whole = Api::<Namespace>::all(h2)
        .list(&Default::default())
        .await
        .unwrap();
    let without = Api::<Namespace>::all(lean)
        .list(&Default::default())
        .await
        .unwrap();
    assert_eq!(names(&whole), names(&without));
    assert!(
        whole
            .items
            .iter()
            .any(|n| n.metadata.managed_fields.is_some())
    );
    assert!(
        without
            .items
            .iter()
            .all(|n| n.metadata.managed_fields.is_none())
    );
}
