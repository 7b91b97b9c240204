//! `ferry join --wait`: whether ferry's workloads in `ferry-system` have
//! their pods ready, read from the Deployments' and DaemonSets' status
//! (what `kubectl rollout status` reads).

use ferry_api::labels::SYSTEM_NAMESPACE;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use kube::Client;
use kube::api::{Api, ListParams};

use crate::show::gather::PART_OF_FERRY;
use crate::{Error, Result};

/// How far ferry's workloads are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rollout {
    /// Pods ready, over every workload.
    pub ready: i32,
    /// Pods wanted, over every workload.
    pub desired: i32,
    /// `name ready/desired` of each workload not ready yet, by name.
    pub waiting: Vec<String>,
}

impl Rollout {
    /// Every workload has all its pods ready.
    pub fn done(&self) -> bool {
        self.waiting.is_empty()
    }

    /// `3 of 4 pods ready; waiting for ferry-gateway 0/1`.
    pub fn describe(&self) -> String {
        let mut s = format!("ferry's pods: {} of {} ready", self.ready, self.desired);
        if !self.waiting.is_empty() {
            s.push_str(&format!("; waiting for {}", self.waiting.join(", ")));
        }
        s
    }
}

/// The rollout of `deployments` and `daemonsets` (pure). A workload whose
/// controller has not yet seen its latest spec counts as waiting.
pub fn rollout(deployments: &[Deployment], daemonsets: &[DaemonSet]) -> Rollout {
    let mut parts: Vec<(String, i32, i32, bool)> = Vec::new();
    for d in deployments {
        let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let st = d.status.clone().unwrap_or_default();
        let seen = st.observed_generation >= d.metadata.generation;
        let ready = st.ready_replicas.unwrap_or(0);
        let updated = st.updated_replicas.unwrap_or(0) >= desired;
        parts.push((name(&d.metadata.name), ready, desired, seen && updated));
    }
    for d in daemonsets {
        let st = d.status.clone().unwrap_or_default();
        let seen = st.observed_generation >= d.metadata.generation;
        let updated = st.updated_number_scheduled.unwrap_or(0) >= st.desired_number_scheduled;
        parts.push((
            name(&d.metadata.name),
            st.number_ready,
            st.desired_number_scheduled,
            seen && updated,
        ));
    }
    parts.sort();
    let mut r = Rollout::default();
    for (name, ready, desired, current) in parts {
        r.ready += ready;
        r.desired += desired;
        if ready < desired || !current {
            r.waiting.push(format!("{name} {ready}/{desired}"));
        }
    }
    r
}

fn name(n: &Option<String>) -> String {
    n.clone().unwrap_or_default()
}

/// Reads the rollout of ferry's workloads in `ferry-system`.
pub async fn read_rollout(client: &Client) -> Result<Rollout> {
    let lp = ListParams::default().labels(PART_OF_FERRY);
    let kube_err = |what: &str, source| Error::Kube {
        action: format!("listing ferry's {what} in {SYSTEM_NAMESPACE}"),
        source: Box::new(source),
    };
    let deployments = Api::<Deployment>::namespaced(client.clone(), SYSTEM_NAMESPACE)
        .list(&lp)
        .await
        .map_err(|e| kube_err("Deployments", e))?
        .items;
    let daemonsets = Api::<DaemonSet>::namespaced(client.clone(), SYSTEM_NAMESPACE)
        .list(&lp)
        .await
        .map_err(|e| kube_err("DaemonSets", e))?
        .items;
    Ok(rollout(&deployments, &daemonsets))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn de<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn counts_ready_pods_and_names_what_is_waited_for() {
        let agent: Deployment = de(json!({"metadata": {"name": "ferry-agent", "generation": 2},
            "spec": {"replicas": 1, "selector": {}, "template": {}},
            "status": {"observedGeneration": 2, "readyReplicas": 1, "updatedReplicas": 1}}));
        let gateway: DaemonSet = de(
            json!({"metadata": {"name": "ferry-gateway", "generation": 1},
            "spec": {"selector": {}, "template": {}},
            "status": {"observedGeneration": 1, "numberReady": 0, "desiredNumberScheduled": 1,
                "currentNumberScheduled": 1, "numberMisscheduled": 0, "updatedNumberScheduled": 1}}),
        );
        let r = rollout(std::slice::from_ref(&agent), std::slice::from_ref(&gateway));
        assert_eq!((r.ready, r.desired), (1, 2));
        assert!(!r.done());
        assert_eq!(
            r.describe(),
            "ferry's pods: 1 of 2 ready; waiting for ferry-gateway 0/1"
        );
        // A new spec the controller has not seen yet is not done, even
        // with every old pod ready.
        let mut stale = agent.clone();
        stale.metadata.generation = Some(3);
        assert!(!rollout(&[stale], &[]).done());
        assert!(rollout(&[agent], &[]).done());
    }
}
