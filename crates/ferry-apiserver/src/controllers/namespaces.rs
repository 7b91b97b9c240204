//! Namespace deletion: a terminating namespace's contents are deleted, then
//! the namespace itself once nothing is left in it.

use std::collections::HashSet;

use crate::auth::Identity;
use crate::error::Error;
use crate::objects;
use crate::ops::{self, DeleteOptions};
use crate::state::App;
use crate::store::{Precondition, Write};

/// Deletes the contents of terminating namespaces, then the namespaces.
pub(super) async fn finalize(app: &App) {
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
                let Some((_, _, name)) = app.registry.resolve_key(&item_key) else {
                    continue;
                };
                let opts = DeleteOptions::default();
                if let Err(e) =
                    ops::delete(app, &Identity::Admin, &def, Some(&ns), &name, &opts).await
                    && !matches!(e, Error::NotFound { .. })
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
