//! What the active commands (`diagnose`, `verify`, `benchmark`) know about
//! one cluster before they probe it: everything `show` reads (its
//! [`Snapshot`]), its nodes, its server version, and the answers to the
//! questions every probe plan asks — which node is not a gateway, which
//! gateway is active, where each remote cluster's gateway answers.

use std::net::{IpAddr, SocketAddr};

use ferry_api::ferry::backend_config;
use ferry_api::labels::{self, SYSTEM_NAMESPACE};
use ferry_api::ports;
use ferry_api::{Connection, Endpoint, Gateway, HaStatus};
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::ListParams;

use crate::Result;
use crate::show::{Section, Snapshot, gather};
use crate::target::{Target, TargetSpec};

/// One cluster, read. Plain data (no client), so the checks built on it
/// are pure.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    /// Everything `show all` reads.
    pub snapshot: Snapshot,
    /// Its nodes.
    pub nodes: Vec<Node>,
    /// `major.minor` and the full version string of the API server.
    pub version: Option<(u32, u32, String)>,
    /// Up to [`SAMPLE`] pod addresses (`namespace/name`, IP) of pods not on
    /// the host network.
    pub pod_ips: Vec<(String, IpAddr)>,
    /// Up to [`SAMPLE`] Service ClusterIPs (`namespace/name`, IP).
    pub service_ips: Vec<(String, IpAddr)>,
    /// What the CNI's own objects say.
    pub cni: CniFacts,
    /// kube-proxy's mode (`config.conf` of `kube-system/kube-proxy`; an
    /// empty `mode` is `iptables`); `None`: no such ConfigMap.
    pub kube_proxy_mode: Option<String>,
}

/// The CNI as its objects show it.
#[derive(Clone, Debug, Default)]
pub struct CniFacts {
    /// The CNI whose objects the cluster has, with the pod CIDRs they record.
    pub detected: Option<(ferry_api::NetworkPlugin, Vec<ferry_api::Cidr>)>,
    /// A CNI ferry cannot drive, if the cluster runs one.
    pub undrivable: Option<crate::install::cni::Undrivable>,
}

/// kube-proxy's mode in its `config.conf` (a KubeProxyConfiguration):
/// `mode`, where empty or absent means `iptables` (the Linux default).
pub fn kube_proxy_mode(config: &str) -> String {
    let mode = serde_yaml_ng::from_str::<serde_json::Value>(config)
        .ok()
        .and_then(|v| v["mode"].as_str().map(str::to_string))
        .unwrap_or_default();
    if mode.is_empty() {
        "iptables".into()
    } else {
        mode
    }
}

/// How many pods and Services are compared with the declared CIDRs.
pub const SAMPLE: u32 = 500;

/// Connects to one cluster and reads it.
pub async fn read(spec: &TargetSpec) -> Result<(Target, Facts)> {
    let target = Target::connect(spec).await?;
    let facts = read_target(&target).await?;
    Ok((target, facts))
}

/// Reads one cluster through an existing client.
pub async fn read_target(target: &Target) -> Result<Facts> {
    let snapshot = gather::snapshot(target, &Section::ALL).await?;
    let nodes = Api::<Node>::all(target.client.clone())
        .list(&ListParams::default())
        .await
        .map_err(|e| target.error("listing nodes", e))?
        .items;
    let version = target.client.apiserver_version().await.ok().map(|v| {
        (
            leading_number(&v.major),
            leading_number(&v.minor),
            v.git_version,
        )
    });
    let sample = ListParams::default().limit(SAMPLE);
    let pod_ips = Api::<Pod>::all(target.client.clone())
        .list(&sample)
        .await
        .map_err(|e| target.error("listing pods", e))?
        .items
        .into_iter()
        .filter(|p| {
            !p.spec
                .as_ref()
                .and_then(|s| s.host_network)
                .unwrap_or(false)
        })
        .filter_map(|p| {
            let ip = p.status.as_ref()?.pod_ip.as_ref()?.parse().ok()?;
            Some((qualified(&p.metadata), ip))
        })
        .collect();
    let service_ips = Api::<Service>::all(target.client.clone())
        .list(&sample)
        .await
        .map_err(|e| target.error("listing Services", e))?
        .items
        .into_iter()
        .filter_map(|s| {
            let ip = s.spec.as_ref()?.cluster_ip.as_ref()?.parse().ok()?;
            Some((qualified(&s.metadata), ip))
        })
        .collect();
    let cni = CniFacts {
        detected: crate::install::cni::detect(&target.client).await.ok(),
        undrivable: crate::install::cni::undrivable(&target.client).await,
    };
    let kube_proxy_mode = Api::<ConfigMap>::namespaced(target.client.clone(), "kube-system")
        .get_opt("kube-proxy")
        .await
        .ok()
        .flatten()
        .and_then(|cm| cm.data?.remove("config.conf"))
        .map(|text| kube_proxy_mode(&text));
    Ok(Facts {
        snapshot,
        nodes,
        version,
        pod_ips,
        service_ips,
        cni,
        kube_proxy_mode,
    })
}

fn qualified(m: &ObjectMeta) -> String {
    format!(
        "{}/{}",
        m.namespace.as_deref().unwrap_or(""),
        m.name.as_deref().unwrap_or("")
    )
}

/// `"28+"` → 28; anything unparsable → 0.
fn leading_number(s: &str) -> u32 {
    s.chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or(0)
}

fn node_name(n: &Node) -> String {
    n.metadata.name.clone().unwrap_or_default()
}

/// Whether the node reports `Ready=True`.
pub fn node_ready(n: &Node) -> bool {
    n.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Whether the node is labelled as a gateway.
pub fn is_gateway(n: &Node) -> bool {
    n.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(labels::GATEWAY))
        .is_some_and(|v| v == labels::GATEWAY_ENABLED)
}

impl Facts {
    /// The cluster id.
    pub fn id(&self) -> &str {
        &self.snapshot.cluster_id
    }

    /// Ready nodes not labelled as gateways, by name.
    pub fn non_gateway_nodes(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .nodes
            .iter()
            .filter(|n| node_ready(n) && !is_gateway(n))
            .map(node_name)
            .collect();
        v.sort();
        v
    }

    /// Nodes labelled as gateways, by name.
    pub fn gateway_nodes(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .nodes
            .iter()
            .filter(|n| is_gateway(n))
            .map(node_name)
            .collect();
        v.sort();
        v
    }

    /// Where pods that stand for "an ordinary pod" run: a ready
    /// non-gateway node, else (single-node clusters) the active gateway's,
    /// with a note saying so.
    pub fn workload_node(&self) -> Option<(String, Option<String>)> {
        if let Some(n) = self.non_gateway_nodes().into_iter().next() {
            return Some((n, None));
        }
        let gw = self
            .active_gateway_node()
            .or_else(|| self.nodes.iter().find(|n| node_ready(n)).map(node_name))?;
        Some((
            gw.clone(),
            Some(format!(
                "{} has no ready non-gateway node, so the test pod runs on {gw}",
                self.id()
            )),
        ))
    }

    /// This cluster's gateways (not copies of other clusters').
    pub fn own_gateways(&self) -> Vec<&Gateway> {
        self.snapshot
            .gateways
            .iter()
            .filter(|g| g.spec.cluster_id.is_empty() || g.spec.cluster_id == self.id())
            .collect()
    }

    /// The gateway holding the lease.
    pub fn active_gateway(&self) -> Option<&Gateway> {
        self.own_gateways().into_iter().find(|g| {
            g.status
                .as_ref()
                .is_some_and(|s| s.ha_status == HaStatus::Active)
        })
    }

    /// The node of the active gateway.
    pub fn active_gateway_node(&self) -> Option<String> {
        self.active_gateway().map(|g| g.spec.hostname.clone())
    }

    /// The active gateway's connection to `cluster`.
    pub fn connection_to(&self, cluster: &str) -> Option<&Connection> {
        self.active_gateway()?
            .status
            .as_ref()?
            .connections
            .iter()
            .find(|c| c.cluster_id == cluster)
    }

    /// The Endpoint published by `cluster` (as this cluster knows it).
    pub fn endpoint_of(&self, cluster: &str) -> Option<&Endpoint> {
        self.snapshot
            .endpoints
            .iter()
            .find(|e| e.spec.cluster_id == cluster)
    }

    /// Every other cluster this one knows of (from its Cluster and
    /// Endpoint copies), sorted.
    pub fn remote_ids(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .snapshot
            .clusters
            .iter()
            .map(|c| c.spec.cluster_id.clone())
            .chain(
                self.snapshot
                    .endpoints
                    .iter()
                    .map(|e| e.spec.cluster_id.clone()),
            )
            .filter(|id| id != self.id())
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// The clusterset DNS zone.
    pub fn clusterset_domain(&self) -> String {
        self.snapshot
            .broker
            .as_ref()
            .map(|b| b.clusterset_domain.clone())
            .unwrap_or_else(|| labels::CLUSTERSET_DOMAIN.to_string())
    }

    /// The image ferry's components run (the agent's), for test pods.
    pub fn image(&self) -> String {
        self.snapshot
            .deployments
            .iter()
            .find(|d| d.metadata.name.as_deref() == Some("ferry-agent"))
            .and_then(|d| {
                d.spec
                    .as_ref()?
                    .template
                    .spec
                    .as_ref()?
                    .containers
                    .first()?
                    .image
                    .clone()
            })
            .unwrap_or_else(ferry_deploy::default_image)
    }
}

/// The UDP port of `e`'s cable.
pub fn cable_port(e: &Endpoint) -> u16 {
    e.spec
        .backend_config
        .get(backend_config::PORT)
        .and_then(|p| p.parse().ok())
        .unwrap_or(ports::default_cable_port(e.spec.cable_driver))
}

/// The MTU of `e`'s cable, when it publishes one.
pub fn cable_mtu(e: &Endpoint) -> Option<u32> {
    e.spec
        .backend_config
        .get(backend_config::MTU)
        .and_then(|m| m.parse().ok())
}

/// Where `e`'s health checker answers (inside the cable).
pub fn health_check(e: &Endpoint) -> Option<SocketAddr> {
    ports::health_check_addr(&e.spec)
}

/// The addresses `e`'s gateway may be reached at (public first).
pub fn gateway_addresses(e: &Endpoint) -> Vec<IpAddr> {
    let mut v: Vec<IpAddr> = e.spec.public_ip.into_iter().collect();
    if !v.contains(&e.spec.private_ip) {
        v.push(e.spec.private_ip);
    }
    v
}

/// The namespace of test objects.
pub const PROBE_NAMESPACE: &str = SYSTEM_NAMESPACE;
