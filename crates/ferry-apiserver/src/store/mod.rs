//! Durable object storage: an append-only revision log in SQLite, kine style.
//!
//! Every write appends one row whose id is the new revision (the object's
//! `resourceVersion`). The current state is kept in memory as serialized JSON
//! so reads never touch the disk; the log is read only at startup and to
//! replay history to watchers that resume from an older revision. One writer
//! thread owns the write connection and commits whatever writes are waiting
//! in one transaction (group commit), so 16 clients share one fsync.

mod log;
mod record;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use tokio::sync::{broadcast, oneshot};

use crate::error::{Error, Result};

pub use log::History;
pub(crate) use record::State;
pub use record::{
    Event, EventKind, Precondition, Stored, Write, WriteOutcomeError, WriteRejection, WriteResult,
    labels_of,
};

/// A list result: (revision of the view, (key, object) pairs, more remain).
pub type Listing = (u64, Vec<(Arc<str>, Arc<Stored>)>, bool);

/// A handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    state: Arc<RwLock<State>>,
    writes: std::sync::mpsc::Sender<log::Request>,
    events: broadcast::Sender<Event>,
    history: Arc<History>,
    path: Arc<Path>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// How many events a slow watcher may fall behind before it replays from disk.
const EVENT_BUFFER: usize = 16 * 1024;

impl Store {
    /// Opens (or creates) the database at `path` and loads the current state.
    pub fn open(path: &Path) -> Result<Self> {
        let (conn, state) = log::open(path)?;
        let state = Arc::new(RwLock::new(state));
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let writes = log::spawn_writer(path, conn, state.clone(), events.clone())?;
        let history = Arc::new(History::open(path)?);
        Ok(Store {
            state,
            writes,
            events,
            history,
            path: Arc::from(path),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Applies one write durably: it returns only after the commit is fsynced.
    pub async fn write(&self, write: Write) -> WriteResult {
        let (reply, rx) = oneshot::channel();
        if self.writes.send(log::Request::Write(write, reply)).is_err() {
            return Err(WriteOutcomeError::Storage("the writer has stopped".into()));
        }
        rx.await
            .unwrap_or_else(|_| Err(WriteOutcomeError::Storage("the writer has stopped".into())))
    }

    /// Drops history older than `keep` revisions behind the newest one.
    pub async fn compact(&self, keep: u64) -> Result<u64> {
        let (reply, rx) = oneshot::channel();
        self.writes
            .send(log::Request::Compact { keep, reply })
            .map_err(|_| Error::Internal("the writer has stopped".into()))?;
        rx.await
            .map_err(|_| Error::Internal("the writer has stopped".into()))?
    }

    /// The current object at `key`.
    pub fn get(&self, key: &str) -> Option<Arc<Stored>> {
        self.read_state().objects.get(key).cloned()
    }

    /// The newest revision.
    pub fn revision(&self) -> u64 {
        self.read_state().rev
    }

    /// The compaction horizon: history at or below it may be gone.
    pub fn compacted(&self) -> u64 {
        self.read_state().compacted
    }

    /// Number of live objects.
    pub fn len(&self) -> usize {
        self.read_state().objects.len()
    }

    /// True when the store holds no object.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Objects whose key starts with `prefix` and sorts after `after`, at most
    /// `limit` of those for which `keep` is true, with the revision of the view.
    /// Returns also whether more matching objects remain.
    pub fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: Option<usize>,
        mut keep: impl FnMut(&str, &Stored) -> bool,
    ) -> Listing {
        let state = self.read_state();
        let start: &str = match after {
            Some(after) if after >= prefix => after,
            _ => prefix,
        };
        let mut out = Vec::new();
        let mut more = false;
        let range = state
            .objects
            .range::<str, _>((std::ops::Bound::Included(start), std::ops::Bound::Unbounded));
        for (key, obj) in range {
            if !key.starts_with(prefix) {
                break;
            }
            if Some(&**key) == after {
                continue;
            }
            if !keep(key, obj) {
                continue;
            }
            if limit.is_some_and(|l| out.len() >= l) {
                more = true;
                break;
            }
            out.push((key.clone(), obj.clone()));
        }
        (state.rev, out, more)
    }

    /// As [`list`](Self::list), but the objects as they were at revision
    /// `rev` (a consistent snapshot for the later pages of a paginated list,
    /// or `resourceVersionMatch=Exact`): the current state with the changes
    /// made since `rev` undone from the revision log. 410 Expired when `rev`
    /// is past the compaction horizon; 504-style `TooLargeRevision` when it
    /// is in the future.
    pub async fn list_at(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: Option<usize>,
        rev: u64,
        mut keep: impl FnMut(&str, &Stored) -> bool,
    ) -> Result<Listing> {
        let (now, current, _) = self.list(prefix, after, None, |_, _| true);
        if rev > now {
            return Err(Error::TooLargeRevision {
                requested: rev,
                current: now,
            });
        }
        let mut view: BTreeMap<Arc<str>, Arc<Stored>> = current.into_iter().collect();
        if rev < now {
            let changes = self.history(prefix, rev, now).await?;
            let mut undone = std::collections::HashSet::new();
            for ev in changes {
                // The first change of a key after `rev` knows its state then.
                if !undone.insert(ev.key.clone()) {
                    continue;
                }
                if after.is_some_and(|a| &*ev.key <= a) {
                    continue;
                }
                match (ev.kind, ev.prev) {
                    (EventKind::Added, _) | (_, None) => {
                        view.remove(&ev.key);
                    }
                    (_, Some(prev)) => {
                        view.insert(ev.key.clone(), prev);
                    }
                }
            }
        }
        let mut out = Vec::new();
        let mut more = false;
        for (key, obj) in view {
            if !keep(&key, &obj) {
                continue;
            }
            if limit.is_some_and(|l| out.len() >= l) {
                more = true;
                break;
            }
            out.push((key, obj));
        }
        Ok((rev, out, more))
    }

    /// A live feed of every committed change from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// History of changes under `prefix` with revision in `(after, upto]`.
    /// Fails with 410 Expired when `after` is older than the compaction horizon.
    pub async fn history(&self, prefix: &str, after: u64, upto: u64) -> Result<Vec<Event>> {
        let compacted = self.compacted();
        if after < compacted {
            return Err(Error::Expired {
                requested: after,
                oldest: compacted,
            });
        }
        let history = self.history.clone();
        let prefix = prefix.to_string();
        tokio::task::spawn_blocking(move || history.events(&prefix, after, upto))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
    }

    /// Size of the database files on disk (db + WAL), in bytes.
    pub fn disk_bytes(&self) -> u64 {
        let wal = self.path.with_extension("db-wal");
        [self.path.to_path_buf(), wal]
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum()
    }

    fn read_state(&self) -> std::sync::RwLockReadGuard<'_, State> {
        // A poisoned lock means a writer panicked mid-update; the state it
        // guards is still a consistent committed view (we apply after commit
        // without panicking paths), so keep serving it.
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }
}
