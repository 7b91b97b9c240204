//! Watch streams: newline-delimited `WatchEvent`s from a snapshot or a
//! resourceVersion, with selector transitions, bookmarks, `sendInitialEvents`,
//! and 410 Expired past the compaction horizon.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use prometheus_client::metrics::counter::Counter;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use super::filter::Filter;
use super::request::Ctx;
use super::table::{self, IncludeObject};
use crate::error::{Error, Result};
use crate::metrics::ResourceLabels;
use crate::objects;
use crate::registry::ResourceDef;
use crate::store::{Event, EventKind, Stored};

/// Default and longest watch duration, as kube-apiserver's request timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);
const BOOKMARK_EVERY: Duration = Duration::from_secs(5);

/// Events already waiting are sent together, as one body chunk of up to
/// this many bytes: a burst of writes (group commits of dozens of rows) then
/// costs the server one write and the client one read instead of one each
/// per event. Clients split the stream by lines, not by chunks (kube-rs,
/// client-go and kubectl all do), so the framing is the same.
const CHUNK_BYTES: usize = 256 * 1024;

/// Most events taken from the live feed before they are sent, so a watcher
/// of a busy server still delivers while more keep arriving.
const BURST_EVENTS: usize = 512;

/// How the stream renders objects.
struct Encoder {
    def: Arc<ResourceDef>,
    table: Option<IncludeObject>,
    first_table: bool,
}

impl Encoder {
    /// Appends one event line to `out`.
    fn append_event(&mut self, out: &mut Vec<u8>, kind: &str, stored: &Stored) {
        out.extend_from_slice(b"{\"type\":\"");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\",\"object\":");
        match self.table {
            None => out.extend_from_slice(&objects::served_json(&self.def, &stored.json)),
            Some(include) => {
                let object = stored.value().unwrap_or(Value::Null);
                let t = table::table(
                    &self.def,
                    &[object],
                    include,
                    json!({"resourceVersion": stored.rev.to_string()}),
                    self.first_table,
                );
                self.first_table = false;
                out.extend_from_slice(&serde_json::to_vec(&t).unwrap_or_default());
            }
        }
        out.extend_from_slice(b"}\n");
    }

    fn bookmark(&self, rev: u64, initial_end: bool) -> Bytes {
        let mut metadata = json!({"resourceVersion": rev.to_string()});
        if initial_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let object = json!({
            "kind": self.def.kind,
            "apiVersion": self.def.api_version(),
            "metadata": metadata,
        });
        line(&json!({"type": "BOOKMARK", "object": object}))
    }
}

fn line(v: &Value) -> Bytes {
    let mut out = serde_json::to_vec(v).unwrap_or_default();
    out.push(b'\n');
    Bytes::from(out)
}

fn error_event(e: &Error) -> Bytes {
    line(&json!({"type": "ERROR", "object": e.to_status()}))
}

/// What a watcher with this filter sees of `ev`, if anything.
fn classify<'a>(filter: &Filter, ev: &'a Event) -> Option<(EventKind, &'a Stored)> {
    if filter.is_empty() {
        return Some((ev.kind, &ev.object));
    }
    let now = filter.matches(&ev.key, &ev.object);
    match ev.kind {
        EventKind::Added | EventKind::Deleted => now.then_some((ev.kind, &*ev.object)),
        EventKind::Modified => {
            let before = ev.prev.as_ref().is_some_and(|p| filter.matches(&ev.key, p));
            match (before, now) {
                (true, true) => Some((EventKind::Modified, &ev.object)),
                (false, true) => Some((EventKind::Added, &ev.object)),
                (true, false) => Some((EventKind::Deleted, &ev.object)),
                (false, false) => None,
            }
        }
    }
}

enum Start {
    Snapshot,
    After(u64),
}

pub(super) async fn serve(ctx: Ctx) -> Result<Response<Body>> {
    let filter = Filter::from_query(&ctx.query, &ctx.def)?;
    let prefix = ctx.def.collection_prefix(ctx.path.namespace.as_deref());
    let send_initial = ctx.query.flag("sendInitialEvents");
    let start = match ctx.query.get("resourceVersion") {
        None | Some("") | Some("0") => Start::Snapshot,
        Some(_) if send_initial => Start::Snapshot,
        Some(rv) => Start::After(
            rv.parse()
                .map_err(|_| Error::BadRequest(format!("invalid resourceVersion {rv:?}")))?,
        ),
    };
    let timeout = ctx
        .query
        .unsigned("timeoutSeconds")
        .map_err(Error::BadRequest)?
        .map_or(DEFAULT_TIMEOUT, |s| {
            Duration::from_secs(s).min(DEFAULT_TIMEOUT * 2)
        });
    let bookmarks = ctx.query.flag("allowWatchBookmarks");
    let encoder = Encoder {
        def: ctx.def.clone(),
        table: table::wants_table(&ctx.headers)
            .then(|| IncludeObject::parse(ctx.query.get("includeObject"))),
        first_table: true,
    };
    // Subscribe before reading the snapshot so no change falls in between.
    let live = ctx.app.store.subscribe();
    let (tx, rx) = mpsc::channel::<std::result::Result<Bytes, Infallible>>(256);
    let app = ctx.app.clone();
    let sent = app
        .metrics
        .watch_events
        .get_or_create(&ResourceLabels {
            resource: ctx.def.plural.clone(),
        })
        .clone();
    tokio::spawn(async move {
        app.metrics.watches.inc();
        let stream = WatchStream {
            app: &app,
            sent,
            filter,
            prefix,
            encoder,
            tx,
        };
        stream
            .run(live, start, send_initial, bookmarks, timeout)
            .await;
        app.metrics.watches.dec();
    });
    let mut resp = Response::new(Body::from_stream(ReceiverStream::new(rx)));
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

struct WatchStream<'a> {
    app: &'a crate::state::App,
    /// Events this stream sent, counted in the server's metrics.
    sent: Counter,
    filter: Filter,
    prefix: String,
    encoder: Encoder,
    tx: mpsc::Sender<std::result::Result<Bytes, Infallible>>,
}

impl WatchStream<'_> {
    async fn send(&self, bytes: Bytes) -> bool {
        self.tx.send(Ok(bytes)).await.is_ok()
    }

    /// Sends `chunk` (and empties it) once it holds at least `at_least`
    /// bytes; false when the client left.
    async fn flush(&self, chunk: &mut Vec<u8>, at_least: usize) -> bool {
        chunk.len() < at_least.max(1) || self.send(std::mem::take(chunk).into()).await
    }

    /// Sends what this watcher sees of `events`, in chunks of about
    /// [`CHUNK_BYTES`]; false when the client left.
    async fn deliver(&mut self, events: &[Event]) -> bool {
        let mut chunk = Vec::new();
        for ev in events {
            if !ev.key.starts_with(&self.prefix) {
                continue;
            }
            if let Some((kind, stored)) = classify(&self.filter, ev) {
                self.encoder.append_event(&mut chunk, kind.as_str(), stored);
                self.sent.inc();
                if !self.flush(&mut chunk, CHUNK_BYTES).await {
                    return false;
                }
            }
        }
        self.flush(&mut chunk, 1).await
    }

    /// Replays history in `(after, now]`; returns the new position.
    async fn replay(&mut self, after: u64) -> Option<u64> {
        let upto = self.app.store.revision();
        match self.app.store.history(&self.prefix, after, upto).await {
            Ok(events) => self.deliver(&events).await.then_some(upto),
            Err(e) => {
                self.send(error_event(&e)).await;
                None
            }
        }
    }

    async fn run(
        mut self,
        mut live: broadcast::Receiver<Event>,
        start: Start,
        send_initial: bool,
        bookmarks: bool,
        timeout: Duration,
    ) {
        let mut last = match start {
            Start::Snapshot => {
                let (rev, items, _) = self
                    .app
                    .store
                    .list(&self.prefix, None, None, |k, s| self.filter.matches(k, s));
                let mut chunk = Vec::new();
                for (_, stored) in items {
                    self.encoder.append_event(&mut chunk, "ADDED", &stored);
                    self.sent.inc();
                    if !self.flush(&mut chunk, CHUNK_BYTES).await {
                        return;
                    }
                }
                if !self.flush(&mut chunk, 1).await {
                    return;
                }
                if send_initial && !self.send(self.encoder.bookmark(rev, true)).await {
                    return;
                }
                rev
            }
            Start::After(rev) => match self.replay(rev).await {
                Some(r) => r,
                None => return,
            },
        };
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut bookmark = tokio::time::interval(BOOKMARK_EVERY);
        bookmark.tick().await;
        loop {
            tokio::select! {
                ev = live.recv() => match ev {
                    Ok(ev) => {
                        // Take whatever else is already waiting, so a burst
                        // goes out as one chunk.
                        let mut burst = vec![ev];
                        let mut lagged = false;
                        while burst.len() < BURST_EVENTS {
                            match live.try_recv() {
                                Ok(ev) => burst.push(ev),
                                Err(broadcast::error::TryRecvError::Lagged(_)) => {
                                    lagged = true;
                                    break;
                                }
                                Err(_) => break,
                            }
                        }
                        burst.retain(|ev| ev.rev > last);
                        if let Some(ev) = burst.last() {
                            last = ev.rev;
                        }
                        if !self.deliver(&burst).await {
                            return;
                        }
                        if lagged {
                            match self.replay(last).await {
                                Some(r) => last = r,
                                None => return,
                            }
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // Fell behind the in-memory feed: catch up from disk.
                        match self.replay(last).await {
                            Some(r) => last = r,
                            None => return,
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = bookmark.tick(), if bookmarks => {
                    if !self.send(self.encoder.bookmark(last, false)).await {
                        return;
                    }
                }
                _ = &mut deadline => return,
                _ = self.tx.closed() => return,
            }
        }
    }
}
