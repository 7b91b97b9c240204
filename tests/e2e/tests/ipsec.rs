//! The `ipsec` cable driver between two sandbox clusters (issue #15): pod
//! to pod ping and TCP both ways, `ferry show connections` and `ferry
//! diagnose` seeing an ipsec connection, and gateway failover in either
//! cluster (the one that opens the IKE SA and the one that answers) with
//! traffic flowing on; then `ferry verify` and `ferry benchmark` on the
//! ipsec clusterset. And with SA lifetimes of a few seconds
//! (`join --ipsec-ike-lifetime/--ipsec-child-lifetime`), IKE and child SA
//! rekeys under a ping stream without losing a packet, counted in the
//! gateways' `ferry_gateway_cable_rekeys_total`.
//! Root only (skipped otherwise); each test builds and deletes its own clusters.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use ferry_e2e::{
    Broker, Cluster, Clusterset, Extra, Pod, StreamPing, StreamPingResult, ferry_bin, gateway_pid,
    holder, ping, tcp_stream, usable, wait_for,
};

fn tag(t: &str) -> String {
    format!("{t}{}", std::process::id() % 10_000)
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Kills `c`'s active gateway with SIGKILL under a 100 pings/s stream from
/// `client` to `server`; the lease must move and traffic go on.
fn failover(c: &Cluster, client: &Pod, server: &Pod) {
    let active = holder(c);
    let pinger = StreamPing::start(&client.netns, &server.ip.to_string());
    let t0 = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(gateway_pid(c, &active)),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let StreamPingResult { text, gap, replies } = pinger.finish();
    eprintln!(
        "{}: kill -9 of the active gateway: longest gap without replies {gap:?} \
         ({replies} replies, {:?} after the kill)",
        c.name,
        t0.elapsed()
    );
    let new_active = wait_for(Duration::from_secs(10), "the lease to move", || {
        let h = holder(c);
        (!h.is_empty() && h != active).then_some(h)
    });
    assert_ne!(new_active, active);
    assert!(
        replies > 100,
        "{}: only {replies} replies:\n{text}\n{}",
        c.name,
        c.gateway_report(80)
    );
    assert!(
        gap < Duration::from_secs(3),
        "{}: traffic stopped for {gap:?}\n{}",
        c.name,
        c.gateway_report(80)
    );
    ferry_e2e::wait_standbys(
        c,
        1,
        Duration::from_secs(20),
        "the killed gateway to come back as standby",
    );
}

#[test]
fn ipsec_cable_carries_traffic_and_survives_failover_on_either_side() {
    if !usable() {
        return;
    }
    // `libreswan`, as a subctl user would type it, is the ipsec driver.
    let cs = Clusterset::new(
        &tag("e15i"),
        &[3, 3],
        &[&[0, 1], &[0, 1]],
        "libreswan",
        Broker::FirstCluster,
    );
    let (a, b) = (&cs.clusters[0], &cs.clusters[1]);
    let pa = a.pod("pa", 2).unwrap();
    let pb = b.pod("pb", 2).unwrap();

    for (from, to) in [(&pa, &pb), (&pb, &pa)] {
        let (sent, got) = ping(&from.netns, &to.ip.to_string(), 5, "0.2");
        assert_eq!((sent, got), (5, 5), "ping {} → {}", from.ip, to.ip);
        let mbits = tcp_stream(from, to);
        eprintln!(
            "ipsec: TCP stream {} → {}: {mbits:.0} Mbit/s",
            from.ip, to.ip
        );
    }

    // Both sides report an ipsec connection, connected.
    let both = format!(
        "{},{}",
        a.kubeconfig.to_str().unwrap(),
        b.kubeconfig.to_str().unwrap()
    );
    let show = a
        .ferry(&["show", "connections", "--kubeconfig", &both])
        .unwrap();
    for (c, remote) in [(a, b), (b, a)] {
        let out = c
            .kubectl(&[
                "-n",
                "ferry-system",
                "get",
                "gateways",
                "-o",
                "jsonpath={range .items[*].status.connections[*]}{.clusterId}={.cableDriver}/{.status} {end}",
            ])
            .unwrap();
        assert!(
            out.split_whitespace()
                .any(|s| s == format!("{}=ipsec/connected", remote.name)),
            "{}: {out}",
            c.name
        );
    }
    let lines: Vec<&str> = show.lines().filter(|l| l.contains("ipsec")).collect();
    assert!(
        lines.len() >= 2 && lines.iter().all(|l| l.contains("connected")),
        "show connections:\n{show}"
    );
    eprintln!("ferry show connections:\n{show}");

    // diagnose sees the cable on its port (UDP 4500) and the connections.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = Command::new(ferry_bin())
            .args(["diagnose", "connections", "--kubeconfig", &both])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() && stdout.contains("PASS  connections") {
            let fw = Command::new(ferry_bin())
                .args(["diagnose", "firewall", "--kubeconfig", &both])
                .output()
                .unwrap();
            let fw_out = String::from_utf8_lossy(&fw.stdout).into_owned();
            assert!(
                fw.status.success() && fw_out.contains("PASS  firewall"),
                "diagnose firewall: {}",
                text(&fw)
            );
            assert!(fw_out.contains("4500"), "{fw_out}");
            eprintln!("ferry diagnose connections + firewall:\n{stdout}{fw_out}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "diagnose connections: {}",
            text(&out)
        );
        std::thread::sleep(Duration::from_secs(2));
    }

    // Failover where the IKE SA is opened (cluster ids: a < b, so a
    // initiates) and where it is answered.
    failover(a, &pb, &pa);
    failover(b, &pa, &pb);
    for (from, to) in [(&pa, &pb), (&pb, &pa)] {
        let (sent, got) = ping(&from.netns, &to.ip.to_string(), 5, "0.2");
        assert_eq!(
            (sent, got),
            (5, 5),
            "after failover: ping {} → {}",
            from.ip,
            to.ip
        );
    }

    // verify (both clusters have two gateway nodes: failover in each) and
    // benchmark work over the ipsec cable as over the other drivers.
    let run = |args: &[&str]| {
        let out = Command::new(ferry_bin()).args(args).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "ferry {args:?}: {}", text(&out));
        assert!(!stdout.contains("FAIL"), "ferry {args:?}: {}", text(&out));
        eprintln!("ferry {args:?}:\n{stdout}");
        stdout
    };
    let verify = run(&["verify", "--kubeconfig", &both]);
    for c in [a, b] {
        assert!(
            verify.contains(&format!("PASS  failover            {}:", c.name)),
            "{verify}"
        );
    }
    for (what, extra) in [
        ("throughput", &["--duration", "1s", "--streams", "2"][..]),
        ("latency", &["--count", "50"][..]),
    ] {
        let mut args = vec!["benchmark", what, "--kubeconfig", &both];
        args.extend(extra);
        let out = run(&args);
        assert!(out.contains(&a.name) && out.contains(&b.name), "{out}");
    }
}

/// `ferry_gateway_cable_rekeys_total` of `c`'s gateway (node 0) for its cable
/// to `remote`: (IKE, child) rekeys.
fn rekeys(c: &Cluster, remote: &Cluster) -> (u64, u64) {
    let text = c.curl(&c.node(0), "http://127.0.0.1:9161/metrics").unwrap();
    let count = |sa: &str| {
        let series = format!(
            "ferry_gateway_cable_rekeys_total{{remote_cluster=\"{}\",sa=\"{sa}\"}} ",
            remote.name
        );
        text.lines()
            .find_map(|l| l.strip_prefix(&series))
            .map_or(0, |v| v.trim().parse().unwrap())
    };
    (count("ike"), count("child"))
}

#[test]
fn ipsec_rekeys_ike_and_child_sas_without_losing_a_packet() {
    if !usable() {
        return;
    }
    // Lifetimes of seconds (each SA is rekeyed in the last tenth of its
    // lifetime, by whichever gateway gets there first).
    // Cluster b's gateway also takes another NAT-T port (`--nattport`):
    // IKE and ESP both move to it, and its Endpoint says so.
    let lifetimes: &[&str] = &["--ipsec-ike-lifetime=5s", "--ipsec-child-lifetime=3s"];
    let moved_port: &[&str] = &[
        "--ipsec-ike-lifetime=5s",
        "--ipsec-child-lifetime=3s",
        "--nattport=4501",
    ];
    let cs = Clusterset::with_options(
        &tag("e15r"),
        &[2, 2],
        &[&[0], &[0]],
        "ipsec",
        Broker::FirstCluster,
        Extra {
            join_args: &[lifetimes, moved_port],
            ..Extra::default()
        },
    );
    let (a, b) = (&cs.clusters[0], &cs.clusters[1]);
    for (c, port) in [(a, "4500"), (b, "4501")] {
        let list: serde_json::Value = serde_json::from_str(
            &c.kubectl(&["get", "endpoints.ferry.dev", "-A", "-o", "json"])
                .unwrap(),
        )
        .unwrap();
        let own = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["spec"]["clusterId"] == c.name.as_str())
            .unwrap_or_else(|| panic!("{}: no Endpoint of its own in {list}", c.name));
        assert_eq!(own["spec"]["backendConfig"]["port"], port, "{own}");
    }
    // Pods on the non-gateway nodes: the path crosses both route agents too.
    let pa = a.pod("pa", 1).unwrap();
    let pb = b.pod("pb", 1).unwrap();
    let before = [rekeys(a, b), rekeys(b, a)];

    // 25 s of pings, 20 a second: at least four IKE and seven child SA
    // lifetimes pass. Every echo request and every reply must arrive: an
    // old SA keeps decrypting until its replacement is in use on both sides.
    let (sent, got) = ping(&pb.netns, &pa.ip.to_string(), 500, "0.05");
    let after = [rekeys(a, b), rekeys(b, a)];
    eprintln!(
        "ipsec rekeys (ike, child) before → after the ping stream: {}: {:?} → {:?}, {}: {:?} → {:?}; \
         ping {sent} sent, {got} received",
        a.name, before[0], after[0], b.name, before[1], after[1]
    );
    assert_eq!(
        (sent, got),
        (500, 500),
        "pings lost across rekeys\n{}\n{}",
        a.gateway_report(60),
        b.gateway_report(60)
    );
    for (i, c) in [a, b].into_iter().enumerate() {
        let ike = after[i].0 - before[i].0;
        let child = after[i].1 - before[i].1;
        assert!(
            ike >= 2 && child >= 2,
            "{}: only {ike} IKE and {child} child SA rekeys during the stream\n{}",
            c.name,
            c.gateway_report(60)
        );
    }
    // The cables are still reported connected on both sides.
    for (c, remote) in [(a, b), (b, a)] {
        let out = c
            .kubectl(&[
                "-n",
                "ferry-system",
                "get",
                "gateways",
                "-o",
                "jsonpath={range .items[*].status.connections[*]}{.clusterId}={.status} {end}",
            ])
            .unwrap();
        assert!(
            out.split_whitespace()
                .any(|s| s == format!("{}=connected", remote.name)),
            "{}: {out}",
            c.name
        );
    }
}
