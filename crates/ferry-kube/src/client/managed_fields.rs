//! Response bodies whose `metadata.managedFields` the typed deserializers
//! skip instead of building: for clients whose callers never read them
//! (the agent). Every watch event and write answer carries them; in
//! `bench/propagation`'s 10,000-service sync skipping them saves the
//! agents 0.3–0.7 of their ~8.7 CPU-seconds.
//!
//! The key `"managedFields":[` is renamed in place to one no Kubernetes
//! type declares (same length, so nothing moves); k8s-openapi's and
//! kube's derived types then pass over the list as an unknown field,
//! without allocating. The pattern cannot occur inside a JSON string (its
//! quotes would be escaped there) and only `managedFields` has a list
//! value under that name in the objects an agent reads. A body is
//! streamed as it comes: only a chunk's tail that could begin the key is
//! held back until the next chunk (a watch event ends in `}\n`, so events
//! are never delayed).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};

/// The key as the API server writes it, and what it becomes.
const KEY: &[u8] = b"\"managedFields\":[";
const RENAMED: &[u8] = b"\"managedFieldz\":[";

/// A response body with [`KEY`] renamed.
#[derive(Debug)]
pub struct WithoutManagedFields<B> {
    inner: B,
    /// The end of the last chunk that may be the start of [`KEY`].
    held: BytesMut,
    done: bool,
}

impl<B> WithoutManagedFields<B> {
    pub fn new(inner: B) -> Self {
        WithoutManagedFields {
            inner,
            held: BytesMut::new(),
            done: false,
        }
    }
}

/// Renames every [`KEY`] in `held` + `chunk`; returns what can go out now
/// and leaves in `held` the tail that may still become [`KEY`].
fn rename(held: &mut BytesMut, chunk: &[u8]) -> Bytes {
    let mut buf = std::mem::take(held);
    buf.extend_from_slice(chunk);
    let mut at = 0;
    static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(KEY));
    while let Some(found) = FINDER.find(&buf[at..]) {
        let start = at + found;
        buf[start..start + KEY.len()].copy_from_slice(RENAMED);
        at = start + KEY.len();
    }
    let keep = partial_key_at_end(&buf[at..]);
    *held = buf.split_off(buf.len() - keep);
    buf.freeze()
}

/// The length of the longest end of `bytes` that is a proper start of [`KEY`].
fn partial_key_at_end(bytes: &[u8]) -> usize {
    (1..KEY.len().min(bytes.len() + 1))
        .rev()
        .find(|&n| bytes.ends_with(&KEY[..n]))
        .unwrap_or(0)
}

impl<B> Body for WithoutManagedFields<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => {
                    let out = rename(&mut this.held, &data);
                    Poll::Ready(Some(Ok(Frame::data(out))))
                }
                Err(other) => Poll::Ready(Some(Ok(other))),
            },
            Poll::Ready(None) => {
                this.done = true;
                match this.held.is_empty() {
                    true => Poll::Ready(None),
                    false => Poll::Ready(Some(Ok(Frame::data(this.held.split().freeze())))),
                }
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || (self.inner.is_end_stream() && self.held.is_empty())
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A tower layer giving every response a [`WithoutManagedFields`] body.
#[derive(Debug, Clone, Copy, Default)]
pub struct WithoutManagedFieldsLayer;

impl<S> tower::Layer<S> for WithoutManagedFieldsLayer {
    type Service = WithoutManagedFieldsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        WithoutManagedFieldsService { inner }
    }
}

/// See [`WithoutManagedFieldsLayer`].
#[derive(Debug, Clone)]
pub struct WithoutManagedFieldsService<S> {
    inner: S,
}

impl<S, Req, B> tower::Service<Req> for WithoutManagedFieldsService<S>
where
    S: tower::Service<Req, Response = http::Response<B>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<WithoutManagedFields<B>>;
    type Error = S::Error;
    type Future = futures::future::MapOk<
        S::Future,
        fn(http::Response<B>) -> http::Response<WithoutManagedFields<B>>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        use futures::TryFutureExt;
        self.inner
            .call(req)
            .map_ok(|resp| resp.map(WithoutManagedFields::new))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `body` in chunks of `size` and returns what comes out.
    fn through(body: &[u8], size: usize) -> Vec<u8> {
        let mut held = BytesMut::new();
        let mut out = Vec::new();
        for chunk in body.chunks(size) {
            out.extend_from_slice(&rename(&mut held, chunk));
        }
        out.extend_from_slice(&held);
        out
    }

    const EVENT: &[u8] = br#"{"type":"ADDED","object":{"metadata":{"name":"a","managedFields":[{"manager":"m","fieldsV1":{"f:data":{".":{},"f:k":{}}}}],"annotations":{"note":"\"managedFields\":[ is text"}},"data":{"k":"v"}}}
"#;

    #[test]
    fn the_key_is_renamed_at_every_chunk_boundary_and_nothing_else_changes() {
        let want = String::from_utf8(EVENT.to_vec()).unwrap().replacen(
            "\"managedFields\":[{",
            "\"managedFieldz\":[{",
            1,
        );
        for size in 1..=EVENT.len() {
            let out = String::from_utf8(through(EVENT, size)).unwrap();
            assert_eq!(out, want, "chunks of {size}");
        }
    }

    #[test]
    fn typed_objects_read_the_same_without_their_managed_fields() {
        let text = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"n","managedFields":[{"manager":"m","operation":"Apply","fieldsType":"FieldsV1","fieldsV1":{"f:data":{}}}]},"data":{"k":"v"}}"#;
        let out = through(text, 7);
        let cm: k8s_openapi::api::core::v1::ConfigMap = serde_json::from_slice(&out).unwrap();
        let whole: k8s_openapi::api::core::v1::ConfigMap = serde_json::from_slice(text).unwrap();
        assert!(whole.metadata.managed_fields.is_some());
        assert_eq!(cm.metadata.managed_fields, None);
        assert_eq!(cm.data, whole.data);
        assert_eq!(cm.metadata.name, whole.metadata.name);
    }

    #[test]
    fn a_watch_event_goes_out_whole_at_once() {
        let mut held = BytesMut::new();
        let out = rename(&mut held, EVENT);
        assert_eq!(out.len(), EVENT.len());
        assert!(held.is_empty());
    }
}
