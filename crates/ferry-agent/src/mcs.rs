//! The Multi-Cluster Services rules, as pure functions with no I/O: whether a
//! Service can be exported, what one cluster exports (type, ports, affinity,
//! endpoints), how the exports of several clusters merge into one
//! `ServiceImport` (oldest export wins for type and session affinity, ports are
//! a union by name then protocol+port, conflicting exports are flagged), and
//! the `Valid` / `Ready` / `Conflict` conditions of a `ServiceExport`.

use std::collections::{BTreeMap, BTreeSet};

use ferry_api::mcs::condition::{self, reason};
use ferry_api::{ServiceImportSpec, ServiceImportType, ServicePort};
use k8s_openapi::api::core::v1::{Service, SessionAffinityConfig};
use k8s_openapi::api::discovery::v1::{
    Endpoint as SliceEndpoint, EndpointConditions, EndpointPort, EndpointSlice,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// One cluster's export of a service, as the merge needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct Export {
    /// The exporting cluster's id.
    pub cluster: String,
    /// When its ServiceExport was created (oldest wins).
    pub created: Time,
    /// ClusterSetIP or Headless.
    pub type_: ServiceImportType,
    /// The Service's ports.
    pub ports: Vec<ServicePort>,
    /// `ClientIP` or `None` (absent means `None`).
    pub session_affinity: Option<String>,
    /// Session affinity settings.
    pub session_affinity_config: Option<SessionAffinityConfig>,
    /// The Service's IP families (`IPv4`, `IPv6`); empty when unknown (an
    /// export written by an older ferry).
    pub ip_families: Vec<String>,
    /// The Service's `internalTrafficPolicy` (absent means `Cluster`).
    pub internal_traffic_policy: Option<String>,
    /// The Service's `trafficDistribution`.
    pub traffic_distribution: Option<String>,
    /// The ServiceExport's `exportedLabels`.
    pub exported_labels: BTreeMap<String, String>,
    /// The ServiceExport's `exportedAnnotations`.
    pub exported_annotations: BTreeMap<String, String>,
    /// The export's own clusterset-IP choice (`ferry.dev/clusterset-ip`
    /// `"true"` or `"false"`); `None` follows the clusterset's default.
    pub clusterset_ip: Option<bool>,
}

/// The merge of every cluster's export of one service.
#[derive(Clone, Debug, PartialEq)]
pub struct Merged {
    /// The aggregated spec (no clusterset IPs: ferry answers with each
    /// cluster's own service IP).
    pub spec: ServiceImportSpec,
    /// Every exporting cluster, sorted.
    pub clusters: Vec<String>,
    /// The labels every import carries (the oldest export's `exportedLabels`).
    pub labels: BTreeMap<String, String>,
    /// The annotations every import carries (the oldest export's
    /// `exportedAnnotations`).
    pub annotations: BTreeMap<String, String>,
    /// The oldest export's clusterset-IP choice (`None`: the clusterset's
    /// default); always `Some(false)` for a headless service.
    pub clusterset_ip: Option<bool>,
    /// For each conflicting cluster, the conflict reasons (constants of
    /// `ferry_api::mcs::condition::reason`), in a stable order.
    pub conflicts: BTreeMap<String, Vec<&'static str>>,
    /// The cluster whose export is the oldest (its settings are used).
    pub oldest: String,
    /// The `exportedLabels` keys on which an export differs from the
    /// oldest's (absent in one, or another value).
    pub label_keys: BTreeSet<String>,
    /// Likewise for `exportedAnnotations`.
    pub annotation_keys: BTreeSet<String>,
}

impl Merged {
    /// The conflict reasons of `cluster` (empty when it does not conflict).
    pub fn conflicts_of(&self, cluster: &str) -> &[&'static str] {
        self.conflicts
            .get(cluster)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The conflict reasons of the service: those of every conflicting
    /// cluster, in a stable order. Every export of a conflicted service is
    /// marked `Conflict=True` with them (KEP-1645 and the mcs-api
    /// conformance suite: the condition is raised on each ServiceExport).
    pub fn service_conflicts(&self) -> Vec<&'static str> {
        let mut all: Vec<&'static str> = Vec::new();
        for reason in REASON_ORDER {
            if self.conflicts.values().any(|r| r.contains(&reason)) {
                all.push(reason);
            }
        }
        all
    }

    /// What the conflicts are about, naming the clusters and (for exported
    /// labels and annotations) the keys: the detail of every export's
    /// `Conflict` message. Empty without conflicts.
    pub fn conflict_causes(&self) -> String {
        if self.conflicts.is_empty() {
            return String::new();
        }
        let mut parts = Vec::new();
        let keys = |k: &BTreeSet<String>| k.iter().cloned().collect::<Vec<_>>().join(", ");
        if !self.label_keys.is_empty() {
            parts.push(format!(
                "exportedLabels differ on {}",
                keys(&self.label_keys)
            ));
        }
        if !self.annotation_keys.is_empty() {
            parts.push(format!(
                "exportedAnnotations differ on {}",
                keys(&self.annotation_keys)
            ));
        }
        let others: Vec<&str> = self.conflicts.keys().map(String::as_str).collect();
        let (who, verb) = if others.len() == 1 {
            ("cluster", "differs")
        } else {
            ("clusters", "differ")
        };
        parts.push(format!(
            "cluster {}'s export is the oldest and its settings are used; {who} {} {verb} from it",
            self.oldest,
            others.join(", ")
        ));
        parts.join("; ")
    }
}

/// The keys on which two maps differ.
fn differing_keys(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> Vec<String> {
    a.keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect()
}

/// The order conflict reasons are listed in.
const REASON_ORDER: [&str; 9] = [
    reason::PORT_CONFLICT,
    reason::TYPE_CONFLICT,
    reason::SESSION_AFFINITY_CONFLICT,
    reason::SESSION_AFFINITY_CONFIG_CONFLICT,
    reason::INTERNAL_TRAFFIC_POLICY_CONFLICT,
    reason::TRAFFIC_DISTRIBUTION_CONFLICT,
    reason::IP_FAMILY_CONFLICT,
    reason::LABELS_CONFLICT,
    reason::ANNOTATIONS_CONFLICT,
];

fn traffic_policy(p: &Option<String>) -> &str {
    p.as_deref().unwrap_or("Cluster")
}

/// The conflicts of `export` with the oldest one's settings, besides ports.
fn setting_conflicts(export: &Export, oldest: &Export) -> Vec<&'static str> {
    let mut reasons = Vec::new();
    if export.type_ != oldest.type_ {
        reasons.push(reason::TYPE_CONFLICT);
    }
    if affinity(&export.session_affinity) != affinity(&oldest.session_affinity) {
        reasons.push(reason::SESSION_AFFINITY_CONFLICT);
    } else if export.session_affinity_config != oldest.session_affinity_config {
        reasons.push(reason::SESSION_AFFINITY_CONFIG_CONFLICT);
    }
    if traffic_policy(&export.internal_traffic_policy)
        != traffic_policy(&oldest.internal_traffic_policy)
    {
        reasons.push(reason::INTERNAL_TRAFFIC_POLICY_CONFLICT);
    }
    if export.traffic_distribution != oldest.traffic_distribution {
        reasons.push(reason::TRAFFIC_DISTRIBUTION_CONFLICT);
    }
    // An older ferry does not say; only two known, different sets conflict.
    let (mut mine, mut theirs) = (export.ip_families.clone(), oldest.ip_families.clone());
    mine.sort();
    theirs.sort();
    if !mine.is_empty() && !theirs.is_empty() && mine != theirs {
        reasons.push(reason::IP_FAMILY_CONFLICT);
    }
    if export.exported_labels != oldest.exported_labels {
        reasons.push(reason::LABELS_CONFLICT);
    }
    if export.exported_annotations != oldest.exported_annotations {
        reasons.push(reason::ANNOTATIONS_CONFLICT);
    }
    reasons
}

/// Whether two port lists hold the same ports, in any order.
fn same_ports(a: &[ServicePort], b: &[ServicePort]) -> bool {
    a.len() == b.len() && a.iter().all(|p| b.contains(p))
}

fn affinity(a: &Option<String>) -> &str {
    a.as_deref().unwrap_or("None")
}

/// Merges the exports of one service. `None` when there are none.
///
/// Rules (KEP-1645): exports are ordered by creation time, then cluster id
/// (a deterministic tie-break); the oldest decides the type and the session
/// affinity (and its config); ports are the union of all exports' ports,
/// matched by name and then by protocol+port — a port whose name matches an
/// earlier one with a different protocol or number, or whose protocol+port
/// matches an earlier one with a different name, is left out and its cluster
/// gets `PortConflict`, as does a cluster whose ports are not the oldest's
/// (the union is still exposed). A different type gives `TypeConflict`, a different
/// affinity `SessionAffinityConflict`, a different affinity config
/// `SessionAffinityConfigConflict`, and likewise internal traffic policy,
/// traffic distribution, IP families, exported labels and annotations (the
/// oldest's are used).
pub fn merge(exports: &[Export]) -> Option<Merged> {
    let mut ordered: Vec<&Export> = exports.iter().collect();
    ordered.sort_by(|a, b| (&a.created, &a.cluster).cmp(&(&b.created, &b.cluster)));
    let oldest = *ordered.first()?;

    let mut ports: Vec<ServicePort> = Vec::new();
    let mut conflicts: BTreeMap<String, Vec<&'static str>> = BTreeMap::new();
    let mut label_keys = BTreeSet::new();
    let mut annotation_keys = BTreeSet::new();
    for export in &ordered {
        let mut reasons = Vec::new();
        let mut port_conflict = false;
        for port in &export.ports {
            let same_name = ports.iter().find(|p| p.name == port.name);
            match same_name {
                Some(p) if p.protocol == port.protocol && p.port == port.port => {}
                Some(_) => port_conflict = true,
                None => {
                    if ports
                        .iter()
                        .any(|p| p.protocol == port.protocol && p.port == port.port)
                    {
                        port_conflict = true;
                    } else {
                        ports.push(port.clone());
                    }
                }
            }
        }
        // Ports the oldest lacks (or it has and this one lacks) still make
        // the union, but the exports disagree: a conflict, as the mcs-api
        // conformance suite expects.
        port_conflict |= !same_ports(&export.ports, &oldest.ports);
        if port_conflict {
            reasons.push(reason::PORT_CONFLICT);
        }
        reasons.extend(setting_conflicts(export, oldest));
        label_keys.extend(differing_keys(
            &export.exported_labels,
            &oldest.exported_labels,
        ));
        annotation_keys.extend(differing_keys(
            &export.exported_annotations,
            &oldest.exported_annotations,
        ));
        if !reasons.is_empty() {
            conflicts.insert(export.cluster.clone(), reasons);
        }
    }

    let mut clusters: Vec<String> = ordered.iter().map(|e| e.cluster.clone()).collect();
    clusters.sort();
    clusters.dedup();
    Some(Merged {
        spec: ServiceImportSpec {
            ports,
            ips: Vec::new(),
            type_: oldest.type_,
            session_affinity: oldest.session_affinity.clone(),
            session_affinity_config: oldest.session_affinity_config.clone(),
            ip_families: oldest.ip_families.clone(),
            internal_traffic_policy: oldest.internal_traffic_policy.clone(),
            traffic_distribution: oldest.traffic_distribution.clone(),
        },
        clusters,
        labels: oldest.exported_labels.clone(),
        annotations: oldest.exported_annotations.clone(),
        clusterset_ip: match oldest.type_ {
            ServiceImportType::ClusterSetIp => oldest.clusterset_ip,
            ServiceImportType::Headless => Some(false),
        },
        conflicts,
        oldest: oldest.cluster.clone(),
        label_keys,
        annotation_keys,
    })
}

/// Whether a Service may be exported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Validity {
    /// It exists and has an exportable type.
    Valid,
    /// There is no Service of that name.
    NoService,
    /// Its type cannot be exported (ExternalName).
    InvalidServiceType(String),
}

/// The validity of exporting `service`.
pub fn validate_service(service: Option<&Service>) -> Validity {
    let Some(service) = service else {
        return Validity::NoService;
    };
    let type_ = service
        .spec
        .as_ref()
        .and_then(|s| s.type_.clone())
        .unwrap_or_else(|| "ClusterIP".into());
    if type_ == "ExternalName" {
        Validity::InvalidServiceType(type_)
    } else {
        Validity::Valid
    }
}

/// Whether `service` is headless (`clusterIP: None`).
pub fn is_headless(service: &Service) -> bool {
    service
        .spec
        .as_ref()
        .and_then(|s| s.cluster_ip.as_deref())
        .is_some_and(|ip| ip == "None")
}

/// The service's cluster IPs (empty for headless services or before one is
/// allocated).
pub fn cluster_ips(service: &Service) -> Vec<String> {
    let Some(spec) = service.spec.as_ref() else {
        return Vec::new();
    };
    let mut ips: Vec<String> = spec.cluster_ips.clone().unwrap_or_default();
    if ips.is_empty()
        && let Some(ip) = &spec.cluster_ip
    {
        ips.push(ip.clone());
    }
    ips.retain(|ip| !ip.is_empty() && ip != "None");
    ips
}

/// The service's IP families: as its spec says, else those of its cluster
/// IPs (empty for a headless service that says nothing).
pub fn ip_families(service: &Service) -> Vec<String> {
    let said = service
        .spec
        .as_ref()
        .and_then(|s| s.ip_families.clone())
        .unwrap_or_default();
    if !said.is_empty() {
        return said;
    }
    let mut families: Vec<String> = cluster_ips(service)
        .iter()
        .map(|ip| family(ip).to_string())
        .collect();
    families.dedup();
    families
}

/// What the ServiceExport asks to be exported besides the Service: its
/// `exportedLabels` and `exportedAnnotations`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportedMeta {
    /// `spec.exportedLabels`.
    pub labels: BTreeMap<String, String>,
    /// `spec.exportedAnnotations`.
    pub annotations: BTreeMap<String, String>,
    /// The `ferry.dev/clusterset-ip` choice: `"true"` opts in (also in a
    /// clusterset without `--enable-clusterset-ip`, as Submariner's
    /// annotation does), `"false"` opts out; absent follows the default.
    pub clusterset_ip: Option<bool>,
    /// The service's Globalnet ingress IP (`ferry.dev/global-ip`), which
    /// other clusters reach it at instead of its cluster IP.
    pub global_ip: Option<String>,
    /// A headless service's pods' Globalnet ingress IPs by pod IP
    /// (`ferry.dev/global-pod-ips`).
    pub global_pod_ips: Option<BTreeMap<String, String>>,
}

/// What `cluster` exports of a (valid) `service` whose ServiceExport was
/// created at `created` and asks for `meta`.
pub fn export_of(cluster: &str, created: Time, service: &Service, meta: &ExportedMeta) -> Export {
    let ip_families = ip_families(service);
    let spec = service.spec.clone().unwrap_or_default();
    let ports = spec
        .ports
        .unwrap_or_default()
        .into_iter()
        .map(|p| ServicePort {
            name: p.name.filter(|n| !n.is_empty()),
            protocol: p.protocol.unwrap_or_else(|| "TCP".into()),
            app_protocol: p.app_protocol,
            port: p.port,
        })
        .collect();
    Export {
        cluster: cluster.to_string(),
        created,
        type_: if is_headless(service) {
            ServiceImportType::Headless
        } else {
            ServiceImportType::ClusterSetIp
        },
        ports,
        session_affinity_config: if spec.session_affinity.as_deref() == Some("ClientIP") {
            spec.session_affinity_config
        } else {
            None
        },
        session_affinity: spec.session_affinity.filter(|a| a != "None"),
        ip_families,
        internal_traffic_policy: spec.internal_traffic_policy,
        traffic_distribution: spec.traffic_distribution,
        exported_labels: meta.labels.clone(),
        exported_annotations: meta.annotations.clone(),
        clusterset_ip: meta.clusterset_ip,
    }
}

/// The endpoints one cluster exports for a service: an address type, the
/// endpoints and the ports of its EndpointSlice on the broker.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportedEndpoints {
    /// `IPv4` or `IPv6`.
    pub address_type: String,
    /// The endpoints.
    pub endpoints: Vec<SliceEndpoint>,
    /// The ports.
    pub ports: Vec<EndpointPort>,
}

fn endpoint_ready(e: &SliceEndpoint) -> bool {
    // A nil `ready` is to be read as ready (discovery.k8s.io/v1 docs).
    e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true)
}

fn family(ip: &str) -> &'static str {
    if ip.contains(':') { "IPv6" } else { "IPv4" }
}

/// The endpoints to export for `service`, given the cluster's own
/// EndpointSlices of it. A ClusterSetIP service exports one endpoint — its
/// ClusterIP (first family), on the service ports — ready when any backend
/// is ready. A headless service exports its ready endpoints, with their
/// hostnames (the endpoint's hostname, else the pod name), on the slices'
/// ports.
pub fn exported_endpoints(service: &Service, slices: &[&EndpointSlice]) -> ExportedEndpoints {
    if is_headless(service) {
        let address_type = slices
            .first()
            .map(|s| s.address_type.clone())
            .unwrap_or_else(|| "IPv4".into());
        let mut endpoints: Vec<SliceEndpoint> = slices
            .iter()
            .filter(|s| s.address_type == address_type)
            .flat_map(|s| s.endpoints.iter())
            .filter(|e| endpoint_ready(e) && !e.addresses.is_empty())
            .map(|e| SliceEndpoint {
                addresses: e.addresses.clone(),
                conditions: Some(EndpointConditions {
                    ready: Some(true),
                    serving: Some(true),
                    terminating: Some(false),
                }),
                hostname: e.hostname.clone().or_else(|| {
                    e.target_ref
                        .as_ref()
                        .filter(|r| r.kind.as_deref() == Some("Pod"))
                        .and_then(|r| r.name.clone())
                }),
                node_name: e.node_name.clone(),
                ..Default::default()
            })
            .collect();
        endpoints.sort_by(|a, b| a.addresses.cmp(&b.addresses));
        endpoints.dedup_by(|a, b| a.addresses == b.addresses);
        let ports = slices
            .iter()
            .find_map(|s| s.ports.clone())
            .unwrap_or_default();
        return ExportedEndpoints {
            address_type,
            endpoints,
            ports,
        };
    }
    let ips = cluster_ips(service);
    let ready = slices
        .iter()
        .flat_map(|s| s.endpoints.iter())
        .any(endpoint_ready);
    let ports = service
        .spec
        .as_ref()
        .and_then(|s| s.ports.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|p| EndpointPort {
            name: p.name.filter(|n| !n.is_empty()),
            port: Some(p.port),
            protocol: Some(p.protocol.unwrap_or_else(|| "TCP".into())),
            app_protocol: p.app_protocol,
        })
        .collect();
    let Some(ip) = ips.first() else {
        return ExportedEndpoints {
            address_type: "IPv4".into(),
            endpoints: Vec::new(),
            ports,
        };
    };
    ExportedEndpoints {
        address_type: family(ip).into(),
        endpoints: vec![SliceEndpoint {
            addresses: vec![ip.clone()],
            conditions: Some(EndpointConditions {
                ready: Some(ready),
                serving: Some(ready),
                terminating: Some(false),
            }),
            ..Default::default()
        }],
        ports,
    }
}

/// Where the export's propagation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// The export data is on the broker as desired.
    Exported,
    /// Not yet (or the broker cannot be reached).
    Pending,
}

fn condition(
    type_: &str,
    status: bool,
    reason: &str,
    message: String,
    previous: &[Condition],
    now: &Time,
) -> Condition {
    let status = if status { "True" } else { "False" };
    let last_transition_time = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| now.clone());
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message,
        last_transition_time,
        observed_generation: None,
    }
}

/// A service's conflicts as its exports report them: the reasons (every
/// export's `Conflict` reason, joined by commas) and their causes (the
/// message; see [`Merged::conflict_causes`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceConflicts {
    /// Constants of `ferry_api::mcs::condition::reason`, in a stable order.
    pub reasons: Vec<&'static str>,
    /// What differs, naming clusters and keys.
    pub causes: String,
}

impl Merged {
    /// The conflicts every export of this service reports.
    pub fn service_conflict_summary(&self) -> ServiceConflicts {
        ServiceConflicts {
            reasons: self.service_conflicts(),
            causes: self.conflict_causes(),
        }
    }
}

/// The `Valid`, `Ready` and `Conflict` conditions of a ServiceExport.
/// `previous` are its current conditions: a condition whose status does not
/// change keeps its `lastTransitionTime`; `now` stamps the others.
pub fn export_conditions(
    validity: &Validity,
    readiness: Readiness,
    conflicts: &ServiceConflicts,
    previous: &[Condition],
    now: &Time,
) -> Vec<Condition> {
    let ServiceConflicts {
        reasons: conflicts,
        causes,
    } = conflicts;
    let valid = match validity {
        Validity::Valid => condition(
            condition::VALID,
            true,
            reason::VALID,
            "the service can be exported".into(),
            previous,
            now,
        ),
        Validity::NoService => condition(
            condition::VALID,
            false,
            reason::NO_SERVICE,
            "there is no Service of this name in this namespace".into(),
            previous,
            now,
        ),
        Validity::InvalidServiceType(t) => condition(
            condition::VALID,
            false,
            reason::INVALID_SERVICE_TYPE,
            format!("a Service of type {t} cannot be exported"),
            previous,
            now,
        ),
    };
    let ready = match (validity, readiness) {
        (Validity::Valid, Readiness::Exported) => condition(
            condition::READY,
            true,
            reason::EXPORTED,
            "the service is exported to the clusterset".into(),
            previous,
            now,
        ),
        (Validity::Valid, Readiness::Pending) => condition(
            condition::READY,
            false,
            reason::PENDING,
            "the export is being propagated to the broker".into(),
            previous,
            now,
        ),
        _ => condition(
            condition::READY,
            false,
            reason::FAILED,
            "the export is not valid".into(),
            previous,
            now,
        ),
    };
    let conflict = if *validity == Validity::Valid && !conflicts.is_empty() {
        condition(
            condition::CONFLICT,
            true,
            &conflicts.join(","),
            if causes.is_empty() {
                format!(
                    "the exports of this service conflict ({}); the oldest export's settings are used",
                    conflicts.join(", ")
                )
            } else {
                format!(
                    "the exports of this service conflict ({}): {causes}",
                    conflicts.join(", ")
                )
            },
            previous,
            now,
        )
    } else {
        condition(
            condition::CONFLICT,
            false,
            reason::NO_CONFLICTS,
            "no conflicts".into(),
            previous,
            now,
        )
    };
    vec![valid, ready, conflict]
}

/// The `Ready` condition of a merged ServiceImport written by this agent:
/// ready, or pending for the reason given (no clusterset IP could be given).
pub fn import_ready(pending: Option<&str>, now: &Time) -> Condition {
    use ferry_api::mcs::import_condition::{self as ic, reason as ir};
    match pending {
        None => condition(
            ic::READY,
            true,
            ir::READY,
            "the service is imported".into(),
            &[],
            now,
        ),
        Some(why) => condition(
            ic::READY,
            false,
            ir::PENDING,
            format!("no clusterset IP: {why}"),
            &[],
            now,
        ),
    }
}

/// The clusterset-IP choice in an object's `annotations`
/// (`ferry.dev/clusterset-ip`): `"true"` or `"false"`; anything else, or
/// no annotation, is no choice.
pub fn clusterset_ip_choice(annotations: Option<&BTreeMap<String, String>>) -> Option<bool> {
    match annotations
        .and_then(|a| a.get(ferry_api::labels::CLUSTERSET_IP))
        .map(String::as_str)
    {
        Some("true") => Some(true),
        Some("false") => Some(false),
        _ => None,
    }
}

/// Whether ferry gives a ClusterSet IP to a service of IP `families`: IPv4
/// only. A derived Service of another family would need an IPv6 service
/// range in the importing cluster, and its slices and the proxy's rules
/// have only been proven for IPv4 (an export of an older ferry lists no
/// family: IPv4, the only one it handled).
pub fn clusterset_ip_supported(families: &[String]) -> bool {
    families.iter().all(|f| f == "IPv4")
}

/// The `Ready=False` condition of an import whose service's IP `families`
/// get no ClusterSet IP ([`clusterset_ip_supported`]): the import is
/// still usable by name, as an opted-out one is.
pub fn import_family_not_supported(families: &[String], now: &Time) -> Condition {
    use ferry_api::mcs::import_condition::{self as ic, reason as ir};
    condition(
        ic::READY,
        false,
        ir::IP_FAMILY_NOT_SUPPORTED,
        format!(
            "no clusterset IP: ferry gives ClusterSet IPs to IPv4 services only, this one is {}; \
             ferry dns answers its name with the exporting clusters' own service IPs",
            families.join("/")
        ),
        &[],
        now,
    )
}

/// Whether two condition lists say the same, ignoring transition times.
pub fn same_conditions(a: &[Condition], b: &[Condition]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.type_ == y.type_
                && x.status == y.status
                && x.reason == y.reason
                && x.message == y.message
        })
}

#[cfg(test)]
mod tests;
