//! The ReplicaSet and DaemonSet controllers: pods from templates, so many
//! per set or one per eligible node. (Deployments act through ReplicaSets:
//! `deployments`.)

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{DaemonSet, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use super::controller::Controllers;
use super::objects::{
    controller_uid, is_terminating, map_matches, owner_ref, pod_from_template, pod_phase_done,
    pod_ready, short_hash,
};

impl Controllers {
    /// Keeps `spec.replicas` pods of each ReplicaSet's template.
    pub(super) async fn replicasets(&self) -> Result<(), kube::Error> {
        let pods = self.stores.pods.state();
        for rs in self.stores.replicasets.state() {
            if is_terminating(rs.as_ref()) {
                continue;
            }
            let uid = rs.uid().unwrap_or_default();
            let ns = rs.namespace().unwrap_or_default();
            let spec = rs.spec.clone().unwrap_or_default();
            let want = spec.replicas.unwrap_or(1).max(0) as usize;
            let template = spec.template.clone().unwrap_or_default();
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
            let owned: Vec<&Arc<Pod>> = pods
                .iter()
                .filter(|p| {
                    controller_uid(p.as_ref()).as_deref() == Some(&uid)
                        && !is_terminating(p.as_ref())
                })
                .collect();
            // Pods that ended go (and are replaced); the rest are counted.
            let mut current = HashSet::new();
            for p in &owned {
                if pod_phase_done(p) {
                    self.expect(&uid, &p.name_any(), false);
                    let _ = api.delete(&p.name_any(), &DeleteParams::default()).await;
                } else {
                    current.insert(p.name_any());
                }
            }
            let live = self.live_names(&uid, current);
            if live.len() < want {
                for _ in live.len()..want {
                    let pod = pod_from_template(
                        &template,
                        format!("{}-", rs.name_any()),
                        owner_ref(rs.as_ref()),
                        &[],
                        None,
                    );
                    let made = api.create(&PostParams::default(), &pod).await?;
                    self.expect(&uid, &made.name_any(), true);
                }
            } else if live.len() > want {
                let mut extra: Vec<&Arc<Pod>> = owned
                    .iter()
                    .copied()
                    .filter(|p| live.contains(&p.name_any()))
                    .collect();
                // Unready and newest first.
                extra.sort_by_key(|p| {
                    (
                        pod_ready(p),
                        std::cmp::Reverse(p.metadata.creation_timestamp.clone()),
                    )
                });
                for p in extra.into_iter().take(live.len() - want) {
                    self.expect(&uid, &p.name_any(), false);
                    let _ = api.delete(&p.name_any(), &DeleteParams::default()).await;
                }
            }
            let ready = owned
                .iter()
                .filter(|p| live.contains(&p.name_any()) && pod_ready(p))
                .count();
            let status = json!({
                "observedGeneration": rs.metadata.generation,
                "replicas": live.len(),
                "fullyLabeledReplicas": live.len(),
                "readyReplicas": ready,
                "availableReplicas": ready,
            });
            let old = rs.status.as_ref().map(|s| {
                json!({
                    "observedGeneration": s.observed_generation,
                    "replicas": s.replicas,
                    "fullyLabeledReplicas": s.fully_labeled_replicas.unwrap_or(0),
                    "readyReplicas": s.ready_replicas.unwrap_or(0),
                    "availableReplicas": s.available_replicas.unwrap_or(0),
                })
            });
            if old.as_ref() != Some(&status) {
                let rsapi: Api<ReplicaSet> = Api::namespaced(self.client.clone(), &ns);
                rsapi
                    .patch_status(
                        &rs.name_any(),
                        &PatchParams::default(),
                        &Patch::Merge(json!({"status": status})),
                    )
                    .await?;
            }
        }
        Ok(())
    }

    pub(super) async fn daemonsets(&self) -> Result<(), kube::Error> {
        let pods = self.stores.pods.state();
        let nodes = self.stores.nodes.state();
        for ds in self.stores.daemonsets.state() {
            if is_terminating(ds.as_ref()) {
                continue;
            }
            let uid = ds.uid().unwrap_or_default();
            let ns = ds.namespace().unwrap_or_default();
            let spec = ds.spec.clone().unwrap_or_default();
            let hash = short_hash(&spec.template);
            let selector = spec
                .template
                .spec
                .as_ref()
                .and_then(|s| s.node_selector.clone())
                .unwrap_or_default();
            let eligible: HashSet<String> = nodes
                .iter()
                .filter(|n| {
                    map_matches(
                        &selector,
                        n.metadata.labels.as_ref().unwrap_or(&BTreeMap::new()),
                    )
                })
                .map(|n| n.name_any())
                .collect();
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
            let mut on_node: HashMap<String, HashSet<String>> = HashMap::new();
            for p in pods.iter().filter(|p| {
                controller_uid(p.as_ref()).as_deref() == Some(&uid) && !is_terminating(p.as_ref())
            }) {
                let node = p
                    .spec
                    .as_ref()
                    .and_then(|s| s.node_name.clone())
                    .unwrap_or_default();
                let h = p
                    .labels()
                    .get("pod-template-hash")
                    .cloned()
                    .unwrap_or_default();
                if !eligible.contains(&node) || h != hash || pod_phase_done(p) {
                    self.expect(&format!("{uid}/{node}"), &p.name_any(), false);
                    let _ = api.delete(&p.name_any(), &DeleteParams::default()).await;
                } else {
                    on_node.entry(node).or_default().insert(p.name_any());
                }
            }
            let mut desired = 0;
            let mut ready = 0;
            for node in &eligible {
                desired += 1;
                let key = format!("{uid}/{node}");
                let live = self.live_names(&key, on_node.remove(node).unwrap_or_default());
                if live.is_empty() {
                    let pod = pod_from_template(
                        &spec.template,
                        format!("{}-", ds.name_any()),
                        owner_ref(ds.as_ref()),
                        &[("pod-template-hash", &hash)],
                        Some(node),
                    );
                    let made = api.create(&PostParams::default(), &pod).await?;
                    self.expect(&key, &made.name_any(), true);
                } else if pods
                    .iter()
                    .any(|p| live.contains(&p.name_any()) && pod_ready(p))
                {
                    ready += 1;
                }
            }
            let status = json!({
                "desiredNumberScheduled": desired,
                "currentNumberScheduled": desired,
                "numberReady": ready,
                "numberAvailable": ready,
                "numberMisscheduled": 0,
                "observedGeneration": ds.metadata.generation,
            });
            let old = ds.status.as_ref().map(|s| {
                json!({
                    "desiredNumberScheduled": s.desired_number_scheduled,
                    "currentNumberScheduled": s.current_number_scheduled,
                    "numberReady": s.number_ready,
                    "numberAvailable": s.number_available.unwrap_or(0),
                    "numberMisscheduled": s.number_misscheduled,
                    "observedGeneration": s.observed_generation,
                })
            });
            if old.as_ref() != Some(&status) {
                let dapi: Api<DaemonSet> = Api::namespaced(self.client.clone(), &ns);
                dapi.patch_status(
                    &ds.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": status})),
                )
                .await?;
            }
        }
        Ok(())
    }
}
