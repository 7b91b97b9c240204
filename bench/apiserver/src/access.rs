//! How to reach a running `ferry apiserver`: its URL, CA and token, read
//! from the `admin.kubeconfig` it writes. Shared by the process guards
//! (`procs`) and the HTTP clients (`clients`); it knows nothing of either.

use std::path::Path;

use anyhow::{Context, Result};
use base64::Engine;
use serde::Deserialize;

/// Where ferry listens and how to authenticate to it, from `admin.kubeconfig`.
#[derive(Debug, Clone)]
pub struct FerryAccess {
    pub url: String,
    pub ca_pem: Vec<u8>,
    pub token: String,
}

#[derive(Deserialize)]
struct Kubeconfig {
    clusters: Vec<NamedCluster>,
    users: Vec<NamedUser>,
}
#[derive(Deserialize)]
struct NamedCluster {
    cluster: ClusterEntry,
}
#[derive(Deserialize)]
struct ClusterEntry {
    server: String,
    #[serde(rename = "certificate-authority-data")]
    ca_data: String,
}
#[derive(Deserialize)]
struct NamedUser {
    user: UserEntry,
}
#[derive(Deserialize)]
struct UserEntry {
    token: String,
}

/// Reads the server's URL, CA and admin token from `path`.
pub fn read_kubeconfig(path: &Path) -> Result<FerryAccess> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let kc: Kubeconfig =
        serde_yaml_ng::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let cluster = kc
        .clusters
        .into_iter()
        .next()
        .context("the kubeconfig names no cluster")?
        .cluster;
    let user = kc
        .users
        .into_iter()
        .next()
        .context("the kubeconfig names no user")?
        .user;
    let ca_pem = base64::engine::general_purpose::STANDARD
        .decode(cluster.ca_data.trim())
        .context("decoding certificate-authority-data")?;
    Ok(FerryAccess {
        url: cluster.server,
        ca_pem,
        token: user.token,
    })
}
