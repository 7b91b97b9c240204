//! One watch of one source, feeding the engine: each event's objects are
//! reduced on the watch's own task and sent as an [`Input::Watch`]; errors
//! are retried with kube-runtime's default backoff.

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::mpsc;
use tracing::debug;

use super::engine::{Input, WatchEvent};
use super::sources::Source;
use crate::store::{Item, Watched};

/// Watches `api` as `source` until the engine stops listening on `tx`.
pub(super) fn spawn_watch<K: Watched>(
    api: Api<K>,
    source: Source,
    tx: mpsc::UnboundedSender<Input>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        while let Some(ev) = stream.next().await {
            // Reduced here, on the watch's task: the engine never sees (nor
            // queues) whole objects.
            let ev = match ev {
                Ok(watcher::Event::Init) => WatchEvent::Init,
                Ok(watcher::Event::InitApply(o)) => WatchEvent::InitApply(Item::of(o, source.0)),
                Ok(watcher::Event::InitDone) => WatchEvent::InitDone,
                Ok(watcher::Event::Apply(o)) => WatchEvent::Apply(Item::of(o, source.0)),
                Ok(watcher::Event::Delete(o)) => WatchEvent::Delete(Item::of(o, source.0)),
                Err(e) => {
                    debug!(?source, error = %e, "watch failed; retrying with backoff");
                    continue;
                }
            };
            if tx.send(Input::Watch(source, ev)).is_err() {
                return;
            }
        }
    })
}
