//! The seed's flow (`../shared/reference/seed/cluster-submariner.md`) on
//! two kube-ovn-shaped clusters (`ferry sandbox create --cni kube-ovn`:
//! `ovn0` on every node in the join subnet, pods in ovn-default, kube-ovn's
//! natOutgoing masquerade, the two `Subnet`s in the API server), issue #20:
//!
//! 1. `deploy-broker`; both joins with the seed's flags and no CIDR flag:
//!    join finds kube-ovn, takes ovn-default and join from its Subnets (as
//!    kube-ovn's guide puts both in `--clustercidr`) and the service CIDR
//!    from the API server, and records the CNI (`show networks`' CNI column);
//! 2. gateways labelled; ping of a remote pod from the gateway node's and a
//!    non-gateway node's shell;
//! 3. HTTP by clusterset name from a pod on the non-gateway node: the
//!    remote pod sees the client pod's own address (kube-ovn's masquerade
//!    left cross-cluster traffic alone);
//! 4. host-network traffic: the route agent's kube-ovn handler sources a
//!    non-gateway node's from its `ovn0` address (its
//!    `ferry.dev/cni-iface-ip`), which the remote pod sees, and the reply
//!    comes back through `ovn0`; the gateway's cable routes source the
//!    gateway node's from its `ovn0` address too.
//!
//! Root only (skipped otherwise); the clusters are deleted on drop.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::Ipv4Addr;
use std::time::Duration;

use ferry_e2e::nginx::{EXPORT, NAMESPACE, NGINX};
use ferry_e2e::tempfile_dir::Dir;
use ferry_e2e::{Cluster, ferry, netns, output, ping, usable, wait_connected, wait_for};

const WAIT: Duration = Duration::from_secs(90);

/// The address an http-echo answer says the request came from.
fn seen_by(ns: &str, url: &str) -> String {
    wait_for(WAIT, &format!("HTTP {url} from {ns}"), || {
        let out = netns(ns, &["curl", "-s", "--max-time", "2", url]);
        let body = String::from_utf8_lossy(&out.stdout).into_owned();
        let from = body.split(" from ").nth(1)?;
        Some(from.rsplit_once(':')?.0.to_string())
    })
}

fn pings(ns: &str, ip: &str, what: &str) {
    wait_for(WAIT, &format!("a first reply: {what}"), || {
        (ping(ns, ip, 1, "0.2").1 == 1).then_some(())
    });
    assert_eq!(ping(ns, ip, 2, "0.5"), (2, 2), "{what}");
}

fn annotation(c: &Cluster, k: usize) -> Ipv4Addr {
    wait_for(WAIT, &format!("{}'s cni-iface-ip", c.node(k)), || {
        let out = c
            .kubectl(&[
                "get",
                "node",
                &c.node(k),
                "-o",
                r"jsonpath={.metadata.annotations.ferry\.dev/cni-iface-ip}",
            ])
            .unwrap();
        out.trim().parse().ok()
    })
}

#[test]
fn the_seeds_flow_on_kube_ovn_shaped_clusters() {
    if !usable() {
        return;
    }
    let _lock = ferry_sandbox::harness::lock(false).unwrap();
    let tag = format!("ko{}", std::process::id() % 10_000);
    let create = |suffix: &str| {
        Cluster::create(
            &format!("{tag}{suffix}"),
            &["--nodes", "2", "--cni", "kube-ovn"],
        )
        .unwrap()
    };
    let (c0, c1) = (create("a"), create("b"));
    let dir = Dir::new(&format!("{tag}seed"));
    let info = dir.path().join("broker-info.ferry");
    let info = info.to_str().unwrap();

    // 1. The broker in cluster0; both joins with no CIDR flag.
    ferry(&[
        "deploy-broker",
        "--kubeconfig",
        c0.kubeconfig.to_str().unwrap(),
        "-o",
        info,
    ]);
    for c in [&c0, &c1] {
        let plan = c.plan().unwrap();
        let args = [
            "join",
            info,
            "--clusterid",
            &c.name,
            "--kubeconfig",
            c.kubeconfig.to_str().unwrap(),
            "--natt=false",
            "--cable-driver",
            "vxlan",
            "--health-check=false",
        ];
        let out = output(std::process::Command::new(ferry_e2e::ferry_bin()).args(args));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "ferry {}: {stderr}", args.join(" "));
        let pods = format!(
            "pod CIDRs: {},{} (from kube-ovn's objects)",
            plan.ovn_default_cidr(),
            plan.join_cidr()
        );
        assert!(stderr.contains(&pods), "{pods:?} in {stderr}");
        assert!(stderr.contains(&c.service_cidr), "{stderr}");
        assert!(stderr.contains("CNI: kube-ovn"), "{stderr}");
    }
    // The other cluster's row arrives through the broker a moment after join.
    let kubeconfig = c0.kubeconfig.to_str().unwrap();
    let networks = wait_for(WAIT, "both clusters' CNI in show networks", || {
        let networks = ferry(&["show", "networks", "--kubeconfig", kubeconfig]);
        (networks.matches("kube-ovn").count() == 2).then_some(networks)
    });
    assert!(networks.contains("CNI"), "{networks}");

    // 2. Gateways; ping a remote pod from both nodes' shells.
    for c in [&c0, &c1] {
        c.kubectl(&["label", "nodes", &c.node(0), "ferry.dev/gateway=true"])
            .unwrap();
    }
    wait_connected(&c0, &c1.name);
    wait_connected(&c1, &c0.name);
    // The import lands in the service's namespace, which must exist here.
    c0.apply(NAMESPACE).unwrap();
    c1.apply(NGINX).unwrap();
    c1.apply(EXPORT).unwrap();
    let remote_pod = wait_for(WAIT, "an nginx pod running", || {
        let out = c1
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
                "jsonpath={.items[0].status.podIP}",
            ])
            // kubectl fails on items[0] while no pod runs yet.
            .ok()?;
        out.trim().parse::<Ipv4Addr>().ok()
    })
    .to_string();
    let (gw, node) = (c0.node_netns(0).unwrap(), c0.node_netns(1).unwrap());
    pings(&gw, &remote_pod, "gateway node → remote pod");
    pings(&node, &remote_pod, "non-gateway node → remote pod");

    // 3. By clusterset name from a pod on the non-gateway node: its own
    // source survives kube-ovn's natOutgoing masquerade.
    let client = c0.pod("client", 1).unwrap();
    let url = "http://nginx.nginx-test.svc.clusterset.local:8080/";
    assert_eq!(seen_by(&client.netns, url), client.ip.to_string());

    // 4. Host-network traffic of both nodes leaves from their ovn0 address
    // in the join subnet: the non-gateway node's through the route agent's
    // routes, the gateway node's through the gateway's cable routes.
    let plan = c0.plan().unwrap();
    let pod_url = format!("http://{remote_pod}:8080/");
    for (k, ns) in [(1_u32, &node), (0, &gw)] {
        let source = annotation(&c0, k as usize);
        assert_eq!(source, plan.node_join_ip(k), "{}", c0.node(k as usize));
        assert_eq!(
            seen_by(ns, &pod_url),
            source.to_string(),
            "{}",
            c0.node(k as usize)
        );
    }
}
