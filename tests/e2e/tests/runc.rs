//! Clusters created `--runtime runc` run ferry's components as containers
//! of ferry's OCI image (built here from the binary under test by
//! scripts/image.py, as scripts/image.sh packs the release build): two of
//! them joined over WireGuard pass a pod → pod ping and a DNS lookup at the
//! ferry-dns pod; every ferry pod reports a `runc://` container, the agent
//! runs as the image's non-root user; and a gateway that loses its
//! privileges fails as it would on a real node (no /dev/net/tun for its
//! WireGuard device), saying why.
//!
//! Root and runc only: without runc it skips with that reason (CI installs
//! runc through scripts/setup.sh).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ferry_e2e::nginx::{EXPORT, NAMESPACE, NGINX};
use ferry_e2e::tempfile_dir::Dir;
use ferry_e2e::{Cluster, ferry, netns, output, ping, repo_root, usable, wait_connected, wait_for};

const WAIT: Duration = Duration::from_secs(90);

fn image_ref() -> String {
    format!("ferry:{}", env!("CARGO_PKG_VERSION"))
}

fn runc_installed() -> bool {
    Command::new("runc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// ferry's image from the binary under test, into `dir`.
fn build_image(dir: &Path) -> PathBuf {
    let out = dir.join("ferry.oci.tar");
    let run = output(
        Command::new("python3")
            .arg(repo_root().join("scripts/image.py"))
            .arg("--binary")
            .arg(ferry_e2e::ferry_bin())
            .args([
                "--tag",
                &image_ref(),
                "--version",
                env!("CARGO_PKG_VERSION"),
            ])
            .args(["--epoch", "0", "--out"])
            .arg(&out),
    );
    assert!(
        run.status.success(),
        "image.py: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    out
}

/// `kubectl get pods` of a namespace as (name, containerID, phase, IP) rows.
fn pods(c: &Cluster, ns: &str) -> Vec<(String, String, String, String)> {
    let out = c.kubectl(&["-n", ns, "get", "pods", "-o", "json"]).unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
            (
                s(&p["metadata"]["name"]),
                s(&p["status"]["containerStatuses"][0]["containerID"]),
                s(&p["status"]["phase"]),
                s(&p["status"]["podIP"]),
            )
        })
        .collect()
}

/// Every ferry component of `c` runs under runc.
fn assert_components_in_runc(c: &Cluster) {
    let rows = wait_for(WAIT, "ferry's pods running under runc", || {
        let rows = pods(c, "ferry-system");
        let prefixes = [
            "ferry-agent",
            "ferry-dns",
            "ferry-gateway",
            "ferry-route-agent",
        ];
        let all = prefixes.iter().all(|p| {
            rows.iter().any(|(n, id, phase, _)| {
                n.starts_with(p) && id.starts_with("runc://") && phase == "Running"
            })
        });
        all.then_some(rows)
    });
    for (name, id, _, _) in &rows {
        assert!(id.starts_with("runc://"), "{name}: {id}");
    }
}

/// The uid of the process of the runc container `id` (from `runc state`).
fn container_uid(c: &Cluster, id: &str) -> u32 {
    let root = ferry_sandbox::oci::runc::runc_root(&c.name);
    let state = ferry_e2e::run(
        Command::new("runc")
            .arg("--root")
            .arg(&root)
            .args(["state", id]),
    );
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    let pid = state["pid"].as_i64().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    uid.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn runc_clusters_run_ferry_from_its_image() {
    if !usable() {
        return;
    }
    if !runc_installed() {
        eprintln!("skipping: runc is not installed (scripts/setup.sh installs it)");
        return;
    }
    let _lock = ferry_sandbox::harness::lock(false).unwrap();
    let tag = format!("rc{}", std::process::id() % 10_000);
    let dir = Dir::new(&format!("{tag}img"));
    let image = build_image(dir.path());
    let args = [
        "--nodes",
        "2",
        "--runtime",
        "runc",
        "--image",
        image.to_str().unwrap(),
    ];
    let cluster0 = Cluster::create(&format!("{tag}a"), &args).unwrap();
    let cluster1 = Cluster::create(&format!("{tag}b"), &args).unwrap();
    let info = dir.path().join("broker-info.ferry");
    let info = info.to_str().unwrap();
    ferry(&[
        "deploy-broker",
        "--kubeconfig",
        cluster0.kubeconfig.to_str().unwrap(),
        "-o",
        info,
    ]);
    for c in [&cluster0, &cluster1] {
        ferry(&[
            "join",
            info,
            "--clusterid",
            &c.name,
            "--kubeconfig",
            c.kubeconfig.to_str().unwrap(),
            "--gateway-node",
            &c.node(0),
        ]);
    }
    wait_connected(&cluster0, &cluster1.name);
    wait_connected(&cluster1, &cluster0.name);
    for c in [&cluster0, &cluster1] {
        assert_components_in_runc(c);
    }
    let agent = pods(&cluster0, "ferry-system")
        .into_iter()
        .find(|(n, ..)| n.starts_with("ferry-agent"))
        .unwrap();
    let agent_id = agent.1.trim_start_matches("runc://");
    assert_eq!(
        container_uid(&cluster0, agent_id),
        65532,
        "the agent runs as the image's user"
    );

    // The service from the image too, exported; a plain pod in cluster0.
    let nginx = NGINX.replace("image: ferry\n", &format!("image: {}\n", image_ref()));
    cluster0.apply(NAMESPACE).unwrap(); // MCS imports into namespaces that exist
    cluster1.apply(&nginx).unwrap();
    cluster1.apply(EXPORT).unwrap();
    let remote = wait_for(WAIT, "an nginx pod running under runc", || {
        pods(&cluster1, "nginx-test")
            .into_iter()
            .find(|(_, id, phase, _)| id.starts_with("runc://") && phase == "Running")
    });
    let client = cluster0.pod("client", 1).unwrap();
    wait_for(WAIT, "a first pod → pod reply", || {
        (ping(&client.netns, &remote.3, 1, "0.2").1 == 1).then_some(())
    });
    assert_eq!(
        ping(&client.netns, &remote.3, 2, "0.5"),
        (2, 2),
        "pod → pod"
    );

    // DNS: dig at the ferry-dns pod (a non-root container binding port 53).
    let dns = wait_for(WAIT, "the ferry-dns pod's IP", || {
        pods(&cluster0, "ferry-system")
            .into_iter()
            .find(|(n, _, phase, ip)| {
                n.starts_with("ferry-dns") && phase == "Running" && !ip.is_empty()
            })
            .map(|r| r.3)
    });
    let answer = wait_for(WAIT, "dig at the ferry-dns pod", || {
        let out = netns(
            &client.netns,
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
    assert!(answer.starts_with("100."), "dig answered {answer}");

    // A gateway without its privileges fails as on a node, saying why.
    cluster1
        .kubectl(&[
            "-n", "ferry-system", "patch", "daemonset", "ferry-gateway", "--type", "json", "-p",
            r#"[{"op":"replace","path":"/spec/template/spec/containers/0/securityContext","value":{"runAsUser":0,"readOnlyRootFilesystem":true,"capabilities":{"drop":["ALL"]}}}]"#,
        ])
        .unwrap();
    // Without privileged there is no /dev/net/tun in the container (as
    // on a node): the WireGuard cable cannot start, and the log says so.
    let log = wait_for(WAIT, "the unprivileged gateway's error", || {
        pods(&cluster1, "ferry-system")
            .into_iter()
            .filter(|(n, ..)| n.starts_with("ferry-gateway"))
            .filter_map(|gw| {
                let pod = format!("ferry-system/{}", gw.0);
                cluster1
                    .ferry(&["sandbox", "logs", &cluster1.name, &pod])
                    .ok()
            })
            .find(|log| log.contains("starting the WireGuard device"))
    });
    assert!(
        log.contains("tun device ferry-wg: No such file or directory"),
        "{log}"
    );
}
