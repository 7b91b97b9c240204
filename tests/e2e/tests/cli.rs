#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The subctl-class commands against joined sandbox clusters, through the
//! real binary (issue #8): `ferry show all` and `ferry diagnose all` pass
//! on a healthy clusterset, `ferry verify` (pod to pod, a remote Service by
//! ClusterIP and name, a gateway failover in the cluster with two gateway
//! nodes) and `ferry benchmark` run and clean up after themselves; then,
//! with the WAN link of one gateway cut, `ferry diagnose connections` exits
//! 1 naming that connection, and passes again once the link is back. A
//! second test runs `ferry sandbox demo` itself and diagnoses it, unless a
//! user's `cluster0`/`cluster1` exist. Root only (skipped otherwise).

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use ferry_e2e::{Broker, Cluster, Clusterset, ferry, ferry_bin, output, usable, wait_for};

const NGINX: &str = include_str!("../../../examples/nginx.yaml");

fn tag(t: &str) -> String {
    format!("{t}{}", std::process::id() % 10_000)
}

/// `ferry ARGS…` whatever its exit code, timed.
fn ferry_timed(args: &[&str]) -> (Output, Duration) {
    let t = Instant::now();
    let out = output(Command::new(ferry_bin()).args(args));
    (out, t.elapsed())
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn kubeconfigs(cs: &[&Cluster]) -> String {
    cs.iter()
        .map(|c| c.kubeconfig.to_str().unwrap().to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Puts a gateway node's WAN link back up, also when the test fails.
struct WanCut {
    netns: String,
}

impl WanCut {
    fn cut(netns: String) -> WanCut {
        let out = output(Command::new("ip").args(["-n", &netns, "link", "set", "wan0", "down"]));
        assert!(out.status.success(), "cutting wan0: {}", text(&out));
        WanCut { netns }
    }
}

impl Drop for WanCut {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["-n", &self.netns, "link", "set", "wan0", "up"])
            .output();
    }
}

/// The test pods of every run are gone.
fn no_probe_pods_left(c: &Cluster) {
    wait_for(Duration::from_secs(20), "test pods to be removed", || {
        c.kubectl(&[
            "-n",
            "ferry-system",
            "get",
            "pods",
            "-l",
            "app.kubernetes.io/name=ferry-probe",
            "-o",
            "name",
        ])
        .unwrap()
        .trim()
        .is_empty()
        .then_some(())
    });
    let svcs = c
        .kubectl(&[
            "-n",
            "ferry-system",
            "get",
            "services,serviceexports",
            "-l",
            "ferry.dev/probe-run",
            "-o",
            "name",
        ])
        .unwrap();
    assert!(svcs.trim().is_empty(), "left behind in {}: {svcs}", c.name);
}

#[test]
fn show_diagnose_verify_benchmark_then_a_cut_wan_link() {
    if !usable() {
        return;
    }
    // The first cluster has two gateway nodes (node0, node2) and an
    // ordinary node1, so verify can fail its gateway over.
    let cs = Clusterset::new(
        &tag("cli"),
        &[3, 2],
        &[&[0, 2], &[0]],
        "wireguard",
        Broker::FirstCluster,
    );
    let (a, b) = (&cs.clusters[0], &cs.clusters[1]);
    let both = kubeconfigs(&[a, b]);

    // A service exported from b and imported in a, for service-discovery.
    b.apply(NGINX).unwrap();
    a.apply("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: nginx-test\n")
        .unwrap();
    ferry(&[
        "export",
        "service",
        "nginx",
        "-n",
        "nginx-test",
        "--kubeconfig",
        b.kubeconfig.to_str().unwrap(),
    ]);
    wait_for(Duration::from_secs(60), "nginx imported in a", || {
        let out = output(
            Command::new("kubectl")
                .arg("--kubeconfig")
                .arg(&a.kubeconfig)
                .args(["-n", "nginx-test", "get", "serviceimport", "nginx"]),
        );
        out.status.success().then_some(())
    });

    let (out, took) = ferry_timed(&["show", "all", "--kubeconfig", &both]);
    assert!(out.status.success(), "show all: {}", text(&out));
    eprintln!("ferry show all: {took:?}");

    // The route agents and DNS may take a moment after the cables are up.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (out, took) = ferry_timed(&["diagnose", "all", "--kubeconfig", &both]);
        if out.status.success() {
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(!stdout.contains("FAIL"), "{}", text(&out));
            for check in [
                "k8s-version",
                "deployment",
                "cidr-overlap",
                "connections",
                "host-network",
                "firewall",
                "mtu",
                "service-discovery",
            ] {
                assert!(
                    stdout.contains(&format!("PASS  {check}")),
                    "no PASS line for {check}: {}",
                    text(&out)
                );
            }
            assert!(
                stdout.contains("nginx.nginx-test.svc.clusterset.local →"),
                "the import was resolved: {stdout}"
            );
            eprintln!("ferry diagnose all (2 clusters): {took:?}\n{stdout}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "diagnose all never passed; last run:\n{}",
            text(&out)
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    no_probe_pods_left(a);
    no_probe_pods_left(b);

    let (out, took) = ferry_timed(&["verify", "--kubeconfig", &both]);
    assert!(out.status.success(), "verify: {}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("PASS  failover            {}:", a.name)),
        "{stdout}\n{}",
        a.gateway_report(80)
    );
    assert!(
        stdout.contains(&format!(
            "SKIP  failover            {} has 1 gateway node",
            b.name
        )),
        "{stdout}"
    );
    eprintln!("ferry verify: {took:?}\n{stdout}");
    no_probe_pods_left(a);
    no_probe_pods_left(b);

    for (what, extra) in [
        ("throughput", vec!["--duration", "1s", "--streams", "2"]),
        ("latency", vec!["--non-gateway", "--count", "200"]),
    ] {
        let mut args = vec!["benchmark", what, "--kubeconfig", &both];
        args.extend(extra);
        let (out, took) = ferry_timed(&args);
        assert!(out.status.success(), "benchmark {what}: {}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains(&a.name) && stdout.contains(&b.name),
            "{stdout}"
        );
        eprintln!("ferry benchmark {what}: {took:?}\n{stdout}");
    }
    no_probe_pods_left(a);
    no_probe_pods_left(b);

    // Cut b's gateway off the WAN: a's connection to b must fail by name,
    // at once, whatever the gateway's status says yet.
    let cut = WanCut::cut(b.node_netns(0).unwrap());
    let (out, took) = ferry_timed(&[
        "diagnose",
        "connections",
        "--kubeconfig",
        a.kubeconfig.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let subject = format!("{} → {}", a.name, b.name);
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("FAIL") && l.contains(&subject)),
        "no FAIL line naming {subject}: {}",
        text(&out)
    );
    eprintln!("ferry diagnose connections with the WAN link cut: {took:?}\n{stdout}");
    no_probe_pods_left(a);

    drop(cut);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (out, _) = ferry_timed(&[
            "diagnose",
            "connections",
            "--kubeconfig",
            a.kubeconfig.to_str().unwrap(),
        ]);
        if out.status.success() {
            break;
        }
        if Instant::now() > deadline {
            let (show, _) = ferry_timed(&["show", "connections", "--kubeconfig", &both]);
            panic!(
                "diagnose connections still fails 90s after the WAN link is back:\n{}\n{}",
                text(&out),
                text(&show)
            );
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Deletes the demo's clusters, also when the test fails.
struct DemoClusters;

impl Drop for DemoClusters {
    fn drop(&mut self) {
        for c in ["cluster0", "cluster1"] {
            let _ = Command::new(ferry_bin())
                .args(["sandbox", "delete", c])
                .output();
        }
    }
}

#[test]
fn sandbox_demo_then_show_and_diagnose() {
    if !usable() {
        return;
    }
    let _lock = ferry_sandbox::harness::lock(false).unwrap();
    let list = ferry(&["sandbox", "list"]);
    if list
        .lines()
        .any(|l| matches!(l.split_whitespace().next(), Some("cluster0" | "cluster1")))
    {
        eprintln!(
            "skipping: sandbox clusters cluster0/cluster1 exist (someone's demo); not touching them"
        );
        return;
    }
    let _cleanup = DemoClusters;
    // The demo in the run's runtime (FERRY_E2E_RUNTIME), with the harness's
    // image of the binary under test for runc.
    let runtime = ferry_sandbox::harness::runtime_args(&ferry_bin()).unwrap();
    let mut args = vec!["sandbox", "demo", "--runtime", "local"];
    if !runtime.is_empty() {
        args.truncate(2);
        args.extend(runtime.iter().map(String::as_str));
    }
    let (out, took) = ferry_timed(&args);
    assert!(out.status.success(), "sandbox demo: {}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("nginx"), "{stdout}");
    eprintln!("ferry sandbox demo: {took:?}");
    let kcs: Vec<String> = ["cluster0", "cluster1"]
        .iter()
        .map(|c| ferry(&["sandbox", "kubeconfig", c]).trim().to_string())
        .collect();
    let both = kcs.join(",");
    let (out, _) = ferry_timed(&["show", "all", "--kubeconfig", &both]);
    assert!(out.status.success(), "show all: {}", text(&out));
    // The demo ends once cluster0 resolves the import; cluster1's own
    // import of its export may land a moment later (its dns answered
    // NXDOMAIN once in CI right after the demo), so diagnose may retry.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (out, took) = loop {
        let (out, took) = ferry_timed(&["diagnose", "all", "--kubeconfig", &both]);
        if out.status.success() || Instant::now() > deadline {
            break (out, took);
        }
        eprintln!("diagnose all not clean yet:\n{}", text(&out));
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(out.status.success(), "diagnose all: {}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("PASS  connections") && stdout.contains("cluster0 → cluster1"),
        "{stdout}"
    );
    assert!(
        stdout.contains("nginx.nginx-test.svc.clusterset.local →"),
        "{stdout}"
    );
    eprintln!("ferry diagnose all on the demo: {took:?}\n{stdout}");
}
