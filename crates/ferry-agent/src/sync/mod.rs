//! The agent's sync daemon, shaped like kube-runtime's controller: a runner
//! (`engine`: stores, queue, writers, write limit, retries) fed by one
//! watch per source (`watch`, `sources`), and the reconcilers it runs per
//! key — `export` (`Export(ns, svc)`: this cluster's ServiceExports to the
//! broker), `import` (`Import(ns, svc)`: the broker's exports merged into
//! this cluster) and `peers` (`Cluster(name)`, `Endpoint(name)`: the
//! exchange of Clusters and gateway Endpoints). A reconciler compares the
//! digest of what it wants (`wanted`) with the digest of what is there and
//! asks the engine to write only the differences (`target`).
//!
//! The engine knows no reconciler: [`run`] hands it `reconcile`, which
//! picks one by key.

use kube::Client;
use kube::api::Api;
use tokio::sync::mpsc;
use tracing::info;

use ferry_api::{Cluster, Endpoint, Gateway, ServiceExport, ServiceImport};
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::store::Kind;
use engine::{Input, SyncEngine};
use sources::SOURCES;
use target::Key;
use watch::spawn_watch;

mod config;
mod engine;
mod export;
mod import;
mod peers;
mod sources;
mod target;
mod wanted;
mod watch;

#[cfg(test)]
mod tests;

pub use crate::store::EXPORT_CREATED;
pub use config::AgentConfig;
pub use export::broker_name;
pub use import::import_slice_name;

/// Runs the agent until `shutdown` resolves (or forever). `local` is this
/// cluster's API, `broker` the broker's (with this cluster's token).
pub async fn run(
    cfg: AgentConfig,
    local: Client,
    broker: Client,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let watches = watch_all(&cfg, &local, &broker, &tx);
    let mut engine = SyncEngine::new(cfg, local, broker, tx);
    info!(cluster = %engine.config().cluster_id, "agent starting");
    let main = async {
        while let Some(input) = rx.recv().await {
            engine.handle(input);
            // Take everything already waiting before reconciling, so a burst
            // of events for one key costs one reconcile.
            while let Ok(input) = rx.try_recv() {
                engine.handle(input);
            }
            engine.drain(reconcile);
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

/// Starts one watch per source, in the order of [`SOURCES`]: the cluster's
/// exports, services, slices, namespaces and imports, ferry's Clusters and
/// Endpoints in the system namespace, and the broker's imports, slices,
/// Clusters and Endpoints, and the cluster's Gateways (whose cables are
/// up decides which clusters' endpoints a clusterset IP routes to).
fn watch_all(
    cfg: &AgentConfig,
    local: &Client,
    broker: &Client,
    tx: &mpsc::UnboundedSender<Input>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let sys = cfg.system_namespace.clone();
    let bns = cfg.broker_namespace.clone();
    vec![
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
        spawn_watch::<Gateway>(
            Api::namespaced(local.clone(), &sys),
            SOURCES[11],
            tx.clone(),
        ),
    ]
}

/// Runs the reconciler of `key`.
fn reconcile(engine: &mut SyncEngine, key: &Key) {
    match key {
        Key::Export(ns, name) => export::reconcile_export(engine, key, ns, name),
        Key::Import(ns, name) => import::reconcile_import(engine, key, ns, name),
        Key::Cluster(name) => peers::reconcile_peer(engine, key, Kind::Cluster, name),
        Key::Endpoint(name) => peers::reconcile_peer(engine, key, Kind::Endpoint, name),
    }
}
