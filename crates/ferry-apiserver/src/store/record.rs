//! The records the revision log holds ([`Stored`], [`Event`]), the writes it
//! takes ([`Write`]) and the in-memory view it keeps current ([`State`]):
//! shared by the [`Store`](super::Store) handle and the writer thread.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;

use crate::error::{Error, Result};

/// One object as stored: its revision, labels (kept parsed for selectors),
/// and its JSON with `metadata.resourceVersion` already set.
#[derive(Debug)]
pub struct Stored {
    pub rev: u64,
    pub labels: BTreeMap<String, String>,
    pub json: Bytes,
}

impl Stored {
    /// Builds a stored object from its final JSON.
    pub(super) fn new(rev: u64, object: &Value) -> Result<Self> {
        let labels = labels_of(object);
        let json = serde_json::to_vec(object).map_err(|e| Error::Internal(e.to_string()))?;
        Ok(Stored {
            rev,
            labels,
            json: Bytes::from(json),
        })
    }

    /// Whether `word` occurs anywhere in the object's JSON: a cheap test
    /// before parsing it for a field most objects lack. A SIMD substring
    /// search: comparing every window of the JSON with `word` (several
    /// times per write, in the garbage collector) took ~2 % of the CPU of a
    /// 1k-service sync's API servers (`perf`, bench/propagation).
    pub fn mentions(&self, word: &str) -> bool {
        memchr::memmem::find(&self.json, word.as_bytes()).is_some()
    }

    /// The object parsed back into JSON.
    pub fn value(&self) -> Result<Value> {
        serde_json::from_slice(&self.json).map_err(|e| Error::Internal(e.to_string()))
    }
}

/// Reads `metadata.labels` as a map; anything malformed is treated as absent.
pub fn labels_of(object: &Value) -> BTreeMap<String, String> {
    object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// What a watcher sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Added,
    Modified,
    Deleted,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Added => "ADDED",
            EventKind::Modified => "MODIFIED",
            EventKind::Deleted => "DELETED",
        }
    }
}

/// One change, in revision order.
#[derive(Debug, Clone)]
pub struct Event {
    pub rev: u64,
    pub key: Arc<str>,
    pub kind: EventKind,
    /// The object after the change; for a delete, its last state.
    pub object: Arc<Stored>,
    /// The object before the change, when known (for selector transitions).
    pub prev: Option<Arc<Stored>>,
}

/// What must hold for a write to go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// Create: the key must be free.
    Absent,
    /// The key must exist at exactly this revision.
    Revision(u64),
    /// The key must exist (any revision).
    Exists,
}

/// Why a write was refused by its precondition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteRejection {
    AlreadyExists,
    NotFound,
    Conflict,
}

/// One write.
#[derive(Debug)]
pub enum Write {
    /// Store `object` under `key`; the store sets `metadata.resourceVersion`.
    Put {
        key: String,
        object: Value,
        precondition: Precondition,
    },
    /// Remove `key`.
    Delete {
        key: String,
        precondition: Precondition,
    },
}

/// The outcome of a write.
pub type WriteResult = std::result::Result<Event, WriteOutcomeError>;

/// A write failed either by its precondition or by storage.
#[derive(Debug, thiserror::Error)]
pub enum WriteOutcomeError {
    #[error("precondition failed: {0:?}")]
    Rejected(WriteRejection),
    #[error("storage: {0}")]
    Storage(String),
}

/// The in-memory view of the current state.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub objects: BTreeMap<Arc<str>, Arc<Stored>>,
    /// The newest committed revision.
    pub rev: u64,
    /// Revisions at or below this may have been compacted away.
    pub compacted: u64,
}
