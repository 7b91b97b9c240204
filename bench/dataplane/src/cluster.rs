//! Sandbox clusters of the sandbox's test harness (`ferry_sandbox::harness`:
//! create, delete on drop, kubectl, pods) joined into pairs: a dedicated
//! broker, joining, gateway labels and finding ferry's pods.
//!
//! A pair is two clusters A and B joined through a broker cluster of their
//! own (the broker does not live in A's API server: see the README), with
//! node 0 of each labelled as the gateway, and one busybox pod on each node
//! (`p0` on the gateway node, `p1` on the other one).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use ferry_sandbox::harness::{Cluster, Pod};

use crate::sys::{self, wait_for};

/// Label that puts `ferry gateway` on a node.
pub const GATEWAY_LABEL: &str = "ferry.dev/gateway";

/// ferry's cable devices (crates/ferry-gateway).
pub const WIREGUARD_CABLE: &str = "ferry-wg";
pub const VXLAN_CABLE: &str = "ferry-vxc";
pub const IPSEC_CABLE: &str = "ferry-ipsec";

/// The `ferry` binary.
#[derive(Clone)]
pub struct Ferry(pub PathBuf);

impl Ferry {
    pub fn run(&self, args: &[&str]) -> Result<String> {
        sys::run(&self.0.to_string_lossy(), args)
    }

    /// `ferry sandbox create NAME --nodes N EXTRA…`, deleted on drop unless `keep`.
    pub fn create(&self, name: &str, nodes: u32, extra: &[&str], keep: bool) -> Result<Cluster> {
        let n = nodes.to_string();
        let args = [&["--nodes", n.as_str()][..], extra].concat();
        let mut c = Cluster::create_with(&self.0, name, &args)
            .with_context(|| format!("creating sandbox cluster {name}"))?;
        if keep {
            c.keep();
        }
        Ok(c)
    }
}

/// What the benchmark does with a sandbox cluster beyond the harness's
/// basics: ferry's broker, join and gateway labels, and finding its pods.
pub trait Joined {
    /// `ferry deploy-broker EXTRA…` against this cluster's API; returns the broker-info path.
    fn deploy_broker(&self, dir: &Path, extra: &[&str]) -> Result<PathBuf>;
    /// `ferry join` with node 0 as the gateway (retried: join is idempotent).
    fn join(&self, broker_info: &Path, driver: &str) -> Result<()> {
        self.join_with(broker_info, driver, &[])
    }
    /// [`Joined::join`] with extra `ferry join` arguments.
    fn join_with(&self, broker_info: &Path, driver: &str, extra: &[&str]) -> Result<()>;
    /// Labels (`true`) or unlabels (`false`) node `k` as a gateway.
    fn set_gateway(&self, k: usize, on: bool) -> Result<()>;
    /// The UDP target port of Service `ns/name` (the port its pods listen on).
    fn udp_target_port(&self, ns: &str, name: &str) -> Result<u16>;
    /// Address of the first running pod labelled `app.kubernetes.io/name=APP` in `ns`.
    fn pod_ip_by_app(&self, ns: &str, app: &str) -> Result<Ipv4Addr>;
}

impl Joined for Cluster {
    /// `ferry deploy-broker EXTRA…` against this cluster's API; returns the broker-info path.
    fn deploy_broker(&self, dir: &Path, extra: &[&str]) -> Result<PathBuf> {
        let out = dir.join(format!("{}-broker-info.ferry", self.name));
        let (kubeconfig, out_path) = (self.kubeconfig.to_string_lossy(), out.to_string_lossy());
        let args = [
            &[
                "deploy-broker",
                "--kubeconfig",
                &kubeconfig,
                "-o",
                &out_path,
            ][..],
            extra,
        ]
        .concat();
        self.ferry(&args)?;
        Ok(out)
    }

    /// `ferry join` with node 0 as the gateway; retried (join is
    /// idempotent) because joins before ac1db15 could lose a race with the
    /// agent they had just started (409 on the Cluster object).
    fn join_with(&self, broker_info: &Path, driver: &str, extra: &[&str]) -> Result<()> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match join_once(self, broker_info, driver, extra) {
                Ok(()) => return Ok(()),
                Err(e) if attempt < 3 => {
                    eprintln!("retrying ferry join of {}: {e:#}", self.name);
                    std::thread::sleep(Duration::from_secs(1));
                }
                Err(e) => return Err(e),
            }
        }
    }
    /// Labels (`true`) or unlabels (`false`) node `k` as a gateway.
    fn set_gateway(&self, k: usize, on: bool) -> Result<()> {
        let node = self.node(k);
        let label = if on {
            format!("{GATEWAY_LABEL}=true")
        } else {
            format!("{GATEWAY_LABEL}-")
        };
        self.kubectl(&["label", "node", &node, &label, "--overwrite"])?;
        Ok(())
    }

    /// The UDP target port of Service `ns/name` (the port its pods listen on).
    fn udp_target_port(&self, ns: &str, name: &str) -> Result<u16> {
        let out = self.kubectl(&["-n", ns, "get", "service", name, "-o", "json"])?;
        let v: serde_json::Value = serde_json::from_str(&out)?;
        v["spec"]["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["protocol"] == "UDP")
            .find_map(|p| {
                let t = p["targetPort"].as_u64().or_else(|| p["port"].as_u64())?;
                u16::try_from(t).ok()
            })
            .ok_or_else(|| anyhow!("Service {ns}/{name} has no UDP port"))
    }

    /// Address of the first running pod labelled `app.kubernetes.io/name=APP` in `ns`.
    fn pod_ip_by_app(&self, ns: &str, app: &str) -> Result<Ipv4Addr> {
        wait_for(
            &format!("a running {app} pod in {}", self.name),
            Duration::from_secs(60),
            Duration::from_millis(200),
            || {
                let out = self
                    .kubectl(&[
                        "-n",
                        ns,
                        "get",
                        "pods",
                        "-l",
                        &format!("app.kubernetes.io/name={app}"),
                        "-o",
                        "json",
                    ])
                    .ok()?;
                let v: serde_json::Value = serde_json::from_str(&out).ok()?;
                v["items"].as_array()?.iter().find_map(|p| {
                    (p["status"]["phase"] == "Running")
                        .then(|| p["status"]["podIP"].as_str()?.parse().ok())
                        .flatten()
                })
            },
        )
    }
}

/// One `ferry join` of `c` with node 0 as the gateway, and `extra`.
fn join_once(c: &Cluster, broker_info: &Path, driver: &str, extra: &[&str]) -> Result<()> {
    let (info, kubeconfig) = (
        broker_info.to_string_lossy(),
        c.kubeconfig.to_string_lossy(),
    );
    let gateway = c.node(0);
    let args = [
        &[
            "join",
            &info,
            "--clusterid",
            &c.name,
            "--kubeconfig",
            &kubeconfig,
            "--clustercidr",
            &c.pod_cidr,
            "--servicecidr",
            &c.service_cidr,
            "--gateway-node",
            &gateway,
            "--cable-driver",
            driver,
        ][..],
        extra,
    ]
    .concat();
    c.ferry(&args)
        .with_context(|| format!("joining {}", c.name))?;
    Ok(())
}

/// How a pair's clusters and broker are made beyond the defaults.
#[derive(Default)]
pub struct Setup<'a> {
    /// Extra `ferry sandbox create` arguments of A and B (e.g. their CIDRs).
    pub sandbox: &'a [&'a str],
    /// Extra `ferry deploy-broker` arguments (e.g. `--globalnet`).
    pub broker: &'a [&'a str],
}

impl Setup<'_> {
    /// Globalnet: A and B may share CIDRs, so their pods do not address
    /// each other directly and [`Pair::wait_path`] does not apply.
    fn globalnet(&self) -> bool {
        self.broker.contains(&"--globalnet")
    }
}

/// Two joined clusters with their gateway node namespaces and pods.
pub struct Pair {
    pub driver: String,
    pub a: Cluster,
    pub b: Cluster,
    /// Node namespaces: `[node0, node1]` of A and of B.
    pub a_nodes: [String; 2],
    pub b_nodes: [String; 2],
    /// `p0` (gateway node) and `p1` (other node) in A and in B.
    pub a_pods: [Pod; 2],
    pub b_pods: [Pod; 2],
    /// The cluster holding the broker: held only so it lives (and is
    /// deleted) with the pair; dropped last.
    _broker: Cluster,
}

impl Pair {
    /// Creates broker cluster `{prefix}k`, clusters `{prefix}a` and
    /// `{prefix}b`, joins them with `driver`, starts the pods and waits for
    /// a ping from A's gateway-node pod to B's.
    /// The clusters are deleted when the pair is dropped, unless `keep`.
    pub fn up(ferry: &Ferry, keep: bool, prefix: &str, driver: &str, dir: &Path) -> Result<Pair> {
        Pair::up_with(ferry, keep, prefix, driver, dir, &Setup::default())
    }

    /// As [`Pair::up`], with `setup`'s extra arguments; a Globalnet pair
    /// is not waited for (its pods' addresses are not routed across).
    pub fn up_with(
        ferry: &Ferry,
        keep: bool,
        prefix: &str,
        driver: &str,
        dir: &Path,
        setup: &Setup,
    ) -> Result<Pair> {
        let k = ferry.create(&format!("{prefix}k"), 1, &[], keep)?;
        let a = ferry.create(&format!("{prefix}a"), 2, setup.sandbox, keep)?;
        let b = ferry.create(&format!("{prefix}b"), 2, setup.sandbox, keep)?;
        let info = k.deploy_broker(dir, setup.broker)?;
        a.join(&info, driver)?;
        b.join(&info, driver)?;
        for c in [&a, &b] {
            c.start_pod("p0", 0)?;
            c.start_pod("p1", 1)?;
        }
        let a_pods = [a.wait_pod("p0")?, a.wait_pod("p1")?];
        let b_pods = [b.wait_pod("p0")?, b.wait_pod("p1")?];
        let a_nodes = [a.node_netns(0)?, a.node_netns(1)?];
        let b_nodes = [b.node_netns(0)?, b.node_netns(1)?];
        let pair = Pair {
            driver: driver.to_string(),
            a,
            b,
            a_nodes,
            b_nodes,
            a_pods,
            b_pods,
            _broker: k,
        };
        if setup.globalnet() {
            return Ok(pair);
        }
        pair.wait_path(Duration::from_secs(60))
            .context("the ferry cable between the gateway-node pods never carried a ping")?;
        Ok(pair)
    }

    /// Waits until A's gateway-node pod pings B's.
    pub fn wait_path(&self, timeout: Duration) -> Result<()> {
        let (from, to) = (&self.a_pods[0], &self.b_pods[0]);
        wait_for(
            &format!("ping {} -> {}", from.ip, to.ip),
            timeout,
            Duration::from_millis(10),
            || crate::measure::ping_once(&from.netns, to.ip).then_some(()),
        )
    }
}

/// Cable device of the pair's driver.
pub fn cable(pair: &Pair) -> &'static str {
    match pair.driver.as_str() {
        "vxlan" => VXLAN_CABLE,
        "ipsec" => IPSEC_CABLE,
        _ => WIREGUARD_CABLE,
    }
}
