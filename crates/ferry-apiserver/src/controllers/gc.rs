//! Garbage collection of dependents, as kube-controller-manager's garbage
//! collector does it for each propagation policy of the owner's deletion:
//!
//! - background (the default): once the owner is gone its dependents are
//!   deleted, except a dependent that still has another owner, which only
//!   loses its reference to the one that went;
//! - foreground: the owner is held by the `foregroundDeletion` finalizer
//!   while its dependents are deleted, and goes once none that has
//!   `blockOwnerDeletion` is left;
//! - orphan: the owner is held by the `orphan` finalizer while its
//!   dependents lose their references to it, then goes; they stay.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::{Value, json};

use crate::auth::Identity;
use crate::error::{Error, Result};
use crate::objects::{self, meta_str};
use crate::ops::{
    self, DeleteOptions, FOREGROUND_FINALIZER, Mutation, ORPHAN_FINALIZER, Propagation,
    WriteOptions,
};
use crate::state::App;
use crate::store::{Event, EventKind, Stored};

/// Most attempts at an edit that keeps meeting concurrent writers.
const EDIT_RETRIES: usize = 16;

/// The owner → dependents graph, and the owners waiting in foreground.
#[derive(Default)]
pub(super) struct Collector {
    /// owner uid → keys of the objects that name it in `ownerReferences`.
    dependents: HashMap<String, HashSet<Arc<str>>>,
    /// uid → key of owners held by `foregroundDeletion`.
    waiting: HashMap<String, Arc<str>>,
}

fn owner_refs(stored: &Stored) -> Vec<Value> {
    // Most objects have no owner: skip parsing them.
    if !stored.mentions("ownerReferences") {
        return Vec::new();
    }
    stored
        .value()
        .ok()
        .and_then(|v| v.pointer("/metadata/ownerReferences").cloned())
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
}

fn ref_uid(r: &Value) -> Option<&str> {
    r.get("uid").and_then(Value::as_str)
}

fn owner_uids(stored: &Stored) -> Vec<String> {
    owner_refs(stored)
        .iter()
        .filter_map(|r| ref_uid(r).map(str::to_string))
        .collect()
}

/// True for a terminating object that holds `finalizer`.
fn held_by(value: &Value, finalizer: &str) -> bool {
    objects::is_terminating(value) && objects::finalizers(value).iter().any(|f| f == finalizer)
}

impl Collector {
    /// Builds the graph from the store, then finishes what a restart (or a
    /// lagging event feed) interrupted: owners held for orphaning or
    /// foreground deletion, and dependents whose owners are all gone.
    pub async fn start(app: &App) -> Self {
        let mut collector = Collector::default();
        let (_, all, _) = app.store.list("/", None, None, |_, _| true);
        let mut held = Vec::new();
        let mut orphaned = Vec::new();
        for (key, stored) in &all {
            for uid in owner_uids(stored) {
                collector
                    .dependents
                    .entry(uid)
                    .or_default()
                    .insert(key.clone());
            }
            if stored.mentions("deletionTimestamp") {
                held.push(key.clone());
            }
        }
        for (key, stored) in &all {
            let refs = owner_refs(stored);
            if !refs.is_empty() && !refs.iter().any(|r| owner_exists(app, key, r)) {
                orphaned.push(key.clone());
            }
        }
        for key in held {
            if let Some(stored) = app.store.get(&key) {
                collector.on_live(app, &key, &stored).await;
            }
        }
        for key in orphaned {
            let uids: Vec<String> = app
                .store
                .get(&key)
                .map_or_else(Vec::new, |s| owner_uids(&s));
            for uid in uids {
                collector.release(app, &key, &uid).await;
            }
        }
        collector
    }

    /// Follows one change.
    pub async fn observe(&mut self, app: &App, ev: &Event) {
        for stored in ev
            .prev
            .iter()
            .chain((ev.kind == EventKind::Deleted).then_some(&ev.object))
        {
            for uid in owner_uids(stored) {
                if let Some(set) = self.dependents.get_mut(&uid) {
                    set.remove(&ev.key);
                }
            }
        }
        if ev.kind == EventKind::Deleted {
            self.on_deleted(app, ev).await;
            return;
        }
        let owners = owner_uids(&ev.object);
        let owners_changed = ev
            .prev
            .as_ref()
            .is_none_or(|prev| owner_uids(prev) != owners);
        for uid in owners {
            self.dependents
                .entry(uid)
                .or_default()
                .insert(ev.key.clone());
        }
        if owners_changed {
            self.collect_if_ownerless(app, &ev.key, &ev.object).await;
        }
        self.on_live(app, &ev.key, &ev.object).await;
    }

    /// A dependent that names owners none of which exists follows them at
    /// once, as Kubernetes' collector does for an owner it cannot find: a
    /// controller that races its owner's deletion (the sandbox's Deployment
    /// controller making a pod while `ferry uninstall` deletes the
    /// Deployment) must not leave the pod behind for good.
    async fn collect_if_ownerless(&self, app: &App, key: &str, stored: &Stored) {
        let refs = owner_refs(stored);
        if refs.is_empty() || refs.iter().any(|r| owner_exists(app, key, r)) {
            return;
        }
        for uid in owner_uids(stored) {
            self.release(app, key, &uid).await;
        }
    }

    /// An owner went: its dependents follow (background), and owners in
    /// foreground deletion that it blocked may go now.
    async fn on_deleted(&mut self, app: &App, ev: &Event) {
        let Ok(value) = ev.object.value() else {
            return;
        };
        let uid = meta_str(&value, "uid").to_string();
        self.waiting.remove(&uid);
        if let Some(keys) = self.dependents.remove(&uid) {
            for key in keys {
                self.release(app, &key, &uid).await;
            }
        }
        for owner in owner_uids(&ev.object) {
            if let Some(owner_key) = self.waiting.get(&owner).cloned() {
                self.finish_foreground(app, &owner_key).await;
            }
        }
    }

    /// An object that is being deleted with the orphan or foreground
    /// policy: do that policy's work.
    async fn on_live(&mut self, app: &App, key: &Arc<str>, stored: &Stored) {
        if !stored.mentions("deletionTimestamp") {
            return;
        }
        let Ok(value) = stored.value() else { return };
        let uid = meta_str(&value, "uid").to_string();
        if held_by(&value, ORPHAN_FINALIZER) {
            let dependents: Vec<Arc<str>> = self
                .dependents
                .get(&uid)
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default();
            for dep in dependents {
                log_failure(&dep, strip_owner(app, &dep, &uid).await);
            }
            log_failure(key, remove_finalizer(app, key, ORPHAN_FINALIZER).await);
        } else if held_by(&value, FOREGROUND_FINALIZER) {
            self.waiting.insert(uid.clone(), key.clone());
            let dependents: Vec<Arc<str>> = self
                .dependents
                .get(&uid)
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default();
            for dep in dependents {
                self.delete_dependent(app, &dep).await;
            }
            self.finish_foreground(app, key).await;
        }
    }

    /// Deletes a dependent of an owner in foreground deletion: in the
    /// foreground too when it has dependents of its own, so the chain
    /// holds all the way down.
    async fn delete_dependent(&self, app: &App, key: &str) {
        let Some((def, ns, name)) = app.registry.resolve_key(key) else {
            return;
        };
        let has_own = app
            .store
            .get(key)
            .and_then(|s| s.value().ok())
            .is_some_and(|v| self.dependents.contains_key(meta_str(&v, "uid")));
        let opts = DeleteOptions {
            propagation: if has_own {
                Propagation::Foreground
            } else {
                Propagation::Background
            },
            ..DeleteOptions::default()
        };
        let result = ops::delete(app, &Identity::Admin, &def, ns.as_deref(), &name, &opts).await;
        log_failure(key, result.map(|_| ()));
    }

    /// Lets an owner in foreground deletion go once no dependent that has
    /// `blockOwnerDeletion` is left.
    async fn finish_foreground(&mut self, app: &App, owner_key: &str) {
        let Some(value) = app.store.get(owner_key).and_then(|s| s.value().ok()) else {
            return;
        };
        let uid = meta_str(&value, "uid").to_string();
        if !held_by(&value, FOREGROUND_FINALIZER) {
            self.waiting.remove(&uid);
            return;
        }
        let blocked = self.dependents.get(&uid).is_some_and(|keys| {
            keys.iter().any(|k| {
                app.store.get(k).is_some_and(|s| {
                    owner_refs(&s).iter().any(|r| {
                        ref_uid(r) == Some(uid.as_str())
                            && r.get("blockOwnerDeletion").and_then(Value::as_bool) == Some(true)
                    })
                })
            })
        });
        if !blocked {
            self.waiting.remove(&uid);
            log_failure(
                owner_key,
                remove_finalizer(app, owner_key, FOREGROUND_FINALIZER).await,
            );
        }
    }

    /// A dependent whose owner `owner_uid` is gone: deleted, unless another
    /// of its owners still exists; then it only loses that reference.
    async fn release(&self, app: &App, key: &str, owner_uid: &str) {
        let Some(stored) = app.store.get(key) else {
            return;
        };
        let others_live = owner_refs(&stored)
            .iter()
            .filter(|r| ref_uid(r) != Some(owner_uid))
            .any(|r| owner_exists(app, key, r));
        if others_live {
            log_failure(key, strip_owner(app, key, owner_uid).await);
            return;
        }
        let Some((def, ns, name)) = app.registry.resolve_key(key) else {
            return;
        };
        let opts = DeleteOptions::default();
        match ops::delete(app, &Identity::Admin, &def, ns.as_deref(), &name, &opts).await {
            Ok(_) | Err(Error::NotFound { .. }) => {
                tracing::debug!(%key, owner = owner_uid, "garbage-collected a dependent");
            }
            Err(e) => tracing::warn!(%key, error = %e, "garbage collection failed"),
        }
    }
}

/// True if the owner an owner reference names is in the store (with that
/// uid). An owner of a kind this server does not serve counts as present:
/// nothing can tell it is gone.
fn owner_exists(app: &App, dependent_key: &str, r: &Value) -> bool {
    let field = |name: &str| r.get(name).and_then(Value::as_str).unwrap_or("");
    let Some(def) = app.registry.by_kind(field("apiVersion"), field("kind")) else {
        return true;
    };
    let namespace = app
        .registry
        .resolve_key(dependent_key)
        .and_then(|(_, ns, _)| ns);
    let ns = if def.namespaced {
        namespace.as_deref()
    } else {
        None
    };
    app.store
        .get(&def.key(ns, field("name")))
        .and_then(|s| s.value().ok())
        .is_some_and(|v| meta_str(&v, "uid") == field("uid"))
}

fn log_failure(key: &str, result: Result<()>) {
    if let Err(e) = result {
        tracing::warn!(%key, error = %e, "garbage collection failed");
    }
}

/// Removes the owner reference to `owner_uid` from the object at `key`.
async fn strip_owner(app: &App, key: &str, owner_uid: &str) -> Result<()> {
    edit(app, key, |value| {
        let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) else {
            return false;
        };
        let Some(refs) = meta
            .get_mut("ownerReferences")
            .and_then(Value::as_array_mut)
        else {
            return false;
        };
        let before = refs.len();
        refs.retain(|r| ref_uid(r) != Some(owner_uid));
        if refs.len() == before {
            return false;
        }
        if refs.is_empty() {
            meta.remove("ownerReferences");
        }
        true
    })
    .await
}

/// Removes `finalizer`; an object being deleted with none left goes.
async fn remove_finalizer(app: &App, key: &str, finalizer: &str) -> Result<()> {
    edit(app, key, |value| {
        let mut finalizers = objects::finalizers(value);
        let before = finalizers.len();
        finalizers.retain(|f| f != finalizer);
        if finalizers.len() == before {
            return false;
        }
        value["metadata"]["finalizers"] = json!(finalizers);
        true
    })
    .await
}

/// Read-modify-write of the object at `key` as the system: `change`
/// returns false when there is nothing to do. Retries on conflicts.
async fn edit(app: &App, key: &str, change: impl Fn(&mut Value) -> bool) -> Result<()> {
    let Some((def, ns, name)) = app.registry.resolve_key(key) else {
        return Ok(());
    };
    for _ in 0..EDIT_RETRIES {
        let Some(current) = app.store.get(key) else {
            return Ok(());
        };
        let mut value = current.value()?;
        if !change(&mut value) {
            return Ok(());
        }
        value["metadata"]["resourceVersion"] = json!(current.rev.to_string());
        let result = ops::update(
            app,
            &Identity::Admin,
            &def,
            ns.as_deref(),
            &name,
            Mutation::Replace(value),
            WriteOptions::system(),
        )
        .await;
        match result {
            Ok(_) | Err(Error::NotFound { .. }) => return Ok(()),
            Err(Error::Conflict { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::Conflict {
        resource: def.qualified(),
        name,
    })
}
