//! The cluster's controllers, as level-triggered loops over shared
//! reflector stores: scheduler, Deployment, DaemonSet, Service ClusterIP
//! allocation and EndpointSlices. Every watch event wakes every loop; each
//! loop reconciles everything and writes only what differs, which is cheap at
//! sandbox scale and has no lost-event failure mode.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Debug;
use std::hash::Hash;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::json;
use tokio::sync::Notify;

use crate::plan::Plan;

/// Shared caches of everything the sandbox watches.
#[derive(Clone)]
pub struct Stores {
    pub pods: Store<Pod>,
    pub nodes: Store<Node>,
    pub services: Store<Service>,
    pub slices: Store<EndpointSlice>,
    pub deployments: Store<Deployment>,
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
            daemonsets: reflect(Api::all(client.clone()), wakers),
        };
        let _ = s.pods.wait_until_ready().await;
        let _ = s.nodes.wait_until_ready().await;
        let _ = s.services.wait_until_ready().await;
        let _ = s.slices.wait_until_ready().await;
        let _ = s.deployments.wait_until_ready().await;
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

fn is_terminating<K: Resource>(o: &K) -> bool {
    o.meta().deletion_timestamp.is_some()
}

fn controller_uid<K: Resource>(o: &K) -> Option<String> {
    o.meta()
        .owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
        .map(|r| r.uid.clone())
}

fn owner_ref<K: Resource<DynamicType = ()>>(o: &K) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: o.meta().name.clone().unwrap_or_default(),
        uid: o.meta().uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Whether every `k=v` of a selector map is in `labels`.
pub fn map_matches(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

pub fn pod_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn pod_phase_done(p: &Pod) -> bool {
    matches!(
        p.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded") | Some("Failed")
    )
}

/// Names created or deleted but not yet seen so in the cache: the usual
/// "expectations", so a lagging cache does not cause double creates.
#[derive(Default)]
struct Expectations {
    created: HashMap<String, Instant>,
    deleted: HashMap<String, Instant>,
}

impl Expectations {
    /// Reconciles the expectation sets against the cache's names and
    /// returns the effective set of live names.
    fn effective(&mut self, seen: HashSet<String>) -> HashSet<String> {
        let ttl = Duration::from_secs(10);
        self.created
            .retain(|n, t| !seen.contains(n) && t.elapsed() < ttl);
        self.deleted
            .retain(|n, t| seen.contains(n) && t.elapsed() < ttl);
        seen.into_iter()
            .filter(|n| !self.deleted.contains_key(n))
            .chain(self.created.keys().cloned())
            .collect()
    }
}

/// The controllers of one cluster.
pub struct Controllers {
    pub client: Client,
    pub stores: Stores,
    pub plan: Plan,
    expectations: Mutex<HashMap<String, Expectations>>,
}

fn short_hash(v: &impl serde::Serialize) -> String {
    use sha2::Digest;
    let bytes = serde_json::to_vec(v).unwrap_or_default();
    hex::encode(&sha2::Sha256::digest(&bytes)[..5])
}

fn pod_from_template(
    template: &k8s_openapi::api::core::v1::PodTemplateSpec,
    generate_name: String,
    owner: OwnerReference,
    extra_labels: &[(&str, &str)],
    node: Option<&str>,
) -> Pod {
    let mut meta = template.metadata.clone().unwrap_or_default();
    meta.name = None;
    meta.generate_name = Some(generate_name);
    let labels = meta.labels.get_or_insert_with(BTreeMap::new);
    for (k, v) in extra_labels {
        labels.insert((*k).into(), (*v).into());
    }
    meta.owner_references = Some(vec![owner]);
    let mut spec = template.spec.clone().unwrap_or_default();
    if let Some(n) = node {
        spec.node_name = Some(n.to_string());
    }
    Pod {
        metadata: meta,
        spec: Some(spec),
        status: None,
    }
}

impl Controllers {
    pub fn new(client: Client, stores: Stores, plan: Plan) -> Arc<Self> {
        Arc::new(Controllers {
            client,
            stores,
            plan,
            expectations: Mutex::new(HashMap::new()),
        })
    }

    /// Spawns every loop.
    pub fn spawn(self: &Arc<Self>, wakers: &Wakers) {
        let c = self.clone();
        let w = wakers.register();
        tokio::spawn(async move { run_loop("scheduler", w, || c.schedule()).await });
        let c = self.clone();
        let w = wakers.register();
        tokio::spawn(async move { run_loop("deployment", w, || c.deployments()).await });
        let c = self.clone();
        let w = wakers.register();
        tokio::spawn(async move { run_loop("daemonset", w, || c.daemonsets()).await });
        let c = self.clone();
        let w = wakers.register();
        tokio::spawn(async move { run_loop("service", w, || c.cluster_ips()).await });
        let c = self.clone();
        let w = wakers.register();
        tokio::spawn(async move { run_loop("endpointslice", w, || c.endpoint_slices()).await });
    }

    fn live_names(&self, key: &str, seen: HashSet<String>) -> HashSet<String> {
        let mut all = match self.expectations.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        all.entry(key.to_string()).or_default().effective(seen)
    }

    fn expect(&self, key: &str, name: &str, created: bool) {
        let mut all = match self.expectations.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let e = all.entry(key.to_string()).or_default();
        let map = if created {
            &mut e.created
        } else {
            &mut e.deleted
        };
        map.insert(name.to_string(), Instant::now());
    }

    /// Binds unscheduled pods: nodeSelector, then fewest pods.
    async fn schedule(&self) -> Result<(), kube::Error> {
        let nodes = self.stores.nodes.state();
        let pods = self.stores.pods.state();
        let mut load: HashMap<String, usize> = HashMap::new();
        for p in &pods {
            if let Some(n) = p.spec.as_ref().and_then(|s| s.node_name.clone()) {
                *load.entry(n).or_default() += 1;
            }
        }
        for p in pods.iter().filter(|p| {
            !is_terminating(p.as_ref()) && p.spec.as_ref().is_some_and(|s| s.node_name.is_none())
        }) {
            let selector = p
                .spec
                .as_ref()
                .and_then(|s| s.node_selector.clone())
                .unwrap_or_default();
            let best = nodes
                .iter()
                .filter(|n| {
                    !n.spec
                        .as_ref()
                        .and_then(|s| s.unschedulable)
                        .unwrap_or(false)
                        && map_matches(
                            &selector,
                            n.metadata.labels.as_ref().unwrap_or(&BTreeMap::new()),
                        )
                })
                .map(|n| n.name_any())
                .min_by_key(|n| (load.get(n).copied().unwrap_or(0), n.clone()));
            let Some(node) = best else { continue };
            let api: Api<Pod> =
                Api::namespaced(self.client.clone(), &p.namespace().unwrap_or_default());
            api.patch(
                &p.name_any(),
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"nodeName": node}})),
            )
            .await?;
            *load.entry(node).or_default() += 1;
        }
        Ok(())
    }

    async fn deployments(&self) -> Result<(), kube::Error> {
        let pods = self.stores.pods.state();
        for d in self.stores.deployments.state() {
            if is_terminating(d.as_ref()) {
                continue;
            }
            let uid = d.uid().unwrap_or_default();
            let ns = d.namespace().unwrap_or_default();
            let spec = d.spec.clone().unwrap_or_default();
            let want = spec.replicas.unwrap_or(1).max(0) as usize;
            let hash = short_hash(&spec.template);
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
            let owned: Vec<&Arc<Pod>> = pods
                .iter()
                .filter(|p| {
                    controller_uid(p.as_ref()).as_deref() == Some(&uid)
                        && !is_terminating(p.as_ref())
                })
                .collect();
            // Pods of an older template go; the rest are counted.
            let mut current = HashSet::new();
            for p in &owned {
                let h = p
                    .labels()
                    .get("pod-template-hash")
                    .cloned()
                    .unwrap_or_default();
                if h != hash || pod_phase_done(p) {
                    self.expect(&uid, &p.name_any(), false);
                    let _ = api.delete(&p.name_any(), &DeleteParams::default()).await;
                } else {
                    current.insert(p.name_any());
                }
            }
            let live = self.live_names(&uid, current);
            if live.len() < want {
                for _ in live.len()..want {
                    let pod = pod_from_template(
                        &spec.template,
                        format!("{}-{hash}-", d.name_any()),
                        owner_ref(d.as_ref()),
                        &[("pod-template-hash", &hash)],
                        None,
                    );
                    let made = api.create(&PostParams::default(), &pod).await?;
                    self.expect(&uid, &made.name_any(), true);
                }
            } else if live.len() > want {
                let mut extra: Vec<&Arc<Pod>> = owned
                    .iter()
                    .copied()
                    .filter(|p| live.contains(&p.name_any()))
                    .collect();
                // Unready and newest first.
                extra.sort_by_key(|p| {
                    (
                        pod_ready(p),
                        std::cmp::Reverse(p.metadata.creation_timestamp.clone()),
                    )
                });
                for p in extra.into_iter().take(live.len() - want) {
                    self.expect(&uid, &p.name_any(), false);
                    let _ = api.delete(&p.name_any(), &DeleteParams::default()).await;
                }
            }
            let ready = owned
                .iter()
                .filter(|p| live.contains(&p.name_any()) && pod_ready(p))
                .count();
            let status = json!({
                "observedGeneration": d.metadata.generation,
                "replicas": live.len(),
                "updatedReplicas": live.len(),
                "readyReplicas": ready,
                "availableReplicas": ready,
                "unavailableReplicas": want.saturating_sub(ready),
            });
            let old = d.status.as_ref().map(|s| {
                json!({
                    "observedGeneration": s.observed_generation,
                    "replicas": s.replicas.unwrap_or(0),
                    "updatedReplicas": s.updated_replicas.unwrap_or(0),
                    "readyReplicas": s.ready_replicas.unwrap_or(0),
                    "availableReplicas": s.available_replicas.unwrap_or(0),
                    "unavailableReplicas": s.unavailable_replicas.unwrap_or(0),
                })
            });
            if old.as_ref() != Some(&status) {
                let dapi: Api<Deployment> = Api::namespaced(self.client.clone(), &ns);
                dapi.patch_status(
                    &d.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": status})),
                )
                .await?;
            }
        }
        Ok(())
    }

    async fn daemonsets(&self) -> Result<(), kube::Error> {
        let pods = self.stores.pods.state();
        let nodes = self.stores.nodes.state();
        for ds in self.stores.daemonsets.state() {
            if is_terminating(ds.as_ref()) {
                continue;
            }
            let uid = ds.uid().unwrap_or_default();
            let ns = ds.namespace().unwrap_or_default();
            let spec = ds.spec.clone().unwrap_or_default();
            let hash = short_hash(&spec.template);
            let selector = spec
                .template
                .spec
                .as_ref()
                .and_then(|s| s.node_selector.clone())
                .unwrap_or_default();
            let eligible: HashSet<String> = nodes
                .iter()
                .filter(|n| {
                    map_matches(
                        &selector,
                        n.metadata.labels.as_ref().unwrap_or(&BTreeMap::new()),
                    )
                })
                .map(|n| n.name_any())
                .collect();
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
            let mut on_node: HashMap<String, HashSet<String>> = HashMap::new();
            for p in pods.iter().filter(|p| {
                controller_uid(p.as_ref()).as_deref() == Some(&uid) && !is_terminating(p.as_ref())
            }) {
                let node = p
                    .spec
                    .as_ref()
                    .and_then(|s| s.node_name.clone())
                    .unwrap_or_default();
                let h = p
                    .labels()
                    .get("pod-template-hash")
                    .cloned()
                    .unwrap_or_default();
                if !eligible.contains(&node) || h != hash || pod_phase_done(p) {
                    self.expect(&format!("{uid}/{node}"), &p.name_any(), false);
                    let _ = api.delete(&p.name_any(), &DeleteParams::default()).await;
                } else {
                    on_node.entry(node).or_default().insert(p.name_any());
                }
            }
            let mut desired = 0;
            let mut ready = 0;
            for node in &eligible {
                desired += 1;
                let key = format!("{uid}/{node}");
                let live = self.live_names(&key, on_node.remove(node).unwrap_or_default());
                if live.is_empty() {
                    let pod = pod_from_template(
                        &spec.template,
                        format!("{}-", ds.name_any()),
                        owner_ref(ds.as_ref()),
                        &[("pod-template-hash", &hash)],
                        Some(node),
                    );
                    let made = api.create(&PostParams::default(), &pod).await?;
                    self.expect(&key, &made.name_any(), true);
                } else if pods
                    .iter()
                    .any(|p| live.contains(&p.name_any()) && pod_ready(p))
                {
                    ready += 1;
                }
            }
            let status = json!({
                "desiredNumberScheduled": desired,
                "currentNumberScheduled": desired,
                "numberReady": ready,
                "numberAvailable": ready,
                "numberMisscheduled": 0,
                "observedGeneration": ds.metadata.generation,
            });
            let old = ds.status.as_ref().map(|s| {
                json!({
                    "desiredNumberScheduled": s.desired_number_scheduled,
                    "currentNumberScheduled": s.current_number_scheduled,
                    "numberReady": s.number_ready,
                    "numberAvailable": s.number_available.unwrap_or(0),
                    "numberMisscheduled": s.number_misscheduled,
                    "observedGeneration": s.observed_generation,
                })
            });
            if old.as_ref() != Some(&status) {
                let dapi: Api<DaemonSet> = Api::namespaced(self.client.clone(), &ns);
                dapi.patch_status(
                    &ds.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": status})),
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Gives every non-headless Service without one a ClusterIP.
    async fn cluster_ips(&self) -> Result<(), kube::Error> {
        let services = self.stores.services.state();
        let mut used: HashSet<Ipv4Addr> = services
            .iter()
            .filter_map(|s| s.spec.as_ref()?.cluster_ip.as_ref()?.parse().ok())
            .collect();
        let cidr = self.plan.service_cidr;
        for s in &services {
            let spec = s.spec.clone().unwrap_or_default();
            if spec.type_.as_deref() == Some("ExternalName")
                || spec.cluster_ip.as_deref().is_some_and(|ip| !ip.is_empty())
            {
                continue;
            }
            // .1-.9 are left alone, as Kubernetes reserves the first addresses.
            let Some(ip) = (10..cidr.size() - 1)
                .map(|n| cidr.nth(n))
                .find(|ip| !used.contains(ip))
            else {
                tracing::warn!(service = %s.name_any(), "service CIDR exhausted");
                continue;
            };
            used.insert(ip);
            let api: Api<Service> =
                Api::namespaced(self.client.clone(), &s.namespace().unwrap_or_default());
            api.patch(
                &s.name_any(),
                &PatchParams::default(),
                &Patch::Merge(
                    json!({"spec": {"clusterIP": ip.to_string(), "clusterIPs": [ip.to_string()]}}),
                ),
            )
            .await?;
        }
        Ok(())
    }

    async fn endpoint_slices(&self) -> Result<(), kube::Error> {
        let pods = self.stores.pods.state();
        let slices = self.stores.slices.state();
        for s in self.stores.services.state() {
            let spec = s.spec.clone().unwrap_or_default();
            let Some(selector) = spec.selector.clone().filter(|m| !m.is_empty()) else {
                continue;
            };
            if is_terminating(s.as_ref()) {
                continue;
            }
            let ns = s.namespace().unwrap_or_default();
            let mut members: Vec<&Arc<Pod>> = pods
                .iter()
                .filter(|p| {
                    p.namespace().as_deref() == Some(&ns)
                        && !is_terminating(p.as_ref())
                        && map_matches(
                            &selector,
                            p.metadata.labels.as_ref().unwrap_or(&BTreeMap::new()),
                        )
                        && p.status
                            .as_ref()
                            .and_then(|st| st.pod_ip.as_ref())
                            .is_some_and(|ip| !ip.is_empty())
                })
                .collect();
            members.sort_by_key(|p| p.name_any());
            let ports: Vec<EndpointPort> = spec
                .ports
                .clone()
                .unwrap_or_default()
                .iter()
                .map(|sp| EndpointPort {
                    name: Some(sp.name.clone().unwrap_or_default()),
                    protocol: Some(sp.protocol.clone().unwrap_or_else(|| "TCP".into())),
                    port: Some(resolve_target_port(
                        sp.target_port.as_ref(),
                        sp.port,
                        members.first().map(|p| p.as_ref()),
                    )),
                    app_protocol: sp.app_protocol.clone(),
                })
                .collect();
            let endpoints: Vec<Endpoint> = members
                .iter()
                .map(|p| {
                    let ready = pod_ready(p);
                    Endpoint {
                        addresses: vec![
                            p.status
                                .as_ref()
                                .and_then(|st| st.pod_ip.clone())
                                .unwrap_or_default(),
                        ],
                        conditions: Some(EndpointConditions {
                            ready: Some(ready),
                            serving: Some(ready),
                            terminating: Some(false),
                        }),
                        hostname: p.spec.as_ref().and_then(|sp| sp.hostname.clone()),
                        node_name: p.spec.as_ref().and_then(|sp| sp.node_name.clone()),
                        target_ref: Some(k8s_openapi::api::core::v1::ObjectReference {
                            kind: Some("Pod".into()),
                            name: Some(p.name_any()),
                            namespace: Some(ns.clone()),
                            uid: p.uid(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }
                })
                .collect();
            let name = format!("{}-sbx", s.name_any());
            let existing = slices
                .iter()
                .find(|e| e.namespace().as_deref() == Some(&ns) && e.name_any() == name);
            if let Some(e) = existing
                && e.endpoints == endpoints
                && e.ports.as_ref() == Some(&ports)
            {
                continue;
            }
            let mut labels = BTreeMap::new();
            labels.insert("kubernetes.io/service-name".to_string(), s.name_any());
            labels.insert(
                "endpointslice.kubernetes.io/managed-by".to_string(),
                "sandbox.ferry.dev".to_string(),
            );
            let mut slice = EndpointSlice {
                metadata: kube::api::ObjectMeta {
                    name: Some(name.clone()),
                    namespace: Some(ns.clone()),
                    labels: Some(labels),
                    owner_references: Some(vec![owner_ref(s.as_ref())]),
                    ..Default::default()
                },
                address_type: "IPv4".into(),
                endpoints,
                ports: Some(ports),
            };
            let api: Api<EndpointSlice> = Api::namespaced(self.client.clone(), &ns);
            match existing {
                Some(e) => {
                    slice.metadata.resource_version = e.resource_version();
                    api.replace(&name, &PostParams::default(), &slice).await?;
                }
                None => {
                    api.create(&PostParams::default(), &slice).await?;
                }
            }
        }
        Ok(())
    }
}

/// The endpoint port for a service port: a number, a container port name
/// looked up in `pod`, or the service port itself.
pub fn resolve_target_port(target: Option<&IntOrString>, port: i32, pod: Option<&Pod>) -> i32 {
    match target {
        Some(IntOrString::Int(n)) => *n,
        Some(IntOrString::String(name)) => {
            if let Ok(n) = name.parse() {
                return n;
            }
            pod.and_then(|p| p.spec.as_ref())
                .into_iter()
                .flat_map(|s| s.containers.iter())
                .flat_map(|c| c.ports.iter().flatten())
                .find(|cp| cp.name.as_deref() == Some(name))
                .map(|cp| cp.container_port)
                .unwrap_or(port)
        }
        None => port,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_ports() {
        let pod: Pod = serde_json::from_value(json!({
            "spec": {"containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}]}
        }))
        .unwrap();
        let named = IntOrString::String("http".into());
        assert_eq!(resolve_target_port(Some(&named), 80, Some(&pod)), 8080);
        assert_eq!(
            resolve_target_port(Some(&IntOrString::Int(81)), 80, Some(&pod)),
            81
        );
        assert_eq!(resolve_target_port(None, 80, Some(&pod)), 80);
        let missing = IntOrString::String("grpc".into());
        assert_eq!(resolve_target_port(Some(&missing), 80, Some(&pod)), 80);
    }

    #[test]
    fn expectations_cover_cache_lag() {
        let mut e = Expectations::default();
        e.created.insert("new".into(), Instant::now());
        e.deleted.insert("old".into(), Instant::now());
        let seen: HashSet<String> = ["old".to_string(), "kept".to_string()].into();
        let live = e.effective(seen);
        assert_eq!(live, ["new".to_string(), "kept".to_string()].into());
        // Once the cache catches up, the expectations are dropped.
        let seen: HashSet<String> = ["new".to_string(), "kept".to_string()].into();
        let live = e.effective(seen);
        assert_eq!(live.len(), 2);
        assert!(e.created.is_empty() && e.deleted.is_empty());
    }

    #[test]
    fn selector_maps() {
        let sel: BTreeMap<String, String> = [("a".to_string(), "1".to_string())].into();
        let labels: BTreeMap<String, String> = [
            ("a".to_string(), "1".to_string()),
            ("b".to_string(), "2".to_string()),
        ]
        .into();
        assert!(map_matches(&sel, &labels));
        assert!(map_matches(&BTreeMap::new(), &labels));
        assert!(!map_matches(&labels, &sel));
    }
}
