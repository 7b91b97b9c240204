//! The daemon: watches the API, plans and applies on every change, and
//! decides at shutdown whether to leave the data plane or remove it.
//!
//! - Three watches feed in-memory stores: every `Endpoint` (this
//!   cluster's gateway is the one named `<id>`, or with active-active
//!   gateways one per gateway node; remote ones count each cluster's
//!   gateways), every `Cluster` in the
//!   system namespace, and this `Node`. Each event wakes the reconcile loop,
//!   which plans from the stores and applies only what changed, so a
//!   failover (the Endpoint replaced in place) re-points routes as soon as
//!   the watch event arrives. A periodic full apply repairs drift.
//! - When the API goes away the watches retry with backoff and the stores
//!   keep their last contents: nothing is removed for lack of news.
//! - At shutdown (SIGTERM) the route agent asks the API whether its own
//!   DaemonSet and its namespace still exist. Either gone (404) or being
//!   deleted means ferry is being uninstalled: everything is removed. Otherwise (a restart, an
//!   upgrade, a drain, or the API unreachable) the data plane is left in
//!   place so traffic keeps flowing until the next route agent takes over.
//!   The cleanup is the last kernel write: an apply still running when the
//!   signal came finishes first, and none starts after it (`KernelWrites`).

use std::future::Future;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use ferry_api::labels::{CLUSTER_ID_PROPERTY, CNI_IFACE_IP};
use ferry_api::{Cidr, Cluster, ClusterProperty, Endpoint};
use ferry_kube::Watch;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Namespace, Node};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::apply::{self, Applier};
use crate::plan::{self, Desired, Role};
use crate::{Error, Result};

/// Name of the route agent's DaemonSet (and ServiceAccount).
pub const DAEMONSET: &str = "ferry-route-agent";

/// How the daemon is set up.
#[derive(Clone, Debug)]
pub struct Config {
    /// This node's name (`NODE_NAME`).
    pub node_name: String,
    /// The system namespace (`POD_NAMESPACE`, `ferry-system`): Endpoint,
    /// Clusters and the DaemonSet live there.
    pub namespace: String,
    /// This cluster's id; `None` reads the `cluster.clusterset.k8s.io`
    /// ClusterProperty.
    pub cluster_id: Option<String>,
    /// The DaemonSet whose absence at shutdown means "uninstall".
    pub daemonset: String,
    /// Network namespace to program; `None` is the current one (a node).
    pub netns: Option<String>,
    /// Interval of the full re-apply that repairs drift.
    pub resync: Duration,
    /// Where the daemon reports its Prometheus metrics.
    pub metrics: Arc<crate::metrics::Metrics>,
}

impl Config {
    /// Defaults for `node_name` in `namespace`: id from the ClusterProperty,
    /// DaemonSet [`DAEMONSET`], current namespace, resync every 60 s.
    pub fn new(node_name: &str, namespace: &str) -> Self {
        Self {
            node_name: node_name.to_string(),
            namespace: namespace.to_string(),
            cluster_id: None,
            daemonset: DAEMONSET.to_string(),
            netns: None,
            resync: Duration::from_secs(60),
            metrics: Default::default(),
        }
    }
}

/// How the daemon ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The DaemonSet was gone: everything was removed.
    Uninstalled,
    /// The data plane was left in place (restart, upgrade, API unreachable).
    LeftInPlace,
}

const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Runs until `shutdown` completes, then removes or keeps the data plane
/// (see the module docs). Errors only if the cleanup at uninstall fails;
/// everything else is retried with backoff.
pub async fn run(
    client: Client,
    cfg: Config,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<Outcome> {
    let mut shutdown = std::pin::pin!(shutdown);
    let writes = KernelWrites::default();
    tokio::select! {
        () = &mut shutdown => {}
        () = serve(client.clone(), &cfg, writes.clone()) => {}
    }
    finish(&client, &cfg, &writes).await
}

/// Orders the kernel writes of the reconcile loop and the uninstall cleanup.
///
/// Dropping the reconcile loop at shutdown does not stop an apply already
/// running on the blocking pool (a blocking task cannot be cancelled), so
/// without this lock that apply could rewrite the nft table or a route after
/// cleanup removed them. Cleanup takes the lock, marks the data plane
/// retired and removes everything; an apply that gets the lock afterwards
/// does nothing, so cleanup is the last write.
#[derive(Clone, Default)]
struct KernelWrites(Arc<std::sync::Mutex<Retired>>);

/// Whether the uninstall cleanup has started.
#[derive(Default)]
struct Retired(bool);

impl KernelWrites {
    /// Runs `write` under the lock, unless cleanup already ran. Blocking.
    fn apply<T>(&self, write: impl FnOnce() -> Result<T>) -> Result<T> {
        let retired = self.lock();
        if retired.0 {
            return Err(Error::Retired);
        }
        write()
    }

    /// Runs `cleanup` under the lock and retires the data plane for good:
    /// no apply runs after it. Blocking.
    fn retire<T>(&self, cleanup: impl FnOnce() -> T) -> T {
        let mut retired = self.lock();
        retired.0 = true;
        cleanup()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Retired> {
        // A panic inside a write leaves only the flag behind the lock, and
        // the flag is still right: recover the guard.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What happens after the shutdown signal.
async fn finish(client: &Client, cfg: &Config, writes: &KernelWrites) -> Result<Outcome> {
    if !uninstalling(client, cfg).await {
        info!("stopping; vx-ferry, routes and rules stay in place for the next route agent");
        return Ok(Outcome::LeftInPlace);
    }
    info!(
        daemonset = %cfg.daemonset,
        "DaemonSet is gone: ferry is being uninstalled, removing the data plane"
    );
    let netns = cfg.netns.clone();
    let writes = writes.clone();
    tokio::task::spawn_blocking(move || writes.retire(|| apply::cleanup(netns.as_deref())))
        .await
        .map_err(|e| Error::Task(e.to_string()))??;
    // Best effort: uninstall goes on without it.
    let _ = annotate(client, &cfg.node_name, None).await;
    Ok(Outcome::Uninstalled)
}

/// Whether ferry is being uninstalled: the DaemonSet, or the namespace it
/// lives in, is gone or being deleted. Any doubt (the API is unreachable or
/// slow) answers no: removing routes by mistake costs traffic, leaving them
/// costs nothing until the next start.
async fn uninstalling(client: &Client, cfg: &Config) -> bool {
    let ds: Api<DaemonSet> = Api::namespaced(client.clone(), &cfg.namespace);
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let both = async {
        tokio::join!(
            ds.get_opt(&cfg.daemonset),
            namespaces.get_opt(&cfg.namespace)
        )
    };
    let gone = |o: &Option<ObjectMeta>| o.as_ref().is_none_or(|m| m.deletion_timestamp.is_some());
    match tokio::time::timeout(Duration::from_secs(1), both).await {
        Ok((Ok(d), Ok(n))) => gone(&d.map(|d| d.metadata)) || gone(&n.map(|n| n.metadata)),
        Ok((Err(e), _) | (_, Err(e))) => {
            warn!("cannot tell whether ferry is being uninstalled ({e}); keeping the data plane");
            false
        }
        Err(_) => {
            warn!("the API did not answer within 1 s; keeping the data plane");
            false
        }
    }
}

/// The cluster id: the configured one, else the ClusterProperty (retried
/// until it can be read).
async fn cluster_id(client: &Client, cfg: &Config) -> String {
    if let Some(id) = &cfg.cluster_id {
        return id.clone();
    }
    let api: Api<ClusterProperty> = Api::all(client.clone());
    let mut backoff = BACKOFF_MIN;
    loop {
        match api.get_opt(CLUSTER_ID_PROPERTY).await {
            Ok(Some(p)) if !p.spec.value.is_empty() => return p.spec.value,
            Ok(_) => warn!(
                "ClusterProperty {CLUSTER_ID_PROPERTY} is missing or empty; waiting (or pass --cluster-id)"
            ),
            Err(e) => warn!("reading ClusterProperty {CLUSTER_ID_PROPERTY}: {e}"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Watches `api` into a store, waking `notify` on every change; runs forever
/// (the watch retries with backoff, keeping the store's contents).
fn spawn_watch<K: ferry_kube::watch::Watchable + Sync>(
    api: Api<K>,
    config: watcher::Config,
    notify: Arc<Notify>,
) -> (Store<K>, tokio::task::JoinHandle<()>) {
    let (store, run) = Watch::new(api, config).notify(notify);
    (store, tokio::spawn(run))
}

/// Aborts the watch tasks when dropped.
struct Tasks(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// The node's IPv4 InternalIP.
pub fn internal_ip(node: &Node) -> Option<Ipv4Addr> {
    node.status
        .as_ref()?
        .addresses
        .as_ref()?
        .iter()
        .filter(|a| a.type_ == "InternalIP")
        .find_map(|a| a.address.parse().ok())
}

/// Watches and reconciles forever.
async fn serve(client: Client, cfg: &Config, writes: KernelWrites) {
    let id = cluster_id(&client, cfg).await;
    info!(cluster = %id, node = %cfg.node_name, "route agent starting");
    let notify = Arc::new(Notify::new());
    let ns = cfg.namespace.as_str();
    let (endpoints, t1) = spawn_watch(
        // Every cluster's: with active-active gateways a remote CIDR goes
        // to as many local gateways as its cluster has (see `plan`).
        Api::<Endpoint>::namespaced(client.clone(), ns),
        watcher::Config::default(),
        notify.clone(),
    );
    let (clusters, t2) = spawn_watch(
        Api::<Cluster>::namespaced(client.clone(), ns),
        watcher::Config::default(),
        notify.clone(),
    );
    let (nodes, t3) = spawn_watch(
        Api::<Node>::all(client.clone()),
        watcher::Config::default().fields(&format!("metadata.name={}", cfg.node_name)),
        notify.clone(),
    );
    let _tasks = Tasks(vec![t1, t2, t3]);
    // The writers live in the tasks, which only end when aborted.
    let _ = tokio::join!(
        endpoints.wait_until_ready(),
        clusters.wait_until_ready(),
        nodes.wait_until_ready()
    );
    debug!("watches synced");

    let mut applier = Some(Applier::new(cfg.netns.clone()));
    let mut full = true;
    let mut backoff = BACKOFF_MIN;
    let mut resync_at = Instant::now() + cfg.resync;
    let mut last_role: Option<Role> = None;
    let mut source_note = SourceNote::default();
    let mut cni_objects = CniObjects::default();
    let mut last_notes: Vec<String> = Vec::new();
    let mut woke_at = Instant::now();
    loop {
        let Some(mut a) = applier.take() else {
            // Lost in a panicked blocking task; start over with a full apply.
            applier = Some(Applier::new(cfg.netns.clone()));
            full = true;
            continue;
        };
        let inputs = gather(&id, cfg, &endpoints, &clusters, &nodes);
        let result = match inputs {
            Err(e) => Err(e),
            Ok((node_ip, pod_cidrs, view, notes)) => {
                if notes != last_notes {
                    for n in &notes {
                        warn!("{n}");
                    }
                    last_notes = notes;
                }
                let name = cfg.node_name.clone();
                let full_now = full;
                let writes = writes.clone();
                let r = tokio::task::spawn_blocking(move || {
                    let r = writes.apply(|| {
                        let facts = apply::node_facts(a.netns(), &name, node_ip, &pod_cidrs)?;
                        let want = crate::cni::plan(&facts, &view);
                        a.apply(&want, full_now).map(|ch| (want, ch))
                    });
                    (a, r)
                })
                .await;
                match r {
                    Ok((a, r)) => {
                        applier = Some(a);
                        r
                    }
                    Err(e) => Err(Error::Task(e.to_string())),
                }
            }
        };
        let retry_at = match result {
            Ok((want, changes)) => {
                cfg.metrics
                    .applied(&want, &changes, last_role.as_ref(), woke_at.elapsed());
                report(&want, &changes, &mut last_role);
                source_note
                    .update(&client, &cfg.node_name, &want.host_source)
                    .await;
                cni_objects.keep(&client, &want).await;
                full = false;
                backoff = BACKOFF_MIN;
                None
            }
            Err(e) => {
                cfg.metrics.apply_failed();
                warn!("applying: {e}; retrying in {backoff:?}");
                full = true;
                let at = Instant::now() + backoff;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                Some(at)
            }
        };
        let wake = retry_at.map_or(resync_at, |r| r.min(resync_at));
        tokio::select! {
            () = notify.notified() => {}
            () = tokio::time::sleep_until(wake) => {
                if Instant::now() >= resync_at {
                    full = true;
                    resync_at = Instant::now() + cfg.resync;
                }
            }
        }
        woke_at = Instant::now();
    }
}

/// The Node's IPv4 address, its pod CIDRs, the cluster view and notes.
type Gathered = (Ipv4Addr, Vec<Cidr>, plan::ClusterView, Vec<String>);

/// The Node's pod CIDRs (`spec.podCIDRs`, else `spec.podCIDR`) that parse.
pub fn pod_cidrs(node: &Node) -> Vec<Cidr> {
    let Some(spec) = node.spec.as_ref() else {
        return Vec::new();
    };
    let listed = spec.pod_cidrs.clone().unwrap_or_default();
    let all = if listed.is_empty() {
        spec.pod_cidr.iter().cloned().collect()
    } else {
        listed
    };
    all.iter().filter_map(|c| c.parse().ok()).collect()
}

/// Reads the stores into the planner's inputs.
fn gather(
    id: &str,
    cfg: &Config,
    endpoints: &Store<Endpoint>,
    clusters: &Store<Cluster>,
    nodes: &Store<Node>,
) -> Result<Gathered> {
    let node = nodes
        .find(|n| n.name_any() == cfg.node_name)
        .ok_or_else(|| Error::NoNodeIp(cfg.node_name.clone()))?;
    let node_ip = internal_ip(&node).ok_or_else(|| Error::NoNodeIp(cfg.node_name.clone()))?;
    let endpoint = endpoints.find(|e| e.name_any() == id);
    let all = clusters.state();
    let specs: Vec<&ferry_api::ClusterSpec> = all.iter().map(|c| &c.spec).collect();
    let (view, notes) = match endpoint {
        // Active-passive: the cluster's one Endpoint, named after it.
        Some(e) => plan::cluster_view(id, Some(&e.spec), &specs),
        // Active-active (or no gateway yet): one Endpoint per gateway.
        None => {
            let every = endpoints.state();
            let by_name = every
                .iter()
                .map(|e| (e.name_any(), &e.spec))
                .collect::<std::collections::BTreeMap<_, _>>();
            plan::cluster_view_of_all(id, &by_name, &specs)
        }
    };
    Ok((node_ip, pod_cidrs(&node), view, notes))
}

fn report(want: &Desired, changes: &apply::Changes, last_role: &mut Option<Role>) {
    if last_role.as_ref() != Some(&want.role) {
        match &want.role {
            Role::NoGateway => info!("no active gateway in this cluster; nothing routed"),
            Role::Gateway => info!("this node is the active gateway; table 7100 stays empty"),
            Role::Node(gw) => info!(
                gateway = %gw.hostname, ip = %gw.ip, routes = want.routes.len(),
                took = ?changes.took,
                "remote CIDRs routed through vx-ferry to the active gateway"
            ),
        }
        for s in &want.skipped {
            warn!(cidr = %s.cidr, "not routing: {}", s.reason);
        }
        *last_role = Some(want.role.clone());
    } else if changes.any() {
        info!(
            replaced = changes.routes_replaced,
            deleted = changes.routes_deleted,
            entries = changes.entries_changed,
            nft = changes.nft_written,
            took = ?changes.took,
            "data plane updated"
        );
    }
}

/// The CNI objects ([`Desired::cni_objects`]: Calico's IPPools) last
/// written; written again only when they change, and the ones ferry wrote
/// before that are no longer wanted deleted.
#[derive(Default)]
struct CniObjects {
    written: Option<Vec<serde_json::Value>>,
}

impl CniObjects {
    /// Writes `want`'s CNI objects when they changed (only the active
    /// gateway has any; other nodes leave them be). A failure is logged and
    /// tried again after the next apply.
    async fn keep(&mut self, client: &Client, want: &Desired) {
        if want.role != Role::Gateway || self.written.as_ref() == Some(&want.cni_objects) {
            return;
        }
        match write_ippools(client, &want.cni_objects).await {
            Ok(()) => {
                if !want.cni_objects.is_empty() {
                    info!(
                        pools = want.cni_objects.len(),
                        "Calico IPPools for remote CIDRs kept (natOutgoing: false, disabled: true)"
                    );
                }
                self.written = Some(want.cni_objects.clone());
            }
            Err(e) => warn!("writing Calico IPPools for remote CIDRs: {e}"),
        }
    }
}

/// Applies `pools` (server-side) and deletes ferry's other IPPools.
async fn write_ippools(client: &Client, pools: &[serde_json::Value]) -> Result<()> {
    use kube::api::{ApiResource, DeleteParams, DynamicObject, ListParams};
    use kube::core::GroupVersionKind;
    let (group, version, plural) = crate::cni::CALICO_IPPOOL;
    let gvk = GroupVersionKind::gvk(group, version, "IPPool");
    let api: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(&gvk, plural),
    );
    let params = PatchParams::apply(DAEMONSET).force();
    let mut names = Vec::new();
    for pool in pools {
        let name = pool["metadata"]["name"].as_str().unwrap_or_default();
        api.patch(name, &params, &Patch::Apply(pool)).await?;
        names.push(name.to_string());
    }
    let ours = ListParams::default().labels(&format!(
        "{}={}",
        ferry_api::labels::APP_MANAGED_BY,
        ferry_api::labels::APP_MANAGED_BY_FERRY
    ));
    let listed = match api.list(&ours).await {
        Ok(l) => l.items,
        // No IPPool CRD, or no right to read it (not Calico): nothing of
        // ours can be there to delete.
        Err(kube::Error::Api(s)) if matches!(s.code, 403 | 404) && pools.is_empty() => {
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    for old in listed {
        let name = old.name_any();
        if !names.contains(&name) {
            api.delete(&name, &DeleteParams::default()).await?;
        }
    }
    Ok(())
}

/// What the log and the Node's annotation last said about the host
/// source address (`None`: nothing yet).
#[derive(Default)]
struct SourceNote {
    logged: Option<Option<Ipv4Addr>>,
    annotated: Option<Option<Ipv4Addr>>,
}

impl SourceNote {
    /// Logs a changed host source and writes it into the Node's annotation;
    /// a write that failed is tried again after the next apply.
    async fn update(
        &mut self,
        client: &Client,
        node: &str,
        source: &std::result::Result<plan::HostSource, String>,
    ) {
        let ip = source.as_ref().ok().map(|h| h.ip);
        if self.logged != Some(ip) {
            report_source(source);
            self.logged = Some(ip);
        }
        if self.annotated != Some(ip) && annotate(client, node, ip).await {
            self.annotated = Some(ip);
        }
    }
}

fn report_source(source: &std::result::Result<plan::HostSource, String>) {
    match source {
        Ok(h) => {
            let from = match &h.origin {
                plan::SourceOrigin::Interface(dev) => format!("the address of {dev}"),
                plan::SourceOrigin::NodePodCidr(c) => {
                    format!("the first address of podCIDR {c}, put on vx-ferry")
                }
            };
            info!(ip = %h.ip, "host-network traffic to other clusters leaves from {from}");
        }
        Err(why) => warn!(
            "host-network traffic to other clusters leaves from the node IP, which no other cluster routes back: {why}"
        ),
    }
}

/// Records the host source address in the Node's [`CNI_IFACE_IP`]
/// (removes it when there is none); whether that worked. A failure is only
/// logged: the data plane does not depend on it.
async fn annotate(client: &Client, node: &str, source: Option<Ipv4Addr>) -> bool {
    let nodes: Api<Node> = Api::all(client.clone());
    let value = source.map(|ip| ip.to_string());
    let patch = serde_json::json!({"metadata": {"annotations": {CNI_IFACE_IP: value}}});
    match nodes
        .patch(node, &PatchParams::default(), &Patch::Merge(patch))
        .await
    {
        Ok(_) => true,
        Err(e) => {
            warn!("annotating Node {node} with {CNI_IFACE_IP}: {e}");
            false
        }
    }
}
