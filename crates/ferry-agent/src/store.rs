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
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::discovery::v1::{Endpoint as SliceEndpoint, EndpointPort, EndpointSlice};
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
    Export {
        /// Its creation time.
        created: Option<Time>,
        /// Whether it is being deleted.
        deleting: bool,
        /// Its status conditions.
        conditions: Vec<Condition>,
    },
    /// A Service: only its spec is set.
    Service(Arc<Service>),
    /// An EndpointSlice: address type, endpoints and ports only.
    Slice(Arc<EndpointSlice>),
    /// A cluster's ServiceImport on the broker, as the merge reads it
    /// (`None` when it lacks the source-cluster label).
    Import(Option<Arc<Export>>),
    /// A Cluster's or an Endpoint's spec.
    Spec(Arc<Value>),
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

/// A `std::io::Write` that feeds a hasher.
struct HashWriter(DefaultHasher);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// SipHash (fixed keys) of `v`'s JSON serialisation.
pub(crate) fn digest<T: Serialize + ?Sized>(v: &T) -> u64 {
    let mut w = HashWriter(DefaultHasher::new());
    // Serialising plain data into a writer that never fails cannot fail; a
    // failure would only make the digest differ, costing one write.
    let _ = serde_json::to_writer(&mut w, v);
    w.0.finish()
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
        let data = Data::Export {
            created: self.metadata.creation_timestamp.clone(),
            deleting: self.metadata.deletion_timestamp.is_some(),
            conditions,
        };
        Obj::new(&self.metadata, 0, status_digest, data)
    }
}

impl Watched for Service {
    fn into_obj(self, _side: Side) -> Obj {
        let data = Data::Service(Arc::new(Service {
            spec: self.spec,
            ..Default::default()
        }));
        Obj::new(&self.metadata, 0, 0, data)
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
            Data::Slice(Arc::new(EndpointSlice {
                metadata: ObjectMeta::default(),
                address_type: self.address_type,
                endpoints: self.endpoints,
                ports: Some(ports),
            }))
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
    fn digests_stream_the_json_they_hash() {
        // Streaming in pieces hashes what one write of the whole would.
        let v = serde_json::json!({"a": [1, 2, {"b": "c\"d"}], "e": null});
        let mut h = DefaultHasher::new();
        h.write(serde_json::to_string(&v).unwrap_or_default().as_bytes());
        assert_eq!(digest(&v), h.finish());
        assert_ne!(digest(&v), digest(&serde_json::json!({"a": [1, 2]})));
    }
}
