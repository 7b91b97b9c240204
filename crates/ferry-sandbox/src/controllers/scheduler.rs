//! The scheduler: binds unscheduled pods to nodes.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use super::controller::Controllers;
use super::objects::{is_terminating, map_matches};

impl Controllers {
    /// Binds unscheduled pods: nodeSelector, then fewest pods.
    pub(super) async fn schedule(&self) -> Result<(), kube::Error> {
        let nodes = self.stores.nodes.state();
        let pods = self.stores.pods.state();
        let mut load: HashMap<String, usize> = HashMap::new();
        for p in &pods {
            if let Some(n) = p.spec.as_ref().and_then(|s| s.node_name.clone()) {
                *load.entry(n).or_default() += 1;
            }
        }
        for p in pods.iter().filter(|p| {
            !is_terminating(p.as_ref()) && p.spec.as_ref().is_some_and(|s| s.node_name.is_none())
        }) {
            let selector = p
                .spec
                .as_ref()
                .and_then(|s| s.node_selector.clone())
                .unwrap_or_default();
            let best = nodes
                .iter()
                .filter(|n| {
                    !n.spec
                        .as_ref()
                        .and_then(|s| s.unschedulable)
                        .unwrap_or(false)
                        && map_matches(
                            &selector,
                            n.metadata.labels.as_ref().unwrap_or(&BTreeMap::new()),
                        )
                })
                .map(|n| n.name_any())
                .min_by_key(|n| (load.get(n).copied().unwrap_or(0), n.clone()));
            let Some(node) = best else { continue };
            let api: Api<Pod> =
                Api::namespaced(self.client.clone(), &p.namespace().unwrap_or_default());
            api.patch(
                &p.name_any(),
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"nodeName": node}})),
            )
            .await?;
            *load.entry(node).or_default() += 1;
        }
        Ok(())
    }
}
