//! The CustomResourceDefinitions of every resource in this crate, generated
//! from the Rust types, and their YAML.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use crate::{
    Cluster, ClusterProperty, Endpoint, Error, Gateway, Result, ServiceExport, ServiceImport,
};

/// Every CRD ferry installs, in a stable order: `ferry.dev` (Cluster,
/// Endpoint, Gateway), then MCS (ServiceExport, ServiceImport), then
/// ClusterProperty.
pub fn all_crds() -> Vec<CustomResourceDefinition> {
    vec![
        Cluster::crd(),
        Endpoint::crd(),
        Gateway::crd(),
        ServiceExport::crd(),
        ServiceImport::crd(),
        ClusterProperty::crd(),
    ]
}

/// One CRD as a YAML document (no `---` marker).
pub fn crd_yaml(crd: &CustomResourceDefinition) -> Result<String> {
    serde_yaml_ng::to_string(crd).map_err(|e| Error::Serialize {
        what: format!(
            "CRD {}",
            crd.metadata.name.as_deref().unwrap_or("<unnamed>")
        ),
        reason: e.to_string(),
    })
}

/// [`all_crds`] as one multi-document YAML stream, each document starting
/// with a `---` line; suitable for `kubectl apply -f -`.
pub fn all_crds_yaml() -> Result<String> {
    let mut out = String::new();
    for crd in all_crds() {
        out.push_str("---\n");
        out.push_str(&crd_yaml(&crd)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
