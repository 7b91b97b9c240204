//! Reading kubeconfigs: the file itself, and the API endpoint of its
//! current context.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kube::config::Kubeconfig;
use serde_json::Value;

use crate::{ClientFor, Error, Result};

/// Reads a kubeconfig (the given file, else `$KUBECONFIG`, else
/// `~/.kube/config`).
pub fn read_kubeconfig(path: Option<&Path>) -> Result<Kubeconfig> {
    let kc = match path {
        Some(p) => Kubeconfig::read_from(p),
        None => Kubeconfig::read(),
    };
    kc.map_err(|e| {
        let api = path.map_or(ClientFor::DefaultKubeconfig, |p| {
            ClientFor::KubeconfigFile(p.to_path_buf())
        });
        Error::client(api, e)
    })
}

/// Where a kubeconfig's current context points, and how it authenticates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiEndpoint {
    /// The API server URL.
    pub server: String,
    /// The CA bundle (PEM) that signs the server's certificate.
    pub ca_pem: String,
    /// The user's bearer token, if it has one.
    pub token: Option<String>,
}

/// Server URL, CA bundle (PEM) and bearer token of a kubeconfig's current
/// context (the first context when none is current).
pub fn kubeconfig_endpoint(kc: &Kubeconfig) -> Result<ApiEndpoint> {
    let bad = |s: String| Error::KubeconfigContents(s);
    let v = serde_json::to_value(kc).map_err(|e| bad(e.to_string()))?;
    let ctx_name = v["current-context"].as_str().unwrap_or_default();
    let contexts = v["contexts"].as_array().cloned().unwrap_or_default();
    let ctx = contexts
        .iter()
        .find(|c| c["name"] == ctx_name)
        .or(contexts.first())
        .ok_or_else(|| bad("the kubeconfig has no context".into()))?;
    let find = |list: &str, name: &Value| {
        v[list]
            .as_array()
            .and_then(|l| l.iter().find(|e| &e["name"] == name).cloned())
            .unwrap_or(Value::Null)
    };
    let cluster = find("clusters", &ctx["context"]["cluster"]);
    let user = find("users", &ctx["context"]["user"]);
    let server = cluster["cluster"]["server"]
        .as_str()
        .ok_or_else(|| bad("the kubeconfig's cluster has no server".into()))?
        .to_string();
    let ca_pem = if let Some(data) = cluster["cluster"]["certificate-authority-data"].as_str() {
        let pem = STANDARD
            .decode(data.trim())
            .map_err(|e| bad(format!("certificate-authority-data: {e}")))?;
        String::from_utf8_lossy(&pem).into_owned()
    } else if let Some(file) = cluster["cluster"]["certificate-authority"].as_str() {
        std::fs::read_to_string(file)
            .map_err(|e| bad(format!("reading certificate-authority {file}: {e}")))?
    } else {
        return Err(bad(
            "the kubeconfig's cluster has no certificate authority; the broker needs one".into(),
        ));
    };
    let token = user["user"]["token"].as_str().map(str::to_string);
    Ok(ApiEndpoint {
        server,
        ca_pem,
        token,
    })
}

#[cfg(test)]
mod tests;
