//! `ferry globalnet enable`: Globalnet switched on in a cluster that has
//! already joined, without a re-join and without touching the others. The
//! block is taken on the broker first (the only step that can be refused);
//! then the broker Secret, the published `Cluster` and a restart of the
//! agent and the gateways, which read the global CIDR when they start.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ferry_api::labels::SYSTEM_NAMESPACE;
use ferry_api::{Cidr, Cluster};
use ferry_deploy::{BROKER_SECRET, BrokerSecret, secret_keys};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::{GlobalnetRequest, claim, held, taken};
use crate::install::apply::kube_error;
use crate::{Error, Result};

/// The pod-template annotation whose change restarts the agent and the
/// gateways with Globalnet on (the DaemonSet/Deployment controllers roll
/// pods whose template changed).
pub const GLOBAL_CIDRS_ANNOTATION: &str = "ferry.dev/global-cidrs";

/// What [`enable`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnableReport {
    /// The cluster's id.
    pub cluster_id: String,
    /// Its global CIDR.
    pub cidr: Cidr,
    /// Globalnet was already on (nothing changed).
    pub already_on: bool,
}

/// Switches Globalnet on in the joined cluster behind `local`; idempotent.
pub async fn enable(local: &Client, req: &GlobalnetRequest) -> Result<EnableReport> {
    let secrets: Api<Secret> = Api::namespaced(local.clone(), SYSTEM_NAMESPACE);
    let what = format!("Secret {SYSTEM_NAMESPACE}/{BROKER_SECRET}");
    let secret = secrets
        .get_opt(BROKER_SECRET)
        .await
        .map_err(|e| kube_error(format!("reading {what}"), e))?
        .ok_or_else(|| Error::NotJoined {
            what: "this cluster".into(),
            detail: format!("there is no {what}; join it first (`ferry join … --globalnet`)"),
        })?;
    let joined = BrokerSecret::from_secret(&secret).map_err(|e| Error::BrokerSecret {
        namespace: SYSTEM_NAMESPACE.into(),
        name: BROKER_SECRET.into(),
        reason: e.to_string(),
    })?;
    let id = joined.cluster_id.clone();
    if let Some(cidr) = joined.global_cidrs.first() {
        let asked_other = req.cidr.is_some_and(|c| c != *cidr);
        if !asked_other {
            return Ok(EnableReport {
                cluster_id: id,
                cidr: *cidr,
                already_on: true,
            });
        }
        return Err(Error::Usage(format!(
            "Globalnet is already on in cluster {id:?} with global CIDR {cidr}; \
             a different --globalnet-cidr needs a re-join"
        )));
    }
    let info = &joined.broker_info;
    let broker = ferry_kube::broker_client(info, &info.token).await?;
    let bns = info.broker_namespace.as_str();
    let clusters: Api<Cluster> = Api::namespaced(broker.clone(), bns);
    let existing = clusters
        .list(&Default::default())
        .await
        .map_err(|e| kube_error("listing the clusters on the broker", e))?
        .items;
    let own: Vec<Cidr> = joined
        .cluster_cidrs
        .iter()
        .chain(&joined.service_cidrs)
        .copied()
        .collect();
    // Refused here, before anything changes.
    super::check_request(
        info,
        req,
        &own,
        &taken(&existing, &held(&broker, bns).await?, &id),
    )?;
    let cidr = claim(&broker, info, &id, req, &own, &existing).await?;

    let data = json!({"data": {secret_keys::GLOBAL_CIDRS: STANDARD.encode(cidr.to_string())}});
    secrets
        .patch(BROKER_SECRET, &pp_merge(), &Patch::Merge(&data))
        .await
        .map_err(|e| kube_error(format!("writing the global CIDR into {what}"), e))?;
    let spec = json!({"spec": {"globalCidrs": [cidr]}});
    clusters
        .patch(&id, &pp_merge(), &Patch::Merge(&spec))
        .await
        .map_err(|e| kube_error(format!("publishing the global CIDR of Cluster {id}"), e))?;
    restart(local, &cidr).await?;
    Ok(EnableReport {
        cluster_id: id,
        cidr,
        already_on: false,
    })
}

/// A merge patch by ferry's field manager (join's server-side apply keeps
/// its own fields; it does not own the ones written here).
fn pp_merge() -> PatchParams {
    PatchParams {
        field_manager: Some("ferry-globalnet-enable".into()),
        ..Default::default()
    }
}

/// Rolls the agent and the gateways: they read the global CIDR at start.
async fn restart(local: &Client, cidr: &Cidr) -> Result<()> {
    let template = json!({"spec": {"template": {"metadata": {"annotations": {
        GLOBAL_CIDRS_ANNOTATION: cidr.to_string()}}}}});
    let deployments: Api<Deployment> = Api::namespaced(local.clone(), SYSTEM_NAMESPACE);
    deployments
        .patch("ferry-agent", &pp_merge(), &Patch::Merge(&template))
        .await
        .map_err(|e| kube_error("restarting Deployment ferry-agent", e))?;
    let daemonsets: Api<DaemonSet> = Api::namespaced(local.clone(), SYSTEM_NAMESPACE);
    match daemonsets
        .patch("ferry-gateway", &pp_merge(), &Patch::Merge(&template))
        .await
    {
        Ok(_) => Ok(()),
        // A cluster joined with service discovery only has no gateway.
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(kube_error("restarting DaemonSet ferry-gateway", e)),
    }
}
