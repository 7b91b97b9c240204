//! The pod runner: for every pod bound to one of the cluster's nodes, a
//! network namespace with an address from the node's pod slice (or the node's
//! own namespace for hostNetwork pods), its containers as processes started
//! with `ip netns exec`, restarts with backoff, readiness (process alive plus
//! tcpSocket/httpGet probes as TCP connects), logs per container, and the
//! pod's status written back through the API.

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::controllers::{Stores, Wakers, run_loop};
use crate::oci::runc::{self, RuncContainer};
use crate::oci::store::{self, Image};
use crate::plan::Plan;
use crate::state::{self, PodRecord};

/// How pods are run.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// The `ferry` binary started for ferry-image containers.
    pub ferry_exe: PathBuf,
    /// Image repository that means "ferry's image".
    pub ferry_image: String,
}

struct Running {
    stop: watch::Sender<bool>,
}

struct Ipam {
    next: u32,
    used: HashSet<u32>,
}

/// Runs the pods of every node of one cluster.
pub struct Runner {
    client: Client,
    plan: Plan,
    stores: Stores,
    config: RunnerConfig,
    running: Mutex<HashMap<String, Running>>,
    ipam: Mutex<Vec<Ipam>>,
    seq: AtomicU64,
    kubeconfig: PathBuf,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// The image's repository without registry path, tag or digest.
pub fn image_repository(image: &str) -> &str {
    let no_digest = image.split('@').next().unwrap_or(image);
    let last = no_digest.rsplit('/').next().unwrap_or(no_digest);
    last.split(':').next().unwrap_or(last)
}

/// The argv of a container: its command and args; images named like ferry's
/// run the local ferry binary, as does a command starting with `ferry`. A
/// command `ferry-<daemon>` (the per-daemon binaries ferry's manifests
/// run) is the file of that name beside the local ferry binary, as the
/// image has them side by side in /usr/bin; where only `ferry` is
/// installed, `ferry <daemon>` runs instead.
pub fn container_argv(c: &Container, config: &RunnerConfig) -> Option<Vec<String>> {
    let exe = config.ferry_exe.to_string_lossy().into_owned();
    let is_ferry = c
        .image
        .as_deref()
        .is_some_and(|i| image_repository(i) == config.ferry_image);
    let mut argv: Vec<String> = c.command.clone().unwrap_or_default();
    argv.extend(c.args.clone().unwrap_or_default());
    if c.command.as_ref().is_none_or(|c| c.is_empty()) && is_ferry {
        argv.insert(0, exe);
    } else if argv.first().is_some_and(|a| a == "ferry") {
        argv[0] = exe;
    } else if let Some(daemon) = argv
        .first()
        .filter(|a| !a.contains('/'))
        .and_then(|a| a.strip_prefix("ferry-"))
        .map(str::to_string)
    {
        let sibling = config.ferry_exe.with_file_name(format!("ferry-{daemon}"));
        if !config.ferry_exe.exists() || sibling_is_current(&sibling, &config.ferry_exe) {
            argv[0] = sibling.to_string_lossy().into_owned();
        } else {
            // Only `ferry` is installed, or the per-daemon binary beside it
            // is older (a `cargo build --bin ferry` left it from an earlier
            // build): `ferry`'s subcommand runs the same daemon (the
            // per-daemon binary only maps less of the program).
            argv[0] = exe;
            argv.insert(1, daemon);
        }
    }
    (!argv.is_empty()).then_some(argv)
}

/// Whether the per-daemon binary `sibling` exists and was built no earlier
/// than `ferry` itself. One build writes all of them within seconds; an
/// older one is left over from an earlier build and would silently run
/// old code (it once ran a benchmark on a 3-hour-old gateway).
fn sibling_is_current(sibling: &std::path::Path, ferry: &std::path::Path) -> bool {
    /// Linking the binaries of one build one after the other takes time.
    const SAME_BUILD: std::time::Duration = std::time::Duration::from_secs(600);
    let mtime = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    match (mtime(sibling), mtime(ferry)) {
        (Some(s), Some(f)) => s + SAME_BUILD >= f,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

fn probe_port(probe: &Probe, c: &Container) -> Option<u16> {
    let port = probe
        .tcp_socket
        .as_ref()
        .map(|t| &t.port)
        .or(probe.http_get.as_ref().map(|h| &h.port))?;
    match port {
        IntOrString::Int(n) => u16::try_from(*n).ok(),
        IntOrString::String(name) => c
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name))
            .and_then(|p| u16::try_from(p.container_port).ok()),
    }
}

/// A TCP connect from inside `netns`, on a thread of its own (setns is per
/// thread, so never on a pooled one).
async fn tcp_probe(netns: String, addr: SocketAddr) -> bool {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("probe".into())
        .spawn(move || {
            let ok = (|| {
                let f = std::fs::File::open(format!("/run/netns/{netns}")).ok()?;
                nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).ok()?;
                TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()
            })()
            .is_some();
            let _ = tx.send(ok);
        });
    spawned.is_ok() && rx.await.unwrap_or(false)
}

struct Ctr {
    spec: Container,
    argv: Option<Vec<String>>,
    /// Set when the container runs under runc (its image is in the store).
    image: Option<Image>,
    runc: Option<RuncContainer>,
    start_error: Option<String>,
    pid: Option<i32>,
    generation: u64,
    restarts: u32,
    backoff: Duration,
    next_start: Instant,
    started_at: Option<String>,
    ready: bool,
    next_probe: Instant,
    last_exit: Option<i32>,
    done: bool,
    ever_ready: bool,
}

fn now_rfc3339() -> String {
    k8s_openapi::jiff::Timestamp::now().to_string()
}

impl Runner {
    pub fn new(
        client: Client,
        plan: Plan,
        stores: Stores,
        config: RunnerConfig,
        kubeconfig: PathBuf,
    ) -> Arc<Runner> {
        let ipam = (0..plan.nodes)
            .map(|_| Ipam {
                next: 2,
                used: HashSet::new(),
            })
            .collect();
        Arc::new(Runner {
            client,
            plan,
            stores,
            config,
            running: Mutex::new(HashMap::new()),
            ipam: Mutex::new(ipam),
            seq: AtomicU64::new(0),
            kubeconfig,
        })
    }

    pub fn spawn(self: &Arc<Self>, wakers: &Wakers) {
        let r = self.clone();
        let w = wakers.register();
        tokio::spawn(async move {
            run_loop("runner", w, || {
                let r = r.clone();
                async move {
                    r.reconcile();
                    Ok(())
                }
            })
            .await
        });
    }

    /// Stops every pod and waits (bounded) for them to go.
    pub async fn shutdown(&self) {
        let stops: Vec<Running> = lock(&self.running).drain().map(|(_, r)| r).collect();
        for r in &stops {
            let _ = r.stop.send(true);
        }
        for r in &stops {
            r.stop.closed().await;
        }
    }

    fn reconcile(self: &Arc<Self>) {
        let pods = self.stores.pods.state();
        let mut want: HashMap<String, (Arc<Pod>, u32)> = HashMap::new();
        for p in pods {
            let Some(node) = p.spec.as_ref().and_then(|s| s.node_name.as_deref()) else {
                continue;
            };
            let Some(k) = self.plan.node_index(node) else {
                continue;
            };
            if p.metadata.deletion_timestamp.is_some() {
                continue;
            }
            if let Some(uid) = p.uid() {
                want.insert(uid, (p.clone(), k));
            }
        }
        let mut running = lock(&self.running);
        running.retain(|uid, r| {
            let keep = want.contains_key(uid) && !r.stop.is_closed();
            if !keep {
                let _ = r.stop.send(true);
            }
            keep
        });
        for (uid, (pod, k)) in want {
            if running.contains_key(&uid) {
                continue;
            }
            let (tx, rx) = watch::channel(false);
            running.insert(uid, Running { stop: tx });
            let r = self.clone();
            tokio::spawn(async move { r.run_pod(pod, k, rx).await });
        }
    }

    fn alloc_ip(&self, k: u32) -> Option<Ipv4Addr> {
        let mut ipam = lock(&self.ipam);
        let slot = ipam.get_mut(k as usize)?;
        for _ in 0..253 {
            let n = slot.next;
            slot.next = if slot.next >= 254 { 2 } else { slot.next + 1 };
            if slot.used.insert(n) {
                return Some(self.plan.node_pod_cidr(k).nth(u64::from(n)));
            }
        }
        None
    }

    fn free_ip(&self, k: u32, ip: Ipv4Addr) {
        let n = u32::from(ip) & 0xff;
        if let Some(slot) = lock(&self.ipam).get_mut(k as usize) {
            slot.used.remove(&n);
        }
    }

    async fn run_pod(self: Arc<Self>, pod: Arc<Pod>, k: u32, mut stop: watch::Receiver<bool>) {
        let ns = pod.namespace().unwrap_or_default();
        let name = pod.name_any();
        let spec = pod.spec.clone().unwrap_or_default();
        let host_net = spec.host_network.unwrap_or(false);
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let node_ip = self.plan.node_ip(k);

        // Network.
        let (netns, ip) = if host_net {
            (self.plan.node_netns(k), node_ip)
        } else {
            let Some(ip) = self.alloc_ip(k) else {
                tracing::error!(pod = %name, "node pod CIDR exhausted");
                let _ = stop.changed().await;
                return;
            };
            let seq = self.seq.fetch_add(1, Ordering::Relaxed);
            let plan = self.plan.clone();
            let ns2 = ns.clone();
            let made = tokio::task::spawn_blocking(move || {
                crate::net::create_pod_network(&plan, k, seq, ip, &ns2)
            })
            .await;
            match made {
                Ok(Ok(netns)) => (netns, ip),
                Ok(Err(e)) => {
                    tracing::error!(pod = %name, error = %e, "pod network");
                    let _ = crate::net::delete_netns(&self.plan.pod_netns(k, seq));
                    self.free_ip(k, ip);
                    let _ = stop.changed().await;
                    return;
                }
                Err(_) => return,
            }
        };
        let record = PodRecord {
            namespace: ns.clone(),
            name: name.clone(),
            netns: netns.clone(),
            ip: ip.to_string(),
            node: self.plan.node_name(k),
        };
        let record_path = state::pod_record_path(&self.plan.name, &ns, &name);
        if let Ok(data) = serde_json::to_vec(&record) {
            let _ = state::write_file(&record_path, &data);
        }
        let logs = state::pod_logs_dir(&self.plan.name, &ns, &name);
        let _ = std::fs::create_dir_all(&logs);

        let start_time = now_rfc3339();
        let restart_policy = spec
            .restart_policy
            .clone()
            .unwrap_or_else(|| "Always".into());
        let now = Instant::now();
        let mut ctrs: Vec<Ctr> = spec
            .containers
            .iter()
            .map(|c| {
                let image = self.runc_image(c);
                let argv = match &image {
                    Some(image) => crate::oci::spec::argv(c, image).ok(),
                    None => container_argv(c, &self.config),
                };
                (c, image, argv)
            })
            .map(|(c, image, argv)| Ctr {
                spec: c.clone(),
                argv,
                image,
                runc: None,
                start_error: None,
                pid: None,
                generation: 0,
                restarts: 0,
                backoff: Duration::from_secs(1),
                next_start: now,
                started_at: None,
                ready: false,
                next_probe: now,
                last_exit: None,
                done: false,
                ever_ready: false,
            })
            .collect();
        let (exit_tx, mut exit_rx) = mpsc::unbounded_channel::<(usize, u64, Option<i32>)>();
        let mut last_status = Value::Null;

        loop {
            let now = Instant::now();
            // Start what is due.
            for (i, c) in ctrs.iter_mut().enumerate() {
                if c.pid.is_some() || c.done || now < c.next_start {
                    continue;
                }
                let Some(argv) = c.argv.clone() else {
                    c.done = true;
                    continue;
                };
                let image_env = c.image.as_ref().map(|i| i.config.env.as_slice());
                let env = self.container_env(&c.spec, &pod, ip, node_ip, k, image_env);
                let log_file = logs.join(format!("{}.log", c.spec.name));
                if let Some(old) = c.runc.take() {
                    old.remove();
                }
                let started = match &c.image {
                    Some(image) => runc::start(&runc::Request {
                        cluster: &self.plan.name,
                        id: format!(
                            "{ns}.{name}.{}.{}",
                            c.spec.name,
                            self.seq.fetch_add(1, Ordering::Relaxed)
                        ),
                        pod: &pod,
                        container: &c.spec,
                        image,
                        netns: &netns,
                        host_network: host_net,
                        node: self.plan.node_name(k),
                        ip,
                        env,
                        kubeconfig: &self.kubeconfig,
                        log: &log_file,
                    })
                    .map(|(child, ctr)| (child, Some(ctr)))
                    .map_err(|e| e.to_string()),
                    None => spawn_container(&netns, &argv, &env, &log_file)
                        .map(|child| (child, None))
                        .map_err(|e| e.to_string()),
                };
                match started {
                    Ok((mut child, runc)) => {
                        c.runc = runc;
                        c.start_error = None;
                        if c.last_exit.is_some() {
                            c.restarts += 1;
                        }
                        c.generation += 1;
                        c.pid = child.id().map(|p| p as i32);
                        c.started_at = Some(now_rfc3339());
                        c.ready = c.spec.readiness_probe.is_none();
                        c.ever_ready = false;
                        c.next_probe = now
                            + Duration::from_secs(
                                c.spec
                                    .readiness_probe
                                    .as_ref()
                                    .and_then(|p| p.initial_delay_seconds)
                                    .unwrap_or(0)
                                    .max(0) as u64,
                            );
                        let (tx, generation) = (exit_tx.clone(), c.generation);
                        tokio::spawn(async move {
                            let code = child.wait().await.ok().and_then(|s| s.code());
                            let _ = tx.send((i, generation, code));
                        });
                    }
                    Err(e) => {
                        tracing::warn!(pod = %name, container = %c.spec.name, error = %e, "start");
                        c.start_error = Some(e);
                        c.last_exit = Some(127);
                        c.next_start = now + c.backoff;
                        c.backoff = (c.backoff * 2).min(Duration::from_secs(30));
                    }
                }
            }
            // Probe what is due.
            for c in ctrs.iter_mut() {
                let (Some(_), Some(probe)) = (c.pid, c.spec.readiness_probe.as_ref()) else {
                    continue;
                };
                if now < c.next_probe {
                    continue;
                }
                let ok = match probe_port(probe, &c.spec) {
                    Some(port) => tcp_probe(netns.clone(), SocketAddr::from((ip, port))).await,
                    None => true, // exec probes are not run: alive means ready
                };
                c.ready = ok;
                c.ever_ready |= ok;
                let period = probe.period_seconds.unwrap_or(10).clamp(1, 10) as u64;
                // Until the first success, probe often: a fresh process is
                // usually listening within milliseconds, and endpoints wait.
                c.next_probe = Instant::now()
                    + if ok {
                        Duration::from_secs(period)
                    } else if c.ever_ready {
                        Duration::from_secs(1)
                    } else {
                        Duration::from_millis(10)
                    };
            }
            // Report.
            let status = pod_status(&ctrs, ip, node_ip, &start_time);
            if status != last_status {
                match api
                    .patch_status(
                        &name,
                        &PatchParams::default(),
                        &Patch::Merge(json!({"status": status})),
                    )
                    .await
                {
                    Ok(_) => last_status = status,
                    Err(kube::Error::Api(e)) if e.code == 404 => break,
                    Err(e) => tracing::debug!(pod = %name, error = %e, "status"),
                }
            }
            // Wait for the next thing.
            let next = ctrs
                .iter()
                .filter(|c| !c.done)
                .flat_map(|c| {
                    let restart = (c.pid.is_none()).then_some(c.next_start);
                    let probe = (c.pid.is_some() && c.spec.readiness_probe.is_some())
                        .then_some(c.next_probe);
                    restart.into_iter().chain(probe)
                })
                .min()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            let retry = if last_status != pod_status(&ctrs, ip, node_ip, &start_time) {
                Instant::now() + Duration::from_millis(500)
            } else {
                next
            };
            tokio::select! {
                _ = stop.changed() => break,
                _ = tokio::time::sleep_until(retry) => {}
                Some((i, generation, code)) = exit_rx.recv() => {
                    if let Some(c) = ctrs.get_mut(i).filter(|c| c.generation == generation) {
                        c.pid = None;
                        c.ready = false;
                        c.last_exit = code.or(Some(137));
                        let restart = match restart_policy.as_str() {
                            "Never" => false,
                            "OnFailure" => code != Some(0),
                            _ => true,
                        };
                        if restart {
                            c.next_start = Instant::now() + c.backoff;
                            c.backoff = (c.backoff * 2).min(Duration::from_secs(30));
                        } else {
                            c.done = true;
                        }
                    }
                }
            }
        }

        // Teardown.
        let grace = spec
            .termination_grace_period_seconds
            .unwrap_or(2)
            .clamp(0, 2) as u64;
        let pids: Vec<i32> = ctrs.iter().filter_map(|c| c.pid).collect();
        for pid in &pids {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(*pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let deadline = Instant::now() + Duration::from_secs(grace);
        let mut alive = pids.len();
        while alive > 0 {
            match tokio::time::timeout_at(deadline, exit_rx.recv()).await {
                Ok(Some(_)) => alive -= 1,
                _ => break,
            }
        }
        for pid in &pids {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(*pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let containers: Vec<RuncContainer> =
            ctrs.iter_mut().filter_map(|c| c.runc.take()).collect();
        if !containers.is_empty() {
            let (cluster, uid) = (self.plan.name.clone(), pod.uid().unwrap_or_default());
            let _ = tokio::task::spawn_blocking(move || {
                containers.iter().for_each(RuncContainer::remove);
                runc::remove_pod_volumes(&cluster, &uid);
            })
            .await;
        }
        if !host_net {
            let netns2 = netns.clone();
            let _ = tokio::task::spawn_blocking(move || crate::net::delete_netns(&netns2)).await;
            self.free_ip(k, ip);
        }
        let _ = std::fs::remove_file(&record_path);
        // Dropping `stop` closes the channel: the reconcile loop sees it.
    }

    /// The image a container runs from under runc, when the cluster runs
    /// runc and its store has the image.
    fn runc_image(&self, c: &Container) -> Option<Image> {
        if self.plan.runtime != crate::oci::Runtime::Runc {
            return None;
        }
        let dir = store::store_dir(&crate::state::cluster_dir(&self.plan.name));
        store::lookup(&dir, c.image.as_deref()?)
    }

    /// The container's environment. Under runc (`image_env` given) it
    /// starts from the image's `Env` instead of the host's PATH and HOME,
    /// and has no FERRY_STATE_DIR (the pod's volumes hold its state).
    fn container_env(
        &self,
        c: &Container,
        pod: &Pod,
        ip: Ipv4Addr,
        node_ip: Ipv4Addr,
        k: u32,
        image_env: Option<&[String]>,
    ) -> Vec<(String, String)> {
        let mut env = vec![
            (
                "PATH".to_string(),
                std::env::var("PATH").unwrap_or_else(|_| {
                    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()
                }),
            ),
            ("HOME".into(), "/root".into()),
            ("HOSTNAME".into(), pod.name_any()),
            ("POD_NAME".into(), pod.name_any()),
            ("POD_NAMESPACE".into(), pod.namespace().unwrap_or_default()),
            ("POD_IP".into(), ip.to_string()),
            ("NODE_NAME".into(), self.plan.node_name(k)),
            (
                "KUBECONFIG".into(),
                self.kubeconfig.to_string_lossy().into_owned(),
            ),
            ("FERRY_SANDBOX".into(), self.plan.name.clone()),
            // Node-local state (the gateway's private key): what a hostPath
            // such as /var/lib/ferry is on a real node, removed with the sandbox.
            (
                "FERRY_STATE_DIR".into(),
                crate::state::cluster_dir(&self.plan.name)
                    .join("nodes")
                    .join(self.plan.node_name(k))
                    .to_string_lossy()
                    .into_owned(),
            ),
        ];
        if let Some(image_env) = image_env {
            let host_only = ["PATH", "HOME", "FERRY_STATE_DIR"];
            env.retain(|(k, _)| !host_only.contains(&k.as_str()));
            let from_image = image_env.iter().filter_map(|e| e.split_once('='));
            env.splice(
                0..0,
                from_image.map(|(k, v)| (k.to_string(), v.to_string())),
            );
        }
        if let Ok(v) = std::env::var("RUST_LOG") {
            env.push(("RUST_LOG".into(), v));
        }
        for e in c.env.iter().flatten() {
            let value = match (&e.value, &e.value_from) {
                (Some(v), _) => Some(v.clone()),
                (None, Some(from)) => {
                    from.field_ref
                        .as_ref()
                        .and_then(|f| match f.field_path.as_str() {
                            "metadata.name" => Some(pod.name_any()),
                            "metadata.namespace" => pod.namespace(),
                            "status.podIP" => Some(ip.to_string()),
                            "status.hostIP" => Some(node_ip.to_string()),
                            "spec.nodeName" => Some(self.plan.node_name(k)),
                            _ => None,
                        })
                }
                (None, None) => Some(String::new()),
            };
            if let Some(v) = value {
                env.retain(|(k, _)| k != &e.name);
                env.push((e.name.clone(), v));
            }
        }
        env
    }
}

fn spawn_container(
    netns: &str,
    argv: &[String],
    env: &[(String, String)],
    log: &std::path::Path,
) -> std::io::Result<tokio::process::Child> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let err = out.try_clone()?;
    tokio::process::Command::new("ip")
        .args(["netns", "exec", netns])
        .args(argv)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
}

fn pod_status(ctrs: &[Ctr], ip: Ipv4Addr, node_ip: Ipv4Addr, start: &str) -> Value {
    let all_running = ctrs.iter().all(|c| c.pid.is_some());
    let all_ready = ctrs.iter().all(|c| c.pid.is_some() && c.ready);
    let all_done = ctrs.iter().all(|c| c.done);
    let phase = if all_done {
        if ctrs.iter().all(|c| c.last_exit == Some(0)) {
            "Succeeded"
        } else {
            "Failed"
        }
    } else if all_running || ctrs.iter().any(|c| c.last_exit.is_some()) {
        "Running"
    } else {
        "Pending"
    };
    let b = |v: bool| if v { "True" } else { "False" };
    let statuses: Vec<Value> = ctrs
        .iter()
        .map(|c| {
            let state = match (c.pid, c.argv.is_some()) {
                (Some(_), _) => json!({"running": {"startedAt": c.started_at}}),
                (None, _) if c.start_error.is_some() => json!({"waiting": {"reason": "CreateContainerError", "message": c.start_error}}),
                (None, false) => json!({"waiting": {"reason": "NoCommand", "message": "container has no command and its image is not ferry's"}}),
                (None, true) if c.done => json!({"terminated": {"exitCode": c.last_exit.unwrap_or(0)}}),
                (None, true) if c.last_exit.is_some() => json!({"waiting": {"reason": "CrashLoopBackOff", "message": format!("last exit code {}", c.last_exit.unwrap_or(0))}}),
                (None, true) => json!({"waiting": {"reason": "ContainerCreating"}}),
            };
            json!({
                "name": c.spec.name,
                "image": c.spec.image.clone().unwrap_or_default(),
                "imageID": c.image.as_ref().map(|i| i.digest.clone()).unwrap_or_default(),
                "containerID": match (&c.runc, c.pid) {
                    (Some(r), Some(_)) => Some(format!("runc://{}", r.id)),
                    (None, Some(p)) => Some(format!("sandbox://{p}")),
                    _ => None,
                },
                "ready": c.pid.is_some() && c.ready,
                "started": c.pid.is_some(),
                "restartCount": c.restarts,
                "state": state,
            })
        })
        .collect();
    json!({
        "phase": phase,
        "podIP": ip.to_string(),
        "podIPs": [{"ip": ip.to_string()}],
        "hostIP": node_ip.to_string(),
        "hostIPs": [{"ip": node_ip.to_string()}],
        "startTime": start,
        "conditions": [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Initialized", "status": "True"},
            {"type": "ContainersReady", "status": b(all_ready)},
            {"type": "Ready", "status": b(all_ready)},
        ],
        "containerStatuses": statuses,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_resolution() {
        let cfg = RunnerConfig {
            ferry_exe: "/usr/bin/ferry".into(),
            ferry_image: "ferry".into(),
        };
        let c: Container = serde_json::from_value(json!({
            "name": "a", "image": "ghcr.io/ferry-dev/ferry:0.1", "args": ["tools", "http-echo"]
        }))
        .unwrap();
        assert_eq!(
            container_argv(&c, &cfg).unwrap(),
            ["/usr/bin/ferry", "tools", "http-echo"]
        );
        let c: Container = serde_json::from_value(json!({
            "name": "a", "image": "busybox", "command": ["sleep"], "args": ["10"]
        }))
        .unwrap();
        assert_eq!(container_argv(&c, &cfg).unwrap(), ["sleep", "10"]);
        let c: Container = serde_json::from_value(json!({
            "name": "a", "image": "ferry:0.1.0", "command": ["ferry-dns"], "args": ["--listen", "0.0.0.0:53"]
        }))
        .unwrap();
        assert_eq!(
            container_argv(&c, &cfg).unwrap(),
            ["/usr/bin/ferry-dns", "--listen", "0.0.0.0:53"]
        );
        // A ferry binary without its per-daemon siblings runs the subcommand.
        let dir = std::env::temp_dir().join(format!("ferry-argv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let alone = RunnerConfig {
            ferry_exe: dir.join("ferry"),
            ferry_image: "ferry".into(),
        };
        std::fs::write(&alone.ferry_exe, b"").unwrap();
        let c: Container = serde_json::from_value(json!({
            "name": "a", "image": "ferry:0.1.0", "command": ["ferry-route-agent"], "args": ["--x"]
        }))
        .unwrap();
        let exe = alone.ferry_exe.to_string_lossy().into_owned();
        assert_eq!(
            container_argv(&c, &alone).unwrap(),
            [exe.as_str(), "route-agent", "--x"]
        );
        // A sibling from the same build is used; one left from an older
        // build is not (it would run old code).
        let sibling = dir.join("ferry-route-agent");
        std::fs::write(&sibling, b"").unwrap();
        let sib = sibling.to_string_lossy().into_owned();
        assert_eq!(container_argv(&c, &alone).unwrap(), [sib.as_str(), "--x"]);
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3 * 3600);
        std::fs::File::options()
            .write(true)
            .open(&sibling)
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert_eq!(
            container_argv(&c, &alone).unwrap(),
            [exe.as_str(), "route-agent", "--x"]
        );
        std::fs::remove_dir_all(&dir).unwrap();
        let c: Container = serde_json::from_value(json!({"name": "a", "image": "nginx"})).unwrap();
        assert!(container_argv(&c, &cfg).is_none());
        assert_eq!(
            image_repository("docker.io/library/nginx:1.27@sha256:abc"),
            "nginx"
        );
    }
}
