//! On-disk state: one directory per cluster under `/run/ferry/sandbox`
//! (override with `FERRY_SANDBOX_STATE_DIR`), holding `cluster.json` (the
//! plan, written before anything else is created), `supervisor.pid`,
//! `supervisor.log`, `ready`, the API server's data directory, per-pod
//! records (`pods/NS_NAME.json`) and container logs (`logs/NS_NAME/C.log`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::plan::Plan;
use crate::{Error, Result};

/// The root of all sandbox state.
pub fn root() -> PathBuf {
    std::env::var_os("FERRY_SANDBOX_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run/ferry/sandbox"))
}

/// One cluster's state directory.
pub fn cluster_dir(name: &str) -> PathBuf {
    root().join(name)
}

pub fn plan_path(name: &str) -> PathBuf {
    cluster_dir(name).join("cluster.json")
}
pub fn pid_path(name: &str) -> PathBuf {
    cluster_dir(name).join("supervisor.pid")
}
pub fn ready_path(name: &str) -> PathBuf {
    cluster_dir(name).join("ready")
}
pub fn log_path(name: &str) -> PathBuf {
    cluster_dir(name).join("supervisor.log")
}
pub fn apiserver_dir(name: &str) -> PathBuf {
    cluster_dir(name).join("apiserver")
}
/// The admin kubeconfig the API server writes.
pub fn kubeconfig_path(name: &str) -> PathBuf {
    apiserver_dir(name).join("admin.kubeconfig")
}
pub fn pods_dir(name: &str) -> PathBuf {
    cluster_dir(name).join("pods")
}
pub fn pod_record_path(name: &str, ns: &str, pod: &str) -> PathBuf {
    pods_dir(name).join(format!("{ns}_{pod}.json"))
}
pub fn pod_logs_dir(name: &str, ns: &str, pod: &str) -> PathBuf {
    cluster_dir(name).join("logs").join(format!("{ns}_{pod}"))
}

/// What the runner records about a running pod, for `exec` and `logs`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PodRecord {
    pub namespace: String,
    pub name: String,
    pub netns: String,
    pub ip: String,
    pub node: String,
}

pub fn write_file(path: &Path, data: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("creating", dir, e))?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data).map_err(|e| Error::io("writing", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io("renaming", path, e))
}

pub fn save_plan(plan: &Plan) -> Result<()> {
    write_file(&plan_path(&plan.name), &serde_json::to_vec_pretty(plan)?)
}

pub fn load_plan(name: &str) -> Result<Plan> {
    let p = plan_path(name);
    let data = std::fs::read(&p).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::NotFound(format!("no sandbox cluster named {name:?}"))
        } else {
            Error::io("reading", &p, e)
        }
    })?;
    Ok(serde_json::from_slice(&data)?)
}

/// Names of all clusters with a state directory (sorted).
pub fn cluster_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root())
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

/// Plans of all clusters whose cluster.json is readable.
pub fn plans() -> Vec<Plan> {
    cluster_names()
        .iter()
        .filter_map(|n| load_plan(n).ok())
        .collect()
}

pub fn read_pid(name: &str) -> Option<i32> {
    std::fs::read_to_string(pid_path(name))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// All pod records of a cluster.
pub fn pod_records(name: &str) -> Vec<PodRecord> {
    std::fs::read_dir(pods_dir(name))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read(e.path()).ok())
        .filter_map(|d| serde_json::from_slice(&d).ok())
        .collect()
}
