//! The CustomResourceDefinitions of every resource in this crate, generated
//! from the Rust types, and their YAML.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use crate::{
    Cluster, ClusterProperty, Endpoint, Error, Gateway, Result, ServiceExport, ServiceImport,
};

/// Every CRD ferry installs, in a stable order: `ferry.dev` (Cluster,
/// Endpoint, Gateway, then Globalnet's), then MCS (ServiceExport, ServiceImport), then
/// ClusterProperty.
pub fn all_crds() -> Vec<CustomResourceDefinition> {
    vec![
        Cluster::crd(),
        Endpoint::crd(),
        Gateway::crd(),
        crate::ClusterGlobalEgressIP::crd(),
        crate::GlobalEgressIP::crd(),
        crate::GlobalIngressIP::crd(),
        crate::GlobalCidr::crd(),
        with_old_mcs_version(spec_optional(ServiceExport::crd())),
        with_old_mcs_version(ServiceImport::crd()),
        ClusterProperty::crd(),
    ]
}

/// An MCS CRD (generated for the storage version, `v1beta1`) that also
/// serves `v1alpha1` with the same schema, listed first as upstream does.
/// Without a `conversion` the strategy is `None`: the API server converts by
/// rewriting `apiVersion`, which is all the two versions differ in.
fn with_old_mcs_version(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    let stored = crd.spec.versions.iter().find(|v| v.storage).cloned();
    if let Some(mut old) = stored {
        old.name = crate::mcs::OLD_VERSION.to_string();
        old.storage = false;
        crd.spec.versions.insert(0, old);
    }
    crd
}

/// A CRD whose objects may have no `spec` (a ServiceExport: upstream's
/// spec is optional, and v1alpha1 ones have none).
fn spec_optional(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    for v in &mut crd.spec.versions {
        let schema = v
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut());
        if let Some(schema) = schema {
            let mut required = schema.required.take().unwrap_or_default();
            required.retain(|f| f != "spec");
            schema.required = (!required.is_empty()).then_some(required);
        }
    }
    crd
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
