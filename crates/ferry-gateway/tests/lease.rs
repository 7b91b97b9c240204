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

/// A node's gateway pod replaced while a standby runs elsewhere: the new
/// process on the same node must not win the lease from the standby,
/// whether the old one released it (graceful) or was killed holding it,
/// and however the old and new processes overlap. Each round is a race the
/// successor would win about half the time without the rule, so several
/// rounds are run with the roles alternating.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_holder_hands_over_to_the_standby_not_its_successor() {
    let dir = tempfile::tempdir().unwrap();
    let (client, _server) = client(dir.path()).await;
    let mut active = start(&client, "node-a");
    wait_active(&active, "the first node").await;
    let mut standby = start(&client, "node-b");
    let mut names = ("node-a", "node-b");
    for round in 0..8 {
        let graceful = round % 2 == 0;
        // Graceful: the successor starts while the old process still runs
        // (a pod replaced before the old one has stopped); killed: at once
        // after the kill (a container restart).
        let successor = if graceful {
            let successor = start(&client, names.0);
            tokio::time::sleep(TIMING.renew * (round + 1) / 4).await;
            active.stop.send(true).unwrap();
            active.task.await.unwrap();
            successor
        } else {
            active.task.abort();
            let _ = active.task.await;
            start(&client, names.0)
        };
        wait_active(&standby, &format!("round {round}: the standby")).await;
        tokio::time::sleep(TIMING.duration * 2).await;
        assert!(
            *standby.active.borrow() && !*successor.active.borrow(),
            "round {round} (graceful: {graceful}): {}'s successor took the lease",
            names.0
        );
        assert_eq!(holder(&client).await.as_deref(), Some(names.1));
        (active, standby) = (standby, successor);
        names = (names.1, names.0);
    }
}
