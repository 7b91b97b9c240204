//! `ferry uninstall`: removes from a cluster everything `ferry join` (and
//! the agent on its behalf) made, and this cluster's objects from the
//! broker.
//!
//! Order matters: the `ferry gateway` and `ferry route-agent` DaemonSets go
//! first, and we wait (bounded) for their pods to be gone — on SIGTERM with
//! their DaemonSet deleted, those daemons remove the routes, rules and
//! interfaces they made on the nodes, and they need their namespace and
//! RBAC while doing it. The agent goes too before the broker is touched, so
//! it cannot publish this cluster again. Then: the broker objects labelled
//! with this cluster's id (with the cluster's own broker token, from the
//! `ferry-broker` Secret), CoreDNS's marked forward block, the agent's
//! ServiceImports, derived Services and EndpointSlices, the cluster-id ClusterProperty, the
//! gateway node labels, cluster RBAC, the `ferry-system` namespace, and with
//! `--crds` the CRDs (not by default: other tools may use the MCS CRDs).
//! Every step tolerates what is already gone, so it is safe to re-run.

use std::time::{Duration, Instant};

use ferry_api::GlobalCidr;
use ferry_api::labels::{
    self, APP_MANAGED_BY, APP_MANAGED_BY_FERRY, CLUSTER, CLUSTER_ID_PROPERTY, SYSTEM_NAMESPACE,
};
use ferry_api::{
    BrokerInfo, Cluster, ClusterProperty, Endpoint, Gateway, ServiceExport, ServiceImport,
};
use ferry_deploy::{BROKER_SECRET, CLUSTER_SA_PREFIX};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{
    ConfigMap, Namespace, Node, Pod, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::show::gather::PART_OF_FERRY;
use crate::target::Target;
use crate::{Error, Result};

/// What `ferry join` left in a cluster, as far as uninstall needs to know.
#[derive(Clone, Debug, Default)]
pub struct Installation {
    /// This cluster's id (ClusterProperty, else the Secret).
    pub cluster_id: Option<String>,
    /// The broker and this cluster's own token, from the `ferry-broker` Secret.
    pub broker: Option<BrokerInfo>,
    /// Why the Secret could not be read, when it exists but is malformed.
    pub broker_problem: Option<String>,
    /// Whether the `ferry-system` namespace exists.
    pub namespace: bool,
}

impl Installation {
    /// Whether there is any sign of ferry.
    pub fn found(&self) -> bool {
        self.cluster_id.is_some() || self.namespace || self.broker.is_some()
    }
}

/// How to uninstall.
#[derive(Clone, Debug)]
pub struct Options {
    /// Also delete ferry's and the MCS CRDs (and so every object of them).
    pub crds: bool,
    /// Leave this cluster's objects on the broker.
    pub skip_broker: bool,
    /// How long to wait for ferry's pods to stop.
    pub pod_timeout: Duration,
    /// How long to wait for the namespace to disappear.
    pub namespace_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            crds: false,
            skip_broker: false,
            pod_timeout: Duration::from_secs(30),
            namespace_timeout: Duration::from_secs(30),
        }
    }
}

/// What uninstall did.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// One line per object (or group of objects) removed.
    pub removed: Vec<String>,
    /// Things deliberately left alone.
    pub notes: Vec<String>,
    /// What could not be done; non-empty means the uninstall is incomplete.
    pub warnings: Vec<String>,
}

impl Report {
    /// [`Error::Incomplete`] when there are warnings.
    pub fn check(&self) -> Result<()> {
        if self.warnings.is_empty() {
            Ok(())
        } else {
            Err(Error::Incomplete {
                problems: self.warnings.clone(),
            })
        }
    }
}

/// Reads what uninstall needs before it changes anything.
pub async fn inspect(t: &Target) -> Result<Installation> {
    let c = &t.client;
    let mut inst = Installation::default();
    let props: Api<ClusterProperty> = Api::all(c.clone());
    match props.get_opt(CLUSTER_ID_PROPERTY).await {
        Ok(p) => inst.cluster_id = p.map(|p| p.spec.value),
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => return Err(t.error("reading the cluster id (ClusterProperty)", e)),
    }
    let namespaces: Api<Namespace> = Api::all(c.clone());
    inst.namespace = namespaces
        .get_opt(SYSTEM_NAMESPACE)
        .await
        .map_err(|e| t.error(format!("reading namespace {SYSTEM_NAMESPACE}"), e))?
        .is_some();
    if inst.namespace {
        let secrets: Api<Secret> = Api::namespaced(c.clone(), SYSTEM_NAMESPACE);
        let secret = secrets.get_opt(BROKER_SECRET).await.map_err(|e| {
            t.error(
                format!("reading Secret {SYSTEM_NAMESPACE}/{BROKER_SECRET}"),
                e,
            )
        })?;
        if let Some(s) = secret {
            match ferry_deploy::BrokerSecret::from_secret(&s) {
                Ok(b) => {
                    inst.cluster_id.get_or_insert(b.cluster_id);
                    inst.broker = Some(b.broker_info);
                }
                Err(e) => inst.broker_problem = Some(e.to_string()),
            }
        }
    }
    Ok(inst)
}

async fn names<K>(t: &Target, api: &Api<K>, lp: &ListParams, what: &str) -> Result<Vec<String>>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    match api.list_metadata(lp).await {
        Ok(l) => Ok(l
            .items
            .into_iter()
            .filter_map(|o| o.metadata.name)
            .collect()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(Vec::new()),
        Err(e) => Err(t.error(format!("listing {what}"), e)),
    }
}

/// Deletes one object; `Ok(false)` if it was not there.
async fn delete<K>(t: &Target, api: &Api<K>, name: &str, what: &str) -> Result<bool>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(e) => Err(t.error(format!("deleting {what} {name}"), e)),
    }
}

/// Deletes every object `lp` selects; returns their names.
async fn delete_all<K>(t: &Target, api: &Api<K>, lp: &ListParams, what: &str) -> Result<Vec<String>>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let mut gone = Vec::new();
    for n in names(t, api, lp, what).await? {
        if delete(t, api, &n, what).await? {
            gone.push(n);
        }
    }
    Ok(gone)
}

fn summary(what: &str, names: &[String]) -> Option<String> {
    match names.len() {
        0 => None,
        1 => Some(format!("{what} {}", names[0])),
        n => Some(format!("{n} {what}s ({})", names.join(", "))),
    }
}

/// Uninstalls. `progress` gets a line per step and while waiting.
pub async fn uninstall(
    t: &Target,
    inst: &Installation,
    opts: &Options,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Report> {
    let mut report = Report::default();
    let mut removed = Removed {
        progress,
        report: &mut report,
    };
    remove_workloads(t, opts, &mut removed).await?;
    remove_broker_objects(inst, opts, &mut removed).await?;
    remove_coredns_block(t, &mut removed).await?;
    // Not in the broker namespace, should this cluster also host the
    // broker: the objects there are every cluster's.
    let broker_ns = inst
        .broker
        .as_ref()
        .map_or(labels::BROKER_NAMESPACE, |b| b.broker_namespace.as_str());
    remove_agent_objects(t, broker_ns, &mut removed).await?;
    remove_cluster_wide(t, &mut removed).await?;
    remove_namespace(t, opts, &mut removed).await?;
    remove_crds(t, opts, broker_ns, &mut removed).await?;
    Ok(report)
}

/// Where each removal is told (as progress) and recorded (in the report).
struct Removed<'a> {
    progress: &'a (dyn Fn(&str) + Sync),
    report: &'a mut Report,
}

impl Removed<'_> {
    fn push(&mut self, line: Option<String>) {
        if let Some(l) = line {
            (self.progress)(&format!("removed {l}"));
            self.report.removed.push(l);
        }
    }
}

/// Step 1: the node daemons first, then the Deployments; then wait for
/// their pods.
async fn remove_workloads(t: &Target, opts: &Options, removed: &mut Removed<'_>) -> Result<()> {
    let (c, sys) = (&t.client, SYSTEM_NAMESPACE);
    let part_of = ListParams::default().labels(PART_OF_FERRY);
    let ds: Api<DaemonSet> = Api::namespaced(c.clone(), sys);
    let gone = delete_all(t, &ds, &part_of, "DaemonSet").await?;
    removed.push(summary("DaemonSet", &gone));
    let deploys: Api<Deployment> = Api::namespaced(c.clone(), sys);
    let gone = delete_all(t, &deploys, &part_of, "Deployment").await?;
    removed.push(summary("Deployment", &gone));
    wait_for_pods(t, opts.pod_timeout, removed.progress, removed.report).await
}

/// Step 2: this cluster's objects on the broker.
async fn remove_broker_objects(
    inst: &Installation,
    opts: &Options,
    removed: &mut Removed<'_>,
) -> Result<()> {
    let sys = SYSTEM_NAMESPACE;
    if opts.skip_broker {
        removed
            .report
            .notes
            .push("left this cluster's objects on the broker (--skip-broker)".into());
    } else if let Some(problem) = &inst.broker_problem {
        removed.report.warnings.push(format!(
            "cannot read the broker credentials from Secret {sys}/{BROKER_SECRET} ({problem}); this cluster's objects stay on the broker"
        ));
    } else if let (Some(info), Some(id)) = (&inst.broker, &inst.cluster_id) {
        let lines =
            clean_broker(info, id, removed.report)
                .await
                .map_err(|e| Error::BrokerCleanup {
                    url: info.api_server_url.clone(),
                    source: Box::new(e),
                })?;
        for l in lines {
            removed.push(Some(l));
        }
    }
    Ok(())
}

/// Step 3: CoreDNS's forward block.
async fn remove_coredns_block(t: &Target, removed: &mut Removed<'_>) -> Result<()> {
    let cms: Api<ConfigMap> = Api::namespaced(t.client.clone(), "kube-system");
    match cms.get_opt("coredns").await {
        Ok(Some(cm)) => {
            if let Some(corefile) = cm.data.as_ref().and_then(|d| d.get("Corefile"))
                && corefile.contains(ferry_deploy::coredns::BEGIN_MARKER)
            {
                let cleaned = ferry_deploy::coredns::remove_forward_block(corefile);
                match cms
                    .patch(
                        "coredns",
                        &PatchParams::default(),
                        &Patch::Merge(json!({"data": {"Corefile": cleaned}})),
                    )
                    .await
                {
                    Ok(_) => removed.push(Some(
                        "the clusterset forward block from kube-system/coredns".into(),
                    )),
                    Err(e) => removed.report.warnings.push(
                        crate::explain::explain_error(&t.error("editing kube-system/coredns", e))
                            .message,
                    ),
                }
            }
        }
        Ok(None) => {}
        Err(kube::Error::Api(s)) if s.code == 403 || s.code == 404 => {}
        Err(e) => return Err(t.error("reading kube-system/coredns", e)),
    }
    Ok(())
}

/// Step 4: what the agent made in the users' namespaces, all but `broker_ns`.
async fn remove_agent_objects(
    t: &Target,
    broker_ns: &str,
    removed: &mut Removed<'_>,
) -> Result<()> {
    let ours = ListParams::default().labels(&format!("{APP_MANAGED_BY}={APP_MANAGED_BY_FERRY}"));
    let imports =
        delete_namespaced_all::<ServiceImport>(t, &ours, broker_ns, "ServiceImport").await?;
    removed.push(summary("ServiceImport", &imports));
    // The derived Services that carry the imports' ClusterSet IPs: ferry's,
    // and labelled with the imported service's name.
    let derived_lp = ListParams::default().labels(&format!(
        "{APP_MANAGED_BY}={APP_MANAGED_BY_FERRY},{}",
        labels::SERVICE_NAME
    ));
    let derived = delete_namespaced_all::<Service>(t, &derived_lp, broker_ns, "Service").await?;
    removed.push(summary("Service", &derived));
    let slices_lp = ListParams::default().labels(&format!(
        "{}={}",
        labels::MANAGED_BY,
        labels::MANAGED_BY_FERRY
    ));
    let slices =
        delete_namespaced_all::<EndpointSlice>(t, &slices_lp, broker_ns, "EndpointSlice").await?;
    removed.push(summary("EndpointSlice", &slices));
    Ok(())
}

/// Step 5: the cluster id, gateway labels, cluster-wide RBAC.
async fn remove_cluster_wide(t: &Target, removed: &mut Removed<'_>) -> Result<()> {
    let c = &t.client;
    let part_of = ListParams::default().labels(PART_OF_FERRY);
    let props: Api<ClusterProperty> = Api::all(c.clone());
    if let Ok(Some(p)) = props.get_opt(CLUSTER_ID_PROPERTY).await {
        let mine = p
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(APP_MANAGED_BY))
            .is_some_and(|v| v == APP_MANAGED_BY_FERRY);
        if mine && delete(t, &props, CLUSTER_ID_PROPERTY, "ClusterProperty").await? {
            removed.push(Some(format!("ClusterProperty {CLUSTER_ID_PROPERTY}")));
        }
    }
    let nodes: Api<Node> = Api::all(c.clone());
    let gw = ListParams::default().labels(labels::GATEWAY);
    let mut unlabelled = Vec::new();
    for n in names(t, &nodes, &gw, "Nodes").await? {
        nodes
            .patch(
                &n,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {labels::GATEWAY: null}}})),
            )
            .await
            .map_err(|e| {
                t.error(
                    format!("removing label {} from node {n}", labels::GATEWAY),
                    e,
                )
            })?;
        unlabelled.push(n);
    }
    removed.push(summary(
        &format!("label {} from node", labels::GATEWAY),
        &unlabelled,
    ));
    let crb: Api<ClusterRoleBinding> = Api::all(c.clone());
    let gone = delete_all(t, &crb, &part_of, "ClusterRoleBinding").await?;
    removed.push(summary("ClusterRoleBinding", &gone));
    let cr: Api<ClusterRole> = Api::all(c.clone());
    let gone = delete_all(t, &cr, &part_of, "ClusterRole").await?;
    removed.push(summary("ClusterRole", &gone));

    Ok(())
}

/// Step 6: the namespace (the Secret, Services, ServiceAccounts, copies of
/// the other clusters' Cluster and Endpoint objects, Gateways go with it).
async fn remove_namespace(t: &Target, opts: &Options, removed: &mut Removed<'_>) -> Result<()> {
    let sys = SYSTEM_NAMESPACE;
    let namespaces: Api<Namespace> = Api::all(t.client.clone());
    if delete(t, &namespaces, sys, "Namespace").await? {
        wait_gone(
            &namespaces,
            sys,
            opts.namespace_timeout,
            removed.progress,
            t,
        )
        .await?;
        match namespaces.get_opt(sys).await {
            Ok(None) => removed.push(Some(format!("Namespace {sys}"))),
            _ => removed.report.warnings.push(format!(
                "namespace {sys} is still terminating after {} (something holds a finalizer: kubectl get all -n {sys})",
                secs(opts.namespace_timeout)
            )),
        }
    }
    Ok(())
}

/// Step 7: the CRDs, only when asked and not needed by a broker here.
async fn remove_crds(
    t: &Target,
    opts: &Options,
    broker_ns: &str,
    removed: &mut Removed<'_>,
) -> Result<()> {
    let c = &t.client;
    let namespaces: Api<Namespace> = Api::all(c.clone());
    let exports: Api<ServiceExport> = Api::all(c.clone());
    let kept = names(t, &exports, &ListParams::default(), "ServiceExports").await?;
    let hosts_broker = namespaces
        .get_opt(broker_ns)
        .await
        .map_err(|e| t.error(format!("reading namespace {broker_ns}"), e))?
        .is_some();
    if opts.crds && hosts_broker {
        removed.report.warnings.push(format!(
            "kept the CRDs: this cluster also hosts the broker (namespace {broker_ns}), which needs them"
        ));
    } else if opts.crds {
        let crds: Api<CustomResourceDefinition> = Api::all(c.clone());
        let mut gone = Vec::new();
        for crd in ferry_api::all_crds() {
            let name = crd.metadata.name.clone().unwrap_or_default();
            if delete(t, &crds, &name, "CustomResourceDefinition").await? {
                gone.push(name);
            }
        }
        removed.push(summary("CustomResourceDefinition", &gone));
    } else {
        removed.report.notes.push(
            "kept the CRDs (other multi-cluster tools may use the MCS ones); remove them with --crds"
                .into(),
        );
        if !kept.is_empty() {
            removed.report.notes.push(format!(
                "kept {} ServiceExport(s), which are yours: {}",
                kept.len(),
                kept.join(", ")
            ));
        }
    }
    Ok(())
}

/// Deletes what `lp` selects in every namespace but `skip_ns`.
async fn delete_namespaced_all<K>(
    t: &Target,
    lp: &ListParams,
    skip_ns: &str,
    what: &str,
) -> Result<Vec<String>>
where
    K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let all: Api<K> = Api::all(t.client.clone());
    let list = match all.list_metadata(lp).await {
        Ok(l) => l.items,
        Err(kube::Error::Api(s)) if s.code == 404 => Vec::new(),
        Err(e) => return Err(t.error(format!("listing {what}s"), e)),
    };
    let mut gone = Vec::new();
    for o in list {
        let (Some(ns), Some(name)) = (o.metadata.namespace, o.metadata.name) else {
            continue;
        };
        if ns == skip_ns {
            continue;
        }
        let api: Api<K> = Api::namespaced(t.client.clone(), &ns);
        if delete(t, &api, &name, what).await? {
            gone.push(format!("{ns}/{name}"));
        }
    }
    Ok(gone)
}

/// `30s`, `0.8s`.
fn secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// Waits until ferry's pods in `ferry-system` are gone, reporting which
/// are left every two seconds; a timeout is a warning, not a failure.
async fn wait_for_pods(
    t: &Target,
    timeout: Duration,
    progress: &(dyn Fn(&str) + Sync),
    report: &mut Report,
) -> Result<()> {
    let pods: Api<Pod> = Api::namespaced(t.client.clone(), SYSTEM_NAMESPACE);
    let lp = ListParams::default().labels(PART_OF_FERRY);
    let start = Instant::now();
    let mut last_report: Option<Instant> = None;
    loop {
        let left: Vec<String> = match pods.list(&lp).await {
            Ok(l) => l
                .items
                .into_iter()
                .map(|p| {
                    let name = p.metadata.name.unwrap_or_default();
                    match p.spec.and_then(|s| s.node_name) {
                        Some(node) => format!("{name} on {node}"),
                        None => name,
                    }
                })
                .collect(),
            Err(kube::Error::Api(s)) if s.code == 404 => Vec::new(),
            Err(e) => return Err(t.error("listing ferry's pods", e)),
        };
        if left.is_empty() {
            if last_report.is_some() {
                progress("ferry's pods are gone");
            }
            return Ok(());
        }
        let elapsed = start.elapsed();
        if elapsed >= timeout {
            report.warnings.push(format!(
                "{} ferry pod(s) still present after {} ({}); their nodes may keep ferry's routes, rules or interfaces",
                left.len(),
                secs(timeout),
                left.join(", ")
            ));
            return Ok(());
        }
        if last_report.is_none_or(|l| l.elapsed() >= Duration::from_secs(2)) {
            progress(&format!(
                "waiting for {} ferry pod(s) to stop so the nodes clean up routes, rules and interfaces: {} [{}s/{}]",
                left.len(),
                left.join(", "),
                elapsed.as_secs(),
                secs(timeout)
            ));
            last_report = Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn wait_gone(
    api: &Api<Namespace>,
    name: &str,
    timeout: Duration,
    progress: &(dyn Fn(&str) + Sync),
    t: &Target,
) -> Result<()> {
    let start = Instant::now();
    let mut said = false;
    while start.elapsed() < timeout {
        match api.get_opt(name).await {
            Ok(None) => return Ok(()),
            Ok(Some(_)) => {}
            Err(e) => return Err(t.error(format!("reading namespace {name}"), e)),
        }
        if !said && start.elapsed() >= Duration::from_secs(1) {
            progress(&format!("waiting for namespace {name} to terminate"));
            said = true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(())
}

/// Deletes this cluster's objects on the broker with its own token.
async fn clean_broker(info: &BrokerInfo, id: &str, report: &mut Report) -> Result<Vec<String>> {
    let b = Target::broker(info, &info.token).await?;
    let ns = info.broker_namespace.as_str();
    let mine = ListParams::default().labels(&format!("{CLUSTER}={id}"));
    let mut lines = Vec::new();
    let on_broker =
        |what: &str, names: &[String]| summary(what, names).map(|s| format!("{s} from the broker"));
    let gone = delete_all(
        &b,
        &Api::<ServiceImport>::namespaced(b.client.clone(), ns),
        &mine,
        "ServiceImport",
    )
    .await?;
    lines.extend(on_broker("ServiceImport", &gone));
    let gone = delete_all(
        &b,
        &Api::<EndpointSlice>::namespaced(b.client.clone(), ns),
        &mine,
        "EndpointSlice",
    )
    .await?;
    lines.extend(on_broker("EndpointSlice", &gone));
    let gone = delete_all(
        &b,
        &Api::<Gateway>::namespaced(b.client.clone(), ns),
        &mine,
        "Gateway",
    )
    .await?;
    lines.extend(on_broker("Gateway", &gone));
    let gone = delete_all(
        &b,
        &Api::<Endpoint>::namespaced(b.client.clone(), ns),
        &mine,
        "Endpoint",
    )
    .await?;
    lines.extend(on_broker("Endpoint", &gone));
    let gone = delete_all(
        &b,
        &Api::<Cluster>::namespaced(b.client.clone(), ns),
        &mine,
        "Cluster",
    )
    .await?;
    lines.extend(on_broker("Cluster", &gone));
    // Its Globalnet block goes back to the pool (a broker older than
    // Globalnet has no such kind: nothing to remove).
    match delete_all(
        &b,
        &Api::<GlobalCidr>::namespaced(b.client.clone(), ns),
        &mine,
        "GlobalCidr",
    )
    .await
    {
        Ok(gone) => lines.extend(on_broker("GlobalCidr", &gone)),
        Err(Error::Status { code: 404, .. }) => {}
        Err(e) => return Err(e),
    }
    // The cluster's broker identity, last: deleting it may revoke the token.
    // On Kubernetes the cluster's own token may not delete it; say so.
    let sa = format!("{CLUSTER_SA_PREFIX}{id}");
    let rb: Api<RoleBinding> = Api::namespaced(b.client.clone(), ns);
    let sas: Api<ServiceAccount> = Api::namespaced(b.client.clone(), ns);
    let mut left = Vec::new();
    match delete(&b, &rb, &sa, "RoleBinding").await {
        Ok(true) => lines.push(format!("RoleBinding {sa} from the broker")),
        Ok(false) => {}
        Err(Error::Forbidden { .. }) => left.push(format!("RoleBinding {sa}")),
        Err(e) => return Err(e),
    }
    match delete(&b, &sas, &sa, "ServiceAccount").await {
        Ok(true) => lines.push(format!("ServiceAccount {sa} from the broker")),
        Ok(false) => {}
        Err(Error::Forbidden { .. }) => left.push(format!("ServiceAccount {sa}")),
        Err(e) => return Err(e),
    }
    if !left.is_empty() {
        report.notes.push(format!(
            "left {} in broker namespace {ns}: this cluster's token may not delete them; a broker admin can",
            left.join(" and ")
        ));
    }
    Ok(lines)
}
