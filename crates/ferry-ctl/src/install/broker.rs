//! `ferry deploy-broker`: the broker's namespace, CRDs and RBAC, its cable
//! key, and the `broker-info.ferry` that `join` takes.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ferry_api::broker_info::CABLE_PSK_LEN;
use ferry_api::labels;
use ferry_api::{BrokerInfo, Components};
use ferry_deploy::BROKER_JOINER;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::Client;
use kube::api::Api;
use kube::config::Kubeconfig;
use serde_json::json;

use super::apply::{apply_value, is_ferry_apiserver, kube_error};
use crate::{Refusal, Result};

/// Secret in the broker namespace holding the cables' pre-shared key, so a
/// second `deploy-broker` keeps it.
pub const PSK_SECRET: &str = "ferry-cable-psk";

/// Options of [`deploy_broker`].
#[derive(Clone, Debug)]
pub struct DeployBrokerOptions {
    /// The broker namespace.
    pub namespace: String,
    /// A joiner token minted out of band (`ferry apiserver token create
    /// --joiner`); `None`: a TokenRequest token of the broker's
    /// `ferry-joiner` ServiceAccount (Kubernetes and `ferry apiserver` alike).
    pub joiner_token: Option<String>,
    /// The cables' pre-shared key to use (`--ipsec-psk-from`); `None`: the
    /// one kept on the broker, else a new one.
    pub psk: Option<[u8; CABLE_PSK_LEN]>,
    /// Which parts `join` deploys.
    pub components: Components,
}

impl Default for DeployBrokerOptions {
    fn default() -> Self {
        Self {
            namespace: labels::BROKER_NAMESPACE.to_string(),
            joiner_token: None,
            psk: None,
            components: Components::default(),
        }
    }
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
        // ferry apiserver enforces the cluster scoping itself; it needs only
        // the joiner ServiceAccount, whose label makes its tokens the joiner's.
        if ferry
            && !matches!(
                kind,
                "CustomResourceDefinition" | "Namespace" | "ServiceAccount"
            )
        {
            continue;
        }
        apply_value(client, obj).await?;
    }
    let psk = cable_key(client, &opts.namespace, opts.psk).await?;
    let token = match &opts.joiner_token {
        Some(t) => t.clone(),
        None => joiner_token(client, &opts.namespace, &endpoint.server).await?,
    };
    if endpoint.token.as_deref() == Some(token.as_str()) {
        return Err(Refusal::NoJoinerToken {
            url: endpoint.server,
            reason: "the token minted is the kubeconfig's own (admin) token".into(),
        }
        .into());
    }
    let mut info = BrokerInfo::new(endpoint.server, endpoint.ca_pem, token, &psk);
    info.broker_namespace = opts.namespace.clone();
    info.settings.components = opts.components;
    info.validate()?;
    Ok(info)
}

/// A TokenRequest token of the `ferry-joiner` ServiceAccount in `namespace`;
/// the broker refusing one is a [`Refusal::NoJoinerToken`] with its reason.
async fn joiner_token(client: &Client, namespace: &str, url: &str) -> Result<String> {
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    ferry_kube::request_token(&sas, BROKER_JOINER, None)
        .await
        .map_err(|e| {
            let reason = match &e {
                ferry_kube::Error::Kube { source, .. } => match source.as_ref() {
                    kube::Error::Api(s) => format!(
                        "TokenRequest for serviceaccount {BROKER_JOINER}: {} ({})",
                        s.message, s.code
                    ),
                    other => other.to_string(),
                },
                other => other.to_string(),
            };
            Refusal::NoJoinerToken {
                url: url.to_string(),
                reason,
            }
            .into()
        })
}

/// The cables' pre-shared key: `given` (then kept in `namespace`), else the
/// one kept there, else a new one (then kept there).
async fn cable_key(
    client: &Client,
    namespace: &str,
    given: Option<[u8; CABLE_PSK_LEN]>,
) -> Result<[u8; CABLE_PSK_LEN]> {
    if let Some(k) = given {
        keep_cable_key(client, namespace, &k).await?;
        return Ok(k);
    }
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
    keep_cable_key(client, namespace, &k).await?;
    Ok(k)
}

async fn keep_cable_key(client: &Client, namespace: &str, k: &[u8; CABLE_PSK_LEN]) -> Result<()> {
    apply_value(
        client,
        &json!({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": PSK_SECRET, "namespace": namespace,
                "labels": {labels::APP_MANAGED_BY: labels::APP_MANAGED_BY_FERRY}},
            "data": {"psk": STANDARD.encode(k)},
        }),
    )
    .await
}
