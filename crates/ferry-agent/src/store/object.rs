//! The reduced objects: what the agent keeps of each watched object (its
//! resourceVersion, the labels in [`KEPT_LABELS`], digests, and the
//! kind-specific inputs in [`Data`]), and how each watched kind reduces to
//! one ([`Watched`]).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use ferry_api::labels::{
    APP_MANAGED_BY, APP_MANAGED_BY_FERRY, GLOBAL_IP, GLOBAL_POD_IPS, MANAGED_BY, MANAGED_BY_FERRY,
    SERVICE_NAME, SOURCE_CLUSTER,
};
use ferry_api::{
    Cluster, ConnectionStatus, Endpoint, Gateway, HaStatus, ServiceExport, ServiceImport,
};
use k8s_openapi::api::core::v1::{
    Namespace, ObjectReference, Service, ServicePort as ServicePortK8s, ServiceSpec,
    SessionAffinityConfig,
};
use k8s_openapi::api::discovery::v1::{
    Endpoint as SliceEndpoint, EndpointConditions, EndpointPort, EndpointSlice,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta, Time};
use kube::Resource;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::digest::{
    DerivedSpec, WRITTEN_LABELS, conditions_digest, derived_service_digest, digest, import_digest,
    import_status_digest, slice_digest, spec_digest, written_annotations, written_labels,
};
pub use super::digest::{EXPORT_CREATED, EXPORTED_ANNOTATIONS, EXPORTED_LABELS};
use crate::mcs::{Export, ExportedMeta};

/// A JSON map annotation of `annotations` (empty when absent or malformed).
fn json_map(annotations: Option<&BTreeMap<String, String>>, key: &str) -> BTreeMap<String, String> {
    annotations
        .and_then(|a| a.get(key))
        .and_then(|v| serde_json::from_str(v).ok())
        .unwrap_or_default()
}

pub(crate) use super::digest::K8S_SERVICE_NAME;

/// The labels kept in the stores: the written ones (the standard
/// service-name label of the cluster's own EndpointSlices among them).
const KEPT_LABELS: [&str; WRITTEN_LABELS.len()] = WRITTEN_LABELS;

/// Which API an object lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Side {
    Local,
    Broker,
}

/// The kinds the engine watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Kind {
    ServiceExport,
    Service,
    EndpointSlice,
    Namespace,
    ServiceImport,
    Cluster,
    Endpoint,
    /// A local gateway: which remote clusters its cables reach.
    Gateway,
}

/// A watched object, reduced to what the engine reads.
#[derive(Debug)]
pub(crate) struct Obj {
    /// `metadata.resourceVersion` as a number (0 when it is not one).
    pub rv: u64,
    labels: Box<[(u8, Box<str>)]>,
    /// Digest of the written fields of the main resource (see the module doc).
    pub digest: u64,
    /// Digest of the status (0 for kinds whose status ferry does not write).
    pub status_digest: u64,
    /// When this version is the server's answer to one of the engine's
    /// writes: the digests it wrote (main resource, status). Such a version
    /// is in sync with them even if the server normalised what it stored,
    /// so a difference the server puts back never makes a write loop.
    pub applied_main: Option<u64>,
    /// See `applied_main`.
    pub applied_status: Option<u64>,
    /// What the engine reads besides labels.
    pub data: Data,
}

/// The kind-specific part of an [`Obj`].
#[derive(Debug)]
pub(crate) enum Data {
    /// Nothing besides labels and digests (namespaces, local imports,
    /// ferry's own local EndpointSlices).
    None,
    /// A ServiceExport.
    Export(Box<ExportState>),
    /// A Service: what the MCS rules read of its spec.
    Service(Arc<ServiceInfo>),
    /// One of ferry's derived Services ([`is_derived_service`]): only its
    /// allocated ClusterIP is read (an importing cluster holds one per
    /// import, so its full spec would cost ~0.5 KB each at 10k imports).
    Derived(Option<Ipv4Addr>),
    /// An EndpointSlice: what an export or an import reads of it.
    Slice(Arc<SliceInfo>),
    /// A cluster's ServiceImport on the broker, as the merge reads it
    /// (`None` when it lacks the source-cluster label).
    Import(Option<Arc<Export>>),
    /// A Cluster's or an Endpoint's spec.
    Spec(Arc<Value>),
    /// A local Gateway: the remote clusters it reaches now.
    Links(Arc<GatewayLinks>),
}

/// What the engine reads of a ServiceExport.
#[derive(Debug)]
pub(crate) struct ExportState {
    /// Its creation time.
    pub created: Option<Time>,
    /// Whether it is being deleted.
    pub deleting: bool,
    /// Digest of its conditions without their transition times (see
    /// [`conditions_digest`]): equal means they say the same.
    pub conditions: u64,
    /// When each (type, status) of its conditions last changed, to keep
    /// those times on a rewrite.
    pub transitions: Box<[Transition]>,
    /// Its `exportedLabels` and `exportedAnnotations` (boxed: usually empty).
    pub meta: Option<Box<ExportedMeta>>,
}

/// A condition's type and status, and when it took that status.
pub(crate) type Transition = (Box<str>, Box<str>, Time);

impl ExportState {
    /// Its conditions as `mcs::export_conditions` reads the previous ones:
    /// type, status and transition time (reason and message left empty).
    pub fn previous(&self) -> Vec<Condition> {
        self.transitions
            .iter()
            .map(|(t, s, at)| Condition {
                type_: t.to_string(),
                status: s.to_string(),
                last_transition_time: at.clone(),
                reason: String::new(),
                message: String::new(),
                observed_generation: None,
            })
            .collect()
    }
}

/// What the MCS rules read of a Service's spec.
#[derive(Debug)]
pub(crate) struct ServiceInfo {
    type_: Option<Box<str>>,
    cluster_ip: Option<Box<str>>,
    cluster_ips: Box<[Box<str>]>,
    ports: Box<[ServicePortK8s]>,
    session_affinity: Option<Box<str>>,
    session_affinity_config: Option<SessionAffinityConfig>,
    ip_families: Box<[Box<str>]>,
    internal_traffic_policy: Option<Box<str>>,
    traffic_distribution: Option<Box<str>>,
}

impl ServiceInfo {
    fn of(spec: ServiceSpec) -> ServiceInfo {
        ServiceInfo {
            type_: spec.type_.map(Into::into),
            cluster_ip: spec.cluster_ip.map(Into::into),
            cluster_ips: spec
                .cluster_ips
                .unwrap_or_default()
                .into_iter()
                .map(Into::into)
                .collect(),
            ports: spec.ports.unwrap_or_default().into(),
            session_affinity: spec.session_affinity.map(Into::into),
            session_affinity_config: spec.session_affinity_config,
            ip_families: spec
                .ip_families
                .unwrap_or_default()
                .into_iter()
                .map(Into::into)
                .collect(),
            internal_traffic_policy: spec.internal_traffic_policy.map(Into::into),
            traffic_distribution: spec.traffic_distribution.map(Into::into),
        }
    }

    /// A Service with this spec, for the MCS rules.
    pub fn service(&self) -> Service {
        let s = |v: &Option<Box<str>>| v.as_deref().map(str::to_string);
        Service {
            spec: Some(ServiceSpec {
                type_: s(&self.type_),
                cluster_ip: s(&self.cluster_ip),
                cluster_ips: (!self.cluster_ips.is_empty())
                    .then(|| self.cluster_ips.iter().map(|ip| ip.to_string()).collect()),
                ports: Some(self.ports.to_vec()),
                session_affinity: s(&self.session_affinity),
                session_affinity_config: self.session_affinity_config.clone(),
                ip_families: (!self.ip_families.is_empty())
                    .then(|| self.ip_families.iter().map(|f| f.to_string()).collect()),
                internal_traffic_policy: s(&self.internal_traffic_policy),
                traffic_distribution: s(&self.traffic_distribution),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

/// What an export or an import reads of an EndpointSlice.
#[derive(Debug)]
pub(crate) struct SliceInfo {
    pub address_type: Box<str>,
    endpoints: Box<[EndpointInfo]>,
    pub ports: Box<[EndpointPort]>,
}

/// One endpoint: the fields MCS exports carry, and a pod's name (the
/// hostname of a headless endpoint that has none).
#[derive(Debug)]
struct EndpointInfo {
    addresses: Box<[Box<str>]>,
    ready: Option<bool>,
    serving: Option<bool>,
    terminating: Option<bool>,
    hostname: Option<Box<str>>,
    node_name: Option<Box<str>>,
    pod: Option<Box<str>>,
}

impl SliceInfo {
    pub(super) fn of(
        address_type: String,
        endpoints: Vec<SliceEndpoint>,
        ports: Vec<EndpointPort>,
    ) -> Self {
        let endpoints = endpoints
            .into_iter()
            .map(|e| {
                let c = e.conditions.unwrap_or_default();
                EndpointInfo {
                    addresses: e.addresses.into_iter().map(Into::into).collect(),
                    ready: c.ready,
                    serving: c.serving,
                    terminating: c.terminating,
                    hostname: e.hostname.map(Into::into),
                    node_name: e.node_name.map(Into::into),
                    pod: e
                        .target_ref
                        .filter(|r| r.kind.as_deref() == Some("Pod"))
                        .and_then(|r| r.name)
                        .map(Into::into),
                }
            })
            .collect();
        SliceInfo {
            address_type: address_type.into(),
            endpoints,
            ports: ports.into(),
        }
    }

    /// The endpoints, as the API has them (with what they carry).
    pub fn endpoints(&self) -> Vec<SliceEndpoint> {
        let s = |v: &Option<Box<str>>| v.as_deref().map(str::to_string);
        self.endpoints
            .iter()
            .map(|e| SliceEndpoint {
                addresses: e.addresses.iter().map(|a| a.to_string()).collect(),
                conditions: (e.ready.is_some() || e.serving.is_some() || e.terminating.is_some())
                    .then_some(EndpointConditions {
                        ready: e.ready,
                        serving: e.serving,
                        terminating: e.terminating,
                    }),
                hostname: s(&e.hostname),
                node_name: s(&e.node_name),
                target_ref: e.pod.as_ref().map(|p| ObjectReference {
                    kind: Some("Pod".into()),
                    name: Some(p.to_string()),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .collect()
    }

    /// An EndpointSlice of these endpoints and ports, for the MCS rules.
    pub fn slice(&self) -> EndpointSlice {
        EndpointSlice {
            address_type: self.address_type.to_string(),
            endpoints: self.endpoints(),
            ports: Some(self.ports.to_vec()),
            ..Default::default()
        }
    }
}

impl Obj {
    /// The value of a kept label.
    pub fn label(&self, key: &str) -> Option<&str> {
        let i = KEPT_LABELS.iter().position(|k| *k == key)?;
        self.labels
            .iter()
            .find(|(j, _)| usize::from(*j) == i)
            .map(|(_, v)| &**v)
    }

    pub(super) fn new(meta: &ObjectMeta, digest: u64, status_digest: u64, data: Data) -> Obj {
        let labels = meta
            .labels
            .iter()
            .flatten()
            .filter_map(|(k, v)| {
                let i = KEPT_LABELS.iter().position(|kept| kept == k)?;
                // KEPT_LABELS has 8 entries, so the index fits a u8.
                Some((u8::try_from(i).ok()?, Box::from(v.as_str())))
            })
            .collect();
        Obj {
            rv: meta
                .resource_version
                .as_deref()
                .and_then(|r| r.parse().ok())
                .unwrap_or(0),
            labels,
            digest,
            status_digest,
            applied_main: None,
            applied_status: None,
            data,
        }
    }
}

/// One cluster's export as recorded in its ServiceImport on the broker.
pub(crate) fn parse_export(si: &ServiceImport) -> Option<Export> {
    let labels = si.metadata.labels.as_ref()?;
    let cluster = labels.get(SOURCE_CLUSTER)?.clone();
    let created: Time = si
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(EXPORT_CREATED))
        .and_then(|t| serde_json::from_value(Value::String(t.clone())).ok())
        .or_else(|| si.metadata.creation_timestamp.clone())?;
    Some(Export {
        cluster,
        created,
        type_: si.spec.type_,
        ports: si.spec.ports.clone(),
        session_affinity: si.spec.session_affinity.clone(),
        session_affinity_config: si.spec.session_affinity_config.clone(),
        ip_families: si.spec.ip_families.clone(),
        internal_traffic_policy: si.spec.internal_traffic_policy.clone(),
        traffic_distribution: si.spec.traffic_distribution.clone(),
        exported_labels: json_map(si.metadata.annotations.as_ref(), EXPORTED_LABELS),
        exported_annotations: json_map(si.metadata.annotations.as_ref(), EXPORTED_ANNOTATIONS),
        clusterset_ip: crate::mcs::clusterset_ip_choice(si.metadata.annotations.as_ref()),
    })
}

/// A kind the engine watches and writes, and how it is reduced.
pub(crate) trait Watched:
    Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static
{
    /// Reduces an object seen on `side`.
    fn into_obj(self, side: Side) -> Obj;
}

impl Watched for ServiceExport {
    fn into_obj(self, _side: Side) -> Obj {
        let conditions = self.status.map(|s| s.conditions).unwrap_or_default();
        let status_digest = digest(&conditions);
        let clusterset_ip = crate::mcs::clusterset_ip_choice(self.metadata.annotations.as_ref());
        let global_ip = self
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(GLOBAL_IP))
            .cloned();
        // Unreadable (not the agent's writing): no pod is mapped yet.
        let global_pod_ips = self
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(GLOBAL_POD_IPS))
            .and_then(|v| serde_json::from_str(v).ok());
        let meta = ExportedMeta {
            labels: self.spec.exported_labels,
            annotations: self.spec.exported_annotations,
            clusterset_ip,
            global_ip,
            global_pod_ips,
        };
        let state = ExportState {
            meta: (meta != ExportedMeta::default()).then(|| Box::new(meta)),
            created: self.metadata.creation_timestamp.clone(),
            deleting: self.metadata.deletion_timestamp.is_some(),
            conditions: conditions_digest(&conditions),
            transitions: conditions
                .into_iter()
                .map(|c| (c.type_.into(), c.status.into(), c.last_transition_time))
                .collect(),
        };
        Obj::new(
            &self.metadata,
            0,
            status_digest,
            Data::Export(Box::new(state)),
        )
    }
}

/// Whether a Service is one of ferry's derived Services (the carrier of
/// an import's ClusterSet IP, see [`crate::vips`]): managed by ferry,
/// labelled with the imported service's name, and named `derived-…`.
pub(crate) fn is_derived_service(meta: &ObjectMeta) -> bool {
    let labels = meta.labels.as_ref();
    let label = |k: &str| labels.and_then(|l| l.get(k)).map(String::as_str);
    label(APP_MANAGED_BY) == Some(APP_MANAGED_BY_FERRY)
        && label(SERVICE_NAME).is_some()
        && meta
            .name
            .as_deref()
            .is_some_and(|n| n.starts_with(crate::vips::DERIVED_PREFIX))
}

impl Watched for Service {
    fn into_obj(self, _side: Side) -> Obj {
        let spec = self.spec.unwrap_or_default();
        // Only ferry's derived Services are written, so only they need a
        // digest; of them only the ClusterIP is read.
        if is_derived_service(&self.metadata) {
            let digest = derived_service_digest(
                &written_labels(self.metadata.labels.as_ref()),
                &DerivedSpec::of(&spec),
            );
            let ip = crate::vips::clusterset_ip(spec.cluster_ip.as_deref());
            return Obj::new(&self.metadata, digest, 0, Data::Derived(ip));
        }
        let info = ServiceInfo::of(spec);
        Obj::new(&self.metadata, 0, 0, Data::Service(Arc::new(info)))
    }
}

impl Watched for EndpointSlice {
    fn into_obj(self, side: Side) -> Obj {
        let ports = self.ports.unwrap_or_default();
        let digest = slice_digest(
            &written_labels(self.metadata.labels.as_ref()),
            &self.address_type,
            &self.endpoints,
            &ports,
        );
        let ferry_local = side == Side::Local
            && self
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(MANAGED_BY))
                .is_some_and(|v| v == MANAGED_BY_FERRY);
        let data = if ferry_local {
            // Ferry's own imports here are written, never read.
            Data::None
        } else {
            Data::Slice(Arc::new(SliceInfo::of(
                self.address_type,
                self.endpoints,
                ports,
            )))
        };
        Obj::new(&self.metadata, digest, 0, data)
    }
}

impl Watched for Namespace {
    fn into_obj(self, _side: Side) -> Obj {
        Obj::new(&self.metadata, 0, 0, Data::None)
    }
}

impl Watched for ServiceImport {
    fn into_obj(self, side: Side) -> Obj {
        let digest = import_digest(
            &written_labels(self.metadata.labels.as_ref()),
            &written_annotations(self.metadata.annotations.as_ref()),
            &self.spec,
        );
        let status_digest = import_status_digest(self.status.as_ref());
        let data = match side {
            Side::Broker => Data::Import(parse_export(&self).map(Arc::new)),
            Side::Local => Data::None,
        };
        Obj::new(&self.metadata, digest, status_digest, data)
    }
}

fn spec_obj<T: Serialize>(meta: &ObjectMeta, spec: &T) -> Obj {
    let spec = serde_json::to_value(spec).unwrap_or(Value::Null);
    let digest = spec_digest(&written_labels(meta.labels.as_ref()), &spec);
    Obj::new(meta, digest, 0, Data::Spec(Arc::new(spec)))
}

impl Watched for Cluster {
    fn into_obj(self, _side: Side) -> Obj {
        spec_obj(&self.metadata, &self.spec)
    }
}

impl Watched for Endpoint {
    fn into_obj(self, _side: Side) -> Obj {
        spec_obj(&self.metadata, &self.spec)
    }
}

/// What the engine reads of a local Gateway: whether it is the active one,
/// and the remote clusters its cables reach (`connected`), as `ferry dns`
/// reads them.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct GatewayLinks {
    pub cluster_id: Box<str>,
    pub active: bool,
    /// Sorted.
    pub connected: Box<[Box<str>]>,
}

impl Watched for Gateway {
    fn into_obj(self, _side: Side) -> Obj {
        let status = self.status.unwrap_or_default();
        let mut connected: Vec<Box<str>> = status
            .connections
            .iter()
            .filter(|c| c.status == ConnectionStatus::Connected)
            .map(|c| c.cluster_id.as_str().into())
            .collect();
        connected.sort();
        connected.dedup();
        let links = GatewayLinks {
            cluster_id: self.spec.cluster_id.into(),
            active: status.ha_status == HaStatus::Active,
            connected: connected.into(),
        };
        Obj::new(&self.metadata, 0, 0, Data::Links(Arc::new(links)))
    }
}

/// An object as it arrives from a watch or a write: where it is, and what is kept.
#[derive(Debug)]
pub(crate) struct Item {
    pub ns: Box<str>,
    pub name: Box<str>,
    pub obj: Obj,
}

impl Item {
    /// Reduces `o`, seen on `side`.
    pub fn of<K: Watched>(o: K, side: Side) -> Item {
        let meta = o.meta();
        let ns = meta.namespace.as_deref().unwrap_or_default().into();
        let name = meta.name.as_deref().unwrap_or_default().into();
        Item {
            ns,
            name,
            obj: o.into_obj(side),
        }
    }
}
