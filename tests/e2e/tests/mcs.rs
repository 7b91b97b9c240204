//! Multi-Cluster Services v1beta1 and routed ClusterSet IPs across three
//! sandbox clusters (issue #17), re-expressing mcs-api conformance cases in
//! our own words, with the real binary and kubectl:
//! - a ClusterSetIP service exported from two clusters is imported into the
//!   third (`deploy-broker --enable-clusterset-ip`) with one clusterset IP:
//!   the ClusterIP the third cluster's API server gave the derived Service,
//!   from its service range (`ips`, `ipFamilies`, `Ready`), both exporting
//!   clusters in its status, the exports' `exportedLabels` on the import;
//! - `ferry show services` shows it; `ferry dns` answers the service's
//!   name with that IP, and has no
//!   `<clusterid>.<svc>` name for it (MCS DNS 2.3.4);
//! - 200 requests through the clusterset IP from a pod in the third cluster
//!   all succeed and reach both exporting clusters (load-balanced by the
//!   sandbox's service proxy over the derived Service's EndpointSlices);
//! - with `sessionAffinity: ClientIP` on the exported services, one client
//!   reaches one pod through the clusterset IP, across clusters;
//! - cutting the cable of the cluster that client is pinned to moves every
//!   request to the other cluster (the time it took is printed), and none
//!   fails after that;
//! - `ferry export --no-clusterset-ip` takes the VIP away again;
//! - ClusterSet IPs switched on at a broker clusters already joined reach
//!   each cluster at its next `join` (its daemons restart with the new
//!   settings).
//!
//! Root only (skipped otherwise); the clusters are deleted on drop.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ferry_e2e::{Broker, Cluster, Clusterset, netns, usable, wait_for};
use serde_json::Value;

const NGINX: &str = include_str!("../../../examples/nginx.yaml");

const WAIT: Duration = Duration::from_secs(90);

fn export_yaml(label: &str) -> String {
    format!(
        "apiVersion: multicluster.x-k8s.io/v1beta1
kind: ServiceExport
metadata:
  name: nginx
  namespace: nginx-test
spec:
  exportedLabels:
    tier: {label}
"
    )
}

fn json(c: &Cluster, args: &[&str]) -> Option<Value> {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&c.kubectl(&all).ok()?).ok()
}

/// The imported ServiceImport once both clusters are in its status.
fn import_of_both(c: &Cluster, exporters: &[&str]) -> Value {
    wait_for(WAIT, "the ServiceImport of both exporters", || {
        let si = json(c, &["-n", "nginx-test", "get", "serviceimport", "nginx"])?;
        let clusters: Vec<&str> = si["status"]["clusters"]
            .as_array()?
            .iter()
            .filter_map(|c| c["cluster"].as_str())
            .collect();
        let ready = si["status"]["conditions"]
            .as_array()?
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        (exporters.iter().all(|e| clusters.contains(e))
            && ready
            && si["spec"]["ips"][0].is_string())
        .then_some(si)
    })
}

/// The pod that answered one request through `url` from `netns`, or why none.
fn hit(netns_name: &str, url: &str) -> Result<String, String> {
    hit_within(netns_name, url, "0.5")
}

/// As [`hit`], giving up on connecting after `connect` seconds.
fn hit_within(netns_name: &str, url: &str, connect: &str) -> Result<String, String> {
    let out = netns(
        netns_name,
        &[
            "curl",
            "-s",
            "--connect-timeout",
            connect,
            "--max-time",
            "1",
            url,
        ],
    );
    let body = String::from_utf8_lossy(&out.stdout).into_owned();
    match body.split_whitespace().next() {
        Some(pod) if pod.starts_with("nginx-") => Ok(pod.to_string()),
        _ => Err(format!("{body:?} (curl exit {:?})", out.status.code())),
    }
}

/// The lines of `c`'s agent logs that contain `needle`.
fn agent_log(c: &Cluster, needle: &str) -> String {
    let root = ferry_sandbox::state::cluster_dir(&c.name).join("logs");
    let mut out = String::new();
    for dir in std::fs::read_dir(root).into_iter().flatten().flatten() {
        if !dir.file_name().to_string_lossy().contains("ferry-agent") {
            continue;
        }
        for file in std::fs::read_dir(dir.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let text = std::fs::read_to_string(file.path()).unwrap_or_default();
            for line in text.lines().filter(|l| l.contains(needle)) {
                out += line;
                out.push('\n');
            }
        }
    }
    out
}

/// Cuts (or mends) the cable of `c`'s gateway node: its WAN drops UDP, the
/// cable's transport, both ways.
fn cut_cable(c: &Cluster, cut: bool) {
    let ns = c.node_netns(0).unwrap();
    let script = if cut {
        "table inet e17cut {
  chain in { type filter hook prerouting priority -400; iifname \"wan0\" meta l4proto udp drop; }
  chain out { type filter hook output priority -400; oifname \"wan0\" meta l4proto udp drop; }
}
"
    } else {
        "table inet e17cut\ndelete table inet e17cut\n"
    };
    let path = std::env::temp_dir().join(format!("e17cut-{}.nft", c.name));
    std::fs::write(&path, script).unwrap();
    let out = netns(&ns, &["nft", "-f", path.to_str().unwrap()]);
    assert!(out.status.success(), "nft in {ns}: {:?}", out);
    let _ = std::fs::remove_file(path);
}

#[test]
fn clusterset_ip_is_allocated_answered_and_load_balanced_over_two_clusters() {
    if !usable() {
        return;
    }
    let tag = format!("e17m{}", std::process::id() % 1000);
    let cs = Clusterset::with_broker_args(
        &tag,
        &[2, 1, 1],
        &[&[0], &[0], &[0]],
        "wireguard",
        Broker::FirstCluster,
        &["--enable-clusterset-ip"],
    );
    let (client_cluster, one, two) = (&cs.clusters[0], &cs.clusters[1], &cs.clusters[2]);
    client_cluster
        .apply("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: nginx-test\n")
        .unwrap();
    for c in [one, two] {
        c.apply(NGINX).unwrap();
        c.apply(&export_yaml("web")).unwrap();
    }

    // The import: one clusterset IP, the derived Service's ClusterIP, IPv4,
    // both clusters, the exported label.
    let si = import_of_both(client_cluster, &[&one.name, &two.name]);
    let vip = si["spec"]["ips"][0].as_str().unwrap().to_string();
    assert_eq!(si["spec"]["ips"].as_array().unwrap().len(), 1, "{si}");
    let derived = json(
        client_cluster,
        &[
            "-n",
            "nginx-test",
            "get",
            "services",
            "-l",
            "multicluster.kubernetes.io/service-name=nginx",
        ],
    )
    .unwrap();
    let derived = &derived["items"][0];
    assert_eq!(derived["spec"]["clusterIP"], vip.as_str(), "{derived}");
    assert!(derived["spec"].get("selector").is_none(), "{derived}");
    // `ferry show services` shows it.
    let show = client_cluster
        .ferry(&[
            "show",
            "services",
            "--kubeconfig",
            client_cluster.kubeconfig.to_str().unwrap(),
        ])
        .unwrap();
    assert!(
        show.lines()
            .any(|l| l.contains("nginx") && l.contains(&vip)),
        "{show}"
    );
    assert_eq!(si["spec"]["ipFamilies"][0], "IPv4", "{si}");
    assert_eq!(si["spec"]["type"], "ClusterSetIP");
    assert_eq!(
        si["metadata"]["labels"]["tier"], "web",
        "exported label: {si}"
    );
    // Served as v1alpha1 too, the same object.
    let old = json(
        client_cluster,
        &[
            "-n",
            "nginx-test",
            "get",
            "serviceimports.v1alpha1.multicluster.x-k8s.io",
            "nginx",
        ],
    )
    .unwrap();
    assert_eq!(old["apiVersion"], "multicluster.x-k8s.io/v1alpha1");
    assert_eq!(old["spec"]["ips"][0], vip.as_str());
    // The exports: valid, exported, no conflict.
    for c in [one, two] {
        let se = json(c, &["-n", "nginx-test", "get", "serviceexport", "nginx"]).unwrap();
        let conds: BTreeMap<String, String> = se["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["type"].as_str().unwrap().into(),
                    c["reason"].as_str().unwrap().into(),
                )
            })
            .collect();
        assert_eq!(conds["Valid"], "Valid", "{se}");
        assert_eq!(conds["Conflict"], "NoConflicts", "{se}");
    }

    // DNS answers the clusterset IP; no per-cluster name for it.
    let client = client_cluster.pod("mcs-client", 1).unwrap();
    let name = "nginx.nginx-test.svc.clusterset.local";
    let answer = wait_for(WAIT, "the clusterset IP from ferry dns", || {
        let out = netns(
            &client.netns,
            &["dig", "+short", "+time=1", "+tries=1", name],
        );
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (text == vip).then_some(text)
    });
    assert_eq!(answer, vip);
    let per_cluster = format!("{}.{name}", one.name);
    let out = netns(&client.netns, &["dig", "+time=1", "+tries=1", &per_cluster]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("NXDOMAIN"), "{per_cluster}: {text}");
    // Its PTR (MCS DNS spec 2.3.3), asked of the ferry-dns pod itself: the
    // cluster's resolver forwards clusterset.local, not reverse zones.
    let dns_ip = ferry_e2e::ferry_dns_pod_ip(client_cluster);
    let out = netns(
        &client.netns,
        &[
            "dig",
            "+short",
            "+time=1",
            "+tries=2",
            &format!("@{dns_ip}"),
            "-x",
            &vip,
        ],
    );
    let ptr = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(ptr, format!("{name}."), "PTR of {vip}");

    // 200 requests through the clusterset IP reach both clusters' pods.
    let pods_of = |c: &Cluster| -> Vec<String> {
        let v = json(c, &["-n", "nginx-test", "get", "pods"]).unwrap();
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    let url = format!("http://{vip}:8080/");
    wait_for(WAIT, "HTTP through the clusterset IP", || {
        let out = netns(&client.netns, &["curl", "-s", "--max-time", "2", &url]);
        String::from_utf8_lossy(&out.stdout)
            .starts_with("nginx-")
            .then_some(())
    });
    let (pods_one, pods_two) = (pods_of(one), pods_of(two));
    let (mut to_one, mut to_two, mut failed) = (0, 0, Vec::new());
    for i in 0..200 {
        let out = netns(&client.netns, &["curl", "-s", "--max-time", "2", &url]);
        let body = String::from_utf8_lossy(&out.stdout).into_owned();
        let pod = body
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string();
        if pods_one.contains(&pod) {
            to_one += 1;
        } else if pods_two.contains(&pod) {
            to_two += 1;
        } else {
            failed.push(format!("request {i}: {body:?}"));
        }
    }
    eprintln!(
        "200 requests via {vip}: {to_one} to {}, {to_two} to {}",
        one.name, two.name
    );
    assert!(failed.is_empty(), "failed requests: {failed:?}");
    assert!(
        to_one > 0 && to_two > 0,
        "{to_one} / {to_two}: not both clusters"
    );

    // ClientIP affinity: the exported services ask for it, the import and
    // its derived Service carry it, and one client stays on one pod.
    for c in [one, two] {
        c.kubectl(&[
            "-n",
            "nginx-test",
            "patch",
            "service",
            "nginx",
            "-p",
            r#"{"spec":{"sessionAffinity":"ClientIP"}}"#,
        ])
        .unwrap();
    }
    wait_for(WAIT, "the derived Service with ClientIP affinity", || {
        let d = json(
            client_cluster,
            &[
                "-n",
                "nginx-test",
                "get",
                "services",
                "-l",
                "multicluster.kubernetes.io/service-name=nginx",
            ],
        )?;
        (d["items"][0]["spec"]["sessionAffinity"] == "ClientIP").then_some(())
    });
    let si = json(
        client_cluster,
        &["-n", "nginx-test", "get", "serviceimport", "nginx"],
    )
    .unwrap();
    assert_eq!(si["spec"]["sessionAffinity"], "ClientIP", "{si}");
    // The proxy programs it a moment after the Service changes.
    wait_for(WAIT, "one pod for 20 requests in a row", || {
        let first = hit(&client.netns, &url).ok()?;
        (0..19)
            .all(|_| hit(&client.netns, &url).ok().as_ref() == Some(&first))
            .then_some(())
    });
    let pinned = hit(&client.netns, &url).unwrap();
    let mut others = Vec::new();
    for _ in 0..50 {
        match hit(&client.netns, &url) {
            Ok(pod) if pod == pinned => {}
            other => others.push(other),
        }
    }
    assert!(others.is_empty(), "affinity to {pinned} broken: {others:?}");
    eprintln!("ClientIP affinity: 50 of 50 requests to {pinned}");

    // Cut the cable of the cluster the client is pinned to: every request
    // moves to the other cluster, and none fails after that.
    let (cut, survivor, survivor_pods) = if pods_one.contains(&pinned) {
        (one, two, &pods_two)
    } else {
        (two, one, &pods_one)
    };
    cut_cable(cut, true);
    let t0 = Instant::now();
    // The switch happened before the first request of the final streak
    // started (and after the last miss started).
    let (mut last_miss, mut streak_start) = (None, Duration::ZERO);
    let mut streak = 0;
    while streak < 20 {
        assert!(
            t0.elapsed() < WAIT,
            "requests never all reached {} after {}'s cable was cut\n{}",
            survivor.name,
            cut.name,
            client_cluster.gateway_report(40)
        );
        let started = t0.elapsed();
        // A short connect timeout: the switch is timed to ~0.2 s.
        match hit_within(&client.netns, &url, "0.2") {
            Ok(pod) if survivor_pods.contains(&pod) => {
                if streak == 0 {
                    streak_start = started;
                }
                streak += 1;
            }
            _ => {
                streak = 0;
                last_miss = Some(started);
            }
        }
    }
    eprintln!(
        "{}'s cable cut: every request to {} from {streak_start:?} after the cut on \
         (the last other one started at {last_miss:?})",
        cut.name, survivor.name
    );
    let mut failed = Vec::new();
    for i in 0..200 {
        match hit(&client.netns, &url) {
            Ok(pod) if survivor_pods.contains(&pod) => {}
            other => failed.push(format!("request {i}: {other:?}")),
        }
    }
    assert!(
        failed.is_empty(),
        "after the switch: {failed:?}\n{}",
        agent_log(client_cluster, "reachable clusters changed")
    );
    cut_cable(cut, false);

    // Opting out (oldest export decides: opt both out) takes the VIP away.
    for c in [one, two] {
        c.ferry(&[
            "export",
            "service",
            "nginx",
            "-n",
            "nginx-test",
            "--no-clusterset-ip",
            "--kubeconfig",
            c.kubeconfig.to_str().unwrap(),
        ])
        .unwrap();
    }
    wait_for(WAIT, "the import without a clusterset IP", || {
        let si = json(
            client_cluster,
            &["-n", "nginx-test", "get", "serviceimport", "nginx"],
        )?;
        si["spec"]["ips"]
            .as_array()
            .is_none_or(|a| a.is_empty())
            .then_some(())
    });
}

/// ClusterSet IPs switched on at a broker that clusters have already
/// joined: `deploy-broker` names them and says they keep their settings;
/// each cluster's next `join --enable-clusterset-ip` rolls its daemons (a
/// digest of their Secret is on their pod templates), and its import gets
/// a routed ClusterSet IP that DNS answers and curl reaches.
#[test]
fn clusterset_ips_switched_on_later_reach_each_cluster_at_its_next_join() {
    if !usable() {
        return;
    }
    let tag = format!("e17j{}", std::process::id() % 1000);
    let cs = Clusterset::new(
        &tag,
        &[2, 1],
        &[&[0], &[0]],
        "wireguard",
        Broker::FirstCluster,
    );
    let (a, b) = (&cs.clusters[0], &cs.clusters[1]);
    a.apply("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: nginx-test\n")
        .unwrap();
    b.apply(NGINX).unwrap();
    b.apply(&export_yaml("web")).unwrap();
    let import = || json(a, &["-n", "nginx-test", "get", "serviceimport", "nginx"]);
    wait_for(WAIT, "a's import, without a clusterset IP", || {
        let si = import()?;
        (si["status"]["clusters"][0]["cluster"] == b.name.as_str()).then_some(())
    });
    assert!(import().unwrap()["spec"]["ips"][0].is_null());

    let info = cs.broker_info.with_file_name("broker-info-vips.ferry");
    let info = info.to_str().unwrap();
    let out = ferry_e2e::output(std::process::Command::new(ferry_e2e::ferry_bin()).args([
        "deploy-broker",
        "--kubeconfig",
        a.kubeconfig.to_str().unwrap(),
        "--enable-clusterset-ip",
        "-o",
        info,
    ]));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("2 cluster(s) already joined") && said.contains(b.name.as_str()),
        "{said}"
    );

    for c in [a, b] {
        ferry_e2e::join(
            c,
            info,
            "wireguard",
            &c.node(0),
            &["--enable-clusterset-ip"],
        );
    }
    let vip = wait_for(WAIT, "a's import with a clusterset IP", || {
        let si = import()?;
        si["spec"]["ips"][0].as_str().map(str::to_string)
    });
    let client = a.pod("e17j-client", 1).unwrap();
    let name = "nginx.nginx-test.svc.clusterset.local";
    wait_for(WAIT, &format!("{name} → {vip}"), || {
        let out = netns(
            &client.netns,
            &["dig", "+short", "+time=1", "+tries=1", name],
        );
        (String::from_utf8_lossy(&out.stdout).trim() == vip).then_some(())
    });
    wait_for(WAIT, "HTTP through the clusterset IP", || {
        hit(&client.netns, &format!("http://{vip}:8080/")).ok()
    });
}
