//! Health checks through the cables: RTT statistics and the per-connection
//! state machine (`connecting` → `connected` ⇄ `error`). All pure; the socket
//! loop lives in [`crate::prober`], the probe's wire format in
//! [`ferry_api::health_probe`] (shared with `ferry-ctl`).
//!
//! A probe goes from this gateway's health-check IP (an address inside this
//! cluster's pod CIDR, put on the cable device) to the remote gateway's, so it
//! takes exactly the path pod traffic takes: the routes into the cable, the
//! encryption, the remote cable and back. A reply therefore proves the cable
//! carries traffic both ways, not merely that a process is alive.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use ferry_api::{ConnectionStatus, LatencyRtt};

/// RTT statistics over the most recent samples.
#[derive(Clone, Debug, Default)]
pub struct RttStats {
    window: VecDeque<Duration>,
    capacity: usize,
}

impl RttStats {
    /// Statistics over the last `capacity` samples (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            window: VecDeque::with_capacity(capacity.max(1)),
            capacity: capacity.max(1),
        }
    }

    /// Adds one sample, dropping the oldest when full.
    pub fn add(&mut self, rtt: Duration) {
        if self.window.len() == self.capacity {
            self.window.pop_front();
        }
        self.window.push_back(rtt);
    }

    /// last, min, average, max and standard deviation; `None` before the
    /// first sample.
    pub fn summary(&self) -> Option<LatencyRtt> {
        let last = *self.window.back()?;
        let n = self.window.len() as f64;
        let secs: Vec<f64> = self.window.iter().map(Duration::as_secs_f64).collect();
        let mean = secs.iter().sum::<f64>() / n;
        let var = secs.iter().map(|s| (s - mean) * (s - mean)).sum::<f64>() / n;
        let min = self.window.iter().min().copied().unwrap_or(last);
        let max = self.window.iter().max().copied().unwrap_or(last);
        let round = |s: f64| Duration::from_micros((s * 1e6).round() as u64);
        Some(LatencyRtt::new(
            last,
            min,
            round(mean),
            max,
            round(var.sqrt()),
        ))
    }
}

/// Timing rules of the state machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthPolicy {
    /// A connected cable turns `error` after this long without a reply.
    pub error_after: Duration,
    /// A new cable may take this long for its first reply (handshake).
    pub connect_grace: Duration,
}

/// The health of one connection.
#[derive(Clone, Debug)]
pub struct ConnectionHealth {
    status: ConnectionStatus,
    /// When the cable was set up: silence before the first reply counts from here.
    created: Instant,
    last_reply: Option<Instant>,
    stats: RttStats,
    /// Highest sequence number sent, to ignore replies to older probes of a
    /// previous cable incarnation.
    pub next_seq: u64,
}

impl ConnectionHealth {
    /// A cable that was just set up.
    pub fn new(now: Instant) -> Self {
        Self {
            status: ConnectionStatus::Connecting,
            created: now,
            last_reply: None,
            stats: RttStats::new(100),
            next_seq: 0,
        }
    }

    /// Current status.
    pub fn status(&self) -> ConnectionStatus {
        self.status
    }

    /// RTT summary, if any reply arrived.
    pub fn rtt(&self) -> Option<LatencyRtt> {
        self.stats.summary()
    }

    /// Records a reply (or a remote's fresh acknowledgement, which may come
    /// without an RTT figure); returns `true` when the status changed.
    pub fn on_reply(&mut self, now: Instant, rtt: Option<Duration>) -> bool {
        self.last_reply = Some(now);
        if let Some(rtt) = rtt {
            self.stats.add(rtt);
        }
        self.set(ConnectionStatus::Connected)
    }

    /// Takes what the health checker heard from this remote
    /// ([`crate::prober::heard`]): its latest reply at `last` (ignored unless
    /// newer than anything this cable heard, or than the cable itself) and
    /// the RTT samples since the last read. Returns `true` when the status
    /// changed.
    pub fn on_heard(&mut self, last: Instant, rtts: &[Duration]) -> bool {
        if last <= self.last_reply.unwrap_or(self.created) {
            return false;
        }
        for rtt in rtts {
            self.stats.add(*rtt);
        }
        self.on_reply(last, None)
    }

    /// Applies the timeouts; returns `true` when the status changed.
    pub fn on_tick(&mut self, now: Instant, policy: &HealthPolicy) -> bool {
        let silent_for = now.duration_since(self.last_reply.unwrap_or(self.created));
        let limit = match self.status {
            ConnectionStatus::Connecting => policy.connect_grace,
            ConnectionStatus::Connected => policy.error_after,
            ConnectionStatus::Error => return false,
        };
        if silent_for >= limit {
            return self.set(ConnectionStatus::Error);
        }
        false
    }

    /// When [`on_tick`](Self::on_tick) turns this connection `error`
    /// unless a reply comes first (`None`: already `error`).
    pub fn deadline(&self, policy: &HealthPolicy) -> Option<Instant> {
        let since = self.last_reply.unwrap_or(self.created);
        match self.status {
            ConnectionStatus::Connecting => Some(since + policy.connect_grace),
            ConnectionStatus::Connected => Some(since + policy.error_after),
            ConnectionStatus::Error => None,
        }
    }

    /// A human message for the status.
    pub fn message(&self, now: Instant) -> String {
        match self.status {
            ConnectionStatus::Connected => String::new(),
            ConnectionStatus::Connecting => "waiting for the first health-check reply".into(),
            ConnectionStatus::Error => {
                let silent = now.duration_since(self.last_reply.unwrap_or(self.created));
                match self.last_reply {
                    Some(_) => format!("no health-check reply for {:.1}s", silent.as_secs_f64()),
                    None => format!(
                        "no health-check reply since the cable was set up {:.1}s ago",
                        silent.as_secs_f64()
                    ),
                }
            }
        }
    }

    fn set(&mut self, status: ConnectionStatus) -> bool {
        std::mem::replace(&mut self.status, status) != status
    }
}

#[cfg(test)]
mod tests;
