//! ServiceAccount tokens by TokenRequest (`serviceaccounts/<name>/token`).

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, PostParams};

use crate::{Error, Result};

/// Asked-for lifetime when the caller names none: a year. Kubernetes caps
/// it at its own maximum; ferry apiserver's tokens do not expire.
const DEFAULT_SECONDS: i64 = 365 * 24 * 3600;

/// A token for ServiceAccount `name`, valid for `seconds` (default a year).
pub async fn request_token(
    sas: &Api<ServiceAccount>,
    name: &str,
    seconds: Option<i64>,
) -> Result<String> {
    let req = TokenRequest {
        spec: TokenRequestSpec {
            audiences: Vec::new(),
            expiration_seconds: Some(seconds.unwrap_or(DEFAULT_SECONDS)),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer = sas
        .create_token_request(name, &PostParams::default(), &req)
        .await
        .map_err(|e| Error::kube(format!("requesting a token for serviceaccount {name}"), e))?;
    answer
        .status
        .map(|s| s.token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::NoToken {
            service_account: name.to_string(),
        })
}
