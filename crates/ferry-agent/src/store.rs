//! What the agent keeps of the objects it watches: not the objects, only
//! the fields the sync engine reads, plus digests of the fields it writes.
//!
//! At 10k exported services an agent watches some 70k objects; kept whole
//! (typed, or as JSON) they cost 1.5–4 KB each. Here an object is its
//! resourceVersion, the few labels the engine reads, and per kind:
//! - inputs the MCS rules read — a ServiceExport's creation time and
//!   conditions, a Service's spec, an EndpointSlice's endpoints and ports, a
//!   broker ServiceImport parsed into an [`Export`](crate::mcs::Export), a Cluster's or an
//!   Endpoint's spec;
//! - for objects the engine writes (imports, export data, copies), a 64-bit
//!   digest of exactly the fields it writes — the labels in
//!   [`WRITTEN_LABELS`](digest::WRITTEN_LABELS), the annotations ferry writes, the spec or
//!   endpoints, and separately the status. The engine builds what it wants in
//!   the same typed form and compares digests: equal means in sync, with no
//!   JSON built or walked.
//!
//! Digests are SipHash over the objects' JSON serialisation (streamed into
//! the hasher, never materialised); both sides go through the same Rust
//! types, so the server's key order or omitted empty fields do not matter.
//!
//! Here: [`Store`], the objects of one kind from one API with their index by
//! service; `object`: the reduced objects and how each kind reduces;
//! `digest`: the digests.

use std::collections::HashMap;

mod digest;
mod object;

#[cfg(test)]
mod tests;

pub(crate) use digest::{
    DerivedSpec, conditions_digest, derived_service_digest, digest, import_digest,
    import_status_digest, label_pairs, slice_digest, spec_digest, time_string,
};
pub(crate) use object::{Data, Item, K8S_SERVICE_NAME, Kind, Obj, Side, SliceInfo, Watched};
pub use object::{EXPORT_CREATED, EXPORTED_ANNOTATIONS, EXPORTED_LABELS};

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

    /// Every object, with its namespace and name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, &Obj)> + '_ {
        self.objs
            .iter()
            .flat_map(|(ns, m)| m.iter().map(move |(name, o)| (&**ns, &**name, o)))
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
