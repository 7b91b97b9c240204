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
use std::time::Duration;

use ferry_sandbox::harness;
pub use ferry_sandbox::harness::{Cluster, Pod, ferry_bin, repo_root, usable};
use nix::fcntl::Flock;

/// Runs a command and returns its output, whatever its status.
pub fn output(cmd: &mut Command) -> Output {
    harness::output(cmd).unwrap()
}

/// Runs a command that must succeed; returns stdout.
pub fn run(cmd: &mut Command) -> String {
    harness::run(cmd).unwrap()
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
pub fn wait_for<T>(timeout: Duration, what: &str, f: impl FnMut() -> Option<T>) -> T {
    harness::wait_for(what, timeout, Duration::from_millis(100), f).unwrap()
}

/// `ferry sandbox create NAME --nodes N`, which must succeed.
pub fn create(name: &str, nodes: u32) -> Cluster {
    Cluster::create(name, &["--nodes", &nodes.to_string()]).unwrap()
}

/// Waits until `cluster`'s active gateway reports `remote` connected.
pub fn wait_connected(cluster: &Cluster, remote: &str) {
    wait_for(
        Duration::from_secs(60),
        &format!("{} → {remote} connected", cluster.name),
        || {
            let out = cluster
                .kubectl(&[
                    "-n",
                    "ferry-system",
                    "get",
                    "gateways",
                    "-o",
                    "jsonpath={range .items[*].status.connections[*]}{.clusterId}={.status} {end}",
                ])
                .unwrap();
            out.split_whitespace()
                .any(|c| c == format!("{remote}=connected"))
                .then_some(())
        },
    );
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
/// The seed's example service: `examples/nginx.yaml` (namespace
/// `nginx-test`), its ServiceExport, and the namespace alone (for the
/// importing cluster, MCS namespace sameness).
pub mod flows;

pub mod nginx {
    /// `examples/nginx.yaml`.
    pub const NGINX: &str = include_str!("../../../examples/nginx.yaml");

    /// The ServiceExport of `nginx-test/nginx`.
    pub const EXPORT: &str = "apiVersion: multicluster.x-k8s.io/v1alpha1
kind: ServiceExport
metadata:
  name: nginx
  namespace: nginx-test
";

    /// Namespace `nginx-test` alone.
    pub const NAMESPACE: &str = "apiVersion: v1
kind: Namespace
metadata:
  name: nginx-test
";
}

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

/// What [`Clusterset::with_options`] adds to [`Clusterset::new`].
pub struct Extra<'a> {
    /// Extra `ferry sandbox create` arguments, per cluster.
    pub sandbox_args: &'a [&'a [&'a str]],
    /// Extra `ferry join` arguments, per cluster.
    pub join_args: &'a [&'a [&'a str]],
    /// Wait until every pair is connected.
    pub wait_connected: bool,
    /// Extra `ferry deploy-broker` arguments (`Broker::FirstCluster` only).
    pub broker_args: &'a [&'a str],
}

impl Default for Extra<'_> {
    fn default() -> Self {
        Self {
            sandbox_args: &[],
            join_args: &[],
            wait_connected: true,
            broker_args: &[],
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
        Self::build(tag, nodes, gateways, driver, broker, Extra::default())
    }

    /// As [`Clusterset::new`], with extra `ferry sandbox create` arguments
    /// per cluster (`sandbox_args[i]`, e.g. `--nat`), waiting for every
    /// pair to connect only if `wait_connected` (a test of a cable that
    /// cannot work waits for its error instead).
    pub fn with(
        tag: &str,
        nodes: &[u32],
        sandbox_args: &[&[&str]],
        gateways: &[&[usize]],
        driver: &str,
        broker: Broker,
        wait_connected: bool,
    ) -> Self {
        let extra = Extra {
            sandbox_args,
            wait_connected,
            ..Extra::default()
        };
        Self::build(tag, nodes, gateways, driver, broker, extra)
    }

    /// As [`Clusterset::new`], passing `broker_args` to `ferry
    /// deploy-broker` (e.g. `--enable-clusterset-ip`; `Broker::FirstCluster`
    /// only).
    pub fn with_broker_args(
        tag: &str,
        nodes: &[u32],
        gateways: &[&[usize]],
        driver: &str,
        broker: Broker,
        broker_args: &[&str],
    ) -> Self {
        let extra = Extra {
            broker_args,
            ..Extra::default()
        };
        Self::build(tag, nodes, gateways, driver, broker, extra)
    }

    /// As [`Clusterset::new`], with everything [`Extra`] can add.
    pub fn with_options(
        tag: &str,
        nodes: &[u32],
        gateways: &[&[usize]],
        driver: &str,
        broker: Broker,
        extra: Extra<'_>,
    ) -> Self {
        Self::build(tag, nodes, gateways, driver, broker, extra)
    }

    /// As [`Clusterset::with`] (waiting for every pair), also passing
    /// `broker_args` to `ferry deploy-broker` (`Broker::FirstCluster`
    /// only): e.g. clusters with identical CIDRs joined with Globalnet.
    pub fn with_sandbox_and_broker_args(
        tag: &str,
        nodes: &[u32],
        sandbox_args: &[&[&str]],
        gateways: &[&[usize]],
        driver: &str,
        broker_args: &[&str],
    ) -> Self {
        let extra = Extra {
            sandbox_args,
            broker_args,
            ..Extra::default()
        };
        Self::build(tag, nodes, gateways, driver, Broker::FirstCluster, extra)
    }

    fn build(
        tag: &str,
        nodes: &[u32],
        gateways: &[&[usize]],
        driver: &str,
        broker: Broker,
        extra: Extra<'_>,
    ) -> Self {
        let Extra {
            sandbox_args,
            join_args,
            wait_connected,
            broker_args,
        } = extra;
        let lock = harness::lock(false).unwrap();
        let clusters: Vec<Cluster> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let extra = sandbox_args.get(i).copied().unwrap_or(&[]);
                let n = n.to_string();
                let args = [&["--nodes", n.as_str()][..], extra].concat();
                Cluster::create(&format!("{tag}{i}"), &args).unwrap()
            })
            .collect();
        let dir = tempfile_dir::Dir::new(tag);
        let broker_info = dir.path().join("broker-info.ferry");
        let info = broker_info.to_str().unwrap().to_string();
        let (child, broker_dir) = match broker {
            Broker::FirstCluster => {
                let mut args = vec![
                    "deploy-broker",
                    "--kubeconfig",
                    clusters[0].kubeconfig.to_str().unwrap(),
                    "-o",
                    &info,
                ];
                args.extend_from_slice(broker_args);
                ferry(&args);
                (None, None)
            }
            Broker::Embedded => {
                // The first cluster's host address is reachable from every
                // sandbox node and pod; another port keeps it apart.
                let host = clusters[0]
                    .kubectl(&[
                        "config",
                        "view",
                        "--minify",
                        "-o",
                        "jsonpath={.clusters[0].cluster.server}",
                    ])
                    .unwrap();
                let ip = host
                    .trim_start_matches("https://")
                    .split(':')
                    .next()
                    .unwrap()
                    .to_string();
                let listen = format!("{ip}:6444");
                let data = tempfile_dir::Dir::new(&format!("{tag}-broker"));
                assert!(
                    broker_args.is_empty(),
                    "deploy-broker arguments are for Broker::FirstCluster"
                );
                let child = start_embedded_broker(data.path(), &listen, &info);
                (Some(child), Some((data, listen)))
            }
        };
        for (i, c) in clusters.iter().enumerate() {
            let gw = gateways.get(i).copied().unwrap_or(&[0]);
            let extra_join = join_args.get(i).copied().unwrap_or(&[]);
            join(c, &info, driver, &c.node(gw[0]), extra_join);
        }
        for a in clusters.iter().filter(|_| wait_connected) {
            for b in &clusters {
                if a.name != b.name {
                    self::wait_connected(a, &b.name);
                }
            }
        }
        // Standby gateways join once the cables are up, so tests start from
        // one settled active gateway per cluster.
        for (i, c) in clusters.iter().enumerate() {
            let gw = gateways.get(i).copied().unwrap_or(&[0]);
            for k in &gw[1..] {
                c.kubectl(&["label", "node", &c.node(*k), "ferry.dev/gateway=true"])
                    .unwrap();
            }
            if gw.len() > 1 {
                wait_standbys(
                    c,
                    gw.len() - 1,
                    Duration::from_secs(60),
                    "the standby gateways",
                );
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

/// Waits until `want` of `c`'s gateways report `haStatus: passive`.
pub fn wait_standbys(c: &Cluster, want: usize, timeout: Duration, what: &str) {
    wait_for(timeout, what, || {
        let out = c
            .kubectl(&[
                "-n",
                "ferry-system",
                "get",
                "gateways",
                "-o",
                "jsonpath={range .items[*]}{.status.haStatus} {end}",
            ])
            .ok()?;
        (out.split_whitespace().filter(|s| *s == "passive").count() == want).then_some(())
    });
}

/// `ferry join INFO` of `c` as [`Clusterset`] joins it (its CIDRs,
/// `driver`, `gateway` its gateway node), then `extra`; must succeed.
pub fn join(c: &Cluster, info: &str, driver: &str, gateway: &str, extra: &[&str]) -> String {
    let args = [
        "join",
        info,
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
        gateway,
    ];
    ferry(&[&args[..], extra].concat())
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

/// `ping -c N -i INTERVAL` from a namespace; returns (sent, received). A
/// ping that cannot send at all ("Network is unreachable" while a route is
/// being re-pointed) counts as N sent, none received; its error is printed.
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
    let Some(line) = text.lines().find(|l| l.contains("packets transmitted")) else {
        eprintln!(
            "ping {ip} from {ns}: no summary ({})",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return (count, 0);
    };
    let nums: Vec<u32> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|s| s.parse().ok())
        .collect();
    (nums[0], nums[1])
}

/// A 6-second stream of 100 timestamped pings a second from a namespace,
/// running while a test breaks something (a gateway killed, a pod deleted).
pub struct StreamPing {
    child: Child,
}

/// What a [`StreamPing`] saw.
pub struct StreamPingResult {
    /// ping's output, for failure messages.
    pub text: String,
    /// The longest time between two replies.
    pub gap: Duration,
    pub replies: usize,
}

impl StreamPing {
    /// Starts it and lets it run half a second, so that the stream is
    /// flowing before whatever the caller does next.
    pub fn start(ns: &str, ip: &str) -> StreamPing {
        let child = Command::new("ip")
            .args([
                "netns", "exec", ns, "ping", "-D", "-n", "-i", "0.01", "-W", "1", "-w", "6", ip,
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("ping runs");
        std::thread::sleep(Duration::from_millis(500));
        StreamPing { child }
    }

    /// Waits for the stream to end and measures it.
    pub fn finish(self) -> StreamPingResult {
        let out = self.child.wait_with_output().expect("ping ends");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let stamps: Vec<f64> = text
            .lines()
            .filter(|l| l.contains("bytes from"))
            .filter_map(|l| l.strip_prefix('[')?.split(']').next()?.parse().ok())
            .collect();
        let gap = stamps
            .windows(2)
            .map(|w| w[1] - w[0])
            .fold(0.0_f64, f64::max);
        StreamPingResult {
            text,
            gap: Duration::from_secs_f64(gap),
            replies: stamps.len(),
        }
    }
}

/// A 1 s iperf3 TCP stream from `client` to `server` carrying > 1 MB;
/// returns Mbit/s.
pub fn tcp_stream(client: &Pod, server: &Pod) -> f64 {
    let mut srv = Command::new("ip")
        .args([
            "netns",
            "exec",
            &server.netns,
            // Serves every retry; bounded in case the test dies before
            // it kills the server.
            "timeout",
            "60",
            "iperf3",
            "-s",
            "-p",
            "5201",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let what = format!("iperf3 {} → {} (> 1 MB in 1 s)", client.ip, server.ip);
    let bits = wait_for(Duration::from_secs(20), &what, || {
        let out = netns(
            &client.netns,
            &[
                "timeout",
                "8",
                "iperf3",
                "-c",
                &server.ip.to_string(),
                "-p",
                "5201",
                "-t",
                "1",
                "-J",
            ],
        );
        // A run can succeed with nothing received when the 2 cores are
        // saturated for its whole second (a CI run saw 0 bytes right after
        // ping passed both ways); such a run is retried, a path that
        // carries nothing for 20 s still fails (wait_for times out). The
        // client is bounded: a stalled control connection would block it
        // for minutes.
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let sum = &v["end"]["sum_received"];
        (out.status.success() && sum["bytes"].as_u64().unwrap_or(0) > 1_000_000)
            .then(|| sum["bits_per_second"].as_f64().unwrap_or(0.0))
    });
    // SIGTERM: `timeout` passes it on to iperf3.
    let _ = Command::new("kill").arg(srv.id().to_string()).status();
    let _ = srv.wait();
    bits / 1e6
}

/// The running ferry-dns pod's own IP (as the seed's `dig @<pod IP>` finds
/// it), once there is one.
pub fn ferry_dns_pod_ip(c: &Cluster) -> std::net::Ipv4Addr {
    wait_for(Duration::from_secs(60), "the ferry-dns pod's IP", || {
        let out = c
            .kubectl(&[
                "-n",
                "ferry-system",
                "get",
                "pods",
                "-l",
                "app.kubernetes.io/name=ferry-dns",
                "--field-selector",
                "status.phase=Running",
                "-o",
                "jsonpath={.items[0].status.podIP}",
            ])
            .ok()?;
        out.trim().parse().ok()
    })
}

/// The node name holding the cluster's gateway Lease.
pub fn holder(c: &Cluster) -> String {
    c.kubectl(&[
        "-n",
        "ferry-system",
        "get",
        "lease",
        "ferry-gateway",
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ])
    .unwrap()
    .trim()
    .to_string()
}

/// PID of the gateway process running in node `node`'s namespace: the
/// `ferry-gateway` binary the manifests run, or `ferry gateway`.
pub fn gateway_pid(c: &Cluster, node: &str) -> i32 {
    let k: usize = node.rsplit("node").next().unwrap().parse().unwrap();
    let ns = c.node_netns(k).unwrap();
    let out = run(Command::new("pgrep").args(["-f", "(^|/)ferry[- ]gateway( |$)"]));
    out.split_whitespace()
        .filter_map(|p| p.parse::<i32>().ok())
        .find(|pid| {
            let id = output(Command::new("ip").args(["netns", "identify", &pid.to_string()]));
            String::from_utf8_lossy(&id.stdout).trim() == ns
        })
        .unwrap_or_else(|| panic!("no ferry gateway process in {ns}"))
}
