//! Globalnet (issue #16): two sandbox clusters with IDENTICAL pod and
//! service CIDRs, joined with Globalnet from a broker pool inside
//! 100.64.0.0/10. A pod in each reaches an exported service of the other
//! by its clusterset name over HTTP; the receiving pod sees a source from
//! the sender's global egress IPs; `ferry uninstall` removes the
//! translation table from the gateway. A headless service's pods get one
//! global IP each, which its clusterset name resolves to and which answer.
//! After a kill -9 of the active
//! gateway the standby serves the same global IPs. A `GlobalEgressIP` for
//! one namespace (or one pod selector) changes only its pods' source.
//! In a mixed clusterset, a cluster without Globalnet talks to one with it
//! both ways, and `ferry globalnet enable` switches it on in a joined
//! cluster without a re-join.
//! Root only (skipped otherwise); the test builds and deletes its own clusters.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::Ipv4Addr;
use std::time::Duration;

use ferry_e2e::{Broker, Clusterset, Extra, gateway_pid, holder, netns, usable, wait_for};
use ferry_sandbox::harness::Cluster;

const NGINX: &str = include_str!("../../../examples/nginx.yaml");
const WAIT: Duration = Duration::from_secs(60);

/// Every cluster's CIDRs: the same in both.
const PODS: &str = "100.90.0.0/16";
const SERVICES: &str = "100.91.0.0/16";
/// The broker's pool: blocks of 256 (a /24 per cluster).
const POOL: &str = "100.120.0.0/16";

/// `deploy-broker` flags: Globalnet on, from [`POOL`] in /24 blocks.
const GLOBALNET_BROKER: &[&str] = &[
    "--globalnet",
    "--globalnet-cidr-range",
    POOL,
    "--globalnet-cluster-size",
    "256",
];

fn tag(t: &str) -> String {
    format!("{t}{}", std::process::id() % 10_000)
}

/// Two clusters with the same pod and service CIDRs ([`PODS`],
/// [`SERVICES`]), joined over WireGuard to a Globalnet broker on the first.
fn overlapping(t: &str, nodes: &[u32], gateways: &[&[usize]]) -> Clusterset {
    let same = ["--pod-cidr", PODS, "--service-cidr", SERVICES];
    Clusterset::with_sandbox_and_broker_args(
        &tag(t),
        nodes,
        &[&same, &same],
        gateways,
        "wireguard",
        GLOBALNET_BROKER,
    )
}

fn jsonpath(c: &Cluster, args: &[&str]) -> String {
    c.kubectl(args).unwrap().trim().to_string()
}

/// The cluster's global CIDR, as its Cluster object on the broker says.
fn global_cidr(broker: &Cluster, c: &Cluster) -> String {
    wait_for(WAIT, "the cluster's global CIDR", || {
        let out = jsonpath(
            broker,
            &[
                "-n",
                "ferry-broker",
                "get",
                "cluster",
                &c.name,
                "-o",
                "jsonpath={.spec.globalCidrs[0]}",
            ],
        );
        (!out.is_empty()).then_some(out)
    })
}

/// The cluster egress pool's allocated IPs.
fn egress_ips(c: &Cluster) -> Vec<Ipv4Addr> {
    wait_for(WAIT, "the cluster egress IPs", || {
        // The agent creates the object once it runs with a global CIDR: a
        // moment after join, or after `globalnet enable` restarts it.
        let out = c
            .kubectl(&[
                "get",
                "clusterglobalegressip",
                "cluster-egress.ferry.dev",
                "-o",
                "jsonpath={.status.allocatedIPs[*]}",
            ])
            .ok()?;
        let ips: Vec<Ipv4Addr> = out
            .split_whitespace()
            .filter_map(|s| s.parse().ok())
            .collect();
        (ips.len() == 8).then_some(ips)
    })
}

/// Runs the echo service `name` in `c` (examples/nginx.yaml renamed) and
/// exports it.
fn serve_and_export(c: &Cluster, name: &str) {
    c.apply(
        &NGINX
            .replace("nginx-test", "gn-test")
            .replace("nginx", name),
    )
    .unwrap();
    c.ferry(&[
        "export",
        "service",
        name,
        "-n",
        "gn-test",
        "--kubeconfig",
        c.kubeconfig.to_str().unwrap(),
    ])
    .unwrap();
}

/// HTTP to `name` by its clusterset name from pod netns `from`; the body
/// names the server pod and the source it saw.
fn fetch(from: &str, name: &str) -> String {
    let url = format!("http://{name}.gn-test.svc.clusterset.local:8080/");
    wait_for(WAIT, &format!("HTTP to {url}"), || {
        let out = netns(from, &["curl", "-s", "--max-time", "2", &url]);
        let body = String::from_utf8_lossy(&out.stdout).into_owned();
        body.starts_with(&format!("{name}-")).then_some(body)
    })
}

/// The source address the echo server saw (`… / from A.B.C.D:PORT`).
fn seen_source(body: &str) -> Ipv4Addr {
    let from = body.rsplit("from ").next().unwrap();
    from.split(':').next().unwrap().trim().parse().unwrap()
}

#[test]
fn identical_cidrs_reach_each_other_through_global_ips() {
    if !usable() {
        return;
    }
    let cs = overlapping("e16", &[2, 2], &[&[0], &[0]]);
    let (a, b) = (&cs.clusters[0], &cs.clusters[1]);
    assert_eq!(
        a.pod_cidr, b.pod_cidr,
        "the clusters' pod CIDRs must be identical"
    );
    let (ga, gb) = (global_cidr(a, a), global_cidr(a, b));
    assert_ne!(ga, gb);
    for g in [&ga, &gb] {
        assert!(g.starts_with("100.120.") && g.ends_with("/24"), "{g}");
    }
    let (egress_a, egress_b) = (egress_ips(a), egress_ips(b));

    serve_and_export(a, "alpha");
    serve_and_export(b, "bravo");
    let client_a = a.pod("gn-client", 1).unwrap();
    let client_b = b.pod("gn-client", 1).unwrap();

    // Each reaches the other's service by name; the server saw one of the
    // sender's global egress IPs, never the (shared) pod address.
    let body = fetch(&client_a.netns, "bravo");
    let src = seen_source(&body);
    assert!(
        egress_a.contains(&src),
        "bravo saw {src}, not one of {egress_a:?}: {body}"
    );
    let body = fetch(&client_b.netns, "alpha");
    let src = seen_source(&body);
    assert!(
        egress_b.contains(&src),
        "alpha saw {src}, not one of {egress_b:?}: {body}"
    );

    // The name resolves to a global ingress IP in the exporter's block.
    let out = netns(
        &client_a.netns,
        &[
            "dig",
            "+short",
            "+time=1",
            "+tries=1",
            "bravo.gn-test.svc.clusterset.local",
        ],
    );
    let answer = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let giip = jsonpath(
        b,
        &[
            "-n",
            "gn-test",
            "get",
            "globalingressip",
            "bravo",
            "-o",
            "jsonpath={.status.allocatedIP}",
        ],
    );
    assert_eq!(answer, giip);

    // A headless service: each ready pod gets its own global ingress IP
    // (`GlobalIngressIP` pod-NAME, target HeadlessServicePod); the name
    // resolves to those in the other cluster, and each answers there.
    b.apply(
        &NGINX
            .replace("nginx-test", "gn-test")
            .replace("nginx", "hless")
            .replace(
                "spec:\n  selector:",
                "spec:\n  clusterIP: None\n  selector:",
            ),
    )
    .unwrap();
    b.ferry(&[
        "export",
        "service",
        "hless",
        "-n",
        "gn-test",
        "--kubeconfig",
        b.kubeconfig.to_str().unwrap(),
    ])
    .unwrap();
    let pod_ips = wait_for(WAIT, "hless's pods' global IPs", || {
        let out = jsonpath(
            b,
            &[
                "-n",
                "gn-test",
                "get",
                "globalingressip",
                "-o",
                "jsonpath={range .items[?(@.spec.target==\"HeadlessServicePod\")]}{.status.allocatedIP} {end}",
            ],
        );
        let ips: Vec<String> = out.split_whitespace().map(String::from).collect();
        (ips.len() == 2).then_some(ips)
    });
    wait_for(WAIT, "hless to resolve to its pods' global IPs", || {
        let out = netns(
            &client_a.netns,
            &[
                "dig",
                "+short",
                "+time=1",
                "+tries=1",
                "hless.gn-test.svc.clusterset.local",
            ],
        );
        let mut got: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(String::from)
            .collect();
        got.sort();
        let mut want = pod_ips.clone();
        want.sort();
        (got == want).then_some(())
    });
    for ip in &pod_ips {
        let url = format!("http://{ip}:8080/");
        let body = wait_for(WAIT, &format!("HTTP to hless's pod at {url}"), || {
            let out = netns(&client_a.netns, &["curl", "-s", "--max-time", "2", &url]);
            let body = String::from_utf8_lossy(&out.stdout).into_owned();
            body.starts_with("hless-").then_some(body)
        });
        let src = seen_source(&body);
        assert!(
            egress_a.contains(&src),
            "hless saw {src}, not one of {egress_a:?}: {body}"
        );
    }
    fetch(&client_a.netns, "hless");

    // Uninstall removes the translation from the gateway node.
    let gw = b.node_netns(0).unwrap();
    let tables = netns(&gw, &["nft", "list", "tables"]);
    assert!(
        String::from_utf8_lossy(&tables.stdout).contains("ferry-globalnet"),
        "the gateway has no translation table"
    );
    ferry_e2e::ferry(&[
        "uninstall",
        "--kubeconfig",
        b.kubeconfig.to_str().unwrap(),
        "--yes",
    ]);
    let tables = netns(&gw, &["nft", "list", "tables"]);
    let left = String::from_utf8_lossy(&tables.stdout);
    // The sandbox's own service proxy table (ferry-sbx-…) stays.
    let ours: Vec<&str> = left
        .lines()
        .filter(|l| *l == "table ip ferry" || l.contains("ferry-globalnet"))
        .collect();
    assert!(ours.is_empty(), "left on {}: {ours:?}", b.node(0));
}

#[test]
fn the_standby_gateway_takes_over_the_same_translation() {
    if !usable() {
        return;
    }
    let cs = overlapping("e16f", &[2, 3], &[&[0], &[0, 1]]);
    let (a, b) = (&cs.clusters[0], &cs.clusters[1]);
    let egress_b = egress_ips(b);
    serve_and_export(a, "alpha");
    serve_and_export(b, "bravo");
    let client_a = a.pod("gn-client", 1).unwrap();
    let client_b = b.pod("gn-client", 2).unwrap();
    fetch(&client_a.netns, "bravo");
    fetch(&client_b.netns, "alpha");

    let active = holder(b);
    let pid = gateway_pid(b, &active);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
    wait_for(WAIT, "the standby to take the lease", || {
        let now = holder(b);
        (!now.is_empty() && now != active).then_some(())
    });
    // Both directions through the new active gateway: ingress to bravo's
    // global IP, egress from b's pods from the same egress IPs.
    let body = fetch(&client_a.netns, "bravo");
    assert!(body.starts_with("bravo-"), "{body}");
    let body = fetch(&client_b.netns, "alpha");
    let src = seen_source(&body);
    assert!(
        egress_b.contains(&src),
        "alpha saw {src}, not one of {egress_b:?}: {body}"
    );
}

/// The allocated IPs of `GlobalEgressIP` `ns/name`, once there are `n`.
fn namespaced_egress_ips(c: &Cluster, ns: &str, name: &str, n: usize) -> Vec<Ipv4Addr> {
    wait_for(WAIT, &format!("GlobalEgressIP {ns}/{name}'s IPs"), || {
        let out = jsonpath(
            c,
            &[
                "-n",
                ns,
                "get",
                "globalegressip",
                name,
                "-o",
                "jsonpath={.status.allocatedIPs[*]}",
            ],
        );
        let ips: Vec<Ipv4Addr> = out
            .split_whitespace()
            .filter_map(|s| s.parse().ok())
            .collect();
        (ips.len() == n).then_some(ips)
    })
}

/// HTTP to `name` from `from` until the server sees a source in `want`
/// (connections opened before the gateway's rule kept the old one); on
/// failure the message has `gateway`'s translation table.
fn fetch_from_one_of(from: &str, name: &str, want: &[Ipv4Addr], gateway: &str) -> Ipv4Addr {
    let url = format!("http://{name}.gn-test.svc.clusterset.local:8080/");
    let mut last = String::new();
    let found = ferry_sandbox::harness::wait_for(
        &format!("{name} to see a source in {want:?}"),
        WAIT,
        Duration::from_millis(100),
        || {
            let out = netns(from, &["curl", "-s", "--max-time", "2", &url]);
            last = String::from_utf8_lossy(&out.stdout).into_owned();
            let src = last
                .starts_with(&format!("{name}-"))
                .then(|| seen_source(&last))?;
            want.contains(&src).then_some(src)
        },
    );
    found.unwrap_or_else(|e| {
        let table = netns(gateway, &["nft", "list", "table", "ip", "ferry-globalnet"]);
        panic!(
            "{e}; last answer {last:?}; the gateway's table:\n{}",
            String::from_utf8_lossy(&table.stdout)
        )
    })
}

#[test]
fn a_namespace_egress_ip_changes_only_that_namespaces_source() {
    if !usable() {
        return;
    }
    let cs = overlapping("e16n", &[2, 2], &[&[0], &[0]]);
    let (a, b) = (&cs.clusters[0], &cs.clusters[1]);
    let cluster_egress = egress_ips(a);
    serve_and_export(b, "bravo");
    // The import lands in the namespace of the same name (MCS sameness).
    a.kubectl(&["create", "namespace", "gn-test"]).unwrap();
    a.kubectl(&["create", "namespace", "gn-other"]).unwrap();
    a.apply(
        r#"apiVersion: ferry.dev/v1alpha1
kind: GlobalEgressIP
metadata: {name: whole, namespace: gn-other}
spec: {numberOfIPs: 2}
---
apiVersion: ferry.dev/v1alpha1
kind: GlobalEgressIP
metadata: {name: selected, namespace: default}
spec:
  podSelector: {matchLabels: {run: gn-sel}}
"#,
    )
    .unwrap();
    let whole = namespaced_egress_ips(a, "gn-other", "whole", 2);
    let selected = namespaced_egress_ips(a, "default", "selected", 1);
    for ip in whole.iter().chain(&selected) {
        assert!(!cluster_egress.contains(ip), "{ip} is also the cluster's");
    }
    let overrides = format!(
        r#"{{"apiVersion":"v1","spec":{{"nodeName":"{}"}}}}"#,
        a.node(1)
    );
    a.kubectl(&[
        "run",
        "gn-ns",
        "-n",
        "gn-other",
        "--image=busybox",
        "--restart=Never",
        "--overrides",
        &overrides,
        "--",
        "sleep",
        "infinity",
    ])
    .unwrap();
    let plain = a.pod("gn-client", 1).unwrap();
    let picked = a.pod("gn-sel", 1).unwrap();
    let in_ns = wait_for(WAIT, "pod gn-other/gn-ns to run", || {
        a.netns("gn-other/gn-ns").ok()
    });

    // The namespace's pods leave from its IPs, the selected pod from its
    // selector's (over the cluster's, in its namespace), the others from
    // the cluster's pool.
    let gw = a.node_netns(0).unwrap();
    fetch_from_one_of(&plain.netns, "bravo", &cluster_egress, &gw);
    fetch_from_one_of(&in_ns, "bravo", &whole, &gw);
    fetch_from_one_of(&picked.netns, "bravo", &selected, &gw);
}

/// The cluster's global CIDRs as its Cluster object on the broker says
/// now (empty: Globalnet off).
fn global_cidr_now(broker: &Cluster, c: &Cluster) -> String {
    jsonpath(
        broker,
        &[
            "-n",
            "ferry-broker",
            "get",
            "cluster",
            &c.name,
            "-o",
            "jsonpath={.spec.globalCidrs[*]}",
        ],
    )
}

/// The address `name` resolves to by its clusterset name from `from`.
fn resolve(from: &str, name: &str) -> String {
    let host = format!("{name}.gn-test.svc.clusterset.local");
    let out = netns(from, &["dig", "+short", "+time=1", "+tries=1", &host]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// One clusterset of three, distinct CIDRs: `gn` joined with Globalnet,
/// `mid` and `plain` without. `plain` (never Globalnet) talks to `gn` both
/// ways; then `ferry globalnet enable` switches `mid` on without a re-join:
/// it gets a block, its services resolve to global IPs everywhere, its
/// pods leave from its global egress IPs, and `plain` still talks to both.
#[test]
fn a_cluster_without_globalnet_talks_to_one_with_it_and_can_switch_it_on() {
    if !usable() {
        return;
    }
    let off: &[&str] = &["--globalnet=false"];
    let extra = Extra {
        join_args: &[&[], off, off],
        broker_args: GLOBALNET_BROKER,
        ..Extra::default()
    };
    let cs = Clusterset::with_options(
        &tag("e16m"),
        &[2, 2, 2],
        &[&[0], &[0], &[0]],
        "wireguard",
        Broker::FirstCluster,
        extra,
    );
    let (gn, mid, plain) = (&cs.clusters[0], &cs.clusters[1], &cs.clusters[2]);
    global_cidr(gn, gn);
    for c in [mid, plain] {
        assert_eq!(
            global_cidr_now(gn, c),
            "",
            "{} joined with Globalnet",
            c.name
        );
    }
    let egress_gn = egress_ips(gn);
    serve_and_export(gn, "alpha");
    serve_and_export(mid, "bravo");
    serve_and_export(plain, "charlie");
    let client_gn = gn.pod("gn-client", 1).unwrap();
    let client_mid = mid.pod("gn-client", 1).unwrap();
    let client_plain = plain.pod("gn-client", 1).unwrap();

    // Without Globalnet to with it: alpha answers from its global ingress
    // IP and sees the plain cluster's pod address (routed, not translated).
    let body = fetch(&client_plain.netns, "alpha");
    assert_eq!(seen_source(&body), client_plain.ip, "{body}");
    // With Globalnet to without: charlie sees one of gn's egress IPs.
    let body = fetch(&client_gn.netns, "charlie");
    let src = seen_source(&body);
    assert!(
        egress_gn.contains(&src),
        "charlie saw {src}, not one of {egress_gn:?}"
    );

    // Switch it on in `mid`: no re-join, and a second run changes nothing.
    let out = mid
        .ferry(&[
            "globalnet",
            "enable",
            "--kubeconfig",
            mid.kubeconfig.to_str().unwrap(),
        ])
        .unwrap();
    assert!(out.contains("Globalnet is on in cluster"), "{out}");
    let block = global_cidr(gn, mid);
    assert!(
        block.starts_with("100.120.") && block.ends_with("/24"),
        "{block}"
    );
    let again = mid
        .ferry(&[
            "globalnet",
            "enable",
            "--kubeconfig",
            mid.kubeconfig.to_str().unwrap(),
        ])
        .unwrap();
    assert!(again.contains("already on"), "{again}");
    let egress_mid = egress_ips(mid);

    // bravo now resolves to its global ingress IP in both other clusters,
    // and answers there; mid's pods leave from its egress IPs.
    let giip = wait_for(WAIT, "bravo's GlobalIngressIP", || {
        // Not there until the restarted agent has made it.
        let ip = mid
            .kubectl(&[
                "-n",
                "gn-test",
                "get",
                "globalingressip",
                "bravo",
                "-o",
                "jsonpath={.status.allocatedIP}",
            ])
            .ok()?;
        let ip = ip.trim().to_string();
        (!ip.is_empty()).then_some(ip)
    });
    for from in [&client_gn.netns, &client_plain.netns] {
        wait_for(WAIT, "bravo to resolve to its global IP", || {
            (resolve(from, "bravo") == giip).then_some(())
        });
        fetch(from, "bravo");
    }
    for to in ["alpha", "charlie"] {
        fetch_from_one_of(
            &client_mid.netns,
            to,
            &egress_mid,
            &mid.node_netns(0).unwrap(),
        );
    }
    // The others are undisturbed: gn and plain still talk.
    fetch(&client_plain.netns, "alpha");
    fetch(&client_gn.netns, "charlie");

    // `show globalnet` lists both blocks and mid's addresses.
    let kc = mid.kubeconfig.to_str().unwrap();
    let shown = mid
        .ferry(&["show", "globalnet", "--kubeconfig", kc])
        .unwrap();
    for want in [
        format!("{} (local)", mid.name),
        block.clone(),
        global_cidr(gn, gn),
        "service bravo".to_string(),
        giip.clone(),
        "cluster-egress.ferry.dev".to_string(),
    ] {
        assert!(shown.contains(&want), "no {want:?} in:\n{shown}");
    }
}
