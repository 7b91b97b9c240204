//! Globalnet on the gateway: the translation the cluster's global IPs ask
//! for, kept in the nftables table `ferry-globalnet` (rendered by
//! `ferry_globalnet::rules`) while this gateway is active and its cable is
//! up. The mapping comes from the API objects the agent fills — the
//! cluster egress pool's `ClusterGlobalEgressIP` and every
//! `GlobalIngressIP`'s status — never from this process's memory, so a
//! standby that takes over installs the same mapping at once.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ferry_api::globalnet::{CLUSTER_EGRESS_NAME, SUBMARINER_CLUSTER_EGRESS_NAME};
use ferry_api::{Cidr, ClusterGlobalEgressIP, GlobalIngressIP};
use ferry_globalnet::rules::{self, EgressRule, Translation};
use futures::StreamExt;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, Client, ResourceExt};
use tokio::sync::watch;

/// What the API says to translate, without the cable device.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mapping {
    /// The cluster egress pool's IPs.
    pub egress: Vec<Ipv4Addr>,
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
            egress: vec![EgressRule {
                owner: format!("ClusterGlobalEgressIP {CLUSTER_EGRESS_NAME}"),
                sources: pods.to_vec(),
                ips: self.egress.clone(),
            }],
            ingress: self.ingress.clone(),
        }
    }
}

/// The mapping the objects describe: the counted egress object's IPs and
/// every ingress IP with a target.
pub fn mapping(egress: &[ClusterGlobalEgressIP], ingress: &[GlobalIngressIP]) -> Mapping {
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
    let (egress, w1) = reflector::store::<ClusterGlobalEgressIP>();
    let (ingress, w2) = reflector::store::<GlobalIngressIP>();
    let mut events = futures::stream::select_all([
        reflector(
            w1,
            watcher(Api::all(client.clone()), watcher::Config::default()),
        )
        .default_backoff()
        .map(|_| ())
        .boxed(),
        reflector(w2, watcher(Api::all(client), watcher::Config::default()))
            .default_backoff()
            .map(|_| ())
            .boxed(),
    ]);
    while events.next().await.is_some() {
        let e: Vec<ClusterGlobalEgressIP> = egress.state().iter().map(|o| (**o).clone()).collect();
        let i: Vec<GlobalIngressIP> = ingress.state().iter().map(|o| (**o).clone()).collect();
        let m = mapping(&e, &i);
        tx.send_if_modified(|cur| {
            if *cur == m {
                false
            } else {
                *cur = m;
                true
            }
        });
    }
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
            egress = ?t.egress.first().map(|r| r.ips.len()),
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
        let m = mapping(&[other, e], &[g, pending]);
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
}
