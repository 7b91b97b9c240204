//! Durability under `kill -9`: a real server process, 16 concurrent kube-rs
//! writers, SIGKILL while writes are in flight, restart on the same data
//! directory — and every write that was acknowledged with a 2xx must be
//! there. Repeated for 20 rounds on one data directory, so each round also
//! recovers from the previous crash.
//!
//! The server is `ferry-apiserver-crashtest` (src/bin), a bare
//! `ferry_apiserver::start`, so that cargo builds it for this test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, ResourceExt};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const WRITERS: usize = 16;
const ROUNDS: usize = 20;
const NS: &str = "crash";
/// Bound on anything that should take well under a second.
const BOUND: Duration = Duration::from_secs(60);

/// The server process; SIGKILLed on drop.
struct ServerProcess {
    child: Child,
    url: String,
}

impl ServerProcess {
    async fn start(dir: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ferry-apiserver-crashtest"))
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("the crash-test server starts");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let url = tokio::time::timeout(BOUND, async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(url) = line.strip_prefix("ready ") {
                    return url.to_string();
                }
            }
            panic!("the server exited before it was ready");
        })
        .await
        .expect("the server gets ready");
        ServerProcess { child, url }
    }

    /// `kill -9`, and reap it.
    async fn kill9(mut self) {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
    }
}

async fn client(dir: &Path, url: &str) -> Client {
    let kubeconfig = Kubeconfig::read_from(dir.join("admin.kubeconfig")).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    assert_eq!(config.cluster_url.to_string().trim_end_matches('/'), url);
    Client::try_from(config).unwrap()
}

fn configmap(name: &str) -> ConfigMap {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": NS},
        "data": {"name": name},
    }))
    .unwrap()
}

/// What the writers did, across all rounds.
#[derive(Default)]
struct Ledger {
    /// Every configmap a create was sent for.
    attempted: BTreeSet<String>,
    /// Every configmap whose create got a 2xx.
    acked: BTreeSet<String>,
    /// Per writer counter: highest value sent in a patch.
    counter_sent: BTreeMap<usize, u64>,
    /// Per writer counter: highest value whose patch got a 2xx.
    counter_acked: BTreeMap<usize, u64>,
}

/// Checks the restarted server against the ledger.
async fn verify(client: &Client, ledger: &Ledger, round: usize) {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    let list = api.list(&ListParams::default()).await.unwrap();
    let mut present = BTreeSet::new();
    let mut counters = BTreeMap::new();
    for cm in list.items {
        let name = cm.name_any();
        let data = cm.data.unwrap_or_default();
        if let Some(writer) = name.strip_prefix("counter-") {
            let n: u64 = data.get("n").map_or(0, |n| n.parse().unwrap());
            counters.insert(writer.parse::<usize>().unwrap(), n);
        } else {
            assert_eq!(
                data.get("name"),
                Some(&name),
                "round {round}: {name} is corrupt"
            );
            present.insert(name);
        }
    }
    let lost: Vec<_> = ledger.acked.difference(&present).collect();
    assert!(
        lost.is_empty(),
        "round {round}: {} acknowledged creates lost after kill -9: {lost:?}",
        lost.len()
    );
    let invented: Vec<_> = present.difference(&ledger.attempted).collect();
    assert!(
        invented.is_empty(),
        "round {round}: objects nobody created: {invented:?}"
    );
    for writer in 0..WRITERS {
        let have = counters.get(&writer).copied();
        assert!(have.is_some(), "round {round}: counter-{writer} lost");
        let have = have.unwrap_or_default();
        let acked = ledger.counter_acked.get(&writer).copied().unwrap_or(0);
        let sent = ledger.counter_sent.get(&writer).copied().unwrap_or(0);
        assert!(
            acked <= have && have <= sent.max(acked),
            "round {round}: counter-{writer} is {have}; acknowledged {acked}, highest sent {sent}"
        );
    }
}

/// One writer: creates configmaps (and every 4th time bumps its counter
/// with a merge patch) until the server dies. Returns an error message if
/// a request failed before the kill.
async fn writer(
    client: Client,
    round: usize,
    id: usize,
    ledger: Arc<Mutex<Ledger>>,
    acked: Arc<AtomicUsize>,
    killed: Arc<AtomicBool>,
) -> Option<String> {
    let api: Api<ConfigMap> = Api::namespaced(client, NS);
    for n in 0u64.. {
        let name = format!("r{round}-w{id}-{n}");
        ledger.lock().unwrap().attempted.insert(name.clone());
        let result = api.create(&PostParams::default(), &configmap(&name)).await;
        match result {
            Ok(_) => {
                ledger.lock().unwrap().acked.insert(name);
                acked.fetch_add(1, Ordering::SeqCst);
            }
            Err(e) if killed.load(Ordering::SeqCst) => {
                let _ = e;
                return None;
            }
            Err(e) => return Some(format!("create {name}: {e}")),
        }
        if n % 4 == 3 {
            let value = {
                let mut l = ledger.lock().unwrap();
                let v = l.counter_sent.get(&id).copied().unwrap_or(0) + 1;
                l.counter_sent.insert(id, v);
                v
            };
            let patch = Patch::Merge(json!({"data": {"n": value.to_string()}}));
            let result = api
                .patch(&format!("counter-{id}"), &PatchParams::default(), &patch)
                .await;
            match result {
                Ok(_) => {
                    let mut l = ledger.lock().unwrap();
                    let best = l.counter_acked.entry(id).or_insert(0);
                    *best = (*best).max(value);
                }
                Err(_) if killed.load(Ordering::SeqCst) => return None,
                Err(e) => return Some(format!("patch counter-{id}: {e}")),
            }
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let ledger = Arc::new(Mutex::new(Ledger::default()));

    // Set up the namespace and one counter per writer.
    let server = ServerProcess::start(&dir).await;
    let c = client(&dir, &server.url).await;
    let ns: Namespace = serde_json::from_value(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}),
    )
    .unwrap();
    Api::<Namespace>::all(c.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), NS);
    for id in 0..WRITERS {
        let mut cm = configmap(&format!("counter-{id}"));
        cm.data = Some([("n".to_string(), "0".to_string())].into());
        api.create(&PostParams::default(), &cm).await.unwrap();
    }
    let mut server = Some(server);
    let mut client_now = c;

    for round in 0..ROUNDS {
        // Kill after a different number of acknowledged writes each round,
        // from almost at once to a few hundred.
        let kill_after = 1 + (round * 37) % 240;
        let acked = Arc::new(AtomicUsize::new(0));
        let killed = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..WRITERS)
            .map(|id| {
                tokio::spawn(writer(
                    client_now.clone(),
                    round,
                    id,
                    ledger.clone(),
                    acked.clone(),
                    killed.clone(),
                ))
            })
            .collect();
        tokio::time::timeout(BOUND, async {
            while acked.load(Ordering::SeqCst) < kill_after
                && !writers.iter().all(|w| w.is_finished())
            {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .expect("writers make progress");
        killed.store(true, Ordering::SeqCst);
        server.take().unwrap().kill9().await;
        for w in writers {
            let result = tokio::time::timeout(BOUND, w)
                .await
                .expect("writers notice the dead server")
                .unwrap();
            assert!(
                result.is_none(),
                "round {round}: {}",
                result.unwrap_or_default()
            );
        }

        let restarted = ServerProcess::start(&dir).await;
        client_now = client(&dir, &restarted.url).await;
        let snapshot = {
            let l = ledger.lock().unwrap();
            Ledger {
                attempted: l.attempted.clone(),
                acked: l.acked.clone(),
                counter_sent: l.counter_sent.clone(),
                counter_acked: l.counter_acked.clone(),
            }
        };
        verify(&client_now, &snapshot, round).await;
        server = Some(restarted);
    }
    let (acked, sent) = {
        let l = ledger.lock().unwrap();
        (l.acked.len(), l.attempted.len())
    };
    assert!(acked >= ROUNDS, "only {acked} writes were acknowledged");
    eprintln!("{ROUNDS} kill -9 rounds: {acked} creates acknowledged and kept, {sent} sent");
    server.take().unwrap().kill9().await;
}
