//! The import reconciler (`Key::Import(ns, svc)`): every cluster's export
//! of a service on the broker, merged under the MCS rules, becomes this
//! cluster's `ServiceImport` and one local `EndpointSlice` per exporting
//! cluster — while the namespace exists here.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use ferry_api::labels::{
    APP_MANAGED_BY, APP_MANAGED_BY_FERRY, CLUSTER, MANAGED_BY, MANAGED_BY_FERRY, SERVICE_NAME,
    SOURCE_CLUSTER,
};
use ferry_api::{ClusterStatus, ServiceImportStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::engine::SyncEngine;
use super::target::{Key, Target};
use super::wanted::{WantedImport, WantedSlice, derived_service_body, map_annotation, to_json};
use crate::mcs::{self, Export, ExportedMeta, Merged};
use crate::store::{
    self, Data, DerivedSpec, EXPORTED_ANNOTATIONS, EXPORTED_LABELS, K8S_SERVICE_NAME, Kind, Side,
    SliceInfo,
};
use crate::vips::derived_service_name;

/// The name of the local EndpointSlice holding `cluster`'s endpoints of `svc`.
pub fn import_slice_name(svc: &str, cluster: &str) -> String {
    format!("{svc}-{cluster}")
}

/// One cluster's slice on the broker, as this cluster's copy wants it.
struct SliceCopy {
    cluster: String,
    slice: Arc<SliceInfo>,
}

/// The clusterset IP of an import, as far as it got.
enum Vip {
    /// Off (not enabled, opted out, headless, or nothing exported).
    None,
    /// Given: the derived Service has its ClusterIP; the import carries it.
    Given(Ipv4Addr),
    /// Wanted: the derived Service is written but has no ClusterIP yet.
    Pending,
    /// Wanted, but not for the service's IP families
    /// ([`mcs::clusterset_ip_supported`]): none, and the import says why.
    FamilyNotSupported,
}

/// Reconciles the import of `ns/svc` into this cluster: its slices first,
/// then the derived Service carrying its clusterset IP, then the
/// ServiceImport (removed, if ferry's, when nothing is exported).
pub(super) fn reconcile_import(engine: &mut SyncEngine, key: &Key, ns: &str, svc: &str) {
    let t_import = Target::new(Side::Local, Kind::ServiceImport, ns, svc);
    let merged = merged_exports(engine, ns, svc);
    // An export's own choice wins over the clusterset's default.
    let default = engine.config().clusterset_ip;
    let vip_on = merged
        .as_ref()
        .is_some_and(|m| m.clusterset_ip.unwrap_or(default));
    let families_ok = merged
        .as_ref()
        .is_none_or(|m| mcs::clusterset_ip_supported(&m.spec.ip_families));
    let wants_vip = vip_on && families_ok;
    let derived = derived_service_name(ns, svc);
    let derived_label = wants_vip.then_some(derived.as_str());
    let mut wanted = wanted_slices(engine, ns, svc, merged.as_ref());
    if wants_vip {
        route_local_share_to_pods(engine, ns, svc, &mut wanted);
    }
    remove_stale_slices(engine, key, ns, svc, &wanted);
    ensure_slices(engine, key, ns, svc, wanted, derived_label);
    let vip = ensure_derived_service(engine, key, ns, svc, &derived, merged.as_ref(), wants_vip);
    let vip = if vip_on && !families_ok {
        Vip::FamilyNotSupported
    } else {
        vip
    };
    // The API server allocates the ClusterIP as it creates the derived
    // Service, and the answer re-runs this key: wait for it rather than
    // write the import as Pending and again with its IP a moment later
    // (two writes of four per import). After a failed write (an exhausted
    // service range, say) the import is written, Pending with the cause.
    let t_derived = Target::new(Side::Local, Kind::Service, ns, &derived);
    if matches!(vip, Vip::Pending)
        && !engine.write_failed(key)
        && engine.writing(key, &[&t_derived])
    {
        return;
    }
    ensure_import(engine, key, t_import, ns, svc, merged, &vip);
}

/// Makes the selector-less Service that carries the clusterset IP (its
/// EndpointSlices are the import's, labelled with its name, so the
/// cluster's service proxy load-balances the VIP over every exporting
/// cluster) exist as wanted, or not at all; answers the ClusterIP the API
/// server gave it.
fn ensure_derived_service(
    engine: &mut SyncEngine,
    key: &Key,
    ns: &str,
    svc: &str,
    derived: &str,
    merged: Option<&Merged>,
    wanted: bool,
) -> Vip {
    let t = Target::new(Side::Local, Kind::Service, ns, derived);
    let stored = engine
        .get(Side::Local, Kind::Service, ns, derived)
        .filter(|o| o.label(APP_MANAGED_BY) == Some(APP_MANAGED_BY_FERRY));
    let allocated = stored.and_then(|o| match &o.data {
        Data::Derived(ip) => *ip,
        _ => None,
    });
    let (true, Some(m)) = (wanted, merged) else {
        if stored.is_some() {
            engine.ensure_absent(key, t);
        }
        return Vip::None;
    };
    let labels = [(SERVICE_NAME, svc), (APP_MANAGED_BY, APP_MANAGED_BY_FERRY)];
    let derived_spec = DerivedSpec {
        ports: m
            .spec
            .ports
            .iter()
            .map(|p| (p.name.as_deref().unwrap_or(""), p.protocol.as_str(), p.port))
            .collect(),
        session_affinity: m.spec.session_affinity.as_deref().filter(|a| *a != "None"),
        session_affinity_timeout: m
            .spec
            .session_affinity_config
            .as_ref()
            .and_then(|c| c.client_ip.as_ref())
            .and_then(|c| c.timeout_seconds),
    };
    let digest = store::derived_service_digest(&store::label_pairs(&labels), &derived_spec);
    engine.ensure(key, t, digest, None, || {
        derived_service_body(derived, ns, &labels, &derived_spec)
    });
    allocated.map_or(Vip::Pending, Vip::Given)
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

/// Behind a ClusterSet IP, this cluster's own share of the endpoints is its
/// Service's pods, not its ClusterIP (what the broker carries): a service
/// proxy translates a connection once, so a VIP translated to a local
/// ClusterIP would go nowhere — while a remote ClusterIP is translated
/// again by the remote cluster's proxy. One copy per local EndpointSlice of
/// the Service (`<svc>-<cluster>`, then `<svc>-<cluster>-1`, …).
fn route_local_share_to_pods(
    engine: &SyncEngine,
    ns: &str,
    svc: &str,
    wanted: &mut BTreeMap<String, SliceCopy>,
) {
    let id = engine.config().cluster_id.clone();
    let local = import_slice_name(svc, &id);
    if wanted.remove(&local).is_none() {
        return;
    }
    let mut own: Vec<(&str, Arc<SliceInfo>)> = engine
        .store(Side::Local, Kind::EndpointSlice)
        .indexed(ns, svc)
        .filter(|(_, o)| o.label(MANAGED_BY) != Some(MANAGED_BY_FERRY))
        .filter_map(|(name, o)| match &o.data {
            Data::Slice(s) => Some((name, s.clone())),
            _ => None,
        })
        .collect();
    own.sort_by(|a, b| a.0.cmp(b.0));
    for (k, (_, slice)) in own.into_iter().enumerate() {
        let name = if k == 0 {
            local.clone()
        } else {
            format!("{local}-{k}")
        };
        let cluster = id.clone();
        wanted.insert(name, SliceCopy { cluster, slice });
    }
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
    derived: Option<&str>,
) {
    for (name, w) in wanted {
        let mut labels = vec![
            (SERVICE_NAME, svc),
            (SOURCE_CLUSTER, w.cluster.as_str()),
            (CLUSTER, w.cluster.as_str()),
            (MANAGED_BY, MANAGED_BY_FERRY),
            (APP_MANAGED_BY, APP_MANAGED_BY_FERRY),
        ];
        if let Some(derived) = derived {
            labels.push((K8S_SERVICE_NAME, derived));
        }
        let s = &w.slice;
        let mut endpoints = s.endpoints();
        // Behind a ClusterSet IP, a cluster the cables do not reach now is
        // not ready: the service proxy sends its share elsewhere.
        if derived.is_some() && !engine.reachable(&w.cluster) {
            for e in &mut endpoints {
                e.conditions.get_or_insert_with(Default::default).ready = Some(false);
            }
        }
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
    vip: &Vip,
) {
    match merged {
        Some(mut m) => {
            let now = Time(k8s_openapi::jiff::Timestamp::now());
            let pending = match vip {
                Vip::Given(ip) => {
                    m.spec.ips = vec![ip.to_string()];
                    m.spec.ip_families = vec!["IPv4".into()];
                    None
                }
                Vip::Pending => Some(format!(
                    "the derived Service {ns}/{} has no ClusterIP from this cluster's service range yet",
                    derived_service_name(ns, svc)
                )),
                Vip::None | Vip::FamilyNotSupported => None,
            };
            let ready = if matches!(vip, Vip::FamilyNotSupported) {
                mcs::import_family_not_supported(&m.spec.ip_families, &now)
            } else {
                mcs::import_ready(pending.as_deref(), &now)
            };
            let status = ServiceImportStatus {
                clusters: m
                    .clusters
                    .iter()
                    .map(|c| ClusterStatus { cluster: c.clone() })
                    .collect(),
                conditions: vec![ready],
            };
            let labels = [(APP_MANAGED_BY, APP_MANAGED_BY_FERRY)];
            let exported = ExportedMeta {
                labels: m.labels.clone(),
                annotations: m.annotations.clone(),
                clusterset_ip: None,
                global_ip: None,
                global_pod_ips: None,
            };
            let (labels_json, annotations_json) =
                (map_annotation(&m.labels), map_annotation(&m.annotations));
            // Sorted by key, as the digest of what is stored reads them.
            let mut annotations = Vec::new();
            if !m.annotations.is_empty() {
                annotations.push((EXPORTED_ANNOTATIONS, annotations_json.as_str()));
            }
            if !m.labels.is_empty() {
                annotations.push((EXPORTED_LABELS, labels_json.as_str()));
            }
            let import = WantedImport {
                labels: &labels,
                annotations: &annotations,
                exported: Some(&exported),
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
