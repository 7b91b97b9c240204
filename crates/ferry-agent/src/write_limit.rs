//! How many writes the agent keeps in flight: its configured maximum while
//! the API server keeps up, cut in half (at most once per 200 ms) when the
//! server says it is overloaded — HTTP 429, as kube-apiserver answers past
//! its in-flight limit or when API Priority and Fairness finds a flow's
//! queues full — then raised again by one per round of successful writes:
//! TCP's additive-increase/multiplicative-decrease. Pure arithmetic; the
//! engine applies the answers to its semaphore.

use std::time::{Duration, Instant};

#[cfg(test)]
mod tests;

/// The fewest writes kept in flight however hard the server pushes back.
pub(crate) const MIN_WRITES: usize = 4;

/// One cut per this long: the writes already in flight when the server
/// began refusing come back refused too (within milliseconds: a refusal is
/// immediate), and must not halve it again.
const CUT_EVERY: Duration = Duration::from_millis(200);

/// The current limit and what moves it.
#[derive(Debug)]
pub(crate) struct WriteLimit {
    now: usize,
    max: usize,
    successes: usize,
    last_cut: Option<Instant>,
}

impl WriteLimit {
    /// Starts at `max` (at least one write).
    pub(crate) fn new(max: usize) -> Self {
        let max = max.max(1);
        WriteLimit {
            now: max,
            max,
            successes: 0,
            last_cut: None,
        }
    }

    /// Writes allowed in flight now.
    pub(crate) fn current(&self) -> usize {
        self.now
    }

    /// A write succeeded; returns how many permits to add (0 or 1).
    pub(crate) fn succeeded(&mut self) -> usize {
        if self.now >= self.max {
            return 0;
        }
        self.successes += 1;
        if self.successes < self.now {
            return 0;
        }
        self.successes = 0;
        self.now += 1;
        1
    }

    /// The server refused a write as overloaded at `at`; returns how many
    /// permits to take away.
    pub(crate) fn throttled(&mut self, at: Instant) -> usize {
        if self
            .last_cut
            .is_some_and(|t| at.saturating_duration_since(t) < CUT_EVERY)
        {
            return 0;
        }
        let floor = MIN_WRITES.min(self.max);
        let cut = (self.now / 2).min(self.now.saturating_sub(floor));
        if cut > 0 {
            self.now -= cut;
            self.successes = 0;
            self.last_cut = Some(at);
        }
        cut
    }
}
