//! `join --globalnet`: this cluster's global CIDR, checked before anything
//! changes ([`check_request`]) and then taken on the broker ([`claim`]) as a
//! `GlobalCidr` object named after the block. Creating a name that exists
//! fails, so two clusters joining at once never get the same block: the
//! loser moves on to the next free one (or, with `--globalnet-cidr`, is
//! refused naming the holder).

mod enable;

pub use enable::{EnableReport, GLOBAL_CIDRS_ANNOTATION, enable};

use ferry_api::labels::{self, CLUSTER};
use ferry_api::{BrokerInfo, Cidr, Cluster, GlobalCidr, GlobalCidrSpec};
use ferry_globalnet::Pool;
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};
use tracing::info;

use super::apply::kube_error;
use crate::{Refusal, Result};

/// What `join` asks of Globalnet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GlobalnetRequest {
    /// `--globalnet-cidr`: this block, else one from the broker's pool.
    pub cidr: Option<Cidr>,
    /// `--globalnet-cluster-size`: addresses of the block taken from the
    /// pool (default: the broker's).
    pub cluster_size: Option<u32>,
}

/// The broker's pool with this join's block size, if it has one.
pub fn pool(info: &BrokerInfo, req: &GlobalnetRequest) -> Result<Option<Pool>> {
    let Some(range) = info.settings.globalnet_cidr_range else {
        return Ok(None);
    };
    let size = req
        .cluster_size
        .or(info.settings.globalnet_cluster_size)
        .unwrap_or(ferry_api::globalnet::DEFAULT_CLUSTER_SIZE);
    Ok(Some(Pool::new(range, size)?))
}

/// Every CIDR the clusterset uses that a new global CIDR must not overlap:
/// every other cluster's pod, service and global CIDRs, and every block
/// held on the broker but this cluster's own.
pub fn taken(clusters: &[Cluster], held: &[GlobalCidr], id: &str) -> Vec<(Cidr, String)> {
    let mut out = Vec::new();
    for c in clusters.iter().filter(|c| c.spec.cluster_id != id) {
        let s = &c.spec;
        for cidr in s
            .cluster_cidrs
            .iter()
            .chain(&s.service_cidrs)
            .chain(&s.global_cidrs)
        {
            out.push((*cidr, s.cluster_id.clone()));
        }
    }
    for g in held.iter().filter(|g| g.spec.cluster_id != id) {
        out.push((g.spec.cidr, g.spec.cluster_id.clone()));
    }
    out
}

/// Refuses, before anything changes, a Globalnet join that cannot work: no
/// pool and no `--globalnet-cidr`, a block overlapping this cluster's own
/// CIDRs or one the clusterset uses, or a full pool.
pub fn check_request(
    info: &BrokerInfo,
    req: &GlobalnetRequest,
    own: &[Cidr],
    taken: &[(Cidr, String)],
) -> Result<()> {
    let pool = pool(info, req)?;
    match (req.cidr, pool) {
        (Some(cidr), _) => {
            ferry_globalnet::check_global_cidr(&cidr, own)?;
            if let Some((other, cluster)) = taken.iter().find(|(t, _)| t.overlaps(&cidr)) {
                return Err(Refusal::GlobalCidrTaken {
                    cidr,
                    other_cidr: *other,
                    other_cluster: cluster.clone(),
                }
                .into());
            }
        }
        (None, Some(pool)) => {
            let mut all: Vec<Cidr> = taken.iter().map(|(c, _)| *c).collect();
            all.extend_from_slice(own);
            pool.first_free(&all)?;
        }
        (None, None) => return Err(Refusal::NoGlobalnetPool.into()),
    }
    Ok(())
}

/// Lists the blocks held on the broker (none on a broker whose CRDs
/// predate Globalnet).
pub async fn held(broker: &Client, bns: &str) -> Result<Vec<GlobalCidr>> {
    let api: Api<GlobalCidr> = Api::namespaced(broker.clone(), bns);
    match api.list(&Default::default()).await {
        Ok(l) => Ok(l.items),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(Vec::new()),
        Err(e) => Err(kube_error("listing the Globalnet blocks on the broker", e)),
    }
}

/// Takes this cluster's block on the broker through its own `broker`
/// token and returns it: the one it already holds (a re-join), else
/// `--globalnet-cidr`, else the first free block of the pool.
pub async fn claim(
    broker: &Client,
    info: &BrokerInfo,
    id: &str,
    req: &GlobalnetRequest,
    own: &[Cidr],
    clusters: &[Cluster],
) -> Result<Cidr> {
    let bns = info.broker_namespace.as_str();
    let api: Api<GlobalCidr> = Api::namespaced(broker.clone(), bns);
    loop {
        let held = held(broker, bns).await?;
        if let Some(mine) = held.iter().find(|g| g.spec.cluster_id == id)
            && req.cidr.is_none_or(|c| c == mine.spec.cidr)
        {
            return Ok(mine.spec.cidr);
        }
        let taken = taken(clusters, &held, id);
        check_request(info, req, own, &taken)?;
        let block = match (req.cidr, pool(info, req)?) {
            (Some(c), _) => c,
            (None, Some(pool)) => {
                let mut all: Vec<Cidr> = taken.iter().map(|(c, _)| *c).collect();
                all.extend_from_slice(own);
                pool.first_free(&all)?
            }
            (None, None) => return Err(Refusal::NoGlobalnetPool.into()),
        };
        let obj = GlobalCidr {
            metadata: ObjectMeta {
                name: Some(GlobalCidr::name_for(&block)),
                namespace: Some(bns.to_string()),
                labels: Some(
                    [
                        (CLUSTER.to_string(), id.to_string()),
                        (
                            labels::APP_MANAGED_BY.to_string(),
                            labels::APP_MANAGED_BY_FERRY.to_string(),
                        ),
                    ]
                    .into(),
                ),
                ..Default::default()
            },
            spec: GlobalCidrSpec {
                cluster_id: id.to_string(),
                cidr: block,
            },
        };
        match api.create(&PostParams::default(), &obj).await {
            Ok(_) => {
                info!(cluster = id, %block, "took the Globalnet block");
                return Ok(block);
            }
            // Another cluster took it a moment ago: look again.
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => {
                return Err(kube_error(
                    format!("taking Globalnet block {block} on the broker"),
                    e,
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn c(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    fn info(range: Option<&str>) -> BrokerInfo {
        let mut i = BrokerInfo::new("https://b:6443", "ca", "tok", &[1; 32]);
        i.settings.globalnet = range.is_some();
        i.settings.globalnet_cidr_range = range.map(c);
        i.settings.globalnet_cluster_size = Some(256);
        i
    }

    fn cluster(id: &str, pods: &str, global: &[&str]) -> Cluster {
        Cluster::new(
            id,
            ferry_api::ClusterSpec {
                cluster_id: id.into(),
                cluster_cidrs: vec![c(pods)],
                service_cidrs: vec![],
                global_cidrs: global.iter().map(|g| c(g)).collect(),
                network_plugin: None,
            },
        )
    }

    #[test]
    fn a_block_held_by_another_cluster_is_refused_naming_it() {
        let clusters = [cluster("east", "100.64.0.0/16", &["100.120.0.0/24"])];
        let taken = taken(&clusters, &[], "west");
        let req = GlobalnetRequest {
            cidr: Some(c("100.120.0.0/25")),
            cluster_size: None,
        };
        let e = check_request(&info(None), &req, &[c("100.64.0.0/16")], &taken)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "global CIDR 100.120.0.0/25 overlaps CIDR 100.120.0.0/24 of cluster \"east\""
        );
    }

    #[test]
    fn a_global_cidr_inside_the_clusters_own_is_refused_with_both() {
        let req = GlobalnetRequest {
            cidr: Some(c("100.64.7.0/24")),
            cluster_size: None,
        };
        let e = check_request(&info(None), &req, &[c("100.64.0.0/16")], &[])
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "global CIDR 100.64.7.0/24 overlaps this cluster's CIDR 100.64.0.0/16"
        );
    }

    #[test]
    fn without_a_pool_a_cidr_must_be_given() {
        let e = check_request(&info(None), &GlobalnetRequest::default(), &[], &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("no Globalnet pool"), "{e}");
        check_request(
            &info(Some("100.120.0.0/16")),
            &GlobalnetRequest::default(),
            &[],
            &[],
        )
        .unwrap();
    }

    #[test]
    fn a_full_pool_and_a_block_larger_than_the_pool_are_refused_with_numbers() {
        let full = [
            (c("100.120.0.0/24"), "a".to_string()),
            (c("100.120.1.0/24"), "b".to_string()),
        ];
        let e = check_request(
            &info(Some("100.120.0.0/23")),
            &GlobalnetRequest::default(),
            &[],
            &full,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("all 2 blocks of 256 addresses are taken"), "{e}");
        let big = GlobalnetRequest {
            cidr: None,
            cluster_size: Some(1024),
        };
        let e = check_request(&info(Some("100.120.0.0/23")), &big, &[], &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("has 512 addresses, fewer than one cluster's 1024"),
            "{e}"
        );
    }
}
