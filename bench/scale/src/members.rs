//! Bringing the clusters up: the broker (child process, `ferry deploy-broker`
//! on it) and the members (in-process API servers, `ferry join`ed, with
//! their services, slices and exports), and down again.

use std::path::Path;
use std::process::Stdio;

use anyhow::Context;
use ferry_ctl::install::{self, DeployBrokerOptions, JoinOptions};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{Api, PostParams};
use kube::config::Kubeconfig;
use serde_json::json;
use tokio::io::AsyncBufReadExt;

use crate::Args;
use ferry_bench_kit::client;

/// The namespace every member exports its services from.
pub const NS: &str = "bench";

/// Members brought up at once (each: start, join, create its objects).
const START_CONCURRENCY: usize = 8;

/// The broker's API server (a child process) with the broker deployed.
pub struct Broker {
    pub process: tokio::process::Child,
    pub client: Client,
    pub info: ferry_api::BrokerInfo,
}

impl Broker {
    pub async fn start(tmp: &Path) -> anyhow::Result<Broker> {
        let dir = tmp.join("broker");
        std::fs::create_dir_all(&dir)?;
        let mut process = tokio::process::Command::new(std::env::current_exe()?)
            .arg("broker")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting the broker")?;
        let stdout = process.stdout.take().context("the broker's stdout")?;
        let line = tokio::io::BufReader::new(stdout)
            .lines()
            .next_line()
            .await?
            .context("the broker exited before serving")?;
        let (kubeconfig, joiner) = line.split_once('\t').context("the broker's first line")?;
        let kc = Kubeconfig::read_from(kubeconfig)?;
        let client = client(Path::new(kubeconfig)).await?;
        let info = install::deploy_broker(
            &client,
            &kc,
            &DeployBrokerOptions {
                namespace: "ferry-broker".into(),
                joiner_token: Some(joiner.to_string()),
                ..Default::default()
            },
        )
        .await?;
        Ok(Broker {
            process,
            client,
            info,
        })
    }

    pub fn pid(&self) -> u32 {
        self.process.id().unwrap_or(0)
    }
}

/// One member cluster: its API server (in this process) and a client.
pub struct Member {
    pub id: String,
    pub server: ferry_apiserver::RunningServer,
    pub client: Client,
}

/// Cluster `i`'s id.
pub fn cluster_id(i: usize) -> String {
    format!("c{i:03}")
}

/// Service `j` of cluster `i` (distinct across clusters).
pub fn service_name(i: usize, j: usize) -> String {
    format!("c{i:03}-s{j:03}")
}

/// Cluster `i`'s pod and service CIDRs: /20s of 100.64.0.0/11 and
/// 100.96.0.0/11 (512 clusters fit).
fn cidrs(i: usize) -> (String, String) {
    let (hi, lo) = (i / 16, (i % 16) * 16);
    (
        format!("100.{}.{lo}.0/20", 64 + hi),
        format!("100.{}.{lo}.0/20", 96 + hi),
    )
}

pub async fn start_all(tmp: &Path, broker: &Broker, args: &Args) -> anyhow::Result<Vec<Member>> {
    let t = std::time::Instant::now();
    let mut members: Vec<Member> = futures::stream::iter(0..args.clusters)
        .map(|i| start_member(tmp, broker, i, args.services))
        .buffer_unordered(START_CONCURRENCY)
        .try_collect()
        .await?;
    members.sort_by(|a, b| a.id.cmp(&b.id));
    eprintln!(
        "{} members with {} services each up in {:.1?}",
        args.clusters,
        args.services,
        t.elapsed()
    );
    Ok(members)
}

async fn start_member(
    tmp: &Path,
    broker: &Broker,
    i: usize,
    services: usize,
) -> anyhow::Result<Member> {
    let id = cluster_id(i);
    let (pods, svcs) = cidrs(i);
    let mut config = ferry_apiserver::Config::new(tmp.join(&id), "127.0.0.1:0".parse()?);
    config.service_cluster_ip_range = svcs.parse()?;
    let server = ferry_apiserver::start(config).await?;
    let client = client(&server.admin_kubeconfig).await?;
    install::join(
        &client,
        &broker.info,
        &JoinOptions {
            cluster_id: id.clone(),
            cluster_cidrs: vec![pods.parse()?],
            service_cidrs: vec![svcs.parse()?],
            cable_driver: None,
            gateway_node: None,
            image: "ferry:bench".into(),
            gateway: Default::default(),
            globalnet: None,
            network_plugin: None,
        },
    )
    .await
    .with_context(|| format!("joining {id}"))?;
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": NS}}))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await?;
    futures::stream::iter(0..services)
        .map(|j| create_service(&client, i, j))
        .buffer_unordered(32)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(Member { id, server, client })
}

/// A Service with one ready endpoint, its EndpointSlice and its export.
async fn create_service(c: &Client, i: usize, j: usize) -> anyhow::Result<()> {
    let name = service_name(i, j);
    let (hi, lo) = (64 + i / 16, (i % 16) * 16 + j / 250);
    let pod_ip = format!("100.{hi}.{lo}.{}", j % 250 + 1);
    ferry_bench_kit::fixture::service_with_one_endpoint(c, NS, &name, None, &pod_ip).await?;
    let export: ferry_api::ServiceExport =
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": NS}}))?;
    Api::<ferry_api::ServiceExport>::namespaced(c.clone(), NS)
        .create(&PostParams::default(), &export)
        .await?;
    Ok(())
}

pub async fn stop_all(members: Vec<Member>) {
    for m in members {
        m.server.shutdown().await;
    }
}
