//! kube-rs against a real `ferry apiserver`: CRUD, list/watch, reflector,
//! optimistic concurrency, finalizers, status, CRD registration, 410 + relist.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use ferry_api::{CableDriver, Endpoint, ServiceImport, all_crds};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
    WatchEvent, WatchParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Client, Config, ResourceExt};
use serde_json::json;

struct Server {
    client: Client,
    running: Option<ferry_apiserver::RunningServer>,
    _dir: tempfile::TempDir,
}

async fn server() -> Server {
    server_with(|_| {}).await
}

async fn server_with(tune: impl Fn(&mut ferry_apiserver::Config)) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ferry_apiserver::Config::new(dir.path(), "127.0.0.1:0".parse().unwrap());
    tune(&mut config);
    let running = ferry_apiserver::start(config).await.unwrap();
    let kubeconfig = Kubeconfig::read_from(&running.admin_kubeconfig).unwrap();
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    Server {
        client: Client::try_from(config).unwrap(),
        running: Some(running),
        _dir: dir,
    }
}

impl Server {
    fn app(&self) -> &ferry_apiserver::App {
        &self.running.as_ref().unwrap().app
    }
}

fn cm(name: &str, labels: serde_json::Value) -> ConfigMap {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels},
        "data": {"k": "v"},
    }))
    .unwrap()
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn crud_selectors_paging_and_conflicts() {
    let s = server().await;
    let api: Api<ConfigMap> = Api::namespaced(s.client.clone(), "default");
    let a = api
        .create(
            &PostParams::default(),
            &cm("a", json!({"app": "x", "tier": "web"})),
        )
        .await
        .unwrap();
    assert!(a.metadata.uid.is_some() && a.metadata.creation_timestamp.is_some());
    api.create(&PostParams::default(), &cm("b", json!({"app": "y"})))
        .await
        .unwrap();
    api.create(&PostParams::default(), &cm("c", json!({"app": "x"})))
        .await
        .unwrap();
    let dup = api
        .create(&PostParams::default(), &cm("a", json!({})))
        .await;
    assert!(
        matches!(dup, Err(kube::Error::Api(e)) if e.code == 409 && e.reason == "AlreadyExists")
    );

    let xs = api
        .list(&ListParams::default().labels("app=x"))
        .await
        .unwrap();
    assert_eq!(xs.items.len(), 2);
    let set = api
        .list(&ListParams::default().labels("app in (y),!tier"))
        .await
        .unwrap();
    assert_eq!(set.items[0].name_any(), "b");
    let by_name = api
        .list(&ListParams::default().fields("metadata.name=c"))
        .await
        .unwrap();
    assert_eq!(by_name.items.len(), 1);

    let page1 = api.list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(page1.items.len(), 2);
    let token = page1.metadata.continue_.clone().unwrap();
    let page2 = api
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .unwrap();
    assert_eq!(page2.items.len(), 1);
    assert!(page2.metadata.continue_.is_none_or(|c| c.is_empty()));

    // Optimistic concurrency: a replace with a stale resourceVersion is a 409.
    let mut stale = a.clone();
    let mut fresh = a.clone();
    fresh.data = Some([("k".to_string(), "v2".to_string())].into());
    api.replace("a", &PostParams::default(), &fresh)
        .await
        .unwrap();
    stale.data = Some([("k".to_string(), "v3".to_string())].into());
    let conflict = api.replace("a", &PostParams::default(), &stale).await;
    assert!(
        matches!(conflict, Err(kube::Error::Api(e)) if e.code == 409 && e.reason == "Conflict")
    );

    let patched = api
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"extra": "1"}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.data.unwrap().get("extra").unwrap(), "1");
    api.delete("a", &DeleteParams::default()).await.unwrap();
    let gone = api.get("a").await;
    assert!(matches!(gone, Err(kube::Error::Api(e)) if e.code == 404));
    let bad = api
        .create(&PostParams::default(), &cm("Not_Valid", json!({})))
        .await;
    assert!(matches!(bad, Err(kube::Error::Api(e)) if e.code == 422));
}

#[tokio::test]
async fn watch_and_reflector_see_every_change() {
    let s = server().await;
    let api: Api<ConfigMap> = Api::namespaced(s.client.clone(), "default");
    let (reader, writer) = reflector::store();
    let stream = reflector(writer, watcher(api.clone(), watcher::Config::default()))
        .applied_objects()
        .boxed();
    let task = tokio::spawn(async move {
        let mut stream = stream;
        while stream.try_next().await.ok().flatten().is_some() {}
    });
    for i in 0..20 {
        api.create(&PostParams::default(), &cm(&format!("w{i}"), json!({})))
            .await
            .unwrap();
    }
    api.delete("w3", &DeleteParams::default()).await.unwrap();
    eventually("the reflector to hold 19 objects", || {
        let n = reader.state().len();
        async move { n == 19 }
    })
    .await;

    // A raw watch from a resourceVersion delivers later changes in order.
    let rv = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut events = api
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    api.patch(
        "w1",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"x": "y"}})),
    )
    .await
    .unwrap();
    api.delete("w2", &DeleteParams::default()).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), events.try_next())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(first, Some(WatchEvent::Modified(o)) if o.name_any() == "w1"));
    let second = tokio::time::timeout(Duration::from_secs(5), events.try_next())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(second, Some(WatchEvent::Deleted(o)) if o.name_any() == "w2"));
    task.abort();
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let s = server().await;
    let api: Api<ConfigMap> = Api::namespaced(s.client.clone(), "default");
    let mut obj = cm("held", json!({}));
    obj.metadata.finalizers = Some(vec!["ferry.dev/test".into()]);
    api.create(&PostParams::default(), &obj).await.unwrap();
    api.delete("held", &DeleteParams::default()).await.unwrap();
    let still = api.get("held").await.unwrap();
    assert!(still.metadata.deletion_timestamp.is_some());
    api.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    let gone = api.get("held").await;
    assert!(matches!(gone, Err(kube::Error::Api(e)) if e.code == 404));
}

#[tokio::test]
async fn status_subresource_and_generation() {
    let s = server().await;
    let api: Api<Deployment> = Api::namespaced(s.client.clone(), "default");
    let d: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "c", "image": "ferry"}]}}},
        "status": {"replicas": 7},
    }))
    .unwrap();
    let created = api.create(&PostParams::default(), &d).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert!(created.status.is_none(), "status is not settable on create");
    let st = api
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 1}})),
        )
        .await
        .unwrap();
    assert_eq!(st.status.unwrap().replicas, Some(1));
    assert_eq!(st.metadata.generation, Some(1));
    let spec = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}, "status": {"replicas": 9}})),
        )
        .await
        .unwrap();
    assert_eq!(spec.metadata.generation, Some(2));
    assert_eq!(
        spec.status.unwrap().replicas,
        Some(1),
        "main resource ignores status"
    );
}

#[tokio::test]
async fn crds_register_at_once_and_scoped_tokens_are_enforced() {
    let s = server().await;
    let crds: Api<CustomResourceDefinition> = Api::all(s.client.clone());
    for crd in all_crds() {
        crds.create(&PostParams::default(), &crd).await.unwrap();
    }
    let ns: Api<Namespace> = Api::all(s.client.clone());
    ns.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "ferry-broker"}})).unwrap(),
    )
    .await
    .unwrap();
    let imports: Api<ServiceImport> = Api::namespaced(s.client.clone(), "ferry-broker");
    let si: ServiceImport = serde_json::from_value(json!({
        "apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceImport",
        "metadata": {"name": "nginx-nginx-test-c1", "labels": {"ferry.dev/cluster": "c1"}},
        "spec": {"type": "ClusterSetIP", "ips": ["100.96.0.10"], "ports": [{"port": 80, "protocol": "TCP"}]},
    }))
    .unwrap();
    imports.create(&PostParams::default(), &si).await.unwrap();
    let discovery = kube::Discovery::new(s.client.clone()).run().await.unwrap();
    assert!(discovery.has_group("multicluster.x-k8s.io"));

    // A cluster-scoped token: reads all, writes only its own labelled objects.
    let dir = s
        .running
        .as_ref()
        .unwrap()
        .admin_kubeconfig
        .parent()
        .unwrap()
        .to_path_buf();
    let token =
        ferry_apiserver::create_token(&dir, &ferry_apiserver::Identity::Cluster("c2".into()))
            .unwrap();
    let mut kc = Kubeconfig::read_from(&s.running.as_ref().unwrap().admin_kubeconfig).unwrap();
    for user in &mut kc.auth_infos {
        if let Some(info) = user.auth_info.as_mut() {
            info.token = Some(token.clone().into());
        }
    }
    let c2 = Client::try_from(
        Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .unwrap(),
    )
    .unwrap();
    let c2_imports: Api<ServiceImport> = Api::namespaced(c2, "ferry-broker");
    assert_eq!(
        c2_imports
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    let steal = c2_imports
        .patch(
            "nginx-nginx-test-c1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"ips": ["1.2.3.4"]}})),
        )
        .await;
    assert!(matches!(steal, Err(kube::Error::Api(e)) if e.code == 403));
    let mut own = si.clone();
    own.metadata.name = Some("nginx-nginx-test-c2".into());
    own.metadata.labels = Some([("ferry.dev/cluster".to_string(), "c2".to_string())].into());
    c2_imports
        .create(&PostParams::default(), &own)
        .await
        .unwrap();
    let relabel = c2_imports
        .patch(
            "nginx-nginx-test-c2",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"ferry.dev/cluster": "c1"}}})),
        )
        .await;
    assert!(matches!(relabel, Err(kube::Error::Api(e)) if e.code == 403));
    let unchanged = imports.get("nginx-nginx-test-c1").await.unwrap();
    assert_eq!(unchanged.spec.ips, vec!["100.96.0.10".to_string()]);
}

/// Submariner's driver name passes the Endpoint CRD's enum and reads back as
/// ferry's `ipsec`; an unknown driver is refused by the schema.
#[tokio::test]
async fn endpoint_cable_driver_libreswan_is_accepted() {
    let s = server().await;
    let crds: Api<CustomResourceDefinition> = Api::all(s.client.clone());
    for crd in all_crds() {
        crds.create(&PostParams::default(), &crd).await.unwrap();
    }
    let resource = ApiResource::erase::<Endpoint>(&());
    let raw: Api<DynamicObject> = Api::namespaced_with(s.client.clone(), "default", &resource);
    let endpoint = |name: &str, driver: &str| -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "ferry.dev/v1alpha1", "kind": "Endpoint",
            "metadata": {"name": name},
            "spec": {"clusterId": "c1", "hostname": "gw", "cableDriver": driver,
                     "privateIp": "100.64.0.2", "subnets": ["100.64.0.0/16"]},
        }))
        .unwrap()
    };
    raw.create(&PostParams::default(), &endpoint("c1-gw", "libreswan"))
        .await
        .unwrap();
    let typed: Api<Endpoint> = Api::namespaced(s.client.clone(), "default");
    let got = typed.get("c1-gw").await.unwrap();
    assert_eq!(got.spec.cable_driver, CableDriver::Ipsec);
    let refused = raw
        .create(&PostParams::default(), &endpoint("c1-gre", "gre"))
        .await;
    assert!(
        matches!(&refused, Err(kube::Error::Api(e)) if e.code == 422 && e.message.contains("libreswan")),
        "{refused:?}"
    );
}

#[tokio::test]
async fn watch_past_compaction_is_410_and_a_relist_recovers() {
    let s = server().await;
    let api: Api<ConfigMap> = Api::namespaced(s.client.clone(), "default");
    api.create(&PostParams::default(), &cm("old", json!({})))
        .await
        .unwrap();
    let rv = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    for i in 0..10 {
        api.patch(
            "old",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"i": i.to_string()}})),
        )
        .await
        .unwrap();
    }
    s.app().store.compact(2).await.unwrap();
    let mut stream = api
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    let first = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
        .await
        .unwrap();
    match first {
        Ok(Some(WatchEvent::Error(e))) => assert_eq!(e.code, 410),
        Err(kube::Error::Api(e)) => assert_eq!(e.code, 410),
        other => panic!("expected 410 Expired, got {other:?}"),
    }
    // The relist a client does next sees the current state and can watch on.
    let list = api.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items[0].data.as_ref().unwrap()["i"], "9");
    let rv = list.metadata.resource_version.unwrap();
    let mut stream = api
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    api.delete("old", &DeleteParams::default()).await.unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(ev, Some(WatchEvent::Deleted(_))));
}

#[tokio::test]
async fn joiner_mints_cluster_tokens_through_token_requests() {
    let s = server().await;
    let admin_kc = s.running.as_ref().unwrap().admin_kubeconfig.clone();
    let dir = admin_kc.parent().unwrap().to_path_buf();
    let joiner = ferry_apiserver::create_token(&dir, &ferry_apiserver::Identity::Joiner).unwrap();
    let client_with = |token: String| {
        let admin_kc = admin_kc.clone();
        async move {
            let mut kc = Kubeconfig::read_from(&admin_kc).unwrap();
            for user in &mut kc.auth_infos {
                if let Some(info) = user.auth_info.as_mut() {
                    info.token = Some(token.clone().into());
                }
            }
            Client::try_from(
                Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                    .await
                    .unwrap(),
            )
            .unwrap()
        }
    };
    let j = client_with(joiner).await;
    let sas: Api<ServiceAccount> = Api::namespaced(j.clone(), "default");
    let unlabelled: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": "plain"}})).unwrap();
    let denied = sas.create(&PostParams::default(), &unlabelled).await;
    assert!(matches!(denied, Err(kube::Error::Api(e)) if e.code == 403));
    let sa: ServiceAccount = serde_json::from_value(json!({
        "metadata": {"name": "cluster-c7", "labels": {"ferry.dev/cluster": "c7"}}
    }))
    .unwrap();
    sas.create(&PostParams::default(), &sa).await.unwrap();
    let request: TokenRequest = serde_json::from_value(json!({"spec": {"audiences": []}})).unwrap();
    let minted = sas
        .create_token_request("cluster-c7", &PostParams::default(), &request)
        .await
        .unwrap();
    let token = minted.status.unwrap().token;
    let c7 = client_with(token).await;
    // A cluster may renew its own token, and only its own.
    let own: Api<ServiceAccount> = Api::namespaced(c7.clone(), "default");
    let renewed = own
        .create_token_request("cluster-c7", &PostParams::default(), &request)
        .await
        .unwrap();
    assert!(!renewed.status.unwrap().token.is_empty());
    let c8: ServiceAccount = serde_json::from_value(json!({
        "metadata": {"name": "cluster-c8", "labels": {"ferry.dev/cluster": "c8"}}
    }))
    .unwrap();
    sas.create(&PostParams::default(), &c8).await.unwrap();
    let theirs = own
        .create_token_request("cluster-c8", &PostParams::default(), &request)
        .await;
    assert!(matches!(theirs, Err(kube::Error::Api(e)) if e.code == 403));
    let cms: Api<ConfigMap> = Api::namespaced(c7, "default");
    cms.create(
        &PostParams::default(),
        &cm("mine", json!({"ferry.dev/cluster": "c7"})),
    )
    .await
    .unwrap();
    let other = cms
        .create(
            &PostParams::default(),
            &cm("theirs", json!({"ferry.dev/cluster": "c8"})),
        )
        .await;
    assert!(matches!(other, Err(kube::Error::Api(e)) if e.code == 403));
    // The joiner itself cannot write anything else.
    let jcms: Api<ConfigMap> = Api::namespaced(j, "default");
    let denied = jcms
        .create(&PostParams::default(), &cm("j", json!({})))
        .await;
    assert!(matches!(denied, Err(kube::Error::Api(e)) if e.code == 403));
}

/// Past `max_mutating_inflight` writes at once, more writes get 429
/// TooManyRequests (as from kube-apiserver); reads are never refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_past_the_in_flight_limit_get_429_and_reads_do_not() {
    let s = server_with(|c| c.max_mutating_inflight = 1).await;
    // kube-rs's default client retries a 429 itself, up to 15 times with
    // exponential backoff (minutes); this test wants to see the answers.
    let running = s.running.as_ref().unwrap();
    let kubeconfig = Kubeconfig::read_from(&running.admin_kubeconfig).unwrap();
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    config.default_retry = false;
    let api: Api<ConfigMap> = Api::namespaced(Client::try_from(config).unwrap(), "default");
    // 64 creates at once, each on a connection of its own (HTTP/1.1), each
    // waiting for its commit's fsync: one at a time may be in flight.
    let results: Vec<_> = futures::stream::iter(0..64)
        .map(|i| {
            let api = api.clone();
            async move {
                api.create(&PostParams::default(), &cm(&format!("c{i}"), json!({})))
                    .await
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let mut created = 0;
    let mut refused = 0;
    for r in results {
        match r {
            Ok(_) => created += 1,
            Err(kube::Error::Api(e)) if e.code == 429 => {
                assert_eq!(e.reason, "TooManyRequests");
                refused += 1;
            }
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert!(
        created >= 1 && refused >= 1,
        "created {created}, refused {refused}"
    );
    assert_eq!(created + refused, 64);
    // Every created object is there, and reads in parallel all succeed.
    let reads: Vec<_> = futures::stream::iter(0..64)
        .map(|_| {
            let api = api.clone();
            async move { api.list(&ListParams::default()).await }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    for r in reads {
        assert_eq!(r.unwrap().items.len(), created);
    }
}
