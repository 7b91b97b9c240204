//! End-to-end tests of `ferry sandbox`: real namespaces, bridges, nftables
//! and processes. They need root, `ip`, `nft`, `curl`, `kubectl` and the
//! `ferry` binary: target/debug/ferry (built if missing; run `cargo build -p
//! ferry` after changes) or FERRY_BIN. Without root they are skipped.
//!
//!     cargo build -p ferry && cargo nextest run -p ferry-sandbox Every test uses its own cluster names and deletes
//! its clusters on drop, even when it fails. The killed-create test runs
//! `delete --all`, so it holds an exclusive lock that every other test holds
//! shared.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use ferry_sandbox::Plan;
use ferry_sandbox::harness::{self, Cluster, ferry_bin, repo_root, unique, usable};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, Client};
use nix::fcntl::Flock;

fn lock(exclusive: bool) -> Flock<std::fs::File> {
    harness::lock(exclusive).unwrap()
}

/// `ferry ARGS…`, whatever its status.
fn ferry(args: &[&str]) -> std::process::Output {
    harness::output(Command::new(ferry_bin()).args(args)).unwrap()
}

/// A cluster of `nodes` nodes named after `tag`, with a client for its API;
/// `None` (the test is skipped) where sandbox tests cannot run.
async fn cluster(tag: &str, nodes: &str) -> Option<(Cluster, Client)> {
    if !usable() {
        return None;
    }
    let c = Cluster::create(&unique(tag), &["--nodes", nodes]).unwrap();
    let client = c.client().await.unwrap();
    Some((c, client))
}

async fn ready_addresses(client: &Client, ns: &str, svc: &str) -> BTreeSet<String> {
    let api: Api<EndpointSlice> = Api::namespaced(client.clone(), ns);
    let lp = ListParams::default().labels(&format!("kubernetes.io/service-name={svc}"));
    let Ok(list) = api.list(&lp).await else {
        return BTreeSet::new();
    };
    list.items
        .iter()
        .flat_map(|s| s.endpoints.iter())
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
        .flat_map(|e| e.addresses.iter().cloned())
        .collect()
}

async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn pod_names(client: &Client, ns: &str, labels: &str) -> Vec<String> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    api.list(&ListParams::default().labels(labels))
        .await
        .map(|l| {
            l.items
                .into_iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .filter_map(|p| p.metadata.name)
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a process exists and is not a zombie.
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, r)| !r.starts_with('Z')))
        .unwrap_or(false)
}

fn rss_kib(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_reaches_and_survives_pod_deletion() {
    if !usable() {
        return;
    }
    let started = Instant::now();
    let c = Cluster::create(&unique("ex"), &[]).unwrap();
    let created = started.elapsed();
    let client = c.client().await.unwrap();
    let example = repo_root().join("examples/nginx.yaml");
    c.kubectl(&["apply", "-f", example.to_str().unwrap()])
        .unwrap();
    wait_for("2 ready endpoints", Duration::from_secs(20), || {
        let client = client.clone();
        async move { ready_addresses(&client, "nginx-test", "nginx").await.len() == 2 }
    })
    .await;
    let ready = started.elapsed();
    eprintln!(
        "MEASURE create: {:.0} ms; create + example ready: {:.0} ms",
        created.as_secs_f64() * 1e3,
        ready.as_secs_f64() * 1e3
    );

    // A client pod (command from the host filesystem) on every node.
    let plan = c.plan().unwrap();
    let manifest = (0..plan.nodes)
        .map(|k| {
            format!(
                "apiVersion: v1\nkind: Pod\nmetadata: {{name: client{k}, namespace: nginx-test}}\nspec:\n  nodeName: {}\n  containers:\n  - {{name: c, image: debian, command: [sleep, infinity]}}\n---\n",
                plan.node_name(k)
            )
        })
        .collect::<String>();
    c.apply(&manifest).unwrap();

    let svc_ip = c.service_ip("nginx-test", "nginx").unwrap();
    assert!(plan.service_cidr.contains(svc_ip.parse().unwrap()));
    for k in 0..plan.nodes {
        let target = format!("nginx-test/client{k}");
        wait_for("client pod record", Duration::from_secs(10), || {
            let ok = ferry_sandbox::exec_target(&c.name, &target).is_ok();
            async move { ok }
        })
        .await;
        let by_ip = c
            .curl(&target, &format!("http://{svc_ip}:8080/ip"))
            .unwrap();
        assert!(by_ip.contains("/ip"), "{by_ip}");
        let by_name = c
            .curl(
                &target,
                "http://nginx.nginx-test.svc.cluster.local:8080/name",
            )
            .unwrap();
        assert!(by_name.starts_with("nginx-"), "{by_name}");
        let short = c.curl(&target, "http://nginx:8080/short").unwrap();
        assert!(short.contains("/short"), "{short}");
    }
    // A headless service resolves to the ready pod addresses.
    let headless = "apiVersion: v1\nkind: Service\nmetadata: {name: nginx-pods, namespace: nginx-test}\nspec:\n  clusterIP: None\n  selector: {app: nginx}\n  ports: [{name: http, port: 8080}]\n";
    c.apply(headless).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let want = ready_addresses(&client, "nginx-test", "nginx").await;
        let out = ferry(&[
            "sandbox",
            "exec",
            &c.name,
            "nginx-test/client0",
            "--",
            "getent",
            "ahostsv4",
            "nginx-pods.nginx-test.svc.cluster.local",
        ]);
        let got: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().next().map(String::from))
            .collect();
        if got == want {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "headless: got {got:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // From a node namespace too (hostNetwork view).
    c.curl(&plan.node_name(0), &format!("http://{svc_ip}:8080/node"))
        .unwrap();

    // Delete a pod: a new pod with a new IP, the slice follows, still reachable.
    let before = ready_addresses(&client, "nginx-test", "nginx").await;
    let victim = pod_names(&client, "nginx-test", "app=nginx").await[0].clone();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "nginx-test");
    let t0 = Instant::now();
    pods.delete(&victim, &DeleteParams::default())
        .await
        .unwrap();
    let mut first_new = None;
    loop {
        let now = ready_addresses(&client, "nginx-test", "nginx").await;
        let new = now.difference(&before).count() == 1;
        if new && first_new.is_none() {
            first_new = Some(t0.elapsed());
        }
        if new && now.len() == 2 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "no new ready address: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    eprintln!(
        "MEASURE delete pod -> new ready address in EndpointSlice: {:.0} ms",
        first_new.unwrap_or_default().as_secs_f64() * 1e3
    );
    let after = pod_names(&client, "nginx-test", "app=nginx").await;
    assert_eq!(after.len(), 2);
    assert!(!after.contains(&victim));
    c.curl(
        "nginx-test/client0",
        "http://nginx.nginx-test.svc.cluster.local:8080/after",
    )
    .unwrap();

    // RSS of the sandbox's own processes: supervisor and pods.
    let sup = ferry_sandbox::state::read_pid(&c.name).unwrap();
    let mut pod_rss = 0;
    for r in ferry_sandbox::state::pod_records(&c.name) {
        let out = Command::new("ip")
            .args(["netns", "pids", &r.netns])
            .output()
            .unwrap();
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            pod_rss += rss_kib(pid.parse().unwrap_or(0));
        }
    }
    eprintln!(
        "MEASURE RSS: supervisor {} KiB; pod processes {} KiB",
        rss_kib(sup),
        pod_rss
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemonset_follows_node_label() {
    let Some((c, client)) = cluster("ds", "3").await else {
        return;
    };
    let manifest = "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: gw, namespace: default}\nspec:\n  selector: {matchLabels: {app: gw}}\n  template:\n    metadata: {labels: {app: gw}}\n    spec:\n      hostNetwork: true\n      nodeSelector: {ferry.dev/gateway: \"true\"}\n      containers:\n      - {name: echo, image: ferry, args: [tools, tcp-echo, --port, \"9100\"]}\n";
    c.apply(manifest).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(pod_names(&client, "default", "app=gw").await.is_empty());

    let node = c.plan().unwrap().node_name(1);
    let nodes: Api<Node> = Api::all(client.clone());
    let label = |v: serde_json::Value| {
        Patch::Merge(serde_json::json!({"metadata": {"labels": {"ferry.dev/gateway": v}}}))
    };
    nodes
        .patch(&node, &PatchParams::default(), &label("true".into()))
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    wait_for(
        "a DaemonSet pod on the labelled node",
        Duration::from_secs(10),
        || {
            let pods = pods.clone();
            let node = node.clone();
            async move {
                let l = pods
                    .list(&ListParams::default().labels("app=gw"))
                    .await
                    .unwrap();
                l.items.len() == 1
                    && l.items[0]
                        .spec
                        .as_ref()
                        .and_then(|s| s.node_name.as_deref())
                        == Some(&node)
                    && ferry_sandbox::controllers::pod_ready(&l.items[0])
            }
        },
    )
    .await;
    // It really runs in the node's namespace. Ready means its process has
    // started, not that it listens yet (a loaded machine showed the gap).
    wait_for(
        "the DaemonSet pod listening on :9100 in the node's namespace",
        Duration::from_secs(10),
        || {
            let out = ferry(&["sandbox", "exec", &c.name, &node, "--", "ss", "-ltn"]);
            async move { String::from_utf8_lossy(&out.stdout).contains(":9100") }
        },
    )
    .await;

    nodes
        .patch(
            &node,
            &PatchParams::default(),
            &label(serde_json::Value::Null),
        )
        .await
        .unwrap();
    wait_for("the DaemonSet pod to go", Duration::from_secs(10), || {
        let client = client.clone();
        async move { pod_names(&client, "default", "app=gw").await.is_empty() }
    })
    .await;
    wait_for("the process to stop", Duration::from_secs(10), || {
        let out = ferry(&["sandbox", "exec", &c.name, &node, "--", "ss", "-ltn"]);
        let gone = !String::from_utf8_lossy(&out.stdout).contains(":9100");
        async move { gone }
    })
    .await;
}

fn leftovers(plan: &Plan) -> Vec<String> {
    let mut left: Vec<String> = ferry_sandbox::net::netns_list()
        .into_iter()
        .filter(|n| n.starts_with(&plan.netns_prefix()))
        .collect();
    left.extend(
        ferry_sandbox::net::host_links()
            .into_iter()
            .filter(|l| plan.owns_link(l)),
    );
    // Pod processes carry FERRY_SANDBOX=<name> in their environment.
    let marker = format!("FERRY_SANDBOX={}", plan.name);
    for d in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = d.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let env = std::fs::read(d.path().join("environ")).unwrap_or_default();
        if alive(pid) && env.split(|b| *b == 0).any(|v| v == marker.as_bytes()) {
            left.push(format!("process {pid}"));
        }
    }
    let tables = Command::new("nft")
        .args(["list", "tables"])
        .output()
        .unwrap();
    if String::from_utf8_lossy(&tables.stdout).contains(&plan.nft_table()) {
        left.push("host nft table".into());
    }
    if ferry_sandbox::state::cluster_dir(&plan.name).exists() {
        left.push(format!("state dir of {}", plan.name));
    }
    if std::path::Path::new("/etc/netns")
        .read_dir()
        .into_iter()
        .flatten()
        .flatten()
        .any(|d| {
            d.file_name()
                .to_string_lossy()
                .starts_with(&plan.netns_prefix())
        })
    {
        left.push("/etc/netns entries".into());
    }
    left
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clusters_coexist_and_delete_leaves_nothing() {
    if !usable() {
        return;
    }
    let a = Cluster::create(&unique("a"), &[]).unwrap();
    let b = Cluster::create(&unique("b"), &["--nodes", "1"]).unwrap();
    let (pa, pb) = (a.plan().unwrap(), b.plan().unwrap());
    for (x, y) in [
        (pa.pod_cidr, pb.pod_cidr),
        (pa.service_cidr, pb.service_cidr),
        (pa.pod_cidr, pb.service_cidr),
        (pa.service_cidr, pb.pod_cidr),
    ] {
        assert!(!x.overlaps(&y), "{x} overlaps {y}");
    }
    let example = repo_root().join("examples/nginx.yaml");
    for c in [&a, &b] {
        c.kubectl(&["apply", "-f", example.to_str().unwrap()])
            .unwrap();
    }
    for c in [&a, &b] {
        let client = c.client().await.unwrap();
        wait_for("ready endpoints", Duration::from_secs(20), || {
            let client = client.clone();
            async move { ready_addresses(&client, "nginx-test", "nginx").await.len() == 2 }
        })
        .await;
        let node = c.plan().unwrap().node_name(0);
        let reply = c
            .curl(&node, "http://nginx.nginx-test.svc.cluster.local:8080/")
            .unwrap();
        assert!(reply.starts_with("nginx-"));
        // Each cluster's pod IPs come from its own pod CIDR.
        for ip in ready_addresses(&client, "nginx-test", "nginx").await {
            assert!(c.plan().unwrap().pod_cidr.contains(ip.parse().unwrap()));
        }
    }
    // Nodes of different clusters see each other on the WAN.
    let out = ferry(&[
        "sandbox",
        "exec",
        &a.name,
        &pa.node_name(0),
        "--",
        "ping",
        "-c1",
        "-W2",
        &pb.node_wan_ip(0).to_string(),
    ]);
    assert!(out.status.success(), "WAN ping failed");
    // Pods reach the WAN too (masqueraded behind their node).
    let pod = ferry_sandbox::state::pod_records(&a.name)
        .into_iter()
        .find(|r| r.namespace == "nginx-test")
        .unwrap();
    let out = ferry(&[
        "sandbox",
        "exec",
        &a.name,
        &format!("nginx-test/{}", pod.name),
        "--",
        "ping",
        "-c1",
        "-W2",
        &pb.node_wan_ip(0).to_string(),
    ]);
    assert!(out.status.success(), "WAN ping from a pod failed");

    // Delete a: nothing of it is left; b still works.
    let sup = ferry_sandbox::state::read_pid(&a.name).unwrap();
    let out = ferry(&["sandbox", "delete", &a.name]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(leftovers(&pa), Vec::<String>::new());
    assert!(!alive(sup), "supervisor still running");
    b.curl(
        &pb.node_name(0),
        "http://nginx.nginx-test.svc.cluster.local:8080/",
    )
    .unwrap();
    drop(b);
    assert_eq!(leftovers(&pb), Vec::<String>::new());
}

#[test]
fn killed_create_is_swept_by_delete_all() {
    if !usable() {
        return;
    }
    let _exclusive = lock(true);
    let name = unique("k");
    for delay_ms in [5u64, 40, 120] {
        let mut child = Command::new(ferry_bin())
            .args(["sandbox", "create", &name, "--nodes", "3"])
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        let plan = ferry_sandbox::state::load_plan(&name).ok();
        let out = ferry(&["sandbox", "delete", "--all"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        if let Some(plan) = plan {
            assert_eq!(leftovers(&plan), Vec::<String>::new());
        }
        let ours: Vec<String> = ferry_sandbox::net::netns_list()
            .into_iter()
            .chain(ferry_sandbox::net::host_links())
            .filter(|n| n.starts_with("fsb"))
            .collect();
        assert!(ours.is_empty(), "left after delete --all: {ours:?}");
        assert!(ferry_sandbox::state::cluster_names().is_empty());
        let supervisors = Command::new("pgrep")
            .args(["-f", "sandbox supervise"])
            .output()
            .unwrap();
        assert!(
            supervisors.stdout.is_empty(),
            "supervisors left after delete --all: {}",
            String::from_utf8_lossy(&supervisors.stdout)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashing_container_restarts_and_keeps_logs() {
    let Some((c, client)) = cluster("cr", "1").await else {
        return;
    };
    let manifest = "apiVersion: v1\nkind: Pod\nmetadata: {name: crash, namespace: default}\nspec:\n  containers:\n  - {name: c, image: debian, command: [sh, -c, 'echo started $POD_NAME; exit 3']}\n";
    c.apply(manifest).unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    // Backoff 1 s, then 2 s: the second restart comes after about 3 s.
    wait_for("two restarts", Duration::from_secs(15), || {
        let pods = pods.clone();
        async move {
            pods.get("crash")
                .await
                .ok()
                .and_then(|p| {
                    p.status?
                        .container_statuses?
                        .first()
                        .map(|s| s.restart_count)
                })
                .is_some_and(|n| n >= 2)
        }
    })
    .await;
    let out = ferry(&["sandbox", "logs", &c.name, "default/crash"]);
    let logs = String::from_utf8_lossy(&out.stdout);
    assert!(logs.matches("started crash").count() >= 3, "{logs}");
}

/// A stand-in for ferry's MCS DNS: answers every A query with 100.70.0.9.
const FAKE_DNS: &str = r#"
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 5353))
while True:
    q, a = s.recvfrom(512)
    i = 12
    while q[i]:
        i += q[i] + 1
    i += 5
    s.sendto(q[:2] + b"\x81\x80" + q[4:6] + b"\x00\x01\x00\x00\x00\x00" + q[12:i]
             + b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x05\x00\x04" + bytes([100, 70, 0, 9]), a)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clusterset_local_goes_to_the_ferry_dns_service() {
    let Some((c, client)) = cluster("cs", "1").await else {
        return;
    };
    let docs = serde_json::json!([
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ferry-system"}},
            {"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": "fake-dns", "namespace": "ferry-system", "labels": {"app": "dns"}},
             "spec": {"containers": [{"name": "dns", "image": "python",
                "command": ["python3", "-c", FAKE_DNS]}]}},
            {"apiVersion": "v1", "kind": "Service",
             "metadata": {"name": "ferry-dns", "namespace": "ferry-system"},
             "spec": {"selector": {"app": "dns"},
                "ports": [{"name": "dns", "port": 53, "targetPort": 5353, "protocol": "UDP"}]}},
    ]);
    // JSON documents in one YAML stream.
    let manifest = docs
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("\n---\n");
    c.apply(&manifest).unwrap();
    wait_for("fake DNS endpoint", Duration::from_secs(10), || {
        let client = client.clone();
        async move {
            ready_addresses(&client, "ferry-system", "ferry-dns")
                .await
                .len()
                == 1
        }
    })
    .await;
    let server = format!("@{}", c.plan().unwrap().host_ip());
    let node = c.plan().unwrap().node_name(0);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = ferry(&[
            "sandbox",
            "exec",
            &c.name,
            &node,
            "--",
            "dig",
            "+short",
            "+time=1",
            "+tries=1",
            &server,
            "web.demo.svc.clusterset.local",
        ]);
        if String::from_utf8_lossy(&out.stdout).trim() == "100.70.0.9" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "clusterset.local not forwarded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Other names never leave the cluster DNS.
    let out = ferry(&[
        "sandbox",
        "exec",
        &c.name,
        &node,
        "--",
        "dig",
        "+time=1",
        "+tries=1",
        &server,
        "example.com",
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("REFUSED"));
}

/// Deployments act through ReplicaSets: `kubectl rollout status`, `history`
/// and `undo` work, each template has its ReplicaSet and revision, and the
/// API server gave the Service its address from the cluster's range.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollouts_go_through_replica_sets() {
    let Some((c, _client)) = cluster("ro", "1").await else {
        return;
    };
    let deployment = |port: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: echo, namespace: default}}\nspec:\n  replicas: 2\n  selector: {{matchLabels: {{app: echo}}}}\n  template:\n    metadata: {{labels: {{app: echo}}}}\n    spec:\n      containers:\n      - {{name: echo, image: ferry, args: [tools, tcp-echo, --port, \"{port}\"]}}\n---\napiVersion: v1\nkind: Service\nmetadata: {{name: echo, namespace: default}}\nspec:\n  selector: {{app: echo}}\n  ports: [{{port: 80, targetPort: {port}}}]\n"
        )
    };
    let rollout_status = || {
        c.kubectl(&["rollout", "status", "deployment/echo", "--timeout=60s"])
            .unwrap()
    };
    c.apply(&deployment("9100")).unwrap();
    assert!(rollout_status().contains("successfully rolled out"));
    let ip = c.service_ip("default", "echo").unwrap();
    let range = c.plan().unwrap().service_cidr.to_string();
    let prefix = range.split('.').take(2).collect::<Vec<_>>().join(".");
    assert!(ip.starts_with(&prefix), "{ip} is not from {range}");

    c.apply(&deployment("9101")).unwrap();
    assert!(rollout_status().contains("successfully rolled out"));
    let history = c
        .kubectl(&["rollout", "history", "deployment/echo"])
        .unwrap();
    assert!(history.contains('1') && history.contains('2'), "{history}");
    let sets = c
        .kubectl(&["get", "replicasets", "-l", "app=echo", "-o", "jsonpath={range .items[*]}{.metadata.name} {.spec.replicas} {.metadata.annotations.deployment\\.kubernetes\\.io/revision}{\"\\n\"}{end}"])
        .unwrap();
    assert_eq!(sets.lines().count(), 2, "{sets}");
    assert!(sets.lines().any(|l| l.ends_with(" 2 2")), "{sets}");
    assert!(sets.lines().any(|l| l.ends_with(" 0 1")), "{sets}");

    c.kubectl(&["rollout", "undo", "deployment/echo"]).unwrap();
    assert!(rollout_status().contains("successfully rolled out"));
    let args = c
        .kubectl(&[
            "get",
            "deployment",
            "echo",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].args}",
        ])
        .unwrap();
    assert!(args.contains("9100"), "{args}");
    let sets = c
        .kubectl(&["get", "replicasets", "-l", "app=echo", "-o", "jsonpath={range .items[*]}{.spec.replicas} {.metadata.annotations.deployment\\.kubernetes\\.io/revision}{\"\\n\"}{end}"])
        .unwrap();
    assert!(
        sets.lines().any(|l| l == "2 3"),
        "the first set is back as revision 3: {sets}"
    );
    let pods = c
        .kubectl(&[
            "get",
            "pods",
            "-l",
            "app=echo",
            "-o",
            "jsonpath={range .items[*]}{.metadata.ownerReferences[0].kind}{\"\\n\"}{end}",
        ])
        .unwrap();
    assert!(pods.lines().all(|k| k == "ReplicaSet"), "{pods}");
}
