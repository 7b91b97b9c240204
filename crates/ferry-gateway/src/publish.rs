//! What the gateway writes to its cluster's API: the cluster's `Endpoint`
//! (named after the cluster, replaced in place by whichever gateway is
//! active, copied to the broker by `ferry agent`) and this node's `Gateway`
//! with its HA role and connections.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ferry_api::labels::{APP_MANAGED_BY, APP_MANAGED_BY_FERRY, CLUSTER};
use ferry_api::{CableDriver, Cidr, Endpoint, EndpointSpec, Gateway, GatewaySpec, GatewayStatus};
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use crate::{Error, Result};

/// Field manager of every gateway write.
const MANAGER: &str = "ferry-gateway";

/// The Endpoint this gateway publishes while active.
#[derive(Clone, Debug)]
pub struct LocalEndpoint {
    /// The object's name: the cluster id, or with active-active gateways
    /// `<cluster id>-<node>` (see [`endpoint_name`]).
    pub name: String,
    pub cluster_id: String,
    pub hostname: String,
    pub driver: CableDriver,
    pub private_ip: IpAddr,
    pub public_ip: IpAddr,
    pub subnets: Vec<Cidr>,
    pub backend_config: BTreeMap<String, String>,
    pub health_check_ip: IpAddr,
}

/// Creates or replaces the cluster's Endpoint.
pub async fn endpoint(api: &Api<Endpoint>, e: &LocalEndpoint) -> Result<()> {
    let spec = EndpointSpec {
        cluster_id: e.cluster_id.clone(),
        hostname: e.hostname.clone(),
        cable_driver: e.driver,
        public_ip: Some(e.public_ip),
        private_ip: e.private_ip,
        subnets: e.subnets.clone(),
        backend_config: e.backend_config.clone(),
        health_check_ip: Some(e.health_check_ip),
    };
    let body = json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "Endpoint",
        "metadata": {
            "name": e.name,
            "labels": {CLUSTER: e.cluster_id, APP_MANAGED_BY: APP_MANAGED_BY_FERRY},
        },
        "spec": spec,
    });
    api.patch(
        &e.name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(body),
    )
    .await
    .map(|_| ())
    .map_err(|err| Error::kube(format!("publishing Endpoint {}", e.name), err))
}

/// The name of the Endpoint this gateway publishes: the cluster's, replaced
/// in place by whichever gateway holds the Lease, or with active-active
/// gateways one per gateway node.
pub fn endpoint_name(cluster_id: &str, node: &str, active_active: bool) -> String {
    if active_active {
        format!("{cluster_id}-{node}")
    } else {
        cluster_id.to_string()
    }
}

/// Deletes Endpoint `name` (an active-active gateway's own, when it stops:
/// the other gateways and the route agents stop sending to it at once);
/// one already gone is fine.
pub async fn withdraw_endpoint(api: &Api<Endpoint>, name: &str) -> Result<()> {
    match api.delete(name, &Default::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(err) => Err(Error::kube(format!("deleting Endpoint {name}"), err)),
    }
}

/// Makes sure this node's Gateway object exists.
pub async fn gateway_object(api: &Api<Gateway>, node: &str, cluster_id: &str) -> Result<()> {
    let body = json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "Gateway",
        "metadata": {
            "name": node,
            "labels": {CLUSTER: cluster_id, APP_MANAGED_BY: APP_MANAGED_BY_FERRY},
        },
        "spec": GatewaySpec { cluster_id: cluster_id.into(), hostname: node.into() },
    });
    api.patch(
        node,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(body),
    )
    .await
    .map(|_| ())
    .map_err(|e| Error::kube(format!("creating Gateway {node}"), e))
}

/// Replaces the Gateway's status (a merge patch of the whole status: lists
/// are replaced, so vanished connections go away).
pub async fn gateway_status(api: &Api<Gateway>, node: &str, status: &GatewayStatus) -> Result<()> {
    let mut s = serde_json::to_value(status).unwrap_or_default();
    // Merge patch: an absent field keeps its old value, so say null.
    for key in ["localEndpoint", "statusFailure", "traffic"] {
        if s.get(key).is_none() {
            s[key] = serde_json::Value::Null;
        }
    }
    api.patch_status(
        node,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": s})),
    )
    .await
    .map(|_| ())
    .map_err(|e| Error::kube(format!("writing Gateway {node} status"), e))
}
