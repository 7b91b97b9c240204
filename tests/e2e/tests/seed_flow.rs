//! The seed's operations (`../shared/reference/seed/cluster-submariner.md`),
//! in its order and with its flags, with ferry's names (issue #14):
//!
//! 1. two clusters; `ferry deploy-broker --kubeconfig <cluster0>`;
//! 2. `ferry join broker-info.ferry --clusterid … --clustercidr …
//!    --natt=false --cable-driver vxlan --health-check=false` for both —
//!    only the pod CIDR given, the service CIDR discovered;
//! 3. `kubectl label nodes <node> ferry.dev/gateway=true` in both;
//! 4. `ping -c2 <remote pod IP>` from a node shell, on the gateway node and
//!    on a non-gateway node;
//! 5. nginx deployed and exported; `kubectl get pods -o wide -A | grep dns`
//!    gives the DNS pod's IP; `dig +short nginx.nginx-test.svc.clusterset.local
//!    @<that IP>` answers the IP that `kubectl -n ferry-broker get
//!    serviceimport` shows in its `IP` column (NAME TYPE IP AGE);
//! 6. `ferry show all`, and `ferry diagnose all` with no failure.
//!
//! The same flow runs with `--cable-driver wireguard`, and with wireguard
//! and the second cluster behind a masquerading NAT (`ferry sandbox create
//! --nat`): there `--natt=false` is left out, because it tells the gateways
//! to use each other's private addresses, which a NAT hides (the vxlan
//! cable cannot cross such a NAT at all: see `tests/nat.rs`).
//!
//! Root only (skipped otherwise); the clusters are deleted on drop.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use ferry_e2e::nginx::{EXPORT, NAMESPACE, NGINX};
use ferry_e2e::tempfile_dir::Dir;
use ferry_e2e::{Cluster, ferry, netns, output, ping, usable, wait_connected, wait_for};

const WAIT: Duration = Duration::from_secs(90);

/// The columns of the row of a `kubectl get` table whose first (or, with
/// `-A`, second) column is `name`.
fn row(table: &str, name: &str) -> Option<Vec<String>> {
    table
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .find(|cols| cols.first().map(String::as_str) == Some(name))
}

/// Step 4: `ping -c2` from a node shell, once the route is there (the
/// route agents program it a moment after the cable is up).
fn ping_from_node(c: &Cluster, k: usize, ip: &str, what: &str) {
    let ns = c.node_netns(k).unwrap();
    wait_for(WAIT, &format!("a first reply: {what}"), || {
        (ping(&ns, ip, 1, "0.2").1 == 1).then_some(())
    });
    assert_eq!(ping(&ns, ip, 2, "1"), (2, 2), "{what}");
}

/// The running nginx pods' IPs.
fn nginx_pod_ips(c: &Cluster) -> Vec<String> {
    wait_for(WAIT, "the nginx pods running", || {
        let out = c
            .kubectl(&[
                "-n",
                "nginx-test",
                "get",
                "pods",
                "-l",
                "app=nginx",
                "--field-selector",
                "status.phase=Running",
                "-o",
                "jsonpath={.items[*].status.podIP}",
            ])
            .unwrap();
        let ips: Vec<String> = out.split_whitespace().map(str::to_string).collect();
        (!ips.is_empty()).then_some(ips)
    })
}

/// Step 5's first half: `kubectl get pods -o wide -A | grep dns`, the IP
/// column of the ferry-dns pod.
fn dns_pod_ip(c: &Cluster) -> String {
    wait_for(WAIT, "a running ferry-dns pod", || {
        let table = c.kubectl(&["get", "pods", "-o", "wide", "-A"]).unwrap();
        table
            .lines()
            .filter(|l| l.contains("dns") && l.contains("Running"))
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|cols| cols[0] == "ferry-system" && cols[1].starts_with("ferry-dns"))
            .map(|cols| cols[6].to_string())
    })
}

/// `seed_flags` are the flags the seed passes to `join` besides the broker
/// info, the cluster id and the pod CIDR.
fn seed_flow(tag: &str, seed_flags: &[&str], second_cluster: &[&str]) {
    if !usable() {
        return;
    }
    let _lock = ferry_sandbox::harness::lock(false).unwrap();
    let tag = format!("{tag}{}", std::process::id() % 10_000);
    let cluster0 = ferry_e2e::create(&format!("{tag}a"), 2);
    let cluster1 = Cluster::create(
        &format!("{tag}b"),
        &[&["--nodes", "2"][..], second_cluster].concat(),
    )
    .unwrap();
    let dir = Dir::new(&format!("{tag}seed"));
    let info = dir.path().join("broker-info.ferry");
    let info = info.to_str().unwrap();

    // 1. The broker in cluster0.
    ferry(&[
        "deploy-broker",
        "--kubeconfig",
        cluster0.kubeconfig.to_str().unwrap(),
        "-o",
        info,
    ]);
    // 2. Both joins, with the seed's flags and only the pod CIDR.
    for c in [&cluster0, &cluster1] {
        let kubeconfig = c.kubeconfig.to_str().unwrap();
        let mut args = vec!["join", info, "--clusterid", &c.name, "--clustercidr"];
        args.extend([c.pod_cidr.as_str(), "--kubeconfig", kubeconfig]);
        args.extend_from_slice(seed_flags);
        let out = output(std::process::Command::new(ferry_e2e::ferry_bin()).args(&args));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "ferry {}: {stderr}", args.join(" "));
        assert!(
            stderr.contains(&c.service_cidr),
            "join names the service CIDR it discovered ({}): {stderr}",
            c.service_cidr
        );
    }
    // 3. Label the gateway nodes.
    for c in [&cluster0, &cluster1] {
        c.kubectl(&["label", "nodes", &c.node(0), "ferry.dev/gateway=true"])
            .unwrap();
    }
    wait_connected(&cluster0, &cluster1.name);
    wait_connected(&cluster1, &cluster0.name);

    // 4. ping a pod of the other cluster from a node's shell.
    cluster0.apply(NAMESPACE).unwrap();
    cluster1.apply(NGINX).unwrap();
    let remote_pod = nginx_pod_ips(&cluster1).remove(0);
    for k in [0, 1] {
        let role = if k == 0 { "gateway" } else { "non-gateway" };
        let what = format!("{} ({role}) → {remote_pod}", cluster0.node(k));
        ping_from_node(&cluster0, k, &remote_pod, &what);
    }

    // 5. Export, then dig at the DNS pod's IP what the broker lists.
    cluster1.apply(EXPORT).unwrap();
    let name = format!("nginx-nginx-test-{}", cluster1.name);
    let import = wait_for(WAIT, "the export on the broker", || {
        let table = cluster0
            .kubectl(&["-n", "ferry-broker", "get", "serviceimport"])
            .unwrap();
        let header = table.lines().next()?.split_whitespace().collect::<Vec<_>>();
        assert_eq!(header, ["NAME", "TYPE", "IP", "AGE"], "{table}");
        row(&table, &name)
    });
    assert_eq!(import[1], "ClusterSetIP", "{import:?}");
    let dns = dns_pod_ip(&cluster0);
    let node = cluster0.node_netns(1).unwrap();
    let answer = wait_for(WAIT, "dig +short at the ferry-dns pod", || {
        let out = netns(
            &node,
            &[
                "dig",
                "+short",
                "+time=2",
                "+tries=1",
                "nginx.nginx-test.svc.clusterset.local",
                &format!("@{dns}"),
            ],
        );
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (!text.is_empty() && !text.starts_with(';')).then_some(text)
    });
    assert_eq!(
        import[2],
        format!("[\"{answer}\"]"),
        "dig answered {answer}; the broker's ServiceImport lists {}",
        import[2]
    );

    // 6. show all, diagnose all: no errors, no problems.
    let both = format!(
        "{},{}",
        cluster0.kubeconfig.display(),
        cluster1.kubeconfig.display()
    );
    ferry(&["show", "all", "--kubeconfig", &both]);
    wait_for(WAIT, "ferry diagnose all without a failure", || {
        let out = output(std::process::Command::new(ferry_e2e::ferry_bin()).args([
            "diagnose",
            "all",
            "--kubeconfig",
            &both,
        ]));
        let stdout = String::from_utf8_lossy(&out.stdout);
        (out.status.success() && !stdout.contains("FAIL")).then_some(())
    });
}

#[test]
fn the_seeds_flow_as_written() {
    seed_flow(
        "sf",
        &[
            "--natt=false",
            "--cable-driver",
            "vxlan",
            "--health-check=false",
        ],
        &[],
    );
}

#[test]
fn the_seeds_flow_over_wireguard() {
    seed_flow(
        "sfw",
        &[
            "--natt=false",
            "--cable-driver",
            "wireguard",
            "--health-check=false",
        ],
        &[],
    );
}

#[test]
fn the_seeds_flow_with_one_cluster_behind_nat() {
    seed_flow(
        "sfn",
        &["--cable-driver", "wireguard", "--health-check=false"],
        &["--nat"],
    );
}
