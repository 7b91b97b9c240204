//! The peer reconciler (`Key::Cluster(name)`, `Key::Endpoint(name)`): the
//! exchange of `Cluster`s and gateway `Endpoint`s through the broker, which
//! is how the clusters of a clusterset learn of each other.

use std::sync::Arc;

use ferry_api::ClusterSpec;
use ferry_api::labels::{APP_MANAGED_BY, APP_MANAGED_BY_FERRY, CLUSTER};
use serde_json::Value;

use super::engine::SyncEngine;
use super::target::{Key, Target};
use super::wanted::{WantedSpec, to_json};
use crate::store::{Data, Kind, Obj, Side};

/// `Cluster` and `Endpoint`: ours are published to the broker (and our
/// own Cluster also written locally); remote ones are copied into the
/// system namespace, and their copies deleted when they leave the broker.
pub(super) fn reconcile_peer(engine: &mut SyncEngine, key: &Key, kind: Kind, name: &str) {
    let id = engine.config().cluster_id.clone();
    let sys = engine.config().system_namespace.clone();
    let bns = engine.config().broker_namespace.clone();
    let local = seen(engine.get(Side::Local, kind, &sys, name));
    let broker = seen(engine.get(Side::Broker, kind, &bns, name));
    let t_broker = Target::new(Side::Broker, kind, &bns, name);
    let t_local = Target::new(Side::Local, kind, &sys, name);
    let kind_name = match kind {
        Kind::Cluster => "Cluster",
        _ => "Endpoint",
    };
    let publish = |this: &mut SyncEngine, target: Target, cluster: &str, spec: &Value| {
        let labels = [(CLUSTER, cluster), (APP_MANAGED_BY, APP_MANAGED_BY_FERRY)];
        let wanted = WantedSpec {
            kind: kind_name,
            labels: &labels,
            spec,
        };
        let ns = target.ns.clone();
        this.ensure(key, target, wanted.digest(), None, || {
            wanted.body(name, &ns)
        });
    };

    if kind == Kind::Cluster && name == id {
        let spec = to_json(&ClusterSpec {
            cluster_id: id.clone(),
            cluster_cidrs: engine.config().cluster_cidrs.clone(),
            service_cidrs: engine.config().service_cidrs.clone(),
            global_cidrs: engine.config().global_cidrs.clone(),
            network_plugin: engine.config().network_plugin,
        });
        publish(engine, t_broker, &id, &spec);
        publish(engine, t_local, &id, &spec);
        return;
    }
    let local_label = local.as_ref().and_then(|(c, _)| c.clone());
    let broker_label = broker.as_ref().and_then(|(c, _)| c.clone());
    if local_label.as_deref() == Some(id.as_str()) && kind == Kind::Endpoint {
        if let Some((_, spec)) = &local {
            publish(engine, t_broker, &id, spec);
        }
        return;
    }
    if broker_label.as_deref() == Some(id.as_str()) {
        // Ours on the broker, but no longer here.
        engine.ensure_absent(key, t_broker);
        return;
    }
    match (&broker, &broker_label) {
        (Some((_, spec)), Some(remote)) => publish(engine, t_local, remote, spec),
        _ => {
            if local_label.is_some_and(|l| l != id) {
                engine.ensure_absent(key, t_local);
            }
        }
    }
}

/// What a reconciler reads of a Cluster or an Endpoint: the cluster it
/// belongs to (its label) and its spec.
fn seen(o: Option<&Obj>) -> Option<(Option<String>, Arc<Value>)> {
    o.map(|o| {
        let spec = match &o.data {
            Data::Spec(s) => s.clone(),
            _ => Arc::new(Value::Null),
        };
        (o.label(CLUSTER).map(str::to_string), spec)
    })
}
