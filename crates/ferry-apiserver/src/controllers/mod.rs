//! The controllers every API server needs to keep its own promises:
//! namespace deletion (remove the contents, then the namespace) and garbage
//! collection of dependents (`metadata.ownerReferences`) with the three
//! propagation policies.

mod gc;
mod namespaces;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, watch};

use crate::state::App;
use crate::store::EventKind;

/// Starts the controllers on the current runtime.
pub fn spawn(app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    tokio::spawn(async move {
        let mut events = app.store.subscribe();
        let mut collector = gc::Collector::start(&app).await;
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        loop {
            tokio::select! {
                ev = events.recv() => match ev {
                    Ok(ev) => {
                        collector.observe(&app, &ev).await;
                        if ev.key.starts_with("/core/namespaces/") && ev.kind == EventKind::Modified {
                            namespaces::finalize(&app).await;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        collector = gc::Collector::start(&app).await;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = app.controllers_wake.notified() => namespaces::finalize(&app).await,
                _ = tick.tick() => namespaces::finalize(&app).await,
                _ = shutdown.changed() => return,
            }
        }
    });
}
