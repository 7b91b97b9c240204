//! Finding a cluster's pod and service CIDRs when `join` is not told them,
//! from what the cluster itself says, most authoritative first:
//!
//! - pods: the CNI's objects ([`crate::install::cni`]: kube-ovn Subnets,
//!   Calico IPPools, flannel's ConfigMap), `kube-system/kubeadm-config` (`networking.podSubnet`),
//!   `kube-system/kube-proxy` (`config.conf` `clusterCIDR`), records the
//!   caller holds (the sandbox's), and the range covering every node's
//!   `spec.podCIDRs`;
//! - services: `networking.k8s.io` ServiceCIDR objects (Kubernetes ≥ 1.33),
//!   the API server's answer to a dry-run Service whose `clusterIP` is out of
//!   range ("… The range of valid IPs is CIDR"), `kubeadm-config`
//!   (`networking.serviceSubnet`), and the caller's records.
//!
//! Nothing is written: the Service is created with `dryRun=All`. The parsers
//! are pure and tested beside the code.

use std::fmt;
use std::net::IpAddr;

use ferry_api::Cidr;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Service};
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use serde_json::{Value, json};

/// Where CIDRs came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CidrSource {
    /// A command-line flag (`--clustercidr`, `--servicecidr`).
    Flag(&'static str),
    /// `kube-system/kubeadm-config`, ClusterConfiguration `networking`.
    KubeadmConfig,
    /// `kube-system/kube-proxy`, `config.conf` `clusterCIDR`.
    KubeProxyConfig,
    /// The smallest range covering every node's `spec.podCIDRs`.
    NodePodCidrs {
        /// How many nodes had one.
        nodes: usize,
    },
    /// `networking.k8s.io/v1` ServiceCIDR objects.
    ServiceCidrObjects,
    /// The API server's answer to a Service with an out-of-range clusterIP.
    ApiServerAnswer,
    /// A record the caller holds (e.g. the sandbox's plan of the cluster).
    Record(String),
    /// The CNI's own objects ([`crate::install::cni`]).
    Cni(ferry_api::NetworkPlugin),
}

impl fmt::Display for CidrSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CidrSource::Flag(flag) => write!(f, "--{flag}"),
            CidrSource::KubeadmConfig => f.write_str("kube-system/kubeadm-config"),
            CidrSource::KubeProxyConfig => f.write_str("kube-system/kube-proxy clusterCIDR"),
            CidrSource::NodePodCidrs { nodes } => {
                write!(f, "the range covering {nodes} nodes' spec.podCIDRs")
            }
            CidrSource::ServiceCidrObjects => f.write_str("the ServiceCIDR objects"),
            CidrSource::ApiServerAnswer => {
                f.write_str("the API server's answer to an out-of-range Service clusterIP")
            }
            CidrSource::Record(what) => f.write_str(what),
            CidrSource::Cni(cni) => write!(f, "{cni}'s objects"),
        }
    }
}

/// CIDRs and where they came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundCidrs {
    /// The CIDRs (non-empty).
    pub cidrs: Vec<Cidr>,
    /// Their source.
    pub source: CidrSource,
}

/// What discovery found: every source that answered, most authoritative
/// first, and what the others said.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Discovered {
    /// Pod CIDR candidates.
    pub pods: Vec<FoundCidrs>,
    /// Service CIDR candidates.
    pub services: Vec<FoundCidrs>,
    /// Sources that gave nothing, each with why (`kube-proxy: no ConfigMap`).
    pub misses: Vec<String>,
}

/// Records the caller holds about the cluster (the sandbox's own plan).
#[derive(Clone, Debug, Default)]
pub struct Records {
    /// Pod CIDRs it records.
    pub pods: Option<FoundCidrs>,
    /// Service CIDRs it records.
    pub services: Option<FoundCidrs>,
}

/// Asks the cluster behind `client` for its pod CIDRs (if `pods`) and
/// service CIDRs (if `services`); `records` join in at their rank.
pub async fn discover_cidrs(
    client: &Client,
    pods: bool,
    services: bool,
    records: Records,
) -> Discovered {
    let mut d = Discovered::default();
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), "kube-system");
    let kubeadm = config_map_key(&configmaps, "kubeadm-config", "ClusterConfiguration").await;
    let (kubeadm_pods, kubeadm_services) = match &kubeadm {
        Ok(text) => kubeadm_networking(text),
        Err(why) => {
            d.misses.push(format!("kubeadm-config: {why}"));
            (Vec::new(), Vec::new())
        }
    };
    if pods {
        // The CNI's own records first: they name every range pods (and,
        // for kube-ovn, nodes' ovn0) use, which kubeadm's podSubnet may not.
        match crate::install::cni::detect(client).await {
            Ok((cni, cidrs)) => d.push_pods(cidrs, CidrSource::Cni(cni)),
            Err(why) => d.misses.extend(why),
        }
        d.push_pods(kubeadm_pods, CidrSource::KubeadmConfig);
        match config_map_key(&configmaps, "kube-proxy", "config.conf").await {
            Ok(text) => d.push_pods(kube_proxy_cluster_cidr(&text), CidrSource::KubeProxyConfig),
            Err(why) => d.misses.push(format!("kube-proxy: {why}")),
        }
        if let Some(r) = records.pods {
            d.pods.push(r);
        }
        match node_pod_cidrs(client).await {
            Ok((nodes, cidrs)) if !cidrs.is_empty() => {
                d.pods.push(FoundCidrs {
                    cidrs: covering(&cidrs),
                    source: CidrSource::NodePodCidrs { nodes },
                });
            }
            Ok(_) => d.misses.push("nodes: no spec.podCIDRs".into()),
            Err(why) => d.misses.push(format!("nodes: {why}")),
        }
    }
    if services {
        match service_cidr_objects(client).await {
            Ok(cidrs) if !cidrs.is_empty() => d.services.push(FoundCidrs {
                cidrs,
                source: CidrSource::ServiceCidrObjects,
            }),
            Ok(_) => d.misses.push("ServiceCIDRs: none".into()),
            Err(why) => d.misses.push(format!("ServiceCIDRs: {why}")),
        }
        match api_server_service_range(client).await {
            Ok(cidrs) => d.services.push(FoundCidrs {
                cidrs,
                source: CidrSource::ApiServerAnswer,
            }),
            Err(why) => d.misses.push(format!("out-of-range Service: {why}")),
        }
        d.push_services(kubeadm_services, CidrSource::KubeadmConfig);
        if let Some(r) = records.services {
            d.services.push(r);
        }
    }
    d
}

impl Discovered {
    fn push_pods(&mut self, cidrs: Vec<Cidr>, source: CidrSource) {
        if !cidrs.is_empty() {
            self.pods.push(FoundCidrs { cidrs, source });
        }
    }

    fn push_services(&mut self, cidrs: Vec<Cidr>, source: CidrSource) {
        if !cidrs.is_empty() {
            self.services.push(FoundCidrs { cidrs, source });
        }
    }
}

/// The text under `key` of ConfigMap `name`, or why there is none.
async fn config_map_key(api: &Api<ConfigMap>, name: &str, key: &str) -> Result<String, String> {
    match api.get_opt(name).await {
        Ok(Some(cm)) => cm
            .data
            .and_then(|mut d| d.remove(key))
            .ok_or_else(|| format!("no key {key}")),
        Ok(None) => Err("no ConfigMap".into()),
        Err(e) => Err(short(&e)),
    }
}

fn short(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} ({})", s.message, s.code),
        other => other.to_string(),
    }
}

async fn node_pod_cidrs(client: &Client) -> Result<(usize, Vec<Cidr>), String> {
    let nodes: Api<Node> = Api::all(client.clone());
    let list = nodes
        .list(&Default::default())
        .await
        .map_err(|e| short(&e))?;
    let mut with = 0;
    let mut out = Vec::new();
    for n in &list.items {
        let spec = n.spec.clone().unwrap_or_default();
        let mut texts = spec.pod_cidrs.unwrap_or_default();
        texts.extend(spec.pod_cidr);
        let parsed: Vec<Cidr> = texts.iter().filter_map(|t| t.parse().ok()).collect();
        if !parsed.is_empty() {
            with += 1;
        }
        out.extend(parsed);
    }
    Ok((with, out))
}

async fn service_cidr_objects(client: &Client) -> Result<Vec<Cidr>, String> {
    let resource = ApiResource {
        group: "networking.k8s.io".into(),
        version: "v1".into(),
        api_version: "networking.k8s.io/v1".into(),
        kind: "ServiceCIDR".into(),
        plural: "servicecidrs".into(),
    };
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let list = match api.list(&Default::default()).await {
        Ok(l) => l,
        Err(kube::Error::Api(s)) if s.code == 404 => return Err("not served".into()),
        Err(e) => return Err(short(&e)),
    };
    Ok(list
        .items
        .iter()
        .flat_map(|o| service_cidr_spec(&o.data))
        .collect())
}

/// The CIDRs of one ServiceCIDR object (`spec.cidrs`).
fn service_cidr_spec(data: &Value) -> Vec<Cidr> {
    data["spec"]["cidrs"]
        .as_array()
        .map(|a| a.iter().filter_map(|c| c.as_str()?.parse().ok()).collect())
        .unwrap_or_default()
}

/// Addresses no Service CIDR contains, so the API server refuses them with
/// the range it allocates from.
const OUT_OF_RANGE_IPS: [&str; 2] = ["255.255.255.255", "0.0.0.0"];

/// Creates (dry run) a Service with an out-of-range clusterIP and reads the
/// valid range from the refusal.
async fn api_server_service_range(client: &Client) -> Result<Vec<Cidr>, String> {
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let pp = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let mut last = String::new();
    for ip in OUT_OF_RANGE_IPS {
        let svc: Service = serde_json::from_value(json!({
            "metadata": {"name": "ferry-cidr-probe"},
            "spec": {"clusterIP": ip, "ports": [{"port": 80, "protocol": "TCP"}]},
        }))
        .map_err(|e| e.to_string())?;
        match services.create(&pp, &svc).await {
            Ok(_) => last = format!("clusterIP {ip} was accepted"),
            Err(kube::Error::Api(s)) => match parse_valid_range(&s.message) {
                Some(cidrs) => return Ok(cidrs),
                None => last = format!("{} ({})", s.message, s.code),
            },
            Err(e) => return Err(e.to_string()),
        }
    }
    Err(last)
}

/// The CIDRs in kube-apiserver's refusal of an out-of-range clusterIP: "…
/// provided IP is not in the valid range. The range of valid IPs is
/// 10.96.0.0/12" (also with `CIDR `, brackets or several, comma-separated).
pub fn parse_valid_range(message: &str) -> Option<Vec<Cidr>> {
    const MARKER: &str = "the range of valid ips is";
    let at = message.to_ascii_lowercase().find(MARKER)? + MARKER.len();
    let rest = message.get(at..)?;
    let mut out = Vec::new();
    for token in rest.split(|c: char| c.is_whitespace() || matches!(c, ',' | '[' | ']' | '"')) {
        let token = token.trim_end_matches(['.', ';']);
        if token.is_empty() || token.eq_ignore_ascii_case("cidr") {
            continue;
        }
        match token.parse::<Cidr>() {
            Ok(c) => out.push(c),
            Err(_) => break,
        }
    }
    (!out.is_empty()).then_some(out)
}

/// `networking.podSubnet` and `networking.serviceSubnet` of a kubeadm
/// ClusterConfiguration (each may list several, comma-separated).
pub fn kubeadm_networking(text: &str) -> (Vec<Cidr>, Vec<Cidr>) {
    let Ok(doc) = serde_yaml_ng::from_str::<Value>(text) else {
        return (Vec::new(), Vec::new());
    };
    let list = |key: &str| {
        doc["networking"][key]
            .as_str()
            .and_then(|s| Cidr::parse_list(s).ok())
            .unwrap_or_default()
    };
    (list("podSubnet"), list("serviceSubnet"))
}

/// `clusterCIDR` of a kube-proxy configuration (`config.conf`).
pub fn kube_proxy_cluster_cidr(text: &str) -> Vec<Cidr> {
    serde_yaml_ng::from_str::<Value>(text)
        .ok()
        .and_then(|doc| doc["clusterCIDR"].as_str().map(str::to_string))
        .filter(|s| !s.trim().is_empty())
        .and_then(|s| Cidr::parse_list(&s).ok())
        .unwrap_or_default()
}

/// Per address family, the smallest CIDR containing every one of `cidrs`
/// (IPv4 first).
pub fn covering(cidrs: &[Cidr]) -> Vec<Cidr> {
    let mut out = Vec::new();
    for v4 in [true, false] {
        let family: Vec<&Cidr> = cidrs.iter().filter(|c| c.is_ipv4() == v4).collect();
        let Some(first) = family.first() else {
            continue;
        };
        let bits: u8 = if v4 { 32 } else { 128 };
        let value = |ip: IpAddr| -> u128 {
            match ip {
                IpAddr::V4(a) => u128::from(u32::from(a)),
                IpAddr::V6(a) => u128::from(a),
            }
        };
        let base = value(first.addr());
        let mut prefix = family.iter().map(|c| c.prefix_len()).min().unwrap_or(bits);
        for c in &family {
            let differing = base ^ value(c.addr());
            let common = (differing.leading_zeros() - (128 - u32::from(bits))) as u8;
            prefix = prefix.min(common);
        }
        let mask = if prefix == 0 {
            0
        } else {
            (u128::MAX << (bits - prefix)) & (u128::MAX >> (128 - u32::from(bits)))
        };
        let network = base & mask;
        let addr = if v4 {
            IpAddr::V4((network as u32).into())
        } else {
            IpAddr::V6(network.into())
        };
        if let Ok(c) = Cidr::new(addr, prefix) {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests;
