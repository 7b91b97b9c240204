//! Shared test setup: in-process `ferry apiserver`s as a broker and member
//! clusters, `deploy_broker` + `join` for real, the real `ferry agent` of a
//! member on demand, bounded polls, and helpers to read and seed objects
//! (in `objects`).
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

mod objects;

// Each test file uses some of these (as with `dead_code` above).
#[allow(unused_imports)]
pub use objects::{apply, create, get, set_status};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ferry_api::BrokerInfo;
use ferry_ctl::TargetSpec;
use ferry_ctl::install::{self, DeployBrokerOptions, JoinOptions};
use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio::sync::oneshot;

pub struct Server {
    pub dir: PathBuf,
    /// Where it listens; a restart binds the same address again.
    pub addr: SocketAddr,
    pub running: Option<ferry_apiserver::RunningServer>,
    pub client: Client,
    pub kubeconfig: PathBuf,
    pub url: String,
}

/// A client with the admin credentials of a kubeconfig.
pub async fn admin_client(kubeconfig: &Path) -> Client {
    let kc = Kubeconfig::read_from(kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

/// Test servers stand for clusters whose Services have addresses from
/// several ranges (100.65.0.0/16 in `a`, 100.67.0.0/16 in `b`, …): each
/// accepts any address of the test space.
fn test_service_range(config: &mut ferry_apiserver::Config) {
    config.service_cluster_ip_range = "100.64.0.0/10".parse().unwrap();
}

impl Server {
    /// Starts a server on a free loopback port, its state in `dir`.
    pub async fn start(dir: PathBuf) -> Server {
        let mut config = ferry_apiserver::Config::new(&dir, "127.0.0.1:0".parse().unwrap());
        test_service_range(&mut config);
        let running = ferry_apiserver::start(config).await.unwrap();
        Server {
            dir,
            addr: running.addr,
            client: admin_client(&running.admin_kubeconfig).await,
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

    pub async fn restart(&mut self) {
        self.restart_with(|_| {}).await;
    }

    /// Restarts on the same address and data with `tune` applied to the
    /// default configuration.
    pub async fn restart_with(&mut self, tune: impl Fn(&mut ferry_apiserver::Config)) {
        self.stop().await;
        // The port was just released; binding it again may take a moment.
        for _ in 0..100 {
            let mut config = ferry_apiserver::Config::new(&self.dir, self.addr);
            test_service_range(&mut config);
            tune(&mut config);
            match ferry_apiserver::start(config).await {
                Ok(r) => {
                    self.running = Some(r);
                    return;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        panic!("the server in {} did not restart", self.dir.display());
    }
}

/// The real `ferry agent` of a joined member, running until stopped or
/// dropped.
pub struct Agent {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Agent {
    pub async fn start(member: &Server) -> Agent {
        let (cfg, info) = ferry_agent::load_config(&member.client, "ferry-system")
            .await
            .unwrap();
        let broker = ferry_kube::broker_client(&info, &info.token).await.unwrap();
        let (stop, rx) = oneshot::channel();
        let task = tokio::spawn(ferry_agent::run(
            cfg,
            member.client.clone(),
            broker,
            async {
                let _ = rx.await;
            },
        ));
        Agent { stop, task }
    }

    /// Asks the agent to stop and waits until it has (a panic in it fails
    /// the test here).
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap();
    }
}

pub struct Clusterset {
    pub tmp: tempfile::TempDir,
    pub broker: Server,
    pub info: BrokerInfo,
    pub members: Vec<Server>,
    /// The running agent of each member, by index.
    pub agents: Vec<Option<Agent>>,
}

impl Clusterset {
    pub async fn start_agent(&mut self, member: usize) {
        self.agents[member] = Some(Agent::start(&self.members[member]).await);
    }

    pub async fn stop_agent(&mut self, member: usize) {
        if let Some(agent) = self.agents[member].take() {
            agent.stop().await;
        }
    }

    pub async fn stop_agents(&mut self) {
        for member in 0..self.agents.len() {
            self.stop_agent(member).await;
        }
    }
}

/// A broker and one member per id, each joined with disjoint CIDRs
/// (`100.{64+2i}.0.0/16` pods, `100.{65+2i}.0.0/16` services). No agent runs.
pub async fn clusterset(ids: &[&str]) -> Clusterset {
    set_up(ids, false).await
}

/// As [`clusterset`], and each member's agent starts right after its join.
pub async fn clusterset_with_agents(ids: &[&str]) -> Clusterset {
    set_up(ids, true).await
}

async fn set_up(ids: &[&str], with_agents: bool) -> Clusterset {
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
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let mut members = Vec::new();
    let mut agents = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let server = Server::start(tmp.path().join(id)).await;
        install::join(&server.client, &info, &join_options(id, i))
            .await
            .unwrap();
        let agent = if with_agents {
            Some(Agent::start(&server).await)
        } else {
            None
        };
        members.push(server);
        agents.push(agent);
    }
    Clusterset {
        tmp,
        broker,
        info,
        members,
        agents,
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
        gateway: Default::default(),
        globalnet: None,
        network_plugin: None,
    }
}

/// A client for the broker with a member's own (cluster-scoped) token.
pub async fn cluster_broker_client(member: &Server) -> Client {
    let (_, info) = ferry_agent::load_config(&member.client, "ferry-system")
        .await
        .unwrap();
    ferry_kube::broker_client(&info, &info.token).await.unwrap()
}

/// How often `eventually` checks.
const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// Waits up to 15 s for `check` to hold; see [`eventually_within`].
pub async fn eventually<F, Fut>(what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    eventually_within(Duration::from_secs(15), what, check).await;
}

/// Checks every 25 ms until `check` holds, at most `budget / 25 ms` times;
/// panics naming `what` if it never does. A bounded poll, never a timed
/// assertion: a fast machine passes as soon as the state is reached.
pub async fn eventually_within<F, Fut>(budget: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let polls = budget.as_millis() / POLL_INTERVAL.as_millis();
    for _ in 0..polls {
        if check().await {
            return;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    panic!("timed out waiting for {what}");
}
