//! What the agent keeps of the objects it watches: not the objects, only
//! the fields the sync engine reads, plus digests of the fields it writes.
//!
//! At 10k exported services an agent watches some 70k objects; kept whole
//! (typed, or as JSON) they cost 1.5–4 KB each. Here an object is its
//! resourceVersion, the few labels the engine reads, and per kind:
//! - inputs the MCS rules read — a ServiceExport's creation time and
//!   conditions, a Service's spec, an EndpointSlice's endpoints and ports, a
//!   broker ServiceImport parsed into an [`Export`], a Cluster's or an
//!   Endpoint's spec;
//! - for objects the engine writes (imports, export data, copies), a 64-bit
//!   digest of exactly the fields it writes — the labels in
//!   [`WRITTEN_LABELS`], the export-creation annotation, the spec or
//!   endpoints, and separately the status. The engine builds what it wants in
//!   the same typed form and compares digests: equal means in sync, with no
//!   JSON built or walked.
//!
//! Digests are SipHash over the objects' JSON serialisation (streamed into
//! the hasher, never materialised); both sides go through the same Rust
//! types, so the server's key order or omitted empty fields do not matter.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hasher;
use std::sync::Arc;

use ferry_api::labels::{
    APP_MANAGED_BY, CLUSTER, MANAGED_BY, MANAGED_BY_FERRY, ORIGIN_NAME, ORIGIN_NAMESPACE,
    SERVICE_NAME, SOURCE_CLUSTER,
};
use ferry_api::{
    Cluster, Endpoint, ServiceExport, ServiceImport, ServiceImportSpec, ServiceImportStatus,
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

use crate::mcs::Export;

/// Annotation on a cluster's ServiceImport on the broker: when its
/// ServiceExport was created (what "oldest export wins" compares).
pub const EXPORT_CREATED: &str = "ferry.dev/export-created";

/// Standard label linking an EndpointSlice to its Service.
pub(crate) const K8S_SERVICE_NAME: &str = "kubernetes.io/service-name";

/// The labels ferry writes on the objects it owns; a target's digest covers
/// these (and no others, so labels added by anyone else never look like a
/// difference).
pub(crate) const WRITTEN_LABELS: [&str; 7] = [
    CLUSTER,
    SOURCE_CLUSTER,
    SERVICE_NAME,
    ORIGIN_NAME,
    ORIGIN_NAMESPACE,
    APP_MANAGED_BY,
    MANAGED_BY,
];

/// The labels kept in the stores: the written ones and the standard
/// service-name label of the cluster's own EndpointSlices.
const KEPT_LABELS: [&str; 8] = [
    CLUSTER,
    SOURCE_CLUSTER,
    SERVICE_NAME,
    ORIGIN_NAME,
    ORIGIN_NAMESPACE,
    APP_MANAGED_BY,
    MANAGED_BY,
    K8S_SERVICE_NAME,
];

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
    /// An EndpointSlice: what an export or an import reads of it.
    Slice(Arc<SliceInfo>),
    /// A cluster's ServiceImport on the broker, as the merge reads it
    /// (`None` when it lacks the source-cluster label).
    Import(Option<Arc<Export>>),
    /// A Cluster's or an Endpoint's spec.
    Spec(Arc<Value>),
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

/// Digest of conditions as `mcs::same_conditions` compares them (type,
/// status, reason, message; not the transition time).
pub(crate) fn conditions_digest(conditions: &[Condition]) -> u64 {
    let parts: Vec<[&str; 4]> = conditions
        .iter()
        .map(|c| [&*c.type_, &*c.status, &*c.reason, &*c.message])
        .collect();
    digest(&parts)
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
    fn of(address_type: String, endpoints: Vec<SliceEndpoint>, ports: Vec<EndpointPort>) -> Self {
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

    fn new(meta: &ObjectMeta, digest: u64, status_digest: u64, data: Data) -> Obj {
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

/// SipHash (fixed keys) of `v`'s JSON serialisation, serialised into a
/// reused per-thread buffer and hashed in one pass (serde_json writes in
/// many small pieces; hashing each costs more than the bytes themselves).
pub(crate) fn digest<T: Serialize + ?Sized>(v: &T) -> u64 {
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUF.with(|buf| {
        let mut h = DefaultHasher::new();
        match buf.try_borrow_mut() {
            Ok(mut buf) => {
                buf.clear();
                // Serialising plain data into a Vec cannot fail; a failure
                // would only make the digest differ, costing one write.
                let _ = serde_json::to_writer(&mut *buf, v);
                h.write(&buf);
                // Keep the buffer from holding on to a rare huge object.
                if buf.capacity() > 1 << 20 {
                    *buf = Vec::new();
                }
            }
            // Re-entered (a Serialize impl computing a digest): no reuse.
            Err(_) => h.write(&serde_json::to_vec(v).unwrap_or_default()),
        }
        h.finish()
    })
}

/// The written labels of an object's label map, in key order: the form a
/// digest takes labels in.
pub(crate) fn written_labels(labels: Option<&BTreeMap<String, String>>) -> Vec<(&str, &str)> {
    labels
        .into_iter()
        .flatten()
        .filter(|(k, _)| WRITTEN_LABELS.contains(&k.as_str()))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// Desired labels in the form of [`written_labels`] (sorted by key, only
/// written ones).
pub(crate) fn label_pairs<'a>(pairs: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut v: Vec<(&str, &str)> = pairs
        .iter()
        .copied()
        .filter(|(k, _)| WRITTEN_LABELS.contains(k))
        .collect();
    v.sort_unstable();
    v
}

/// Digest of a ServiceImport's written main fields; `labels` as from
/// [`written_labels`] or [`label_pairs`].
pub(crate) fn import_digest(
    labels: &[(&str, &str)],
    export_created: Option<&str>,
    spec: &ServiceImportSpec,
) -> u64 {
    digest(&(labels, export_created, spec))
}

/// Digest of a ServiceImport's status (absent counts as empty).
pub(crate) fn import_status_digest(status: Option<&ServiceImportStatus>) -> u64 {
    match status {
        Some(s) => digest(s),
        None => digest(&ServiceImportStatus::default()),
    }
}

/// Digest of an EndpointSlice's written fields.
pub(crate) fn slice_digest(
    labels: &[(&str, &str)],
    address_type: &str,
    endpoints: &[SliceEndpoint],
    ports: &[EndpointPort],
) -> u64 {
    digest(&(labels, address_type, endpoints, ports))
}

/// Digest of a Cluster's or an Endpoint's written fields.
pub(crate) fn spec_digest(labels: &[(&str, &str)], spec: &Value) -> u64 {
    digest(&(labels, spec))
}

/// An RFC 3339 timestamp as Kubernetes writes it.
pub(crate) fn time_string(t: &Time) -> String {
    match serde_json::to_value(t) {
        Ok(Value::String(s)) => s,
        _ => String::new(),
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
        let state = ExportState {
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

impl Watched for Service {
    fn into_obj(self, _side: Side) -> Obj {
        let info = ServiceInfo::of(self.spec.unwrap_or_default());
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
        let created = self
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(EXPORT_CREATED))
            .map(String::as_str);
        let digest = import_digest(
            &written_labels(self.metadata.labels.as_ref()),
            created,
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

/// An object's (namespace, name).
type ObjRef = (Box<str>, Box<str>);

/// Where an object is indexed: the (namespace, service) it belongs to.
pub(crate) type IndexFn = for<'a> fn(&'a str, &'a Obj) -> Option<(&'a str, &'a str)>;

/// Objects of one kind from one API, by namespace and name, with an index
/// by the service they belong to.
#[derive(Debug, Default)]
pub(crate) struct Store {
    objs: HashMap<Box<str>, HashMap<Box<str>, Obj>>,
    /// How objects are indexed (none: not indexed).
    index: Option<IndexFn>,
    /// namespace → service → the objects belonging to it.
    by_service: HashMap<Box<str>, HashMap<Box<str>, Vec<ObjRef>>>,
    /// Objects of a relist in progress.
    pub init: Option<Vec<Item>>,
    /// Whether a first list completed.
    pub synced: bool,
}

impl Store {
    /// An empty store, indexing objects with `index`.
    pub fn new(index: Option<IndexFn>) -> Store {
        Store {
            index,
            ..Default::default()
        }
    }

    /// The object `ns/name`.
    pub fn get(&self, ns: &str, name: &str) -> Option<&Obj> {
        self.objs.get(ns)?.get(name)
    }

    /// The objects indexed under service `ns/svc`, with their names.
    pub fn indexed<'a>(
        &'a self,
        ns: &str,
        svc: &str,
    ) -> impl Iterator<Item = (&'a str, &'a Obj)> + 'a {
        self.by_service
            .get(ns)
            .and_then(|m| m.get(svc))
            .into_iter()
            .flatten()
            .filter_map(|(ons, n)| Some((&**n, self.get(ons, n)?)))
    }

    /// The services with indexed objects in namespace `ns`.
    pub fn services_in<'a>(&'a self, ns: &str) -> impl Iterator<Item = &'a str> + 'a {
        self.by_service
            .get(ns)
            .into_iter()
            .flat_map(|m| m.keys().map(|k| &**k))
    }

    /// Inserts (or replaces) `item`. Refused (false: no news) when the
    /// stored object is as new or newer — a write's answer and the watch
    /// event of the same write carry the same version.
    pub fn put(&mut self, item: Item) -> bool {
        if let Some(old) = self
            .objs
            .get_mut(&*item.ns)
            .and_then(|m| m.get_mut(&*item.name))
            && old.rv != 0
            && item.obj.rv != 0
            && item.obj.rv <= old.rv
        {
            if item.obj.rv == old.rv {
                // The same version: keep what a write's answer knows.
                old.applied_main = old.applied_main.or(item.obj.applied_main);
                old.applied_status = old.applied_status.or(item.obj.applied_status);
            }
            return false;
        }
        let Item { ns, name, obj } = item;
        self.remove(&ns, &name);
        if let Some(index) = self.index
            && let Some((ins, svc)) = index(&ns, &obj)
        {
            self.by_service
                .entry(ins.into())
                .or_default()
                .entry(svc.into())
                .or_default()
                .push((ns.clone(), name.clone()));
        }
        self.objs.entry(ns).or_default().insert(name, obj);
        true
    }

    /// Removes `ns/name` (and its index entry).
    pub fn remove(&mut self, ns: &str, name: &str) -> Option<Obj> {
        let names = self.objs.get_mut(ns)?;
        let old = names.remove(name)?;
        if names.is_empty() {
            self.objs.remove(ns);
        }
        if let Some(index) = self.index
            && let Some((ins, svc)) = index(ns, &old)
            && let Some(services) = self.by_service.get_mut(ins)
            && let Some(list) = services.get_mut(svc)
        {
            list.retain(|(n_ns, n)| !(&**n_ns == ns && &**n == name));
            if list.is_empty() {
                services.remove(svc);
                if services.is_empty() {
                    self.by_service.remove(ins);
                }
            }
        }
        Some(old)
    }

    /// Empties the store, returning what it held.
    pub fn take_all(&mut self) -> Vec<Item> {
        self.by_service.clear();
        std::mem::take(&mut self.objs)
            .into_iter()
            .flat_map(|(ns, m)| {
                m.into_iter().map(move |(name, obj)| Item {
                    ns: ns.clone(),
                    name,
                    obj,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(ns: &str, name: &str, rv: u64, service: Option<&str>) -> Item {
        let mut labels = BTreeMap::new();
        if let Some(s) = service {
            labels.insert(K8S_SERVICE_NAME.to_string(), s.to_string());
        }
        let meta = ObjectMeta {
            resource_version: Some(rv.to_string()),
            labels: Some(labels),
            ..Default::default()
        };
        Item {
            ns: ns.into(),
            name: name.into(),
            obj: Obj::new(&meta, rv, 0, Data::None),
        }
    }

    fn by_label<'a>(ns: &'a str, o: &'a Obj) -> Option<(&'a str, &'a str)> {
        Some((ns, o.label(K8S_SERVICE_NAME)?))
    }

    fn names(store: &Store, ns: &str, svc: &str) -> Vec<String> {
        let mut v: Vec<String> = store.indexed(ns, svc).map(|(n, _)| n.into()).collect();
        v.sort();
        v
    }

    #[test]
    fn index_follows_puts_moves_and_removes() {
        let mut store = Store::new(Some(by_label));
        assert!(store.put(item("ns", "web-1", 1, Some("web"))));
        assert!(store.put(item("ns", "web-2", 2, Some("web"))));
        assert!(store.put(item("other", "web-1", 3, Some("web"))));
        assert_eq!(names(&store, "ns", "web"), ["web-1", "web-2"]);
        assert_eq!(names(&store, "other", "web"), ["web-1"]);

        // Relabelled to another service: it moves.
        assert!(store.put(item("ns", "web-2", 4, Some("api"))));
        assert_eq!(names(&store, "ns", "web"), ["web-1"]);
        assert_eq!(names(&store, "ns", "api"), ["web-2"]);
        let mut services: Vec<&str> = store.services_in("ns").collect();
        services.sort();
        assert_eq!(services, ["api", "web"]);

        assert!(store.remove("ns", "web-1").is_some());
        assert!(store.remove("ns", "web-1").is_none());
        assert_eq!(names(&store, "ns", "web"), Vec::<String>::new());
        assert_eq!(store.services_in("ns").collect::<Vec<_>>(), ["api"]);
        assert_eq!(store.take_all().len(), 2);
        assert!(store.get("other", "web-1").is_none());
    }

    #[test]
    fn older_and_same_versions_are_no_news_but_keep_what_a_write_knows() {
        let mut store = Store::new(None);
        assert!(store.put(item("ns", "a", 5, None)));
        assert!(!store.put(item("ns", "a", 4, None)), "older");
        // The watch event of a write, after the write's answer (or the
        // other way round): no news, and the applied digests stay.
        let mut answer = item("ns", "a", 5, None);
        answer.obj.applied_main = Some(42);
        assert!(!store.put(answer));
        assert_eq!(store.get("ns", "a").map(|o| o.applied_main), Some(Some(42)));
        assert!(!store.put(item("ns", "a", 5, None)));
        assert_eq!(store.get("ns", "a").map(|o| o.applied_main), Some(Some(42)));
        // A newer version (someone else's write) replaces it, applied and all.
        assert!(store.put(item("ns", "a", 6, None)));
        assert_eq!(store.get("ns", "a").map(|o| o.applied_main), Some(None));
    }

    #[test]
    fn digests_hash_the_json_of_a_value() {
        // The JSON serialisation, hashed whole.
        let v = serde_json::json!({"a": [1, 2, {"b": "c\"d"}], "e": null});
        let mut h = DefaultHasher::new();
        h.write(serde_json::to_string(&v).unwrap_or_default().as_bytes());
        assert_eq!(digest(&v), h.finish());
        assert_ne!(digest(&v), digest(&serde_json::json!({"a": [1, 2]})));
    }

    #[test]
    fn slices_keep_what_exports_and_imports_carry() {
        let e = SliceEndpoint {
            addresses: vec!["100.64.0.7".into()],
            conditions: Some(EndpointConditions {
                ready: Some(true),
                serving: Some(true),
                terminating: Some(false),
            }),
            hostname: Some("web-0".into()),
            node_name: Some("n1".into()),
            target_ref: Some(ObjectReference {
                kind: Some("Pod".into()),
                name: Some("web-0-abc".into()),
                namespace: Some("shop".into()),
                uid: Some("u".into()),
                ..Default::default()
            }),
            zone: Some("z".into()),
            ..Default::default()
        };
        let port = EndpointPort {
            name: Some("http".into()),
            port: Some(8080),
            protocol: Some("TCP".into()),
            app_protocol: None,
        };
        let info = SliceInfo::of("IPv4".into(), vec![e.clone()], vec![port.clone()]);
        let back = info.slice();
        assert_eq!(back.address_type, "IPv4");
        assert_eq!(back.ports, Some(vec![port]));
        let b = &back.endpoints[0];
        assert_eq!(
            (&b.addresses, &b.conditions, &b.hostname, &b.node_name),
            (&e.addresses, &e.conditions, &e.hostname, &e.node_name)
        );
        // Of the pod reference, its name (a headless endpoint's fallback
        // hostname); a zone is not carried by MCS exports.
        let r = b.target_ref.as_ref().unwrap();
        assert_eq!(
            (r.kind.as_deref(), r.name.as_deref()),
            (Some("Pod"), Some("web-0-abc"))
        );
        assert_eq!(b.zone, None);
    }

    #[test]
    fn export_conditions_compare_as_same_conditions_does() {
        use crate::mcs::{self, Readiness, Validity};
        let t0 = Time(k8s_openapi::jiff::Timestamp::from_second(1_000_000).unwrap());
        let t1 = Time(k8s_openapi::jiff::Timestamp::from_second(2_000_000).unwrap());
        let pending = mcs::export_conditions(&Validity::Valid, Readiness::Pending, &[], &[], &t0);
        let se = ServiceExport {
            metadata: ObjectMeta::default(),
            spec: Default::default(),
            status: Some(ferry_api::ServiceExportStatus {
                conditions: pending.clone(),
            }),
        };
        let Data::Export(state) = se.into_obj(Side::Local).data else {
            panic!("a ServiceExport keeps its export state");
        };
        // The same conditions computed later keep their transition times
        // from the reduced previous ones, and compare equal.
        let again = mcs::export_conditions(
            &Validity::Valid,
            Readiness::Pending,
            &[],
            &state.previous(),
            &t1,
        );
        assert!(mcs::same_conditions(&again, &pending));
        assert_eq!(again, pending, "transition times kept");
        assert_eq!(conditions_digest(&again), state.conditions);
        // Ready: one condition changes, and only its time moves.
        let ready = mcs::export_conditions(
            &Validity::Valid,
            Readiness::Exported,
            &[],
            &state.previous(),
            &t1,
        );
        assert!(!mcs::same_conditions(&ready, &pending));
        assert_ne!(conditions_digest(&ready), state.conditions);
        let times: Vec<&Time> = ready.iter().map(|c| &c.last_transition_time).collect();
        assert_eq!(times, [&t0, &t1, &t0]);
    }
}
