//! The two controllers every API server needs to keep its own promises:
//! namespace deletion (remove the contents, then the namespace) and garbage
//! collection of objects whose owner (`metadata.ownerReferences`) is gone.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{broadcast, watch};

use crate::auth::Identity;
use crate::objects;
use crate::ops::{self, DeleteOptions};
use crate::registry::ResourceDef;
use crate::state::App;
use crate::store::{Event, EventKind, Precondition, Stored, Write};

/// Starts the controllers on the current runtime.
pub fn spawn(app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    tokio::spawn(async move {
        let mut events = app.store.subscribe();
        let mut owners = OwnerIndex::build(&app);
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        loop {
            tokio::select! {
                ev = events.recv() => match ev {
                    Ok(ev) => {
                        owners.observe(&ev);
                        if ev.kind == EventKind::Deleted {
                            collect_dependents(&app, &mut owners, &ev).await;
                        }
                        if ev.key.starts_with("/core/namespaces/") && ev.kind == EventKind::Modified {
                            finalize_namespaces(&app).await;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => owners = OwnerIndex::build(&app),
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = app.controllers_wake.notified() => finalize_namespaces(&app).await,
                _ = tick.tick() => finalize_namespaces(&app).await,
                _ = shutdown.changed() => return,
            }
        }
    });
}

/// owner uid → keys of the objects that name it in `ownerReferences`.
#[derive(Default)]
struct OwnerIndex {
    dependents: HashMap<String, HashSet<Arc<str>>>,
}

fn owner_uids(stored: &Stored) -> Vec<String> {
    // Most objects have no owner: skip parsing them.
    if !stored.json.windows(15).any(|w| w == b"ownerReferences") {
        return Vec::new();
    }
    let Ok(value) = stored.value() else {
        return Vec::new();
    };
    value
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .filter_map(|r| r.get("uid").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

impl OwnerIndex {
    fn build(app: &App) -> Self {
        let mut index = OwnerIndex::default();
        let (_, all, _) = app.store.list("/", None, None, |_, _| true);
        for (key, stored) in all {
            for uid in owner_uids(&stored) {
                index.dependents.entry(uid).or_default().insert(key.clone());
            }
        }
        index
    }

    fn observe(&mut self, ev: &Event) {
        if let Some(prev) = &ev.prev {
            for uid in owner_uids(prev) {
                if let Some(set) = self.dependents.get_mut(&uid) {
                    set.remove(&ev.key);
                }
            }
        }
        if ev.kind != EventKind::Deleted {
            for uid in owner_uids(&ev.object) {
                self.dependents
                    .entry(uid)
                    .or_default()
                    .insert(ev.key.clone());
            }
        }
    }
}

/// Splits a storage key into (resource, namespace, name).
fn resolve(app: &App, key: &str) -> Option<(Arc<ResourceDef>, Option<String>, String)> {
    let mut parts = key.trim_start_matches('/').split('/');
    let group = parts.next()?;
    let group = if group == "core" { "" } else { group };
    let plural = parts.next()?;
    let def = app.registry.by_group_resource(group, plural)?;
    let rest: Vec<&str> = parts.collect();
    match (def.namespaced, rest.as_slice()) {
        (true, [ns, name]) => Some((def, Some(ns.to_string()), name.to_string())),
        (false, [name]) => Some((def, None, name.to_string())),
        _ => None,
    }
}

async fn collect_dependents(app: &App, owners: &mut OwnerIndex, ev: &Event) {
    let Ok(value) = ev.object.value() else {
        return;
    };
    let uid = objects::meta_str(&value, "uid");
    let Some(keys) = owners.dependents.remove(uid) else {
        return;
    };
    for key in keys {
        let Some((def, ns, name)) = resolve(app, &key) else {
            continue;
        };
        let result = ops::delete(
            app,
            &Identity::Admin,
            &def,
            ns.as_deref(),
            &name,
            &DeleteOptions::default(),
        )
        .await;
        match result {
            Ok(_) | Err(crate::error::Error::NotFound { .. }) => {
                tracing::debug!(%key, owner = uid, "garbage-collected a dependent");
            }
            Err(e) => tracing::warn!(%key, error = %e, "garbage collection failed"),
        }
    }
}

/// Deletes the contents of terminating namespaces, then the namespaces.
async fn finalize_namespaces(app: &App) {
    let Some(ns_def) = app.registry.get("", "v1", "namespaces") else {
        return;
    };
    let (_, namespaces, _) = app.store.list(&ns_def.prefix(), None, None, |_, _| true);
    for (key, stored) in namespaces {
        let Ok(value) = stored.value() else { continue };
        if !objects::is_terminating(&value) {
            continue;
        }
        let ns = objects::meta_str(&value, "name").to_string();
        let mut remaining = 0usize;
        let mut seen = HashSet::new();
        for def in app.registry.all() {
            if !def.namespaced || !seen.insert(def.prefix()) {
                continue;
            }
            let (_, items, _) =
                app.store
                    .list(&def.collection_prefix(Some(&ns)), None, None, |_, _| true);
            for (item_key, _) in items {
                remaining += 1;
                let Some((_, _, name)) = resolve(app, &item_key) else {
                    continue;
                };
                let opts = DeleteOptions::default();
                if let Err(e) =
                    ops::delete(app, &Identity::Admin, &def, Some(&ns), &name, &opts).await
                    && !matches!(e, crate::error::Error::NotFound { .. })
                {
                    tracing::warn!(key = %item_key, error = %e, "namespace cleanup failed");
                }
            }
        }
        if remaining > 0 {
            // Objects without finalizers are gone now; count what is left.
            remaining = count_in_namespace(app, &ns);
        }
        if remaining == 0 {
            let write = Write::Delete {
                key: key.to_string(),
                precondition: Precondition::Revision(stored.rev),
            };
            if let Err(e) = app.store.write(write).await {
                tracing::debug!(namespace = %ns, error = %e, "namespace removal will be retried");
            }
        }
    }
}

fn count_in_namespace(app: &App, ns: &str) -> usize {
    let mut seen = HashSet::new();
    app.registry
        .all()
        .into_iter()
        .filter(|def| def.namespaced && seen.insert(def.prefix()))
        .map(|def| {
            let (_, items, _) =
                app.store
                    .list(&def.collection_prefix(Some(ns)), None, Some(1), |_, _| true);
            items.len()
        })
        .sum()
}
