//! Temporary test pods, the CLI's side of [`crate::probe`]: one [`ProbeRun`]
//! per command, whose pods (and Services, ServiceExports) carry the label
//! [`RUN_LABEL`]`=<run id>` in `ferry-system` and are removed by
//! [`Cleanup::run`] — at the end, on failure, and (by the binary) on Ctrl-C.
//! Pods also end by themselves: clients exit after reporting, servers
//! after `--max-duration`, and `activeDeadlineSeconds` bounds them all, so
//! a killed CLI leaves nothing running for long.
//!
//! Pods are pinned with `spec.nodeName` (no scheduler decision, any taint
//! tolerated), run ferry's image (`ferry tools probe …`), and report
//! through their own annotation with the `ferry-probe` ServiceAccount
//! (allowed to get and patch pods in `ferry-system`, nothing else), which
//! [`ensure_rbac`] creates on first use and `ferry uninstall` removes with
//! the namespace.

use std::collections::BTreeMap;
use std::ops::ControlFlow::{Break, Continue};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_api::ServiceExport;
use ferry_api::labels::{self, SYSTEM_NAMESPACE};
use k8s_openapi::api::core::v1::{Pod, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role as RbacRole, RoleBinding};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

use crate::poll::poll_until;
use crate::probe::{RESULT_ANNOTATION, Report, SERVE_PORT, Task};
use crate::target::Target;
use crate::{Error, Result};

/// Label every object of one run carries (value: the run id).
pub const RUN_LABEL: &str = "ferry.dev/probe-run";
/// Label naming the pod's role (`client`, `server`, `sniffer`, `sender`).
pub const ROLE_LABEL: &str = "ferry.dev/probe-role";
/// `app.kubernetes.io/name` of every test pod.
pub const APP_NAME: &str = "ferry-probe";
/// The ServiceAccount (and Role, RoleBinding) of test pods.
pub const SERVICE_ACCOUNT: &str = "ferry-probe";
/// How long any test pod may live.
pub const MAX_POD_SECONDS: u64 = 600;

/// How often pod states are polled.
const POLL: Duration = Duration::from_millis(100);

/// Objects to remove when the command ends, whatever way it ends. Cheap to
/// clone; every clone shares the list.
#[derive(Clone, Default)]
pub struct Cleanup {
    inner: Arc<Mutex<Vec<Entry>>>,
}

/// One cluster (by API URL) and run whose objects are to be removed.
#[derive(Clone)]
struct Entry {
    url: String,
    client: Client,
    run: String,
}

impl std::fmt::Debug for Cleanup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cleanup").finish_non_exhaustive()
    }
}

impl Cleanup {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Remembers that run `run` creates objects in `target`.
    fn register(&self, target: &Target, run: &str) {
        let mut list = self.lock();
        if !list.iter().any(|e| e.run == run && e.url == target.url) {
            list.push(Entry {
                url: target.url.clone(),
                client: target.client.clone(),
                run: run.to_string(),
            });
        }
    }

    /// Deletes every registered run's pods, ServiceExports and Services
    /// (best effort: errors are logged, never returned), bounded to a few
    /// seconds per cluster.
    pub async fn run(&self) {
        let entries: Vec<Entry> = std::mem::take(&mut *self.lock());
        futures::future::join_all(entries.into_iter().map(|e| async move {
            let _ =
                tokio::time::timeout(Duration::from_secs(10), delete_run(&e.client, &e.run)).await;
        }))
        .await;
    }
}

async fn delete_run(c: &Client, run: &str) {
    let lp = ListParams::default().labels(&format!("{RUN_LABEL}={run}"));
    let dp = DeleteParams {
        grace_period_seconds: Some(0),
        ..Default::default()
    };
    let ns = SYSTEM_NAMESPACE;
    if let Err(e) = Api::<ServiceExport>::namespaced(c.clone(), ns)
        .delete_collection(&dp, &lp)
        .await
    {
        tracing::debug!("deleting test ServiceExports: {e}");
    }
    if let Err(e) = Api::<Service>::namespaced(c.clone(), ns)
        .delete_collection(&dp, &lp)
        .await
    {
        tracing::debug!("deleting test Services: {e}");
    }
    if let Err(e) = Api::<Pod>::namespaced(c.clone(), ns)
        .delete_collection(&dp, &lp)
        .await
    {
        tracing::warn!("deleting test pods (label {RUN_LABEL}={run}): {e}");
    }
}

/// A fresh run id: 8 lowercase hex digits from the clock and the process.
pub fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mixed = (nanos as u64) ^ (u64::from(std::process::id()) << 40);
    format!("{:08x}", (mixed ^ (mixed >> 29)) as u32)
}

/// What a test pod does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Runs tasks, reports, exits.
    Client,
    /// `probe serve`: echo and sink.
    Server,
    /// Host network, runs sniff tasks.
    Sniffer,
    /// Host network, runs send tasks.
    Sender,
    /// Host network, runs tasks like a client: what a node's own processes
    /// (kubelet probes, a shell's ping) see.
    HostClient,
}

impl Role {
    /// The label value and name part.
    pub fn name(&self) -> &'static str {
        match self {
            Role::Client => "client",
            Role::Server => "server",
            Role::Sniffer => "sniffer",
            Role::Sender => "sender",
            Role::HostClient => "host-client",
        }
    }
}

/// One test pod to create.
#[derive(Clone, Debug)]
pub struct PodPlan {
    /// Pod name.
    pub name: String,
    /// Node to run on.
    pub node: String,
    /// What it does.
    pub role: Role,
    /// Tasks (clients, sniffers, senders).
    pub tasks: Vec<Task>,
}

/// One command's test pods in one cluster.
#[derive(Clone, Debug)]
pub struct ProbeRun {
    /// The run id (label value, name part).
    pub id: String,
    /// Image of the pods.
    pub image: String,
    /// How long a pod may take to start and report.
    pub timeout: Duration,
    /// Where registered objects are removed.
    pub cleanup: Cleanup,
}

/// A pod that was created: where, and its name.
#[derive(Clone, Debug)]
pub struct Created {
    /// Its cluster.
    pub target: Target,
    /// Its name.
    pub name: String,
    /// Its node.
    pub node: String,
}

impl ProbeRun {
    /// Pod name for `role` in this run with a distinguishing `suffix`.
    pub fn pod_name(&self, role: Role, suffix: &str) -> String {
        let mut n = format!("ferry-probe-{}-{}-{suffix}", self.id, role.name());
        n.truncate(63);
        n.trim_end_matches('-').to_string()
    }

    /// The labels of this run's objects.
    pub fn labels(&self, role: Option<Role>) -> BTreeMap<String, String> {
        let mut l = BTreeMap::from([
            (labels::APP_NAME.to_string(), APP_NAME.to_string()),
            (RUN_LABEL.to_string(), self.id.clone()),
        ]);
        if let Some(r) = role {
            l.insert(ROLE_LABEL.into(), r.name().into());
        }
        l
    }

    /// The pod object for `plan`.
    pub fn pod(&self, plan: &PodPlan) -> Result<Pod> {
        let host_network = matches!(plan.role, Role::Sniffer | Role::Sender | Role::HostClient);
        let tasks = serde_json::to_string(&plan.tasks).map_err(|e| Error::Render(e.to_string()))?;
        let args: Vec<String> = match plan.role {
            Role::Server => vec![
                "tools".into(),
                "probe".into(),
                "serve".into(),
                "--port".into(),
                SERVE_PORT.to_string(),
                "--max-duration".into(),
                format!("{MAX_POD_SECONDS}s"),
            ],
            _ => vec![
                "tools".into(),
                "probe".into(),
                "run".into(),
                "--tasks".into(),
                tasks,
            ],
        };
        let field = |path: &str| json!({"fieldRef": {"fieldPath": path}});
        let mut container = json!({
            "name": "probe",
            "image": self.image,
            "args": args,
            "env": [
                {"name": "POD_NAME", "valueFrom": field("metadata.name")},
                {"name": "POD_NAMESPACE", "valueFrom": field("metadata.namespace")},
                {"name": "POD_IP", "valueFrom": field("status.podIP")},
                {"name": "RUST_LOG", "value": "warn"},
            ],
        });
        if host_network {
            container["securityContext"] = host_network_security_context();
        }
        if plan.role == Role::Server {
            container["ports"] = json!([
                {"name": "probe-tcp", "containerPort": SERVE_PORT, "protocol": "TCP"},
                {"name": "probe-udp", "containerPort": SERVE_PORT, "protocol": "UDP"},
            ]);
            container["readinessProbe"] =
                json!({"tcpSocket": {"port": SERVE_PORT}, "periodSeconds": 1});
        }
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": plan.name,
                "namespace": SYSTEM_NAMESPACE,
                "labels": self.labels(Some(plan.role)),
            },
            "spec": {
                "nodeName": plan.node,
                "hostNetwork": host_network,
                "dnsPolicy": if host_network { "ClusterFirstWithHostNet" } else { "ClusterFirst" },
                "restartPolicy": "Never",
                "serviceAccountName": SERVICE_ACCOUNT,
                "terminationGracePeriodSeconds": 0,
                "activeDeadlineSeconds": MAX_POD_SECONDS,
                "tolerations": [{"operator": "Exists"}],
                "containers": [container],
            },
        });
        serde_json::from_value(pod).map_err(|e| Error::Render(e.to_string()))
    }

    /// Creates the pods of `plans` in `target` (registering them for
    /// cleanup first).
    pub async fn create(&self, target: &Target, plans: &[PodPlan]) -> Result<Vec<Created>> {
        self.cleanup.register(target, &self.id);
        let api: Api<Pod> = Api::namespaced(target.client.clone(), SYSTEM_NAMESPACE);
        let mut out = Vec::new();
        for plan in plans {
            let pod = self.pod(plan)?;
            api.create(&PostParams::default(), &pod)
                .await
                .map_err(|e| target.error(format!("creating test pod {}", plan.name), e))?;
            out.push(Created {
                target: target.clone(),
                name: plan.name.clone(),
                node: plan.node.clone(),
            });
        }
        Ok(out)
    }

    /// Creates one pod.
    pub async fn create_one(&self, target: &Target, plan: &PodPlan) -> Result<Created> {
        let mut created = self.create(target, std::slice::from_ref(plan)).await?;
        // `create` returns one entry per plan (or an error).
        created
            .pop()
            .ok_or_else(|| Error::Render("no pod was created".into()))
    }

    /// Starts this run's server pod on `node` and waits until it is ready;
    /// returns its IP.
    pub async fn start_server(&self, target: &Target, node: &str) -> Result<String> {
        let plan = PodPlan {
            name: self.pod_name(Role::Server, "0"),
            node: node.to_string(),
            role: Role::Server,
            tasks: Vec::new(),
        };
        let c = self.create_one(target, &plan).await?;
        self.wait_ready(&c).await
    }

    /// Creates the pod of `plan` and waits until its process runs.
    pub async fn start_running(&self, target: &Target, plan: &PodPlan) -> Result<Created> {
        let c = self.create_one(target, plan).await?;
        self.wait_running(&c).await?;
        Ok(c)
    }

    /// Creates the pod of `plan` and waits for its report.
    pub async fn run_to_report(&self, target: &Target, plan: &PodPlan) -> Result<Report> {
        let c = self.create_one(target, plan).await?;
        self.wait_report(&c).await
    }

    /// Registers `target` for cleanup without creating a pod (for Services
    /// and ServiceExports made elsewhere).
    pub fn register(&self, target: &Target) {
        self.cleanup.register(target, &self.id);
    }

    /// Waits until the server pod `p` is ready; returns its IP.
    pub async fn wait_ready(&self, p: &Created) -> Result<String> {
        self.watch_pod(p, "not ready", |pod| {
            if let Some(reason) = broken(pod) {
                return Some(Err(self.pod_error(p, reason)));
            }
            let status = pod.status.clone().unwrap_or_default();
            let ready = status
                .conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            let ip = status.pod_ip.filter(|ip| !ip.is_empty());
            ip.filter(|_| ready).map(Ok)
        })
        .await
    }

    /// Waits until pod `p` is running (its process started).
    pub async fn wait_running(&self, p: &Created) -> Result<()> {
        self.watch_pod(p, "not running", |pod| {
            if let Some(reason) = broken(pod) {
                return Some(Err(self.pod_error(p, reason)));
            }
            let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
            let started = matches!(phase, Some("Running" | "Succeeded"))
                || pod
                    .metadata
                    .annotations
                    .as_ref()
                    .is_some_and(|a| a.contains_key(RESULT_ANNOTATION));
            started.then_some(Ok(()))
        })
        .await
    }

    /// Reads pod `p` every [`POLL`] until `decide` returns an outcome; past
    /// the run's timeout, fails with "`not_yet` after … (the pod's state)".
    async fn watch_pod<T>(
        &self,
        p: &Created,
        not_yet: &str,
        decide: impl Fn(&Pod) -> Option<Result<T>>,
    ) -> Result<T> {
        let api: Api<Pod> = Api::namespaced(p.target.client.clone(), SYSTEM_NAMESPACE);
        let (api, decide) = (&api, &decide);
        let looked = poll_until(Instant::now() + self.timeout, POLL, move || async move {
            match api.get(&p.name).await {
                Err(e) => Break(Err(p
                    .target
                    .error(format!("reading test pod {}", p.name), e))),
                Ok(pod) => match decide(&pod) {
                    Some(outcome) => Break(outcome),
                    None => Continue(pod),
                },
            }
        })
        .await;
        looked.unwrap_or_else(|pod| {
            Err(self.pod_error(
                p,
                format!("{not_yet} after {:?} ({})", self.timeout, describe(&pod)),
            ))
        })
    }

    /// Waits for pod `p`'s report.
    pub async fn wait_report(&self, p: &Created) -> Result<Report> {
        let api: Api<Pod> = Api::namespaced(p.target.client.clone(), SYSTEM_NAMESPACE);
        let api = &api;
        let looked = poll_until(Instant::now() + self.timeout, POLL, move || async move {
            let pod = match api.get(&p.name).await {
                Ok(pod) => pod,
                Err(e) => {
                    return Break(Err(p
                        .target
                        .error(format!("reading test pod {}", p.name), e)));
                }
            };
            match self.report_of(p, api, &pod).await {
                Some(outcome) => Break(outcome),
                None => Continue(pod),
            }
        })
        .await;
        looked.unwrap_or_else(|pod| {
            Err(self.pod_error(
                p,
                format!("no report after {:?} ({})", self.timeout, describe(&pod)),
            ))
        })
    }

    /// `pod`'s report, or why it will never write one; `None` while it may
    /// still.
    async fn report_of(&self, p: &Created, api: &Api<Pod>, pod: &Pod) -> Option<Result<Report>> {
        if let Some(text) = pod
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(RESULT_ANNOTATION))
        {
            return Some(
                serde_json::from_str(text).map_err(|e| {
                    self.pod_error(p, format!("its report is not valid ({e}): {text}"))
                }),
            );
        }
        if let Some(reason) = broken(pod) {
            return Some(Err(self.pod_error(p, reason)));
        }
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if !matches!(phase, Some("Succeeded" | "Failed")) {
            return None;
        }
        // The process ended; its annotation may trail the status.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let again = api.get(&p.name).await.ok();
        if let Some(text) = again
            .as_ref()
            .and_then(|p| p.metadata.annotations.as_ref())
            .and_then(|a| a.get(RESULT_ANNOTATION))
        {
            return Some(
                serde_json::from_str(text)
                    .map_err(|e| self.pod_error(p, format!("its report is not valid ({e})"))),
            );
        }
        Some(Err(self.pod_error(
            p,
            format!(
                "it ended ({}) without writing its report: it could not reach the API, see `kubectl -n {SYSTEM_NAMESPACE} logs {}`",
                describe(pod),
                p.name
            ),
        )))
    }

    fn pod_error(&self, p: &Created, reason: String) -> Error {
        Error::ProbePod {
            cluster: p.target.label.clone(),
            pod: format!("{SYSTEM_NAMESPACE}/{} on {}", p.name, p.node),
            reason,
            image: self.image.clone(),
        }
    }

    /// A ClusterIP Service in front of this run's server pods in one
    /// cluster, and its ServiceExport; returns the Service's ClusterIP.
    pub async fn export_server(&self, target: &Target, name: &str) -> Result<String> {
        self.register(target);
        let svc: Service = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": SYSTEM_NAMESPACE, "labels": self.labels(None)},
            "spec": {
                "selector": {RUN_LABEL: self.id, ROLE_LABEL: Role::Server.name()},
                "ports": [{"name": "probe", "port": SERVE_PORT, "targetPort": SERVE_PORT, "protocol": "TCP"}],
            },
        }))
        .map_err(|e| Error::Render(e.to_string()))?;
        let services: Api<Service> = Api::namespaced(target.client.clone(), SYSTEM_NAMESPACE);
        let created = services
            .create(&PostParams::default(), &svc)
            .await
            .map_err(|e| target.error(format!("creating test Service {name}"), e))?;
        let export: ServiceExport = serde_json::from_value(json!({
            "apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceExport",
            "metadata": {"name": name, "namespace": SYSTEM_NAMESPACE, "labels": self.labels(None)},
        }))
        .map_err(|e| Error::Render(e.to_string()))?;
        Api::<ServiceExport>::namespaced(target.client.clone(), SYSTEM_NAMESPACE)
            .create(&PostParams::default(), &export)
            .await
            .map_err(|e| target.error(format!("creating test ServiceExport {name}"), e))?;
        let ip = created.spec.and_then(|s| s.cluster_ip).unwrap_or_default();
        if !ip.is_empty() && ip != "None" {
            return Ok(ip);
        }
        // The ClusterIP may be allocated after the create returns.
        let services = &services;
        let looked = poll_until(Instant::now() + self.timeout, POLL, move || async move {
            match services.get(name).await {
                Err(e) => Break(Err(target.error(format!("reading test Service {name}"), e))),
                Ok(s) => match s
                    .spec
                    .and_then(|s| s.cluster_ip)
                    .filter(|ip| !ip.is_empty() && ip != "None")
                {
                    Some(ip) => Break(Ok(ip)),
                    None => Continue(()),
                },
            }
        })
        .await;
        looked.unwrap_or_else(|()| {
            Err(Error::ProbePod {
                cluster: target.label.clone(),
                pod: format!("Service {SYSTEM_NAMESPACE}/{name}"),
                reason: "no ClusterIP was allocated".into(),
                image: self.image.clone(),
            })
        })
    }
}

/// Why a pod cannot become useful, if it cannot: image problems, a
/// container that crashed, no command.
fn broken(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    for cs in status.container_statuses.iter().flatten() {
        if let Some(w) = cs.state.as_ref().and_then(|s| s.waiting.as_ref()) {
            let reason = w.reason.as_deref().unwrap_or("");
            if matches!(
                reason,
                "ErrImagePull"
                    | "ImagePullBackOff"
                    | "InvalidImageName"
                    | "CreateContainerConfigError"
                    | "CreateContainerError"
                    | "CrashLoopBackOff"
                    | "NoCommand"
            ) {
                return Some(format!(
                    "its container is waiting: {reason}{}",
                    w.message
                        .as_deref()
                        .map(|m| format!(" ({m})"))
                        .unwrap_or_default()
                ));
            }
        }
    }
    None
}

/// A one-line account of a pod's state, for timeouts.
fn describe(pod: &Pod) -> String {
    let Some(s) = pod.status.as_ref() else {
        return "no status yet: is the node running?".into();
    };
    let mut parts = vec![format!("phase {}", s.phase.as_deref().unwrap_or("unknown"))];
    for cs in s.container_statuses.iter().flatten() {
        if let Some(w) = cs.state.as_ref().and_then(|st| st.waiting.as_ref()) {
            parts.push(format!("waiting: {}", w.reason.as_deref().unwrap_or("?")));
        }
        if let Some(t) = cs.state.as_ref().and_then(|st| st.terminated.as_ref()) {
            parts.push(format!("exited with code {}", t.exit_code));
        }
    }
    parts.join(", ")
}

/// Creates (or updates) the `ferry-probe` ServiceAccount, Role and
/// RoleBinding in `ferry-system` of `target`.
pub async fn ensure_rbac(target: &Target) -> Result<()> {
    let ns = SYSTEM_NAMESPACE;
    let pp = PatchParams::apply("ferry-probe").force();
    let labels =
        json!({labels::APP_PART_OF: labels::APP_PART_OF_FERRY, labels::APP_NAME: APP_NAME});
    let sa: ServiceAccount = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": SERVICE_ACCOUNT, "namespace": ns, "labels": labels},
    }))
    .map_err(|e| Error::Render(e.to_string()))?;
    Api::<ServiceAccount>::namespaced(target.client.clone(), ns)
        .patch(SERVICE_ACCOUNT, &pp, &Patch::Apply(&sa))
        .await
        .map_err(|e| target.error(format!("applying ServiceAccount {ns}/{SERVICE_ACCOUNT}"), e))?;
    let role: RbacRole = serde_json::from_value(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": SERVICE_ACCOUNT, "namespace": ns, "labels": labels},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "patch"]}],
    }))
    .map_err(|e| Error::Render(e.to_string()))?;
    Api::<RbacRole>::namespaced(target.client.clone(), ns)
        .patch(SERVICE_ACCOUNT, &pp, &Patch::Apply(&role))
        .await
        .map_err(|e| target.error(format!("applying Role {ns}/{SERVICE_ACCOUNT}"), e))?;
    let binding: RoleBinding = serde_json::from_value(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": SERVICE_ACCOUNT, "namespace": ns, "labels": labels},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": SERVICE_ACCOUNT},
        "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": ns}],
    }))
    .map_err(|e| Error::Render(e.to_string()))?;
    Api::<RoleBinding>::namespaced(target.client.clone(), ns)
        .patch(SERVICE_ACCOUNT, &pp, &Patch::Apply(&binding))
        .await
        .map_err(|e| target.error(format!("applying RoleBinding {ns}/{SERVICE_ACCOUNT}"), e))?;
    Ok(())
}

/// The host-network probe pods' securityContext: NET_RAW (the sniffer's
/// packet socket) as root. ferry's image runs as a non-root user, and a
/// non-root process loses added capabilities at exec (Kubernetes grants no
/// ambient ones), so without `runAsUser: 0` the sniffer fails on a node as
/// it did under runc in the sandbox ("packet socket: Operation not
/// permitted").
fn host_network_security_context() -> serde_json::Value {
    json!({"runAsUser": 0, "capabilities": {"add": ["NET_RAW"]}})
}

#[cfg(test)]
mod tests;
