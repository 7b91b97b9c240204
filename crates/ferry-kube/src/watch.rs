//! Watching one resource type forever.
//!
//! Every ferry daemon follows a few resource types the same way: a kube-rs
//! watcher that never gives up (a failed attempt is logged and retried with
//! kube-rs's default backoff, 800 ms growing to 30 s), either mirrored into
//! an in-memory store that wakes a reconcile loop after each change
//! ([`Watch::into_store`], [`Watch::notify`]), or handed over event by
//! event ([`Watch::for_each`]). While the API is away the store keeps its
//! last contents: nothing is forgotten for lack of news.

use std::future::Future;
use std::ops::ControlFlow;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use kube::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::Notify;

/// What a watched type must be (every typed Kubernetes object is; a store
/// of them also needs `Sync`).
pub trait Watchable:
    kube::Resource<DynamicType = ()>
    + Clone
    + std::fmt::Debug
    + serde::de::DeserializeOwned
    + Send
    + 'static
{
}

impl<K> Watchable for K where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + 'static
{
}

/// A watch of one resource type: an API (namespace or all), a watcher
/// configuration (selectors), and how its failures are logged.
pub struct Watch<K> {
    api: Api<K>,
    config: watcher::Config,
    name: String,
    quiet: bool,
}

impl<K: Watchable> Watch<K> {
    /// A watch of `api` with `config`, named by its kind in logs.
    pub fn new(api: Api<K>, config: watcher::Config) -> Self {
        Watch {
            api,
            config,
            name: K::kind(&()).into_owned(),
            quiet: false,
        }
    }

    /// Names the watch in logs (default: the kind), for a daemon that
    /// watches one kind in several places.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Logs failed attempts at debug rather than warn: for a daemon with
    /// many watches on one server, which all fail together when it goes
    /// away and says so once itself.
    pub fn quiet(mut self) -> Self {
        self.quiet = true;
        self
    }

    /// The watcher's events with kube-rs's default backoff between failed
    /// attempts; each failure logged, none passed on.
    fn events(
        self,
        wrap: impl FnOnce(
            futures::stream::BoxStream<'static, watcher::Result<watcher::Event<K>>>,
        )
            -> futures::stream::BoxStream<'static, watcher::Result<watcher::Event<K>>>,
    ) -> impl Stream<Item = watcher::Event<K>> + Send + 'static {
        let (name, quiet) = (self.name, self.quiet);
        let raw = watcher(self.api, self.config).default_backoff().boxed();
        wrap(raw).filter_map(move |ev| {
            let ev = match ev {
                Ok(ev) => Some(ev),
                Err(error) if quiet => {
                    tracing::debug!(watch = %name, %error, "watch failed; retrying with backoff");
                    None
                }
                Err(error) => {
                    tracing::warn!(watch = %name, %error, "watch failed; retrying with backoff (last state kept)");
                    None
                }
            };
            std::future::ready(ev)
        })
    }

    /// Hands every event, in order, to `on_event` until it answers
    /// [`ControlFlow::Break`] (a watch itself never ends).
    pub fn for_each(
        self,
        mut on_event: impl FnMut(watcher::Event<K>) -> ControlFlow<()> + Send + 'static,
    ) -> impl Future<Output = ()> + Send + 'static {
        let events = self.events(|s| s);
        async move {
            let mut events = std::pin::pin!(events);
            while let Some(ev) = events.next().await {
                if on_event(ev).is_break() {
                    return;
                }
            }
        }
    }
}

impl<K: Watchable + Sync> Watch<K> {
    /// Mirrors the watch into a store. `on_change` runs with the store after
    /// each change is in it: an object applied or deleted, or a (re)list
    /// complete — not for the objects of a list as they arrive, which the
    /// store only shows all together at its end. The future runs forever;
    /// the store is [ready](Store::wait_until_ready) after the first list.
    pub fn into_store(
        self,
        mut on_change: impl FnMut(&Store<K>) + Send + 'static,
    ) -> (Store<K>, impl Future<Output = ()> + Send + 'static) {
        let (store, writer) = reflector::store();
        let reader = store.clone();
        let events = self.events(move |s| reflector::reflector(writer, s).boxed());
        let run = async move {
            let mut events = std::pin::pin!(events);
            while let Some(ev) = events.next().await {
                match ev {
                    watcher::Event::Apply(_)
                    | watcher::Event::Delete(_)
                    | watcher::Event::InitDone => on_change(&reader),
                    watcher::Event::Init | watcher::Event::InitApply(_) => {}
                }
            }
        };
        (store, run)
    }

    /// [`into_store`](Self::into_store) waking `notify` (one permit, so a
    /// burst of changes wakes its waiter once) after each change.
    pub fn notify(
        self,
        notify: Arc<Notify>,
    ) -> (Store<K>, impl Future<Output = ()> + Send + 'static) {
        self.into_store(move |_| notify.notify_one())
    }
}

#[cfg(test)]
mod tests;
