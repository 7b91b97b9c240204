//! The shared caches every loop reads, the wakers that run the loops on
//! every watch event, and the loop runner itself.

use std::fmt::Debug;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::Notify;

/// Shared caches of everything the sandbox watches.
#[derive(Clone)]
pub struct Stores {
    pub pods: Store<Pod>,
    pub nodes: Store<Node>,
    pub services: Store<Service>,
    pub slices: Store<EndpointSlice>,
    pub deployments: Store<Deployment>,
    pub replicasets: Store<ReplicaSet>,
    pub daemonsets: Store<DaemonSet>,
}

/// Wakes every registered loop.
#[derive(Default)]
pub struct Wakers(Mutex<Vec<Arc<Notify>>>);

impl Wakers {
    pub fn register(&self) -> Arc<Notify> {
        let n = Arc::new(Notify::new());
        if let Ok(mut v) = self.0.lock() {
            v.push(n.clone());
        }
        n
    }
    pub fn wake(&self) {
        if let Ok(v) = self.0.lock() {
            for n in v.iter() {
                n.notify_one();
            }
        }
    }
}

fn reflect<K>(api: Api<K>, wakers: Arc<Wakers>) -> Store<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone,
{
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(
        writer,
        watcher(api, watcher::Config::default()).default_backoff(),
    );
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(_) => wakers.wake(),
                Err(e) => tracing::warn!(error = %e, "watch"),
            }
        }
    });
    reader
}

impl Stores {
    /// Starts the reflectors and waits until each has listed once.
    pub async fn start(client: &Client, wakers: Arc<Wakers>) -> Stores {
        let s = Stores {
            pods: reflect(Api::all(client.clone()), wakers.clone()),
            nodes: reflect(Api::all(client.clone()), wakers.clone()),
            services: reflect(Api::all(client.clone()), wakers.clone()),
            slices: reflect(Api::all(client.clone()), wakers.clone()),
            deployments: reflect(Api::all(client.clone()), wakers.clone()),
            replicasets: reflect(Api::all(client.clone()), wakers.clone()),
            daemonsets: reflect(Api::all(client.clone()), wakers),
        };
        let _ = s.pods.wait_until_ready().await;
        let _ = s.nodes.wait_until_ready().await;
        let _ = s.services.wait_until_ready().await;
        let _ = s.slices.wait_until_ready().await;
        let _ = s.deployments.wait_until_ready().await;
        let _ = s.replicasets.wait_until_ready().await;
        let _ = s.daemonsets.wait_until_ready().await;
        s
    }
}

/// Runs `f` whenever woken (and at least every few seconds).
pub async fn run_loop<F, Fut>(name: &'static str, wake: Arc<Notify>, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), kube::Error>>,
{
    loop {
        if let Err(e) = f().await {
            tracing::debug!(controller = name, error = %e, "reconcile");
        }
        let _ = tokio::time::timeout(Duration::from_secs(3), wake.notified()).await;
    }
}
