//! Packets between sandbox clusters through ferry's gateways and route
//! agents (issue #7): pod to pod from non-gateway nodes and to a remote
//! service's ClusterIP with each cable driver, gateway failover under
//! traffic and a graceful restart, a 60 s broker outage that must lose no
//! packet, and uninstall leaving no route, rule, interface or Node
//! annotation behind.
//! Root only (skipped otherwise); each test builds and deletes its own clusters.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ferry_e2e::{
    Broker, Clusterset, Pod, StreamPing, StreamPingResult, gateway_pid, holder, netns, ping,
    usable, wait_for,
};

const NGINX: &str = include_str!("../../../examples/nginx.yaml");

fn tag(t: &str) -> String {
    format!("{t}{}", std::process::id() % 10_000)
}

/// Ping, a TCP stream and HTTP to the remote service's ClusterIP, from a
/// pod on a non-gateway node to one on a non-gateway node.
fn traffic(driver: &str, t: &str) {
    if !usable() {
        return;
    }
    let cs = Clusterset::new(
        &tag(t),
        &[2, 2],
        &[&[0], &[0]],
        driver,
        Broker::FirstCluster,
    );
    let (a, b) = (&cs.clusters[0], &cs.clusters[1]);
    let client = a.pod("client", 1).unwrap();
    let server = b.pod("server", 1).unwrap();

    let (sent, got) = ping(&client.netns, &server.ip.to_string(), 5, "0.2");
    assert_eq!(
        (sent, got),
        (5, 5),
        "{driver}: ping {} → {}",
        a.name,
        b.name
    );
    let (sent, got) = ping(&server.netns, &client.ip.to_string(), 5, "0.2");
    assert_eq!(
        (sent, got),
        (5, 5),
        "{driver}: ping {} → {}",
        b.name,
        a.name
    );

    // A TCP stream: iperf3 for one second, through vx-ferry, both gateways
    // and the cable.
    let mbits = ferry_e2e::tcp_stream(&client, &server);
    eprintln!("{driver}: TCP stream {mbits:.0} Mbit/s");

    // HTTP to the ClusterIP of a service in the other cluster.
    b.apply(NGINX).unwrap();
    let cip = b.service_ip("nginx-test", "nginx").unwrap();
    let url = format!("http://{cip}:8080/");
    let body = wait_for(Duration::from_secs(30), "HTTP through the cable", || {
        let out = netns(&client.netns, &["curl", "-s", "--max-time", "2", &url]);
        let body = String::from_utf8_lossy(&out.stdout).into_owned();
        body.starts_with("nginx-").then_some(body)
    });
    // The echo server names the client it saw: the pod itself, not masqueraded.
    assert!(
        body.contains(&format!("from {}:", client.ip)),
        "{driver}: the service saw another source: {body}"
    );
}

#[test]
fn pod_to_pod_and_service_over_wireguard() {
    traffic("wireguard", "e7w");
}

#[test]
fn pod_to_pod_and_service_over_vxlan() {
    traffic("vxlan", "e7v");
}

/// Cluster a with two gateway nodes (0, 1) and a server pod on node 2;
/// cluster b with a client pod; once a first ping passes.
fn two_gateways_and_traffic(t: &str) -> (Clusterset, Pod, Pod) {
    let cs = Clusterset::new(
        &tag(t),
        &[3, 2],
        &[&[0, 1], &[0]],
        "wireguard",
        Broker::FirstCluster,
    );
    let server = cs.clusters[0].pod("server", 2).unwrap();
    let client = cs.clusters[1].pod("client", 1).unwrap();
    wait_for(
        Duration::from_secs(20),
        "traffic before the failure",
        || (ping(&client.netns, &server.ip.to_string(), 1, "0.2").1 == 1).then_some(()),
    );
    (cs, server, client)
}

#[test]
fn gateway_failover_under_traffic_and_graceful_restart() {
    if !usable() {
        return;
    }
    let (cs, server, client) = two_gateways_and_traffic("e7h");
    let (a, b) = (&cs.clusters[0], &cs.clusters[1]);

    for round in ["kill -9", "graceful restart"] {
        let active = holder(a);
        let pinger = StreamPing::start(&client.netns, &server.ip.to_string());
        let t0 = Instant::now();
        if round == "kill -9" {
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(gateway_pid(a, &active)),
                nix::sys::signal::Signal::SIGKILL,
            )
            .unwrap();
        } else {
            let pod = a
                .kubectl(&[
                    "-n",
                    "ferry-system",
                    "get",
                    "pods",
                    "-l",
                    "app.kubernetes.io/name=ferry-gateway",
                    "--field-selector",
                    &format!("spec.nodeName={active}"),
                    "-o",
                    "jsonpath={.items[0].metadata.name}",
                ])
                .unwrap();
            a.kubectl(&[
                "-n",
                "ferry-system",
                "delete",
                "pod",
                pod.trim(),
                "--wait=false",
            ])
            .unwrap();
        }
        let StreamPingResult { text, gap, replies } = pinger.finish();
        eprintln!(
            "{round}: longest gap without replies {gap:?} ({replies} replies, {:?} after the stop)",
            t0.elapsed()
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        let new_active = loop {
            let h = holder(a);
            if !h.is_empty() && h != active {
                break h;
            }
            if Instant::now() > deadline {
                panic!(
                    "{round}: the lease stayed with {active:?}\n{}",
                    a.gateway_report(80)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        assert_ne!(new_active, active, "{round}: the lease did not move");
        // Traffic recovered through the other gateway: replies kept coming
        // and no gap approached the whole window.
        assert!(
            replies > 100,
            "{round}: only {replies} replies:\n{text}\n{}\n{}",
            a.gateway_report(40),
            b.gateway_report(40)
        );
        assert!(
            gap < Duration::from_secs(3),
            "{round}: traffic stopped for {gap:?}"
        );
        ferry_e2e::wait_standbys(
            a,
            1,
            Duration::from_secs(20),
            "the stopped gateway to come back as standby",
        );
    }
}

/// The active gateway stalls (SIGSTOP: a frozen VM, a long pause) while
/// its process lives: the standby's probes go unanswered, it takes the
/// Lease and the traffic; when the stalled one wakes it must see the new
/// holder and step down — one active gateway, traffic on.
#[test]
fn a_stalled_active_gateway_is_replaced_and_steps_down_when_it_wakes() {
    if !usable() {
        return;
    }
    let (cs, server, client) = two_gateways_and_traffic("e7s");
    let a = &cs.clusters[0];
    ferry_e2e::wait_standbys(a, 1, Duration::from_secs(20), "a standby");
    let stalled = holder(a);
    let pid = nix::unistd::Pid::from_raw(gateway_pid(a, &stalled));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    let took = wait_for(Duration::from_secs(10), "the standby to take over", || {
        let h = holder(a);
        (!h.is_empty() && h != stalled).then_some(h)
    });
    wait_for(
        Duration::from_secs(20),
        "traffic through the standby",
        || (ping(&client.netns, &server.ip.to_string(), 1, "0.2").1 == 1).then_some(()),
    );
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).unwrap();
    ferry_e2e::wait_standbys(
        a,
        1,
        Duration::from_secs(10),
        "the woken gateway to step down",
    );
    assert_eq!(holder(a), took, "the lease went back to the woken gateway");
    assert_eq!(
        ping(&client.netns, &server.ip.to_string(), 10, "0.1"),
        (10, 10),
        "traffic after the stalled gateway woke\n{}",
        a.gateway_report(40)
    );
}

#[test]
fn broker_down_for_a_minute_loses_no_packet() {
    if !usable() {
        return;
    }
    let mut cs = Clusterset::new(
        &tag("e7b"),
        &[2, 2],
        &[&[0], &[0]],
        "wireguard",
        Broker::Embedded,
    );
    let server = cs.clusters[1].pod("server", 1).unwrap();
    let client = cs.clusters[0].pod("client", 1).unwrap();
    wait_for(Duration::from_secs(20), "traffic before the outage", || {
        (ping(&client.netns, &server.ip.to_string(), 1, "0.2").1 == 1).then_some(())
    });
    let pinger = Command::new("ip")
        .args([
            "netns",
            "exec",
            &client.netns,
            "ping",
            "-n",
            "-q",
            "-i",
            "0.1",
            "-c",
            "650",
            "-W",
            "1",
        ])
        .arg(server.ip.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let mut broker = cs.broker.take().unwrap();
    broker.kill().unwrap();
    broker.wait().unwrap();
    std::thread::sleep(Duration::from_secs(60));
    let (dir, listen) = cs.broker_dir.as_ref().unwrap();
    cs.broker = Some(ferry_e2e::start_embedded_broker(
        dir.path(),
        listen,
        cs.broker_info.to_str().unwrap(),
    ));
    let out = pinger.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("650 packets transmitted, 650 received"),
        "{text}"
    );
    // And the clusterset keeps working after the broker returns.
    ferry_e2e::wait_connected(&cs.clusters[0], &cs.clusters[1].name);
}

/// Links, rules, routes and nft state ferry leaves on a node namespace.
fn ferry_state(ns: &str) -> Vec<String> {
    let mut found = Vec::new();
    for link in ["vx-ferry", "ferry-wg", "ferry-vxc"] {
        if netns(ns, &["ip", "link", "show", link]).status.success() {
            found.push(format!("link {link}"));
        }
    }
    let rules = String::from_utf8_lossy(&netns(ns, &["ip", "rule"]).stdout).into_owned();
    for pref in ["7099:", "7100:"] {
        if rules.lines().any(|l| l.starts_with(pref)) {
            found.push(format!("rule {pref}"));
        }
    }
    for table in ["7100", "7101"] {
        let routes = netns(ns, &["ip", "route", "show", "table", table]);
        if !String::from_utf8_lossy(&routes.stdout).trim().is_empty() {
            found.push(format!("routes in table {table}"));
        }
    }
    if netns(ns, &["nft", "list", "table", "ip", "ferry"])
        .status
        .success()
    {
        found.push("nft table ip ferry".into());
    }
    found
}

#[test]
fn uninstall_leaves_nothing_on_the_nodes() {
    if !usable() {
        return;
    }
    let cs = Clusterset::new(
        &tag("e7u"),
        &[2, 2],
        &[&[0], &[0]],
        "vxlan",
        Broker::FirstCluster,
    );
    let b = &cs.clusters[1];
    let gw = ferry_state(&b.node_netns(0).unwrap());
    let other = ferry_state(&b.node_netns(1).unwrap());
    assert!(
        gw.contains(&"link ferry-vxc".to_string()),
        "gateway node: {gw:?}"
    );
    assert!(
        other.contains(&"link vx-ferry".to_string()),
        "other node: {other:?}"
    );
    assert!(
        other.contains(&"routes in table 7100".to_string()),
        "other node: {other:?}"
    );
    wait_for(Duration::from_secs(30), "both nodes annotated", || {
        let out = b
            .kubectl(&[
                "get",
                "nodes",
                "-o",
                r"jsonpath={.items[*].metadata.annotations.ferry\.dev/cni-iface-ip}",
            ])
            .unwrap();
        (out.split_whitespace().count() == 2).then_some(())
    });
    ferry_e2e::ferry(&[
        "uninstall",
        "--kubeconfig",
        b.kubeconfig.to_str().unwrap(),
        "--yes",
    ]);
    for k in 0..2 {
        let left = ferry_state(&b.node_netns(k).unwrap());
        assert!(left.is_empty(), "{} still has {left:?}", b.node(k));
    }
    // Nor the route agent's note of the node's host source address.
    let annotated = b
        .kubectl(&[
            "get",
            "nodes",
            "-o",
            r"jsonpath={.items[*].metadata.annotations.ferry\.dev/cni-iface-ip}",
        ])
        .unwrap();
    assert!(annotated.trim().is_empty(), "{annotated}");
}
