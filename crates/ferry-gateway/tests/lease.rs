//! The gateway election against a real (in-process) ferry API server, with
//! the real peer probes on loopback: one holder at a time, a graceful stop
//! hands over at once, a crashed holder is replaced as soon as the probes
//! find it down (long before the lease would expire), and a restarted node
//! comes back as standby. No root needed: only the Lease and the probes are
//! exercised.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ferry_gateway::lease::{self, LeaseTiming};
use ferry_gateway::peer::{Detect, HolderVerdict};
use ferry_gateway::peer_prober;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Long enough that a takeover by expiry is told apart from one by probes.
const TIMING: LeaseTiming = LeaseTiming {
    duration: Duration::from_secs(4),
    renew: Duration::from_secs(1),
};

const DETECT: Detect = Detect {
    interval: Duration::from_millis(50),
    multiplier: 3,
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

/// A free loopback address for a node's peer probes.
fn probe_addr() -> SocketAddr {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap()
}

/// A gateway's election as the engine runs it: the peer-probe socket (once
/// a predecessor at the same address has let go of it), the prober and the
/// lease loop; aborting the task is a kill -9.
fn start(client: &Client, name: &str, addr: SocketAddr) -> Node {
    let api: Api<Lease> = Api::namespaced(client.clone(), "ferry-system");
    let (active_tx, active) = watch::channel(false);
    let (stop, stop_rx) = watch::channel(false);
    let name = name.to_string();
    let task = tokio::spawn(async move {
        let socket = peer_prober::bind_when_free(addr).await.unwrap();
        let (target_tx, target_rx) = watch::channel(None);
        let (verdict_tx, verdict_rx) = watch::channel(HolderVerdict::default());
        let prober = peer_prober::run(
            socket,
            DETECT,
            rand_seq(),
            active_tx.subscribe(),
            target_rx,
            verdict_tx,
        );
        let election = lease::run(
            lease::Election {
                api,
                name: "ferry-gateway".into(),
                me: name,
                timing: TIMING,
                probe_addr: Some(addr),
            },
            lease::PeerLink {
                target: target_tx,
                verdict: verdict_rx,
            },
            active_tx,
            stop_rx,
        );
        tokio::select! {
            _ = election => {}
            _ = prober => {}
        }
    });
    Node { active, stop, task }
}

fn rand_seq() -> u64 {
    u64::from(std::process::id()) << 32 | u64::from(Instant::now().elapsed().subsec_nanos())
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
    let (addr_a, addr_b) = (probe_addr(), probe_addr());

    let a = start(&client, "node-a", addr_a);
    wait_active(&a, "the first node").await;
    let b = start(&client, "node-b", addr_b);
    // b stays standby while a renews (and answers b's probes).
    tokio::time::sleep(TIMING.renew * 3).await;
    assert!(*a.active.borrow() && !*b.active.borrow());
    assert_eq!(holder(&client).await.as_deref(), Some("node-a"));

    // Graceful stop: a releases, b takes over well before the lease expires.
    a.stop.send(true).unwrap();
    a.task.await.unwrap();
    let took = wait_active(&b, "b after a's graceful stop").await;
    assert!(
        took < TIMING.duration / 2,
        "a graceful handover took {took:?}, about as long as an expiry"
    );
    assert_eq!(holder(&client).await.as_deref(), Some("node-b"));

    // a restarts: standby, b keeps the lease.
    let a = start(&client, "node-a", addr_a);
    tokio::time::sleep(TIMING.renew * 3).await;
    assert!(!*a.active.borrow() && *b.active.borrow());

    // b crashes (no release): a's probes find it down and a takes over
    // long before the lease would expire.
    let crashed = Instant::now();
    b.task.abort();
    let _ = b.task.await;
    wait_active(&a, "a after b crashed").await;
    let gap = crashed.elapsed();
    assert!(
        gap < TIMING.duration / 2,
        "took over only after {gap:?}: by expiry, not by the probes"
    );
    assert_eq!(holder(&client).await.as_deref(), Some("node-a"));
    eprintln!("crash takeover after {gap:?}");
    drop(b.stop);
}

/// A node's gateway pod replaced while a standby runs elsewhere: the new
/// process on the same node must not win the lease from the standby,
/// whether the old one released it (graceful) or was killed holding it,
/// and however the old and new processes overlap. Several rounds with the
/// roles alternating.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_holder_hands_over_to_the_standby_not_its_successor() {
    let dir = tempfile::tempdir().unwrap();
    let (client, _server) = client(dir.path()).await;
    let mut addrs = (probe_addr(), probe_addr());
    let mut active = start(&client, "node-a", addrs.0);
    wait_active(&active, "the first node").await;
    let mut standby = start(&client, "node-b", addrs.1);
    let mut names = ("node-a", "node-b");
    // Let b see a answer before the first round.
    tokio::time::sleep(DETECT.time() * 4).await;
    for round in 0..8 {
        let graceful = round % 2 == 0;
        // Graceful: the successor starts while the old process still runs
        // (a pod replaced before the old one has stopped); killed: at once
        // after the kill (a container restart).
        let successor = if graceful {
            let successor = start(&client, names.0, addrs.0);
            tokio::time::sleep(DETECT.interval * (round + 1) / 2).await;
            active.stop.send(true).unwrap();
            active.task.await.unwrap();
            successor
        } else {
            active.task.abort();
            let _ = active.task.await;
            start(&client, names.0, addrs.0)
        };
        let took = wait_active(&standby, &format!("round {round}: the standby")).await;
        assert!(
            took < TIMING.duration / 2,
            "round {round}: the standby took over only after {took:?}"
        );
        tokio::time::sleep(lease::RESTART_PATIENCE * 2).await;
        assert!(
            *standby.active.borrow() && !*successor.active.borrow(),
            "round {round} (graceful: {graceful}): {}'s successor took the lease",
            names.0
        );
        assert_eq!(holder(&client).await.as_deref(), Some(names.1));
        (active, standby) = (standby, successor);
        names = (names.1, names.0);
        addrs = (addrs.1, addrs.0);
    }
}

/// Another gateway took the lease from a live holder (a standby that
/// judged it down): the holder must see it on its watch and step down at
/// once, not keep forwarding until its renewal fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_whose_lease_was_taken_steps_down_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (client, _server) = client(dir.path()).await;
    let a = start(&client, "node-a", probe_addr());
    wait_active(&a, "the first node").await;
    let api: Api<Lease> = Api::namespaced(client.clone(), "ferry-system");
    let mut lease = api.get("ferry-gateway").await.unwrap();
    if let Some(spec) = lease.spec.as_mut() {
        spec.holder_identity = Some("node-b".into());
    }
    api.replace("ferry-gateway", &Default::default(), &lease)
        .await
        .unwrap();
    let t0 = Instant::now();
    let mut rx = a.active.clone();
    tokio::time::timeout(TIMING.renew, rx.wait_for(|active| !*active))
        .await
        .expect("the old holder kept acting as active after losing the lease")
        .unwrap();
    eprintln!("stepped down {:?} after the takeover", t0.elapsed());
    assert_eq!(holder(&client).await.as_deref(), Some("node-b"));
    a.task.abort();
}
