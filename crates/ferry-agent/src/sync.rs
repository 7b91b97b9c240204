//! The agent's sync engine: watches the cluster's and the broker's objects,
//! keeps what it reads of them in indexed in-memory stores ([`crate::store`]:
//! reduced objects and digests, not whole objects), and reconciles per key
//! (`Export(ns, svc)`, `Import(ns, svc)`, `Cluster(name)`, `Endpoint(name)`)
//! by comparing the digest of what it wants with the digest of what is
//! there, writing only the differences through a bounded pool of concurrent
//! writers.
//!
//! Event-driven: a watch event enqueues the keys it touches, and the queue is
//! drained at once — no fixed rate limit. When either API goes away, the
//! stores keep their last contents (nothing is deleted for lack of news), the
//! watchers reconnect with backoff, failed writes are retried with per-key
//! exponential backoff, and a relist (after reconnecting) re-reconciles every
//! key it touched, writing only what differs.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
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
use k8s_openapi::api::discovery::v1::{Endpoint as SliceEndpoint, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::mcs::{self, Export, Readiness, Validity};
use crate::store::{
    self, Data, Item, K8S_SERVICE_NAME, Kind, Obj, Side, SliceInfo, Store, Watched,
};
use crate::write_limit::WriteLimit;

pub use crate::store::EXPORT_CREATED;

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
    /// Most writes in flight at once, over one HTTP/2 connection per API
    /// server ([`crate::client`]). The API server commits concurrent writes
    /// together, so more in flight means fewer, larger commits: at 10k
    /// services 256 synced ~25 % faster than 64 for ~6 MB more. A server
    /// that answers 429 (kube-apiserver's API Priority and Fairness) halves
    /// it for a while ([`crate::write_limit`]).
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
            write_concurrency: 256,
        }
    }
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

/// The cluster's EndpointSlices belong to their Service (ferry's imports to
/// the imported service).
fn index_local_slice<'a>(ns: &'a str, o: &'a Obj) -> Option<(&'a str, &'a str)> {
    let svc = if o.label(MANAGED_BY) == Some(MANAGED_BY_FERRY) {
        o.label(SERVICE_NAME)
    } else {
        o.label(K8S_SERVICE_NAME)
    }?;
    Some((ns, svc))
}

/// A cluster's export data on the broker belongs to the service it exports.
fn index_origin<'a>(_ns: &'a str, o: &'a Obj) -> Option<(&'a str, &'a str)> {
    Some((o.label(ORIGIN_NAMESPACE)?, o.label(ORIGIN_NAME)?))
}

fn new_store(source: Source) -> Store {
    match source {
        (Side::Local, Kind::EndpointSlice) => Store::new(Some(index_local_slice)),
        (Side::Broker, Kind::ServiceImport | Kind::EndpointSlice) => Store::new(Some(index_origin)),
        _ => Store::new(None),
    }
}

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

impl Target {
    fn new(side: Side, kind: Kind, ns: &str, name: &str) -> Target {
        Target {
            side,
            kind,
            ns: ns.into(),
            name: name.into(),
        }
    }
}

/// The body of a server-side apply, serialised by the writer task.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Body {
    Import(Box<ServiceImport>),
    Slice(Box<EndpointSlice>),
    Json(Value),
}

#[derive(Debug)]
enum Op {
    /// Server-side apply of the object, then (if any) a merge patch of its status.
    Apply(Body, Option<Value>),
    /// Merge patch of the status only.
    Status(Value),
    Delete,
}

/// The digests a write makes true: of the main resource and of the status.
#[derive(Clone, Copy, Debug, Default)]
struct Digests {
    main: Option<u64>,
    status: Option<u64>,
}

/// How a target compares with what is wanted.
enum Diff {
    Same,
    /// The main resource differs (or is missing); the status too, if `status`.
    Main {
        status: bool,
    },
    StatusOnly,
}

enum WatchEvent {
    Init,
    InitApply(Item),
    InitDone,
    Apply(Item),
    Delete(Item),
}

enum Input {
    Watch(Source, WatchEvent),
    Written {
        target: Target,
        key: Key,
        digests: Digests,
        result: Result<Option<Item>, WriteFailed>,
    },
    Retry(Key),
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
    attempts: HashMap<Key, u32>,
    ready: bool,
    tx: mpsc::UnboundedSender<Input>,
    /// Keys that came up while the writers' queue was full: re-run (and
    /// recompute their bodies) once it has drained, so memory stays bounded.
    blocked: VecDeque<Key>,
    blocked_set: HashSet<Key>,
    /// Requests actually on the wire at once.
    writers: Arc<tokio::sync::Semaphore>,
    /// How many permits `writers` should hold now.
    write_limit: WriteLimit,
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

fn meta(name: &str, ns: &str, labels: &[(&str, &str)]) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some(ns.into()),
        labels: Some(labels_of(labels)),
        ..Default::default()
    }
}

/// A ServiceImport as ferry writes it: the digest of its written fields and
/// the object to apply come from the same parts.
struct WantedImport<'a> {
    labels: &'a [(&'a str, &'a str)],
    /// The export-creation annotation (exports on the broker only).
    created_at: Option<&'a str>,
    spec: &'a ServiceImportSpec,
}

impl WantedImport<'_> {
    fn digest(&self) -> u64 {
        store::import_digest(&store::label_pairs(self.labels), self.created_at, self.spec)
    }

    fn body(&self, name: &str, ns: &str) -> Body {
        let mut metadata = meta(name, ns, self.labels);
        metadata.annotations = self
            .created_at
            .map(|c| BTreeMap::from([(EXPORT_CREATED.to_string(), c.to_string())]));
        Body::Import(Box::new(ServiceImport {
            metadata,
            spec: self.spec.clone(),
            status: None,
        }))
    }
}

/// An EndpointSlice as ferry writes it (see [`WantedImport`]).
struct WantedSlice<'a> {
    labels: &'a [(&'a str, &'a str)],
    address_type: &'a str,
    endpoints: &'a [SliceEndpoint],
    ports: &'a [EndpointPort],
}

impl WantedSlice<'_> {
    fn digest(&self) -> u64 {
        store::slice_digest(
            &store::label_pairs(self.labels),
            self.address_type,
            self.endpoints,
            self.ports,
        )
    }

    fn body(&self, name: &str, ns: &str) -> Body {
        Body::Slice(Box::new(EndpointSlice {
            metadata: meta(name, ns, self.labels),
            address_type: self.address_type.to_string(),
            endpoints: self.endpoints.to_vec(),
            ports: Some(self.ports.to_vec()),
        }))
    }
}

/// A Cluster or an Endpoint as ferry writes it (see [`WantedImport`]).
struct WantedSpec<'a> {
    kind: &'a str,
    labels: &'a [(&'a str, &'a str)],
    spec: &'a Value,
}

impl WantedSpec<'_> {
    fn digest(&self) -> u64 {
        store::spec_digest(&store::label_pairs(self.labels), self.spec)
    }

    fn body(&self, name: &str, ns: &str) -> Body {
        Body::Json(json!({
            "apiVersion": "ferry.dev/v1alpha1", "kind": self.kind,
            "metadata": {"name": name, "namespace": ns, "labels": labels_of(self.labels)},
            "spec": self.spec,
        }))
    }
}

fn spawn_watch<K: Watched>(
    api: Api<K>,
    source: Source,
    tx: mpsc::UnboundedSender<Input>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        while let Some(ev) = stream.next().await {
            // Reduced here, on the watch's task: the engine never sees (nor
            // queues) whole objects.
            let ev = match ev {
                Ok(watcher::Event::Init) => WatchEvent::Init,
                Ok(watcher::Event::InitApply(o)) => WatchEvent::InitApply(Item::of(o, source.0)),
                Ok(watcher::Event::InitDone) => WatchEvent::InitDone,
                Ok(watcher::Event::Apply(o)) => WatchEvent::Apply(Item::of(o, source.0)),
                Ok(watcher::Event::Delete(o)) => WatchEvent::Delete(Item::of(o, source.0)),
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
        spawn_watch::<ServiceExport>(Api::all(local.clone()), SOURCES[0], tx.clone()),
        spawn_watch::<Service>(Api::all(local.clone()), SOURCES[1], tx.clone()),
        spawn_watch::<EndpointSlice>(Api::all(local.clone()), SOURCES[2], tx.clone()),
        spawn_watch::<Namespace>(Api::all(local.clone()), SOURCES[3], tx.clone()),
        spawn_watch::<ServiceImport>(Api::all(local.clone()), SOURCES[4], tx.clone()),
        spawn_watch::<Cluster>(Api::namespaced(local.clone(), &sys), SOURCES[5], tx.clone()),
        spawn_watch::<Endpoint>(Api::namespaced(local.clone(), &sys), SOURCES[6], tx.clone()),
        spawn_watch::<ServiceImport>(
            Api::namespaced(broker.clone(), &bns),
            SOURCES[7],
            tx.clone(),
        ),
        spawn_watch::<EndpointSlice>(
            Api::namespaced(broker.clone(), &bns),
            SOURCES[8],
            tx.clone(),
        ),
        spawn_watch::<Cluster>(
            Api::namespaced(broker.clone(), &bns),
            SOURCES[9],
            tx.clone(),
        ),
        spawn_watch::<Endpoint>(
            Api::namespaced(broker.clone(), &bns),
            SOURCES[10],
            tx.clone(),
        ),
    ];
    let cfg_writers = cfg.write_concurrency.max(1);
    let mut engine = Engine {
        cfg,
        local,
        broker,
        stores: SOURCES.iter().map(|s| (*s, new_store(*s))).collect(),
        queue: VecDeque::new(),
        queued: HashSet::new(),
        inflight: HashMap::new(),
        dirty: HashSet::new(),
        attempts: HashMap::new(),
        ready: false,
        tx,
        blocked: VecDeque::new(),
        blocked_set: HashSet::new(),
        writers: Arc::new(tokio::sync::Semaphore::new(cfg_writers)),
        write_limit: WriteLimit::new(cfg_writers),
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
    /// Writes accepted at once (queued behind the writers, each holding its
    /// body); beyond this, keys wait and recompute their bodies later,
    /// bounding memory. Twice the writers keeps them busy: a deeper queue
    /// (8×) only held more bodies and made the 10k sync slower.
    fn max_pending(&self) -> usize {
        self.write_limit.current().saturating_mul(2)
    }

    /// Moves the writers' semaphore with the API server's answers.
    fn adapt_write_limit(&mut self, result: &Result<Option<Item>, WriteFailed>) {
        match result {
            Ok(_) => {
                let more = self.write_limit.succeeded();
                if more > 0 {
                    self.writers.add_permits(more);
                }
            }
            Err(e) if e.code == Some(429) => {
                let cut = self.write_limit.throttled(std::time::Instant::now());
                if cut > 0 {
                    warn!(
                        writes_in_flight = self.write_limit.current(),
                        "the API server is overloaded (429); fewer writes at once"
                    );
                    // Permits in use come back as their writes end; taking
                    // them as they do (the semaphore is FIFO) holds back new
                    // writes until only the new limit is in flight.
                    let writers = self.writers.clone();
                    let cut = u32::try_from(cut).unwrap_or(u32::MAX);
                    tokio::spawn(async move {
                        if let Ok(p) = writers.acquire_many_owned(cut).await {
                            p.forget();
                        }
                    });
                }
            }
            Err(_) => {}
        }
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
        self.store(side, kind).get(ns, name)
    }

    fn enqueue(&mut self, key: Key) {
        if self.queued.insert(key.clone()) {
            self.queue.push_back(key);
        }
    }

    fn keys_for(&self, source: Source, ns: &str, name: &str, obj: &Obj) -> Vec<Key> {
        let id = &self.cfg.cluster_id;
        // The cluster that hosts the broker sees the broker's objects among
        // its own: they are the broker's, never local imports to reconcile
        // (doing so deleted every export, fighting the exporters).
        if source.0 == Side::Local && ns == self.cfg.broker_namespace {
            return Vec::new();
        }
        match source {
            (Side::Local, Kind::ServiceExport | Kind::Service) => {
                vec![Key::Export(ns.into(), name.into())]
            }
            (Side::Local, Kind::EndpointSlice) => {
                if obj.label(MANAGED_BY) == Some(MANAGED_BY_FERRY) {
                    obj.label(SERVICE_NAME)
                        .map(|s| vec![Key::Import(ns.into(), s.into())])
                        .unwrap_or_default()
                } else {
                    obj.label(K8S_SERVICE_NAME)
                        .map(|s| vec![Key::Export(ns.into(), s.into())])
                        .unwrap_or_default()
                }
            }
            (Side::Local, Kind::Namespace) => self
                .store(Side::Broker, Kind::ServiceImport)
                .services_in(name)
                .collect::<BTreeSet<&str>>()
                .into_iter()
                .map(|s| Key::Import(name.into(), s.into()))
                .collect(),
            (Side::Local, Kind::ServiceImport) => vec![Key::Import(ns.into(), name.into())],
            (_, Kind::Cluster) => vec![Key::Cluster(name.into())],
            (_, Kind::Endpoint) => vec![Key::Endpoint(name.into())],
            (Side::Broker, Kind::ServiceImport | Kind::EndpointSlice) => {
                let Some((ons, svc)) = index_origin(ns, obj) else {
                    return Vec::new();
                };
                let mut keys = vec![Key::Import(ons.into(), svc.into())];
                // Every exporter's conflict condition depends on the others.
                if source.1 == Kind::ServiceImport || obj.label(SOURCE_CLUSTER) == Some(id) {
                    keys.push(Key::Export(ons.into(), svc.into()));
                }
                keys
            }
            (Side::Broker, _) => Vec::new(),
        }
    }

    /// Stores `item`; enqueues the keys it touches if it was news.
    fn put(&mut self, source: Source, item: Item) {
        let keys = self.keys_for(source, &item.ns, &item.name, &item.obj);
        let Some(store) = self.stores.get_mut(&source) else {
            return;
        };
        if store.put(item) {
            keys.into_iter().for_each(|k| self.enqueue(k));
        }
    }

    /// Forgets `ns/name`; enqueues the keys it touched.
    fn remove(&mut self, source: Source, ns: &str, name: &str) {
        let Some(old) = self
            .stores
            .get_mut(&source)
            .and_then(|s| s.remove(ns, name))
        else {
            return;
        };
        for k in self.keys_for(source, ns, name, &old) {
            self.enqueue(k);
        }
    }

    fn handle(&mut self, input: Input) {
        match input {
            Input::Watch(source, ev) => self.handle_watch(source, ev),
            Input::Retry(key) => self.enqueue(key),
            Input::Written {
                target,
                key,
                digests,
                result,
            } => {
                self.inflight.remove(&target);
                self.adapt_write_limit(&result);
                // Blocked keys run again once the writes have drained to half
                // the limit, as many as fill it again (a key writes about two
                // objects): refilling one slot per answer made every blocked
                // key run, block and run again dozens of times.
                let max = self.max_pending();
                if self.inflight.len() <= max / 2 {
                    let room = (max - self.inflight.len()) / 2;
                    for _ in 0..room {
                        let Some(k) = self.blocked.pop_front() else {
                            break;
                        };
                        self.blocked_set.remove(&k);
                        self.enqueue(k);
                    }
                }
                let source = (target.side, target.kind);
                match result {
                    Ok(Some(mut item)) => {
                        self.attempts.remove(&key);
                        // A part not written kept its content: what was
                        // applied to it before still holds at the new version.
                        let before = self.get(target.side, target.kind, &target.ns, &target.name);
                        item.obj.applied_main =
                            digests.main.or(before.and_then(|o| o.applied_main));
                        item.obj.applied_status =
                            digests.status.or(before.and_then(|o| o.applied_status));
                        self.put(source, item);
                    }
                    Ok(None) => {
                        self.attempts.remove(&key);
                        self.remove(source, &target.ns, &target.name);
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
                    s.init = Some(Vec::new());
                }
            }
            WatchEvent::InitApply(item) => {
                if let Some(s) = self.stores.get_mut(&source) {
                    s.init.get_or_insert_with(Vec::new).push(item);
                }
            }
            WatchEvent::InitDone => {
                let Some(store) = self.stores.get_mut(&source) else {
                    return;
                };
                let fresh = store.init.take().unwrap_or_default();
                let old = store.take_all();
                store.synced = true;
                let mut keys: BTreeSet<Key> = BTreeSet::new();
                for i in old.iter().chain(&fresh) {
                    keys.extend(self.keys_for(source, &i.ns, &i.name, &i.obj));
                }
                if let Some(store) = self.stores.get_mut(&source) {
                    for i in fresh {
                        store.put(i);
                    }
                }
                debug!(?source, keys = keys.len(), "relisted");
                keys.into_iter().for_each(|k| self.enqueue(k));
                if !self.ready && self.stores.values().all(|s| s.synced) {
                    self.ready = true;
                    info!(cluster = %self.cfg.cluster_id, "initial sync of the cluster and the broker done");
                    self.enqueue(Key::Cluster(self.cfg.cluster_id.clone()));
                }
            }
            WatchEvent::Apply(item) => self.put(source, item),
            WatchEvent::Delete(item) => self.remove(source, &item.ns, &item.name),
        }
    }

    fn drain(&mut self) {
        if !self.ready {
            return;
        }
        while let Some(key) = self.queue.pop_front() {
            self.queued.remove(&key);
            // Backpressure: with the writers' queue full, a key waits
            // whole (it would write part of its objects and run again for
            // the rest); `write` never refuses, so a running key may go a
            // few writes over the limit.
            if self.inflight.len() >= self.max_pending() {
                if self.blocked_set.insert(key.clone()) {
                    self.blocked.push_back(key);
                }
                continue;
            }
            match &key {
                Key::Export(ns, name) => self.reconcile_export(&key, ns, name),
                Key::Import(ns, name) => self.reconcile_import(&key, ns, name),
                Key::Cluster(name) => self.reconcile_ferry(&key, Kind::Cluster, name),
                Key::Endpoint(name) => self.reconcile_ferry(&key, Kind::Endpoint, name),
            }
        }
    }

    /// How `target` compares with the wanted digests.
    fn diff(&self, target: &Target, digest: u64, status: Option<u64>) -> Diff {
        let Some(obs) = self.get(target.side, target.kind, &target.ns, &target.name) else {
            return Diff::Main {
                status: status.is_some(),
            };
        };
        let main_ok = obs.digest == digest || obs.applied_main == Some(digest);
        let status_ok =
            status.is_none_or(|s| obs.status_digest == s || obs.applied_status == Some(s));
        match (main_ok, status_ok) {
            (true, true) => Diff::Same,
            (true, false) => Diff::StatusOnly,
            (false, status_ok) => Diff::Main { status: !status_ok },
        }
    }

    /// Makes `target` carry what `digest` (and `status`, with the status
    /// body) describe; `body` builds the object, only when it must be
    /// written. Returns whether it already does.
    fn ensure(
        &mut self,
        key: &Key,
        target: Target,
        digest: u64,
        status: Option<(u64, &dyn Fn() -> Value)>,
        body: impl FnOnce() -> Body,
    ) -> bool {
        let status_digest = status.as_ref().map(|(d, _)| *d);
        match self.diff(&target, digest, status_digest) {
            Diff::Same => true,
            Diff::Main {
                status: with_status,
            } => {
                let status_body = status.filter(|_| with_status).map(|(_, f)| f());
                let digests = Digests {
                    main: Some(digest),
                    status: status_digest.filter(|_| with_status),
                };
                self.write(key, target, Op::Apply(body(), status_body), digests);
                false
            }
            Diff::StatusOnly => {
                let Some((d, f)) = status else {
                    return true; // unreachable: no wanted status, no status diff
                };
                let digests = Digests {
                    main: None,
                    status: Some(d),
                };
                self.write(key, target, Op::Status(f()), digests);
                false
            }
        }
    }

    /// Makes `target` absent. Returns whether it already is.
    fn ensure_absent(&mut self, key: &Key, target: Target) -> bool {
        if self
            .get(target.side, target.kind, &target.ns, &target.name)
            .is_none()
        {
            return true;
        }
        self.write(key, target, Op::Delete, Digests::default());
        false
    }

    /// Makes the status of the existing `target` carry `status` (digest
    /// `digest`). Returns whether it already does.
    fn ensure_status(&mut self, key: &Key, target: Target, digest: u64, status: Value) -> bool {
        let Some(obs) = self.get(target.side, target.kind, &target.ns, &target.name) else {
            return false;
        };
        if obs.status_digest == digest || obs.applied_status == Some(digest) {
            return true;
        }
        let digests = Digests {
            main: None,
            status: Some(digest),
        };
        self.write(key, target, Op::Status(status), digests);
        false
    }

    /// Whether `key` has writes on their way (or waiting for a writer).
    fn writing(&self, key: &Key, targets: &[&Target]) -> bool {
        self.blocked_set.contains(key) || targets.iter().any(|t| self.inflight.contains_key(*t))
    }

    fn write(&mut self, key: &Key, target: Target, op: Op, digests: Digests) {
        if self.inflight.contains_key(&target) {
            self.dirty.insert(key.clone());
            return;
        }
        self.inflight.insert(target.clone(), key.clone());
        let client = match target.side {
            Side::Local => self.local.clone(),
            Side::Broker => self.broker.clone(),
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
                digests,
                result,
            });
        });
    }

    fn reconcile_export(&mut self, key: &Key, ns: &str, svc: &str) {
        let id = self.cfg.cluster_id.clone();
        let bns = self.cfg.broker_namespace.clone();
        let bname = broker_name(svc, ns, &id);
        let t_import = Target::new(Side::Broker, Kind::ServiceImport, &bns, &bname);
        let t_slice = Target::new(Side::Broker, Kind::EndpointSlice, &bns, &bname);
        let export = match self.get(Side::Local, Kind::ServiceExport, ns, svc) {
            Some(Obj {
                data: Data::Export(e),
                ..
            }) if !e.deleting => Some((e.created.clone(), e.previous(), e.conditions)),
            _ => None,
        };
        let service = match self.get(Side::Local, Kind::Service, ns, svc) {
            Some(Obj {
                data: Data::Service(s),
                ..
            }) => Some(s.service()),
            _ => None,
        };
        let Some((created, previous, previous_digest)) = export else {
            self.ensure_absent(key, t_import);
            self.ensure_absent(key, t_slice);
            return;
        };
        let validity = mcs::validate_service(service.as_ref());
        let now = Time(k8s_openapi::jiff::Timestamp::now());
        let t_export = Target::new(Side::Local, Kind::ServiceExport, ns, svc);
        let (Validity::Valid, Some(service)) = (&validity, service) else {
            self.ensure_absent(key, t_import);
            self.ensure_absent(key, t_slice);
            let conds = mcs::export_conditions(&validity, Readiness::Pending, &[], &previous, &now);
            if store::conditions_digest(&conds) != previous_digest {
                let d = store::digest(&conds);
                self.ensure_status(key, t_export, d, json!({"conditions": conds}));
            }
            return;
        };
        let created = created.unwrap_or_else(|| now.clone());
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
        let created_at = store::time_string(&created);
        let import = WantedImport {
            labels: &common,
            created_at: Some(&created_at),
            spec: &import_spec,
        };
        let import_ok = self.ensure(key, t_import.clone(), import.digest(), None, || {
            import.body(&bname, &bns)
        });

        let slices: Vec<EndpointSlice> = self
            .store(Side::Local, Kind::EndpointSlice)
            .indexed(ns, svc)
            .filter(|(_, o)| o.label(MANAGED_BY) != Some(MANAGED_BY_FERRY))
            .filter_map(|(_, o)| match &o.data {
                Data::Slice(s) => Some(s.slice()),
                _ => None,
            })
            .collect();
        let slice_refs: Vec<&EndpointSlice> = slices.iter().collect();
        let eps = mcs::exported_endpoints(&service, &slice_refs);
        let mut slice_labels = common.to_vec();
        slice_labels.push((MANAGED_BY, MANAGED_BY_FERRY));
        let slice = WantedSlice {
            labels: &slice_labels,
            address_type: &eps.address_type,
            endpoints: &eps.endpoints,
            ports: &eps.ports,
        };
        let slice_ok = self.ensure(key, t_slice.clone(), slice.digest(), None, || {
            slice.body(&bname, &bns)
        });

        // Conflicts against every other cluster's export on the broker.
        let mut exports: Vec<Export> = self
            .store(Side::Broker, Kind::ServiceImport)
            .indexed(ns, svc)
            .filter_map(|(_, o)| match &o.data {
                Data::Import(Some(e)) if e.cluster != id => Some(e.as_ref().clone()),
                _ => None,
            })
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
        // While the export data is on its way, `Pending` would be replaced
        // by `Ready` a moment later: the answer re-runs this key, so wait for
        // it instead of writing the status twice. After a failed write it is
        // written (a broker outage shows as Pending).
        if readiness == Readiness::Pending
            && !self.attempts.contains_key(key)
            && self.writing(key, &[&t_import, &t_slice])
        {
            return;
        }
        let conds = mcs::export_conditions(&validity, readiness, &conflicts, &previous, &now);
        if store::conditions_digest(&conds) != previous_digest {
            let d = store::digest(&conds);
            self.ensure_status(key, t_export, d, json!({"conditions": conds}));
        }
    }

    fn reconcile_import(&mut self, key: &Key, ns: &str, svc: &str) {
        let t_import = Target::new(Side::Local, Kind::ServiceImport, ns, svc);
        let ns_exists = self.get(Side::Local, Kind::Namespace, "", ns).is_some();
        let merged = if ns_exists {
            let exports: Vec<Export> = self
                .store(Side::Broker, Kind::ServiceImport)
                .indexed(ns, svc)
                .filter_map(|(_, o)| match &o.data {
                    Data::Import(Some(e)) => Some(e.as_ref().clone()),
                    _ => None,
                })
                .collect();
            mcs::merge(&exports)
        } else {
            None
        };

        // Every cluster's slice on the broker, as this cluster's copy.
        struct Wanted {
            cluster: String,
            slice: Arc<SliceInfo>,
        }
        let mut wanted: BTreeMap<String, Wanted> = BTreeMap::new();
        if let Some(m) = &merged {
            for (_, o) in self
                .store(Side::Broker, Kind::EndpointSlice)
                .indexed(ns, svc)
            {
                let (Data::Slice(s), Some(cluster)) = (&o.data, o.label(SOURCE_CLUSTER)) else {
                    continue;
                };
                if !m.clusters.iter().any(|c| c == cluster) {
                    continue;
                }
                wanted.insert(
                    import_slice_name(svc, cluster),
                    Wanted {
                        cluster: cluster.to_string(),
                        slice: s.clone(),
                    },
                );
            }
        }
        // Local ferry-managed slices of this service that are not wanted.
        let stale: Vec<String> = self
            .store(Side::Local, Kind::EndpointSlice)
            .indexed(ns, svc)
            .filter(|(name, o)| {
                o.label(MANAGED_BY) == Some(MANAGED_BY_FERRY) && !wanted.contains_key(*name)
            })
            .map(|(name, _)| name.to_string())
            .collect();
        for name in stale {
            let t = Target::new(Side::Local, Kind::EndpointSlice, ns, &name);
            self.ensure_absent(key, t);
        }
        for (name, w) in wanted {
            let labels = [
                (SERVICE_NAME, svc),
                (SOURCE_CLUSTER, w.cluster.as_str()),
                (CLUSTER, w.cluster.as_str()),
                (MANAGED_BY, MANAGED_BY_FERRY),
                (APP_MANAGED_BY, APP_MANAGED_BY_FERRY),
            ];
            let s = &w.slice;
            let endpoints = s.endpoints();
            let slice = WantedSlice {
                labels: &labels,
                address_type: &s.address_type,
                endpoints: &endpoints,
                ports: &s.ports,
            };
            let t = Target::new(Side::Local, Kind::EndpointSlice, ns, &name);
            self.ensure(key, t, slice.digest(), None, || slice.body(&name, ns));
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
                let labels = [(APP_MANAGED_BY, APP_MANAGED_BY_FERRY)];
                let import = WantedImport {
                    labels: &labels,
                    created_at: None,
                    spec: &m.spec,
                };
                let status_digest = store::import_status_digest(Some(&status));
                let status_body = || to_json(&status);
                self.ensure(
                    key,
                    t_import,
                    import.digest(),
                    Some((status_digest, &status_body)),
                    || import.body(svc, ns),
                );
            }
            None => {
                let ours = self
                    .get(Side::Local, Kind::ServiceImport, ns, svc)
                    .is_some_and(|o| o.label(APP_MANAGED_BY) == Some(APP_MANAGED_BY_FERRY));
                if ours {
                    self.ensure_absent(key, t_import);
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
        let seen = |o: Option<&Obj>| {
            o.map(|o| {
                let spec = match &o.data {
                    Data::Spec(s) => s.clone(),
                    _ => Arc::new(Value::Null),
                };
                (o.label(CLUSTER).map(str::to_string), spec)
            })
        };
        let local = seen(self.get(Side::Local, kind, &sys, name));
        let broker = seen(self.get(Side::Broker, kind, &bns, name));
        let t_broker = Target::new(Side::Broker, kind, &bns, name);
        let t_local = Target::new(Side::Local, kind, &sys, name);
        let kind_name = match kind {
            Kind::Cluster => "Cluster",
            _ => "Endpoint",
        };
        let publish = |this: &mut Engine, target: Target, cluster: &str, spec: &Value| {
            let labels = [(CLUSTER, cluster), (APP_MANAGED_BY, APP_MANAGED_BY_FERRY)];
            let wanted = WantedSpec {
                kind: kind_name,
                labels: &labels,
                spec,
            };
            let ns = target.ns.clone();
            this.ensure(key, target, wanted.digest(), None, || {
                wanted.body(name, &ns)
            });
        };

        if kind == Kind::Cluster && name == id {
            let spec = to_json(&ClusterSpec {
                cluster_id: id.clone(),
                cluster_cidrs: self.cfg.cluster_cidrs.clone(),
                service_cidrs: self.cfg.service_cidrs.clone(),
                global_cidrs: Vec::new(),
            });
            publish(self, t_broker, &id, &spec);
            publish(self, t_local, &id, &spec);
            return;
        }
        let local_label = local.as_ref().and_then(|(c, _)| c.clone());
        let broker_label = broker.as_ref().and_then(|(c, _)| c.clone());
        if local_label.as_deref() == Some(id.as_str()) && kind == Kind::Endpoint {
            if let Some((_, spec)) = &local {
                publish(self, t_broker, &id, spec);
            }
            return;
        }
        if broker_label.as_deref() == Some(id.as_str()) {
            // Ours on the broker, but no longer here.
            self.ensure_absent(key, t_broker);
            return;
        }
        match (&broker, &broker_label) {
            (Some((_, spec)), Some(remote)) => publish(self, t_local, remote, spec),
            _ => {
                if local_label.is_some_and(|l| l != id) {
                    self.ensure_absent(key, t_local);
                }
            }
        }
    }
}

/// Why a write failed: the server's HTTP status, when it answered one.
#[derive(Debug)]
struct WriteFailed {
    code: Option<u16>,
    message: String,
}

impl From<kube::Error> for WriteFailed {
    fn from(e: kube::Error) -> Self {
        WriteFailed {
            code: match &e {
                kube::Error::Api(s) => Some(s.code),
                _ => None,
            },
            message: e.to_string(),
        }
    }
}

impl std::fmt::Display for WriteFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// One write of a `K`, answered with the object as stored, reduced.
async fn write_as<K: Watched + kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>>(
    client: Client,
    target: &Target,
    op: Op,
) -> Result<Option<Item>, WriteFailed> {
    let api: Api<K> = Api::namespaced(client, &target.ns);
    let status_patch = |status: Value| Patch::Merge(json!({"status": status}));
    let obj = match op {
        Op::Apply(body, status) => {
            let pp = PatchParams::apply(FIELD_MANAGER).force();
            let obj = api
                .patch(&target.name, &pp, &Patch::Apply(&body))
                .await
                .map_err(WriteFailed::from)?;
            match status {
                Some(status) => api
                    .patch_status(&target.name, &PatchParams::default(), &status_patch(status))
                    .await
                    .map_err(WriteFailed::from)?,
                None => obj,
            }
        }
        Op::Status(status) => api
            .patch_status(&target.name, &PatchParams::default(), &status_patch(status))
            .await
            .map_err(WriteFailed::from)?,
        Op::Delete => {
            return match api.delete(&target.name, &DeleteParams::default()).await {
                Ok(_) => Ok(None),
                Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
                Err(e) => Err(e.into()),
            };
        }
    };
    Ok(Some(Item::of(obj, target.side)))
}

async fn do_write(client: Client, target: &Target, op: Op) -> Result<Option<Item>, WriteFailed> {
    match target.kind {
        Kind::ServiceExport => write_as::<ServiceExport>(client, target, op).await,
        Kind::Service => write_as::<Service>(client, target, op).await,
        Kind::EndpointSlice => write_as::<EndpointSlice>(client, target, op).await,
        Kind::ServiceImport => write_as::<ServiceImport>(client, target, op).await,
        Kind::Cluster => write_as::<Cluster>(client, target, op).await,
        Kind::Endpoint => write_as::<Endpoint>(client, target, op).await,
        Kind::Namespace => Err(WriteFailed {
            code: None,
            message: "the agent never writes namespaces".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use ferry_api::{ServiceImportType, ServicePort};
    use k8s_openapi::api::discovery::v1::EndpointConditions;

    use super::*;
    use crate::store::Watched;

    /// `body` as a server stores and returns it: with system fields, a
    /// label and an annotation of someone else's, and a status.
    fn as_stored<K: Watched>(body: &Body, rv: u64, status: Option<Value>) -> K {
        let mut v = serde_json::to_value(body).unwrap();
        let m = v["metadata"].as_object_mut().unwrap();
        m.insert("uid".into(), json!("5f0c"));
        m.insert("resourceVersion".into(), json!(rv.to_string()));
        m.insert("creationTimestamp".into(), json!("2026-01-02T03:04:05Z"));
        m.insert("generation".into(), json!(1));
        m.insert(
            "managedFields".into(),
            json!([{"manager": FIELD_MANAGER, "operation": "Apply", "fieldsV1": {"f:metadata": {}}}]),
        );
        m.entry("labels")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .unwrap()
            .insert("team".into(), json!("x"));
        m.entry("annotations")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .unwrap()
            .insert("note".into(), json!("y"));
        if let Some(s) = status {
            v["status"] = s;
        }
        serde_json::from_value(v).unwrap()
    }

    fn spec(port: i32) -> ServiceImportSpec {
        ServiceImportSpec {
            ports: vec![ServicePort {
                name: Some("http".into()),
                protocol: "TCP".into(),
                app_protocol: None,
                port,
            }],
            ips: vec!["100.96.0.10".into()],
            type_: ServiceImportType::ClusterSetIp,
            session_affinity: None,
            session_affinity_config: None,
        }
    }

    const EXPORT_LABELS: [(&str, &str); 6] = [
        (CLUSTER, "a"),
        (SOURCE_CLUSTER, "a"),
        (SERVICE_NAME, "web"),
        (ORIGIN_NAME, "web"),
        (ORIGIN_NAMESPACE, "shop"),
        (APP_MANAGED_BY, APP_MANAGED_BY_FERRY),
    ];

    #[test]
    fn written_imports_read_back_with_the_digest_they_were_written_with() {
        // A cluster's export on the broker.
        let spec80 = spec(80);
        let created = "2026-01-01T00:00:00Z";
        let wanted = WantedImport {
            labels: &EXPORT_LABELS,
            created_at: Some(created),
            spec: &spec80,
        };
        let stored: ServiceImport = as_stored(&wanted.body("web-shop-a", "ferry-broker"), 7, None);
        let obj = stored.into_obj(Side::Broker);
        assert_eq!(obj.digest, wanted.digest());
        assert_eq!(obj.rv, 7);
        assert_eq!(obj.label(ORIGIN_NAMESPACE), Some("shop"));
        assert_eq!(obj.label("team"), None, "only ferry's labels are kept");
        let Data::Import(Some(export)) = &obj.data else {
            panic!("a broker import is parsed: {:?}", obj.data);
        };
        assert_eq!(export.cluster, "a");
        assert_eq!(store::time_string(&export.created), created);
        assert_eq!(export.ports, spec80.ports);

        // Any written difference changes the digest.
        let spec81 = spec(81);
        let changed = [
            WantedImport {
                spec: &spec81,
                ..wanted
            },
            WantedImport {
                created_at: Some("2026-01-01T00:00:01Z"),
                ..wanted
            },
            WantedImport {
                labels: &EXPORT_LABELS[1..],
                ..wanted
            },
        ];
        for w in changed {
            assert_ne!(w.digest(), obj.digest);
        }

        // The aggregated import in a cluster, with its status.
        let labels = [(APP_MANAGED_BY, APP_MANAGED_BY_FERRY)];
        let wanted = WantedImport {
            labels: &labels,
            created_at: None,
            spec: &spec80,
        };
        let status = ServiceImportStatus {
            clusters: vec![ClusterStatus {
                cluster: "a".into(),
            }],
        };
        let stored: ServiceImport =
            as_stored(&wanted.body("web", "shop"), 8, Some(to_json(&status)));
        let obj = stored.into_obj(Side::Local);
        assert_eq!(obj.digest, wanted.digest());
        assert_eq!(
            obj.status_digest,
            store::import_status_digest(Some(&status))
        );
        assert_ne!(obj.status_digest, store::import_status_digest(None));
    }

    #[test]
    fn written_slices_and_specs_read_back_with_the_digest_they_were_written_with() {
        let endpoints = vec![SliceEndpoint {
            addresses: vec!["100.64.0.7".into()],
            conditions: Some(EndpointConditions {
                ready: Some(true),
                serving: Some(true),
                terminating: Some(false),
            }),
            hostname: Some("web-0".into()),
            ..Default::default()
        }];
        let ports = vec![EndpointPort {
            name: Some("http".into()),
            port: Some(8080),
            protocol: Some("TCP".into()),
            app_protocol: None,
        }];
        let mut labels = EXPORT_LABELS.to_vec();
        labels.push((MANAGED_BY, MANAGED_BY_FERRY));
        let wanted = WantedSlice {
            labels: &labels,
            address_type: "IPv4",
            endpoints: &endpoints,
            ports: &ports,
        };
        for side in [Side::Broker, Side::Local] {
            let stored: EndpointSlice = as_stored(&wanted.body("web-a", "shop"), 9, None);
            let obj = stored.into_obj(side);
            assert_eq!(obj.digest, wanted.digest(), "{side:?}");
            // Ferry's own slices in a cluster are only written, never read.
            assert_eq!(
                matches!(obj.data, Data::Slice(_)),
                side == Side::Broker,
                "{side:?}"
            );
        }
        let not_ready = vec![SliceEndpoint {
            conditions: Some(EndpointConditions {
                ready: Some(false),
                serving: Some(false),
                terminating: Some(false),
            }),
            ..endpoints[0].clone()
        }];
        let flipped = WantedSlice {
            endpoints: &not_ready,
            ..wanted
        };
        assert_ne!(flipped.digest(), wanted.digest());

        let spec = json!({"clusterId": "a", "clusterCidrs": ["100.64.0.0/16"], "serviceCidrs": ["100.96.0.0/16"]});
        let labels = [(CLUSTER, "a"), (APP_MANAGED_BY, APP_MANAGED_BY_FERRY)];
        let wanted = WantedSpec {
            kind: "Cluster",
            labels: &labels,
            spec: &spec,
        };
        let stored: Cluster = as_stored(&wanted.body("a", "ferry-broker"), 3, None);
        let obj = stored.into_obj(Side::Broker);
        assert_eq!(obj.digest, wanted.digest());
        assert!(matches!(&obj.data, Data::Spec(s) if **s == spec));
    }
}
