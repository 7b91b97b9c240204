//! The agent's configuration from the `ferry-broker` Secret that `ferry
//! join` wrote.

use ferry_api::BrokerInfo;
use ferry_deploy::{BROKER_SECRET, BrokerSecret};
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::Api;

use crate::sync::AgentConfig;
use crate::{Error, Result};

/// The agent's configuration and its broker info from the `ferry-broker`
/// Secret's contents.
pub fn config_from_secret(secret: &Secret) -> Result<(AgentConfig, BrokerInfo)> {
    let s = BrokerSecret::from_secret(secret)?;
    let mut cfg = AgentConfig::new(s.cluster_id, s.cluster_cidrs, s.service_cidrs);
    cfg.broker_namespace = s.broker_info.broker_namespace.clone();
    cfg.clusterset_ip = s.broker_info.settings.clusterset_ip;
    cfg.global_cidrs = s.global_cidrs;
    cfg.network_plugin = s.network_plugin;
    Ok((cfg, s.broker_info))
}

/// Reads the agent's configuration from the `ferry-broker` Secret in `namespace`.
pub async fn load_config(local: &Client, namespace: &str) -> Result<(AgentConfig, BrokerInfo)> {
    let secrets: Api<Secret> = Api::namespaced(local.clone(), namespace);
    let s = secrets
        .get(BROKER_SECRET)
        .await
        .map_err(|e| Error::kube(format!("reading Secret {namespace}/{BROKER_SECRET}"), e))?;
    let (mut cfg, info) = config_from_secret(&s)?;
    cfg.system_namespace = namespace.into();
    Ok((cfg, info))
}
