//! A pod's container as an OCI runtime spec (`config.json` for `runc`),
//! decided as a Kubernetes node's runtime decides it: the process from
//! command/args over the image's Entrypoint/Cmd; user and group from the
//! securityContext over the image's `User`; containerd's default
//! capabilities plus `add` minus `drop` (all of them when privileged;
//! a non-root process loses them at exec, as on a node); read-only root
//! file system, /proc/sys read-only and the kernel's sensitive paths masked
//! unless privileged; the pod's sysctls inside its network namespace; CPU
//! and memory limits as cgroup settings.

use std::collections::BTreeMap;
use std::path::PathBuf;

use k8s_openapi::api::core::v1::{Container, Pod, SecurityContext};
use serde_json::{Value, json};

use super::store::Image;
use crate::{Error, Result};

/// containerd's default capability set for a container.
pub const DEFAULT_CAPABILITIES: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability runc 1.1 knows (what `privileged` and `add: [ALL]`
/// give), in the kernel's order: the index is the capability's number.
pub const ALL_CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// What the securityContext and the image decide about the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Security {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// `CAP_…` names, sorted.
    pub capabilities: Vec<String>,
    pub privileged: bool,
    pub read_only_root: bool,
    pub no_new_privileges: bool,
    pub sysctls: BTreeMap<String, String>,
}

/// A bind mount of a volume or a sandbox file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Host path.
    pub source: PathBuf,
    pub destination: String,
    pub read_only: bool,
}

/// Everything [`render`] needs besides [`Security`].
#[derive(Debug, Clone)]
pub struct Inputs {
    pub argv: Vec<String>,
    /// `KEY=VALUE`.
    pub env: Vec<String>,
    pub cwd: String,
    pub rootfs: PathBuf,
    /// `/run/netns/NAME` of the pod (or, for hostNetwork, the node).
    pub netns_path: String,
    /// None for hostNetwork pods (they share the node's UTS namespace).
    pub hostname: Option<String>,
    pub mounts: Vec<Mount>,
    pub cgroups_path: String,
    pub resources: Value,
}

fn config_err(c: &Container, reason: impl Into<String>) -> Error {
    Error::ContainerConfig {
        container: c.name.clone(),
        reason: reason.into(),
    }
}

/// The process's argv: `command` replaces the image's Entrypoint (and drops
/// its Cmd), `args` replaces Cmd.
pub fn argv(c: &Container, image: &Image) -> Result<Vec<String>> {
    let command = c.command.clone().filter(|v| !v.is_empty());
    let args = c.args.clone().filter(|v| !v.is_empty());
    let mut argv = command
        .clone()
        .unwrap_or_else(|| image.config.entrypoint.clone());
    match (args, command) {
        (Some(a), _) => argv.extend(a),
        (None, None) => argv.extend(image.config.cmd.iter().cloned()),
        (None, Some(_)) => {}
    }
    if argv.is_empty() {
        return Err(config_err(c, "no command specified"));
    }
    Ok(argv)
}

/// uid and gid of a user (`NAME`, `UID`, `NAME:GROUP`, `UID:GID`) from the
/// image's /etc/passwd and /etc/group text.
fn resolve_user(user: &str, passwd: &str, group: &str) -> Option<(u32, Option<u32>)> {
    if user.is_empty() {
        return Some((0, Some(0)));
    }
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let field = |text: &str, name: &str, i: usize| -> Option<u32> {
        text.lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.first() == Some(&name))
            .and_then(|f| f.get(i)?.parse().ok())
    };
    let uid = u.parse().ok().or_else(|| field(passwd, u, 2))?;
    let gid = match g {
        Some(g) => Some(g.parse().ok().or_else(|| field(group, g, 2))?),
        None => passwd
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.get(2).and_then(|s| s.parse().ok()) == Some(uid))
            .and_then(|f| f.get(3)?.parse().ok()),
    };
    Some((uid, gid))
}

fn cap_name(k8s: &str) -> String {
    let upper = k8s.to_ascii_uppercase();
    if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    }
}

fn capabilities(sc: Option<&SecurityContext>, privileged: bool) -> Vec<String> {
    if privileged {
        return ALL_CAPABILITIES.iter().map(|c| c.to_string()).collect();
    }
    let caps = sc.and_then(|s| s.capabilities.as_ref());
    let list = |v: Option<&Vec<String>>| -> Vec<String> {
        v.into_iter().flatten().map(|c| cap_name(c)).collect()
    };
    let (add, drop) = (
        list(caps.and_then(|c| c.add.as_ref())),
        list(caps.and_then(|c| c.drop.as_ref())),
    );
    let mut set: Vec<String> = if add.iter().any(|c| c == "CAP_ALL") {
        ALL_CAPABILITIES.iter().map(|c| c.to_string()).collect()
    } else {
        DEFAULT_CAPABILITIES
            .iter()
            .map(|c| c.to_string())
            .chain(add)
            .collect()
    };
    if drop.iter().any(|c| c == "CAP_ALL") {
        // `drop: [ALL]` keeps only what `add` names.
        let added = list(caps.and_then(|c| c.add.as_ref()));
        set.retain(|c| added.contains(c));
    } else {
        set.retain(|c| !drop.contains(c));
    }
    set.sort();
    set.dedup();
    set
}

/// Decides user, groups and privileges of container `c` of `pod`, from the
/// securityContexts and the image's user (`passwd`/`group`: the image's
/// /etc files, empty when absent).
pub fn security(
    pod: &Pod,
    c: &Container,
    image: &Image,
    passwd: &str,
    group: &str,
) -> Result<Security> {
    let psc = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    let sc = c.security_context.as_ref();
    let (image_uid, image_gid) =
        resolve_user(&image.config.user, passwd, group).ok_or_else(|| {
            config_err(
                c,
                format!(
                    "the image's user {:?} is not in its /etc/passwd",
                    image.config.user
                ),
            )
        })?;
    let run_as_user = sc
        .and_then(|s| s.run_as_user)
        .or(psc.and_then(|s| s.run_as_user));
    let uid = match run_as_user {
        Some(u) => u32::try_from(u).map_err(|_| config_err(c, format!("runAsUser {u}")))?,
        None => image_uid,
    };
    let run_as_group = sc
        .and_then(|s| s.run_as_group)
        .or(psc.and_then(|s| s.run_as_group));
    let gid = match run_as_group {
        Some(g) => u32::try_from(g).map_err(|_| config_err(c, format!("runAsGroup {g}")))?,
        None if run_as_user.is_none() => image_gid.unwrap_or(0),
        None => resolve_user(&uid.to_string(), passwd, group)
            .and_then(|(_, g)| g)
            .unwrap_or(0),
    };
    let non_root = sc
        .and_then(|s| s.run_as_non_root)
        .or(psc.and_then(|s| s.run_as_non_root))
        .unwrap_or(false);
    if non_root && uid == 0 {
        return Err(config_err(
            c,
            "container has runAsNonRoot and image will run as root",
        ));
    }
    let mut additional_gids: Vec<u32> = psc
        .and_then(|s| s.supplemental_groups.clone())
        .unwrap_or_default()
        .into_iter()
        .chain(psc.and_then(|s| s.fs_group))
        .filter_map(|g| u32::try_from(g).ok())
        .collect();
    additional_gids.sort_unstable();
    additional_gids.dedup();
    let privileged = sc.and_then(|s| s.privileged).unwrap_or(false);
    let sysctls = psc
        .and_then(|s| s.sysctls.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|s| (s.name, s.value))
        .collect();
    Ok(Security {
        uid,
        gid,
        additional_gids,
        capabilities: capabilities(sc, privileged),
        privileged,
        read_only_root: sc
            .and_then(|s| s.read_only_root_filesystem)
            .unwrap_or(false),
        no_new_privileges: sc.and_then(|s| s.allow_privilege_escalation) == Some(false)
            && !privileged,
        sysctls,
    })
}

/// Parses a Kubernetes quantity (`250m`, `2`, `64Mi`, `1G`, `1e3`) as a
/// number of units (CPUs or bytes).
pub fn quantity(q: &str) -> Option<f64> {
    let q = q.trim();
    let suffixes: [(&str, f64); 13] = [
        ("Ki", 1024.0),
        ("Mi", 1024.0 * 1024.0),
        ("Gi", 1024.0 * 1024.0 * 1024.0),
        ("Ti", 1024.0_f64.powi(4)),
        ("Pi", 1024.0_f64.powi(5)),
        ("Ei", 1024.0_f64.powi(6)),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
    ];
    for (s, mult) in suffixes {
        if let Some(n) = q.strip_suffix(s) {
            return n.parse::<f64>().ok().map(|n| n * mult);
        }
    }
    q.parse().ok()
}

/// The cgroup settings of the container's requests and limits (cpu:
/// shares from the request, quota from the limit; memory: the limit).
pub fn resources(c: &Container) -> Value {
    let r = c.resources.as_ref();
    let get =
        |m: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
         k: &str| { m.and_then(|m| m.get(k)).and_then(|q| quantity(&q.0)) };
    let limits = r.and_then(|r| r.limits.as_ref());
    let requests = r.and_then(|r| r.requests.as_ref());
    let mut out = json!({
        "devices": [{"allow": false, "access": "rwm"}],
    });
    let mut cpu = serde_json::Map::new();
    if let Some(req) = get(requests, "cpu").or(get(limits, "cpu")) {
        cpu.insert("shares".into(), json!(((req * 1024.0) as u64).max(2)));
    }
    if let Some(lim) = get(limits, "cpu") {
        cpu.insert("quota".into(), json!(((lim * 100_000.0) as i64).max(1000)));
        cpu.insert("period".into(), json!(100_000));
    }
    if !cpu.is_empty() {
        out["cpu"] = Value::Object(cpu);
    }
    if let Some(mem) = get(limits, "memory") {
        out["memory"] = json!({"limit": mem as i64});
    }
    out
}

const MASKED_PATHS: [&str; 10] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
];
const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

fn mounts(inputs: &Inputs, sec: &Security) -> Vec<Value> {
    let sys_mode = if sec.privileged { "rw" } else { "ro" };
    let mut out = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc"}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
               "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
               "options": ["nosuid", "noexec", "nodev", sys_mode]}),
    ];
    if sec.privileged {
        // A privileged container sees the host's devices; the one ferry's
        // gateway needs is the TUN device of its WireGuard cable.
        out.push(json!({"destination": "/dev/net/tun", "type": "bind",
                        "source": "/dev/net/tun", "options": ["bind", "rw"]}));
    }
    for m in &inputs.mounts {
        let ro = if m.read_only { "ro" } else { "rw" };
        out.push(json!({"destination": m.destination, "type": "bind",
                        "source": m.source, "options": ["rbind", "rprivate", ro]}));
    }
    out
}

/// The runtime spec (`config.json`).
pub fn render(inputs: &Inputs, sec: &Security) -> Value {
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "mount"}),
        json!({"type": "network", "path": inputs.netns_path}),
    ];
    if inputs.hostname.is_some() {
        namespaces.push(json!({"type": "uts"}));
    }
    let mut resources = inputs.resources.clone();
    if sec.privileged {
        resources["devices"] = json!([{"allow": true, "access": "rwm"}]);
    }
    let mut linux = json!({
        "namespaces": namespaces,
        "cgroupsPath": inputs.cgroups_path,
        "resources": resources,
        "sysctl": sec.sysctls,
    });
    if !sec.privileged {
        linux["maskedPaths"] = json!(MASKED_PATHS);
        linux["readonlyPaths"] = json!(READONLY_PATHS);
    }
    let mut spec = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": sec.uid, "gid": sec.gid, "additionalGids": sec.additional_gids},
            "args": inputs.argv,
            "env": inputs.env,
            "cwd": inputs.cwd,
            "capabilities": {
                "bounding": sec.capabilities,
                "effective": sec.capabilities,
                "permitted": sec.capabilities,
            },
            "noNewPrivileges": sec.no_new_privileges,
        },
        "root": {"path": inputs.rootfs, "readonly": sec.read_only_root},
        "mounts": mounts(inputs, sec),
        "linux": linux,
    });
    if let Some(h) = &inputs.hostname {
        spec["hostname"] = json!(h);
    }
    spec
}

#[cfg(test)]
mod tests;
