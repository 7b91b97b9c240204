//! The reconcilers' side of the engine: make a target carry (or lack) what
//! a reconciler wants, comparing digests with what is stored and writing
//! only the difference, through the bounded pool of writer tasks.

use std::time::Instant;

use serde_json::Value;

use super::{Input, SyncEngine};
use crate::metrics::WriteResult;
use crate::store::Side;
use crate::sync::target::{Body, Digests, Key, Op, Target, do_write};

/// How a target compares with what is wanted.
enum Diff {
    Same,
    /// The main resource differs (or is missing); the status too, if `status`.
    Main {
        status: bool,
    },
    StatusOnly,
}

impl SyncEngine {
    /// How `target` compares with the wanted digests.
    fn diff(&self, target: &Target, digest: u64, status: Option<u64>) -> Diff {
        let Some(obs) = self.get(target.side, target.kind, &target.ns, &target.name) else {
            return Diff::Main {
                status: status.is_some(),
            };
        };
        let main_ok = obs.digest == digest || obs.applied_main == Some(digest);
        let status_ok =
            status.is_none_or(|s| obs.status_digest == s || obs.applied_status == Some(s));
        match (main_ok, status_ok) {
            (true, true) => Diff::Same,
            (true, false) => Diff::StatusOnly,
            (false, status_ok) => Diff::Main { status: !status_ok },
        }
    }

    /// Makes `target` carry what `digest` (and `status`, with the status
    /// body) describe; `body` builds the object, only when it must be
    /// written. Returns whether it already does.
    pub(in crate::sync) fn ensure(
        &mut self,
        key: &Key,
        target: Target,
        digest: u64,
        status: Option<(u64, &dyn Fn() -> Value)>,
        body: impl FnOnce() -> Body,
    ) -> bool {
        let status_digest = status.as_ref().map(|(d, _)| *d);
        match self.diff(&target, digest, status_digest) {
            Diff::Same => true,
            Diff::Main {
                status: with_status,
            } => {
                let status_body = status.filter(|_| with_status).map(|(_, f)| f());
                let digests = Digests {
                    main: Some(digest),
                    status: status_digest.filter(|_| with_status),
                };
                self.write(key, target, Op::Apply(body(), status_body), digests);
                false
            }
            Diff::StatusOnly => {
                let Some((d, f)) = status else {
                    return true; // unreachable: no wanted status, no status diff
                };
                let digests = Digests {
                    main: None,
                    status: Some(d),
                };
                self.write(key, target, Op::Status(f()), digests);
                false
            }
        }
    }

    /// Makes `target` absent. Returns whether it already is.
    pub(in crate::sync) fn ensure_absent(&mut self, key: &Key, target: Target) -> bool {
        if self
            .get(target.side, target.kind, &target.ns, &target.name)
            .is_none()
        {
            return true;
        }
        self.write(key, target, Op::Delete, Digests::default());
        false
    }

    /// Makes the status of the existing `target` carry `status` (digest
    /// `digest`). Returns whether it already does.
    pub(in crate::sync) fn ensure_status(
        &mut self,
        key: &Key,
        target: Target,
        digest: u64,
        status: Value,
    ) -> bool {
        let Some(obs) = self.get(target.side, target.kind, &target.ns, &target.name) else {
            return false;
        };
        if obs.status_digest == digest || obs.applied_status == Some(digest) {
            return true;
        }
        let digests = Digests {
            main: None,
            status: Some(digest),
        };
        self.write(key, target, Op::Status(status), digests);
        false
    }

    /// Whether `key` has writes on their way (or waiting for a writer).
    pub(in crate::sync) fn writing(&self, key: &Key, targets: &[&Target]) -> bool {
        self.blocked_set.contains(key) || targets.iter().any(|t| self.inflight.contains_key(*t))
    }

    /// Whether a write of `key` failed since its last successful one (a
    /// retry is on its way).
    pub(in crate::sync) fn write_failed(&self, key: &Key) -> bool {
        self.attempts.contains_key(key)
    }

    fn write(&mut self, key: &Key, target: Target, op: Op, digests: Digests) {
        if self.inflight.contains_key(&target) {
            self.dirty.insert(key.clone());
            return;
        }
        self.inflight.insert(target.clone(), key.clone());
        let client = match target.side {
            Side::Local => self.local.clone(),
            Side::Broker => self.broker.clone(),
        };
        let tx = self.tx.clone();
        let key = key.clone();
        let writers = self.writers.clone();
        let metrics = self.cfg.metrics.clone();
        let changed_at = match target.side {
            Side::Broker => self.changed_at.remove(&key),
            Side::Local => None,
        };
        tokio::spawn(async move {
            // The semaphore is never closed, so acquiring only waits.
            let _permit = writers.acquire_owned().await;
            let op_name = op.name();
            let started = Instant::now();
            let result = do_write(client, &target, op).await;
            let outcome = match &result {
                Ok(_) => WriteResult::Ok,
                Err(e) if e.code == Some(429) => WriteResult::Throttled,
                Err(_) => WriteResult::Error,
            };
            metrics.written(
                target.kind,
                target.side,
                op_name,
                outcome,
                started.elapsed(),
            );
            if let (Some(at), WriteResult::Ok) = (changed_at, outcome) {
                metrics.change_reached_broker(at.elapsed());
            }
            let _ = tx.send(Input::Written {
                target,
                key,
                digests,
                result,
            });
        });
    }
}
