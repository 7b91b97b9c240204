//! Shared test setup: in-process `ferry apiserver`s as a broker and member
//! clusters, `deploy_broker` + `join` for real, helpers to seed objects.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use ferry_api::BrokerInfo;
use ferry_ctl::TargetSpec;
use ferry_ctl::install::{self, DeployBrokerOptions, JoinOptions};
use kube::api::{Api, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::oneshot;

pub struct Server {
    pub dir: PathBuf,
    pub running: Option<ferry_apiserver::RunningServer>,
    pub client: Client,
    pub kubeconfig: PathBuf,
    pub url: String,
}

impl Server {
    pub async fn start(dir: PathBuf) -> Server {
        let running = ferry_apiserver::start(ferry_apiserver::Config::new(
            &dir,
            "127.0.0.1:0".parse().unwrap(),
        ))
        .await
        .unwrap();
        let kc = Kubeconfig::read_from(&running.admin_kubeconfig).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .unwrap();
        Server {
            dir,
            client: Client::try_from(config).unwrap(),
            kubeconfig: running.admin_kubeconfig.clone(),
            url: running.url.clone(),
            running: Some(running),
        }
    }

    pub fn spec(&self) -> TargetSpec {
        TargetSpec {
            kubeconfig: Some(self.kubeconfig.clone()),
            context: None,
        }
    }

    pub async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
    }
}

pub struct Clusterset {
    pub tmp: tempfile::TempDir,
    pub broker: Server,
    pub info: BrokerInfo,
    pub members: Vec<Server>,
}

/// A broker and one member per id, each joined with disjoint CIDRs
/// (`100.{64+2i}.0.0/16` pods, `100.{65+2i}.0.0/16` services). No agent runs.
pub async fn clusterset(ids: &[&str]) -> Clusterset {
    let tmp = tempfile::tempdir().unwrap();
    let broker = Server::start(tmp.path().join("broker")).await;
    let joiner =
        ferry_apiserver::create_token(&broker.dir, &ferry_apiserver::Identity::Joiner).unwrap();
    let kc = Kubeconfig::read_from(&broker.kubeconfig).unwrap();
    let info = install::deploy_broker(
        &broker.client,
        &kc,
        &DeployBrokerOptions {
            namespace: "ferry-broker".into(),
            joiner_token: Some(joiner),
        },
    )
    .await
    .unwrap();
    let mut members = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let server = Server::start(tmp.path().join(id)).await;
        install::join(&server.client, &info, &join_options(id, i))
            .await
            .unwrap();
        members.push(server);
    }
    Clusterset {
        tmp,
        broker,
        info,
        members,
    }
}

pub fn join_options(id: &str, i: usize) -> JoinOptions {
    JoinOptions {
        cluster_id: id.to_string(),
        cluster_cidrs: vec![format!("100.{}.0.0/16", 64 + 2 * i).parse().unwrap()],
        service_cidrs: vec![format!("100.{}.0.0/16", 65 + 2 * i).parse().unwrap()],
        cable_driver: None,
        gateway_node: None,
        image: "ferry:test".into(),
    }
}

/// Runs the real `ferry agent` of a joined member until the sender drops.
pub async fn start_agent(member: &Server) -> (oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let (cfg, info) = ferry_agent::load_config(&member.client, "ferry-system")
        .await
        .unwrap();
    let broker = ferry_kube::broker_client(&info, &info.token).await.unwrap();
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(ferry_agent::run(
        cfg,
        member.client.clone(),
        broker,
        async {
            let _ = rx.await;
        },
    ));
    (tx, task)
}

/// Server-side applies an object given as JSON (its resource found by
/// discovery).
pub async fn apply(c: &Client, v: Value) {
    let obj: DynamicObject = serde_json::from_value(v.clone()).unwrap();
    let api_version = v["apiVersion"].as_str().unwrap();
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, v["kind"].as_str().unwrap());
    let (ar, _) = kube::discovery::pinned_kind(c, &gvk).await.unwrap();
    let api: Api<DynamicObject> = match obj.metadata.namespace.as_deref() {
        Some(ns) => Api::namespaced_with(c.clone(), ns, &ar),
        None => Api::all_with(c.clone(), &ar),
    };
    let name = obj.metadata.name.clone().unwrap();
    api.patch(
        &name,
        &PatchParams::apply("test").force(),
        &Patch::Apply(&obj),
    )
    .await
    .unwrap();
}

/// Merge-patches the status subresource of a namespaced object.
pub async fn set_status<K>(c: &Client, ns: &str, name: &str, status: Value)
where
    K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(c.clone(), ns);
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({ "status": status })),
    )
    .await
    .unwrap();
}

/// A client for the broker with a member's own (cluster-scoped) token.
pub async fn cluster_broker_client(member: &Server) -> Client {
    let (_, info) = ferry_agent::load_config(&member.client, "ferry-system")
        .await
        .unwrap();
    ferry_kube::broker_client(&info, &info.token).await.unwrap()
}

pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..600 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}
