//! ferry's Kubernetes manifests, generated from code: what `ferry join`
//! applies to a member cluster (CRDs, namespace `ferry-system`, the broker
//! Secret, ServiceAccounts and RBAC, the `ferry agent` and `ferry dns`
//! Deployments, the `ferry gateway` and `ferry route-agent` DaemonSets, the
//! cluster-id `ClusterProperty`) and what `ferry deploy-broker` applies to a
//! real Kubernetes broker (namespace, CRDs, RBAC for joiners and clusters, and
//! a ValidatingAdmissionPolicy that lets each cluster write only objects
//! labelled with its own id).
//!
//! It also reads back the broker Secret it writes ([`BrokerSecret`]).
//!
//! It is pure: objects are built as JSON values and rendered to YAML; it does
//! not talk to any API server (`ferry-ctl`'s `install` applies them). The files under
//! `deploy/` are these manifests with placeholder credentials; see
//! `deploy/README.md` to regenerate them.
#![forbid(unsafe_code)]

mod broker_secret;
pub mod coredns;

pub use broker_secret::BrokerSecret;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ferry_api::labels::{
    self, APP_MANAGED_BY, APP_MANAGED_BY_FERRY, APP_NAME, APP_PART_OF, APP_PART_OF_FERRY, CLUSTER,
};
use ferry_api::{CableDriver, Cidr, ClusterProperty, Component, Components, NetworkPlugin, ports};
use serde_json::{Value, json};

/// Default container image repository (the tag is the ferry version).
pub const DEFAULT_IMAGE_REPOSITORY: &str = "ferry";

/// Name of the Secret in `ferry-system` holding the broker credentials and
/// this cluster's settings; `ferry agent` reads it.
pub const BROKER_SECRET: &str = "ferry-broker";

/// Keys of [`BROKER_SECRET`].
pub mod secret_keys {
    /// `broker-info.ferry` contents whose token is this cluster's own
    /// (`cluster:<id>`-scoped) broker token.
    pub const BROKER_INFO: &str = "broker-info";
    /// This cluster's id.
    pub const CLUSTER_ID: &str = "cluster-id";
    /// Comma-separated pod CIDRs.
    pub const CLUSTER_CIDRS: &str = "cluster-cidrs";
    /// Comma-separated service CIDRs.
    pub const SERVICE_CIDRS: &str = "service-cidrs";
    /// `wireguard` or `vxlan`.
    pub const CABLE_DRIVER: &str = "cable-driver";
    /// Comma-separated global CIDRs (Globalnet); empty or absent: Globalnet off.
    pub const GLOBAL_CIDRS: &str = "global-cidrs";
    /// The CNI `join` detected (`kube-ovn`, `calico`, …); absent: generic.
    pub const NETWORK_PLUGIN: &str = "network-plugin";
}

/// The Pod Security admission label a namespace's enforced level is in;
/// ferry's system namespace carries `privileged`.
pub const POD_SECURITY_ENFORCE: &str = "pod-security.kubernetes.io/enforce";

/// Name of the Secret in `ferry-system` keeping the joiner credential of
/// `broker-info.ferry`, for `ferry recover-broker-info` (no component reads it).
pub const JOINER_SECRET: &str = "ferry-joiner";

/// Keys of [`JOINER_SECRET`].
pub mod joiner_secret_keys {
    /// The joiner's bearer token on the broker.
    pub const TOKEN: &str = "token";
}

/// Node directory of the gateway's private key (`ferry gateway --state-dir`).
pub const GATEWAY_STATE_DIR: &str = "/var/lib/ferry";

/// Prefix of the broker ServiceAccount of each cluster: `cluster-<id>`.
pub const CLUSTER_SA_PREFIX: &str = "cluster-";

/// Name of the broker Role every cluster's ServiceAccount is bound to.
pub const BROKER_CLUSTER_ROLE: &str = "ferry-cluster";

/// Name of the broker ServiceAccount whose token `join` uses.
pub const BROKER_JOINER: &str = "ferry-joiner";

/// The crate's error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An object could not be rendered (a bug, not bad input).
    #[error("cannot render manifests: {0}")]
    Render(String),
    /// The broker Secret lacks a key `join` writes.
    #[error("configuration: the broker Secret has no key {0:?}")]
    MissingSecretKey(String),
    /// A value in the broker Secret is invalid (broker info, CIDRs).
    #[error(transparent)]
    Api(#[from] ferry_api::Error),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The default image: `ferry:<version>`.
pub fn default_image() -> String {
    format!("{DEFAULT_IMAGE_REPOSITORY}:{}", env!("CARGO_PKG_VERSION"))
}

/// What a member cluster's manifests depend on.
#[derive(Clone, Debug)]
pub struct ClusterParams {
    /// The cluster id.
    pub cluster_id: String,
    /// Container image of every ferry component.
    pub image: String,
    /// Namespace of ferry's components (`ferry-system`).
    pub namespace: String,
    /// `broker-info.ferry` contents carrying this cluster's own broker token.
    pub broker_info: String,
    /// Pod CIDRs.
    pub cluster_cidrs: Vec<Cidr>,
    /// Service CIDRs.
    pub service_cidrs: Vec<Cidr>,
    /// Global CIDRs (Globalnet); empty: Globalnet off for this cluster.
    pub global_cidrs: Vec<Cidr>,
    /// The CNI `join` detected, published in the cluster's `Cluster`.
    pub network_plugin: Option<NetworkPlugin>,
    /// Cable driver of this cluster's gateway.
    pub cable_driver: CableDriver,
    /// The gateway's settings from `join`'s flags.
    pub gateway: GatewaySettings,
    /// Which parts to deploy (the broker's `--components`).
    pub components: Components,
}

/// What `ferry join`'s gateway flags (subctl join's `--natt`, `--nattport`,
/// `--force-udp-encaps`, `--preferred-server`, `--air-gapped`,
/// `--health-check…`, and ferry's `--ipsec-…-lifetime`) set; they reach the gateway as arguments of the
/// `ferry-gateway` DaemonSet's container ([`GatewaySettings::args`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewaySettings {
    /// NAT traversal (`--natt`): published on the Endpoint as `natEnabled`.
    pub nat_traversal: bool,
    /// UDP port of the cable (`--nattport`); `None`: the driver's default.
    pub nat_port: Option<u16>,
    /// Encapsulate in UDP even where plain ESP would pass (IPsec).
    pub force_udp_encaps: bool,
    /// With NAT on both sides, be the side that waits to be contacted.
    pub preferred_server: bool,
    /// Never ask an outside service for the public IP.
    pub air_gapped: bool,
    /// Health-check the cables (`--health-check`).
    pub health_check: bool,
    /// Interval between health checks; `None`: the clusterset's setting.
    pub health_check_interval: Option<std::time::Duration>,
    /// A connection turns `error` after more than this many probes in a row
    /// went unanswered; `None`: the gateway's default timing.
    pub health_check_max_packet_loss: Option<u32>,
    /// Lifetime of the ipsec cable's IKE SAs; `None`: the gateway's default.
    pub ipsec_ike_lifetime: Option<std::time::Duration>,
    /// Lifetime of the ipsec cable's child SAs; `None`: the gateway's default.
    pub ipsec_child_lifetime: Option<std::time::Duration>,
    /// Every gateway node active at once (`--gateway-mode active-active`).
    pub active_active: bool,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            nat_traversal: true,
            nat_port: None,
            force_udp_encaps: false,
            preferred_server: false,
            air_gapped: false,
            health_check: true,
            health_check_interval: None,
            health_check_max_packet_loss: None,
            ipsec_ike_lifetime: None,
            ipsec_child_lifetime: None,
            active_active: false,
        }
    }
}

impl GatewaySettings {
    /// The `ferry-gateway` (`ferry gateway`) flags for these settings;
    /// defaults are left out.
    pub fn args(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.nat_traversal {
            out.push("--natt=false".to_string());
        }
        if let Some(port) = self.nat_port {
            out.push(format!("--port={port}"));
        }
        for (on, flag) in [
            (self.force_udp_encaps, "--force-udp-encaps"),
            (self.preferred_server, "--preferred-server"),
            (self.air_gapped, "--air-gapped"),
        ] {
            if on {
                out.push(flag.to_string());
            }
        }
        if !self.health_check {
            out.push("--health-check=false".to_string());
        }
        if self.active_active {
            out.push("--gateway-mode=active-active".to_string());
        }
        if let Some(d) = self.health_check_interval {
            out.push(format!("--health-check-interval={}ms", d.as_millis()));
        }
        if let Some(n) = self.health_check_max_packet_loss {
            out.push(format!("--health-check-max-packet-loss-count={n}"));
        }
        for (lifetime, flag) in [
            (self.ipsec_ike_lifetime, "--ipsec-ike-lifetime"),
            (self.ipsec_child_lifetime, "--ipsec-child-lifetime"),
        ] {
            if let Some(d) = lifetime {
                out.push(format!("{flag}={}ms", d.as_millis()));
            }
        }
        out
    }
}

/// The component each of ferry's workloads (and its ServiceAccount and
/// RBAC, which share its name) belongs to; the agent serves both.
fn component_of(name: &str) -> Option<Component> {
    match name {
        "ferry-dns" => Some(Component::ServiceDiscovery),
        "ferry-gateway" | "ferry-route-agent" => Some(Component::Connectivity),
        _ => None,
    }
}

fn common_labels(name: &str) -> Value {
    json!({
        APP_MANAGED_BY: APP_MANAGED_BY_FERRY,
        APP_NAME: name,
        APP_PART_OF: APP_PART_OF_FERRY,
    })
}

fn meta(name: &str, namespace: Option<&str>) -> Value {
    let mut m = json!({"name": name, "labels": common_labels(name)});
    if let Some(ns) = namespace {
        m["namespace"] = json!(ns);
    }
    m
}

fn join_cidrs(cidrs: &[Cidr]) -> String {
    cidrs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn crds() -> Result<Vec<Value>> {
    ferry_api::all_crds()
        .iter()
        .map(|crd| {
            let mut v = serde_json::to_value(crd).map_err(|e| Error::Render(e.to_string()))?;
            v["apiVersion"] = json!("apiextensions.k8s.io/v1");
            v["kind"] = json!("CustomResourceDefinition");
            Ok(v)
        })
        .collect()
}

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> Value {
    json!({"apiGroups": groups, "resources": resources, "verbs": verbs})
}

const READ: &[&str] = &["get", "list", "watch"];
/// Globalnet's objects in a member cluster (and their status).
const GLOBALNET_RESOURCES: &[&str] = &[
    "clusterglobalegressips",
    "clusterglobalegressips/status",
    "globalegressips",
    "globalegressips/status",
    "globalingressips",
    "globalingressips/status",
];
const ALL: &[&str] = &[
    "get", "list", "watch", "create", "update", "patch", "delete",
];

/// A component: its ServiceAccount, ClusterRole and ClusterRoleBinding.
fn identity(name: &str, namespace: &str, rules: Vec<Value>) -> Vec<Value> {
    vec![
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(name, Some(namespace))}),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": meta(name, None), "rules": rules,
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": meta(name, None),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
        }),
    ]
}

/// Requests and limits of one component's container, from the
/// benchmarks (deploy/README.md names the command and figure behind each):
/// the memory request is the idle RSS of `bench/rss/run.sh` rounded up, the
/// memory limit at least 2.5× the largest RSS measured under load
/// (`bench/propagation` at 10k services for the agent; the daemons whose
/// state does not grow with services get 3× their idle RSS or more), so a
/// leak is stopped before it hurts the node but no load the benchmarks
/// reach is killed. The CPU request is at least 1.5× the idle CPU
/// `bench/rss/run.sh` prints (10m at the least); no CPU limit: a throttled
/// gateway misses health checks and fails over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ComponentResources {
    /// Memory request, MiB.
    pub memory_request_mib: u32,
    /// Memory limit, MiB.
    pub memory_limit_mib: u32,
    /// CPU request, millicores.
    pub cpu_request_milli: u32,
}

/// The [`ComponentResources`] of the container named `name`.
pub fn component_resources(name: &str) -> ComponentResources {
    let (memory_request_mib, memory_limit_mib) = match name {
        // Idle 38 MB; 10k services: 99.0 MB, peak 102.2 MB.
        "agent" => (48, 256),
        // Idle 38–42 MB; holds the imports an importing agent holds
        // (agent B at 10k: 70.4 MB, peak 76.0 MB).
        "dns" => (48, 256),
        // Idle 66–68 MB (41 MB of it mimalloc's arena); state per remote
        // cluster, not per service.
        "gateway" => (80, 256),
        // Idle 39–41 MB; nodes and CIDRs only.
        _ => (48, 128),
    };
    // Idle CPU: the gateway's health checks (10 probes a second) 10.3
    // millicores, the others under 1.
    let cpu_request_milli = if name == "gateway" { 20 } else { 10 };
    ComponentResources {
        memory_request_mib,
        memory_limit_mib,
        cpu_request_milli,
    }
}

impl ComponentResources {
    /// The container's `resources`.
    pub fn to_value(self) -> Value {
        json!({
            "requests": {
                "cpu": format!("{}m", self.cpu_request_milli),
                "memory": format!("{}Mi", self.memory_request_mib),
            },
            "limits": {"memory": format!("{}Mi", self.memory_limit_mib)},
        })
    }
}

/// The user every unprivileged component runs as (the image's `ferry`).
pub const NONROOT_UID: i64 = 65532;

/// The security context of a component's container. Every container has a
/// read-only root file system (writable paths are volumes: `/tmp` an
/// emptyDir). Gateway and route agent (`host_admin`) program the node's
/// network: root, host network, privileged (they write /proc/sys, which
/// a container sees read-only otherwise, and the gateway opens
/// /dev/net/tun), with NET_ADMIN and NET_RAW named as the capabilities they
/// use. Everything else runs as [`NONROOT_UID`] with no capability and no
/// privilege escalation.
fn security_context(host_admin: bool) -> Value {
    if host_admin {
        // Root: a non-root process loses every capability at exec, even
        // in a privileged container.
        json!({
            "privileged": true,
            "runAsUser": 0,
            "runAsGroup": 0,
            "readOnlyRootFilesystem": true,
            "capabilities": {"drop": ["ALL"], "add": ["NET_ADMIN", "NET_RAW"]},
        })
    } else {
        json!({
            "runAsNonRoot": true,
            "runAsUser": NONROOT_UID,
            "runAsGroup": NONROOT_UID,
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        })
    }
}

/// The emptyDir every component mounts at `/tmp` (its root is read-only).
const TMP_VOLUME: &str = "tmp";

/// The container of daemon `name` (agent, dns, gateway, route-agent): the
/// image's `ferry-<name>` binary, which links that daemon alone (the same
/// flags as `ferry <name>`; an idle one maps ~10 MB less of its binary,
/// bench/rss/README.md), with `args`.
fn container(name: &str, image: &str, args: &[&str], privileged: bool) -> Value {
    let mut container = json!({
        "name": name,
        "image": image,
        "command": [format!("ferry-{name}")],
        "env": [
            {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "RUST_LOG", "value": "info"},
            // mimalloc reads it before main: without it the few heap pages
            // touched at start-up are 2 MiB huge pages (~5 MB of idle RSS
            // each; bench/rss/README.md). The daemons turn huge pages off
            // themselves too, but only for what comes after.
            {"name": "MIMALLOC_ALLOW_THP", "value": "0"},
        ],
        "resources": component_resources(name).to_value(),
        "securityContext": security_context(privileged),
        "volumeMounts": [{"name": TMP_VOLUME, "mountPath": "/tmp"}],
    });
    if !args.is_empty() {
        container["args"] = json!(args);
    }
    container
}

/// UID `ferry dns` runs as: not root (the conventional "nonroot" user).
pub const DNS_UID: i64 = NONROOT_UID;

/// `ferry dns` serves port 53 in its pod, as Lighthouse's DNS does, so
/// `dig @<pod IP>` works as well as the Service; it runs as [`DNS_UID`]
/// with only `NET_BIND_SERVICE`. That capability reaches a non-root
/// process only where the runtime grants ambient capabilities, so the pod
/// also lowers its network namespace's `ip_unprivileged_port_start` to 53
/// (a safe sysctl since Kubernetes 1.22): either way port 53 binds without
/// root, and nothing else in the pod's namespace changes.
pub fn dns_pod_spec(image: &str) -> Value {
    let mut dns = container("dns", image, &["--listen", "0.0.0.0:53"], false);
    dns["ports"] = json!([
        {"name": "dns", "containerPort": 53, "protocol": "UDP"},
        {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
        {"name": "metrics", "containerPort": ports::DNS_METRICS_PORT, "protocol": "TCP"},
    ]);
    dns["securityContext"]["capabilities"]["add"] = json!(["NET_BIND_SERVICE"]);
    let mut pod = pod_spec("ferry-dns", vec![dns], false);
    pod["securityContext"] = json!({
        "sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "53"}],
    });
    pod
}

fn pod_spec(name: &str, containers: Vec<Value>, host_network: bool) -> Value {
    let mut spec = json!({
        "serviceAccountName": name,
        "containers": containers,
        "volumes": [{"name": TMP_VOLUME, "emptyDir": {}}],
    });
    if host_network {
        spec["hostNetwork"] = json!(true);
        spec["dnsPolicy"] = json!("ClusterFirstWithHostNet");
        spec["tolerations"] = json!([{"operator": "Exists"}]);
    }
    spec
}

/// Marks a workload's pods for Prometheus: the usual `prometheus.io/*`
/// annotations (no ServiceMonitor needed) and a `metrics` port on its
/// first container.
fn scraped(mut workload: Value, port: u16) -> Value {
    let template = &mut workload["spec"]["template"];
    template["metadata"]["annotations"] = json!({
        "prometheus.io/scrape": "true",
        "prometheus.io/port": port.to_string(),
        "prometheus.io/path": "/metrics",
    });
    let container = &mut template["spec"]["containers"][0];
    let metrics = json!({"name": "metrics", "containerPort": port, "protocol": "TCP"});
    match container["ports"].as_array_mut() {
        Some(ports) => {
            if !ports.iter().any(|p| p["name"] == "metrics") {
                ports.push(metrics);
            }
        }
        None => container["ports"] = json!([metrics]),
    }
    workload
}

fn deployment(name: &str, namespace: &str, pod: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": meta(name, Some(namespace)),
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": {APP_NAME: name}},
            "template": {"metadata": {"labels": common_labels(name)}, "spec": pod},
        },
    })
}

fn daemonset(name: &str, namespace: &str, mut pod: Value, node_selector: Option<Value>) -> Value {
    if let Some(sel) = node_selector {
        pod["nodeSelector"] = sel;
    }
    json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": meta(name, Some(namespace)),
        "spec": {
            "selector": {"matchLabels": {APP_NAME: name}},
            "updateStrategy": {"type": "RollingUpdate"},
            "template": {"metadata": {"labels": common_labels(name)}, "spec": pod},
        },
    })
}

/// Every object `ferry join` applies to a member cluster, in apply order
/// (CRDs first, then the namespace, then what lives in it).
pub fn cluster_manifests(p: &ClusterParams) -> Result<Vec<Value>> {
    let ns = p.namespace.as_str();
    let mut out = crds()?;
    // The gateway and route agent are privileged host-network pods: Pod
    // Security must let them in whatever the cluster's default level.
    let mut ns_meta = meta(ns, None);
    ns_meta["labels"][POD_SECURITY_ENFORCE] = json!("privileged");
    out.push(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": ns_meta}));

    let b64 = |s: &str| STANDARD.encode(s.as_bytes());
    let mut secret_meta = meta(BROKER_SECRET, Some(ns));
    secret_meta["labels"][CLUSTER] = json!(p.cluster_id);
    let mut secret = json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": secret_meta,
        "data": {
            secret_keys::BROKER_INFO: b64(&p.broker_info),
            secret_keys::CLUSTER_ID: b64(&p.cluster_id),
            secret_keys::CLUSTER_CIDRS: b64(&join_cidrs(&p.cluster_cidrs)),
            secret_keys::SERVICE_CIDRS: b64(&join_cidrs(&p.service_cidrs)),
            secret_keys::CABLE_DRIVER: b64(p.cable_driver.as_str()),
            secret_keys::GLOBAL_CIDRS: b64(&join_cidrs(&p.global_cidrs)),
        },
    });
    if let Some(plugin) = p.network_plugin {
        secret["data"][secret_keys::NETWORK_PLUGIN] = json!(b64(plugin.as_str()));
    }
    let secret_digest = digest(&secret["data"]);
    out.push(secret);

    let ferry_all = rule(
        &["ferry.dev"],
        &["clusters", "endpoints", "gateways", "gateways/status"],
        ALL,
    );
    let ferry_read = rule(&["ferry.dev"], &["clusters", "endpoints", "gateways"], READ);
    let secrets = rule(&[""], &["secrets"], &["get", "list", "watch"]);
    out.extend(identity(
        "ferry-agent",
        ns,
        vec![
            rule(&[""], &["namespaces", "nodes"], READ),
            // Services are written too: the derived Service of each
            // imported service with a clusterset IP.
            rule(&[""], &["services"], ALL),
            rule(&["discovery.k8s.io"], &["endpointslices"], ALL),
            rule(&["multicluster.x-k8s.io"], &["serviceexports"], READ),
            rule(
                &["multicluster.x-k8s.io"],
                &["serviceexports/status"],
                &["get", "update", "patch"],
            ),
            rule(
                &["multicluster.x-k8s.io"],
                &["serviceimports", "serviceimports/status"],
                ALL,
            ),
            rule(&["about.k8s.io"], &["clusterproperties"], READ),
            // Globalnet: the agent allocates global IPs into these objects.
            rule(&["ferry.dev"], GLOBALNET_RESOURCES, ALL),
            rule(&[""], &["pods"], READ),
            ferry_all.clone(),
            secrets.clone(),
            // A renewed broker token goes into the ferry-broker Secret.
            json!({"apiGroups": [""], "resources": ["secrets"],
                "resourceNames": [BROKER_SECRET], "verbs": ["update", "patch"]}),
        ],
    ));
    out.extend(identity(
        "ferry-dns",
        ns,
        vec![
            rule(&["multicluster.x-k8s.io"], &["serviceimports"], READ),
            rule(&["discovery.k8s.io"], &["endpointslices"], READ),
            ferry_read.clone(),
        ],
    ));
    out.extend(identity(
        "ferry-gateway",
        ns,
        vec![
            rule(&[""], &["nodes"], READ),
            rule(&["coordination.k8s.io"], &["leases"], ALL),
            // Globalnet: the translation follows the allocated global IPs,
            // a GlobalEgressIP's to the addresses of the pods it selects.
            rule(&["ferry.dev"], GLOBALNET_RESOURCES, READ),
            rule(&[""], &["pods"], READ),
            ferry_all,
            secrets,
        ],
    ));
    out.extend(identity(
        "ferry-route-agent",
        ns,
        vec![
            rule(&[""], &["nodes"], READ),
            // Its Node's ferry.dev/cni-iface-ip annotation: the address the
            // node's host-network traffic to other clusters leaves from.
            rule(&[""], &["nodes"], &["patch"]),
            ferry_read,
            // The cluster id, unless CLUSTER_ID is set.
            rule(&["about.k8s.io"], &["clusterproperties"], READ),
            // At SIGTERM: are its DaemonSet and namespace gone (uninstall) or not (restart)?
            rule(&["apps"], &["daemonsets"], &["get"]),
            rule(&[""], &["namespaces"], &["get"]),
            // Calico clusters: the active gateway keeps an IPPool per remote
            // CIDR (natOutgoing: false, disabled: true).
            rule(
                &["crd.projectcalico.org"],
                &["ippools"],
                &["get", "list", "create", "patch", "delete"],
            ),
        ],
    ));

    out.push(scraped(
        deployment(
            "ferry-agent",
            ns,
            pod_spec(
                "ferry-agent",
                vec![container("agent", &p.image, &[], false)],
                false,
            ),
        ),
        ports::AGENT_METRICS_PORT,
    ));
    out.push(scraped(
        deployment("ferry-dns", ns, dns_pod_spec(&p.image)),
        ports::DNS_METRICS_PORT,
    ));
    out.push(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": meta("ferry-dns", Some(ns)),
        "spec": {
            "selector": {APP_NAME: "ferry-dns"},
            "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
            ],
        },
    }));
    // The gateway's WireGuard private key lives on the node (0600), never
    // in the API: a hostPath keeps it across restarts.
    let gateway_args = p.gateway.args();
    let gateway_args: Vec<&str> = gateway_args.iter().map(String::as_str).collect();
    let mut gateway_container = container("gateway", &p.image, &gateway_args, true);
    gateway_container["volumeMounts"]
        .as_array_mut()
        .into_iter()
        .for_each(|m| m.push(json!({"name": "state", "mountPath": GATEWAY_STATE_DIR})));
    let mut gateway_pod = pod_spec("ferry-gateway", vec![gateway_container], true);
    gateway_pod["volumes"]
        .as_array_mut()
        .into_iter()
        .for_each(|v| {
            v.push(json!({
                "name": "state",
                "hostPath": {"path": GATEWAY_STATE_DIR, "type": "DirectoryOrCreate"},
            }))
        });
    out.push(scraped(
        daemonset(
            "ferry-gateway",
            ns,
            gateway_pod,
            Some(json!({labels::GATEWAY: labels::GATEWAY_ENABLED})),
        ),
        ports::GATEWAY_METRICS_PORT,
    ));
    out.push(scraped(
        daemonset(
            "ferry-route-agent",
            ns,
            pod_spec(
                "ferry-route-agent",
                vec![container("route-agent", &p.image, &[], true)],
                true,
            ),
            None,
        ),
        ports::ROUTE_AGENT_METRICS_PORT,
    ));

    let property =
        ClusterProperty::cluster_id(&p.cluster_id).map_err(|e| Error::Render(e.to_string()))?;
    let mut property = serde_json::to_value(property).map_err(|e| Error::Render(e.to_string()))?;
    property["metadata"]["labels"] = common_labels("ferry");
    out.push(property);
    out.retain(|o| {
        o["metadata"]["name"]
            .as_str()
            .and_then(component_of)
            .is_none_or(|c| p.components.has(c))
    });
    for workload in out
        .iter_mut()
        .filter(|o| o["kind"] == "Deployment" || o["kind"] == "DaemonSet")
    {
        workload["spec"]["template"]["metadata"]["annotations"][BROKER_SECRET_DIGEST] =
            json!(secret_digest);
    }
    Ok(out)
}

/// The pod-template annotation holding a digest of the `ferry-broker`
/// Secret: every daemon reads that Secret once, when it starts, so a
/// re-run of `join` that changes it (a broker re-deployed with other
/// shared settings, such as `--enable-clusterset-ip`; new CIDRs) changes
/// every pod template too, and the daemons restart with it.
pub const BROKER_SECRET_DIGEST: &str = "ferry.dev/broker-secret-digest";

/// A short, stable digest of a JSON value (its serialization's SHA-256,
/// first 8 bytes in hex).
fn digest(value: &Value) -> String {
    use sha2::Digest as _;
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    sha2::Sha256::digest(&bytes)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The extra objects a real Kubernetes broker needs in `namespace` (beyond
/// the namespace and CRDs, which [`broker_manifests`] includes): a Role for
/// clusters, a joiner ServiceAccount allowed to create cluster
/// ServiceAccounts, bind them to that Role and request their tokens, and a
/// ValidatingAdmissionPolicy (+ binding) that denies a cluster's
/// ServiceAccount (`cluster-<id>`) any write to an object not labelled
/// `ferry.dev/cluster=<id>`, and any change of that label.
pub fn broker_manifests(namespace: &str) -> Result<Vec<Value>> {
    let mut out = crds()?;
    out.push(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": meta(namespace, None)}));
    let synced = [
        // globalcidrs: one per cluster's Globalnet block.
        (
            "ferry.dev",
            vec!["clusters", "endpoints", "gateways", "globalcidrs"],
        ),
        ("multicluster.x-k8s.io", vec!["serviceimports"]),
        ("discovery.k8s.io", vec!["endpointslices"]),
    ];
    let cluster_rules: Vec<Value> = synced.iter().map(|(g, r)| rule(&[g], r, ALL)).collect();
    out.push(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": meta(BROKER_CLUSTER_ROLE, Some(namespace)),
        "rules": cluster_rules,
    }));
    let mut joiner_meta = meta(BROKER_JOINER, Some(namespace));
    // On ferry apiserver this label makes its tokens the joiner identity.
    joiner_meta["labels"][labels::JOINER] = json!("true");
    out.push(json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": joiner_meta}));
    out.push(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": meta(BROKER_JOINER, Some(namespace)),
        "rules": [
            rule(&[""], &["serviceaccounts"], &["get", "list", "create", "patch"]),
            rule(&[""], &["serviceaccounts/token"], &["create"]),
            rule(&["rbac.authorization.k8s.io"], &["rolebindings"], &["get", "list", "create", "patch"]),
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["bind"], "resourceNames": [BROKER_CLUSTER_ROLE]},
            // Each cluster's token-renewal Role (it grants only what the
            // joiner holds: tokens of one ServiceAccount).
            rule(&["rbac.authorization.k8s.io"], &["roles"], &["get", "list", "create", "patch"]),
            rule(&["ferry.dev"], &["clusters", "endpoints", "globalcidrs"], READ),
        ],
    }));
    out.push(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": meta(BROKER_JOINER, Some(namespace)),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": BROKER_JOINER},
        "subjects": [{"kind": "ServiceAccount", "name": BROKER_JOINER, "namespace": namespace}],
    }));
    let prefix = format!("system:serviceaccount:{namespace}:{CLUSTER_SA_PREFIX}");
    let policy = format!("ferry-broker-{namespace}");
    let owns = |obj: &str| {
        format!(
            "has({obj}.metadata.labels) && '{CLUSTER}' in {obj}.metadata.labels && {obj}.metadata.labels['{CLUSTER}'] == variables.clusterId"
        )
    };
    out.push(json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
        "metadata": meta(&policy, None),
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                "resourceRules": synced.iter().map(|(g, r)| json!({
                    "apiGroups": [g], "apiVersions": ["*"], "resources": r,
                    "operations": ["CREATE", "UPDATE", "DELETE"],
                })).collect::<Vec<_>>(),
            },
            "matchConditions": [{
                "name": "is-cluster-serviceaccount",
                "expression": format!("request.userInfo.username.startsWith('{prefix}')"),
            }],
            "variables": [{
                "name": "clusterId",
                "expression": format!("request.userInfo.username.substring({})", prefix.len()),
            }],
            "validations": [
                {
                    "expression": format!("request.operation == 'DELETE' || ({})", owns("object")),
                    "messageExpression": format!("'a cluster may only write objects labelled {CLUSTER}=' + variables.clusterId"),
                    "reason": "Forbidden",
                },
                {
                    "expression": format!("request.operation == 'CREATE' || ({})", owns("oldObject")),
                    "messageExpression": format!("'a cluster may only change objects labelled {CLUSTER}=' + variables.clusterId"),
                    "reason": "Forbidden",
                },
            ],
        },
    }));
    out.push(json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": meta(&policy, None),
        "spec": {"policyName": policy, "validationActions": ["Deny"]},
    }));
    Ok(out)
}

/// The per-cluster objects `join` creates on a real Kubernetes broker: the
/// cluster's ServiceAccount (labelled with its id), its RoleBinding, and a
/// Role + RoleBinding letting it request new tokens for itself (renewal).
pub fn broker_cluster_identity(namespace: &str, cluster_id: &str) -> Vec<Value> {
    let name = format!("{CLUSTER_SA_PREFIX}{cluster_id}");
    let mut sa_meta = meta(&name, Some(namespace));
    sa_meta["labels"][CLUSTER] = json!(cluster_id);
    let subjects = json!([{"kind": "ServiceAccount", "name": name, "namespace": namespace}]);
    let token_name = format!("{name}-token");
    let mut token_meta = meta(&token_name, Some(namespace));
    token_meta["labels"][CLUSTER] = json!(cluster_id);
    vec![
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": sa_meta.clone()}),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": sa_meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": BROKER_CLUSTER_ROLE},
            "subjects": subjects,
        }),
        // Its token expires: the agent renews it with the token itself,
        // which may ask for tokens of this ServiceAccount only.
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": token_meta.clone(),
            "rules": [{"apiGroups": [""], "resources": ["serviceaccounts/token"],
                "resourceNames": [name], "verbs": ["create"]}],
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": token_meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": token_name},
            "subjects": subjects,
        }),
    ]
}

/// Renders objects as one multi-document YAML stream (`---` before each).
pub fn to_yaml(objects: &[Value]) -> Result<String> {
    let mut out = String::new();
    for o in objects {
        out.push_str("---\n");
        out.push_str(&serde_yaml_ng::to_string(o).map_err(|e| Error::Render(e.to_string()))?);
    }
    Ok(out)
}

/// The files under `deploy/`, as (file name, contents): the CRDs, a member
/// cluster's manifests and a Kubernetes broker's, with placeholder ids and
/// credentials (`ferry join` fills in the real ones). Regenerate them with
/// `cargo run -p ferry-deploy --example render -- deploy`.
pub fn deploy_files() -> Result<Vec<(&'static str, String)>> {
    let header = "# Generated by crates/ferry-deploy (cargo run -p ferry-deploy --example render -- deploy).\n# Do not edit by hand.\n";
    let crds = crds()?;
    let params = ClusterParams {
        cluster_id: "cluster-id".into(),
        image: default_image(),
        namespace: labels::SYSTEM_NAMESPACE.into(),
        broker_info: "BROKER-INFO-WITH-THIS-CLUSTERS-TOKEN".into(),
        cluster_cidrs: Vec::new(),
        service_cidrs: Vec::new(),
        global_cidrs: Vec::new(),
        network_plugin: None,
        cable_driver: CableDriver::Wireguard,
        gateway: GatewaySettings::default(),
        components: Components::default(),
    };
    let not_crd = |o: &Value| o["kind"] != "CustomResourceDefinition";
    let cluster: Vec<Value> = cluster_manifests(&params)?
        .into_iter()
        .filter(not_crd)
        .collect();
    let broker: Vec<Value> = broker_manifests(labels::BROKER_NAMESPACE)?
        .into_iter()
        .filter(not_crd)
        .collect();
    Ok(vec![
        ("crds.yaml", format!("{header}{}", to_yaml(&crds)?)),
        ("cluster.yaml", format!("{header}{}", to_yaml(&cluster)?)),
        ("broker.yaml", format!("{header}{}", to_yaml(&broker)?)),
        ("kustomization.yaml", format!("{header}{KUSTOMIZATION}")),
    ])
}

/// `deploy/kustomization.yaml`: a member cluster's install for
/// `kubectl kustomize deploy/` (or `kubectl apply -k`); overlays set the
/// image with `images:` and replace the placeholder `ferry-broker` Secret.
const KUSTOMIZATION: &str = "apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- crds.yaml
- cluster.yaml
";

#[cfg(test)]
mod tests;
