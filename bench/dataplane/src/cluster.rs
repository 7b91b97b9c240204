//! Sandbox clusters through the `ferry` binary and kubectl: create (and
//! delete on drop), a dedicated broker, joining, gateway labels and pods.
//!
//! A pair is two clusters A and B joined through a broker cluster of their
//! own (the broker does not live in A's API server: see the README), with
//! node 0 of each labelled as the gateway, and one busybox pod on each node
//! (`p0` on the gateway node, `p1` on the other one).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

use crate::pod::Pod;
use crate::sys::{self, wait_for};

/// Label that puts `ferry gateway` on a node.
pub const GATEWAY_LABEL: &str = "ferry.dev/gateway";

/// The `ferry` binary.
#[derive(Clone)]
pub struct Ferry(pub PathBuf);

impl Ferry {
    pub fn run(&self, args: &[&str]) -> Result<String> {
        sys::run(&self.0.to_string_lossy(), args)
    }
}

/// Sandbox clusters made by this run; each is deleted (by name) when this
/// is dropped, unless `keep`.
pub struct Sandboxes {
    ferry: Ferry,
    names: Vec<String>,
    keep: bool,
}

impl Sandboxes {
    pub fn new(ferry: Ferry, keep: bool) -> Self {
        Self {
            ferry,
            names: Vec::new(),
            keep,
        }
    }

    /// `ferry sandbox create NAME --nodes N`.
    pub fn create(&mut self, name: &str, nodes: u32) -> Result<Cluster> {
        // Recorded first: a create that fails half-way is deleted too.
        self.names.push(name.to_string());
        self.ferry
            .run(&["sandbox", "create", name, "--nodes", &nodes.to_string()])
            .with_context(|| format!("creating sandbox cluster {name}"))?;
        let list = self.ferry.run(&["sandbox", "list"])?;
        let row: Vec<&str> = list
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|f| f.first() == Some(&name))
            .ok_or_else(|| anyhow!("{name} missing from `ferry sandbox list`"))?;
        let [_, _, _, pod_cidr, service_cidr, kubeconfig] = row[..] else {
            bail!("unexpected `ferry sandbox list` row: {row:?}");
        };
        Ok(Cluster {
            name: name.to_string(),
            ferry: self.ferry.clone(),
            kubeconfig: PathBuf::from(kubeconfig),
            pod_cidr: pod_cidr.to_string(),
            service_cidr: service_cidr.to_string(),
        })
    }
}

impl Drop for Sandboxes {
    fn drop(&mut self) {
        for name in self.names.iter().rev() {
            if self.keep {
                eprintln!("keeping sandbox cluster {name} (--keep)");
                continue;
            }
            match self.ferry.run(&["sandbox", "delete", name]) {
                Ok(_) => eprintln!("deleted sandbox cluster {name}"),
                Err(e) => eprintln!("deleting sandbox cluster {name}: {e:#}"),
            }
        }
    }
}

/// One sandbox cluster.
pub struct Cluster {
    pub name: String,
    ferry: Ferry,
    pub kubeconfig: PathBuf,
    pub pod_cidr: String,
    pub service_cidr: String,
}

impl Cluster {
    pub fn node(&self, k: u32) -> String {
        format!("{}-node{k}", self.name)
    }

    pub fn kubectl(&self, args: &[&str]) -> Result<String> {
        let kc = self.kubeconfig.to_string_lossy().into_owned();
        let mut v = vec!["--kubeconfig", kc.as_str()];
        v.extend_from_slice(args);
        sys::run("kubectl", &v)
    }

    pub fn apply(&self, yaml: &str) -> Result<()> {
        let kc = self.kubeconfig.to_string_lossy().into_owned();
        sys::run_with_stdin(
            "kubectl",
            &["--kubeconfig", &kc, "apply", "-f", "-"],
            Some(yaml),
        )?;
        Ok(())
    }

    /// The network namespace of a node or pod (`ferry sandbox exec … ip netns identify`).
    pub fn netns_of(&self, target: &str) -> Result<String> {
        let out = self.ferry.run(&[
            "sandbox", "exec", &self.name, target, "--", "ip", "netns", "identify",
        ])?;
        let ns = out.trim().to_string();
        if ns.is_empty() {
            bail!("no netns found for {target} in {}", self.name);
        }
        Ok(ns)
    }

    /// `ferry deploy-broker` against this cluster's API; returns the broker-info path.
    pub fn deploy_broker(&self, dir: &Path) -> Result<PathBuf> {
        let out = dir.join(format!("{}-broker-info.ferry", self.name));
        self.ferry.run(&[
            "deploy-broker",
            "--kubeconfig",
            &self.kubeconfig.to_string_lossy(),
            "-o",
            &out.to_string_lossy(),
        ])?;
        Ok(out)
    }

    /// `ferry join` with node 0 as the gateway; retried (join is
    /// idempotent) because joins before ac1db15 could lose a race with the
    /// agent they had just started (409 on the Cluster object).
    pub fn join(&self, broker_info: &Path, driver: &str) -> Result<()> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.join_once(broker_info, driver) {
                Ok(()) => return Ok(()),
                Err(e) if attempt < 3 => {
                    eprintln!("retrying ferry join of {}: {e:#}", self.name);
                    std::thread::sleep(Duration::from_secs(1));
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn join_once(&self, broker_info: &Path, driver: &str) -> Result<()> {
        self.ferry
            .run(&[
                "join",
                &broker_info.to_string_lossy(),
                "--clusterid",
                &self.name,
                "--kubeconfig",
                &self.kubeconfig.to_string_lossy(),
                "--clustercidr",
                &self.pod_cidr,
                "--servicecidr",
                &self.service_cidr,
                "--gateway-node",
                &self.node(0),
                "--cable-driver",
                driver,
            ])
            .with_context(|| format!("joining {}", self.name))?;
        Ok(())
    }

    /// Labels (`true`) or unlabels (`false`) node `k` as a gateway.
    pub fn set_gateway(&self, k: u32, on: bool) -> Result<()> {
        let node = self.node(k);
        let label = if on {
            format!("{GATEWAY_LABEL}=true")
        } else {
            format!("{GATEWAY_LABEL}-")
        };
        self.kubectl(&["label", "node", &node, &label, "--overwrite"])?;
        Ok(())
    }

    /// Starts a busybox pod `name` on node `k` (its command runs in the pod's namespace).
    pub fn start_pod(&self, name: &str, k: u32) -> Result<()> {
        let overrides = format!(
            r#"{{"apiVersion":"v1","spec":{{"nodeName":"{}"}}}}"#,
            self.node(k)
        );
        self.kubectl(&[
            "run",
            name,
            "--image=busybox",
            "--restart=Never",
            "--overrides",
            &overrides,
            "--",
            "sleep",
            "86400",
        ])?;
        Ok(())
    }

    /// Waits for pod `name` to run and returns its address and namespace.
    pub fn wait_pod(&self, name: &str) -> Result<Pod> {
        let (ip, node) = wait_for(
            &format!("pod {name} in {}", self.name),
            Duration::from_secs(60),
            Duration::from_millis(200),
            || {
                let out = self.kubectl(&["get", "pod", name, "-o", "json"]).ok()?;
                let v: serde_json::Value = serde_json::from_str(&out).ok()?;
                if v["status"]["phase"] != "Running" {
                    return None;
                }
                let ip: Ipv4Addr = v["status"]["podIP"].as_str()?.parse().ok()?;
                Some((ip, v["spec"]["nodeName"].as_str()?.to_string()))
            },
        )?;
        Ok(Pod {
            name: name.to_string(),
            node,
            ip,
            netns: self.netns_of(name)?,
        })
    }

    /// The UDP target port of Service `ns/name` (the port its pods listen on).
    pub fn udp_target_port(&self, ns: &str, name: &str) -> Result<u16> {
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
    pub fn pod_ip_by_app(&self, ns: &str, app: &str) -> Result<Ipv4Addr> {
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
}

impl Pair {
    /// Creates broker cluster `{prefix}k`, clusters `{prefix}a` and
    /// `{prefix}b`, joins them with `driver`, starts the pods and waits for
    /// a ping from A's gateway-node pod to B's.
    pub fn up(sb: &mut Sandboxes, prefix: &str, driver: &str, dir: &Path) -> Result<Pair> {
        let k = sb.create(&format!("{prefix}k"), 1)?;
        let a = sb.create(&format!("{prefix}a"), 2)?;
        let b = sb.create(&format!("{prefix}b"), 2)?;
        let info = k.deploy_broker(dir)?;
        a.join(&info, driver)?;
        b.join(&info, driver)?;
        for c in [&a, &b] {
            c.start_pod("p0", 0)?;
            c.start_pod("p1", 1)?;
        }
        let a_pods = [a.wait_pod("p0")?, a.wait_pod("p1")?];
        let b_pods = [b.wait_pod("p0")?, b.wait_pod("p1")?];
        let a_nodes = [a.netns_of(&a.node(0))?, a.netns_of(&a.node(1))?];
        let b_nodes = [b.netns_of(&b.node(0))?, b.netns_of(&b.node(1))?];
        let pair = Pair {
            driver: driver.to_string(),
            a,
            b,
            a_nodes,
            b_nodes,
            a_pods,
            b_pods,
        };
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
