//! The benchmark's clusterset: a broker and three members (`a`, `b`, `c`)
//! on loopback `ferry apiserver`s in this process, each joined, with an
//! active gateway connected to the other two (as the gateways would report
//! it: the agents route a ClusterSet IP only to clusters a cable reaches),
//! and one agent per member in a child process.

use std::process::Stdio;

use anyhow::Context;
use ferry_ctl::install::{self, DeployBrokerOptions, JoinOptions};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::config::Kubeconfig;
use serde_json::json;

use crate::NS;
use ferry_bench_kit::client;

/// The member clusters' ids.
pub const IDS: [&str; 3] = ["a", "b", "c"];

/// A running clusterset.
pub struct Clusterset {
    /// Holds the API servers' data until dropped.
    _tmp: tempfile::TempDir,
    pub broker: ferry_apiserver::RunningServer,
    pub broker_client: Client,
    pub servers: Vec<ferry_apiserver::RunningServer>,
    /// Admin clients of `a`, `b`, `c`.
    pub clients: Vec<Client>,
}

impl Clusterset {
    /// A broker and three joined members; `vips` switches ClusterSet IPs
    /// on (`deploy-broker --enable-clusterset-ip`).
    pub async fn start(vips: bool) -> anyhow::Result<Clusterset> {
        let tmp = tempfile::tempdir()?;
        let loopback = "127.0.0.1:0".parse()?;
        let broker = ferry_apiserver::start(ferry_apiserver::Config::new(
            tmp.path().join("broker"),
            loopback,
        ))
        .await?;
        let joiner = ferry_apiserver::create_token(
            &tmp.path().join("broker"),
            &ferry_apiserver::Identity::Joiner,
        )?;
        let kc = Kubeconfig::read_from(&broker.admin_kubeconfig)?;
        let broker_client = client(&broker.admin_kubeconfig).await?;
        let mut info = install::deploy_broker(
            &broker_client,
            &kc,
            &DeployBrokerOptions {
                namespace: "ferry-broker".into(),
                joiner_token: Some(joiner),
                ..Default::default()
            },
        )
        .await?;
        info.settings.clusterset_ip = vips;
        let mut servers = Vec::new();
        let mut clients = Vec::new();
        for (i, id) in IDS.iter().enumerate() {
            let mut config = ferry_apiserver::Config::new(tmp.path().join(id), loopback);
            // Each member allocates (derived Services' ClusterIPs too) from
            // the service range it joins with.
            config.service_cluster_ip_range = format!("100.{}.0.0/16", 65 + 2 * i).parse()?;
            let s = ferry_apiserver::start(config).await?;
            let c = client(&s.admin_kubeconfig).await?;
            install::join(&c, &info, &join_options(i, id)?).await?;
            let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": NS}}))?;
            Api::<Namespace>::all(c.clone())
                .create(&PostParams::default(), &ns)
                .await?;
            connected_gateway(&c, id).await?;
            servers.push(s);
            clients.push(c);
        }
        Ok(Clusterset {
            _tmp: tmp,
            broker,
            broker_client,
            servers,
            clients,
        })
    }

    /// Starts one agent per member, each a child process; agent A under
    /// `FERRY_BENCH_WRAP_AGENT_A` (a command and its arguments), if set.
    pub fn spawn_agents(&self) -> anyhow::Result<Vec<tokio::process::Child>> {
        let exe = std::env::current_exe()?;
        let wrap_a = std::env::var("FERRY_BENCH_WRAP_AGENT_A").unwrap_or_default();
        self.servers
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let mut wrap = wrap_a.split_whitespace().filter(|_| i == 0);
                let mut cmd = match wrap.next() {
                    Some(program) => {
                        let mut cmd = tokio::process::Command::new(program);
                        cmd.args(wrap).arg(&exe);
                        cmd
                    }
                    None => tokio::process::Command::new(&exe),
                };
                cmd.arg("agent")
                    .arg(&s.admin_kubeconfig)
                    .env("RUST_LOG", "warn")
                    .stdin(Stdio::null())
                    .kill_on_drop(true)
                    .spawn()
                    .context("starting an agent")
            })
            .collect()
    }

    /// Stops the API servers.
    pub async fn shutdown(self) {
        for s in self.servers {
            s.shutdown().await;
        }
        self.broker.shutdown().await;
    }
}

fn join_options(i: usize, id: &str) -> anyhow::Result<JoinOptions> {
    Ok(JoinOptions {
        cluster_id: id.to_string(),
        cluster_cidrs: vec![format!("100.{}.0.0/16", 64 + 2 * i).parse()?],
        service_cidrs: vec![format!("100.{}.0.0/16", 65 + 2 * i).parse()?],
        cable_driver: None,
        gateway_node: None,
        image: "ferry:bench".into(),
        gateway: Default::default(),
        globalnet: None,
        network_plugin: None,
    })
}

/// An active Gateway of cluster `id` whose cables to the other members are
/// `connected`.
async fn connected_gateway(c: &Client, id: &str) -> anyhow::Result<()> {
    let gws: Api<ferry_api::Gateway> = Api::namespaced(c.clone(), "ferry-system");
    let name = format!("gw-{id}");
    let gw: ferry_api::Gateway = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "ferry-system"},
        "spec": {"clusterId": id, "hostname": format!("node-{id}")},
    }))?;
    gws.create(&PostParams::default(), &gw).await?;
    let connections: Vec<_> = IDS
        .iter()
        .filter(|other| **other != id)
        .map(|other| {
            json!({"endpoint": format!("{other}-ep"), "clusterId": other,
                   "cableDriver": "wireguard", "status": "connected"})
        })
        .collect();
    gws.patch_status(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"haStatus": "active", "connections": connections}})),
    )
    .await?;
    Ok(())
}

/// Service `svc-<i>`'s address in cluster `a` (its range is 100.65.0.0/16).
fn service_ip(i: usize) -> String {
    format!("100.65.{}.{}", i / 250, i % 250 + 1)
}

/// Its one pod's address.
pub fn pod_ip(i: usize) -> String {
    format!("100.64.{}.{}", i / 250, i % 250 + 1)
}

/// Creates Service `name` (address number `i`) with a ready EndpointSlice
/// `<name>-x` in `a`; its ClusterIP is `svc-<i>`'s when `fixed_ip`, else
/// one `a` allocates (once the agents run, derived Services take addresses
/// of the range too).
pub async fn create_service(
    a: &Client,
    name: &str,
    i: usize,
    fixed_ip: bool,
) -> anyhow::Result<()> {
    let cluster_ip = fixed_ip.then(|| service_ip(i));
    ferry_bench_kit::fixture::service_with_one_endpoint(
        a,
        NS,
        name,
        cluster_ip.as_deref(),
        &pod_ip(i),
    )
    .await
}

/// Exports `name` from `a`.
pub async fn create_export(a: &Client, name: &str) -> anyhow::Result<()> {
    let export: ferry_api::ServiceExport = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": NS},
    }))?;
    Api::<ferry_api::ServiceExport>::namespaced(a.clone(), NS)
        .create(&PostParams::default(), &export)
        .await?;
    Ok(())
}

/// `svc-0` … `svc-<n-1>`, each with its slice and export, 64 at a time.
pub async fn create_exported_services(a: &Client, n: usize) -> anyhow::Result<()> {
    futures::stream::iter(0..n)
        .map(|i| async move {
            let name = format!("svc-{i}");
            create_service(a, &name, i, true).await?;
            create_export(a, &name).await
        })
        .buffer_unordered(64)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}
