//! Gateways behind real NAT (issue #14): clusters created `ferry sandbox
//! create --nat[=MODE]` put their nodes behind a router namespace that
//! masquerades with random ports and drops unsolicited inbound traffic; the
//! gateways' NAT discovery (UDP 4490) must find the way through, or say in
//! the Gateway status why there is none, and `ferry show connections` /
//! `ferry diagnose nat-discovery` must report what it found.
//! Root only (skipped otherwise); each test builds and deletes its clusters.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;
use std::time::Duration;

use ferry_e2e::{Broker, Cluster, Clusterset, Extra, output, ping, usable, wait_for};
use serde_json::Value;

fn tag(t: &str) -> String {
    format!("{t}{}", std::process::id() % 10_000)
}

/// The active gateway's connection to `remote`, once it has one.
fn connection(c: &Cluster, remote: &str) -> Option<Value> {
    let out = c
        .kubectl(&["-n", "ferry-system", "get", "gateways", "-o", "json"])
        .ok()?;
    let list: Value = serde_json::from_str(&out).ok()?;
    list["items"]
        .as_array()?
        .iter()
        .filter(|g| g["status"]["haStatus"] == "active")
        .flat_map(|g| {
            g["status"]["connections"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .find(|conn| conn["clusterId"] == remote)
}

/// Waits until `c`'s connection to `remote` satisfies `ok`; returns it.
fn wait_connection(c: &Cluster, remote: &str, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    wait_for(
        Duration::from_secs(60),
        &format!("{} → {remote}: {what}", c.name),
        || connection(c, remote).filter(|v| ok(v)),
    )
}

fn public_ip(c: &Cluster) -> String {
    c.plan().unwrap().public_ip(0).to_string()
}

fn kubeconfigs(cs: &Clusterset) -> String {
    cs.clusters
        .iter()
        .map(|c| c.kubeconfig.to_str().unwrap().to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// `ferry ARGS…` whatever its exit status: (success, stdout + stderr).
fn ferry_any(cs: &Clusterset, args: &[&str]) -> (bool, String) {
    let out = output(
        Command::new(ferry_e2e::ferry_bin())
            .args(args)
            .args(["--kubeconfig", &kubeconfigs(cs)]),
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Pod to pod both ways, from non-gateway nodes.
fn pods_reach_each_other(a: &Cluster, b: &Cluster) {
    let pa = a.pod("nat-a", 1).unwrap();
    let pb = b.pod("nat-b", 1).unwrap();
    for (from, to, what) in [(&pa, &pb, "a → b"), (&pb, &pa, "b → a")] {
        let (sent, got) = ping(&from.netns, &to.ip.to_string(), 5, "0.2");
        assert_eq!((sent, got), (5, 5), "ping {what}");
    }
}

#[test]
fn one_side_behind_nat_connects_over_wireguard() {
    if !usable() {
        return;
    }
    let cs = Clusterset::with(
        &tag("natw"),
        &[2, 2],
        &[&["--nat"], &[]],
        &[&[0], &[0]],
        "wireguard",
        Broker::FirstCluster,
        true,
    );
    let (a, b) = (&cs.clusters[0], &cs.clusters[1]);
    let nat_ip = public_ip(a);

    // Behind the NAT: b's public IP answers, and b saw a's probe come from
    // the router's address, not from a's node.
    let ab = connection(a, &b.name).unwrap();
    assert_eq!(ab["natDiscovery"]["result"], "publicIp", "{ab}");
    assert_eq!(ab["usingIp"], public_ip(b).as_str(), "{ab}");
    assert_eq!(ab["usingNat"], true, "{ab}");
    let seen = ab["natDiscovery"]["seenAs"].as_str().unwrap();
    assert!(seen.starts_with(&format!("{nat_ip}:")), "{ab}");
    // The public side cannot reach a (no inbound through the NAT) but a's
    // probes arrive from the router: a opens the cable.
    let ba = connection(b, &a.name).unwrap();
    assert_eq!(ba["natDiscovery"]["result"], "inboundOnly", "{ba}");
    assert_eq!(ba["usingIp"], nat_ip.as_str(), "{ba}");
    assert_eq!(ba["usingNat"], true, "{ba}");

    pods_reach_each_other(a, b);

    let (_, shown) = ferry_any(&cs, &["show", "connections"]);
    assert!(
        shown.contains(&format!("public ip, seen as {nat_ip}:")),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("inbound only, from {nat_ip}:")),
        "{shown}"
    );
    let (ok, diag) = ferry_any(&cs, &["diagnose", "nat-discovery"]);
    assert!(ok, "{diag}");
    assert!(diag.contains("PASS") && !diag.contains("FAIL"), "{diag}");
}

/// VXLAN has no handshake to open a masquerading NAT, but a port forward
/// of its UDP port (and NAT discovery's) carries it, as the refusal's hint
/// says.
#[test]
fn vxlan_behind_a_port_forward_connects() {
    if !usable() {
        return;
    }
    let cs = Clusterset::with(
        &tag("natp"),
        &[2, 2],
        &[&["--nat=port-forward"], &[]],
        &[&[0], &[0]],
        "vxlan",
        Broker::FirstCluster,
        true,
    );
    let (a, b) = (&cs.clusters[0], &cs.clusters[1]);
    let ba = connection(b, &a.name).unwrap();
    assert_eq!(ba["usingIp"], public_ip(a).as_str(), "{ba}");
    assert_eq!(ba["usingNat"], true, "{ba}");
    pods_reach_each_other(a, b);
}

#[test]
fn vxlan_through_nat_is_refused_with_the_reason() {
    if !usable() {
        return;
    }
    let cs = Clusterset::with(
        &tag("natv"),
        &[2, 2],
        &[&["--nat"], &[]],
        &[&[0], &[0]],
        "vxlan",
        Broker::FirstCluster,
        false,
    );
    let (a, b) = (&cs.clusters[0], &cs.clusters[1]);
    let refused = |v: &Value| {
        v["status"] == "error"
            && v["statusMessage"]
                .as_str()
                .is_some_and(|m| m.starts_with("the vxlan cable cannot cross this NAT"))
    };
    let ba = wait_connection(b, &a.name, "vxlan refused", refused);
    assert!(
        ba["statusMessage"]
            .as_str()
            .unwrap()
            .contains("--cable-driver wireguard"),
        "{ba}"
    );
    wait_connection(a, &b.name, "vxlan refused", refused);
    let (ok, diag) = ferry_any(&cs, &["diagnose", "nat-discovery"]);
    assert!(!ok && diag.contains("FAIL"), "{diag}");
}

#[test]
fn both_behind_nat_connect_through_the_preferred_servers_port_forward() {
    if !usable() {
        return;
    }
    let cs = Clusterset::with_options(
        &tag("natb"),
        &[2, 2],
        &[&[0], &[0]],
        "wireguard",
        Broker::FirstCluster,
        Extra {
            sandbox_args: &[&["--nat=port-forward"], &["--nat"]],
            join_args: &[&["--preferred-server"]],
            wait_connected: false,
            ..Extra::default()
        },
    );
    let (a, b) = (&cs.clusters[0], &cs.clusters[1]);
    wait_for(
        Duration::from_secs(60),
        "a's Endpoint to say preferredServer (join --preferred-server)",
        || {
            let out = a
                .kubectl(&[
                    "-n",
                    "ferry-system",
                    "get",
                    "endpoints.ferry.dev",
                    &a.name,
                    "-o",
                    "jsonpath={.spec.backendConfig.preferredServer}",
                ])
                .ok()?;
            (out.trim() == "true").then_some(())
        },
    );
    ferry_e2e::wait_connected(a, &b.name);
    ferry_e2e::wait_connected(b, &a.name);
    // b reaches a through a's forward (its destination rewritten on the
    // way); a cannot reach b and waits for it.
    let ba = connection(b, &a.name).unwrap();
    assert_eq!(ba["natDiscovery"]["result"], "publicIp", "{ba}");
    assert_eq!(ba["usingIp"], public_ip(a).as_str(), "{ba}");
    assert_eq!(ba["usingNat"], true, "{ba}");
    let ab = connection(a, &b.name).unwrap();
    assert_eq!(ab["natDiscovery"]["result"], "inboundOnly", "{ab}");
    assert_eq!(ab["usingIp"], public_ip(b).as_str(), "{ab}");
    pods_reach_each_other(a, b);
}

#[test]
fn a_nat_that_blocks_udp_is_named_in_the_gateway_status() {
    if !usable() {
        return;
    }
    let cs = Clusterset::with(
        &tag("natu"),
        &[2, 2],
        &[&["--nat=block-udp"], &[]],
        &[&[0], &[0]],
        "wireguard",
        Broker::FirstCluster,
        false,
    );
    let (a, b) = (&cs.clusters[0], &cs.clusters[1]);
    for (from, to) in [(a, b), (b, a)] {
        let c = wait_connection(from, &to.name, "UDP named as blocked", |v| {
            v["status"] == "error"
                && v["statusMessage"]
                    .as_str()
                    .is_some_and(|m| m.contains("UDP between the gateways is blocked"))
        });
        assert_eq!(c["natDiscovery"]["result"], "unreachable", "{c}");
    }
    let (ok, diag) = ferry_any(&cs, &["diagnose", "nat-discovery"]);
    assert!(!ok, "{diag}");
    assert!(
        diag.contains("UDP between the gateways is blocked"),
        "{diag}"
    );
}

#[test]
fn without_nat_discovery_says_no_nat_and_vxlan_works() {
    if !usable() {
        return;
    }
    let cs = Clusterset::with(
        &tag("nat0"),
        &[2, 2],
        &[],
        &[&[0], &[0]],
        "vxlan",
        Broker::FirstCluster,
        true,
    );
    let (a, b) = (&cs.clusters[0], &cs.clusters[1]);
    for (from, to) in [(a, b), (b, a)] {
        let c = connection(from, &to.name).unwrap();
        assert_eq!(c["natDiscovery"]["result"], "publicIp", "{c}");
        assert_eq!(c["usingIp"], public_ip(to).as_str(), "{c}");
        assert_eq!(c["usingNat"], false, "{c}");
    }
    pods_reach_each_other(a, b);
}
