//! The export reconciler (`Key::Export(ns, svc)`): this cluster's
//! `ServiceExport` of a service becomes the cluster's `ServiceImport` and
//! `EndpointSlice` on the broker, and the export's conditions say whether it
//! is valid, exported, and in conflict with other clusters' exports.

use std::collections::BTreeMap;

use ferry_api::ServiceImportSpec;
use ferry_api::labels::{
    APP_MANAGED_BY, APP_MANAGED_BY_FERRY, CLUSTER, CLUSTERSET_IP, MANAGED_BY, MANAGED_BY_FERRY,
    ORIGIN_NAME, ORIGIN_NAMESPACE, SERVICE_NAME, SOURCE_CLUSTER,
};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use serde_json::json;

use super::engine::SyncEngine;
use super::target::{Key, Target};
use super::wanted::{WantedImport, WantedSlice, map_annotation};
use crate::mcs::{self, Export, ExportedMeta, Readiness, Validity};
use crate::store::{
    self, Data, EXPORT_CREATED, EXPORTED_ANNOTATIONS, EXPORTED_LABELS, Kind, Obj, Side,
};

/// The name of cluster `cluster`'s export of `ns/svc` on the broker.
pub fn broker_name(svc: &str, ns: &str, cluster: &str) -> String {
    format!("{svc}-{ns}-{cluster}")
}

/// Reconciles this cluster's export of `ns/svc`: without a (live)
/// ServiceExport the export data leaves the broker; with one, an invalid
/// Service also withdraws it, a valid one is published, and the conditions
/// follow.
pub(super) fn reconcile_export(engine: &mut SyncEngine, key: &Key, ns: &str, svc: &str) {
    let id = engine.config().cluster_id.clone();
    let bns = engine.config().broker_namespace.clone();
    let bname = broker_name(svc, ns, &id);
    let t_import = Target::new(Side::Broker, Kind::ServiceImport, &bns, &bname);
    let t_slice = Target::new(Side::Broker, Kind::EndpointSlice, &bns, &bname);
    let export = export_seen(engine, ns, svc);
    let service = service_seen(engine, ns, svc);
    let Some((created, previous, previous_digest, meta)) = export else {
        engine.ensure_absent(key, t_import);
        engine.ensure_absent(key, t_slice);
        return;
    };
    let validity = mcs::validate_service(service.as_ref());
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let t_export = Target::new(Side::Local, Kind::ServiceExport, ns, svc);
    let (Validity::Valid, Some(service)) = (&validity, service) else {
        engine.ensure_absent(key, t_import);
        engine.ensure_absent(key, t_slice);
        let conds = mcs::export_conditions(
            &validity,
            Readiness::Pending,
            &Default::default(),
            &previous,
            &now,
        );
        ensure_conditions(engine, key, t_export, &conds, previous_digest);
        return;
    };
    // A Globalnet cluster exports the service's global IP, once it has one;
    // a headless service's pods' global IPs, those that have one.
    let globalnet = !engine.config().global_cidrs.is_empty();
    let headless = mcs::is_headless(&service);
    let pod_ips = (globalnet && headless).then(|| meta.global_pod_ips.clone().unwrap_or_default());
    let service = match (globalnet && !headless, &meta.global_ip) {
        (false, _) => service,
        (true, Some(ip)) => crate::globalnet::with_global_ip(service, ip),
        (true, None) => {
            let conds = mcs::export_conditions(
                &validity,
                Readiness::Pending,
                &Default::default(),
                &previous,
                &now,
            );
            ensure_conditions(engine, key, t_export, &conds, previous_digest);
            return;
        }
    };
    let created = created.unwrap_or_else(|| now.clone());
    let mine = mcs::export_of(&id, created.clone(), &service, &meta);

    let common = [
        (CLUSTER, id.as_str()),
        (SOURCE_CLUSTER, id.as_str()),
        (SERVICE_NAME, svc),
        (ORIGIN_NAME, svc),
        (ORIGIN_NAMESPACE, ns),
        (APP_MANAGED_BY, APP_MANAGED_BY_FERRY),
    ];
    let import_ok =
        ensure_broker_import(engine, key, &t_import, &common, &created, &mine, &service);
    let slice_ok = ensure_broker_slice(
        engine,
        key,
        &t_slice,
        &common,
        (ns, svc),
        &service,
        pod_ips.as_ref(),
    );
    let conflicts = conflicts_with_others(engine, ns, svc, &id, mine);
    let readiness = if import_ok && slice_ok {
        Readiness::Exported
    } else {
        Readiness::Pending
    };
    // While the export data is on its way, `Pending` would be replaced
    // by `Ready` a moment later: the answer re-runs this key, so wait for
    // it instead of writing the status twice. After a failed write it is
    // written (a broker outage shows as Pending).
    if readiness == Readiness::Pending
        && !engine.write_failed(key)
        && engine.writing(key, &[&t_import, &t_slice])
    {
        return;
    }
    let conds = mcs::export_conditions(&validity, readiness, &conflicts, &previous, &now);
    ensure_conditions(engine, key, t_export, &conds, previous_digest);
}

/// What the reconciler reads of a ServiceExport.
type ExportSeen = (Option<Time>, Vec<Condition>, u64, ExportedMeta);

/// The ServiceExport `ns/svc` unless it is being deleted: its creation time,
/// its conditions as the MCS rules read the previous ones, their digest, and
/// its exported labels and annotations.
fn export_seen(engine: &SyncEngine, ns: &str, svc: &str) -> Option<ExportSeen> {
    match engine.get(Side::Local, Kind::ServiceExport, ns, svc) {
        Some(Obj {
            data: Data::Export(e),
            ..
        }) if !e.deleting => Some((
            e.created.clone(),
            e.previous(),
            e.conditions,
            e.meta.as_deref().cloned().unwrap_or_default(),
        )),
        _ => None,
    }
}

/// The Service `ns/svc`, as the MCS rules read it.
fn service_seen(engine: &SyncEngine, ns: &str, svc: &str) -> Option<Service> {
    match engine.get(Side::Local, Kind::Service, ns, svc) {
        Some(Obj {
            data: Data::Service(s),
            ..
        }) => Some(s.service()),
        _ => None,
    }
}

/// Makes this cluster's ServiceImport on the broker (`t_import`) carry its
/// export: type, ports, session affinity and, for a ClusterSetIP service,
/// the Service's cluster IPs. Returns whether it already does.
fn ensure_broker_import(
    engine: &mut SyncEngine,
    key: &Key,
    t_import: &Target,
    labels: &[(&str, &str)],
    created: &Time,
    mine: &Export,
    service: &Service,
) -> bool {
    let import_spec = ServiceImportSpec {
        ports: mine.ports.clone(),
        ips: if mine.type_ == ferry_api::ServiceImportType::ClusterSetIp {
            mcs::cluster_ips(service)
        } else {
            Vec::new()
        },
        type_: mine.type_,
        session_affinity: mine.session_affinity.clone(),
        session_affinity_config: mine.session_affinity_config.clone(),
        ip_families: mine.ip_families.clone(),
        internal_traffic_policy: mine.internal_traffic_policy.clone(),
        traffic_distribution: mine.traffic_distribution.clone(),
    };
    let created_at = store::time_string(created);
    let exported_labels = map_annotation(&mine.exported_labels);
    let exported_annotations = map_annotation(&mine.exported_annotations);
    // Sorted by key, as the digest of what is stored reads them.
    let mut annotations = Vec::new();
    match mine.clusterset_ip {
        Some(true) => annotations.push((CLUSTERSET_IP, "true")),
        Some(false) => annotations.push((CLUSTERSET_IP, "false")),
        None => {}
    }
    annotations.push((EXPORT_CREATED, created_at.as_str()));
    if !mine.exported_annotations.is_empty() {
        annotations.push((EXPORTED_ANNOTATIONS, &exported_annotations));
    }
    if !mine.exported_labels.is_empty() {
        annotations.push((EXPORTED_LABELS, &exported_labels));
    }
    let import = WantedImport {
        labels,
        annotations: &annotations,
        exported: None,
        spec: &import_spec,
    };
    engine.ensure(key, t_import.clone(), import.digest(), None, || {
        import.body(&t_import.name, &t_import.ns)
    })
}

/// Makes this cluster's EndpointSlice on the broker (`t_slice`) carry the
/// endpoints the MCS rules export from the Service's own slices; with `global_pod_ips` (a headless service
/// of a Globalnet cluster) each pod's global IP instead of its own, and
/// only the pods that have one. Returns whether it already does.
fn ensure_broker_slice(
    engine: &mut SyncEngine,
    key: &Key,
    t_slice: &Target,
    labels: &[(&str, &str)],
    (ns, svc): (&str, &str),
    service: &Service,
    global_pod_ips: Option<&BTreeMap<String, String>>,
) -> bool {
    let slices: Vec<EndpointSlice> = engine
        .store(Side::Local, Kind::EndpointSlice)
        .indexed(ns, svc)
        .filter(|(_, o)| o.label(MANAGED_BY) != Some(MANAGED_BY_FERRY))
        .filter_map(|(_, o)| match &o.data {
            Data::Slice(s) => Some(s.slice()),
            _ => None,
        })
        .collect();
    let slice_refs: Vec<&EndpointSlice> = slices.iter().collect();
    let mut eps = mcs::exported_endpoints(service, &slice_refs);
    if let Some(map) = global_pod_ips {
        eps.endpoints = crate::globalnet::with_global_pod_ips(eps.endpoints, map);
    }
    let mut slice_labels = labels.to_vec();
    slice_labels.push((MANAGED_BY, MANAGED_BY_FERRY));
    let slice = WantedSlice {
        labels: &slice_labels,
        address_type: &eps.address_type,
        endpoints: &eps.endpoints,
        ports: &eps.ports,
    };
    engine.ensure(key, t_slice.clone(), slice.digest(), None, || {
        slice.body(&t_slice.name, &t_slice.ns)
    })
}

/// The conflicts of the service's exports — this cluster's (`mine`) and
/// every other cluster's on the broker — which every export reports.
fn conflicts_with_others(
    engine: &SyncEngine,
    ns: &str,
    svc: &str,
    id: &str,
    mine: Export,
) -> mcs::ServiceConflicts {
    let mut exports: Vec<Export> = engine
        .store(Side::Broker, Kind::ServiceImport)
        .indexed(ns, svc)
        .filter_map(|(_, o)| match &o.data {
            Data::Import(Some(e)) if e.cluster != id => Some(e.as_ref().clone()),
            _ => None,
        })
        .collect();
    exports.push(mine);
    mcs::merge(&exports)
        .map(|m| m.service_conflict_summary())
        .unwrap_or_default()
}

/// Writes the ServiceExport's conditions when they say something other than
/// what it has (compared without transition times).
fn ensure_conditions(
    engine: &mut SyncEngine,
    key: &Key,
    t_export: Target,
    conds: &[Condition],
    previous_digest: u64,
) {
    if store::conditions_digest(conds) != previous_digest {
        let d = store::digest(conds);
        engine.ensure_status(key, t_export, d, json!({"conditions": conds}));
    }
}
