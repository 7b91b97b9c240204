//! What the health checker heard from each remote gateway, shared with
//! the engine: the checker records every reply here, and the engine reads
//! it whenever it judges the cables (every tick, at a cable's deadline).
//! So a reply costs the engine no wake-up (issue #19: with 15 cables the
//! engine used to wake for nearly every one of the ~150 replies a second);
//! only a reply the engine is waiting for — the first after a silence,
//! which may turn a cable `connected` — wakes it at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// RTT samples kept per remote between two reads (at ~10 replies a second
/// and a read every tick, a handful; bounded for a stalled engine).
const MAX_PENDING_RTTS: usize = 128;

/// News from one remote gateway.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct News {
    /// When its latest reply (or fresh acknowledgement) arrived.
    pub last: Option<Instant>,
    /// RTT samples that arrived since the last read, oldest first.
    pub rtts: Vec<Duration>,
}

/// The replies of every remote by cluster id, and the engine's alarm.
#[derive(Debug)]
pub struct Heard {
    news: Mutex<HashMap<Arc<str>, News>>,
    wake: Notify,
    /// A reply after longer than this without one wakes the engine.
    urgent_after: Duration,
}

impl Heard {
    /// For a checker probing every `interval`: a reply is urgent when the
    /// one before it came more than 1.5 intervals earlier (one was lost,
    /// the cable is new, or it was down).
    pub fn new(interval: Duration) -> Self {
        Self {
            news: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            urgent_after: interval * 3 / 2,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Arc<str>, News>> {
        // Plain data: a panic elsewhere while holding it leaves it usable.
        self.news.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a reply from `cluster` that arrived `at`; wakes the engine
    /// if it may change the cable's state.
    pub fn record(&self, cluster: &Arc<str>, at: Instant, rtt: Option<Duration>) {
        let urgent = {
            let mut news = self.lock();
            let n = news.entry(cluster.clone()).or_default();
            let urgent = n
                .last
                .is_none_or(|l| at.saturating_duration_since(l) > self.urgent_after);
            n.last = Some(n.last.map_or(at, |l| l.max(at)));
            if let Some(rtt) = rtt
                && n.rtts.len() < MAX_PENDING_RTTS
            {
                n.rtts.push(rtt);
            }
            urgent
        };
        if urgent {
            self.wake.notify_one();
        }
    }

    /// Hands every remote's news to `f` and clears the RTT samples (the
    /// latest reply's time stays: it is what the next reply is compared with).
    pub fn read(&self, mut f: impl FnMut(&str, &News)) {
        let mut news = self.lock();
        for (cluster, n) in news.iter_mut() {
            f(cluster, n);
            n.rtts.clear();
        }
    }

    /// Forgets remotes that are no longer checked.
    pub fn retain(&self, mut keep: impl FnMut(&str) -> bool) {
        self.lock().retain(|c, _| keep(c));
    }

    /// Completes when an urgent reply arrived since the last call.
    pub async fn urgent(&self) {
        self.wake.notified().await;
    }
}

#[cfg(test)]
mod tests;
