//! The gateway election against a real (in-process) ferry API server: one
//! holder at a time, a graceful stop hands over at once, a crashed holder is
//! replaced after the lease duration, and a restarted node comes back as
//! standby. No root needed: only the Lease is exercised.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use ferry_gateway::lease::{self, LeaseTiming};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::sync::watch;
use tokio::task::JoinHandle;

const TIMING: LeaseTiming = LeaseTiming {
    duration: Duration::from_millis(500),
    renew: Duration::from_millis(100),
};

async fn client(dir: &std::path::Path) -> (Client, ferry_apiserver::RunningServer) {
    let config = ferry_apiserver::Config::new(dir, "127.0.0.1:0".parse().unwrap());
    let running = ferry_apiserver::start(config).await.unwrap();
    let client = ferry_kube::client_from_kubeconfig(Some(&running.admin_kubeconfig))
        .await
        .unwrap();
    let ns: Api<Namespace> = Api::all(client.clone());
    let body: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "ferry-system"}})).unwrap();
    ns.create(&PostParams::default(), &body).await.unwrap();
    (client, running)
}

struct Node {
    active: watch::Receiver<bool>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

fn start(client: &Client, name: &str) -> Node {
    let api: Api<Lease> = Api::namespaced(client.clone(), "ferry-system");
    let (active_tx, active) = watch::channel(false);
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(lease::run(
        api,
        "ferry-gateway".into(),
        name.into(),
        TIMING,
        active_tx,
        stop_rx,
    ));
    Node { active, stop, task }
}

async fn wait_active(node: &Node, what: &str) -> Duration {
    let t0 = Instant::now();
    let mut rx = node.active.clone();
    tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|a| *a))
        .await
        .unwrap_or_else(|_| panic!("{what}: never became active"))
        .unwrap();
    t0.elapsed()
}

async fn holder(client: &Client) -> Option<String> {
    let api: Api<Lease> = Api::namespaced(client.clone(), "ferry-system");
    api.get("ferry-gateway")
        .await
        .unwrap()
        .spec?
        .holder_identity
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_holder_graceful_handover_crash_takeover() {
    let dir = tempfile::tempdir().unwrap();
    let (client, _server) = client(dir.path()).await;

    let a = start(&client, "node-a");
    wait_active(&a, "the first node").await;
    let b = start(&client, "node-b");
    // b stays standby while a renews.
    tokio::time::sleep(TIMING.duration * 3).await;
    assert!(*a.active.borrow() && !*b.active.borrow());
    assert_eq!(holder(&client).await.as_deref(), Some("node-a"));

    // Graceful stop: a releases, b takes over well before the lease expires.
    a.stop.send(true).unwrap();
    a.task.await.unwrap();
    let took = wait_active(&b, "b after a's graceful stop").await;
    assert!(
        took < TIMING.duration,
        "a graceful handover took {took:?}, as long as an expiry"
    );
    assert_eq!(holder(&client).await.as_deref(), Some("node-b"));

    // a restarts: standby, b keeps the lease.
    let a = start(&client, "node-a");
    tokio::time::sleep(TIMING.duration * 3).await;
    assert!(!*a.active.borrow() && *b.active.borrow());

    // b crashes (no release): a takes over once the lease has gone unrenewed
    // for a full duration, and not before.
    let crashed = Instant::now();
    b.task.abort();
    let _ = b.task.await;
    wait_active(&a, "a after b crashed").await;
    let gap = crashed.elapsed();
    assert!(
        gap >= TIMING.duration - TIMING.renew,
        "took over too early: {gap:?}"
    );
    assert_eq!(holder(&client).await.as_deref(), Some("node-a"));
    eprintln!("crash takeover after {gap:?}");
    drop(b.stop);
}
