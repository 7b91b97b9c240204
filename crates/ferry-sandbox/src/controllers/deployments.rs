//! The Deployment controller: one ReplicaSet per pod template (named and
//! labelled by the template's hash, owned by the Deployment, numbered by
//! the `deployment.kubernetes.io/revision` annotation), so that
//! `kubectl rollout status|history|undo` work as on a real cluster.
//!
//! A rollout scales the new ReplicaSet to `spec.replicas` and the old ones
//! to zero at once (pods are processes here, and tests want them up
//! quickly); old ReplicaSets are kept, scaled to zero, up to
//! `revisionHistoryLimit`. Going back to an older template (what `rollout
//! undo` does) scales its ReplicaSet up again under a new revision.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

use super::controller::Controllers;
use super::objects::{
    controller_uid, is_terminating, owner_ref, pod_phase_done, pod_ready, short_hash,
};

/// The annotation kubectl reads a ReplicaSet's revision from.
pub const REVISION: &str = "deployment.kubernetes.io/revision";
/// The label that tells the ReplicaSets (and pods) of one Deployment apart.
pub const TEMPLATE_HASH: &str = "pod-template-hash";
/// Annotations of the Deployment its ReplicaSets carry along.
const COPIED_ANNOTATIONS: &[&str] = &["kubernetes.io/change-cause"];

/// One owned ReplicaSet, as a rollout sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedSet {
    pub name: String,
    pub hash: String,
    pub revision: u64,
    pub replicas: i32,
}

/// What a Deployment's ReplicaSets should be.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollout {
    /// Name of the ReplicaSet of the current template.
    pub new_set: String,
    /// Whether it has to be created.
    pub create: bool,
    /// The revision it should carry.
    pub revision: u64,
    /// (ReplicaSet, replicas) for every set whose size has to change.
    pub scale: Vec<(String, i32)>,
    /// Old ReplicaSets past the history limit.
    pub delete: Vec<String>,
}

/// Plans the ReplicaSets of deployment `name` whose template hashes to
/// `hash`, given the sets it owns.
pub fn plan_rollout(
    name: &str,
    hash: &str,
    replicas: i32,
    history_limit: usize,
    owned: &[OwnedSet],
) -> Rollout {
    let newest = owned.iter().map(|s| s.revision).max().unwrap_or(0);
    let current = owned.iter().find(|s| s.hash == hash);
    let revision = match current {
        Some(s) if s.revision == newest => s.revision,
        _ => newest + 1,
    };
    let mut scale = Vec::new();
    let mut old: Vec<&OwnedSet> = Vec::new();
    for s in owned {
        if s.hash == hash {
            if s.replicas != replicas {
                scale.push((s.name.clone(), replicas));
            }
        } else {
            if s.replicas != 0 {
                scale.push((s.name.clone(), 0));
            }
            old.push(s);
        }
    }
    old.sort_by_key(|s| std::cmp::Reverse(s.revision));
    Rollout {
        new_set: current.map_or_else(|| format!("{name}-{hash}"), |s| s.name.clone()),
        create: current.is_none(),
        revision,
        scale,
        delete: old
            .into_iter()
            .skip(history_limit)
            .map(|s| s.name.clone())
            .collect(),
    }
}

fn revision_of(rs: &ReplicaSet) -> u64 {
    rs.annotations()
        .get(REVISION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

impl Controllers {
    pub(super) async fn deployments(&self) -> Result<(), kube::Error> {
        let pods = self.stores.pods.state();
        let sets = self.stores.replicasets.state();
        for d in self.stores.deployments.state() {
            if !is_terminating(d.as_ref()) {
                self.deployment(&d, &sets, &pods).await?;
            }
        }
        Ok(())
    }

    async fn deployment(
        &self,
        d: &Deployment,
        sets: &[Arc<ReplicaSet>],
        pods: &[Arc<Pod>],
    ) -> Result<(), kube::Error> {
        let uid = d.uid().unwrap_or_default();
        let ns = d.namespace().unwrap_or_default();
        let spec = d.spec.clone().unwrap_or_default();
        let want = spec.replicas.unwrap_or(1).max(0);
        let hash = short_hash(&spec.template);
        let owned: Vec<&Arc<ReplicaSet>> = sets
            .iter()
            .filter(|s| controller_uid(s.as_ref()).as_deref() == Some(&uid))
            .collect();
        let summaries: Vec<OwnedSet> = owned
            .iter()
            .map(|s| OwnedSet {
                name: s.name_any(),
                hash: s.labels().get(TEMPLATE_HASH).cloned().unwrap_or_default(),
                revision: revision_of(s),
                replicas: s.spec.as_ref().and_then(|sp| sp.replicas).unwrap_or(1),
            })
            .collect();
        let limit = spec.revision_history_limit.unwrap_or(10).max(0) as usize;
        let plan = plan_rollout(&d.name_any(), &hash, want, limit, &summaries);
        let api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), &ns);
        if plan.create {
            let rs = new_replica_set(d, &hash, want, plan.revision);
            match api.create(&PostParams::default(), &rs).await {
                Ok(_) => {}
                // The cache lags behind an earlier create.
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => return Err(e),
            }
        } else if owned
            .iter()
            .any(|s| s.name_any() == plan.new_set && revision_of(s) != plan.revision)
        {
            let annotations =
                json!({"metadata": {"annotations": {REVISION: plan.revision.to_string()}}});
            api.patch(
                &plan.new_set,
                &PatchParams::default(),
                &Patch::Merge(annotations),
            )
            .await?;
        }
        for (name, replicas) in &plan.scale {
            let body = json!({"spec": {"replicas": replicas}});
            api.patch(name, &PatchParams::default(), &Patch::Merge(body))
                .await?;
        }
        for name in &plan.delete {
            let _ = api.delete(name, &DeleteParams::default()).await;
        }
        if d.annotations().get(REVISION) != Some(&plan.revision.to_string()) {
            let dapi: Api<Deployment> = Api::namespaced(self.client.clone(), &ns);
            let body = json!({"metadata": {"annotations": {REVISION: plan.revision.to_string()}}});
            dapi.patch(&d.name_any(), &PatchParams::default(), &Patch::Merge(body))
                .await?;
        }
        self.deployment_status(d, &owned, &plan.new_set, want, pods)
            .await
    }

    /// Status from the pods of the Deployment's ReplicaSets.
    async fn deployment_status(
        &self,
        d: &Deployment,
        owned: &[&Arc<ReplicaSet>],
        new_set: &str,
        want: i32,
        pods: &[Arc<Pod>],
    ) -> Result<(), kube::Error> {
        let (mut replicas, mut updated, mut ready) = (0i32, 0i32, 0i32);
        for s in owned {
            let uid = s.uid();
            for p in pods.iter().filter(|p| {
                controller_uid(p.as_ref()) == uid
                    && !is_terminating(p.as_ref())
                    && !pod_phase_done(p)
            }) {
                replicas += 1;
                if s.name_any() == new_set {
                    updated += 1;
                }
                if pod_ready(p) {
                    ready += 1;
                }
            }
        }
        let available = ready >= want;
        let complete = available && updated == want && replicas == updated;
        let old = d.status.as_ref();
        let conditions = vec![
            condition(
                old_condition(old, "Available"),
                "Available",
                available,
                if available {
                    "MinimumReplicasAvailable"
                } else {
                    "MinimumReplicasUnavailable"
                },
                if available {
                    "Deployment has minimum availability.".to_string()
                } else {
                    "Deployment does not have minimum availability.".to_string()
                },
            ),
            condition(
                old_condition(old, "Progressing"),
                "Progressing",
                true,
                if complete {
                    "NewReplicaSetAvailable"
                } else {
                    "ReplicaSetUpdated"
                },
                if complete {
                    format!("ReplicaSet \"{new_set}\" has successfully progressed.")
                } else {
                    format!("ReplicaSet \"{new_set}\" is progressing.")
                },
            ),
        ];
        let status = json!({
            "observedGeneration": d.metadata.generation,
            "replicas": replicas,
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "unavailableReplicas": (want - ready).max(0),
            "conditions": conditions,
        });
        let current = old.map(|s| serde_json::to_value(s).unwrap_or(Value::Null));
        if current.as_ref().is_some_and(|c| same_status(c, &status)) {
            return Ok(());
        }
        let api: Api<Deployment> =
            Api::namespaced(self.client.clone(), &d.namespace().unwrap_or_default());
        api.patch_status(
            &d.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await?;
        Ok(())
    }
}

fn old_condition(
    status: Option<&k8s_openapi::api::apps::v1::DeploymentStatus>,
    kind: &str,
) -> Option<Value> {
    let c = status?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == kind)?;
    serde_json::to_value(c).ok()
}

/// A condition; its times move only when its status or reason does.
fn condition(old: Option<Value>, kind: &str, status: bool, reason: &str, message: String) -> Value {
    let status = if status { "True" } else { "False" };
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let kept = old.filter(|o| o["status"] == status && o["reason"] == reason);
    let time = |field: &str| {
        kept.as_ref()
            .and_then(|o| o.get(field).cloned())
            .unwrap_or_else(|| json!(now))
    };
    json!({
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastUpdateTime": time("lastUpdateTime"),
        "lastTransitionTime": time("lastTransitionTime"),
    })
}

/// Whether the stored status already says what `status` says. Conditions
/// compare without their times (whose text form may differ after a round
/// trip through the typed client).
fn same_status(current: &Value, status: &Value) -> bool {
    let strip = |v: &Value| -> Value {
        let mut v = v.clone();
        for c in v
            .get_mut("conditions")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
            .filter_map(Value::as_object_mut)
        {
            c.remove("lastUpdateTime");
            c.remove("lastTransitionTime");
        }
        v
    };
    let (current, status) = (strip(current), strip(status));
    status
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| current.get(k) == Some(v))
}

/// The ReplicaSet of `d`'s current template.
fn new_replica_set(d: &Deployment, hash: &str, replicas: i32, revision: u64) -> ReplicaSet {
    let spec = d.spec.clone().unwrap_or_default();
    let mut template = spec.template.clone();
    let meta = template.metadata.get_or_insert_with(Default::default);
    meta.labels
        .get_or_insert_with(BTreeMap::new)
        .insert(TEMPLATE_HASH.into(), hash.into());
    let labels = meta.labels.clone();
    let mut selector = spec.selector.clone();
    selector
        .match_labels
        .get_or_insert_with(BTreeMap::new)
        .insert(TEMPLATE_HASH.into(), hash.into());
    let mut annotations: BTreeMap<String, String> = d
        .annotations()
        .iter()
        .filter(|(k, _)| COPIED_ANNOTATIONS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    annotations.insert(REVISION.into(), revision.to_string());
    annotations.insert(
        "deployment.kubernetes.io/desired-replicas".into(),
        replicas.to_string(),
    );
    ReplicaSet {
        metadata: kube::api::ObjectMeta {
            name: Some(format!("{}-{hash}", d.name_any())),
            namespace: d.namespace(),
            labels,
            annotations: Some(annotations),
            owner_references: Some(vec![owner_ref(d)]),
            ..Default::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(replicas),
            min_ready_seconds: spec.min_ready_seconds,
            selector,
            template: Some(template),
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests;
