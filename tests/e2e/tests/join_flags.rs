//! `ferry join` with subctl's flags as the seed writes them (issue #14),
//! across two sandbox clusters, through the real binary:
//! - `deploy-broker --kubeconfig` writes a joiner token (TokenRequest), not
//!   the admin one: it cannot read Secrets on the broker;
//! - flags ferry does not implement are refused with `error:`/`hint:`, exit
//!   2, before anything changes;
//! - `join --clustercidr P --natt=false --cable-driver vxlan
//!   --health-check=false` (the seed's line: no --servicecidr) discovers the
//!   service CIDR and says from where; a join with no CIDR flag discovers both;
//! - the gateway runs with those flags: natEnabled=false on the Endpoint,
//!   connections `connected` with health checks off;
//! - a gateway node whose public-ip annotation does not parse names the cause
//!   in its Gateway status;
//! - `recover-broker-info` writes the same broker-info.ferry again.
//!
//! Root only (skipped otherwise); clusters are deleted on drop.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;
use std::time::Duration;

use base64::Engine;
use ferry_e2e::tempfile_dir::Dir;
use ferry_e2e::{Cluster, ferry, ferry_bin, output, usable, wait_connected, wait_for};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

fn decode(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    let json = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .unwrap();
    serde_json::from_slice(&json).unwrap()
}

/// `ferry ARGS` that must fail: (exit code, stderr).
fn ferry_fails(args: &[&str]) -> (i32, String) {
    let out = output(Command::new(ferry_bin()).args(args));
    assert!(!out.status.success(), "ferry {args:?} succeeded");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `ferry ARGS` that must succeed: its stderr (where join reports).
fn ferry_stderr(args: &[&str]) -> String {
    let out = output(Command::new(ferry_bin()).args(args));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "ferry {args:?}: {err}");
    err
}

fn gateway_status(c: &Cluster, node: &str) -> Value {
    let out = c
        .kubectl(&["-n", "ferry-system", "get", "gateway", node, "-o", "json"])
        .unwrap_or_default();
    serde_json::from_str(&out).unwrap_or(Value::Null)["status"].clone()
}

#[test]
fn seed_join_flags_discovery_joiner_token_annotations_and_recovery() {
    if !usable() {
        return;
    }
    let _lock = ferry_sandbox::harness::lock(false).unwrap();
    let tag = std::process::id() % 10_000;
    let a = ferry_e2e::create(&format!("j14a{tag}"), 2);
    let b = ferry_e2e::create(&format!("j14b{tag}"), 1);
    let dir = Dir::new(&format!("j14{tag}"));
    let info_path = dir.path().join("broker-info.ferry");
    let info = info_path.to_str().unwrap();
    let (ka, kb) = (
        a.kubeconfig.to_str().unwrap(),
        b.kubeconfig.to_str().unwrap(),
    );

    // A Globalnet pool smaller than one cluster's block is refused, with
    // the numbers, before anything is written.
    let (code, err) = ferry_fails(&[
        "deploy-broker",
        "--kubeconfig",
        ka,
        "-o",
        info,
        "--globalnet-cidr-range",
        "100.120.0.0/24",
        "--globalnet-cluster-size",
        "65536",
    ]);
    assert_ne!(code, 0, "{err}");
    assert!(
        err.contains("has 256 addresses, fewer than one cluster's 65536")
            && err.contains("\nhint: "),
        "{err}"
    );
    assert!(!info_path.exists());

    ferry(&["deploy-broker", "--kubeconfig", ka, "-o", info]);
    let broker_info = decode(&info_path);
    let token = broker_info["token"].as_str().unwrap();
    let admin = a
        .kubectl(&[
            "config",
            "view",
            "--raw",
            "--minify",
            "-o",
            "jsonpath={.users[0].user.token}",
        ])
        .unwrap();
    assert_ne!(
        token,
        admin.trim(),
        "broker-info.ferry carries the admin token"
    );
    let secrets = output(
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&a.kubeconfig)
            .args(["--token", token, "-n", "ferry-broker", "get", "secrets"]),
    );
    assert!(!secrets.status.success(), "the joiner token reads Secrets");
    assert!(String::from_utf8_lossy(&secrets.stderr).contains("Forbidden"));

    // Unimplemented flags: one error line, one hint, exit 2, nothing joined.
    let mut args = vec!["join", info, "--clusterid", &a.name, "--kubeconfig", ka];
    args.push("--load-balancer");
    let (code, err) = ferry_fails(&args);
    assert_eq!(code, 2, "--load-balancer: {err}");
    assert!(
        err.contains("LoadBalancer") && err.lines().count() == 2,
        "--load-balancer: {err}"
    );
    // A global CIDR inside the cluster's own pod CIDR: refused with both.
    let inside = a.pod_cidr.replace(".0.0/16", ".7.0/24");
    let mut args = vec!["join", info, "--clusterid", &a.name, "--kubeconfig", ka];
    args.extend(["--clustercidr", &a.pod_cidr, "--globalnet-cidr", &inside]);
    let (code, err) = ferry_fails(&args);
    assert_ne!(code, 0, "{err}");
    assert!(
        err.contains(&format!(
            "global CIDR {inside} overlaps this cluster's CIDR {}",
            a.pod_cidr
        )) && err.contains("\nhint: "),
        "{err}"
    );
    assert!(
        a.kubectl(&["get", "ns", "ferry-system"]).is_err(),
        "nothing applied"
    );

    // The seed's join line: the service CIDR is discovered.
    let seed = [
        "--natt=false",
        "--cable-driver",
        "vxlan",
        "--health-check=false",
    ];
    let mut args = vec!["join", info, "--clusterid", &a.name, "--kubeconfig", ka];
    args.extend(["--clustercidr", &a.pod_cidr]);
    args.extend(seed);
    let said = ferry_stderr(&args);
    assert!(
        said.contains(&format!("pod CIDRs: {} (from --clustercidr)", a.pod_cidr)),
        "{said}"
    );
    assert!(
        said.contains(&format!("service CIDRs: {} (from ", a.service_cidr)),
        "{said}"
    );
    // No CIDR flag at all: both discovered.
    let mut args = vec!["join", info, "--clusterid", &b.name, "--kubeconfig", kb];
    args.extend(seed);
    let said = ferry_stderr(&args);
    assert!(
        said.contains(&format!("pod CIDRs: {} (from ", b.pod_cidr)),
        "{said}"
    );
    assert!(
        said.contains(&format!("service CIDRs: {} (from ", b.service_cidr)),
        "{said}"
    );

    let ds = a
        .kubectl(&[
            "-n",
            "ferry-system",
            "get",
            "ds",
            "ferry-gateway",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].args}",
        ])
        .unwrap();
    assert!(
        ds.contains("--natt=false") && ds.contains("--health-check=false"),
        "{ds}"
    );

    // A node whose public-ip annotation does not parse: its Gateway says why.
    a.kubectl(&[
        "annotate",
        "node",
        &a.node(1),
        "gateway.ferry.dev/public-ip=ipv4:198.18.300.1",
    ])
    .unwrap();
    for (c, k) in [(&a, 1), (&a, 0), (&b, 0)] {
        c.kubectl(&["label", "node", &c.node(k), "ferry.dev/gateway=true"])
            .unwrap();
    }
    let failure = wait_for(WAIT, "the bad annotation in Gateway status", || {
        let s = gateway_status(&a, &a.node(1));
        s["statusFailure"].as_str().map(str::to_string)
    });
    assert!(
        failure.contains("gateway.ferry.dev/public-ip") && failure.contains("not an IPv4 address"),
        "{failure}"
    );

    // The good gateways connect over vxlan with health checks off.
    wait_connected(&a, &b.name);
    wait_connected(&b, &a.name);
    let s = gateway_status(&a, &a.node(0));
    let conn = &s["connections"][0];
    assert_eq!(conn["cableDriver"], "vxlan", "{s:#}");
    assert!(
        conn["statusMessage"]
            .as_str()
            .unwrap_or("")
            .contains("health check off"),
        "{s:#}"
    );
    let ep = a
        .kubectl(&[
            "-n",
            "ferry-system",
            "get",
            "endpoints.ferry.dev",
            &a.name,
            "-o",
            "jsonpath={.spec.backendConfig.natEnabled}",
        ])
        .unwrap();
    assert_eq!(ep.trim(), "false");

    // recover-broker-info writes what deploy-broker wrote.
    let recovered = dir.path().join("recovered.ferry");
    ferry(&[
        "recover-broker-info",
        "--kubeconfig",
        kb,
        "-o",
        recovered.to_str().unwrap(),
    ]);
    assert_eq!(decode(&recovered), broker_info);
}
