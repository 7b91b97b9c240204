#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Root-only: three route agents (the real daemon, `ferry_route_agent::run`)
//! against an in-process `ferry apiserver`, one per node namespace of the lab.
//! Everything they do follows the API: the cluster id from the
//! ClusterProperty, the gateway from the Endpoint (failover by replacing it
//! in place), remote CIDRs from Clusters. Stopping with the DaemonSet present
//! — or with the API down — leaves the data plane; stopping after the
//! DaemonSet is deleted removes it. Waits are bounded polls.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use ferry_api::labels::{CLUSTER, CNI_IFACE_IP};
use ferry_api::{Cluster, ClusterProperty, Endpoint};
use ferry_net::require_root;
use ferry_net::{ROUTE_AGENT_RULE_PRIORITY, ROUTE_AGENT_TABLE, VX_FERRY};
use ferry_route_agent::{Config, Outcome};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Namespace, Node};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const NS: &str = "ferry-system";

async fn client(kubeconfig: &Path) -> Client {
    ferry_kube::client_from_kubeconfig(Some(kubeconfig))
        .await
        .unwrap()
}

async fn wait_for(what: &str, mut ok: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "timed out: {what}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    start.elapsed()
}

fn vias(ns: Option<&str>) -> Vec<String> {
    ferry_net::list_routes(ns, ROUTE_AGENT_TABLE)
        .map(|rs| {
            rs.iter()
                .map(|r| {
                    format!(
                        "{} via {}",
                        r.dst,
                        r.via.map(|v| v.to_string()).unwrap_or_default()
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn all_via(gateway: usize) -> Vec<String> {
    ["100.127.1.0/24", "100.127.2.0/24"]
        .iter()
        .map(|c| format!("{c} via {}", NODE_IPS[gateway]))
        .collect()
}

fn endpoint(gateway: usize) -> Endpoint {
    let mut ep = Endpoint::new("c0", endpoint_spec(gateway));
    ep.meta_mut().labels = Some([(CLUSTER.to_string(), "c0".to_string())].into());
    ep
}

struct Agent {
    stop: oneshot::Sender<()>,
    task: JoinHandle<ferry_route_agent::Result<Outcome>>,
}

fn start_agent(client: &Client, lab: &Lab, i: usize) -> Agent {
    let mut cfg = Config::new(&node_name(i), NS);
    cfg.netns = lab.node(i).map(str::to_string);
    let (stop, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(ferry_route_agent::run(client.clone(), cfg, async move {
        let _ = rx.await;
    }));
    Agent { stop, task }
}

/// Whether the route agent's `ip ferry` nft table is in `ns`.
fn nft_table_exists(ns: Option<&str>) -> bool {
    let tables = ferry_net::nft(ns, &["list", "tables"]).unwrap();
    tables.contains("table ip ferry")
}

async fn stop_agent(agent: Agent) -> Outcome {
    agent.stop.send(()).unwrap();
    agent.task.await.unwrap().unwrap()
}

async fn start_server(dir: &Path, addr: std::net::SocketAddr) -> ferry_apiserver::RunningServer {
    for _ in 0..100 {
        match ferry_apiserver::start(ferry_apiserver::Config::new(dir, addr)).await {
            Ok(r) => return r,
            // The port was just released; binding it again may take a moment.
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    panic!("API server did not start");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemons_follow_the_api_and_uninstall_cleans_up() {
    require_root!();
    let lab = Lab::new();
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), "127.0.0.1:0".parse().unwrap()).await;
    let addr = server.addr;
    let c = client(&server.admin_kubeconfig).await;

    // What `ferry join` and `ferry agent` put in a cluster.
    let crds: Api<CustomResourceDefinition> = Api::all(c.clone());
    for crd in ferry_api::all_crds() {
        crds.create(&PostParams::default(), &crd).await.unwrap();
    }
    let pp = PostParams::default();
    Api::<Namespace>::all(c.clone())
        .create(
            &pp,
            &serde_json::from_value(json!({"metadata": {"name": NS}})).unwrap(),
        )
        .await
        .unwrap();
    let nodes: Api<Node> = Api::all(c.clone());
    for (i, ip) in NODE_IPS.iter().enumerate() {
        let name = node_name(i);
        nodes
            .create(
                &pp,
                &serde_json::from_value(json!({
                    "metadata": {"name": name},
                    "spec": {"podCIDR": node_pod_cidr(i).to_string()},
                }))
                .unwrap(),
            )
            .await
            .unwrap();
        let status = json!({"status": {"addresses": [
            {"type": "Hostname", "address": name},
            {"type": "InternalIP", "address": ip.to_string()},
        ]}});
        nodes
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .unwrap();
    }
    Api::<ClusterProperty>::all(c.clone())
        .create(&pp, &ClusterProperty::cluster_id("c0").unwrap())
        .await
        .unwrap();
    let clusters: Api<Cluster> = Api::namespaced(c.clone(), NS);
    for spec in [local_cluster(), remote_cluster()] {
        clusters
            .create(&pp, &Cluster::new(&spec.cluster_id.clone(), spec))
            .await
            .unwrap();
    }
    let endpoints: Api<Endpoint> = Api::namespaced(c.clone(), NS);
    endpoints.create(&pp, &endpoint(0)).await.unwrap();
    let daemonsets: Api<DaemonSet> = Api::namespaced(c.clone(), NS);
    let ds = json!({
        "metadata": {"name": "ferry-route-agent"},
        "spec": {
            "selector": {"matchLabels": {"app": "ra"}},
            "template": {"metadata": {"labels": {"app": "ra"}},
                         "spec": {"containers": [{"name": "ra", "image": "ferry"}]}},
        },
    });
    daemonsets
        .create(&pp, &serde_json::from_value(ds).unwrap())
        .await
        .unwrap();

    // n0 is the gateway.
    lab.cable_up(0);
    let mut agents: Vec<Option<Agent>> = (0..3).map(|i| Some(start_agent(&c, &lab, i))).collect();
    wait_for("n1 and n2 route via n0", || {
        vias(lab.node(1)) == all_via(0) && vias(lab.node(2)) == all_via(0)
    })
    .await;
    wait_for("vx-ferry on the gateway", || {
        ferry_net::link_exists(lab.node(0), VX_FERRY).unwrap_or(false)
    })
    .await;
    // The nft table is the last step of an apply: once every node has it,
    // the rules and sysctls the path needs are there too (routes and
    // vx-ferry show up earlier, and a ping sent then could be dropped).
    wait_for("the first apply finished on every node", || {
        (0..3).all(|i| nft_table_exists(lab.node(i)))
    })
    .await;
    assert!(vias(lab.node(0)).is_empty());
    assert!(ping(lab.pod.ns(), REMOTE_POD), "pod -> remote via n0");
    // Every Node says where its host traffic comes from; n1's does cross.
    let annotations = || async {
        let mut out = Vec::new();
        for i in 0..3 {
            let node = nodes.get(&node_name(i)).await.unwrap();
            out.push(node.annotations().get(CNI_IFACE_IP).cloned());
        }
        out
    };
    let want: Vec<Option<String>> = (0..3).map(|i| Some(host_source(i).to_string())).collect();
    let start = Instant::now();
    while annotations().await != want {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "{:?}",
            annotations().await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seen = lab.remote_saw(host_source(1));
    assert!(ping(lab.node(1), REMOTE_POD), "n1 (host) -> remote via n0");
    assert!(lab.remote_saw(host_source(1)) > seen, "n1's source");

    // Failover through the API: the Endpoint is replaced in place.
    lab.cable_down(0);
    lab.cable_up(2);
    let mut ep = endpoints.get("c0").await.unwrap();
    ep.spec = endpoint(2).spec;
    let written = Instant::now();
    endpoints.replace("c0", &pp, &ep).await.unwrap();
    wait_for("n1 re-pointed to n2", || vias(lab.node(1)) == all_via(2)).await;
    eprintln!(
        "n1 re-pointed {:?} after the Endpoint write",
        written.elapsed()
    );
    wait_for("n0 routes via n2, n2 routes nothing", || {
        vias(lab.node(0)) == all_via(2) && vias(lab.node(2)).is_empty()
    })
    .await;
    assert!(ping(lab.pod.ns(), REMOTE_POD), "pod -> remote via n2");

    // A new remote cluster is routed; its removal takes the route away.
    let extra = ferry_api::ClusterSpec {
        cluster_id: "c2".into(),
        cluster_cidrs: vec!["100.126.0.0/24".parse().unwrap()],
        service_cidrs: vec![],
        global_cidrs: vec![],
        network_plugin: None,
    };
    clusters
        .create(&pp, &Cluster::new("c2", extra))
        .await
        .unwrap();
    wait_for("route to c2", || {
        vias(lab.node(1)).contains(&"100.126.0.0/24 via 198.18.252.3".to_string())
    })
    .await;
    clusters
        .delete("c2", &DeleteParams::default())
        .await
        .unwrap();
    wait_for("route to c2 gone", || vias(lab.node(1)) == all_via(2)).await;

    // A restart (the DaemonSet is still there) leaves everything in place.
    let outcome = stop_agent(agents[1].take().unwrap()).await;
    assert_eq!(outcome, Outcome::LeftInPlace);
    assert_eq!(vias(lab.node(1)), all_via(2));
    assert!(
        ping(lab.pod.ns(), REMOTE_POD),
        "traffic flows with the agent stopped"
    );
    agents[1] = Some(start_agent(&c, &lab, 1));

    // The API goes away: the last state stays, and a stop cannot tell an
    // uninstall from a restart, so it keeps the data plane too.
    server.shutdown().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(vias(lab.node(1)), all_via(2));
    assert!(
        ping(lab.pod.ns(), REMOTE_POD),
        "traffic flows with the API down"
    );
    let outcome = stop_agent(agents[2].take().unwrap()).await;
    assert_eq!(outcome, Outcome::LeftInPlace);
    assert!(ferry_net::link_exists(lab.node(2), VX_FERRY).unwrap());
    let _server = start_server(dir.path(), addr).await;
    agents[2] = Some(start_agent(&c, &lab, 2));
    // Watches that lived through the outage follow the API again.
    let extra = ferry_api::ClusterSpec {
        cluster_id: "c3".into(),
        cluster_cidrs: vec!["100.126.0.0/24".parse().unwrap()],
        service_cidrs: vec![],
        global_cidrs: vec![],
        network_plugin: None,
    };
    clusters
        .create(&pp, &Cluster::new("c3", extra))
        .await
        .unwrap();
    wait_for("route to c3 after the API came back", || {
        vias(lab.node(1)).contains(&"100.126.0.0/24 via 198.18.252.3".to_string())
            && vias(lab.node(0)).contains(&"100.126.0.0/24 via 198.18.252.3".to_string())
    })
    .await;

    // Uninstall: the DaemonSet is deleted, then its pods are stopped.
    daemonsets
        .delete("ferry-route-agent", &DeleteParams::default())
        .await
        .unwrap();
    for (i, slot) in agents.iter_mut().enumerate() {
        let outcome = stop_agent(slot.take().unwrap()).await;
        assert_eq!(outcome, Outcome::Uninstalled, "n{i}");
        assert!(
            !ferry_net::link_exists(lab.node(i), VX_FERRY).unwrap(),
            "n{i}"
        );
        assert!(vias(lab.node(i)).is_empty(), "n{i}");
        assert!(
            !ferry_net::rule_exists(lab.node(i), ROUTE_AGENT_RULE_PRIORITY, ROUTE_AGENT_TABLE)
                .unwrap(),
            "n{i}"
        );
        assert!(!nft_table_exists(lab.node(i)), "n{i}");
    }
    assert!(!ping(lab.pod.ns(), REMOTE_POD));
    assert_eq!(annotations().await, vec![None, None, None]);
}
