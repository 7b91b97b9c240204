//! The sync engine, the runner of the reconcilers: it keeps the watched
//! objects in indexed in-memory stores ([`crate::store`]: reduced objects and
//! digests, not whole objects), turns each watch event into the keys it
//! touches, drains the queue of keys through the reconciler it is given, and
//! writes what a reconciler asks for — only the differences, compared by
//! digest — through a bounded pool of concurrent writers.
//!
//! Event-driven: a watch event enqueues the keys it touches, and the queue is
//! drained at once — no fixed rate limit. When either API goes away, the
//! stores keep their last contents (nothing is deleted for lack of news), the
//! watchers reconnect with backoff, failed writes are retried with per-key
//! exponential backoff, and a relist (after reconnecting) re-reconciles every
//! key it touched, writing only what differs. A 429 from an API server
//! halves the writes in flight for a while ([`crate::write_limit`]).

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_api::labels::{
    APP_MANAGED_BY, APP_MANAGED_BY_FERRY, MANAGED_BY, MANAGED_BY_FERRY, SERVICE_NAME,
    SOURCE_CLUSTER,
};
use kube::Client;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::config::AgentConfig;
use super::sources::{SOURCES, Source, index_origin, new_store};
use super::target::{Digests, Key, Target, WriteFailed};
use crate::store::{Data, Item, K8S_SERVICE_NAME, Kind, Obj, Side, Store};
use crate::write_limit::WriteLimit;

mod links;
mod writes;

/// One event of a watch, its objects already reduced.
pub(super) enum WatchEvent {
    Init,
    InitApply(Item),
    InitDone,
    Apply(Item),
    Delete(Item),
}

/// What the engine task is told: by the watches, the writers, and the
/// retry timers.
pub(super) enum Input {
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
pub(super) struct SyncEngine {
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
    /// The remote clusters an active local gateway reaches now (see
    /// [`links`]).
    connected: BTreeSet<Box<str>>,
    /// When a watched change in this cluster first touched an export key
    /// not yet written to the broker (for the change→broker latency).
    changed_at: HashMap<Key, Instant>,
}

impl SyncEngine {
    /// An engine with an empty store per source, sending the answers of its
    /// writes (and its retries) to `tx`.
    pub(super) fn new(
        cfg: AgentConfig,
        local: Client,
        broker: Client,
        tx: mpsc::UnboundedSender<Input>,
    ) -> SyncEngine {
        let cfg_writers = cfg.write_concurrency.max(1);
        SyncEngine {
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
            connected: BTreeSet::new(),
            changed_at: HashMap::new(),
        }
    }

    /// The agent's configuration.
    pub(super) fn config(&self) -> &AgentConfig {
        &self.cfg
    }

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
                let cut = self.write_limit.throttled(Instant::now());
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

    pub(super) fn store(&self, side: Side, kind: Kind) -> &Store {
        // Every source has a store from construction on (invariant), so the
        // fallback is never used; it keeps this panic-free.
        static EMPTY: std::sync::OnceLock<Store> = std::sync::OnceLock::new();
        self.stores
            .get(&(side, kind))
            .unwrap_or_else(|| EMPTY.get_or_init(Store::default))
    }

    pub(super) fn get(&self, side: Side, kind: Kind, ns: &str, name: &str) -> Option<&Obj> {
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
            (Side::Local, Kind::Service) => {
                // A derived Service belongs to the import that wants it,
                // and is never exported (ferry writes it for an import).
                let mut keys = Vec::new();
                if !matches!(obj.data, Data::Derived(_)) {
                    keys.push(Key::Export(ns.into(), name.into()));
                }
                if obj.label(APP_MANAGED_BY) == Some(APP_MANAGED_BY_FERRY)
                    && let Some(svc) = obj.label(SERVICE_NAME)
                {
                    keys.push(Key::Import(ns.into(), svc.into()));
                }
                keys
            }
            (Side::Local, Kind::ServiceExport) => vec![Key::Export(ns.into(), name.into())],
            (Side::Local, Kind::EndpointSlice) => {
                if obj.label(MANAGED_BY) == Some(MANAGED_BY_FERRY) {
                    obj.label(SERVICE_NAME)
                        .map(|s| vec![Key::Import(ns.into(), s.into())])
                        .unwrap_or_default()
                } else {
                    // The export, and (behind a ClusterSet IP) this
                    // cluster's share of the import.
                    obj.label(K8S_SERVICE_NAME)
                        .map(|s| {
                            vec![
                                Key::Export(ns.into(), s.into()),
                                Key::Import(ns.into(), s.into()),
                            ]
                        })
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
            // Only a change of what the gateways reach matters: see
            // `gateways_changed`.
            (Side::Local, Kind::Gateway) | (Side::Broker, _) => Vec::new(),
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
            if source == (Side::Local, Kind::Gateway) {
                self.gateways_changed();
            }
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
        if source == (Side::Local, Kind::Gateway) {
            self.gateways_changed();
        }
    }

    /// Takes one input: stores what a watch saw, re-queues a key due for a
    /// retry, or takes a write's answer.
    pub(super) fn handle(&mut self, input: Input) {
        match input {
            Input::Watch(source, ev) => self.handle_watch(source, ev),
            Input::Retry(key) => self.enqueue(key),
            Input::Written {
                target,
                key,
                digests,
                result,
            } => self.handle_written(target, key, digests, result),
        }
    }

    /// A write's answer: frees its target, moves the write limit, lets
    /// blocked keys run again, and stores the object as written (or retries
    /// the key later).
    fn handle_written(
        &mut self,
        target: Target,
        key: Key,
        digests: Digests,
        result: Result<Option<Item>, WriteFailed>,
    ) {
        self.inflight.remove(&target);
        self.adapt_write_limit(&result);
        self.unblock();
        let source = (target.side, target.kind);
        match result {
            Ok(Some(mut item)) => {
                self.attempts.remove(&key);
                // A part not written kept its content: what was
                // applied to it before still holds at the new version.
                let before = self.get(target.side, target.kind, &target.ns, &target.name);
                item.obj.applied_main = digests.main.or(before.and_then(|o| o.applied_main));
                item.obj.applied_status = digests.status.or(before.and_then(|o| o.applied_status));
                self.put(source, item);
            }
            Ok(None) => {
                self.attempts.remove(&key);
                self.remove(source, &target.ns, &target.name);
            }
            Err(e) => self.retry_later(&key, &target, &e),
        }
        if self.dirty.remove(&key) {
            self.enqueue(key);
        }
    }

    /// Blocked keys run again once the writes have drained to half the
    /// limit, as many as fill it again (a key writes about two objects):
    /// refilling one slot per answer made every blocked key run, block and
    /// run again dozens of times.
    fn unblock(&mut self) {
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
    }

    /// Re-queues `key` after a per-key exponential backoff (100 ms after
    /// its first failed write, doubling with each, at most 10 s).
    fn retry_later(&mut self, key: &Key, target: &Target, e: &WriteFailed) {
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
                if source == (Side::Local, Kind::Gateway) {
                    self.gateways_changed();
                }
                debug!(?source, keys = keys.len(), "relisted");
                keys.into_iter().for_each(|k| self.enqueue(k));
                if !self.ready && self.stores.values().all(|s| s.synced) {
                    self.ready = true;
                    info!(cluster = %self.cfg.cluster_id, "initial sync of the cluster and the broker done");
                    self.enqueue(Key::Cluster(self.cfg.cluster_id.clone()));
                }
            }
            WatchEvent::Apply(item) => {
                self.note_local_change(source, &item);
                self.put(source, item);
            }
            WatchEvent::Delete(item) => {
                self.note_local_change(source, &item);
                self.remove(source, &item.ns, &item.name);
            }
        }
    }

    /// Remembers when a change in this cluster first touched each export
    /// key, so its broker write can tell how long the change took to get there.
    fn note_local_change(&mut self, source: Source, item: &Item) {
        if source.0 != Side::Local {
            return;
        }
        let now = Instant::now();
        for key in self.keys_for(source, &item.ns, &item.name, &item.obj) {
            if matches!(key, Key::Export(..)) {
                self.changed_at.entry(key).or_insert(now);
            }
        }
    }

    /// Runs `reconcile` for every queued key (once the first lists are in),
    /// holding keys back while the writers' queue is full.
    pub(super) fn drain(&mut self, reconcile: impl Fn(&mut SyncEngine, &Key)) {
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
            let started = Instant::now();
            reconcile(self, &key);
            self.cfg.metrics.reconciled(started.elapsed());
            // A reconcile that wrote nothing to the broker ends the wait.
            self.changed_at.remove(&key);
        }
        self.cfg.metrics.set_load(
            self.queue.len() + self.blocked.len(),
            self.inflight.len(),
            self.write_limit.current(),
        );
    }
}
