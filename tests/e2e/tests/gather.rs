//! `ferry gather` on a two-cluster sandbox clusterset (issue #18): a bundle
//! per cluster whose summary page links only files that exist, with the
//! objects, broker objects, logs and node state it promises, a `.tar.gz`
//! of it, and none of the clusterset's secrets in it (grepped for: the
//! broker-info token and preshared key, each cluster's own broker token,
//! and every gateway's WireGuard private key); with
//! --include-sensitive-data the tokens are there.
//! Root only (skipped otherwise); the test builds and deletes its own clusters.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ferry_e2e::{Broker, Cluster, Clusterset, ferry, run, usable};

/// Every file under `dir`, relative to it.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out
}

/// The `href`s of the summary page.
fn links(page: &str) -> Vec<String> {
    page.split("href=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(|s| s.replace("&amp;", "&"))
        .collect()
}

/// A broker-info's token and preshared key.
fn broker_secrets(encoded: &str) -> Vec<String> {
    let compact: String = encoded.split_whitespace().collect();
    let json: serde_json::Value =
        serde_json::from_slice(&STANDARD.decode(compact).unwrap()).unwrap();
    ["token", "cablePsk"]
        .iter()
        .map(|k| json[*k].as_str().unwrap().to_string())
        .collect()
}

/// Every secret of `c`: its own broker token and preshared key (from its
/// ferry-broker Secret) and its gateways' WireGuard private keys.
fn cluster_secrets(c: &Cluster) -> Vec<String> {
    let b64 = broker_secret_value(c);
    let info = String::from_utf8(STANDARD.decode(b64.trim()).unwrap()).unwrap();
    let mut out = broker_secrets(&info);
    let nodes = Path::new("/run/ferry/sandbox").join(&c.name).join("nodes");
    // A local gateway keeps its key in the node's directory; a runc one in
    // its hostPath volume (/var/lib/ferry), which the sandbox keeps under
    // the node's `hostpath/`.
    for node in std::fs::read_dir(&nodes).into_iter().flatten().flatten() {
        for key in ["wireguard.key", "hostpath/var/lib/ferry/wireguard.key"] {
            if let Ok(key) = std::fs::read_to_string(node.path().join(key)) {
                out.push(key.trim().to_string());
            }
        }
    }
    out
}

/// The ferry-broker Secret's `broker-info` value (base64, as stored).
fn broker_secret_value(c: &Cluster) -> String {
    let json = c
        .kubectl(&[
            "-n",
            "ferry-system",
            "get",
            "secret",
            "ferry-broker",
            "-o",
            "json",
        ])
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v["data"]["broker-info"].as_str().unwrap().to_string()
}

/// Files under `dir` (archives unpacked too) that contain `needle`.
fn grep(dir: &Path, needle: &str) -> Vec<String> {
    let out = Command::new("grep")
        .args(["-rlF", "--", needle])
        .arg(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn gather_writes_complete_bundles_without_secrets() {
    if !usable() {
        return;
    }
    let tag = format!("e18g{}", std::process::id() % 10_000);
    let cs = Clusterset::new(
        &tag,
        &[2, 2],
        &[&[0], &[0]],
        "wireguard",
        Broker::FirstCluster,
    );
    let (a, b) = (&cs.clusters[0], &cs.clusters[1]);
    // The gateways sample their cables' byte counters once a second: wait
    // for the first sample, which the bundle's cable state must show.
    for (c, other) in [(a, b), (b, a)] {
        let ns = c.node_netns(0).unwrap();
        let line = format!(
            "ferry_gateway_cable_received_bytes_total{{remote_cluster=\"{}\"}}",
            other.name
        );
        ferry_e2e::wait_for(
            std::time::Duration::from_secs(30),
            &format!("{}'s gateway to count its cable's bytes", c.name),
            || {
                let out = ferry_e2e::netns(
                    &ns,
                    &[
                        "curl",
                        "-s",
                        "--max-time",
                        "2",
                        "http://127.0.0.1:9161/metrics",
                    ],
                );
                String::from_utf8_lossy(&out.stdout)
                    .contains(&line)
                    .then_some(())
            },
        );
    }
    let out = std::env::temp_dir().join(format!("ferry-gather-{tag}"));
    let _ = std::fs::remove_dir_all(&out);
    let kubeconfigs = format!(
        "{},{}",
        a.kubeconfig.to_str().unwrap(),
        b.kubeconfig.to_str().unwrap()
    );
    let printed = ferry(&[
        "gather",
        "--kubeconfig",
        &kubeconfigs,
        "--dir",
        out.to_str().unwrap(),
    ]);
    eprintln!("{printed}");

    let mut secrets = broker_secrets(&std::fs::read_to_string(&cs.broker_info).unwrap());
    for (c, other) in [(a, b), (b, a)] {
        secrets.extend(cluster_secrets(c));
        let dir = out.join(&c.name);
        let page = std::fs::read_to_string(dir.join("index.html")).unwrap();
        let listed = links(&page);
        assert!(listed.len() > 20, "{}: only {listed:?}", c.name);
        for l in &listed {
            assert!(
                dir.join(l).is_file(),
                "{}: {l} is linked but missing",
                c.name
            );
        }
        let on_disk = files(&dir);
        let gw = c.node(0);
        for want in [
            "objects/gateways.ferry.dev.yaml".to_string(),
            "objects/endpoints.ferry.dev.yaml".to_string(),
            "objects/clusters.ferry.dev.yaml".to_string(),
            "objects/serviceexports.multicluster.x-k8s.io.yaml".to_string(),
            "objects/endpointslices.discovery.k8s.io.yaml".to_string(),
            "objects/secrets.yaml".to_string(),
            "broker/clusters.ferry.dev.yaml".to_string(),
            "broker/endpoints.ferry.dev.yaml".to_string(),
            format!("nodes/{gw}/ip-rule.txt"),
            format!("nodes/{gw}/ip-route-table-7101.txt"),
            format!("nodes/{}/ip-route-table-7100.txt", c.node(1)),
            format!("nodes/{}/nft-ip-ferry.txt", c.node(1)),
            format!("nodes/{gw}/gateway-cables.txt"),
        ] {
            assert!(
                on_disk.contains(&PathBuf::from(&want)),
                "{}: no {want} in {on_disk:?}",
                c.name
            );
        }
        for component in [
            "ferry-agent",
            "ferry-gateway",
            "ferry-route-agent",
            "ferry-dns",
        ] {
            assert!(
                on_disk
                    .iter()
                    .any(|f| f.starts_with("logs") && f.to_string_lossy().contains(component)),
                "{}: no logs of {component}",
                c.name
            );
        }
        // The cables as `wg show` lists peers: the remote cluster's bytes.
        let cables =
            std::fs::read_to_string(dir.join(format!("nodes/{gw}/gateway-cables.txt"))).unwrap();
        assert!(
            cables.contains(&format!(
                "ferry_gateway_cable_received_bytes_total{{remote_cluster=\"{}\"}}",
                other.name
            )),
            "{cables}"
        );
        let rules = std::fs::read_to_string(dir.join(format!("nodes/{gw}/ip-rule.txt"))).unwrap();
        assert!(rules.contains("7099"), "{rules}");
        // The archive holds the same bundle.
        let archive = out.join(format!("{}.tar.gz", c.name));
        let listing = run(Command::new("tar").arg("-tzf").arg(&archive));
        assert!(
            listing.contains(&format!("{}/index.html", c.name)),
            "{listing}"
        );
    }

    // Unpack the archives next to the directories, then look for every secret.
    let unpacked = out.join("unpacked");
    std::fs::create_dir_all(&unpacked).unwrap();
    for c in &cs.clusters {
        run(Command::new("tar")
            .arg("-xzf")
            .arg(out.join(format!("{}.tar.gz", c.name)))
            .arg("-C")
            .arg(&unpacked));
    }
    assert!(secrets.len() >= 8, "{} secrets", secrets.len());
    for s in &secrets {
        assert!(
            s.len() >= 16,
            "a secret this short would match anything: {s:?}"
        );
        let found = grep(&out, s);
        assert!(found.is_empty(), "a secret is in {found:?}");
    }

    // Asked for, the tokens are kept.
    let sensitive = out.join("sensitive");
    ferry(&[
        "gather",
        "--kubeconfig",
        a.kubeconfig.to_str().unwrap(),
        "--dir",
        sensitive.to_str().unwrap(),
        "--include-sensitive-data",
    ]);
    let b64 = broker_secret_value(a);
    assert!(!grep(&sensitive, &b64).is_empty());
    let _ = std::fs::remove_dir_all(&out);
}
