//! Globalnet in a member cluster whose `ferry-broker` Secret names a global
//! CIDR: the agent is the one writer of its global addresses. It keeps the
//! cluster egress pool (`ClusterGlobalEgressIP` `cluster-egress.ferry.dev`,
//! created with Submariner's default of 8 IPs), every namespace's
//! `GlobalEgressIP` (default 1 IP; its `podSelector` checked here, matched
//! by the gateway) and one `GlobalIngressIP`
//! per exported ClusterIP Service (named like the Service, in its
//! namespace) and per ready pod of an exported headless Service (`pod-NAME`,
//! `target: HeadlessServicePod`), allocates their addresses from the cluster's block into
//! their `status`, and puts each Service's global IP on its ServiceExport
//! (`ferry.dev/global-ip`), from where the export reconciler publishes it
//! instead of the cluster IP (a headless Service's pods' global IPs by pod
//! IP in `ferry.dev/global-pod-ips`, which its EndpointSlice then carries).
//! The gateway translates what the statuses say.
//!
//! What is held lives only in the objects' statuses, so a restarted agent
//! (or another replica later) reads it back and keeps every address.
//! Deciding ([`plan`]) is pure; [`run`] watches and writes.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use ferry_api::globalnet::{
    ALLOCATED, CLUSTER_EGRESS_NAME, DEFAULT_CLUSTER_EGRESS_IPS, MAX_EGRESS_IPS,
    SUBMARINER_CLUSTER_EGRESS_NAME, requested_ips,
};
use ferry_api::labels::{
    APP_MANAGED_BY, APP_MANAGED_BY_FERRY, GLOBAL_IP, GLOBAL_POD_IPS, MANAGED_BY, MANAGED_BY_FERRY,
};
use ferry_api::{
    ClusterGlobalEgressIP, GlobalEgressIP, GlobalEgressIPStatus, GlobalIngressIP,
    GlobalIngressIPSpec, GlobalIngressIPStatus, ServiceExport,
};
use ferry_globalnet::Block;
use ferry_kube::Watch;
use futures::FutureExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::{Endpoint as SliceEndpoint, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde_json::json;
use tokio::sync::Notify;
use tracing::{info, warn};

#[cfg(test)]
mod tests;

/// The label tying a Service's own EndpointSlices to it.
const K8S_SERVICE_NAME: &str = "kubernetes.io/service-name";
/// Field manager of the agent's Globalnet writes.
const MANAGER: &str = "ferry-agent-globalnet";
/// How often everything is checked again even without events (failed
/// writes are retried then).
const RESYNC: Duration = Duration::from_secs(5);

/// `service` as other clusters reach it: its cluster IPs replaced by `ip`.
pub fn with_global_ip(mut service: Service, ip: &str) -> Service {
    if let Some(spec) = service.spec.as_mut() {
        spec.cluster_ip = Some(ip.to_string());
        spec.cluster_ips = Some(vec![ip.to_string()]);
    }
    service
}

/// A headless service's exported `endpoints` with each pod's global IP
/// (`global`, by pod IP) instead of its own; a pod without one yet is left
/// out (other clusters could not reach its own address).
pub fn with_global_pod_ips(
    endpoints: Vec<SliceEndpoint>,
    global: &BTreeMap<String, String>,
) -> Vec<SliceEndpoint> {
    endpoints
        .into_iter()
        .filter_map(|mut e| {
            let mapped: Option<Vec<String>> =
                e.addresses.iter().map(|a| global.get(a).cloned()).collect();
            e.addresses = mapped?;
            Some(e)
        })
        .collect()
}

/// The name of a headless service pod's `GlobalIngressIP`.
pub fn pod_ingress_name(pod: &str) -> String {
    format!("pod-{pod}")
}

/// A live ServiceExport and what the plan needs of its Service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportFacts {
    /// Namespace and name (of the export and the Service).
    pub ns: String,
    pub name: String,
    /// Its `ferry.dev/global-ip` annotation.
    pub annotated: Option<String>,
    /// The Service's IPv4 cluster IP (`None`: no Service, headless, or not
    /// IPv4 — nothing to translate to).
    pub cluster_ip: Option<Ipv4Addr>,
    /// A headless Service's ready pods (name, IPv4 address); empty otherwise.
    pub pods: Vec<(String, Ipv4Addr)>,
    /// Whether the Service is headless.
    pub headless: bool,
    /// Its `ferry.dev/global-pod-ips` annotation.
    pub annotated_pods: Option<String>,
}

/// Everything [`plan`] reads.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    pub exports: Vec<ExportFacts>,
    pub egress: Vec<ClusterGlobalEgressIP>,
    /// Namespaces' (and pod selectors') egress objects.
    pub namespaced: Vec<GlobalEgressIP>,
    pub ingress: Vec<GlobalIngressIP>,
}

/// One write.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Create the cluster egress object.
    CreateClusterEgress,
    /// Set a `ClusterGlobalEgressIP`'s status.
    EgressStatus {
        /// The resourceVersion the plan read: a write over a newer object
        /// (the plan decided from a stale cache) is refused, never moves IPs.
        rv: Option<String>,
        name: String,
        status: GlobalEgressIPStatus,
    },
    /// Set a `GlobalEgressIP`'s status.
    NamespacedEgressStatus {
        /// The resourceVersion the plan read: a write over a newer object
        /// (the plan decided from a stale cache) is refused, never moves IPs.
        rv: Option<String>,
        ns: String,
        name: String,
        status: GlobalEgressIPStatus,
    },
    /// Create the `GlobalIngressIP` of an exported Service.
    CreateIngress { ns: String, name: String },
    /// Create the `GlobalIngressIP` `name` of pod `pod` of an exported
    /// headless Service.
    CreatePodIngress {
        ns: String,
        name: String,
        pod: String,
    },
    /// Set a `GlobalIngressIP`'s status.
    IngressStatus {
        /// The resourceVersion the plan read: a write over a newer object
        /// (the plan decided from a stale cache) is refused, never moves IPs.
        rv: Option<String>,
        ns: String,
        name: String,
        status: GlobalIngressIPStatus,
    },
    /// Delete a `GlobalIngressIP` whose export is gone.
    DeleteIngress { ns: String, name: String },
    /// Set (or remove) a ServiceExport's `ferry.dev/global-ip`.
    AnnotateExport {
        ns: String,
        name: String,
        ip: Option<String>,
    },
    /// Set (or remove) a headless ServiceExport's `ferry.dev/global-pod-ips`.
    AnnotatePods {
        ns: String,
        name: String,
        ips: Option<String>,
    },
}

fn counts(name: &str) -> bool {
    name == CLUSTER_EGRESS_NAME || name == SUBMARINER_CLUSTER_EGRESS_NAME
}

fn condition(ok: bool, reason: &str, message: String) -> Condition {
    Condition {
        type_: ALLOCATED.into(),
        status: if ok { "True" } else { "False" }.into(),
        reason: reason.into(),
        message,
        last_transition_time: Time(k8s_openapi::jiff::Timestamp::now()),
        observed_generation: None,
    }
}

/// Whether two condition lists say the same (times aside).
fn same_conditions(a: &[Condition], b: &[Condition]) -> bool {
    let key = |c: &Condition| {
        (
            c.type_.clone(),
            c.status.clone(),
            c.reason.clone(),
            c.message.clone(),
        )
    };
    a.iter().map(key).eq(b.iter().map(key))
}

/// The addresses `ips` lists that the block hands out and no earlier
/// holder took (`held`, which they are added to); `None` if any is not.
fn keep(block: &Block, ips: &[String], held: &mut BTreeSet<Ipv4Addr>) -> Option<Vec<Ipv4Addr>> {
    let parsed: Option<Vec<Ipv4Addr>> = ips.iter().map(|s| s.parse().ok()).collect();
    let parsed = parsed?;
    if parsed
        .iter()
        .any(|ip| !block.allocatable(*ip) || held.contains(ip))
    {
        return None;
    }
    held.extend(parsed.iter().copied());
    Some(parsed)
}

/// Whether `status` says something else than `current` (times aside).
fn changed(status: &GlobalEgressIPStatus, current: &GlobalEgressIPStatus) -> bool {
    status.allocated_ips != current.allocated_ips
        || !same_conditions(&status.conditions, &current.conditions)
}

/// An egress object's status: `want` contiguous IPs (those it `kept` if
/// they are as many), refused with the numbers over [`MAX_EGRESS_IPS`] or
/// with `invalid`'s reason. What it gets is added to `held`.
fn egress_status(
    block: &Block,
    want: u32,
    invalid: Option<String>,
    kept: Option<Vec<Ipv4Addr>>,
    held: &mut BTreeSet<Ipv4Addr>,
) -> GlobalEgressIPStatus {
    let refused = |message: String| GlobalEgressIPStatus {
        conditions: vec![condition(false, "InvalidInput", message)],
        allocated_ips: Vec::new(),
    };
    if want > MAX_EGRESS_IPS {
        let err = ferry_globalnet::Error::TooManyIps {
            asked: want,
            max: MAX_EGRESS_IPS,
        };
        return refused(err.to_string());
    }
    if let Some(reason) = invalid {
        return refused(reason);
    }
    let ips = match kept {
        Some(ips) if ips.len() == want as usize => Ok(ips),
        _ => block.allocate(held, want).inspect(|ips| held.extend(ips)),
    };
    match ips {
        Ok(ips) => GlobalEgressIPStatus {
            conditions: vec![condition(
                true,
                "Success",
                format!("{} global IPs allocated from {}", ips.len(), block.cidr()),
            )],
            allocated_ips: ips.iter().map(ToString::to_string).collect(),
        },
        Err(err) => GlobalEgressIPStatus {
            conditions: vec![condition(false, "IPPoolAllocationFailed", err.to_string())],
            allocated_ips: Vec::new(),
        },
    }
}

/// The IPs an egress object's status says it holds (either kind).
fn allocated(status: Option<&ferry_api::GlobalEgressIPStatus>) -> Vec<String> {
    status.map(|s| s.allocated_ips.clone()).unwrap_or_default()
}

/// The writes that bring the cluster's Globalnet objects in line with its
/// exports and the block.
pub fn plan(block: &Block, obs: &Observed) -> Vec<Action> {
    let mut actions = Vec::new();
    // Pass 1: what each object validly holds stays its own.
    let mut held = BTreeSet::new();
    let egress_kept: Vec<Option<Vec<Ipv4Addr>>> = obs
        .egress
        .iter()
        .map(|e| {
            let ips = allocated(e.status.as_ref());
            counts(&e.name_any())
                .then(|| keep(block, &ips, &mut held))
                .flatten()
        })
        .collect();
    let namespaced_kept: Vec<Option<Vec<Ipv4Addr>>> = obs
        .namespaced
        .iter()
        .map(|e| keep(block, &allocated(e.status.as_ref()), &mut held))
        .collect();
    let ingress_kept: Vec<Option<Ipv4Addr>> = obs
        .ingress
        .iter()
        .map(|g| {
            let ip = g.status.as_ref().map(|s| s.allocated_ip.clone())?;
            keep(block, &[ip], &mut held).and_then(|v| v.first().copied())
        })
        .collect();

    // Pass 2: egress pools.
    if !obs.egress.iter().any(|e| counts(&e.name_any())) {
        actions.push(Action::CreateClusterEgress);
    }
    for (e, kept) in obs.egress.iter().zip(egress_kept) {
        let name = e.name_any();
        if !counts(&name) {
            continue;
        }
        let want = requested_ips(
            e.spec.number_of_ips,
            e.spec.num_global_ips,
            DEFAULT_CLUSTER_EGRESS_IPS,
        );
        let current = e.status.clone().unwrap_or_default();
        let status = egress_status(block, want, None, kept, &mut held);
        if changed(&status, &current) {
            actions.push(Action::EgressStatus {
                rv: e.resource_version(),
                name,
                status,
            });
        }
    }
    for (e, kept) in obs.namespaced.iter().zip(namespaced_kept) {
        let want = requested_ips(e.spec.number_of_ips, e.spec.num_global_ips, 1);
        let invalid = e.spec.pod_selector.as_ref().and_then(|sel| {
            let value = serde_json::to_value(sel).unwrap_or_default();
            ferry_apimachinery::label_selector_from_api(&value)
                .err()
                .map(|err| format!("podSelector: {err}"))
        });
        let current = e.status.clone().unwrap_or_default();
        let status = egress_status(block, want, invalid, kept, &mut held);
        if changed(&status, &current) {
            actions.push(Action::NamespacedEgressStatus {
                rv: e.resource_version(),
                ns: e.namespace().unwrap_or_default(),
                name: e.name_any(),
                status,
            });
        }
    }

    // Pass 3: one ingress IP per exported ClusterIP Service.
    let by_key: BTreeMap<(String, String), (&GlobalIngressIP, Option<Ipv4Addr>)> = obs
        .ingress
        .iter()
        .zip(ingress_kept)
        .map(|(g, ip)| ((g.namespace().unwrap_or_default(), g.name_any()), (g, ip)))
        .collect();
    let mut wanted = BTreeSet::new();
    let mut ctx = IngressPlan {
        block,
        by_key: &by_key,
        held: &mut held,
        actions: &mut actions,
    };
    for x in &obs.exports {
        if let Some(target) = x.cluster_ip {
            let key = (x.ns.clone(), x.name.clone());
            wanted.insert(key.clone());
            let create = Action::CreateIngress {
                ns: x.ns.clone(),
                name: x.name.clone(),
            };
            let ip = ctx.want(&key, target, create);
            if ip != x.annotated {
                ctx.actions.push(Action::AnnotateExport {
                    ns: x.ns.clone(),
                    name: x.name.clone(),
                    ip,
                });
            }
        }
        if x.headless {
            let mut by_pod_ip = BTreeMap::new();
            for (pod, pod_ip) in &x.pods {
                let key = (x.ns.clone(), pod_ingress_name(pod));
                wanted.insert(key.clone());
                let create = Action::CreatePodIngress {
                    ns: x.ns.clone(),
                    name: key.1.clone(),
                    pod: pod.clone(),
                };
                if let Some(ip) = ctx.want(&key, *pod_ip, create) {
                    by_pod_ip.insert(pod_ip.to_string(), ip);
                }
            }
            let ips = serde_json::to_string(&by_pod_ip).ok();
            if ips != x.annotated_pods {
                ctx.actions.push(Action::AnnotatePods {
                    ns: x.ns.clone(),
                    name: x.name.clone(),
                    ips,
                });
            }
        }
    }
    for ((ns, name), (g, _)) in &by_key {
        let ours = g.labels().get(APP_MANAGED_BY).map(String::as_str) == Some(APP_MANAGED_BY_FERRY);
        if ours && !wanted.contains(&(ns.clone(), name.clone())) {
            actions.push(Action::DeleteIngress {
                ns: ns.clone(),
                name: name.clone(),
            });
        }
    }
    actions
}

/// Pass 3 of [`plan`]: the ingress objects wanted, over what they hold.
struct IngressPlan<'a> {
    block: &'a Block,
    by_key: &'a BTreeMap<(String, String), (&'a GlobalIngressIP, Option<Ipv4Addr>)>,
    held: &'a mut BTreeSet<Ipv4Addr>,
    actions: &'a mut Vec<Action>,
}

impl IngressPlan<'_> {
    /// The `GlobalIngressIP` `key` translated to `target`: `create`d when
    /// missing, else its status brought in line; its global IP, if it has one.
    fn want(&mut self, key: &(String, String), target: Ipv4Addr, create: Action) -> Option<String> {
        let Some((g, kept)) = self.by_key.get(key) else {
            self.actions.push(create);
            return None;
        };
        let current = g.status.clone().unwrap_or_default();
        let ip = match kept {
            Some(ip) => Ok(*ip),
            None => self
                .block
                .allocate(self.held, 1)
                .map(|v| v[0])
                .inspect(|ip| {
                    self.held.insert(*ip);
                }),
        };
        let status = match ip {
            Ok(ip) => GlobalIngressIPStatus {
                conditions: vec![condition(true, "Success", format!("allocated {ip}"))],
                allocated_ip: ip.to_string(),
                target_ip: target.to_string(),
            },
            Err(err) => GlobalIngressIPStatus {
                conditions: vec![condition(false, "IPPoolAllocationFailed", err.to_string())],
                allocated_ip: String::new(),
                target_ip: target.to_string(),
            },
        };
        if status.allocated_ip != current.allocated_ip
            || status.target_ip != current.target_ip
            || !same_conditions(&status.conditions, &current.conditions)
        {
            self.actions.push(Action::IngressStatus {
                rv: g.resource_version(),
                ns: key.0.clone(),
                name: key.1.clone(),
                status: status.clone(),
            });
        }
        (!status.allocated_ip.is_empty()).then_some(status.allocated_ip)
    }
}

/// The watched objects.
struct Stores {
    exports: Store<ServiceExport>,
    services: Store<Service>,
    egress: Store<ClusterGlobalEgressIP>,
    namespaced: Store<GlobalEgressIP>,
    ingress: Store<GlobalIngressIP>,
    slices: Store<EndpointSlice>,
}

/// The ready pods (name, IPv4) of the Services' own EndpointSlices, by
/// namespace and Service.
fn ready_pods(
    slices: &Store<EndpointSlice>,
) -> BTreeMap<(String, String), Vec<(String, Ipv4Addr)>> {
    let mut out: BTreeMap<_, Vec<_>> = BTreeMap::new();
    for sl in slices.state() {
        let labels = sl.labels();
        let Some(svc) = labels.get(K8S_SERVICE_NAME) else {
            continue;
        };
        if sl.address_type != "IPv4"
            || labels.get(MANAGED_BY).map(String::as_str) == Some(MANAGED_BY_FERRY)
        {
            continue;
        }
        let pods = out
            .entry((sl.namespace().unwrap_or_default(), svc.clone()))
            .or_default();
        for e in &sl.endpoints {
            let ready = e.conditions.as_ref().and_then(|c| c.ready) != Some(false);
            let pod = e
                .target_ref
                .as_ref()
                .filter(|r| r.kind.as_deref() == Some("Pod"))
                .and_then(|r| r.name.clone());
            let ip = e.addresses.first().and_then(|a| a.parse().ok());
            if let (true, Some(pod), Some(ip)) = (ready, pod, ip) {
                pods.push((pod, ip));
            }
        }
    }
    for pods in out.values_mut() {
        pods.sort();
        pods.dedup();
    }
    out
}

/// What the plan needs of the watched objects.
fn observe(st: &Stores) -> Observed {
    // (cluster IP, headless) by namespace and name.
    let svc: BTreeMap<(String, String), (Option<Ipv4Addr>, bool)> = st
        .services
        .state()
        .iter()
        .map(|s| {
            let cluster_ip = s.spec.as_ref().and_then(|sp| sp.cluster_ip.as_deref());
            let ip = cluster_ip.and_then(|ip| ip.parse().ok());
            let key = (s.namespace().unwrap_or_default(), s.name_any());
            (key, (ip, cluster_ip == Some("None")))
        })
        .collect();
    let mut pods = ready_pods(&st.slices);
    let exports = st
        .exports
        .state()
        .iter()
        .filter(|x| x.metadata.deletion_timestamp.is_none())
        .map(|x| {
            let key = (x.namespace().unwrap_or_default(), x.name_any());
            let (cluster_ip, headless) = svc.get(&key).copied().unwrap_or((None, false));
            ExportFacts {
                annotated: x.annotations().get(GLOBAL_IP).cloned(),
                annotated_pods: x.annotations().get(GLOBAL_POD_IPS).cloned(),
                cluster_ip,
                headless,
                pods: if headless {
                    pods.remove(&key).unwrap_or_default()
                } else {
                    Vec::new()
                },
                ns: key.0,
                name: key.1,
            }
        })
        .collect();
    Observed {
        exports,
        egress: st.egress.state().iter().map(|e| (**e).clone()).collect(),
        namespaced: st
            .namespaced
            .state()
            .iter()
            .map(|e| (**e).clone())
            .collect(),
        ingress: st.ingress.state().iter().map(|g| (**g).clone()).collect(),
    }
}

/// A status patch, pinned to `rv` when known (a 409 then means the plan
/// was stale; the next one decides again from the newer object).
fn status_body(rv: Option<&str>, status: &impl serde::Serialize) -> serde_json::Value {
    match rv {
        Some(rv) => json!({"metadata": {"resourceVersion": rv}, "status": status}),
        None => json!({"status": status}),
    }
}

/// Carries out one write.
async fn apply(client: &Client, action: &Action) -> Result<(), kube::Error> {
    let pp = PatchParams::default();
    let labels = || -> Option<BTreeMap<String, String>> {
        Some([(APP_MANAGED_BY.to_string(), APP_MANAGED_BY_FERRY.to_string())].into())
    };
    match action {
        Action::CreateClusterEgress => {
            let api: Api<ClusterGlobalEgressIP> = Api::all(client.clone());
            let mut obj = ClusterGlobalEgressIP::new(CLUSTER_EGRESS_NAME, Default::default());
            obj.metadata.labels = labels();
            match api.create(&PostParams::default(), &obj).await {
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
                r => r.map(drop),
            }
        }
        Action::EgressStatus { name, status, rv } => {
            let api: Api<ClusterGlobalEgressIP> = Api::all(client.clone());
            let body = status_body(rv.as_deref(), status);
            api.patch_status(name, &pp, &Patch::Merge(&body))
                .await
                .map(drop)
        }
        Action::NamespacedEgressStatus {
            ns,
            name,
            status,
            rv,
        } => {
            let api: Api<GlobalEgressIP> = Api::namespaced(client.clone(), ns);
            let body = status_body(rv.as_deref(), status);
            api.patch_status(name, &pp, &Patch::Merge(&body))
                .await
                .map(drop)
        }
        Action::CreateIngress { .. } | Action::CreatePodIngress { .. } => {
            let (ns, name, spec) = match action {
                Action::CreatePodIngress { ns, name, pod } => {
                    (ns, name, ingress_spec(None, Some(pod)))
                }
                Action::CreateIngress { ns, name } => (ns, name, ingress_spec(Some(name), None)),
                _ => return Ok(()),
            };
            let api: Api<GlobalIngressIP> = Api::namespaced(client.clone(), ns);
            let obj = GlobalIngressIP {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    namespace: Some(ns.clone()),
                    labels: labels(),
                    ..Default::default()
                },
                spec,
                status: None,
            };
            match api.create(&PostParams::default(), &obj).await {
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
                r => r.map(drop),
            }
        }
        Action::IngressStatus {
            ns,
            name,
            status,
            rv,
        } => {
            let api: Api<GlobalIngressIP> = Api::namespaced(client.clone(), ns);
            let body = status_body(rv.as_deref(), status);
            api.patch_status(name, &pp, &Patch::Merge(&body))
                .await
                .map(drop)
        }
        Action::DeleteIngress { ns, name } => {
            let api: Api<GlobalIngressIP> = Api::namespaced(client.clone(), ns);
            match api.delete(name, &DeleteParams::default()).await {
                Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
                r => r.map(drop),
            }
        }
        Action::AnnotateExport { ns, name, ip } => {
            let api: Api<ServiceExport> = Api::namespaced(client.clone(), ns);
            let body = json!({"metadata": {"annotations": {GLOBAL_IP: ip}}});
            let pp = PatchParams {
                field_manager: Some(MANAGER.into()),
                ..Default::default()
            };
            api.patch(name, &pp, &Patch::Merge(&body)).await.map(drop)
        }
        Action::AnnotatePods { ns, name, ips } => {
            let api: Api<ServiceExport> = Api::namespaced(client.clone(), ns);
            let body = json!({"metadata": {"annotations": {GLOBAL_POD_IPS: ips}}});
            let pp = PatchParams {
                field_manager: Some(MANAGER.into()),
                ..Default::default()
            };
            api.patch(name, &pp, &Patch::Merge(&body)).await.map(drop)
        }
    }
}

/// A `GlobalIngressIP` spec: a Service's (`ClusterIPService`) or a
/// headless service pod's (`HeadlessServicePod`).
fn ingress_spec(service: Option<&String>, pod: Option<&String>) -> GlobalIngressIPSpec {
    use ferry_api::globalnet::{LocalObjectReference, TargetType};
    let reference = |n: &String| LocalObjectReference { name: n.clone() };
    GlobalIngressIPSpec {
        target: if pod.is_some() {
            TargetType::HeadlessServicePod
        } else {
            TargetType::ClusterIpService
        },
        service_ref: service.map(reference),
        pod_ref: pod.map(reference),
    }
}

/// Keeps the cluster's Globalnet objects in line with its exports until
/// `shutdown` completes.
pub async fn run(client: Client, block: Block, shutdown: impl std::future::Future<Output = ()>) {
    let changed = Arc::new(Notify::new());
    let (exports, w1) = watch_all::<ServiceExport>(&client, &changed);
    let (services, w2) = watch_all::<Service>(&client, &changed);
    let (egress, w3) = watch_all::<ClusterGlobalEgressIP>(&client, &changed);
    let (ingress, w4) = watch_all::<GlobalIngressIP>(&client, &changed);
    let (namespaced, w5) = watch_all::<GlobalEgressIP>(&client, &changed);
    let (slices, w6) = watch_all::<EndpointSlice>(&client, &changed);
    let watches = futures::future::join(futures::future::join5(w1, w2, w3, w4, w5), w6);
    let st = Stores {
        exports,
        services,
        egress,
        namespaced,
        ingress,
        slices,
    };
    info!(block = %block.cidr(), "globalnet: allocating global IPs");
    let main = async {
        loop {
            // A change, or the periodic resync: either way, decide anew.
            let _ = tokio::time::timeout(RESYNC, changed.notified()).await;
            // Let a burst of events land before deciding once.
            tokio::time::sleep(Duration::from_millis(20)).await;
            let ready = [
                st.exports.wait_until_ready().now_or_never(),
                st.services.wait_until_ready().now_or_never(),
                st.egress.wait_until_ready().now_or_never(),
                st.ingress.wait_until_ready().now_or_never(),
                st.namespaced.wait_until_ready().now_or_never(),
                st.slices.wait_until_ready().now_or_never(),
            ];
            if ready.iter().any(|r| !matches!(r, Some(Ok(())))) {
                continue;
            }
            for action in plan(&block, &observe(&st)) {
                if let Err(e) = apply(&client, &action).await {
                    warn!(?action, "globalnet: {e}");
                }
            }
        }
    };
    tokio::select! {
        () = main => {}
        _ = watches => {}
        () = shutdown => {}
    }
}

/// A store of every `K` in the cluster, waking `changed` after each change.
fn watch_all<K: ferry_kube::Watchable + Sync>(
    client: &Client,
    changed: &Arc<Notify>,
) -> (
    Store<K>,
    impl std::future::Future<Output = ()> + Send + 'static,
) {
    Watch::new(Api::<K>::all(client.clone()), watcher::Config::default()).notify(changed.clone())
}
