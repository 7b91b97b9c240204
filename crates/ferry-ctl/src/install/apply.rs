//! What `deploy-broker` and `join` share: server-side apply of generated
//! objects, and telling a ferry apiserver from Kubernetes.

use std::time::Duration;

use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::Value;

use crate::{Error, Result};

/// Field manager of what `join` and `deploy-broker` apply.
const FIELD_MANAGER: &str = "ferry";

/// How often, and how far apart, an apply refused for a passing reason is
/// retried (10 s in all).
const APPLY_ATTEMPTS: u32 = 40;
const APPLY_RETRY: Duration = Duration::from_millis(250);

/// A failed call to a Kubernetes API, with what was being done.
pub(super) fn kube_error(action: impl Into<String>, source: kube::Error) -> Error {
    Error::Kube {
        action: action.into(),
        source: Box::new(source),
    }
}

/// Whether the API server is a `ferry apiserver`.
pub async fn is_ferry_apiserver(client: &Client) -> Result<bool> {
    let v = client
        .apiserver_version()
        .await
        .map_err(|e| kube_error("reading the API server version", e))?;
    Ok(v.git_version.contains("-ferry"))
}

fn plural(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    // A vowel before the y keeps it: gateway → gateways, policy → policies.
    let vowel_y =
        lower.len() >= 2 && matches!(lower.as_bytes()[lower.len() - 2], b'a' | b'e' | b'o' | b'u');
    if !vowel_y && let Some(stem) = lower.strip_suffix('y') {
        format!("{stem}ies")
    } else {
        format!("{lower}s")
    }
}

/// Server-side applies one object given as JSON (apiVersion, kind, metadata).
pub async fn apply_value(client: &Client, obj: &Value) -> Result<()> {
    let api_version = obj["apiVersion"].as_str().unwrap_or_default();
    let kind = obj["kind"].as_str().unwrap_or_default();
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let ar = ApiResource::from_gvk_with_plural(&gvk, &plural(kind));
    let api: Api<DynamicObject> = match obj["metadata"]["namespace"].as_str() {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    };
    let pp = PatchParams::apply(FIELD_MANAGER).force();
    // A custom resource may be refused for a moment while its CRD is being
    // established on a real cluster: retry briefly.
    let mut attempt = 0;
    loop {
        match api.patch(name, &pp, &Patch::Apply(obj)).await {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 && attempt < APPLY_ATTEMPTS => {
                attempt += 1;
                tokio::time::sleep(APPLY_RETRY).await;
            }
            // Someone created it between the server's lookup and its create
            // (e.g. the agent this join just started): apply again, now as
            // an update.
            Err(kube::Error::Api(s)) if s.reason == "AlreadyExists" && attempt < APPLY_ATTEMPTS => {
                attempt += 1;
            }
            Err(e) => return Err(kube_error(format!("applying {kind} {name}"), e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals() {
        assert_eq!(plural("ClusterProperty"), "clusterproperties");
        assert_eq!(
            plural("ValidatingAdmissionPolicy"),
            "validatingadmissionpolicies"
        );
        assert_eq!(plural("EndpointSlice"), "endpointslices");
        assert_eq!(plural("Endpoint"), "endpoints");
        assert_eq!(plural("Gateway"), "gateways");
    }
}
