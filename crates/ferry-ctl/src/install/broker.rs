//! `ferry deploy-broker`: the broker's namespace, CRDs and RBAC, its cable
//! key, and the `broker-info.ferry` that `join` takes.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ferry_api::BrokerInfo;
use ferry_api::broker_info::CABLE_PSK_LEN;
use ferry_api::labels;
use ferry_deploy::BROKER_JOINER;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::Client;
use kube::api::Api;
use kube::config::Kubeconfig;
use serde_json::json;
use tracing::warn;

use super::apply::{apply_value, is_ferry_apiserver, kube_error};
use crate::Result;

/// Secret in the broker namespace holding the cables' pre-shared key, so a
/// second `deploy-broker` keeps it.
pub const PSK_SECRET: &str = "ferry-cable-psk";

/// Options of [`deploy_broker`].
#[derive(Clone, Debug)]
pub struct DeployBrokerOptions {
    /// The broker namespace.
    pub namespace: String,
    /// A joiner token minted out of band (`ferry apiserver` data directory);
    /// `None`: use a ServiceAccount token on Kubernetes, or the kubeconfig's
    /// own token on `ferry apiserver`.
    pub joiner_token: Option<String>,
}

/// Deploys the broker through an admin `client` whose kubeconfig is `kc`,
/// and returns the `broker-info.ferry` to hand to `join`. Re-runnable: the
/// cable key is kept in the broker namespace and reused.
pub async fn deploy_broker(
    client: &Client,
    kc: &Kubeconfig,
    opts: &DeployBrokerOptions,
) -> Result<BrokerInfo> {
    let endpoint = ferry_kube::kubeconfig_endpoint(kc)?;
    let ferry = is_ferry_apiserver(client).await?;
    let objects = ferry_deploy::broker_manifests(&opts.namespace)?;
    for obj in &objects {
        let kind = obj["kind"].as_str().unwrap_or_default();
        if ferry && !matches!(kind, "CustomResourceDefinition" | "Namespace") {
            continue; // ferry apiserver enforces the cluster scoping itself
        }
        apply_value(client, obj).await?;
    }
    let psk = cable_key(client, &opts.namespace).await?;
    let token = match (&opts.joiner_token, ferry) {
        (Some(t), _) => t.clone(),
        (None, true) => {
            warn!(
                "no joiner token (pass --data-dir of the ferry apiserver to mint one); broker-info.ferry will carry the kubeconfig's admin token"
            );
            endpoint.token.ok_or_else(|| {
                ferry_kube::Error::KubeconfigContents(
                    "the kubeconfig has no bearer token to hand to join".into(),
                )
            })?
        }
        (None, false) => {
            let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), &opts.namespace);
            ferry_kube::request_token(&sas, BROKER_JOINER, None).await?
        }
    };
    let mut info = BrokerInfo::new(endpoint.server, endpoint.ca_pem, token, &psk);
    info.broker_namespace = opts.namespace.clone();
    info.validate()?;
    Ok(info)
}

/// The cables' pre-shared key: the one kept in `namespace`, else a new one
/// (then kept there).
async fn cable_key(client: &Client, namespace: &str) -> Result<[u8; CABLE_PSK_LEN]> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let kept = secrets
        .get_opt(PSK_SECRET)
        .await
        .map_err(|e| kube_error("reading the cable key", e))?
        .and_then(|s| s.data)
        .and_then(|d| d.get("psk").cloned());
    if let Some(bytes) = kept
        && bytes.0.len() == CABLE_PSK_LEN
    {
        let mut k = [0u8; CABLE_PSK_LEN];
        k.copy_from_slice(&bytes.0);
        return Ok(k);
    }
    let mut k = [0u8; CABLE_PSK_LEN];
    rand::fill(&mut k);
    apply_value(
        client,
        &json!({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": PSK_SECRET, "namespace": namespace,
                "labels": {labels::APP_MANAGED_BY: labels::APP_MANAGED_BY_FERRY}},
            "data": {"psk": STANDARD.encode(k)},
        }),
    )
    .await?;
    Ok(k)
}
