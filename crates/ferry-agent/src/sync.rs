//! The agent's sync engine: watches the cluster's and the broker's objects,
//! keeps them in indexed in-memory stores, and reconciles per key
//! (`Export(ns, svc)`, `Import(ns, svc)`, `Cluster(name)`, `Endpoint(name)`)
//! by comparing desired objects with observed ones and writing only the
//! differences, through a bounded pool of concurrent writers.
//!
//! Event-driven: a watch event enqueues the keys it touches, and the queue is
//! drained at once — no fixed rate limit. When either API goes away, the
//! stores keep their last contents (nothing is deleted for lack of news), the
//! watchers reconnect with backoff, failed writes are retried with per-key
//! exponential backoff, and a relist (after reconnecting) re-reconciles every
//! key it touched, writing only what differs.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use ferry_api::labels::{
    self as l, APP_MANAGED_BY, APP_MANAGED_BY_FERRY, CLUSTER, MANAGED_BY, MANAGED_BY_FERRY,
    ORIGIN_NAME, ORIGIN_NAMESPACE, SERVICE_NAME, SOURCE_CLUSTER,
};
use ferry_api::{
    Cidr, Cluster, ClusterSpec, ClusterStatus, Endpoint, ServiceExport, ServiceImport,
    ServiceImportSpec, ServiceImportStatus,
};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::ApiResource;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::mcs::{self, Export, Readiness, Validity};

/// Annotation on a cluster's ServiceImport on the broker: when its
/// ServiceExport was created (what "oldest export wins" compares).
pub const EXPORT_CREATED: &str = "ferry.dev/export-created";

/// Standard label linking an EndpointSlice to its Service.
const K8S_SERVICE_NAME: &str = "kubernetes.io/service-name";

/// Field manager of every write.
const FIELD_MANAGER: &str = "ferry-agent";

/// What the agent needs to know about its cluster.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// This cluster's id.
    pub cluster_id: String,
    /// Pod CIDRs.
    pub cluster_cidrs: Vec<Cidr>,
    /// Service CIDRs.
    pub service_cidrs: Vec<Cidr>,
    /// Namespace of ferry's components in this cluster (`ferry-system`).
    pub system_namespace: String,
    /// The broker namespace.
    pub broker_namespace: String,
    /// Most writes in flight at once.
    pub write_concurrency: usize,
}

impl AgentConfig {
    /// A config with default namespaces and concurrency.
    pub fn new(
        cluster_id: impl Into<String>,
        cluster_cidrs: Vec<Cidr>,
        service_cidrs: Vec<Cidr>,
    ) -> Self {
        AgentConfig {
            cluster_id: cluster_id.into(),
            cluster_cidrs,
            service_cidrs,
            system_namespace: l::SYSTEM_NAMESPACE.into(),
            broker_namespace: l::BROKER_NAMESPACE.into(),
            write_concurrency: 128,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Side {
    Local,
    Broker,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    ServiceExport,
    Service,
    EndpointSlice,
    Namespace,
    ServiceImport,
    Cluster,
    Endpoint,
}

type Source = (Side, Kind);

const SOURCES: [Source; 11] = [
    (Side::Local, Kind::ServiceExport),
    (Side::Local, Kind::Service),
    (Side::Local, Kind::EndpointSlice),
    (Side::Local, Kind::Namespace),
    (Side::Local, Kind::ServiceImport),
    (Side::Local, Kind::Cluster),
    (Side::Local, Kind::Endpoint),
    (Side::Broker, Kind::ServiceImport),
    (Side::Broker, Kind::EndpointSlice),
    (Side::Broker, Kind::Cluster),
    (Side::Broker, Kind::Endpoint),
];

/// A watched object.
#[derive(Clone, Debug)]
enum Obj {
    ServiceExport(Arc<ServiceExport>),
    Service(Arc<Service>),
    EndpointSlice(Arc<EndpointSlice>),
    Namespace(Arc<Namespace>),
    ServiceImport(Arc<ServiceImport>),
    Cluster(Arc<Cluster>),
    Endpoint(Arc<Endpoint>),
}

impl Obj {
    fn meta(&self) -> &ObjectMeta {
        match self {
            Obj::ServiceExport(o) => o.meta(),
            Obj::Service(o) => o.meta(),
            Obj::EndpointSlice(o) => o.meta(),
            Obj::Namespace(o) => o.meta(),
            Obj::ServiceImport(o) => o.meta(),
            Obj::Cluster(o) => o.meta(),
            Obj::Endpoint(o) => o.meta(),
        }
    }

    fn key(&self) -> ObjKey {
        let m = self.meta();
        (
            m.namespace.clone().unwrap_or_default(),
            m.name.clone().unwrap_or_default(),
        )
    }

    fn label(&self, key: &str) -> Option<&str> {
        self.meta()
            .labels
            .as_ref()
            .and_then(|l| l.get(key))
            .map(String::as_str)
    }

    fn to_value(&self) -> Value {
        let v = match self {
            Obj::ServiceExport(o) => serde_json::to_value(o.as_ref()),
            Obj::Service(o) => serde_json::to_value(o.as_ref()),
            Obj::EndpointSlice(o) => serde_json::to_value(o.as_ref()),
            Obj::Namespace(o) => serde_json::to_value(o.as_ref()),
            Obj::ServiceImport(o) => serde_json::to_value(o.as_ref()),
            Obj::Cluster(o) => serde_json::to_value(o.as_ref()),
            Obj::Endpoint(o) => serde_json::to_value(o.as_ref()),
        };
        v.unwrap_or(Value::Null)
    }

    fn from_value(kind: Kind, v: Value) -> Option<Obj> {
        fn de<T: DeserializeOwned>(v: Value) -> Option<Arc<T>> {
            serde_json::from_value(v).ok().map(Arc::new)
        }
        Some(match kind {
            Kind::ServiceExport => Obj::ServiceExport(de(v)?),
            Kind::Service => Obj::Service(de(v)?),
            Kind::EndpointSlice => Obj::EndpointSlice(de(v)?),
            Kind::Namespace => Obj::Namespace(de(v)?),
            Kind::ServiceImport => Obj::ServiceImport(de(v)?),
            Kind::Cluster => Obj::Cluster(de(v)?),
            Kind::Endpoint => Obj::Endpoint(de(v)?),
        })
    }
}

/// (namespace, name); namespace empty for cluster-scoped objects.
type ObjKey = (String, String);

/// What is reconciled.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Key {
    /// This cluster's export of service (ns, name) to the broker.
    Export(String, String),
    /// The aggregated import of service (ns, name) into this cluster.
    Import(String, String),
    /// A `Cluster` (by name): published if ours, copied if remote.
    Cluster(String),
    /// An `Endpoint` (by name): published if ours, copied if remote.
    Endpoint(String),
}

/// One object the engine writes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Target {
    side: Side,
    kind: Kind,
    ns: String,
    name: String,
}

#[derive(Debug)]
enum Op {
    /// Server-side apply of the object, then (if any) a merge patch of its status.
    Apply(Value, Option<Value>),
    /// Merge patch of the status only.
    Status(Value),
    Delete,
}

enum WatchEvent {
    Init,
    InitApply(Obj),
    InitDone,
    Apply(Obj),
    Delete(Obj),
}

enum Input {
    Watch(Source, WatchEvent),
    Written {
        target: Target,
        key: Key,
        hash: u64,
        result: Result<Option<Obj>, String>,
    },
    Retry(Key),
}

#[derive(Default)]
struct Store {
    objs: HashMap<ObjKey, Obj>,
    /// Secondary index: (namespace, service) → object keys.
    by_service: HashMap<ObjKey, BTreeSet<ObjKey>>,
    init: Option<HashMap<ObjKey, Obj>>,
    synced: bool,
}

/// The engine's state; owned by one task.
struct Engine {
    cfg: AgentConfig,
    local: Client,
    broker: Client,
    stores: HashMap<Source, Store>,
    queue: VecDeque<Key>,
    queued: HashSet<Key>,
    inflight: HashMap<Target, Key>,
    dirty: HashSet<Key>,
    /// Hash of the last body applied to a target and the resourceVersion the
    /// server answered with: if neither changed, the target is in sync even
    /// when the server added defaults.
    applied: HashMap<Target, (u64, Option<String>)>,
    attempts: HashMap<Key, u32>,
    ready: bool,
    tx: mpsc::UnboundedSender<Input>,
    /// Keys that wanted to write while every writer was busy: re-run (and
    /// recompute their bodies) when one frees up, so memory stays bounded.
    blocked: VecDeque<Key>,
    blocked_set: HashSet<Key>,
    /// Requests actually on the wire at once.
    writers: Arc<tokio::sync::Semaphore>,
}

fn source_index(source: Source, obj: &Obj) -> Option<ObjKey> {
    let ns = obj.meta().namespace.clone().unwrap_or_default();
    match source {
        (Side::Local, Kind::EndpointSlice) => {
            if obj.label(MANAGED_BY) == Some(MANAGED_BY_FERRY) {
                obj.label(SERVICE_NAME).map(|s| (ns, s.to_string()))
            } else {
                obj.label(K8S_SERVICE_NAME).map(|s| (ns, s.to_string()))
            }
        }
        (Side::Broker, Kind::ServiceImport | Kind::EndpointSlice) => Some((
            obj.label(ORIGIN_NAMESPACE)?.to_string(),
            obj.label(ORIGIN_NAME)?.to_string(),
        )),
        _ => None,
    }
}

fn rv_u64(m: &ObjectMeta) -> Option<u64> {
    m.resource_version.as_deref().and_then(|r| r.parse().ok())
}

fn hash_value(v: &Value) -> u64 {
    let mut h = DefaultHasher::new();
    v.to_string().hash(&mut h);
    h.finish()
}

/// Whether every field `desired` sets has that value in `observed` (objects
/// recursively, arrays element-wise with equal length).
fn is_subset(desired: &Value, observed: &Value) -> bool {
    match (desired, observed) {
        (Value::Object(d), Value::Object(o)) => d.iter().all(|(k, dv)| match o.get(k) {
            Some(ov) => is_subset(dv, ov),
            None => dv.is_null() || dv.as_object().is_some_and(|m| m.is_empty()),
        }),
        (Value::Object(d), Value::Null) => d.is_empty(),
        (Value::Array(d), Value::Array(o)) => {
            d.len() == o.len() && d.iter().zip(o).all(|(a, b)| is_subset(a, b))
        }
        (Value::Array(d), Value::Null) => d.is_empty(),
        _ => desired == observed,
    }
}

fn api_resource(kind: Kind) -> ApiResource {
    match kind {
        Kind::ServiceExport => ApiResource::erase::<ServiceExport>(&()),
        Kind::Service => ApiResource::erase::<Service>(&()),
        Kind::EndpointSlice => ApiResource::erase::<EndpointSlice>(&()),
        Kind::Namespace => ApiResource::erase::<Namespace>(&()),
        Kind::ServiceImport => ApiResource::erase::<ServiceImport>(&()),
        Kind::Cluster => ApiResource::erase::<Cluster>(&()),
        Kind::Endpoint => ApiResource::erase::<Endpoint>(&()),
    }
}

fn labels_of(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The name of cluster `cluster`'s export of `ns/svc` on the broker.
pub fn broker_name(svc: &str, ns: &str, cluster: &str) -> String {
    format!("{svc}-{ns}-{cluster}")
}

/// The name of the local EndpointSlice holding `cluster`'s endpoints of `svc`.
pub fn import_slice_name(svc: &str, cluster: &str) -> String {
    format!("{svc}-{cluster}")
}

fn to_json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Drops what the engine never reads (managed fields), to keep stores small.
fn slim<K: Resource>(mut o: K) -> K {
    o.meta_mut().managed_fields = None;
    o
}

fn spawn_watch<K>(
    api: Api<K>,
    source: Source,
    tx: mpsc::UnboundedSender<Input>,
    wrap: fn(K) -> Obj,
) -> tokio::task::JoinHandle<()>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    tokio::spawn(async move {
        let mut stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        while let Some(ev) = stream.next().await {
            let ev = match ev {
                Ok(watcher::Event::Init) => WatchEvent::Init,
                Ok(watcher::Event::InitApply(o)) => WatchEvent::InitApply(wrap(slim(o))),
                Ok(watcher::Event::InitDone) => WatchEvent::InitDone,
                Ok(watcher::Event::Apply(o)) => WatchEvent::Apply(wrap(slim(o))),
                Ok(watcher::Event::Delete(o)) => WatchEvent::Delete(wrap(slim(o))),
                Err(e) => {
                    debug!(?source, error = %e, "watch failed; retrying with backoff");
                    continue;
                }
            };
            if tx.send(Input::Watch(source, ev)).is_err() {
                return;
            }
        }
    })
}

/// Runs the agent until `shutdown` resolves (or forever). `local` is this
/// cluster's API, `broker` the broker's (with this cluster's token).
pub async fn run(
    cfg: AgentConfig,
    local: Client,
    broker: Client,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let sys = cfg.system_namespace.clone();
    let bns = cfg.broker_namespace.clone();
    let watches = vec![
        spawn_watch::<ServiceExport>(Api::all(local.clone()), SOURCES[0], tx.clone(), |o| {
            Obj::ServiceExport(Arc::new(o))
        }),
        spawn_watch::<Service>(Api::all(local.clone()), SOURCES[1], tx.clone(), |o| {
            Obj::Service(Arc::new(o))
        }),
        spawn_watch::<EndpointSlice>(Api::all(local.clone()), SOURCES[2], tx.clone(), |o| {
            Obj::EndpointSlice(Arc::new(o))
        }),
        spawn_watch::<Namespace>(Api::all(local.clone()), SOURCES[3], tx.clone(), |o| {
            Obj::Namespace(Arc::new(o))
        }),
        spawn_watch::<ServiceImport>(Api::all(local.clone()), SOURCES[4], tx.clone(), |o| {
            Obj::ServiceImport(Arc::new(o))
        }),
        spawn_watch::<Cluster>(
            Api::namespaced(local.clone(), &sys),
            SOURCES[5],
            tx.clone(),
            |o| Obj::Cluster(Arc::new(o)),
        ),
        spawn_watch::<Endpoint>(
            Api::namespaced(local.clone(), &sys),
            SOURCES[6],
            tx.clone(),
            |o| Obj::Endpoint(Arc::new(o)),
        ),
        spawn_watch::<ServiceImport>(
            Api::namespaced(broker.clone(), &bns),
            SOURCES[7],
            tx.clone(),
            |o| Obj::ServiceImport(Arc::new(o)),
        ),
        spawn_watch::<EndpointSlice>(
            Api::namespaced(broker.clone(), &bns),
            SOURCES[8],
            tx.clone(),
            |o| Obj::EndpointSlice(Arc::new(o)),
        ),
        spawn_watch::<Cluster>(
            Api::namespaced(broker.clone(), &bns),
            SOURCES[9],
            tx.clone(),
            |o| Obj::Cluster(Arc::new(o)),
        ),
        spawn_watch::<Endpoint>(
            Api::namespaced(broker.clone(), &bns),
            SOURCES[10],
            tx.clone(),
            |o| Obj::Endpoint(Arc::new(o)),
        ),
    ];
    let cfg_writers = cfg.write_concurrency.max(1);
    let mut engine = Engine {
        cfg,
        local,
        broker,
        stores: SOURCES.iter().map(|s| (*s, Store::default())).collect(),
        queue: VecDeque::new(),
        queued: HashSet::new(),
        inflight: HashMap::new(),
        dirty: HashSet::new(),
        applied: HashMap::new(),
        attempts: HashMap::new(),
        ready: false,
        tx,
        blocked: VecDeque::new(),
        blocked_set: HashSet::new(),
        writers: Arc::new(tokio::sync::Semaphore::new(cfg_writers)),
    };
    info!(cluster = %engine.cfg.cluster_id, "agent starting");
    let main = async {
        while let Some(input) = rx.recv().await {
            engine.handle(input);
            // Take everything already waiting before reconciling, so a burst
            // of events for one key costs one reconcile.
            while let Ok(input) = rx.try_recv() {
                engine.handle(input);
            }
            engine.drain();
        }
    };
    tokio::select! {
        () = main => {}
        () = shutdown => {}
    }
    for w in watches {
        w.abort();
    }
    info!("agent stopped");
}

impl Engine {
    /// Writes accepted at once (queued behind the writers); beyond this,
    /// keys wait and recompute their bodies later, bounding memory.
    fn max_pending(&self) -> usize {
        self.cfg.write_concurrency.max(1).saturating_mul(32)
    }

    fn store(&self, side: Side, kind: Kind) -> &Store {
        // Every source has a store from construction on (invariant), so the
        // fallback is never used; it keeps this panic-free.
        static EMPTY: std::sync::OnceLock<Store> = std::sync::OnceLock::new();
        self.stores
            .get(&(side, kind))
            .unwrap_or_else(|| EMPTY.get_or_init(Store::default))
    }

    fn get(&self, side: Side, kind: Kind, ns: &str, name: &str) -> Option<&Obj> {
        self.store(side, kind)
            .objs
            .get(&(ns.to_string(), name.to_string()))
    }

    fn indexed(&self, side: Side, kind: Kind, ns: &str, svc: &str) -> Vec<&Obj> {
        let store = self.store(side, kind);
        store
            .by_service
            .get(&(ns.to_string(), svc.to_string()))
            .map(|keys| keys.iter().filter_map(|k| store.objs.get(k)).collect())
            .unwrap_or_default()
    }

    fn enqueue(&mut self, key: Key) {
        if self.queued.insert(key.clone()) {
            self.queue.push_back(key);
        }
    }

    fn keys_for(&self, source: Source, obj: &Obj) -> Vec<Key> {
        let (ns, name) = obj.key();
        let id = &self.cfg.cluster_id;
        // The cluster that hosts the broker sees the broker's objects among
        // its own: they are the broker's, never local imports to reconcile
        // (doing so deleted every export, fighting the exporters).
        if source.0 == Side::Local && ns == self.cfg.broker_namespace {
            return Vec::new();
        }
        match source {
            (Side::Local, Kind::ServiceExport | Kind::Service) => vec![Key::Export(ns, name)],
            (Side::Local, Kind::EndpointSlice) => {
                if obj.label(MANAGED_BY) == Some(MANAGED_BY_FERRY) {
                    obj.label(SERVICE_NAME)
                        .map(|s| vec![Key::Import(ns, s.to_string())])
                        .unwrap_or_default()
                } else {
                    obj.label(K8S_SERVICE_NAME)
                        .map(|s| vec![Key::Export(ns, s.to_string())])
                        .unwrap_or_default()
                }
            }
            (Side::Local, Kind::Namespace) => {
                let mut svcs: BTreeSet<String> = BTreeSet::new();
                let store = self.store(Side::Broker, Kind::ServiceImport);
                for (ns_svc, _) in store.by_service.iter().filter(|(k, _)| k.0 == name) {
                    svcs.insert(ns_svc.1.clone());
                }
                svcs.into_iter()
                    .map(|s| Key::Import(name.clone(), s))
                    .collect()
            }
            (Side::Local, Kind::ServiceImport) => vec![Key::Import(ns, name)],
            (_, Kind::Cluster) => vec![Key::Cluster(name)],
            (_, Kind::Endpoint) => vec![Key::Endpoint(name)],
            (Side::Broker, Kind::ServiceImport | Kind::EndpointSlice) => {
                let Some((ons, svc)) = source_index(source, obj) else {
                    return Vec::new();
                };
                let mut keys = vec![Key::Import(ons.clone(), svc.clone())];
                // Every exporter's conflict condition depends on the others.
                if source.1 == Kind::ServiceImport || obj.label(SOURCE_CLUSTER) == Some(id) {
                    keys.push(Key::Export(ons, svc));
                }
                keys
            }
            (Side::Broker, _) => Vec::new(),
        }
    }

    fn put(&mut self, source: Source, obj: Obj) -> bool {
        let key = obj.key();
        let idx = source_index(source, &obj);
        let Some(store) = self.stores.get_mut(&source) else {
            return false;
        };
        if let Some(old) = store.objs.get(&key)
            && let (Some(a), Some(b)) = (rv_u64(old.meta()), rv_u64(obj.meta()))
            && b < a
        {
            return false; // an older event than what we hold (e.g. our write's answer)
        }
        if let Some(old) = store.objs.insert(key.clone(), obj)
            && let Some(old_idx) = source_index(source, &old)
            && let Some(set) = store.by_service.get_mut(&old_idx)
        {
            set.remove(&key);
            if set.is_empty() {
                store.by_service.remove(&old_idx);
            }
        }
        if let Some(i) = idx {
            store.by_service.entry(i).or_default().insert(key);
        }
        true
    }

    fn remove(&mut self, source: Source, key: &ObjKey) -> Option<Obj> {
        let store = self.stores.get_mut(&source)?;
        let old = store.objs.remove(key)?;
        if let Some(i) = source_index(source, &old)
            && let Some(set) = store.by_service.get_mut(&i)
        {
            set.remove(key);
            if set.is_empty() {
                store.by_service.remove(&i);
            }
        }
        Some(old)
    }

    fn handle(&mut self, input: Input) {
        match input {
            Input::Watch(source, ev) => self.handle_watch(source, ev),
            Input::Retry(key) => self.enqueue(key),
            Input::Written {
                target,
                key,
                hash,
                result,
            } => {
                self.inflight.remove(&target);
                // Re-run as many blocked keys as there are free writers (not
                // all of them: they would just block again, at O(n) a turn).
                let free = self.max_pending().saturating_sub(self.inflight.len());
                for _ in 0..free {
                    let Some(k) = self.blocked.pop_front() else {
                        break;
                    };
                    self.blocked_set.remove(&k);
                    self.enqueue(k);
                }
                let source = (target.side, target.kind);
                match result {
                    Ok(Some(obj)) => {
                        self.attempts.remove(&key);
                        self.applied
                            .insert(target.clone(), (hash, obj.meta().resource_version.clone()));
                        let keys = self.keys_for(source, &obj);
                        if self.put(source, obj) {
                            keys.into_iter().for_each(|k| self.enqueue(k));
                        }
                    }
                    Ok(None) => {
                        self.attempts.remove(&key);
                        self.applied.remove(&target);
                        if let Some(old) =
                            self.remove(source, &(target.ns.clone(), target.name.clone()))
                        {
                            for k in self.keys_for(source, &old) {
                                self.enqueue(k);
                            }
                        }
                    }
                    Err(e) => {
                        let n = self.attempts.entry(key.clone()).or_insert(0);
                        *n = n.saturating_add(1);
                        let delay = Duration::from_millis(50)
                            .saturating_mul(1u32 << (*n).min(10))
                            .min(Duration::from_secs(10));
                        warn!(?target, error = %e, retry_in = ?delay, "write failed");
                        let tx = self.tx.clone();
                        let k = key.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(delay).await;
                            let _ = tx.send(Input::Retry(k));
                        });
                    }
                }
                if self.dirty.remove(&key) {
                    self.enqueue(key);
                }
            }
        }
    }

    fn handle_watch(&mut self, source: Source, ev: WatchEvent) {
        match ev {
            WatchEvent::Init => {
                if let Some(s) = self.stores.get_mut(&source) {
                    s.init = Some(HashMap::new());
                }
            }
            WatchEvent::InitApply(obj) => {
                if let Some(s) = self.stores.get_mut(&source) {
                    s.init
                        .get_or_insert_with(HashMap::new)
                        .insert(obj.key(), obj);
                }
            }
            WatchEvent::InitDone => {
                let Some(store) = self.stores.get_mut(&source) else {
                    return;
                };
                let fresh = store.init.take().unwrap_or_default();
                let old: Vec<Obj> = std::mem::take(&mut store.objs).into_values().collect();
                store.by_service.clear();
                store.synced = true;
                let mut keys: BTreeSet<Key> = BTreeSet::new();
                for o in &old {
                    keys.extend(self.keys_for(source, o));
                }
                for (_, o) in fresh {
                    keys.extend(self.keys_for(source, &o));
                    self.put(source, o);
                }
                debug!(?source, keys = keys.len(), "relisted");
                keys.into_iter().for_each(|k| self.enqueue(k));
                if !self.ready && self.stores.values().all(|s| s.synced) {
                    self.ready = true;
                    info!(cluster = %self.cfg.cluster_id, "initial sync of the cluster and the broker done");
                    self.enqueue(Key::Cluster(self.cfg.cluster_id.clone()));
                }
            }
            WatchEvent::Apply(obj) => {
                let keys = self.keys_for(source, &obj);
                if self.put(source, obj) {
                    keys.into_iter().for_each(|k| self.enqueue(k));
                }
            }
            WatchEvent::Delete(obj) => {
                let keys = self.keys_for(source, &obj);
                self.remove(source, &obj.key());
                keys.into_iter().for_each(|k| self.enqueue(k));
            }
        }
    }

    fn drain(&mut self) {
        if !self.ready {
            return;
        }
        while let Some(key) = self.queue.pop_front() {
            self.queued.remove(&key);
            match &key {
                Key::Export(ns, name) => self.reconcile_export(&key, ns, name),
                Key::Import(ns, name) => self.reconcile_import(&key, ns, name),
                Key::Cluster(name) => self.reconcile_ferry(&key, Kind::Cluster, name),
                Key::Endpoint(name) => self.reconcile_ferry(&key, Kind::Endpoint, name),
            }
        }
    }

    /// Makes `target` look like `desired` (None: absent). Returns whether it
    /// already does.
    fn ensure(
        &mut self,
        key: &Key,
        target: Target,
        desired: Option<(Value, Option<Value>)>,
    ) -> bool {
        let observed = self
            .get(target.side, target.kind, &target.ns, &target.name)
            .cloned();
        let op = match (desired, observed) {
            (None, None) => return true,
            (None, Some(_)) => Op::Delete,
            (Some((body, status)), observed) => {
                let hash = hash_value(&json!([body, status]));
                if let Some(obs) = &observed {
                    let ov = obs.to_value();
                    let same = is_subset(&body, &ov)
                        && status
                            .as_ref()
                            .is_none_or(|s| is_subset(s, ov.get("status").unwrap_or(&Value::Null)));
                    let unchanged_since_applied =
                        self.applied.get(&target).is_some_and(|(h, rv)| {
                            *h == hash && rv.is_some() && *rv == obs.meta().resource_version
                        });
                    if same || unchanged_since_applied {
                        return true;
                    }
                }
                Op::Apply(body, status)
            }
        };
        self.write(key, target, op);
        false
    }

    fn ensure_status(&mut self, key: &Key, target: Target, status: Value) -> bool {
        let Some(obs) = self.get(target.side, target.kind, &target.ns, &target.name) else {
            return false;
        };
        let ov = obs.to_value();
        if is_subset(&status, ov.get("status").unwrap_or(&Value::Null)) {
            return true;
        }
        self.write(key, target, Op::Status(status));
        false
    }

    fn write(&mut self, key: &Key, target: Target, op: Op) {
        if self.inflight.contains_key(&target) {
            self.dirty.insert(key.clone());
            return;
        }
        if self.inflight.len() >= self.max_pending() {
            if self.blocked_set.insert(key.clone()) {
                self.blocked.push_back(key.clone());
            }
            return;
        }
        self.inflight.insert(target.clone(), key.clone());
        let client = match target.side {
            Side::Local => self.local.clone(),
            Side::Broker => self.broker.clone(),
        };
        let hash = match &op {
            Op::Apply(b, s) => hash_value(&json!([b, s])),
            _ => 0,
        };
        let tx = self.tx.clone();
        let key = key.clone();
        let writers = self.writers.clone();
        tokio::spawn(async move {
            // The semaphore is never closed, so acquiring only waits.
            let _permit = writers.acquire_owned().await;
            let result = do_write(client, &target, op).await;
            let _ = tx.send(Input::Written {
                target,
                key,
                hash,
                result,
            });
        });
    }

    fn reconcile_export(&mut self, key: &Key, ns: &str, svc: &str) {
        let id = self.cfg.cluster_id.clone();
        let bns = self.cfg.broker_namespace.clone();
        let bname = broker_name(svc, ns, &id);
        let t_import = Target {
            side: Side::Broker,
            kind: Kind::ServiceImport,
            ns: bns.clone(),
            name: bname.clone(),
        };
        let t_slice = Target {
            side: Side::Broker,
            kind: Kind::EndpointSlice,
            ns: bns.clone(),
            name: bname.clone(),
        };
        let export = match self.get(Side::Local, Kind::ServiceExport, ns, svc) {
            Some(Obj::ServiceExport(e)) => Some(e.clone()),
            _ => None,
        };
        let service = match self.get(Side::Local, Kind::Service, ns, svc) {
            Some(Obj::Service(s)) => Some(s.clone()),
            _ => None,
        };
        let Some(export) = export.filter(|e| e.metadata.deletion_timestamp.is_none()) else {
            self.ensure(key, t_import, None);
            self.ensure(key, t_slice, None);
            return;
        };
        let validity = mcs::validate_service(service.as_deref());
        let previous = export
            .status
            .as_ref()
            .map(|s| s.conditions.clone())
            .unwrap_or_default();
        let now = Time(k8s_openapi::jiff::Timestamp::now());
        let t_export = Target {
            side: Side::Local,
            kind: Kind::ServiceExport,
            ns: ns.into(),
            name: svc.into(),
        };
        let (Validity::Valid, Some(service)) = (&validity, service) else {
            self.ensure(key, t_import, None);
            self.ensure(key, t_slice, None);
            let conds = mcs::export_conditions(&validity, Readiness::Pending, &[], &previous, &now);
            if !mcs::same_conditions(&conds, &previous) {
                self.ensure_status(key, t_export, json!({"conditions": conds}));
            }
            return;
        };
        let created = export
            .metadata
            .creation_timestamp
            .clone()
            .unwrap_or_else(|| now.clone());
        let mine = mcs::export_of(&id, created.clone(), &service);

        let common = [
            (CLUSTER, id.as_str()),
            (SOURCE_CLUSTER, id.as_str()),
            (SERVICE_NAME, svc),
            (ORIGIN_NAME, svc),
            (ORIGIN_NAMESPACE, ns),
            (APP_MANAGED_BY, APP_MANAGED_BY_FERRY),
        ];
        let import_spec = ServiceImportSpec {
            ports: mine.ports.clone(),
            ips: if mine.type_ == ferry_api::ServiceImportType::ClusterSetIp {
                mcs::cluster_ips(&service)
            } else {
                Vec::new()
            },
            type_: mine.type_,
            session_affinity: mine.session_affinity.clone(),
            session_affinity_config: mine.session_affinity_config.clone(),
        };
        let import_body = json!({
            "apiVersion": "multicluster.x-k8s.io/v1alpha1",
            "kind": "ServiceImport",
            "metadata": {
                "name": bname, "namespace": bns,
                "labels": labels_of(&common),
                "annotations": {EXPORT_CREATED: to_json(&created)},
            },
            "spec": to_json(&import_spec),
        });
        let slices: Vec<Obj> = self
            .indexed(Side::Local, Kind::EndpointSlice, ns, svc)
            .into_iter()
            .filter(|o| o.label(MANAGED_BY) != Some(MANAGED_BY_FERRY))
            .cloned()
            .collect();
        let slice_refs: Vec<&EndpointSlice> = slices
            .iter()
            .filter_map(|o| match o {
                Obj::EndpointSlice(s) => Some(s.as_ref()),
                _ => None,
            })
            .collect();
        let eps = mcs::exported_endpoints(&service, &slice_refs);
        let mut slice_labels = labels_of(&common);
        slice_labels.insert(MANAGED_BY.into(), MANAGED_BY_FERRY.into());
        let slice_body = json!({
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {"name": bname, "namespace": bns, "labels": slice_labels},
            "addressType": eps.address_type,
            "endpoints": to_json(&eps.endpoints),
            "ports": to_json(&eps.ports),
        });
        let import_ok = self.ensure(key, t_import, Some((import_body, None)));
        let slice_ok = self.ensure(key, t_slice, Some((slice_body, None)));

        // Conflicts against every other cluster's export on the broker.
        let mut exports: Vec<Export> = self
            .indexed(Side::Broker, Kind::ServiceImport, ns, svc)
            .into_iter()
            .filter_map(|o| match o {
                Obj::ServiceImport(si) => parse_export(si),
                _ => None,
            })
            .filter(|e| e.cluster != id)
            .collect();
        exports.push(mine);
        let conflicts = mcs::merge(&exports)
            .map(|m| m.conflicts_of(&id).to_vec())
            .unwrap_or_default();
        let readiness = if import_ok && slice_ok {
            Readiness::Exported
        } else {
            Readiness::Pending
        };
        let conds = mcs::export_conditions(&validity, readiness, &conflicts, &previous, &now);
        if !mcs::same_conditions(&conds, &previous) {
            self.ensure_status(key, t_export, json!({"conditions": conds}));
        }
    }

    fn reconcile_import(&mut self, key: &Key, ns: &str, svc: &str) {
        let t_import = Target {
            side: Side::Local,
            kind: Kind::ServiceImport,
            ns: ns.into(),
            name: svc.into(),
        };
        let ns_exists = self.get(Side::Local, Kind::Namespace, "", ns).is_some();
        let exports: Vec<Export> = self
            .indexed(Side::Broker, Kind::ServiceImport, ns, svc)
            .into_iter()
            .filter_map(|o| match o {
                Obj::ServiceImport(si) => parse_export(si),
                _ => None,
            })
            .collect();
        let merged = if ns_exists {
            mcs::merge(&exports)
        } else {
            None
        };

        // Local ferry-managed slices of this service.
        let existing: Vec<String> = self
            .indexed(Side::Local, Kind::EndpointSlice, ns, svc)
            .into_iter()
            .filter(|o| o.label(MANAGED_BY) == Some(MANAGED_BY_FERRY))
            .map(|o| o.key().1)
            .collect();
        let mut wanted: BTreeMap<String, Value> = BTreeMap::new();
        if let Some(m) = &merged {
            for o in self.indexed(Side::Broker, Kind::EndpointSlice, ns, svc) {
                let Obj::EndpointSlice(s) = o else { continue };
                let Some(cluster) = o.label(SOURCE_CLUSTER) else {
                    continue;
                };
                if !m.clusters.iter().any(|c| c == cluster) {
                    continue;
                }
                let name = import_slice_name(svc, cluster);
                let labels = labels_of(&[
                    (SERVICE_NAME, svc),
                    (SOURCE_CLUSTER, cluster),
                    (CLUSTER, cluster),
                    (MANAGED_BY, MANAGED_BY_FERRY),
                    (APP_MANAGED_BY, APP_MANAGED_BY_FERRY),
                ]);
                wanted.insert(
                    name.clone(),
                    json!({
                        "apiVersion": "discovery.k8s.io/v1",
                        "kind": "EndpointSlice",
                        "metadata": {"name": name, "namespace": ns, "labels": labels},
                        "addressType": s.address_type,
                        "endpoints": to_json(&s.endpoints),
                        "ports": to_json(&s.ports),
                    }),
                );
            }
        }
        for name in existing {
            if !wanted.contains_key(&name) {
                let t = Target {
                    side: Side::Local,
                    kind: Kind::EndpointSlice,
                    ns: ns.into(),
                    name,
                };
                self.ensure(key, t, None);
            }
        }
        for (name, body) in wanted {
            let t = Target {
                side: Side::Local,
                kind: Kind::EndpointSlice,
                ns: ns.into(),
                name,
            };
            self.ensure(key, t, Some((body, None)));
        }

        match merged {
            Some(m) => {
                let status = ServiceImportStatus {
                    clusters: m
                        .clusters
                        .iter()
                        .map(|c| ClusterStatus { cluster: c.clone() })
                        .collect(),
                };
                let body = json!({
                    "apiVersion": "multicluster.x-k8s.io/v1alpha1",
                    "kind": "ServiceImport",
                    "metadata": {
                        "name": svc, "namespace": ns,
                        "labels": {APP_MANAGED_BY: APP_MANAGED_BY_FERRY},
                    },
                    "spec": to_json(&m.spec),
                });
                self.ensure(key, t_import, Some((body, Some(to_json(&status)))));
            }
            None => {
                let ours = self
                    .get(Side::Local, Kind::ServiceImport, ns, svc)
                    .is_some_and(|o| o.label(APP_MANAGED_BY) == Some(APP_MANAGED_BY_FERRY));
                if ours {
                    self.ensure(key, t_import, None);
                }
            }
        }
    }

    /// `Cluster` and `Endpoint`: ours are published to the broker (and our
    /// own Cluster also written locally); remote ones are copied into the
    /// system namespace, and their copies deleted when they leave the broker.
    fn reconcile_ferry(&mut self, key: &Key, kind: Kind, name: &str) {
        let id = self.cfg.cluster_id.clone();
        let sys = self.cfg.system_namespace.clone();
        let bns = self.cfg.broker_namespace.clone();
        let local = self.get(Side::Local, kind, &sys, name).cloned();
        let broker = self.get(Side::Broker, kind, &bns, name).cloned();
        let t_broker = Target {
            side: Side::Broker,
            kind,
            ns: bns.clone(),
            name: name.into(),
        };
        let t_local = Target {
            side: Side::Local,
            kind,
            ns: sys.clone(),
            name: name.into(),
        };
        let own_labels = labels_of(&[(CLUSTER, &id), (APP_MANAGED_BY, APP_MANAGED_BY_FERRY)]);
        let body = |ns: &str, labels: &BTreeMap<String, String>, spec: Value| {
            let (api_version, kind_name) = match kind {
                Kind::Cluster => ("ferry.dev/v1alpha1", "Cluster"),
                _ => ("ferry.dev/v1alpha1", "Endpoint"),
            };
            json!({
                "apiVersion": api_version, "kind": kind_name,
                "metadata": {"name": name, "namespace": ns, "labels": labels},
                "spec": spec,
            })
        };
        let spec_of = |o: &Obj| o.to_value().get("spec").cloned().unwrap_or(Value::Null);

        if kind == Kind::Cluster && name == id {
            let spec = to_json(&ClusterSpec {
                cluster_id: id.clone(),
                cluster_cidrs: self.cfg.cluster_cidrs.clone(),
                service_cidrs: self.cfg.service_cidrs.clone(),
                global_cidrs: Vec::new(),
            });
            self.ensure(
                key,
                t_broker,
                Some((body(&bns, &own_labels, spec.clone()), None)),
            );
            self.ensure(key, t_local, Some((body(&sys, &own_labels, spec), None)));
            return;
        }
        let local_label = local
            .as_ref()
            .and_then(|o| o.label(CLUSTER))
            .map(str::to_string);
        let broker_label = broker
            .as_ref()
            .and_then(|o| o.label(CLUSTER))
            .map(str::to_string);
        if local_label.as_deref() == Some(id.as_str()) && kind == Kind::Endpoint {
            if let Some(o) = &local {
                self.ensure(
                    key,
                    t_broker,
                    Some((body(&bns, &own_labels, spec_of(o)), None)),
                );
            }
            return;
        }
        if broker_label.as_deref() == Some(id.as_str()) {
            // Ours on the broker, but no longer here.
            self.ensure(key, t_broker, None);
            return;
        }
        match (&broker, &broker_label) {
            (Some(b), Some(remote)) => {
                let labels =
                    labels_of(&[(CLUSTER, remote), (APP_MANAGED_BY, APP_MANAGED_BY_FERRY)]);
                self.ensure(key, t_local, Some((body(&sys, &labels, spec_of(b)), None)));
            }
            _ => {
                if local_label.is_some_and(|l| l != id) {
                    self.ensure(key, t_local, None);
                }
            }
        }
    }
}

fn parse_export(si: &ServiceImport) -> Option<Export> {
    let labels = si.metadata.labels.as_ref()?;
    let cluster = labels.get(SOURCE_CLUSTER)?.clone();
    let created: Time = si
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(EXPORT_CREATED))
        .and_then(|t| serde_json::from_value(Value::String(t.clone())).ok())
        .or_else(|| si.metadata.creation_timestamp.clone())?;
    Some(Export {
        cluster,
        created,
        type_: si.spec.type_,
        ports: si.spec.ports.clone(),
        session_affinity: si.spec.session_affinity.clone(),
        session_affinity_config: si.spec.session_affinity_config.clone(),
    })
}

async fn do_write(client: Client, target: &Target, op: Op) -> Result<Option<Obj>, String> {
    let ar = api_resource(target.kind);
    let api: Api<DynamicObject> = Api::namespaced_with(client, &target.ns, &ar);
    let to_obj = |d: DynamicObject| {
        serde_json::to_value(d)
            .ok()
            .and_then(|v| Obj::from_value(target.kind, v))
            .ok_or_else(|| "cannot decode the server's answer".to_string())
    };
    match op {
        Op::Apply(body, status) => {
            let pp = PatchParams::apply(FIELD_MANAGER).force();
            let mut obj = api
                .patch(&target.name, &pp, &Patch::Apply(&body))
                .await
                .map_err(|e| e.to_string())?;
            if let Some(status) = status {
                obj = api
                    .patch_status(
                        &target.name,
                        &PatchParams::default(),
                        &Patch::Merge(&json!({"status": status})),
                    )
                    .await
                    .map_err(|e| e.to_string())?;
            }
            obj.metadata.managed_fields = None;
            to_obj(obj).map(Some)
        }
        Op::Status(status) => {
            let obj = api
                .patch_status(
                    &target.name,
                    &PatchParams::default(),
                    &Patch::Merge(&json!({"status": status})),
                )
                .await
                .map_err(|e| e.to_string())?;
            let mut obj = obj;
            obj.metadata.managed_fields = None;
            to_obj(obj).map(Some)
        }
        Op::Delete => match api.delete(&target.name, &DeleteParams::default()).await {
            Ok(_) => Ok(None),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
            Err(e) => Err(e.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subset_rules() {
        let cases = [
            (json!({"a": 1}), json!({"a": 1, "b": 2}), true),
            (json!({"a": 1}), json!({"a": 2}), false),
            (json!({"a": {"x": 1}}), json!({"a": {"x": 1, "y": 2}}), true),
            (
                json!({"a": [{"x": 1}]}),
                json!({"a": [{"x": 1, "d": true}]}),
                true,
            ),
            (json!({"a": [1, 2]}), json!({"a": [1]}), false),
            (json!({"a": null}), json!({}), true),
            (json!({"a": []}), json!({}), false),
            (json!({"a": {}}), json!({}), true),
        ];
        for (d, o, want) in cases {
            assert_eq!(is_subset(&d, &o), want, "{d} ⊆ {o}");
        }
    }
}
