//! Which remote clusters this cluster reaches now: the clusters an active
//! local gateway reports `connected` (as `ferry dns` reads them). An
//! imported service's ClusterSet IP routes only to reachable clusters: the
//! import reconciler marks a cut-off cluster's endpoints not ready in the
//! derived Service's EndpointSlices, so the service proxy (kube-proxy or
//! any other) stops choosing them as soon as the gateway's health check
//! gives up on the cable, and takes them back when it reconnects.

use std::collections::BTreeSet;

use ferry_api::labels::SOURCE_CLUSTER;

use super::SyncEngine;
use crate::store::{Data, Kind, Side};
use crate::sync::sources::index_origin;
use crate::sync::target::Key;

impl SyncEngine {
    /// Whether `cluster`'s endpoints can be reached from here: this
    /// cluster, or one an active local gateway is connected to.
    pub(in crate::sync) fn reachable(&self, cluster: &str) -> bool {
        cluster == self.cfg.cluster_id || self.connected.contains(cluster)
    }

    /// After a Gateway changed: the reachable clusters again, and a
    /// reconcile of every import exported by a cluster that came or went.
    pub(super) fn gateways_changed(&mut self) {
        let id = self.cfg.cluster_id.as_str();
        let now: BTreeSet<Box<str>> = self
            .store(Side::Local, Kind::Gateway)
            .iter()
            .filter_map(|(_, _, o)| match &o.data {
                Data::Links(l) if l.active && &*l.cluster_id == id => Some(l.connected.iter()),
                _ => None,
            })
            .flatten()
            .cloned()
            .collect();
        if now == self.connected {
            return;
        }
        let changed: BTreeSet<&str> = now
            .symmetric_difference(&self.connected)
            .map(|c| &**c)
            .collect();
        let keys: BTreeSet<Key> = self
            .store(Side::Broker, Kind::ServiceImport)
            .iter()
            .filter(|(_, _, o)| o.label(SOURCE_CLUSTER).is_some_and(|c| changed.contains(c)))
            .filter_map(|(ns, _, o)| {
                let (ons, svc) = index_origin(ns, o)?;
                Some(Key::Import(ons.into(), svc.into()))
            })
            .collect();
        tracing::info!(connected = ?now, imports = keys.len(), "reachable clusters changed");
        self.connected = now;
        keys.into_iter().for_each(|k| self.enqueue(k));
    }
}
