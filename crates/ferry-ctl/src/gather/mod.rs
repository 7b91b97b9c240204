//! `ferry gather` (Submariner's `subctl gather`): a support bundle per
//! cluster — a directory and its `.tar.gz` — with every ferry object of
//! the cluster and of its broker ([`objects`]), the logs of every ferry pod,
//! per node the state ferry programs (addresses and links, ferry's routing
//! tables and rules, ferry's nftables tables, the gateway's cables: remote
//! cluster, bytes, last handshake, never a key), and an HTML summary page
//! ([`html`]) linking every file.
//!
//! Secret values are left out unless asked for. Whatever cannot be read (an
//! unreachable cluster or broker, a dead node, a pod without logs) is noted
//! in the bundle and on the page, never fatal. How node state and logs are
//! reached is the caller's [`NodeAccess`]: the `ferry` binary knows sandbox
//! nodes (network namespaces); on a real cluster logs come from the pods/log
//! API and node state is noted as not collected.
//!
//! It is not `ferry show` (tables of what clusters know) nor `ferry
//! diagnose` (active checks): it copies state, it judges nothing.

pub mod html;
pub mod objects;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, DynamicObject, LogParams};
use serde_json::{Value, json};

use crate::target::{Target, TargetSpec};
use crate::{Error, Result};
use objects::{Kind, MEMBER_NAMESPACE};

/// TCP port of the gateway's `/metrics`, where its cables are counted.
const GATEWAY_METRICS_PORT: u16 = ferry_api::ports::GATEWAY_METRICS_PORT;

/// How node state and pod logs are reached.
pub trait NodeAccess: Send + Sync {
    /// Runs `argv` on `node` (in its network namespace); its output, or why not.
    fn run(&self, node: &str, argv: &[&str]) -> std::result::Result<String, String>;
    /// A pod's logs as (file name, text), when kept outside the API (a
    /// sandbox keeps them in files); `None`: read them through the API.
    fn pod_logs(
        &self,
        namespace: &str,
        pod: &str,
    ) -> Option<std::result::Result<Vec<(String, String)>, String>>;
}

/// A real cluster seen only through its API: logs through pods/log, no
/// node state.
#[derive(Debug, Default)]
pub struct ApiOnly;

impl NodeAccess for ApiOnly {
    fn run(&self, _node: &str, _argv: &[&str]) -> std::result::Result<String, String> {
        Err(
            "not collected: a real cluster's nodes are not reachable from here \
             (run the same commands with `kubectl -n ferry-system exec` in its \
             ferry-route-agent pod, which shares the node's network)"
                .into(),
        )
    }

    fn pod_logs(
        &self,
        _namespace: &str,
        _pod: &str,
    ) -> Option<std::result::Result<Vec<(String, String)>, String>> {
        None
    }
}

/// What `gather` is asked for.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where the bundles go (one directory and one `.tar.gz` per cluster).
    pub dir: PathBuf,
    /// Keep Secret values (tokens, the preshared key).
    pub include_sensitive_data: bool,
}

/// One cluster's bundle.
#[derive(Clone, Debug)]
pub struct Bundle {
    /// The cluster's id (or its target's description when unknown).
    pub cluster: String,
    /// Its directory.
    pub dir: PathBuf,
    /// Its archive, when `tar` could write it.
    pub archive: Option<PathBuf>,
    /// Files written, relative to `dir`.
    pub files: Vec<PathBuf>,
    /// What could not be collected, and why.
    pub notes: Vec<String>,
}

impl Bundle {
    fn write(&mut self, rel: impl AsRef<Path>, contents: &str) -> Result<()> {
        let rel = rel.as_ref();
        let path = self.dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io_error(parent, e))?;
        }
        std::fs::write(&path, contents).map_err(|e| io_error(&path, e))?;
        self.files.push(rel.to_path_buf());
        Ok(())
    }

    fn note(&mut self, what: impl Into<String>) {
        let what = what.into();
        tracing::warn!(cluster = %self.cluster, "{what}");
        self.notes.push(what);
    }
}

fn io_error(path: &Path, e: std::io::Error) -> Error {
    Error::Render(format!("writing {}: {e}", path.display()))
}

/// A name safe as one path component.
fn file_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Gathers one cluster into `opts.dir/<cluster>` (+ `.tar.gz`). Only a
/// bundle that cannot be written at all is an error; an unreachable
/// cluster gives a bundle that says so.
pub async fn gather(spec: &TargetSpec, opts: &Options, access: &dyn NodeAccess) -> Result<Bundle> {
    let target = Target::connect(spec).await;
    let listed = match &target {
        Ok(t) => list_all(&t.client, &objects::cluster_kinds(), MEMBER_NAMESPACE).await,
        Err(_) => Vec::new(),
    };
    let cluster = cluster_id(&listed).unwrap_or_else(|| file_safe(&spec.describe()));
    let mut bundle = Bundle {
        dir: opts.dir.join(file_safe(&cluster)),
        cluster,
        archive: None,
        files: Vec::new(),
        notes: Vec::new(),
    };
    std::fs::create_dir_all(&bundle.dir).map_err(|e| io_error(&bundle.dir, e))?;
    match target {
        Err(e) => bundle.note(format!("cluster {}: {e}", spec.describe())),
        Ok(t) => {
            write_objects(&mut bundle, "objects", &listed, opts)?;
            gather_broker(&mut bundle, &listed, opts).await?;
            gather_logs(&mut bundle, &t, &listed, access).await?;
            gather_nodes(&mut bundle, &listed, access)?;
        }
    }
    let notes = bundle.notes.join("\n");
    bundle.write("notes.txt", &format!("{notes}\n"))?;
    let page = html::summary(&bundle, &listed);
    bundle.write("index.html", &page)?;
    archive(&mut bundle);
    Ok(bundle)
}

type Listed = Vec<(Kind, std::result::Result<Vec<DynamicObject>, String>)>;

async fn list_all(client: &kube::Client, kinds: &[Kind], namespace: &str) -> Listed {
    let mut out = Vec::new();
    for k in kinds {
        let r = objects::list(client, k, namespace)
            .await
            .map_err(|e| e.to_string());
        out.push((k.clone(), r));
    }
    out
}

/// The objects of kind `kind` (by Kubernetes kind name) that could be read.
fn of_kind<'a>(listed: &'a Listed, kind: &str) -> &'a [DynamicObject] {
    listed
        .iter()
        .find(|(k, _)| k.resource.kind == kind)
        .and_then(|(_, r)| r.as_ref().ok())
        .map_or(&[], Vec::as_slice)
}

fn cluster_id(listed: &Listed) -> Option<String> {
    of_kind(listed, "ClusterProperty")
        .iter()
        .find(|p| p.metadata.name.as_deref() == Some(ferry_api::labels::CLUSTER_ID_PROPERTY))
        .and_then(|p| p.data["spec"]["value"].as_str())
        .map(str::to_string)
}

fn write_objects(bundle: &mut Bundle, under: &str, listed: &Listed, opts: &Options) -> Result<()> {
    for (kind, result) in listed {
        let rel = Path::new(under).join(kind.file_name());
        match result {
            Ok(items) => {
                let items: Vec<Value> = items
                    .iter()
                    .map(|o| objects::scrub(kind, o, opts.include_sensitive_data))
                    .collect();
                let list = json!({"apiVersion": "v1", "kind": "List", "items": items});
                let yaml = serde_yaml_ng::to_string(&list)
                    .map_err(|e| Error::Render(format!("{}: {e}", kind.file_name())))?;
                bundle.write(rel, &yaml)?;
            }
            Err(e) => bundle.note(format!("{}: listing {}: {e}", under, kind.resource.plural)),
        }
    }
    Ok(())
}

/// The broker's objects, read with this cluster's own broker credentials
/// (from the `ferry-broker` Secret; only in memory, never written).
async fn gather_broker(bundle: &mut Bundle, listed: &Listed, opts: &Options) -> Result<()> {
    let Some(secret) = of_kind(listed, "Secret")
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some(ferry_deploy::BROKER_SECRET))
    else {
        bundle.note(format!(
            "broker: no Secret {MEMBER_NAMESPACE}/{} (not joined?)",
            ferry_deploy::BROKER_SECRET
        ));
        return Ok(());
    };
    let parsed = serde_json::to_value(secret)
        .and_then(serde_json::from_value::<Secret>)
        .map_err(|e| e.to_string())
        .and_then(|s| ferry_deploy::BrokerSecret::from_secret(&s).map_err(|e| e.to_string()));
    let info = match parsed {
        Ok(s) => s.broker_info,
        Err(e) => {
            bundle.note(format!("broker: reading the broker Secret: {e}"));
            return Ok(());
        }
    };
    let client = match ferry_kube::broker_client(&info, &info.token).await {
        Ok(c) => c,
        Err(e) => {
            bundle.note(format!("broker at {}: {e}", info.api_server_url));
            return Ok(());
        }
    };
    let broker = list_all(&client, &objects::broker_kinds(), &info.broker_namespace).await;
    write_objects(bundle, "broker", &broker, opts)
}

/// Every container's log of every ferry pod.
async fn gather_logs(
    bundle: &mut Bundle,
    target: &Target,
    listed: &Listed,
    access: &dyn NodeAccess,
) -> Result<()> {
    let pods: Api<Pod> = Api::namespaced(target.client.clone(), MEMBER_NAMESPACE);
    for pod in of_kind(listed, "Pod") {
        let Some(name) = pod.metadata.name.clone() else {
            continue;
        };
        let dir = Path::new("logs").join(file_safe(&name));
        match access.pod_logs(MEMBER_NAMESPACE, &name) {
            Some(Ok(files)) => {
                for (file, text) in files {
                    bundle.write(dir.join(file_safe(&file)), &text)?;
                }
            }
            Some(Err(e)) => bundle.note(format!("logs of {name}: {e}")),
            None => {
                let containers: Vec<String> = pod.data["spec"]["containers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c["name"].as_str().map(str::to_string))
                    .collect();
                for c in containers {
                    let lp = LogParams {
                        container: Some(c.clone()),
                        ..LogParams::default()
                    };
                    match pods.logs(&name, &lp).await {
                        Ok(text) => {
                            bundle.write(dir.join(format!("{}.log", file_safe(&c))), &text)?
                        }
                        Err(e) => bundle.note(format!("logs of {name}/{c}: {e}")),
                    }
                }
            }
        }
    }
    Ok(())
}

/// What is read on every node: (file, command).
const NODE_COMMANDS: &[(&str, &[&str])] = &[
    ("ip-addr.txt", &["ip", "-d", "addr", "show"]),
    ("ip-link.txt", &["ip", "-d", "link", "show"]),
    ("ip-rule.txt", &["ip", "rule", "show"]),
    // Every table: asking for one that holds no route yet is an error.
    (
        "ip-route.txt",
        &["ip", "-d", "route", "show", "table", "all"],
    ),
    ("nft-tables.txt", &["nft", "list", "tables"]),
];

fn gather_nodes(bundle: &mut Bundle, listed: &Listed, access: &dyn NodeAccess) -> Result<()> {
    for node in of_kind(listed, "Node") {
        let Some(name) = node.metadata.name.clone() else {
            continue;
        };
        let dir = Path::new("nodes").join(file_safe(&name));
        let run = tokio::task::block_in_place(|| {
            NODE_COMMANDS
                .iter()
                .map(|(file, argv)| (*file, argv.join(" "), access.run(&name, argv)))
                .collect::<Vec<_>>()
        });
        let mut reachable = false;
        let mut tables = String::new();
        for (file, cmd, out) in run {
            match out {
                Ok(text) => {
                    reachable = true;
                    if file == "nft-tables.txt" {
                        tables = text.clone();
                    }
                    if file == "ip-route.txt" {
                        write_ferry_tables(bundle, &dir, &text)?;
                    }
                    bundle.write(dir.join(file), &format!("$ {cmd}\n{text}"))?;
                }
                Err(e) => {
                    bundle.note(format!("node {name}: {cmd}: {e}"));
                    if !reachable {
                        // Every command would fail the same way.
                        break;
                    }
                }
            }
        }
        if !reachable {
            continue;
        }
        for table in ferry_tables(&tables) {
            let argv: Vec<&str> = ["nft", "list", "table"]
                .into_iter()
                .chain(table.split_whitespace())
                .collect();
            let out = tokio::task::block_in_place(|| access.run(&name, &argv));
            let file = format!("nft-{}.txt", file_safe(&table.replace(' ', "-")));
            match out {
                Ok(text) => {
                    bundle.write(dir.join(file), &format!("$ {}\n{text}", argv.join(" ")))?
                }
                Err(e) => bundle.note(format!("node {name}: {}: {e}", argv.join(" "))),
            }
        }
        if node.metadata.labels.as_ref().is_some_and(|l| {
            l.get(ferry_api::labels::GATEWAY).map(String::as_str)
                == Some(ferry_api::labels::GATEWAY_ENABLED)
        }) {
            gather_cables(bundle, &name, &dir, access)?;
        }
    }
    Ok(())
}

/// The routes of the route agent's table and the gateway's (ferry_net's
/// ROUTE_AGENT_TABLE and GATEWAY_TABLE), each in its own file.
fn write_ferry_tables(bundle: &mut Bundle, dir: &Path, all_routes: &str) -> Result<()> {
    for table in FERRY_ROUTE_TABLES {
        let mark = format!(" table {table}");
        let routes: String = all_routes
            .lines()
            .filter(|l| l.contains(&mark))
            .map(|l| format!("{l}\n"))
            .collect();
        let file = format!("ip-route-table-{table}.txt");
        bundle.write(
            dir.join(file),
            &format!("# ip -d route show table {table}\n{routes}"),
        )?;
    }
    Ok(())
}

/// The routing tables ferry programs: the route agent's and the gateway's.
const FERRY_ROUTE_TABLES: [u32; 2] = [7100, 7101];

/// `FAMILY NAME` of every nftables table whose name is ferry's.
fn ferry_tables(list: &str) -> Vec<String> {
    list.lines()
        .filter_map(|l| l.trim().strip_prefix("table "))
        .filter(|t| {
            t.split_whitespace()
                .nth(1)
                .is_some_and(|n| n.contains("ferry"))
        })
        .map(str::to_string)
        .collect()
}

/// The gateway's cables as `wg show` would list its peers, without keys:
/// the gateway's own counters (remote cluster, bytes each way, last
/// handshake, status), from its `/metrics` on the node.
fn gather_cables(
    bundle: &mut Bundle,
    node: &str,
    dir: &Path,
    access: &dyn NodeAccess,
) -> Result<()> {
    let url = format!("http://127.0.0.1:{GATEWAY_METRICS_PORT}/metrics");
    let out = tokio::task::block_in_place(|| access.run(node, &["curl", "-s", "-m", "3", &url]));
    match out {
        Ok(text) => {
            let cables: String = text
                .lines()
                .filter(|l| {
                    l.starts_with("ferry_gateway_cable_") || l.starts_with("ferry_gateway_lease_")
                })
                .map(|l| format!("{l}\n"))
                .collect();
            bundle.write(
                dir.join("gateway-cables.txt"),
                &format!("# {url}\n{cables}"),
            )
        }
        Err(e) => {
            bundle.note(format!("node {node}: gateway cables ({url}): {e}"));
            Ok(())
        }
    }
}

/// `opts.dir/<cluster>.tar.gz` of the bundle directory, with `tar`.
fn archive(bundle: &mut Bundle) {
    let Some(name) = bundle.dir.file_name().map(|n| n.to_os_string()) else {
        return;
    };
    let parent = bundle.dir.parent().unwrap_or(Path::new("."));
    let mut file = name.clone();
    file.push(".tar.gz");
    let path = parent.join(&file);
    let status = std::process::Command::new("tar")
        .arg("-czf")
        .arg(&path)
        .arg("-C")
        .arg(parent)
        .arg(&name)
        .status();
    match status {
        Ok(s) if s.success() => bundle.archive = Some(path),
        Ok(s) => bundle.note(format!("tar -czf {}: {s}", path.display())),
        Err(e) => bundle.note(format!("tar -czf {}: {e}", path.display())),
    }
}
