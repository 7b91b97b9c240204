//! `ferry recover-broker-info`: rebuilding `broker-info.ferry` from a joined
//! cluster, when the file is lost. The broker's address, CA, namespace,
//! domain, cable key and shared settings come from the agent's `ferry-broker`
//! Secret; the joiner credential from the `ferry-joiner` Secret `join` keeps
//! beside it (the agent's own token is scoped to its cluster and could not
//! join another).

use ferry_api::BrokerInfo;
use ferry_api::labels::SYSTEM_NAMESPACE;
use ferry_deploy::{BROKER_SECRET, BrokerSecret, JOINER_SECRET, joiner_secret_keys};
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::Api;

use super::apply::kube_error;
use crate::{Error, Result};

/// The `broker-info.ferry` the cluster behind `local` joined with (its
/// joiner credential included), and the cluster's id.
pub async fn recover_broker_info(local: &Client) -> Result<(BrokerInfo, String)> {
    let secrets: Api<Secret> = Api::namespaced(local.clone(), SYSTEM_NAMESPACE);
    let broker = secrets
        .get_opt(BROKER_SECRET)
        .await
        .map_err(|e| {
            kube_error(
                format!("reading Secret {SYSTEM_NAMESPACE}/{BROKER_SECRET}"),
                e,
            )
        })?
        .ok_or_else(|| Error::NotJoined {
            what: "this cluster".into(),
            detail: format!("there is no Secret {SYSTEM_NAMESPACE}/{BROKER_SECRET}"),
        })?;
    let broker = BrokerSecret::from_secret(&broker).map_err(|e| Error::BrokerSecret {
        namespace: SYSTEM_NAMESPACE.into(),
        name: BROKER_SECRET.into(),
        reason: e.to_string(),
    })?;
    let joiner = secrets.get_opt(JOINER_SECRET).await.map_err(|e| {
        kube_error(
            format!("reading Secret {SYSTEM_NAMESPACE}/{JOINER_SECRET}"),
            e,
        )
    })?;
    let token = joiner
        .as_ref()
        .and_then(|s| s.data.as_ref()?.get(joiner_secret_keys::TOKEN))
        .map(|t| String::from_utf8_lossy(&t.0).trim().to_string())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::BrokerSecret {
            namespace: SYSTEM_NAMESPACE.into(),
            name: JOINER_SECRET.into(),
            reason: "it is missing or has no token (the cluster joined with an older ferry)".into(),
        })?;
    let mut info = broker.broker_info;
    info.token = token;
    info.validate()?;
    Ok((info, broker.cluster_id))
}
