//! The import reconciler (`Key::Import(ns, svc)`): every cluster's export
//! of a service on the broker, merged under the MCS rules, becomes this
//! cluster's `ServiceImport` and one local `EndpointSlice` per exporting
//! cluster — while the namespace exists here.

use std::collections::BTreeMap;
use std::sync::Arc;

use ferry_api::labels::{
    APP_MANAGED_BY, APP_MANAGED_BY_FERRY, CLUSTER, MANAGED_BY, MANAGED_BY_FERRY, SERVICE_NAME,
    SOURCE_CLUSTER,
};
use ferry_api::{ClusterStatus, ServiceImportStatus};

use super::engine::SyncEngine;
use super::target::{Key, Target};
use super::wanted::{WantedImport, WantedSlice, to_json};
use crate::mcs::{self, Export, Merged};
use crate::store::{self, Data, Kind, Side, SliceInfo};

/// The name of the local EndpointSlice holding `cluster`'s endpoints of `svc`.
pub fn import_slice_name(svc: &str, cluster: &str) -> String {
    format!("{svc}-{cluster}")
}

/// One cluster's slice on the broker, as this cluster's copy wants it.
struct SliceCopy {
    cluster: String,
    slice: Arc<SliceInfo>,
}

/// Reconciles the import of `ns/svc` into this cluster: its slices first,
/// then the ServiceImport (removed, if ferry's, when nothing is exported).
pub(super) fn reconcile_import(engine: &mut SyncEngine, key: &Key, ns: &str, svc: &str) {
    let t_import = Target::new(Side::Local, Kind::ServiceImport, ns, svc);
    let merged = merged_exports(engine, ns, svc);
    let wanted = wanted_slices(engine, ns, svc, merged.as_ref());
    remove_stale_slices(engine, key, ns, svc, &wanted);
    ensure_slices(engine, key, ns, svc, wanted);
    ensure_import(engine, key, t_import, ns, svc, merged);
}

/// Every cluster's export of `ns/svc` on the broker, merged; `None` when
/// there is none or the namespace does not exist here.
fn merged_exports(engine: &SyncEngine, ns: &str, svc: &str) -> Option<Merged> {
    let ns_exists = engine.get(Side::Local, Kind::Namespace, "", ns).is_some();
    if ns_exists {
        let exports: Vec<Export> = engine
            .store(Side::Broker, Kind::ServiceImport)
            .indexed(ns, svc)
            .filter_map(|(_, o)| match &o.data {
                Data::Import(Some(e)) => Some(e.as_ref().clone()),
                _ => None,
            })
            .collect();
        mcs::merge(&exports)
    } else {
        None
    }
}

/// Every merged cluster's slice on the broker, as this cluster's copy, by
/// the copy's name.
fn wanted_slices(
    engine: &SyncEngine,
    ns: &str,
    svc: &str,
    merged: Option<&Merged>,
) -> BTreeMap<String, SliceCopy> {
    let mut wanted: BTreeMap<String, SliceCopy> = BTreeMap::new();
    if let Some(m) = merged {
        for (_, o) in engine
            .store(Side::Broker, Kind::EndpointSlice)
            .indexed(ns, svc)
        {
            let (Data::Slice(s), Some(cluster)) = (&o.data, o.label(SOURCE_CLUSTER)) else {
                continue;
            };
            if !m.clusters.iter().any(|c| c == cluster) {
                continue;
            }
            wanted.insert(
                import_slice_name(svc, cluster),
                SliceCopy {
                    cluster: cluster.to_string(),
                    slice: s.clone(),
                },
            );
        }
    }
    wanted
}

/// Deletes the local ferry-managed slices of `ns/svc` that are not wanted.
fn remove_stale_slices(
    engine: &mut SyncEngine,
    key: &Key,
    ns: &str,
    svc: &str,
    wanted: &BTreeMap<String, SliceCopy>,
) {
    let stale: Vec<String> = engine
        .store(Side::Local, Kind::EndpointSlice)
        .indexed(ns, svc)
        .filter(|(name, o)| {
            o.label(MANAGED_BY) == Some(MANAGED_BY_FERRY) && !wanted.contains_key(*name)
        })
        .map(|(name, _)| name.to_string())
        .collect();
    for name in stale {
        let t = Target::new(Side::Local, Kind::EndpointSlice, ns, &name);
        engine.ensure_absent(key, t);
    }
}

/// Makes each wanted local copy of a cluster's slice carry its endpoints.
fn ensure_slices(
    engine: &mut SyncEngine,
    key: &Key,
    ns: &str,
    svc: &str,
    wanted: BTreeMap<String, SliceCopy>,
) {
    for (name, w) in wanted {
        let labels = [
            (SERVICE_NAME, svc),
            (SOURCE_CLUSTER, w.cluster.as_str()),
            (CLUSTER, w.cluster.as_str()),
            (MANAGED_BY, MANAGED_BY_FERRY),
            (APP_MANAGED_BY, APP_MANAGED_BY_FERRY),
        ];
        let s = &w.slice;
        let endpoints = s.endpoints();
        let slice = WantedSlice {
            labels: &labels,
            address_type: &s.address_type,
            endpoints: &endpoints,
            ports: &s.ports,
        };
        let t = Target::new(Side::Local, Kind::EndpointSlice, ns, &name);
        engine.ensure(key, t, slice.digest(), None, || slice.body(&name, ns));
    }
}

/// Makes the local ServiceImport carry the merged spec and, in its status,
/// the exporting clusters; without a merge, removes it if it is ferry's.
fn ensure_import(
    engine: &mut SyncEngine,
    key: &Key,
    t_import: Target,
    ns: &str,
    svc: &str,
    merged: Option<Merged>,
) {
    match merged {
        Some(m) => {
            let status = ServiceImportStatus {
                clusters: m
                    .clusters
                    .iter()
                    .map(|c| ClusterStatus { cluster: c.clone() })
                    .collect(),
            };
            let labels = [(APP_MANAGED_BY, APP_MANAGED_BY_FERRY)];
            let import = WantedImport {
                labels: &labels,
                created_at: None,
                spec: &m.spec,
            };
            let status_digest = store::import_status_digest(Some(&status));
            let status_body = || to_json(&status);
            engine.ensure(
                key,
                t_import,
                import.digest(),
                Some((status_digest, &status_body)),
                || import.body(svc, ns),
            );
        }
        None => {
            let ours = engine
                .get(Side::Local, Kind::ServiceImport, ns, svc)
                .is_some_and(|o| o.label(APP_MANAGED_BY) == Some(APP_MANAGED_BY_FERRY));
            if ours {
                engine.ensure_absent(key, t_import);
            }
        }
    }
}
