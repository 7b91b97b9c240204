//! The pod CIDRs a CNI itself records, read when `join` discovers CIDRs:
//! kube-ovn's `Subnet`s (`ovn-default`, the pods' subnet, and `join`, the
//! nodes' `ovn0` subnet: kube-ovn's Submariner guide puts both in
//! `--clustercidr`), Calico's enabled `IPPool`s, and flannel's `Network` in
//! the `kube-flannel-cfg` ConfigMap. The parsers are pure and tested on
//! fixtures of the objects each CNI's default install creates
//! (`cni_fixtures/`); it does not configure any CNI.

use ferry_api::{Cidr, NetworkPlugin};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject};
use serde_json::Value;

/// A CNI whose datapath ferry cannot drive, and the ConfigMap its install
/// always creates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Undrivable {
    /// The CNI's name.
    pub cni: &'static str,
    /// Namespace of its ConfigMap.
    pub namespace: &'static str,
    /// Name of its ConfigMap.
    pub config_map: &'static str,
    /// That ConfigMap, as the refusal names it.
    pub evidence: &'static str,
    /// Why ferry cannot drive it.
    pub why: &'static str,
}

/// The CNIs `join` refuses unless `--cni` says otherwise.
pub const UNDRIVABLE: [Undrivable; 2] = [
    Undrivable {
        cni: "Cilium",
        namespace: "kube-system",
        config_map: "cilium-config",
        evidence: "ConfigMap kube-system/cilium-config",
        why: "its eBPF datapath routes and masquerades pod traffic outside the kernel routes and netfilter rules ferry's route agent programs",
    },
    Undrivable {
        cni: "OVN-Kubernetes",
        namespace: "ovn-kubernetes",
        config_map: "ovnkube-config",
        evidence: "ConfigMap ovn-kubernetes/ovnkube-config",
        why: "pod traffic leaves through OVN's gateway router, which SNATs it inside OVN where ferry's rules never see it",
    },
];

/// The first CNI of [`UNDRIVABLE`] whose ConfigMap the cluster has.
pub async fn undrivable(client: &Client) -> Option<Undrivable> {
    for u in UNDRIVABLE {
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), u.namespace);
        if let Ok(Some(_)) = api.get_opt(u.config_map).await {
            return Some(u);
        }
    }
    None
}

impl From<Undrivable> for crate::Refusal {
    fn from(u: Undrivable) -> Self {
        crate::Refusal::UndrivableCni {
            cni: u.cni,
            evidence: u.evidence,
            why: u.why,
        }
    }
}

/// kube-ovn's subnets `join` needs: `ovn-default` and `join` (each
/// `spec.cidrBlock`, comma-separated when dual-stack); other subnets
/// (tenants' VPCs) are left out.
pub fn kube_ovn_pod_cidrs(subnets: &[Value]) -> Vec<Cidr> {
    let mut out = Vec::new();
    for name in ["ovn-default", "join"] {
        for s in subnets.iter().filter(|s| s["metadata"]["name"] == name) {
            out.extend(
                s["spec"]["cidrBlock"]
                    .as_str()
                    .unwrap_or_default()
                    .split(',')
                    .filter_map(|c| c.trim().parse::<Cidr>().ok()),
            );
        }
    }
    out
}

/// The `spec.cidr` of every Calico IPPool not `disabled`.
pub fn calico_pod_cidrs(pools: &[Value]) -> Vec<Cidr> {
    pools
        .iter()
        .filter(|p| p["spec"]["disabled"].as_bool() != Some(true))
        .filter_map(|p| p["spec"]["cidr"].as_str()?.parse().ok())
        .collect()
}

/// `Network` (and `IPv6Network`) of flannel's `net-conf.json`.
pub fn flannel_pod_cidrs(net_conf: &str) -> Vec<Cidr> {
    let Ok(v) = serde_json::from_str::<Value>(net_conf) else {
        return Vec::new();
    };
    ["Network", "IPv6Network"]
        .iter()
        .filter_map(|k| v[*k].as_str()?.parse().ok())
        .collect()
}

async fn list_all(
    client: &Client,
    group: &str,
    kind: &str,
    plural: &str,
) -> Result<Vec<Value>, String> {
    let resource = ApiResource {
        group: group.into(),
        version: "v1".into(),
        api_version: format!("{group}/v1"),
        kind: kind.into(),
        plural: plural.into(),
    };
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    match api.list(&Default::default()).await {
        Ok(l) => Ok(l
            .items
            .into_iter()
            .map(|o| {
                let mut data = o.data;
                data["metadata"]["name"] = Value::from(o.metadata.name.unwrap_or_default());
                data
            })
            .collect()),
        Err(kube::Error::Api(s)) if s.code == 404 => Err(format!("no {plural}.{group}")),
        Err(e) => Err(e.to_string()),
    }
}

/// The CNI whose objects the cluster has and the pod CIDRs they record;
/// otherwise why each CNI was not found.
pub async fn detect(client: &Client) -> Result<(NetworkPlugin, Vec<Cidr>), Vec<String>> {
    let mut misses = Vec::new();
    match list_all(client, "kubeovn.io", "Subnet", "subnets").await {
        Ok(s) if !kube_ovn_pod_cidrs(&s).is_empty() => {
            return Ok((NetworkPlugin::KubeOvn, kube_ovn_pod_cidrs(&s)));
        }
        Ok(_) => misses.push("kube-ovn: no ovn-default or join Subnet".into()),
        Err(why) => misses.push(format!("kube-ovn: {why}")),
    }
    match list_all(client, "crd.projectcalico.org", "IPPool", "ippools").await {
        Ok(p) if !calico_pod_cidrs(&p).is_empty() => {
            return Ok((NetworkPlugin::Calico, calico_pod_cidrs(&p)));
        }
        Ok(_) => misses.push("calico: no enabled IPPool".into()),
        Err(why) => misses.push(format!("calico: {why}")),
    }
    for ns in ["kube-flannel", "kube-system"] {
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
        if let Ok(Some(cm)) = api.get_opt("kube-flannel-cfg").await {
            let text = cm
                .data
                .and_then(|mut d| d.remove("net-conf.json"))
                .unwrap_or_default();
            let cidrs = flannel_pod_cidrs(&text);
            if !cidrs.is_empty() {
                return Ok((NetworkPlugin::Flannel, cidrs));
            }
        }
    }
    misses.push("flannel: no kube-flannel-cfg ConfigMap with a Network".into());
    Err(misses)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn objects(yaml: &str) -> Vec<Value> {
        serde_yaml_ng::Deserializer::from_str(yaml)
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .collect()
    }

    fn cidrs(list: &[&str]) -> Vec<Cidr> {
        list.iter().map(|c| c.parse().unwrap()).collect()
    }

    #[test]
    fn kube_ovn_gives_ovn_default_and_join_but_not_tenant_subnets() {
        let subnets = objects(include_str!("cni_fixtures/kube-ovn-subnets.yaml"));
        assert_eq!(subnets.len(), 3);
        assert_eq!(
            kube_ovn_pod_cidrs(&subnets),
            cidrs(&["10.16.0.0/16", "100.64.0.0/16"])
        );
        let dual = objects(
            "metadata: {name: ovn-default}\nspec: {cidrBlock: '10.16.0.0/16,fd00:10:16::/64'}\n",
        );
        assert_eq!(kube_ovn_pod_cidrs(&dual).len(), 2);
    }

    #[test]
    fn calico_gives_enabled_pools() {
        let pools = objects(include_str!("cni_fixtures/calico-ippools.yaml"));
        assert_eq!(calico_pod_cidrs(&pools), cidrs(&["192.168.0.0/16"]));
    }

    #[test]
    fn flannel_gives_its_network() {
        let cm = objects(include_str!("cni_fixtures/kube-flannel-cfg.yaml")).remove(0);
        let net_conf = cm["data"]["net-conf.json"].as_str().unwrap();
        assert_eq!(flannel_pod_cidrs(net_conf), cidrs(&["10.244.0.0/16"]));
        assert!(flannel_pod_cidrs("not json").is_empty());
    }
}
