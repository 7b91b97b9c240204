//! The SQLite revision log: schema, startup load, the group-committing
//! writer thread, compaction, and history reads for watchers.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde_json::Value;
use tokio::sync::{broadcast, oneshot};

use super::record::{
    Event, EventKind, Precondition, State, Stored, Write, WriteOutcomeError, WriteRejection,
    WriteResult, labels_of,
};
use crate::error::{Error, Result};

/// Work for the writer thread.
pub(super) enum Request {
    Write(Write, oneshot::Sender<WriteResult>),
    Compact {
        keep: u64,
        reply: oneshot::Sender<Result<u64>>,
    },
}

/// Most writes committed in one transaction; bounds the latency of a batch.
const MAX_BATCH: usize = 2048;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS log (
    id       INTEGER PRIMARY KEY,
    key      TEXT    NOT NULL,
    created  INTEGER NOT NULL,
    deleted  INTEGER NOT NULL,
    prev_rev INTEGER NOT NULL,
    value    BLOB    NOT NULL
);
-- No index on key: every write would dirty a random index leaf besides the
-- table's last page (about half of each commit's WAL frames). History is read
-- by revision range, which the primary key serves; the per-key view is built
-- once at startup.
DROP INDEX IF EXISTS log_key_id;
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
";

fn configure(conn: &Connection) -> Result<()> {
    // WAL + synchronous=FULL: every COMMIT fsyncs the WAL, so a write that was
    // acknowledged survives kill -9 and power loss.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "busy_timeout", 5000)?;
    // ferry checkpoints on a thread of its own (spawn_checkpointer) when the
    // writer is idle or the WAL holds CHECKPOINT_AFTER_ROWS rows. SQLite's
    // automatic checkpoint ran inside every ~1000th commit: a quarter of the
    // writer's time under load, and a stall for the writes behind it.
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    Ok(())
}

/// A write arriving this soon after a commit that several writes shared
/// means the server is busy: it waits up to COMMIT_DELAY for company (group
/// commit), but only until as many writes as the last commit carried have
/// arrived. Closed-loop writers (16 clients, each waiting for its answer)
/// are all back by then, so they commit at once instead of idling out the
/// delay; a stream of many writes in flight (an agent's sync) still fills
/// large commits. A chain of single writes (one change rippling through an
/// agent) does not wait at all: company would not come, and each link would
/// pay the whole delay.
const LOAD_WINDOW: std::time::Duration = std::time::Duration::from_millis(5);

/// The longest a write waits for others to share its commit.
const COMMIT_DELAY: std::time::Duration = std::time::Duration::from_millis(2);

/// How long the writer must have been idle before it asks for a checkpoint.
const CHECKPOINT_IDLE: std::time::Duration = std::time::Duration::from_millis(100);

/// Rows after which a checkpoint is asked for even under load, so the WAL
/// (and the time a restart takes to replay it) stays bounded: ~150 MB of
/// frames. Until then a burst of writes (a cluster's initial sync) is not
/// slowed by copying pages into the database; Postgres defers its
/// checkpoints the same way (checkpoint_timeout, max_wal_size).
const CHECKPOINT_AFTER_ROWS: u64 = 65_536;

/// Opens the database and rebuilds the in-memory current state.
pub(super) fn open(path: &Path) -> Result<(Connection, State)> {
    let conn = Connection::open(path)?;
    configure(&conn)?;
    conn.execute_batch(SCHEMA)?;
    let mut state = State::default();
    let max_id: Option<u64> = conn.query_row("SELECT MAX(id) FROM log", [], |r| r.get(0))?;
    let compacted: Option<u64> = conn
        .query_row("SELECT value FROM meta WHERE name = 'compacted'", [], |r| {
            r.get(0)
        })
        .optional()?;
    state.compacted = compacted.unwrap_or(0);
    state.rev = max_id.unwrap_or(0).max(state.compacted);
    {
        let mut stmt = conn.prepare(
            "SELECT l.id, l.key, l.value FROM log l
             JOIN (SELECT key, MAX(id) AS id FROM log GROUP BY key) m ON l.id = m.id
             WHERE l.deleted = 0",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, u64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Vec<u8>>(2)?,
            ))
        })?;
        for row in rows {
            let (rev, key, value) = row?;
            let object: Value = serde_json::from_slice(&value)
                .map_err(|e| Error::Internal(format!("corrupt row {rev} ({key}): {e}")))?;
            let stored = Stored {
                rev,
                labels: labels_of(&object),
                json: value.into(),
            };
            state.objects.insert(Arc::from(key), Arc::new(stored));
        }
    }
    Ok((conn, state))
}

/// Starts the writer thread (and its checkpointer); the returned sender is
/// its only input.
pub(super) fn spawn_writer(
    path: &Path,
    conn: Connection,
    state: Arc<RwLock<State>>,
    events: broadcast::Sender<Event>,
) -> Result<std::sync::mpsc::Sender<Request>> {
    let checkpointer = spawn_checkpointer(path)?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("ferry-store-writer".into())
        .spawn(move || {
            let mut writer = Writer {
                conn,
                state,
                events,
                unchecked_rows: 0,
                last_commit: std::time::Instant::now(),
                last_batch: 0,
                checkpointer,
            };
            writer.run(rx)
        })
        .map_err(|e| Error::io("starting the store writer thread", e))?;
    Ok(tx)
}

/// Starts the thread that copies the WAL into the database whenever the
/// writer asks (PASSIVE checkpoints run beside commits in WAL mode, so a
/// large one never holds up a write); it ends with a last checkpoint when
/// the writer is gone.
fn spawn_checkpointer(path: &Path) -> Result<std::sync::mpsc::SyncSender<()>> {
    let conn = Connection::open(path)?;
    configure(&conn)?;
    // One pending request is enough: a checkpoint copies everything so far.
    let (tx, rx) = std::sync::mpsc::sync_channel::<()>(1);
    std::thread::Builder::new()
        .name("ferry-store-checkpointer".into())
        .spawn(move || {
            while rx.recv().is_ok() {
                checkpoint(&conn);
            }
            checkpoint(&conn);
        })
        .map_err(|e| Error::io("starting the store checkpointer thread", e))?;
    Ok(tx)
}

/// Copies the WAL into the database (PASSIVE: never waits for readers or
/// the writer). A failure is not fatal: the rows are safe in the WAL and
/// the next checkpoint copies them.
fn checkpoint(conn: &Connection) {
    let result = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
    });
    match result {
        Ok((log, done)) => tracing::trace!(log, done, "checkpointed the WAL"),
        Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
    }
}

struct Writer {
    conn: Connection,
    state: Arc<RwLock<State>>,
    /// Rows committed since the last checkpoint.
    unchecked_rows: u64,
    /// When the last commit ended.
    last_commit: std::time::Instant,
    /// How many writes the last commit carried.
    last_batch: usize,
    /// Wakes the checkpointer thread.
    checkpointer: std::sync::mpsc::SyncSender<()>,
    events: broadcast::Sender<Event>,
}

/// A write that passed its precondition, waiting for the commit.
struct Staged {
    event: Event,
    created: bool,
    prev_rev: u64,
}

impl Writer {
    fn run(&mut self, rx: std::sync::mpsc::Receiver<Request>) {
        use std::sync::mpsc::RecvTimeoutError;
        loop {
            let first = if self.unchecked_rows > 0 {
                match rx.recv_timeout(CHECKPOINT_IDLE) {
                    Ok(r) => r,
                    Err(RecvTimeoutError::Timeout) => {
                        self.checkpoint();
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match rx.recv() {
                    Ok(r) => r,
                    Err(_) => break,
                }
            };
            // Under load (the last commit, moments ago, was shared), wait a little
            // for more writes to share this commit's fsync: each commit
            // rewrites the log's last pages and costs a disk flush, which
            // dominated the writer. An idle server commits at once.
            let busy = self.last_batch > 1 && self.last_commit.elapsed() < LOAD_WINDOW;
            let deadline = busy.then(|| std::time::Instant::now() + COMMIT_DELAY);
            let expected = self.last_batch;
            let mut batch = Vec::new();
            let mut pending = Some(first);
            while let Some(req) = pending.take() {
                match req {
                    Request::Write(w, reply) => batch.push((w, reply)),
                    Request::Compact { keep, reply } => {
                        // Flush writes queued before the compaction first.
                        self.commit_batch(std::mem::take(&mut batch));
                        let _ = reply.send(self.compact(keep));
                    }
                }
                if batch.len() < MAX_BATCH {
                    pending = match (rx.try_recv(), deadline) {
                        (Ok(r), _) => Some(r),
                        // The company expected has arrived: commit now.
                        (Err(_), Some(_)) if batch.len() >= expected => None,
                        (Err(_), Some(d)) => d
                            .checked_duration_since(std::time::Instant::now())
                            .and_then(|left| rx.recv_timeout(left).ok()),
                        (Err(_), None) => None,
                    };
                }
            }
            self.last_batch = batch.len();
            self.commit_batch(batch);
            self.last_commit = std::time::Instant::now();
            if self.unchecked_rows >= CHECKPOINT_AFTER_ROWS {
                self.checkpoint();
            }
        }
        // Dropping `checkpointer` (with self) makes it checkpoint once more.
    }

    /// Asks the checkpointer to copy the WAL into the database.
    fn checkpoint(&mut self) {
        // Full: a checkpoint is already asked for and will copy these rows too.
        let _ = self.checkpointer.try_send(());
        self.unchecked_rows = 0;
    }

    fn commit_batch(&mut self, batch: Vec<(Write, oneshot::Sender<WriteResult>)>) {
        if batch.is_empty() {
            return;
        }
        let mut next_rev = self.state.read().unwrap_or_else(|p| p.into_inner()).rev + 1;
        // Writes earlier in the batch are visible to later ones.
        let mut overlay: HashMap<String, Option<Arc<Stored>>> = HashMap::new();
        let mut outcomes: Vec<std::result::Result<Staged, WriteOutcomeError>> = Vec::new();
        let mut replies = Vec::new();
        for (write, reply) in batch {
            replies.push(reply);
            let outcome = self.stage(write, &mut overlay, next_rev);
            if outcome.is_ok() {
                next_rev += 1;
            }
            outcomes.push(outcome);
        }
        let committed = self.persist(&outcomes);
        if let Err(e) = committed {
            tracing::error!(error = %e, "commit failed; writes refused");
            for reply in replies {
                let _ = reply.send(Err(WriteOutcomeError::Storage(e.to_string())));
            }
            return;
        }
        {
            let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
            for staged in outcomes.iter().flatten() {
                let ev = &staged.event;
                match ev.kind {
                    EventKind::Deleted => {
                        state.objects.remove(&*ev.key);
                    }
                    _ => {
                        state.objects.insert(ev.key.clone(), ev.object.clone());
                    }
                }
                state.rev = ev.rev;
            }
        }
        for (outcome, reply) in outcomes.into_iter().zip(replies) {
            let result = outcome.map(|s| {
                // No receiver is fine: nobody is watching.
                let _ = self.events.send(s.event.clone());
                s.event
            });
            let _ = reply.send(result);
        }
    }

    fn stage(
        &self,
        write: Write,
        overlay: &mut HashMap<String, Option<Arc<Stored>>>,
        rev: u64,
    ) -> std::result::Result<Staged, WriteOutcomeError> {
        let key = match &write {
            Write::Put { key, .. } | Write::Delete { key, .. } => key.clone(),
        };
        let current = match overlay.get(&key) {
            Some(c) => c.clone(),
            None => {
                let state = self.state.read().unwrap_or_else(|p| p.into_inner());
                state.objects.get(key.as_str()).cloned()
            }
        };
        let precondition = match &write {
            Write::Put { precondition, .. } | Write::Delete { precondition, .. } => *precondition,
        };
        check(precondition, current.as_deref()).map_err(WriteOutcomeError::Rejected)?;
        let prev_rev = current.as_ref().map_or(0, |c| c.rev);
        let (kind, object) = match write {
            Write::Put { mut object, .. } => {
                set_resource_version(&mut object, rev);
                let stored = Stored::new(rev, &object)
                    .map_err(|e| WriteOutcomeError::Storage(e.to_string()))?;
                let kind = if current.is_some() {
                    EventKind::Modified
                } else {
                    EventKind::Added
                };
                (kind, Arc::new(stored))
            }
            Write::Delete { .. } => {
                // The precondition guarantees the object exists.
                let last = current
                    .clone()
                    .ok_or(WriteOutcomeError::Rejected(WriteRejection::NotFound))?;
                let mut object = last
                    .value()
                    .map_err(|e| WriteOutcomeError::Storage(e.to_string()))?;
                set_resource_version(&mut object, rev);
                let stored = Stored::new(rev, &object)
                    .map_err(|e| WriteOutcomeError::Storage(e.to_string()))?;
                (EventKind::Deleted, Arc::new(stored))
            }
        };
        overlay.insert(
            key.clone(),
            (kind != EventKind::Deleted).then(|| object.clone()),
        );
        Ok(Staged {
            created: current.is_none(),
            prev_rev,
            event: Event {
                rev,
                key: Arc::from(key),
                kind,
                object,
                prev: current,
            },
        })
    }

    /// Appends the staged rows in one fsynced transaction.
    fn persist(
        &mut self,
        outcomes: &[std::result::Result<Staged, WriteOutcomeError>],
    ) -> rusqlite::Result<()> {
        if outcomes.iter().all(|o| o.is_err()) {
            return Ok(());
        }
        let tx = self.conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO log (id, key, created, deleted, prev_rev, value)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for staged in outcomes.iter().flatten() {
                let ev = &staged.event;
                self.unchecked_rows += 1;
                insert.execute(params![
                    ev.rev,
                    &*ev.key,
                    staged.created,
                    ev.kind == EventKind::Deleted,
                    staged.prev_rev,
                    &ev.object.json[..],
                ])?;
            }
        }
        tx.commit()
    }

    /// Deletes rows superseded at or before `rev - keep`, and tombstones.
    fn compact(&mut self, keep: u64) -> Result<u64> {
        let (rev, old) = {
            let state = self.state.read().unwrap_or_else(|p| p.into_inner());
            (state.rev, state.compacted)
        };
        let target = rev.saturating_sub(keep.max(1));
        if target <= old {
            return Ok(old);
        }
        let tx = self.conn.transaction()?;
        let superseded = tx.execute(
            "DELETE FROM log WHERE id IN
               (SELECT prev_rev FROM log WHERE id > ?1 AND id <= ?2 AND prev_rev > 0)",
            params![old, target],
        )?;
        let tombstones = tx.execute(
            "DELETE FROM log WHERE deleted = 1 AND id <= ?1",
            params![target],
        )?;
        tx.execute(
            "INSERT INTO meta (name, value) VALUES ('compacted', ?1)
             ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            params![target],
        )?;
        tx.commit()?;
        self.state
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .compacted = target;
        tracing::debug!(target, superseded, tombstones, "compacted the revision log");
        Ok(target)
    }
}

fn check(
    precondition: Precondition,
    current: Option<&Stored>,
) -> std::result::Result<(), WriteRejection> {
    match (precondition, current) {
        (Precondition::Absent, None) => Ok(()),
        (Precondition::Absent, Some(_)) => Err(WriteRejection::AlreadyExists),
        (_, None) => Err(WriteRejection::NotFound),
        (Precondition::Exists, Some(_)) => Ok(()),
        (Precondition::Revision(rev), Some(c)) if c.rev == rev => Ok(()),
        (Precondition::Revision(_), Some(_)) => Err(WriteRejection::Conflict),
    }
}

fn set_resource_version(object: &mut Value, rev: u64) {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), Value::String(rev.to_string()));
    }
}

/// A read-only connection for replaying history to watchers.
pub struct History {
    conn: std::sync::Mutex<Connection>,
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("History")
    }
}

impl History {
    pub(super) fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.pragma_update(None, "busy_timeout", 5000)?;
        Ok(History {
            conn: std::sync::Mutex::new(conn),
        })
    }

    /// Changes under `prefix` with revision in `(after, upto]`, oldest first.
    pub(super) fn events(&self, prefix: &str, after: u64, upto: u64) -> Result<Vec<Event>> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let end = prefix_end(prefix);
        let mut stmt = conn.prepare_cached(
            "SELECT id, key, created, deleted, prev_rev, value FROM log
             WHERE id > ?1 AND id <= ?2 AND key >= ?3 AND key < ?4 ORDER BY id",
        )?;
        let rows = stmt.query_map(params![after, upto, prefix, end], |r| {
            Ok((
                r.get::<_, u64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, bool>(2)?,
                r.get::<_, bool>(3)?,
                r.get::<_, u64>(4)?,
                r.get::<_, Vec<u8>>(5)?,
            ))
        })?;
        let mut prev_stmt = conn.prepare_cached("SELECT value FROM log WHERE id = ?1")?;
        let mut out = Vec::new();
        for row in rows {
            let (rev, key, created, deleted, prev_rev, value) = row?;
            let object = parse_stored(rev, value)?;
            let prev = if prev_rev > 0 {
                prev_stmt
                    .query_row(params![prev_rev], |r| r.get::<_, Vec<u8>>(0))
                    .optional()?
                    .map(|v| parse_stored(prev_rev, v))
                    .transpose()?
            } else {
                None
            };
            let kind = if deleted {
                EventKind::Deleted
            } else if created {
                EventKind::Added
            } else {
                EventKind::Modified
            };
            out.push(Event {
                rev,
                key: Arc::from(key),
                kind,
                object,
                prev,
            });
        }
        Ok(out)
    }
}

fn parse_stored(rev: u64, value: Vec<u8>) -> Result<Arc<Stored>> {
    let object: Value = serde_json::from_slice(&value)
        .map_err(|e| Error::Internal(format!("corrupt row {rev}: {e}")))?;
    Ok(Arc::new(Stored {
        rev,
        labels: labels_of(&object),
        json: value.into(),
    }))
}

/// The smallest string greater than every string starting with `prefix`.
fn prefix_end(prefix: &str) -> String {
    // Keys are ASCII ('/' separated names); appending the largest scalar value
    // gives an exclusive upper bound for the range scan.
    let mut end = prefix.to_string();
    end.push(char::MAX);
    end
}
