//! Globalnet in a member cluster whose `ferry-broker` Secret names a global
//! CIDR: the agent is the one writer of its global addresses. It keeps the
//! cluster egress pool (`ClusterGlobalEgressIP` `cluster-egress.ferry.dev`,
//! created with Submariner's default of 8 IPs), every namespace's
//! `GlobalEgressIP` (default 1 IP; its `podSelector` checked here, matched
//! by the gateway) and one `GlobalIngressIP`
//! per exported ClusterIP Service (named like the Service, in its
//! namespace), allocates their addresses from the cluster's block into
//! their `status`, and puts each Service's global IP on its ServiceExport
//! (`ferry.dev/global-ip`), from where the export reconciler publishes it
//! instead of the cluster IP. The gateway translates what the statuses say.
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
use ferry_api::labels::{APP_MANAGED_BY, APP_MANAGED_BY_FERRY, GLOBAL_IP};
use ferry_api::{
    ClusterGlobalEgressIP, GlobalEgressIP, GlobalEgressIPStatus, GlobalIngressIP,
    GlobalIngressIPSpec, GlobalIngressIPStatus, ServiceExport,
};
use ferry_globalnet::Block;
use ferry_kube::Watch;
use futures::FutureExt;
use k8s_openapi::api::core::v1::Service;
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
            let ips = e
                .status
                .as_ref()
                .map(|s| s.allocated_ips.clone())
                .unwrap_or_default();
            counts(&e.name_any())
                .then(|| keep(block, &ips, &mut held))
                .flatten()
        })
        .collect();
    let namespaced_kept: Vec<Option<Vec<Ipv4Addr>>> = obs
        .namespaced
        .iter()
        .map(|e| {
            let ips = e
                .status
                .as_ref()
                .map(|s| s.allocated_ips.clone())
                .unwrap_or_default();
            keep(block, &ips, &mut held)
        })
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
    for x in &obs.exports {
        let Some(target) = x.cluster_ip else {
            continue;
        };
        let key = (x.ns.clone(), x.name.clone());
        wanted.insert(key.clone());
        let Some((g, kept)) = by_key.get(&key) else {
            actions.push(Action::CreateIngress {
                ns: x.ns.clone(),
                name: x.name.clone(),
            });
            continue;
        };
        let current = g.status.clone().unwrap_or_default();
        let ip = match kept {
            Some(ip) => Ok(*ip),
            None => block.allocate(&held, 1).map(|v| v[0]).inspect(|ip| {
                held.insert(*ip);
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
            actions.push(Action::IngressStatus {
                rv: g.resource_version(),
                ns: x.ns.clone(),
                name: x.name.clone(),
                status: status.clone(),
            });
        }
        let annotate = (!status.allocated_ip.is_empty()).then(|| status.allocated_ip.clone());
        if annotate != x.annotated {
            actions.push(Action::AnnotateExport {
                ns: x.ns.clone(),
                name: x.name.clone(),
                ip: annotate,
            });
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

/// What the plan needs of the watched objects.
fn observe(
    exports: &Store<ServiceExport>,
    services: &Store<Service>,
    egress: &Store<ClusterGlobalEgressIP>,
    namespaced: &Store<GlobalEgressIP>,
    ingress: &Store<GlobalIngressIP>,
) -> Observed {
    let svc: BTreeMap<(String, String), Option<Ipv4Addr>> = services
        .state()
        .iter()
        .map(|s| {
            let ip = s
                .spec
                .as_ref()
                .and_then(|sp| sp.cluster_ip.as_deref())
                .and_then(|ip| ip.parse().ok());
            ((s.namespace().unwrap_or_default(), s.name_any()), ip)
        })
        .collect();
    let exports = exports
        .state()
        .iter()
        .filter(|x| x.metadata.deletion_timestamp.is_none())
        .map(|x| {
            let ns = x.namespace().unwrap_or_default();
            let name = x.name_any();
            ExportFacts {
                annotated: x.annotations().get(GLOBAL_IP).cloned(),
                cluster_ip: svc.get(&(ns.clone(), name.clone())).copied().flatten(),
                ns,
                name,
            }
        })
        .collect();
    Observed {
        exports,
        egress: egress.state().iter().map(|e| (**e).clone()).collect(),
        namespaced: namespaced.state().iter().map(|e| (**e).clone()).collect(),
        ingress: ingress.state().iter().map(|g| (**g).clone()).collect(),
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
        Action::CreateIngress { ns, name } => {
            let api: Api<GlobalIngressIP> = Api::namespaced(client.clone(), ns);
            let obj = GlobalIngressIP {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    namespace: Some(ns.clone()),
                    labels: labels(),
                    ..Default::default()
                },
                spec: GlobalIngressIPSpec {
                    target: ferry_api::globalnet::TargetType::ClusterIpService,
                    service_ref: Some(ferry_api::globalnet::LocalObjectReference {
                        name: name.clone(),
                    }),
                    pod_ref: None,
                },
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
    let watches = futures::future::join5(w1, w2, w3, w4, w5);
    info!(block = %block.cidr(), "globalnet: allocating global IPs");
    let main = async {
        loop {
            // A change, or the periodic resync: either way, decide anew.
            let _ = tokio::time::timeout(RESYNC, changed.notified()).await;
            // Let a burst of events land before deciding once.
            tokio::time::sleep(Duration::from_millis(20)).await;
            let ready = [
                exports.wait_until_ready().now_or_never(),
                services.wait_until_ready().now_or_never(),
                egress.wait_until_ready().now_or_never(),
                ingress.wait_until_ready().now_or_never(),
                namespaced.wait_until_ready().now_or_never(),
            ];
            if ready.iter().any(|r| !matches!(r, Some(Ok(())))) {
                continue;
            }
            for action in plan(
                &block,
                &observe(&exports, &services, &egress, &namespaced, &ingress),
            ) {
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
