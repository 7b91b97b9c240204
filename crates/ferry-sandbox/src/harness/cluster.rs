//! Sandbox clusters and pods through the `ferry` binary and kubectl.

use std::fs::File;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use nix::fcntl::Flock;

use super::binary::ferry_bin;
use super::lock::lock;
use super::process::{output, run, run_with_stdin, wait_for};
use super::runtime::runtime_args;
use crate::{Plan, Result, state};

/// One sandbox cluster, deleted on drop unless [`Cluster::keep`] was called.
/// It holds the sandbox lock shared while it lives, so a test running
/// `ferry sandbox delete --all` waits for it.
pub struct Cluster {
    /// Sandbox (and cluster id) name.
    pub name: String,
    /// Its admin kubeconfig.
    pub kubeconfig: PathBuf,
    /// Pod CIDR.
    pub pod_cidr: String,
    /// Service CIDR.
    pub service_cidr: String,
    ferry: PathBuf,
    keep: bool,
    _lock: Flock<File>,
}

/// A running pod: where it runs, its address and network namespace.
#[derive(Clone, Debug)]
pub struct Pod {
    /// Pod name (namespace `default`).
    pub name: String,
    /// The node it runs on.
    pub node: String,
    /// Pod IP.
    pub ip: Ipv4Addr,
    /// Its network namespace (for `ip netns exec`).
    pub netns: String,
}

impl Cluster {
    /// `ferry sandbox create NAME ARGS…` with [`ferry_bin`].
    pub fn create(name: &str, args: &[&str]) -> Result<Cluster> {
        Self::create_with(&ferry_bin(), name, args)
    }

    /// `BIN sandbox create NAME ARGS…`, in the run's runtime
    /// ([`e2e_runtime`](super::e2e_runtime)) unless ARGS choose one. A
    /// leftover cluster of that name is deleted first; a create that fails
    /// half-way is deleted too.
    pub fn create_with(bin: &Path, name: &str, args: &[&str]) -> Result<Cluster> {
        let runtime = if args.contains(&"--runtime") {
            Vec::new()
        } else {
            runtime_args(bin)?
        };
        let runtime: Vec<&str> = runtime.iter().map(String::as_str).collect();
        let mut cluster = Cluster {
            name: name.to_string(),
            kubeconfig: PathBuf::new(),
            pod_cidr: String::new(),
            service_cidr: String::new(),
            ferry: bin.to_path_buf(),
            keep: false,
            _lock: lock(false)?,
        };
        let _ = output(Command::new(bin).args(["sandbox", "delete", name]));
        let kubeconfig = cluster.ferry(&[&["sandbox", "create", name], args, &runtime].concat())?;
        cluster.kubeconfig = PathBuf::from(kubeconfig.trim());
        let plan = cluster.plan()?;
        cluster.pod_cidr = plan.pod_cidr.to_string();
        cluster.service_cidr = plan.service_cidr.to_string();
        Ok(cluster)
    }

    /// Leaves the cluster in place when this is dropped.
    pub fn keep(&mut self) {
        self.keep = true;
    }

    /// `ferry ARGS…` with the binary that made this cluster; must succeed.
    pub fn ferry(&self, args: &[&str]) -> Result<String> {
        run(Command::new(&self.ferry).args(args))
    }

    /// `kubectl --kubeconfig K ARGS…`, which must succeed.
    pub fn kubectl(&self, args: &[&str]) -> Result<String> {
        run(self.kubectl_command().args(args))
    }

    /// The ClusterIP of Service `namespace/name`, trimmed; empty while it has none.
    pub fn service_ip(&self, namespace: &str, name: &str) -> Result<String> {
        let jsonpath = "jsonpath={.spec.clusterIP}";
        let out = self.kubectl(&["-n", namespace, "get", "svc", name, "-o", jsonpath])?;
        Ok(out.trim().to_string())
    }

    /// `kubectl apply -f -` with `yaml`.
    pub fn apply(&self, yaml: &str) -> Result<()> {
        run_with_stdin(
            self.kubectl_command().args(["apply", "-f", "-"]),
            Some(yaml),
        )?;
        Ok(())
    }

    fn kubectl_command(&self) -> Command {
        let mut cmd = Command::new("kubectl");
        cmd.arg("--kubeconfig").arg(&self.kubeconfig);
        cmd
    }

    /// A kube client for this cluster's API.
    pub async fn client(&self) -> Result<kube::Client> {
        crate::supervisor::client_from(&self.kubeconfig).await
    }

    /// The cluster's plan (names, addresses).
    pub fn plan(&self) -> Result<Plan> {
        state::load_plan(&self.name)
    }

    /// Node `k`'s name.
    pub fn node(&self, k: usize) -> String {
        format!("{}-node{k}", self.name)
    }

    /// The network namespace of a node or a pod (`NAMESPACE/POD`, or a pod
    /// name when it is unique).
    pub fn netns(&self, target: &str) -> Result<String> {
        crate::exec_target(&self.name, target)
    }

    /// Node `k`'s network namespace.
    pub fn node_netns(&self, k: usize) -> Result<String> {
        self.netns(&self.node(k))
    }

    /// `ferry sandbox exec NAME TARGET -- curl -sf URL`, retried for 10 s.
    pub fn curl(&self, target: &str, url: &str) -> Result<String> {
        let mut last = None;
        let body = wait_for(
            &format!("curl {url} from {target} in {}", self.name),
            Duration::from_secs(10),
            Duration::from_millis(100),
            || {
                let args = [
                    "sandbox", "exec", &self.name, target, "--", "curl", "-sf", "-m", "2", url,
                ];
                self.ferry(&args).map_err(|e| last = Some(e)).ok()
            },
        );
        body.map_err(|timeout| last.unwrap_or(timeout))
    }

    /// Starts a busybox pod `name` in `default` on node `k` (its command runs
    /// in the pod's namespace) and waits until it runs.
    pub fn pod(&self, name: &str, k: usize) -> Result<Pod> {
        self.start_pod(name, k)?;
        self.wait_pod(name)
    }

    /// Starts a busybox pod `name` in `default` on node `k`; [`Cluster::wait_pod`]
    /// waits for it (start several, then wait, to start them together).
    pub fn start_pod(&self, name: &str, k: usize) -> Result<()> {
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
            "infinity",
        ])?;
        Ok(())
    }

    /// Waits for pod `default/name` to run; returns where and its address.
    pub fn wait_pod(&self, name: &str) -> Result<Pod> {
        let (ip, node) = wait_for(
            &format!("pod {name} in {} to run", self.name),
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
            netns: self.netns(&format!("default/{name}"))?,
        })
    }
}

impl Cluster {
    /// What a failing test prints about the gateways: the Gateway objects,
    /// the Lease, and the last `lines` log lines of every ferry-gateway pod
    /// this cluster has run (gone ones too), oldest first.
    pub fn gateway_report(&self, lines: usize) -> String {
        let mut out = String::new();
        for args in [
            &["-n", "ferry-system", "get", "gateways", "-o", "yaml"][..],
            &[
                "-n",
                "ferry-system",
                "get",
                "lease",
                "ferry-gateway",
                "-o",
                "yaml",
            ],
            &["-n", "ferry-system", "get", "pods", "-o", "wide"],
        ] {
            out += &format!("$ kubectl {}\n", args.join(" "));
            out += &self.kubectl(args).unwrap_or_else(|e| format!("({e})\n"));
        }
        let root = state::cluster_dir(&self.name).join("logs");
        let mut dirs: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(&root)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|d| {
                d.file_name()
                    .to_string_lossy()
                    .starts_with("ferry-system_ferry-gateway")
            })
            .filter_map(|d| Some((d.metadata().ok()?.modified().ok()?, d.path())))
            .collect();
        dirs.sort();
        for (_, dir) in dirs {
            for file in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let text = std::fs::read_to_string(file.path()).unwrap_or_default();
                let all: Vec<&str> = text.lines().collect();
                out += &format!("--- {} (last {lines} lines)\n", file.path().display());
                for line in &all[all.len().saturating_sub(lines)..] {
                    out += line;
                    out.push('\n');
                }
            }
        }
        out
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("keeping sandbox cluster {}", self.name);
            return;
        }
        match output(Command::new(&self.ferry).args(["sandbox", "delete", &self.name])) {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!(
                "deleting sandbox cluster {}: {}",
                self.name,
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Err(e) => eprintln!("deleting sandbox cluster {}: {e}", self.name),
        }
    }
}
