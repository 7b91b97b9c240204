//! From the objects read from one cluster ([`Snapshot`]) to the rows
//! `show` prints ([`ClusterView`]). Pure: no I/O, deterministic order.

use std::collections::BTreeMap;

use ferry_api::globalnet::{ALLOCATED, TargetType};
use ferry_api::labels::{SERVICE_NAME, SOURCE_CLUSTER};
use ferry_api::mcs::condition;
use ferry_api::{
    Cluster, ClusterGlobalEgressIP, ConnectionStatus, Endpoint, Gateway, GlobalEgressIP,
    GlobalIngressIP, HaStatus, ServiceExport, ServiceImport,
};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::Section;
use super::model::*;

/// What was read from one cluster. Lists not needed by the sections asked
/// for may be empty.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// This cluster's id.
    pub cluster_id: String,
    /// The broker, from the `ferry-broker` Secret.
    pub broker: Option<BrokerRow>,
    /// `Cluster`s in `ferry-system` (this one's and copies of the others).
    pub clusters: Vec<Cluster>,
    /// `Endpoint`s in `ferry-system`.
    pub endpoints: Vec<Endpoint>,
    /// `Gateway`s in `ferry-system`.
    pub gateways: Vec<Gateway>,
    /// Nodes labelled `ferry.dev/gateway=true`.
    pub gateway_nodes: Vec<String>,
    /// ferry's Deployments.
    pub deployments: Vec<Deployment>,
    /// ferry's DaemonSets.
    pub daemonsets: Vec<DaemonSet>,
    /// ServiceImports in every namespace.
    pub imports: Vec<ServiceImport>,
    /// ServiceExports in every namespace.
    pub exports: Vec<ServiceExport>,
    /// The EndpointSlices ferry made for imported services (they carry
    /// `multicluster.kubernetes.io/source-cluster`).
    pub slices: Vec<EndpointSlice>,
    /// Globalnet: the cluster egress pool(s).
    pub cluster_egress: Vec<ClusterGlobalEgressIP>,
    /// Globalnet: namespaces' and pod selectors' egress IPs.
    pub egress: Vec<GlobalEgressIP>,
    /// Globalnet: exported services' (and headless pods') ingress IPs.
    pub ingress: Vec<GlobalIngressIP>,
}

/// The rows of the sections asked for.
pub fn build(s: &Snapshot, sections: &[Section]) -> ClusterView {
    let mut v = ClusterView::default();
    for section in sections {
        match section {
            Section::Connections => v.connections = Some(connections(s)),
            Section::Endpoints => v.endpoints = Some(endpoints(s)),
            Section::Gateways => v.gateways = Some(gateways(s)),
            Section::Networks => v.networks = Some(networks(s)),
            Section::Services => v.services = Some(services(s)),
            Section::Brokers => v.brokers = Some(s.broker.iter().cloned().collect()),
            Section::Versions => v.versions = Some(versions(s)),
            Section::Globalnet => v.globalnet = Some(globalnet(s)),
        }
    }
    v
}

fn strings<T: ToString>(items: &[T]) -> Vec<String> {
    items.iter().map(ToString::to_string).collect()
}

/// The gateways whose connections count: the active ones, or all when
/// none says it is active (e.g. a single gateway still starting).
fn serving_gateways(s: &Snapshot) -> Vec<&Gateway> {
    let active: Vec<&Gateway> = s
        .gateways
        .iter()
        .filter(|g| {
            g.status
                .as_ref()
                .is_some_and(|st| st.ha_status == HaStatus::Active)
        })
        .collect();
    if active.is_empty() {
        s.gateways.iter().collect()
    } else {
        active
    }
}

fn connections(s: &Snapshot) -> Vec<ConnectionRow> {
    let mut rows = Vec::new();
    for gw in serving_gateways(s) {
        let Some(status) = &gw.status else { continue };
        for c in &status.connections {
            let remote = s
                .endpoints
                .iter()
                .find(|e| e.metadata.name.as_deref() == Some(c.endpoint.as_str()));
            let subnets = match remote {
                Some(e) => strings(&e.spec.subnets),
                None => s
                    .clusters
                    .iter()
                    .find(|cl| cl.spec.cluster_id == c.cluster_id)
                    .map(|cl| {
                        let mut v = strings(&cl.spec.cluster_cidrs);
                        v.extend(strings(&cl.spec.service_cidrs));
                        v
                    })
                    .unwrap_or_default(),
            };
            let remote_ip = c.using_ip.map(|ip| ip.to_string()).or_else(|| {
                remote.map(|e| {
                    e.spec
                        .public_ip
                        .filter(|_| c.using_nat)
                        .unwrap_or(e.spec.private_ip)
                        .to_string()
                })
            });
            rows.push(ConnectionRow {
                gateway: gw.spec.hostname.clone(),
                cluster: c.cluster_id.clone(),
                endpoint: c.endpoint.clone(),
                remote_ip,
                using_nat: c.using_nat,
                nat_discovery: c.nat_discovery.clone(),
                cable_driver: c.cable_driver,
                subnets,
                status: c.status,
                status_message: c.status_message.clone(),
                latency_rtt: c.latency_rtt,
            });
        }
    }
    rows.sort_by(|a, b| (&a.cluster, &a.gateway).cmp(&(&b.cluster, &b.gateway)));
    rows
}

fn endpoints(s: &Snapshot) -> Vec<EndpointRow> {
    let mut rows: Vec<EndpointRow> = s
        .endpoints
        .iter()
        .map(|e| EndpointRow {
            cluster: e.spec.cluster_id.clone(),
            hostname: e.spec.hostname.clone(),
            private_ip: e.spec.private_ip.to_string(),
            public_ip: e.spec.public_ip.map(|ip| ip.to_string()),
            cable_driver: e.spec.cable_driver,
            local: e.spec.cluster_id == s.cluster_id,
        })
        .collect();
    // This cluster first, then the others by id.
    rows.sort_by(|a, b| {
        (!a.local, &a.cluster, &a.hostname).cmp(&(!b.local, &b.cluster, &b.hostname))
    });
    rows
}

fn gateways(s: &Snapshot) -> Vec<GatewayRow> {
    let mut by_node: BTreeMap<String, GatewayRow> = BTreeMap::new();
    for gw in &s.gateways {
        if !gw.spec.cluster_id.is_empty() && gw.spec.cluster_id != s.cluster_id {
            continue;
        }
        let node = gw.spec.hostname.clone();
        let row = match &gw.status {
            None => GatewayRow {
                node: node.clone(),
                ha_status: None,
                connected: 0,
                connections: 0,
                share_percent: None,
                traffic: None,
                summary: "no status reported yet".into(),
            },
            Some(st) => {
                let total = st.connections.len();
                let connected = st
                    .connections
                    .iter()
                    .filter(|c| c.status == ConnectionStatus::Connected)
                    .count();
                let summary = if let Some(f) = &st.status_failure {
                    format!("failing: {f}")
                } else if st.ha_status == HaStatus::Passive {
                    "standby (another gateway holds the lease)".into()
                } else if total == 0 {
                    "active; no remote cluster to connect to yet".into()
                } else if connected == total {
                    format!("all connections ({total}) are established")
                } else {
                    let down: Vec<String> = st
                        .connections
                        .iter()
                        .filter(|c| c.status != ConnectionStatus::Connected)
                        .map(|c| format!("{} {}", c.cluster_id, status_word(c.status)))
                        .collect();
                    format!(
                        "{connected} of {total} connections established ({})",
                        down.join(", ")
                    )
                };
                GatewayRow {
                    node: node.clone(),
                    ha_status: Some(st.ha_status),
                    connected,
                    connections: total,
                    share_percent: None,
                    traffic: st.traffic,
                    summary,
                }
            }
        };
        by_node.insert(node, row);
    }
    for node in &s.gateway_nodes {
        by_node.entry(node.clone()).or_insert_with(|| GatewayRow {
            node: node.clone(),
            ha_status: None,
            connected: 0,
            connections: 0,
            share_percent: None,
            traffic: None,
            summary: "labelled ferry.dev/gateway=true but no Gateway reported: is ferry-gateway running on it?".into(),
        });
    }
    let mut rows: Vec<GatewayRow> = by_node.into_values().collect();
    set_shares(&mut rows);
    rows
}

/// Each gateway's part of the bytes the cluster's gateways moved in their
/// last status window. A passive gateway gets 0 % once another one
/// reports bytes; an active one not sampled yet gets none; nobody gets a
/// share when no bytes moved.
fn set_shares(rows: &mut [GatewayRow]) {
    let total: u64 = rows
        .iter()
        .filter_map(|r| r.traffic.map(|t| t.window_bytes))
        .sum();
    if total == 0 {
        return;
    }
    for r in rows {
        let bytes = match (r.traffic, r.ha_status) {
            (Some(t), _) => t.window_bytes,
            (None, Some(HaStatus::Passive)) => 0,
            (None, _) => continue,
        };
        r.share_percent = Some(100.0 * bytes as f64 / total as f64);
    }
}

fn networks(s: &Snapshot) -> Vec<NetworkRow> {
    let mut rows: Vec<NetworkRow> = s
        .clusters
        .iter()
        .map(|c| NetworkRow {
            cluster: c.spec.cluster_id.clone(),
            local: c.spec.cluster_id == s.cluster_id,
            cluster_cidrs: strings(&c.spec.cluster_cidrs),
            service_cidrs: strings(&c.spec.service_cidrs),
            global_cidrs: strings(&c.spec.global_cidrs),
            cni: c.spec.network_plugin.map(|p| p.to_string()),
        })
        .collect();
    rows.sort_by(|a, b| (!a.local, &a.cluster).cmp(&(!b.local, &b.cluster)));
    rows.dedup_by(|a, b| a.cluster == b.cluster);
    rows
}

fn globalnet(s: &Snapshot) -> GlobalnetView {
    let blocks = networks(s)
        .into_iter()
        .filter(|r| !r.global_cidrs.is_empty())
        .map(|r| GlobalBlockRow {
            cluster: r.cluster,
            local: r.local,
            global_cidrs: r.global_cidrs,
        })
        .collect();
    let mut allocations = Vec::new();
    for e in &s.cluster_egress {
        let st = e.status.clone().unwrap_or_default();
        allocations.push(AllocationRow {
            kind: "ClusterGlobalEgressIP".into(),
            namespace: String::new(),
            name: e.metadata.name.clone().unwrap_or_default(),
            for_: "cluster".into(),
            ips: st.allocated_ips,
            state: allocation_state(&st.conditions),
        });
    }
    for e in &s.egress {
        let st = e.status.clone().unwrap_or_default();
        let ns = e.metadata.namespace.clone().unwrap_or_default();
        allocations.push(AllocationRow {
            kind: "GlobalEgressIP".into(),
            for_: match &e.spec.pod_selector {
                Some(sel) => format!("pods {}", selector_text(sel)),
                None => format!("namespace {ns}"),
            },
            namespace: ns,
            name: e.metadata.name.clone().unwrap_or_default(),
            ips: st.allocated_ips,
            state: allocation_state(&st.conditions),
        });
    }
    for i in &s.ingress {
        let st = i.status.clone().unwrap_or_default();
        let (what, target) = match i.spec.target {
            TargetType::ClusterIpService => ("service", &i.spec.service_ref),
            TargetType::HeadlessServicePod => ("pod", &i.spec.pod_ref),
        };
        let name = target.as_ref().map_or("?", |r| r.name.as_str());
        let to = if st.target_ip.is_empty() {
            String::new()
        } else {
            format!(" -> {}", st.target_ip)
        };
        allocations.push(AllocationRow {
            kind: "GlobalIngressIP".into(),
            namespace: i.metadata.namespace.clone().unwrap_or_default(),
            name: i.metadata.name.clone().unwrap_or_default(),
            for_: format!("{what} {name}{to}"),
            ips: (!st.allocated_ip.is_empty())
                .then_some(st.allocated_ip.clone())
                .into_iter()
                .collect(),
            state: allocation_state(&st.conditions),
        });
    }
    GlobalnetView {
        blocks,
        allocations,
    }
}

/// `allocated`, `pending` (no condition yet), or the reason it is not.
fn allocation_state(conditions: &[Condition]) -> String {
    match conditions.iter().find(|c| c.type_ == ALLOCATED) {
        Some(c) if c.status == "True" => "allocated".into(),
        Some(c) => format!("not allocated: {}", c.message),
        None => "pending".into(),
    }
}

/// `k=v,k2=v2` of a selector's labels (`+N expressions` when it has some).
fn selector_text(sel: &LabelSelector) -> String {
    let mut parts: Vec<String> = sel
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let exprs = sel.match_expressions.as_ref().map_or(0, Vec::len);
    if exprs > 0 {
        parts.push(format!("+{exprs} expressions"));
    }
    if parts.is_empty() {
        "(all)".into()
    } else {
        parts.join(",")
    }
}

/// Splits an image reference into repository and tag (or digest).
pub fn split_image(image: &str) -> (String, String) {
    if let Some((repo, digest)) = image.split_once('@') {
        return (repo.into(), digest.into());
    }
    // A ':' after the last '/' is the tag; before it, a registry port.
    let last_slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[last_slash..].rfind(':') {
        Some(i) => (
            image[..last_slash + i].into(),
            image[last_slash + i + 1..].into(),
        ),
        None => (image.into(), "latest".into()),
    }
}

fn image_of(spec: Option<&PodSpec>) -> String {
    spec.and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone())
        .unwrap_or_default()
}

fn versions(s: &Snapshot) -> Vec<VersionRow> {
    let mut rows = Vec::new();
    for d in &s.deployments {
        let spec = d.spec.as_ref();
        let image = image_of(spec.and_then(|s| s.template.spec.as_ref()));
        let (repository, version) = split_image(&image);
        let ready = d.status.as_ref().map(|st| {
            format!(
                "{}/{}",
                st.ready_replicas.unwrap_or(0),
                spec.and_then(|s| s.replicas).unwrap_or(1)
            )
        });
        rows.push(VersionRow {
            component: d.metadata.name.clone().unwrap_or_default(),
            kind: "Deployment".into(),
            repository,
            version,
            ready,
        });
    }
    for d in &s.daemonsets {
        let image = image_of(d.spec.as_ref().and_then(|s| s.template.spec.as_ref()));
        let (repository, version) = split_image(&image);
        let ready = d
            .status
            .as_ref()
            .map(|st| format!("{}/{}", st.number_ready, st.desired_number_scheduled));
        rows.push(VersionRow {
            component: d.metadata.name.clone().unwrap_or_default(),
            kind: "DaemonSet".into(),
            repository,
            version,
            ready,
        });
    }
    rows.sort_by(|a, b| a.component.cmp(&b.component));
    rows
}

fn status_word(s: ConnectionStatus) -> &'static str {
    match s {
        ConnectionStatus::Connecting => "connecting",
        ConnectionStatus::Connected => "connected",
        ConnectionStatus::Error => "error",
    }
}

/// The best state of any serving gateway's connection to `cluster`, with
/// its message.
fn link_to<'a>(gateways: &[&'a Gateway], cluster: &str) -> Option<(ConnectionStatus, &'a str)> {
    let rank = |s: ConnectionStatus| match s {
        ConnectionStatus::Connected => 2,
        ConnectionStatus::Connecting => 1,
        ConnectionStatus::Error => 0,
    };
    gateways
        .iter()
        .filter_map(|g| g.status.as_ref())
        .flat_map(|st| &st.connections)
        .filter(|c| c.cluster_id == cluster)
        .max_by_key(|c| rank(c.status))
        .map(|c| (c.status, c.status_message.as_str()))
}

fn services(s: &Snapshot) -> ServicesView {
    let gws = serving_gateways(s);
    // (ns, service, cluster) → (ready, total)
    let mut counts: BTreeMap<(String, String, String), (usize, usize)> = BTreeMap::new();
    for slice in &s.slices {
        let labels = slice.metadata.labels.clone().unwrap_or_default();
        let (Some(svc), Some(cluster)) = (labels.get(SERVICE_NAME), labels.get(SOURCE_CLUSTER))
        else {
            continue;
        };
        let ns = slice.metadata.namespace.clone().unwrap_or_default();
        let entry = counts
            .entry((ns, svc.clone(), cluster.clone()))
            .or_default();
        for ep in &slice.endpoints {
            let n = ep.addresses.len().max(1);
            entry.1 += n;
            if ep.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true) {
                entry.0 += n;
            }
        }
    }
    let mut imports = Vec::new();
    // A cluster that also hosts the broker holds every cluster's
    // per-cluster ServiceImports (labelled with their source cluster) in the
    // broker namespace: those are not imports of this cluster.
    let local_imports = s.imports.iter().filter(|si| {
        si.metadata
            .labels
            .as_ref()
            .is_none_or(|l| !l.contains_key(SOURCE_CLUSTER))
    });
    for si in local_imports {
        let ns = si.metadata.namespace.clone().unwrap_or_default();
        let name = si.metadata.name.clone().unwrap_or_default();
        let mut clusters: Vec<String> = si
            .status
            .as_ref()
            .map(|st| st.clusters.iter().map(|c| c.cluster.clone()).collect())
            .unwrap_or_default();
        for (n, svc, c) in counts.keys() {
            if *n == ns && *svc == name && !clusters.contains(c) {
                clusters.push(c.clone());
            }
        }
        clusters.sort();
        let rows = clusters
            .into_iter()
            .map(|cluster| {
                let local = cluster == s.cluster_id;
                let (ready, total) = counts
                    .get(&(ns.clone(), name.clone(), cluster.clone()))
                    .copied()
                    .unwrap_or((0, 0));
                let link = if local { None } else { link_to(&gws, &cluster) };
                let mut reasons = Vec::new();
                if ready == 0 {
                    reasons.push(if total == 0 {
                        "no endpoints".to_string()
                    } else {
                        "no ready endpoints".to_string()
                    });
                }
                if !local {
                    match link {
                        Some((ConnectionStatus::Connected, _)) => {}
                        Some((st, msg)) if !msg.is_empty() => {
                            reasons.push(format!("connection {}: {msg}", status_word(st)));
                        }
                        Some((st, _)) => reasons.push(format!("connection {}", status_word(st))),
                        None => reasons.push("no gateway connection".into()),
                    }
                }
                ServiceClusterRow {
                    cluster,
                    local,
                    ready_endpoints: ready,
                    endpoints: total,
                    connection: link.map(|l| l.0),
                    healthy: reasons.is_empty(),
                    reason: reasons.join("; "),
                }
            })
            .collect();
        imports.push(ServiceRow {
            namespace: ns,
            name,
            type_: si.spec.type_,
            ips: si.spec.ips.clone(),
            ports: si
                .spec
                .ports
                .iter()
                .map(|p| match &p.name {
                    Some(n) => format!("{n}:{}/{}", p.port, p.protocol),
                    None => format!("{}/{}", p.port, p.protocol),
                })
                .collect(),
            clusters: rows,
        });
    }
    imports.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    let mut exports: Vec<ExportRow> = s.exports.iter().map(export_row).collect();
    exports.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    ServicesView { imports, exports }
}

/// A ServiceExport's conditions as a row.
pub fn export_row(e: &ServiceExport) -> ExportRow {
    let conds: &[Condition] = e.status.as_ref().map_or(&[], |s| &s.conditions);
    let get = |t: &str| conds.iter().find(|c| c.type_ == t);
    let status = |t: &str| get(t).map(|c| c.status.clone());
    // The first condition that is not fine explains the state.
    let bad = [
        (condition::VALID, "True"),
        (condition::CONFLICT, "False"),
        (condition::READY, "True"),
    ]
    .into_iter()
    .find_map(|(t, good)| get(t).filter(|c| c.status != good));
    let message = match bad {
        Some(c) if !c.message.is_empty() => c.message.clone(),
        Some(c) => c.reason.clone(),
        None if conds.is_empty() => "no conditions yet: is ferry agent running?".into(),
        None => String::new(),
    };
    ExportRow {
        namespace: e.metadata.namespace.clone().unwrap_or_default(),
        name: e.metadata.name.clone().unwrap_or_default(),
        valid: status(condition::VALID),
        ready: status(condition::READY),
        conflict: status(condition::CONFLICT),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_split_into_repository_and_version() {
        let cases = [
            ("ferry:0.1.0", ("ferry", "0.1.0")),
            ("ferry", ("ferry", "latest")),
            (
                "registry.local:5000/ferry/ferry:v1",
                ("registry.local:5000/ferry/ferry", "v1"),
            ),
            (
                "registry.local:5000/ferry",
                ("registry.local:5000/ferry", "latest"),
            ),
            ("ferry@sha256:abcd", ("ferry", "sha256:abcd")),
        ];
        for (image, (repo, tag)) in cases {
            assert_eq!(
                split_image(image),
                (repo.to_string(), tag.to_string()),
                "{image}"
            );
        }
    }
}
