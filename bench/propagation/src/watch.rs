//! The benchmark's own watches: what the clusters hold, by object name,
//! kept current while the agents work.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};

use crate::NS;

/// Objects of one kind in one cluster: name → (what the benchmark reads of
/// it, when that was seen).
pub type Latest<T> = Arc<Mutex<HashMap<String, (T, Instant)>>>;

/// Watches `api` with `cfg`, keeping `extract` of each object by name.
pub fn watch_latest<K, T>(
    api: Api<K>,
    cfg: watcher::Config,
    extract: fn(&K) -> T,
) -> (Latest<T>, tokio::task::JoinHandle<()>)
where
    K: kube::Resource
        + Clone
        + for<'de> k8s_openapi::serde::Deserialize<'de>
        + std::fmt::Debug
        + Send
        + 'static,
    T: Send + 'static,
{
    let latest: Latest<T> = Arc::default();
    let l = latest.clone();
    let task = tokio::spawn(async move {
        let mut stream = watcher(api, cfg).default_backoff().boxed();
        while let Some(ev) = stream.next().await {
            let now = Instant::now();
            let Ok(mut m) = l.lock() else { return };
            match ev {
                Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => {
                    m.insert(o.name_any(), (extract(&o), now));
                }
                Ok(watcher::Event::Delete(o)) => {
                    m.remove(&o.name_any());
                }
                Ok(watcher::Event::Init | watcher::Event::InitDone) | Err(_) => {}
            }
        }
    });
    (latest, task)
}

/// An imported EndpointSlice as the benchmark reads it: whether its first
/// endpoint is ready, and the Service it belongs to for the service proxy
/// (`kubernetes.io/service-name`: the derived Service behind a ClusterSet IP).
pub type SliceSeen = (bool, Option<String>);

fn slice_seen(o: &k8s_openapi::api::discovery::v1::EndpointSlice) -> SliceSeen {
    let ready = o
        .endpoints
        .first()
        .and_then(|e| e.conditions.as_ref())
        .and_then(|c| c.ready)
        .unwrap_or(false);
    let proxied = o
        .labels()
        .get("kubernetes.io/service-name")
        .filter(|s| s.starts_with("derived-"))
        .cloned();
    (ready, proxied)
}

/// The EndpointSlices ferry's agent wrote in NS of a cluster.
pub fn imported_slices(c: Client) -> (Latest<SliceSeen>, tokio::task::JoinHandle<()>) {
    let cfg =
        watcher::Config::default().labels("endpointslice.kubernetes.io/managed-by=agent.ferry.dev");
    watch_latest(Api::namespaced(c, NS), cfg, slice_seen)
}

/// A ServiceImport as the benchmark reads it: whether its status lists a
/// cluster, and its first IP (the ClusterSet IP).
pub type ImportSeen = (bool, Option<String>);

fn import_seen(si: &ferry_api::ServiceImport) -> ImportSeen {
    let has_clusters = si.status.as_ref().is_some_and(|s| !s.clusters.is_empty());
    (has_clusters, si.spec.ips.first().cloned())
}

/// The ServiceImports in NS of a cluster.
pub fn imports(c: Client) -> (Latest<ImportSeen>, tokio::task::JoinHandle<()>) {
    watch_latest(
        Api::namespaced(c, NS),
        watcher::Config::default(),
        import_seen,
    )
}

fn cluster_ip(s: &k8s_openapi::api::core::v1::Service) -> Option<String> {
    s.spec.as_ref().and_then(|s| s.cluster_ip.clone())
}

/// The Services in NS of a cluster: their ClusterIP.
pub fn services(c: Client) -> (Latest<Option<String>>, tokio::task::JoinHandle<()>) {
    watch_latest(
        Api::namespaced(c, NS),
        watcher::Config::default(),
        cluster_ip,
    )
}

fn export_ready(se: &ferry_api::ServiceExport) -> bool {
    se.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

/// The ServiceExports in NS of a cluster: whether each is `Ready`.
pub fn exports(c: Client) -> (Latest<bool>, tokio::task::JoinHandle<()>) {
    watch_latest(
        Api::namespaced(c, NS),
        watcher::Config::default(),
        export_ready,
    )
}

/// How many entries satisfy `pred`.
pub fn count<T>(m: &Latest<T>, pred: impl Fn(&T) -> bool) -> usize {
    m.lock()
        .map(|m| m.values().filter(|(v, _)| pred(v)).count())
        .unwrap_or(0)
}

/// The current value for `name`, with when it was seen.
pub fn get<T: Clone>(m: &Latest<T>, name: &str) -> Option<(T, Instant)> {
    m.lock().ok().and_then(|m| m.get(name).cloned())
}
