//! The user-facing operations: create, delete (one or all, including the
//! leftovers of a killed create), list, and finding exec targets and logs.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::plan::{Cidr, MAX_CLUSTERS, PREFIX, Plan, validate_name};
use crate::{Error, Result, net, state};

/// Options of `ferry sandbox create`.
#[derive(Debug, Clone)]
pub struct CreateOptions {
    pub name: String,
    pub nodes: u32,
    pub pod_cidr: Option<Cidr>,
    pub service_cidr: Option<Cidr>,
    /// Where `clusterset.local` is forwarded (host:port).
    pub dns_upstream: Option<String>,
    /// Put the nodes behind a NAT router doing this.
    pub nat: Option<crate::plan::NatMode>,
    /// The `ferry` binary that runs the supervisor (and ferry-image pods).
    pub ferry_exe: PathBuf,
    /// Image repository whose containers run the local ferry binary.
    pub ferry_image: String,
    /// How long to wait for the cluster to come up.
    pub timeout: Duration,
    /// How pods' containers run.
    pub runtime: crate::oci::Runtime,
    /// OCI image archives or layout directories for the `runc` runtime's
    /// store.
    pub images: Vec<PathBuf>,
    /// The CNI the cluster is shaped like.
    pub cni: crate::plan::SandboxCni,
}

fn used_indices() -> Vec<u32> {
    let mut used: Vec<u32> = state::plans().iter().map(|p| p.index).collect();
    for l in net::host_links() {
        if let Some(rest) = l.strip_prefix(PREFIX) {
            let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
            if let Ok(i) = digits.parse() {
                used.push(i);
            }
        }
    }
    used
}

/// Creates a cluster and waits until its supervisor reports ready.
pub fn create(opts: &CreateOptions) -> Result<Plan> {
    validate_name(&opts.name)?;
    if !nix::unistd::Uid::effective().is_root() {
        return Err(Error::Invalid(
            "ferry sandbox needs root (network namespaces, bridges, nftables)".into(),
        ));
    }
    let dir = state::cluster_dir(&opts.name);
    std::fs::create_dir_all(state::root()).map_err(|e| Error::io("creating", state::root(), e))?;
    // Concurrent creates must not pick the same index: hold a lock on the
    // state root from choosing the index until the plan is on disk.
    let lock_path = state::root().join(".lock");
    let lock_file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| Error::io("opening", &lock_path, e))?;
    let lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| Error::io("locking", &lock_path, e.into()))?;
    let used = used_indices();
    let index = (0..MAX_CLUSTERS)
        .find(|i| !used.contains(i))
        .ok_or_else(|| {
            Error::Invalid(format!("at most {MAX_CLUSTERS} sandbox clusters at once"))
        })?;
    let mut plan = Plan::new(
        &opts.name,
        index,
        opts.nodes,
        opts.pod_cidr,
        opts.service_cidr,
    )?
    .with_cni(opts.cni)?;
    if let Some(u) = &opts.dns_upstream {
        crate::dns::Upstream::parse(u)?;
    }
    plan.dns_upstream = opts.dns_upstream.clone();
    plan.nat = opts.nat;
    plan.runtime = opts.runtime;
    check_runtime(opts)?;
    for other in state::plans() {
        if other.name == plan.name {
            continue;
        }
        for (a, b) in [
            (plan.pod_cidr, other.pod_cidr),
            (plan.pod_cidr, other.service_cidr),
            (plan.service_cidr, other.pod_cidr),
            (plan.service_cidr, other.service_cidr),
        ] {
            if a.overlaps(&b) {
                tracing::warn!(cluster = %other.name, "{a} overlaps {b} of cluster {}", other.name);
            }
        }
    }
    // Claim the name atomically, then record the plan before making anything,
    // so that a create killed at any point can be swept by name.
    std::fs::create_dir(&dir).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Error::Invalid(format!("sandbox cluster {:?} already exists", opts.name))
        } else {
            Error::io("creating", &dir, e)
        }
    })?;
    state::save_plan(&plan)?;
    drop(lock);
    let result = (|| {
        import_images(&plan, opts)?;
        net::create_cluster_network(&plan)?;
        start_supervisor(&plan, opts)
    })();
    if let Err(e) = result {
        let _ = delete(&plan.name);
        return Err(e);
    }
    Ok(plan)
}

/// Refuses a runtime this machine cannot run, before anything is made.
fn check_runtime(opts: &CreateOptions) -> Result<()> {
    use crate::oci::Runtime;
    match opts.runtime {
        Runtime::Local if !opts.images.is_empty() => Err(Error::Invalid(
            "--image needs --runtime runc (the local runtime runs host programs)".into(),
        )),
        Runtime::Local => Ok(()),
        Runtime::Runc if opts.images.is_empty() => Err(Error::Invalid(
            "--runtime runc needs an image: build ferry's with scripts/image.sh and pass \
             --image target/image/ferry-VERSION.oci.tar"
                .into(),
        )),
        Runtime::Runc => match Command::new("runc").arg("--version").output() {
            Ok(o) if o.status.success() => Ok(()),
            _ => Err(Error::Invalid(
                "--runtime runc: runc is not installed (apt-get install runc)".into(),
            )),
        },
    }
}

fn import_images(plan: &Plan, opts: &CreateOptions) -> Result<()> {
    let store = crate::oci::store::store_dir(&state::cluster_dir(&plan.name));
    for image in &opts.images {
        let refs = crate::oci::store::import(&store, image)?;
        tracing::info!(image = %image.display(), refs = ?refs, "imported");
    }
    Ok(())
}

fn start_supervisor(plan: &Plan, opts: &CreateOptions) -> Result<()> {
    let log_path = state::log_path(&plan.name);
    let log = std::fs::File::create(&log_path).map_err(|e| Error::io("creating", &log_path, e))?;
    let log2 = log
        .try_clone()
        .map_err(|e| Error::io("opening", &log_path, e))?;
    let mut child = Command::new(&opts.ferry_exe)
        .args([
            "sandbox",
            "supervise",
            &plan.name,
            "--ferry-image",
            &opts.ferry_image,
        ])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log2))
        .spawn()
        .map_err(|e| Error::io("starting", &opts.ferry_exe, e))?;
    let deadline = Instant::now() + opts.timeout;
    loop {
        if state::ready_path(&plan.name).exists() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(Error::Command {
                command: format!(
                    "{} sandbox supervise {}",
                    opts.ferry_exe.display(),
                    plan.name
                ),
                message: format!("exited with {status}; log:\n{}", tail(&log_path)),
            });
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err(Error::Timeout(format!(
                "cluster {} not ready after {:?}; log:\n{}",
                plan.name,
                opts.timeout,
                tail(&log_path)
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn tail(path: &Path) -> String {
    let s = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

fn is_our_supervisor(pid: i32, name: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
        let args: Vec<&[u8]> = c.split(|b| *b == 0).collect();
        args.windows(3)
            .any(|w| w[0] == b"sandbox" && w[1] == b"supervise" && w[2] == name.as_bytes())
    })
}

fn stop_supervisor(name: &str) {
    if let Some(pid) = state::read_pid(name).filter(|p| is_our_supervisor(*p, name)) {
        stop_process(pid, name);
    }
}

/// Every running `ferry sandbox supervise NAME`, by pid, with its NAME.
fn running_supervisors() -> Vec<(i32, String)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            let name = args
                .windows(3)
                .find(|w| w[0] == b"sandbox" && w[1] == b"supervise")
                .map(|w| String::from_utf8_lossy(w[2]).into_owned())?;
            Some((pid, name))
        })
        .collect()
}

/// SIGTERM, then SIGKILL after 4 s, to supervisor `pid` of cluster `name`.
fn stop_process(pid: i32, name: &str) {
    let p = Pid::from_raw(pid);
    let _ = kill(p, Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(4);
    while Instant::now() < deadline && is_our_supervisor(pid, name) {
        std::thread::sleep(Duration::from_millis(20));
    }
    if is_our_supervisor(pid, name) {
        let _ = kill(p, Signal::SIGKILL);
    }
}

/// Deletes one cluster: supervisor, pods, namespaces, links, files.
pub fn delete(name: &str) -> Result<()> {
    let plan = state::load_plan(name);
    let dir = state::cluster_dir(name);
    if plan.is_err() && !dir.exists() {
        return Err(Error::NotFound(format!(
            "no sandbox cluster named {name:?}"
        )));
    }
    stop_supervisor(name);
    crate::oci::runc::sweep(name);
    let mut errors = Vec::new();
    if let Ok(plan) = &plan {
        errors = net::delete_cluster_network(plan);
    }
    net::remove_wan_if_unused();
    if let Err(e) = std::fs::remove_dir_all(&dir)
        && dir.exists()
    {
        errors.push(Error::io("removing", &dir, e));
    }
    match errors.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Deletes every cluster, then sweeps anything left with our prefix.
pub fn delete_all() -> Result<Vec<String>> {
    let names = state::cluster_names();
    let mut first_err = None;
    for n in &names {
        if let Err(e) = delete(n) {
            first_err.get_or_insert(e);
        }
    }
    // A supervisor whose state is gone (its run was killed mid-delete)
    // still holds its cluster's API address; nothing else can stop it.
    for (pid, name) in running_supervisors() {
        stop_process(pid, &name);
    }
    let sweep = net::sweep_all();
    if state::cluster_names().is_empty() {
        let _ = std::fs::remove_file(state::root().join(".lock"));
        let _ = std::fs::remove_dir(state::root());
    }
    if let Some(e) = first_err.or(sweep.into_iter().next()) {
        return Err(e);
    }
    Ok(names)
}

/// A cluster as `list` shows it.
#[derive(Debug, Clone)]
pub struct Listed {
    pub plan: Plan,
    pub running: bool,
    pub kubeconfig: PathBuf,
}

/// All clusters.
pub fn list() -> Vec<Listed> {
    state::plans()
        .into_iter()
        .map(|plan| Listed {
            running: state::read_pid(&plan.name).is_some_and(|p| is_our_supervisor(p, &plan.name)),
            kubeconfig: state::kubeconfig_path(&plan.name),
            plan,
        })
        .collect()
}

fn find_pod(name: &str, pod: &str) -> Result<state::PodRecord> {
    let (ns, pod_name) = match pod.split_once('/') {
        Some((ns, p)) => (Some(ns), p),
        None => (None, pod),
    };
    let matches: Vec<state::PodRecord> = state::pod_records(name)
        .into_iter()
        .filter(|r| r.name == pod_name && ns.is_none_or(|ns| ns == r.namespace))
        .collect();
    let n = matches.len();
    let mut it = matches.into_iter();
    match (it.next(), n) {
        (Some(one), 1) => Ok(one),
        (None, _) => Err(Error::NotFound(format!(
            "no running pod {pod:?} in sandbox cluster {name:?} (use NAMESPACE/POD or a node name)"
        ))),
        (Some(_), _) => Err(Error::Invalid(format!(
            "pod name {pod:?} is ambiguous: use NAMESPACE/POD"
        ))),
    }
}

/// The network namespace of a node (`NAME-nodeK`) or running pod
/// (`[NAMESPACE/]POD`).
pub fn exec_target(name: &str, target: &str) -> Result<String> {
    let plan = state::load_plan(name)?;
    if let Some(k) = plan.node_index(target) {
        return Ok(plan.node_netns(k));
    }
    Ok(find_pod(name, target)?.netns)
}

/// The logs of every container of a pod (running or not).
pub fn logs(name: &str, pod: &str) -> Result<String> {
    state::load_plan(name)?;
    let dir = match find_pod(name, pod) {
        Ok(r) => state::pod_logs_dir(name, &r.namespace, &r.name),
        Err(e) => {
            // A pod that is gone keeps its logs: search by name.
            let (ns, p) = pod.split_once('/').unwrap_or(("", pod));
            let root = state::cluster_dir(name).join("logs");
            let found = std::fs::read_dir(&root)
                .into_iter()
                .flatten()
                .flatten()
                .map(|d| d.path())
                .find(|d| {
                    d.file_name().is_some_and(|f| {
                        let f = f.to_string_lossy();
                        f.ends_with(&format!("_{p}"))
                            && (ns.is_empty() || f.starts_with(&format!("{ns}_")))
                    })
                });
            found.ok_or(e)?
        }
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| Error::io("reading", &dir, e))?
        .flatten()
        .map(|d| d.path())
        .collect();
    files.sort();
    let mut out = String::new();
    let many = files.len() > 1;
    for f in files {
        if many {
            out.push_str(&format!("==> {} <==\n", f.display()));
        }
        out.push_str(&std::fs::read_to_string(&f).map_err(|e| Error::io("reading", &f, e))?);
    }
    Ok(out)
}
