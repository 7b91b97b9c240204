//! Fixtures for ferry's end-to-end tests: sandbox clusters made and joined
//! with the real `ferry` binary and kubectl, exactly as a user would, and
//! removed on drop even when a test fails. Tests need root; without it they
//! skip. It is *not* a test framework: plain functions that panic with the
//! command and its output when something fails.
//!
//! The binary is target/debug/ferry (built when missing) or `$FERRY_BIN`.
//! Cluster names are unique per process, so tests may run next to a demo.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::Flock;

/// The ferry binary under test.
pub fn ferry_bin() -> PathBuf {
    std::env::var_os("FERRY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/debug/ferry"))
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Whether the test can run (root); builds the binary once if missing
/// (`scripts/test.sh` builds it first; after changing ferry, rebuild it with
/// `cargo build -p ferry`).
pub fn usable() -> bool {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipping: needs root");
        return false;
    }
    static BUILT: std::sync::Once = std::sync::Once::new();
    BUILT.call_once(|| {
        if std::env::var_os("FERRY_BIN").is_none() && !ferry_bin().exists() {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let ok = Command::new(cargo)
                .args(["build", "-p", "ferry"])
                .current_dir(repo_root())
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "cargo build -p ferry failed");
        }
    });
    true
}

fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs a command and returns its output, whatever its status.
pub fn output(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("{}: {e}", describe(cmd)))
}

/// Runs a command that must succeed; returns stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = output(cmd);
    assert!(
        out.status.success(),
        "{} failed ({}):\nstdout: {}\nstderr: {}",
        describe(cmd),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `ferry ARGS…`, which must succeed.
pub fn ferry(args: &[&str]) -> String {
    run(Command::new(ferry_bin()).args(args))
}

/// Runs `args` inside a network namespace.
pub fn netns(ns: &str, args: &[&str]) -> Output {
    output(Command::new("ip").args(["netns", "exec", ns]).args(args))
}

/// Polls `f` every 100 ms until it returns `Some`, or panics naming `what`.
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One sandbox cluster, deleted on drop.
pub struct Cluster {
    /// Sandbox (and cluster id) name.
    pub name: String,
    /// Its admin kubeconfig.
    pub kubeconfig: PathBuf,
    /// Pod CIDR.
    pub pod_cidr: String,
    /// Service CIDR.
    pub service_cidr: String,
}

impl Cluster {
    /// `ferry sandbox create NAME --nodes N`.
    pub fn create(name: &str, nodes: u32) -> Cluster {
        let _ = output(Command::new(ferry_bin()).args(["sandbox", "delete", name]));
        let kubeconfig = ferry(&["sandbox", "create", name, "--nodes", &nodes.to_string()]);
        let list = ferry(&["sandbox", "list"]);
        let row: Vec<&str> = list
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} not in `ferry sandbox list`:\n{list}"))
            .split_whitespace()
            .collect();
        Cluster {
            name: name.into(),
            kubeconfig: PathBuf::from(kubeconfig.trim()),
            pod_cidr: row[3].into(),
            service_cidr: row[4].into(),
        }
    }

    /// `kubectl --kubeconfig K ARGS…`, which must succeed.
    pub fn kubectl(&self, args: &[&str]) -> String {
        run(Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args))
    }

    /// `kubectl apply -f -` with `yaml`.
    pub fn apply(&self, yaml: &str) {
        use std::io::Write;
        let mut child = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["apply", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(yaml.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "kubectl apply failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Node `k`'s name.
    pub fn node(&self, k: usize) -> String {
        format!("{}-node{k}", self.name)
    }

    /// Node `k`'s network namespace.
    pub fn node_netns(&self, k: usize) -> String {
        ferry_sandbox::exec_target(&self.name, &self.node(k)).unwrap()
    }

    /// A busybox pod pinned to node `k`; returns once it runs.
    pub fn pod(&self, name: &str, k: usize) -> Pod {
        let overrides = format!(
            r#"{{"apiVersion":"v1","spec":{{"nodeName":"{}"}}}}"#,
            self.node(k)
        );
        self.kubectl(&[
            "run",
            name,
            "--image=busybox",
            "--overrides",
            &overrides,
            "--",
            "sleep",
            "infinity",
        ]);
        let ip = wait_for(
            Duration::from_secs(30),
            &format!("pod {name} to run"),
            || {
                let ip = self
                    .kubectl(&["get", "pod", name, "-o", "jsonpath={.status.podIP}"])
                    .trim()
                    .to_string();
                (!ip.is_empty()).then_some(ip)
            },
        );
        let netns = ferry_sandbox::exec_target(&self.name, &format!("default/{name}")).unwrap();
        Pod { ip, netns }
    }

    /// Waits until this cluster's active gateway reports `cluster` connected.
    pub fn wait_connected(&self, remote: &str) {
        wait_for(
            Duration::from_secs(60),
            &format!("{} → {remote} connected", self.name),
            || {
                let out = self.kubectl(&[
                    "-n",
                    "ferry-system",
                    "get",
                    "gateways",
                    "-o",
                    "jsonpath={range .items[*].status.connections[*]}{.clusterId}={.status} {end}",
                ]);
                out.split_whitespace()
                    .any(|c| c == format!("{remote}=connected"))
                    .then_some(())
            },
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(ferry_bin())
            .args(["sandbox", "delete", &self.name])
            .output();
    }
}

/// A pod: its address and network namespace.
pub struct Pod {
    /// Pod IP.
    pub ip: String,
    /// Its network namespace (for `ip netns exec`).
    pub netns: String,
}

/// Where the broker lives.
pub enum Broker {
    /// In the first cluster's API server, as in the seed.
    FirstCluster,
    /// A separate `ferry deploy-broker --embedded` process (killable).
    Embedded,
}

/// Clusters joined into one clusterset; everything removed on drop.
pub struct Clusterset {
    /// The clusters, in creation order.
    pub clusters: Vec<Cluster>,
    /// `broker-info.ferry`.
    pub broker_info: PathBuf,
    /// The embedded broker process, if any.
    pub broker: Option<Child>,
    /// Its data directory and listen address, to restart it.
    pub broker_dir: Option<(tempfile_dir::Dir, String)>,
    _lock: Flock<std::fs::File>,
}

/// A temporary directory removed on drop (kept minimal: std only).
pub mod tempfile_dir {
    use std::path::{Path, PathBuf};
    /// The directory.
    pub struct Dir(PathBuf);
    impl Dir {
        /// A fresh directory under the temp dir.
        pub fn new(tag: &str) -> Dir {
            let p = std::env::temp_dir().join(format!("ferry-e2e-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
        /// Its path.
        pub fn path(&self) -> &Path {
            &self.0
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Clusterset {
    /// Creates one cluster per entry of `nodes` (named `{tag}{i}`), deploys
    /// the broker, joins all with `driver`, labels `gateways[i]` nodes of
    /// cluster i as gateways, and waits until every pair is connected.
    pub fn new(
        tag: &str,
        nodes: &[u32],
        gateways: &[&[usize]],
        driver: &str,
        broker: Broker,
    ) -> Self {
        let lock = ferry_sandbox::testing::lock(false).unwrap();
        let clusters: Vec<Cluster> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| Cluster::create(&format!("{tag}{i}"), *n))
            .collect();
        let dir = tempfile_dir::Dir::new(tag);
        let broker_info = dir.path().join("broker-info.ferry");
        let info = broker_info.to_str().unwrap().to_string();
        let (child, broker_dir) = match broker {
            Broker::FirstCluster => {
                ferry(&[
                    "deploy-broker",
                    "--kubeconfig",
                    clusters[0].kubeconfig.to_str().unwrap(),
                    "-o",
                    &info,
                ]);
                (None, None)
            }
            Broker::Embedded => {
                // The first cluster's host address is reachable from every
                // sandbox node and pod; another port keeps it apart.
                let host = clusters[0].kubectl(&[
                    "config",
                    "view",
                    "--minify",
                    "-o",
                    "jsonpath={.clusters[0].cluster.server}",
                ]);
                let ip = host
                    .trim_start_matches("https://")
                    .split(':')
                    .next()
                    .unwrap()
                    .to_string();
                let listen = format!("{ip}:6444");
                let data = tempfile_dir::Dir::new(&format!("{tag}-broker"));
                let child = start_embedded_broker(data.path(), &listen, &info);
                (Some(child), Some((data, listen)))
            }
        };
        for (i, c) in clusters.iter().enumerate() {
            let gw = gateways.get(i).copied().unwrap_or(&[0]);
            ferry(&[
                "join",
                &info,
                "--clusterid",
                &c.name,
                "--kubeconfig",
                c.kubeconfig.to_str().unwrap(),
                "--clustercidr",
                &c.pod_cidr,
                "--servicecidr",
                &c.service_cidr,
                "--cable-driver",
                driver,
                "--gateway-node",
                &c.node(gw[0]),
            ]);
        }
        for a in &clusters {
            for b in &clusters {
                if a.name != b.name {
                    a.wait_connected(&b.name);
                }
            }
        }
        // Standby gateways join once the cables are up, so tests start from
        // one settled active gateway per cluster.
        for (i, c) in clusters.iter().enumerate() {
            let gw = gateways.get(i).copied().unwrap_or(&[0]);
            for k in &gw[1..] {
                c.kubectl(&["label", "node", &c.node(*k), "ferry.dev/gateway=true"]);
            }
            if gw.len() > 1 {
                let want = gw.len() - 1;
                wait_for(Duration::from_secs(60), "the standby gateways", || {
                    let out = c.kubectl(&[
                        "-n",
                        "ferry-system",
                        "get",
                        "gateways",
                        "-o",
                        "jsonpath={range .items[*]}{.status.haStatus} {end}",
                    ]);
                    (out.split_whitespace().filter(|s| *s == "passive").count() == want)
                        .then_some(())
                });
            }
        }
        // Keep the directory alive as long as the broker info is needed.
        std::mem::forget(dir);
        Clusterset {
            clusters,
            broker_info,
            broker: child,
            broker_dir,
            _lock: lock,
        }
    }
}

/// Starts `ferry deploy-broker --embedded` and waits for broker-info.
pub fn start_embedded_broker(data: &Path, listen: &str, info: &str) -> Child {
    let _ = std::fs::remove_file(info);
    let child = Command::new(ferry_bin())
        .args(["deploy-broker", "--embedded", "--data-dir"])
        .arg(data)
        .args(["--listen", listen, "-o", info])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(Duration::from_secs(30), "the embedded broker", || {
        Path::new(info).exists().then_some(())
    });
    child
}

impl Drop for Clusterset {
    fn drop(&mut self) {
        if let Some(mut c) = self.broker.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_file(&self.broker_info);
        if let Some(d) = self.broker_info.parent() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// `ping -c N -i INTERVAL` from a namespace; returns (sent, received).
pub fn ping(ns: &str, ip: &str, count: u32, interval: &str) -> (u32, u32) {
    let out = netns(
        ns,
        &[
            "ping",
            "-n",
            "-q",
            "-c",
            &count.to_string(),
            "-i",
            interval,
            "-W",
            "1",
            ip,
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or_else(|| panic!("no ping summary:\n{text}"));
    let nums: Vec<u32> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|s| s.parse().ok())
        .collect();
    (nums[0], nums[1])
}
