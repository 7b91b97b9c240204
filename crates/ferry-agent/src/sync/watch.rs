//! One watch of one source, feeding the engine: each event's objects are
//! reduced on the watch's own task and sent as an [`Input::Watch`]; errors
//! are retried with kube-runtime's default backoff (inside
//! [`ferry_kube::Watch`]).

use std::ops::ControlFlow;

use kube::api::Api;
use kube::runtime::watcher;
use tokio::sync::mpsc;

use super::engine::{Input, WatchEvent};
use super::sources::Source;
use crate::store::{Item, Watched};

/// Watches `api` as `source` until the engine stops listening on `tx`.
pub(super) fn spawn_watch<K: Watched>(
    api: Api<K>,
    source: Source,
    tx: mpsc::UnboundedSender<Input>,
) -> tokio::task::JoinHandle<()> {
    let watch = ferry_kube::Watch::new(api, watcher::Config::default())
        .named(format!("{source:?}"))
        .quiet();
    tokio::spawn(watch.for_each(move |ev| {
        // Reduced here, on the watch's task: the engine never sees (nor
        // queues) whole objects.
        let ev = match ev {
            watcher::Event::Init => WatchEvent::Init,
            watcher::Event::InitApply(o) => WatchEvent::InitApply(Item::of(o, source.0)),
            watcher::Event::InitDone => WatchEvent::InitDone,
            watcher::Event::Apply(o) => WatchEvent::Apply(Item::of(o, source.0)),
            watcher::Event::Delete(o) => WatchEvent::Delete(Item::of(o, source.0)),
        };
        if tx.send(Input::Watch(source, ev)).is_err() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }))
}
