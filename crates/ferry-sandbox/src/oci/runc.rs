//! Running one container with `runc`: its bundle under the cluster's
//! `containers/ID` (config.json, /etc/hosts and /etc/hostname, a copy of
//! the cluster's kubeconfig readable by the container's user, and for a
//! writable root an overlay of the image's rootfs), `runc run` in the
//! foreground (it forwards signals and exits with the container), and the
//! clean-up of all of it, also after a killed supervisor.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use k8s_openapi::api::core::v1::{Container, Pod};
use kube::ResourceExt;

use super::spec::{self, Inputs, Mount};
use super::store::Image;
use crate::{Error, Result, state};

/// Where a runc container finds the cluster's kubeconfig (`KUBECONFIG`).
pub const KUBECONFIG_PATH: &str = "/var/run/secrets/ferry.dev/sandbox/kubeconfig";

/// `runc --root` of a cluster.
pub fn runc_root(cluster: &str) -> PathBuf {
    state::cluster_dir(cluster).join("runc")
}

fn containers_dir(cluster: &str) -> PathBuf {
    state::cluster_dir(cluster).join("containers")
}

fn pod_volumes_dir(cluster: &str, pod_uid: &str) -> PathBuf {
    state::cluster_dir(cluster).join("volumes").join(pod_uid)
}

/// A started container, to remove once it has exited.
#[derive(Debug, Clone)]
pub struct RuncContainer {
    pub id: String,
    cluster: String,
    bundle: PathBuf,
    overlay: bool,
}

/// What [`start`] needs about the container.
pub struct Request<'a> {
    pub cluster: &'a str,
    pub id: String,
    pub pod: &'a Pod,
    pub container: &'a Container,
    pub image: &'a Image,
    /// The pod's (or, hostNetwork, the node's) network namespace name.
    pub netns: &'a str,
    pub host_network: bool,
    pub node: String,
    pub ip: Ipv4Addr,
    /// The environment (`KUBECONFIG` is pointed at [`KUBECONFIG_PATH`]).
    pub env: Vec<(String, String)>,
    pub kubeconfig: &'a Path,
    pub log: &'a Path,
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |e| Error::io(what, path, e)
}

/// Writes the bundle and starts `runc run`; the child exits with the
/// container.
pub fn start(req: &Request<'_>) -> Result<(tokio::process::Child, RuncContainer)> {
    let c = req.container;
    let read = |f: &str| std::fs::read_to_string(req.image.rootfs.join(f)).unwrap_or_default();
    let mut sec = spec::security(
        req.pod,
        c,
        req.image,
        &read("etc/passwd"),
        &read("etc/group"),
    )?;
    if sec.privileged {
        // Privileged means every capability the runtime itself holds (as
        // containerd does); asking runc for more fails.
        let held = bounding_capabilities();
        sec.capabilities.retain(|c| held.contains(c));
    }
    let argv = spec::argv(c, req.image)?;
    let mounts = volume_mounts(req)?;
    let bundle = containers_dir(req.cluster).join(&req.id);
    let _ = std::fs::remove_dir_all(&bundle);
    std::fs::create_dir_all(&bundle).map_err(io("creating", &bundle))?;
    let container = RuncContainer {
        id: req.id.clone(),
        cluster: req.cluster.to_string(),
        bundle: bundle.clone(),
        overlay: !sec.read_only_root,
    };
    let made = (|| {
        let rootfs = if sec.read_only_root {
            req.image.rootfs.clone()
        } else {
            overlay(&req.image.rootfs, &bundle)?
        };
        let files = sandbox_files(req, &bundle, sec.uid, sec.gid)?;
        let hostname = (!req.host_network).then(|| req.pod.name_any());
        let env = req
            .env
            .iter()
            .map(|(k, v)| match k.as_str() {
                "KUBECONFIG" => format!("{k}={KUBECONFIG_PATH}"),
                _ => format!("{k}={v}"),
            })
            .collect();
        let cwd = c
            .working_dir
            .clone()
            .or(Some(req.image.config.working_dir.clone()))
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| "/".into());
        let inputs = Inputs {
            argv,
            env,
            cwd,
            rootfs,
            netns_path: format!("/run/netns/{}", req.netns),
            hostname,
            mounts: files.into_iter().chain(mounts).collect(),
            cgroups_path: format!("/ferry-sandbox/{}/{}", req.cluster, req.id),
            resources: spec::resources(c),
        };
        let config = bundle.join("config.json");
        let text = serde_json::to_vec_pretty(&spec::render(&inputs, &sec))?;
        std::fs::write(&config, text).map_err(io("writing", &config))?;
        spawn(req, &bundle)
    })();
    match made {
        Ok(child) => Ok((child, container)),
        Err(e) => {
            container.remove();
            Err(e)
        }
    }
}

fn spawn(req: &Request<'_>, bundle: &Path) -> Result<tokio::process::Child> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(req.log)
        .map_err(io("opening", req.log))?;
    let err = out.try_clone().map_err(io("opening", req.log))?;
    tokio::process::Command::new("runc")
        .arg("--root")
        .arg(runc_root(req.cluster))
        .args(["run", "--no-new-keyring", "--bundle"])
        .arg(bundle)
        .arg(&req.id)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .map_err(|e| Error::Command {
            command: format!("runc run {}", req.id),
            message: format!("{e} (install runc: apt-get install runc)"),
        })
}

/// The capabilities in this process's bounding set (`CapBnd` of
/// /proc/self/status), by name.
fn bounding_capabilities() -> Vec<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0);
    spec::ALL_CAPABILITIES
        .iter()
        .enumerate()
        .filter(|(bit, _)| mask & (1u64 << bit) != 0)
        .map(|(_, name)| name.to_string())
        .collect()
}

/// A writable root: an overlay of the image's rootfs, so each container
/// writes only its own upper directory (lost on restart, as on a node).
fn overlay(lower: &Path, bundle: &Path) -> Result<PathBuf> {
    let (upper, work, root) = (
        bundle.join("upper"),
        bundle.join("work"),
        bundle.join("rootfs"),
    );
    for d in [&upper, &work, &root] {
        std::fs::create_dir_all(d).map_err(io("creating", d))?;
    }
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
    );
    nix::mount::mount(
        Some("overlay"),
        &root,
        Some("overlay"),
        nix::mount::MsFlags::empty(),
        Some(data.as_str()),
    )
    .map_err(|e| Error::io("mounting an overlay on", &root, e.into()))?;
    Ok(root)
}

/// /etc/hosts, /etc/hostname, /etc/resolv.conf and the kubeconfig.
fn sandbox_files(req: &Request<'_>, bundle: &Path, uid: u32, gid: u32) -> Result<Vec<Mount>> {
    let name = req.pod.name_any();
    let hosts = bundle.join("hosts");
    let text = format!("127.0.0.1\tlocalhost\n::1\tlocalhost\n{}\t{name}\n", req.ip);
    std::fs::write(&hosts, text).map_err(io("writing", &hosts))?;
    let hostname = bundle.join("hostname");
    std::fs::write(&hostname, format!("{name}\n")).map_err(io("writing", &hostname))?;
    let netns_resolv = Path::new("/etc/netns").join(req.netns).join("resolv.conf");
    let resolv = if netns_resolv.exists() {
        netns_resolv
    } else {
        PathBuf::from("/etc/resolv.conf")
    };
    // A copy the container's user may read (the original is root's, 0600),
    // as a projected service-account token is.
    let kubeconfig = bundle.join("kubeconfig");
    std::fs::copy(req.kubeconfig, &kubeconfig).map_err(io("copying", req.kubeconfig))?;
    nix::unistd::chown(
        &kubeconfig,
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
    )
    .map_err(|e| Error::io("chown", &kubeconfig, e.into()))?;
    let bind = |source: PathBuf, destination: &str| Mount {
        source,
        destination: destination.to_string(),
        read_only: true,
    };
    Ok(vec![
        bind(hosts, "/etc/hosts"),
        bind(hostname, "/etc/hostname"),
        bind(resolv, "/etc/resolv.conf"),
        bind(kubeconfig, KUBECONFIG_PATH),
    ])
}

/// The container's volumeMounts as bind mounts: emptyDir from the pod's
/// directory under the sandbox state, hostPath from the node's directory
/// there (`nodes/NODE/hostpath/PATH`: never the host's own path).
fn volume_mounts(req: &Request<'_>) -> Result<Vec<Mount>> {
    let c = req.container;
    let volumes = req
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.clone())
        .unwrap_or_default();
    let mut out = Vec::new();
    for vm in c.volume_mounts.iter().flatten() {
        let refuse = |reason: String| Error::ContainerConfig {
            container: c.name.clone(),
            reason,
        };
        let v = volumes
            .iter()
            .find(|v| v.name == vm.name)
            .ok_or_else(|| refuse(format!("volumeMount {:?} names no volume", vm.name)))?;
        let dir = if v.empty_dir.is_some() {
            let uid = req.pod.uid().unwrap_or_default();
            let d = pod_volumes_dir(req.cluster, &uid).join(&v.name);
            std::fs::create_dir_all(&d).map_err(io("creating", &d))?;
            // emptyDir is world-writable, as kubelet makes it.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777))
                .map_err(io("chmod", &d))?;
            d
        } else if let Some(hp) = &v.host_path {
            let d = state::cluster_dir(req.cluster)
                .join("nodes")
                .join(&req.node)
                .join("hostpath")
                .join(hp.path.trim_start_matches('/'));
            let is_file = matches!(hp.type_.as_deref(), Some("File" | "FileOrCreate"));
            let mk = if is_file {
                d.parent()
            } else {
                Some(d.as_path())
            };
            if let Some(mk) = mk {
                std::fs::create_dir_all(mk).map_err(io("creating", mk))?;
            }
            if is_file && !d.exists() {
                std::fs::write(&d, b"").map_err(io("creating", &d))?;
            }
            d
        } else {
            return Err(refuse(format!(
                "volume {:?}: the sandbox's runc runtime mounts only emptyDir and hostPath volumes",
                v.name
            )));
        };
        let source = match vm.sub_path.as_deref().filter(|s| !s.is_empty()) {
            Some(sub) if !sub.split('/').any(|p| p == "..") => dir.join(sub),
            Some(sub) => return Err(refuse(format!("subPath {sub:?} leaves its volume"))),
            None => dir,
        };
        out.push(Mount {
            source,
            destination: vm.mount_path.clone(),
            read_only: vm.read_only.unwrap_or(false),
        });
    }
    Ok(out)
}

/// Removes a pod's emptyDir volumes (when the pod is gone).
pub fn remove_pod_volumes(cluster: &str, pod_uid: &str) {
    if !pod_uid.is_empty() {
        let _ = std::fs::remove_dir_all(pod_volumes_dir(cluster, pod_uid));
    }
}

impl RuncContainer {
    /// `runc delete --force` (kills what is left), then the overlay and the
    /// bundle. Errors are ignored: the container may be gone already.
    pub fn remove(&self) {
        let _ = Command::new("runc")
            .arg("--root")
            .arg(runc_root(&self.cluster))
            .args(["delete", "--force", &self.id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if self.overlay {
            let _ = nix::mount::umount2(
                &self.bundle.join("rootfs"),
                nix::mount::MntFlags::MNT_DETACH,
            );
        }
        let _ = std::fs::remove_dir_all(&self.bundle);
    }
}

/// Removes every container of a cluster and their cgroups (after its
/// supervisor is gone; a killed one leaves containers running).
pub fn sweep(cluster: &str) {
    for e in std::fs::read_dir(containers_dir(cluster))
        .into_iter()
        .flatten()
        .flatten()
    {
        let id = e.file_name().to_string_lossy().into_owned();
        RuncContainer {
            id,
            cluster: cluster.to_string(),
            bundle: e.path(),
            overlay: e.path().join("upper").exists(),
        }
        .remove();
    }
    for ctrl in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let dir = ctrl.path().join("ferry-sandbox").join(cluster);
        for sub in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let _ = std::fs::remove_dir(sub.path());
        }
        let _ = std::fs::remove_dir(&dir);
        let _ = std::fs::remove_dir(ctrl.path().join("ferry-sandbox"));
    }
}
