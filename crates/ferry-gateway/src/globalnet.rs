//! Globalnet on the gateway: the translation the cluster's global IPs ask
//! for, kept in the nftables table `ferry-globalnet` (rendered by
//! `ferry_globalnet::rules`) while this gateway is active and its cable is
//! up. The mapping comes from the API objects the agent fills — the
//! cluster egress pool's `ClusterGlobalEgressIP`, every `GlobalEgressIP`'s
//! and every `GlobalIngressIP`'s status — and the pods they select, never
//! from this process's memory, so a standby that takes over installs the
//! same mapping at once. Egress follows Submariner's precedence: a
//! `GlobalEgressIP` with a `podSelector` over one for its whole namespace
//! over the cluster's pool (host-network pods, whose address is the
//! node's, only the cluster's).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use ferry_api::globalnet::{CLUSTER_EGRESS_NAME, SUBMARINER_CLUSTER_EGRESS_NAME};
use ferry_api::{Cidr, ClusterGlobalEgressIP, GlobalEgressIP, GlobalIngressIP};
use ferry_globalnet::rules::{self, EgressRule, Translation};
use ferry_kube::Watch;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use tokio::sync::{Notify, watch};

/// What the API says to translate, without the cable device.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mapping {
    /// The cluster egress pool's IPs.
    pub egress: Vec<Ipv4Addr>,
    /// `GlobalEgressIP`s' rules, pod-selector ones first, with the
    /// addresses of the pods they select.
    pub selected: Vec<EgressRule>,
    /// Global ingress IP → target.
    pub ingress: BTreeMap<Ipv4Addr, Ipv4Addr>,
}

impl Mapping {
    /// The full translation through `cable` for a cluster with these
    /// global and pod CIDRs.
    pub fn translation(&self, cable: &str, global: &[Cidr], pods: &[Cidr]) -> Translation {
        Translation {
            cable: cable.to_string(),
            global_cidrs: global.to_vec(),
            egress: self
                .selected
                .iter()
                .cloned()
                .chain([EgressRule {
                    owner: format!("ClusterGlobalEgressIP {CLUSTER_EGRESS_NAME}"),
                    sources: pods.to_vec(),
                    ips: self.egress.clone(),
                }])
                .collect(),
            ingress: self.ingress.clone(),
        }
    }
}

/// The IPv4 addresses of the running pods of `ns` that `selector` selects
/// (all when `None`), host-network pods aside.
fn pod_sources(
    pods: &[Pod],
    ns: &str,
    selector: Option<&ferry_apimachinery::LabelSelector>,
) -> Vec<Cidr> {
    let mut out: Vec<Cidr> = pods
        .iter()
        .filter(|p| p.namespace().as_deref() == Some(ns))
        .filter(|p| p.spec.as_ref().is_none_or(|s| s.host_network != Some(true)))
        .filter(|p| selector.is_none_or(|sel| sel.matches(p.labels())))
        .filter_map(|p| {
            p.status
                .as_ref()?
                .pod_ip
                .as_deref()?
                .parse::<Ipv4Addr>()
                .ok()
        })
        .filter_map(|ip| format!("{ip}/32").parse().ok())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Each `GlobalEgressIP` with IPs as a rule over the pods it selects:
/// those with a pod selector first, then whole namespaces (each group by
/// namespace and name). A selector the agent refused has no IPs.
fn selected_rules(namespaced: &[GlobalEgressIP], pods: &[Pod]) -> Vec<EgressRule> {
    let mut rules: Vec<(bool, String, String, EgressRule)> = namespaced
        .iter()
        .filter_map(|e| {
            let ips: Vec<Ipv4Addr> = e
                .status
                .as_ref()?
                .allocated_ips
                .iter()
                .filter_map(|ip| ip.parse().ok())
                .collect();
            let ns = e.namespace()?;
            let selector = match &e.spec.pod_selector {
                Some(sel) => Some(
                    ferry_apimachinery::label_selector_from_api(&serde_json::to_value(sel).ok()?)
                        .ok()?,
                ),
                None => None,
            };
            let rule = EgressRule {
                owner: format!("GlobalEgressIP {ns}/{}", e.name_any()),
                sources: pod_sources(pods, &ns, selector.as_ref()),
                ips,
            };
            Some((selector.is_none(), ns, e.name_any(), rule))
        })
        .collect();
    rules.sort_by(|a, b| (a.0, &a.1, &a.2).cmp(&(b.0, &b.1, &b.2)));
    rules.into_iter().map(|r| r.3).collect()
}

/// The mapping the objects describe: the counted egress object's IPs, the
/// namespaces' rules and every ingress IP with a target.
pub fn mapping(
    egress: &[ClusterGlobalEgressIP],
    namespaced: &[GlobalEgressIP],
    pods: &[Pod],
    ingress: &[GlobalIngressIP],
) -> Mapping {
    let pool = |name: &str| {
        egress
            .iter()
            .find(|e| e.name_any() == name)
            .and_then(|e| e.status.as_ref())
            .map(|s| {
                s.allocated_ips
                    .iter()
                    .filter_map(|ip| ip.parse().ok())
                    .collect::<Vec<_>>()
            })
    };
    Mapping {
        egress: pool(CLUSTER_EGRESS_NAME)
            .or_else(|| pool(SUBMARINER_CLUSTER_EGRESS_NAME))
            .unwrap_or_default(),
        selected: selected_rules(namespaced, pods),
        ingress: ingress
            .iter()
            .filter_map(|g| {
                let s = g.status.as_ref()?;
                Some((s.allocated_ip.parse().ok()?, s.target_ip.parse().ok()?))
            })
            .collect(),
    }
}

/// Watches the cluster's Globalnet objects and sends the mapping on each
/// change.
pub async fn watch_mapping(client: Client, tx: watch::Sender<Mapping>) {
    let changed = Arc::new(Notify::new());
    let (egress, w1) = watch_all::<ClusterGlobalEgressIP>(&client, &changed);
    let (ingress, w2) = watch_all::<GlobalIngressIP>(&client, &changed);
    let (namespaced, w3) = watch_all::<GlobalEgressIP>(&client, &changed);
    let (pods, w4) = watch_all::<Pod>(&client, &changed);
    let watches = futures::future::join4(w1, w2, w3, w4);
    let send = async {
        loop {
            changed.notified().await;
            send_mapping(&tx, &egress, &namespaced, &pods, &ingress);
        }
    };
    tokio::select! {
        _ = watches => {}
        () = send => {}
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

fn send_mapping(
    tx: &watch::Sender<Mapping>,
    egress: &Store<ClusterGlobalEgressIP>,
    namespaced: &Store<GlobalEgressIP>,
    pods: &Store<Pod>,
    ingress: &Store<GlobalIngressIP>,
) {
    let e: Vec<ClusterGlobalEgressIP> = egress.state().iter().map(|o| (**o).clone()).collect();
    let n: Vec<GlobalEgressIP> = namespaced.state().iter().map(|o| (**o).clone()).collect();
    let p: Vec<Pod> = pods.state().iter().map(|o| (**o).clone()).collect();
    let i: Vec<GlobalIngressIP> = ingress.state().iter().map(|o| (**o).clone()).collect();
    let m = mapping(&e, &n, &p, &i);
    tx.send_if_modified(|cur| {
        if *cur == m {
            false
        } else {
            *cur = m;
            true
        }
    });
}

/// The table as applied, so an unchanged mapping is not applied again.
#[derive(Debug, Default)]
pub struct Translator {
    applied: Option<Translation>,
}

impl Translator {
    /// Installs `t` (one atomic `nft -f` transaction) unless it is what is
    /// already there.
    pub fn apply(&mut self, t: Translation) -> crate::Result<()> {
        if self.applied.as_ref() == Some(&t) {
            return Ok(());
        }
        ferry_net::nft_apply(None, &rules::apply_script(&t))?;
        tracing::info!(
            egress = t.egress.len(),
            ingress = t.ingress.len(),
            "globalnet: translation installed"
        );
        self.applied = Some(t);
        Ok(())
    }

    /// Removes the table (present or not).
    pub fn remove(&mut self) {
        self.applied = None;
        if let Err(e) = ferry_net::nft_apply(None, &rules::delete_script()) {
            tracing::warn!("globalnet: removing table {}: {e}", rules::TABLE);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ferry_api::{GlobalEgressIPStatus, GlobalIngressIPSpec, GlobalIngressIPStatus};

    #[test]
    fn the_mapping_comes_from_the_statuses() {
        let mut e = ClusterGlobalEgressIP::new(CLUSTER_EGRESS_NAME, Default::default());
        e.status = Some(GlobalEgressIPStatus {
            conditions: vec![],
            allocated_ips: vec!["100.120.1.2".into(), "100.120.1.3".into()],
        });
        let mut other = ClusterGlobalEgressIP::new("not-counted", Default::default());
        other.status = e.status.clone();
        let mut g = GlobalIngressIP::new(
            "nginx",
            GlobalIngressIPSpec {
                target: ferry_api::globalnet::TargetType::ClusterIpService,
                service_ref: None,
                pod_ref: None,
            },
        );
        g.status = Some(GlobalIngressIPStatus {
            conditions: vec![],
            allocated_ip: "100.120.1.10".into(),
            target_ip: "100.96.0.10".into(),
        });
        let pending = GlobalIngressIP::new("pending", g.spec.clone());
        let m = mapping(&[other, e], &[], &[], &[g, pending]);
        assert_eq!(m.egress.len(), 2);
        assert_eq!(
            m.ingress,
            BTreeMap::from([(
                "100.120.1.10".parse().unwrap(),
                "100.96.0.10".parse().unwrap()
            )])
        );
        let t = m.translation(
            "ferry-wg",
            &["100.120.1.0/24".parse().unwrap()],
            &["100.64.0.0/16".parse().unwrap()],
        );
        assert!(rules::render(&t).contains("snat to 100.120.1.2-100.120.1.3"));
    }

    fn pod(ns: &str, name: &str, app: &str, ip: &str, host: bool) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": ns, "labels": {"app": app}},
            "spec": {"containers": [], "hostNetwork": host},
            "status": {"podIP": ip},
        }))
        .unwrap()
    }

    fn geip(ns: &str, name: &str, selector: Option<&str>, ip: &str) -> GlobalEgressIP {
        let mut e = GlobalEgressIP::new(
            name,
            ferry_api::GlobalEgressIPSpec {
                pod_selector: selector.map(|app| {
                    serde_json::from_value(serde_json::json!({"matchLabels": {"app": app}}))
                        .unwrap()
                }),
                ..Default::default()
            },
        );
        e.metadata.namespace = Some(ns.into());
        e.status = Some(GlobalEgressIPStatus {
            conditions: vec![],
            allocated_ips: vec![ip.into()],
        });
        e
    }

    #[test]
    fn pod_selector_rules_come_before_namespace_rules_before_the_cluster() {
        let pods = [
            pod("web", "front", "front", "100.64.1.7", false),
            pod("web", "back", "back", "100.64.1.8", false),
            pod("web", "host", "front", "198.18.0.2", true),
            pod("other", "x", "front", "100.64.1.9", false),
        ];
        let namespaced = [
            geip("web", "whole", None, "100.120.1.20"),
            geip("web", "front", Some("front"), "100.120.1.21"),
        ];
        let m = mapping(&[], &namespaced, &pods, &[]);
        let t = m.translation("ferry-wg", &[], &["100.64.0.0/16".parse().unwrap()]);
        let owners: Vec<&str> = t.egress.iter().map(|r| r.owner.as_str()).collect();
        assert_eq!(
            owners,
            [
                "GlobalEgressIP web/front",
                "GlobalEgressIP web/whole",
                "ClusterGlobalEgressIP cluster-egress.ferry.dev"
            ]
        );
        let sources = |k: usize| -> Vec<String> {
            t.egress[k]
                .sources
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert_eq!(sources(0), ["100.64.1.7/32"]);
        assert_eq!(sources(1), ["100.64.1.7/32", "100.64.1.8/32"]);
    }
}
