//! The gateway's Prometheus metrics (`ferry_gateway_*`): per cable its
//! status, health-check RTT, bytes each way and handshakes (where the
//! driver counts them: WireGuard), SA rekeys (IPsec), the lease role and its
//! transitions, and
//! failovers with the duration of the last one (lease taken → every cable
//! connected). The engine reports into [`Metrics`]; `ferry gateway` serves
//! it on `--metrics-addr` (`ferry_kube::metrics`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use ferry_api::{ConnectionStatus, GatewayStatus};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of a cable's series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CableLabels {
    /// The cluster at the other end.
    pub remote_cluster: String,
}

/// Labels of the cable status state set.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    remote_cluster: String,
    driver: String,
    status: &'static str,
}

/// Labels of the rekey counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RekeyLabels {
    remote_cluster: String,
    /// `ike` or `child`.
    sa: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransitionLabels {
    to: &'static str,
}

/// What a cable driver counts for one remote cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CableCounters {
    /// The remote cluster.
    pub remote_cluster: String,
    /// Inner bytes received from it since the peer was added (WireGuard).
    pub rx_bytes: Option<u64>,
    /// Inner bytes sent to it since the peer was added (WireGuard).
    pub tx_bytes: Option<u64>,
    /// When the last handshake completed.
    pub last_handshake: Option<SystemTime>,
    /// SA rekeys since the peer was added (IPsec).
    pub rekeys: Option<SaRekeys>,
}

/// Rekeys an IPsec peer counts (by either side).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SaRekeys {
    /// IKE SA rekeys.
    pub ike: u64,
    /// Child (ESP) SA rekeys.
    pub child: u64,
}

const STATUSES: [(ConnectionStatus, &str); 3] = [
    (ConnectionStatus::Connected, "connected"),
    (ConnectionStatus::Connecting, "connecting"),
    (ConnectionStatus::Error, "error"),
];

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// The gateway's metrics and their registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Arc<Registry>,
    cable_status: Family<StatusLabels, Gauge>,
    rtt: HistogramFamily<CableLabels>,
    rx_bytes: Family<CableLabels, Counter>,
    tx_bytes: Family<CableLabels, Counter>,
    handshakes: Family<CableLabels, Counter>,
    last_handshake: Family<CableLabels, Gauge<f64, AtomicU64>>,
    rekeys: Family<RekeyLabels, Counter>,
    lease_active: Gauge,
    lease_transitions: Family<TransitionLabels, Counter>,
    failovers: Counter,
    last_failover: Gauge<f64, AtomicU64>,
    state: Mutex<Sampled>,
}

/// What the previous samples saw (to turn the driver's totals into
/// counter increments and to drop the series of vanished cables).
#[derive(Debug, Default)]
struct Sampled {
    cables: BTreeSet<(String, String)>,
    counters: BTreeMap<String, CableCounters>,
    activated_at: Option<Instant>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn rtt_histogram() -> Histogram {
    // 100 µs … ~3.3 s
    Histogram::new(exponential_buckets(1e-4, 2.0, 16))
}

impl Metrics {
    /// Registers every metric under `ferry_gateway_`.
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("ferry_gateway");
        let cable_status = Family::<StatusLabels, Gauge>::default();
        r.register(
            "cable_status",
            "1 for the cable's current status (connected, connecting, error), 0 for the others",
            cable_status.clone(),
        );
        let rtt: HistogramFamily<CableLabels> = Family::new_with_constructor(rtt_histogram);
        r.register(
            "cable_rtt_seconds",
            "Round-trip time of health-check probes through the cable",
            rtt.clone(),
        );
        let rx_bytes = Family::<CableLabels, Counter>::default();
        r.register(
            "cable_received_bytes",
            "Inner bytes received through the cable (WireGuard)",
            rx_bytes.clone(),
        );
        let tx_bytes = Family::<CableLabels, Counter>::default();
        r.register(
            "cable_sent_bytes",
            "Inner bytes sent through the cable (WireGuard)",
            tx_bytes.clone(),
        );
        let handshakes = Family::<CableLabels, Counter>::default();
        r.register(
            "cable_handshakes",
            "Handshakes (and rekeys) completed on the cable (WireGuard)",
            handshakes.clone(),
        );
        let last_handshake = Family::<CableLabels, Gauge<f64, AtomicU64>>::default();
        r.register(
            "cable_last_handshake_timestamp_seconds",
            "Unix time of the cable's last completed handshake (WireGuard)",
            last_handshake.clone(),
        );
        let rekeys = Family::<RekeyLabels, Counter>::default();
        r.register(
            "cable_rekeys",
            "SA rekeys completed on the cable, by either side, by SA (IPsec: ike, child)",
            rekeys.clone(),
        );
        let lease_active = Gauge::default();
        r.register(
            "lease_active",
            "1 while this node holds the gateway Lease (active), 0 when passive",
            lease_active.clone(),
        );
        let lease_transitions = Family::<TransitionLabels, Counter>::default();
        r.register(
            "lease_transitions",
            "Role changes of this gateway, by the role it changed to",
            lease_transitions.clone(),
        );
        let failovers = Counter::default();
        r.register(
            "failovers",
            "Times this node took over as the active gateway",
            failovers.clone(),
        );
        let last_failover = Gauge::<f64, AtomicU64>::default();
        r.register(
            "last_failover_duration_seconds",
            "From taking the Lease to every cable connected, at the last takeover",
            last_failover.clone(),
        );
        Metrics {
            registry: Arc::new(r),
            cable_status,
            rtt,
            rx_bytes,
            tx_bytes,
            handshakes,
            last_handshake,
            rekeys,
            lease_active,
            lease_transitions,
            failovers,
            last_failover,
            state: Mutex::new(Sampled::default()),
        }
    }

    /// The registry, for `/metrics`.
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.clone()
    }

    fn state(&self) -> MutexGuard<'_, Sampled> {
        // Only counters' last samples live behind the lock: a panic while
        // holding it leaves them usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The Lease was taken (`true`) or lost/released (`false`).
    pub fn set_active(&self, active: bool) {
        let was = self.lease_active.set(i64::from(active)) == 1;
        if was == active {
            return;
        }
        let to = if active { "active" } else { "passive" };
        self.lease_transitions
            .get_or_create(&TransitionLabels { to })
            .inc();
        let mut state = self.state();
        if active {
            self.failovers.inc();
            state.activated_at = Some(Instant::now());
        } else {
            state.activated_at = None;
        }
    }

    /// Health-check replies from `remote_cluster` (one label lookup for
    /// all of them: the engine hands over what arrived since its last read).
    pub fn observe_rtts(&self, remote_cluster: &str, rtts: &[Duration]) {
        if rtts.is_empty() {
            return;
        }
        let histogram = self.rtt.get_or_create(&CableLabels {
            remote_cluster: remote_cluster.to_string(),
        });
        for rtt in rtts {
            histogram.observe(rtt.as_secs_f64());
        }
    }

    /// The Gateway status as it is now: the cables' state set, and the end
    /// of a takeover once every cable is connected.
    pub fn observe_status(&self, status: &GatewayStatus) {
        let mut state = self.state();
        let mut now_cables = BTreeSet::new();
        for c in &status.connections {
            let driver = c.cable_driver.to_string();
            for (s, name) in STATUSES {
                let labels = StatusLabels {
                    remote_cluster: c.cluster_id.clone(),
                    driver: driver.clone(),
                    status: name,
                };
                self.cable_status
                    .get_or_create(&labels)
                    .set(i64::from(c.status == s));
            }
            now_cables.insert((c.cluster_id.clone(), driver));
        }
        for (cluster, driver) in state.cables.difference(&now_cables) {
            for (_, name) in STATUSES {
                self.cable_status.remove(&StatusLabels {
                    remote_cluster: cluster.clone(),
                    driver: driver.clone(),
                    status: name,
                });
            }
        }
        state.cables = now_cables;
        let all_connected = !status.connections.is_empty()
            && status
                .connections
                .iter()
                .all(|c| c.status == ConnectionStatus::Connected);
        if all_connected && let Some(at) = state.activated_at.take() {
            self.last_failover.set(at.elapsed().as_secs_f64());
        }
    }

    /// The driver's counters now (one entry per cable it counts).
    pub fn observe_counters(&self, counters: &[CableCounters]) {
        let mut state = self.state();
        let mut seen = BTreeMap::new();
        for c in counters {
            let labels = CableLabels {
                remote_cluster: c.remote_cluster.clone(),
            };
            let before = state.counters.get(&c.remote_cluster);
            // A total that went down is a new peer: all of it is new.
            let delta = |now: u64, then: Option<u64>| match then {
                Some(t) if now >= t => now - t,
                _ => now,
            };
            if let Some(rx) = c.rx_bytes {
                self.rx_bytes
                    .get_or_create(&labels)
                    .inc_by(delta(rx, before.and_then(|b| b.rx_bytes)));
            }
            if let Some(tx) = c.tx_bytes {
                self.tx_bytes
                    .get_or_create(&labels)
                    .inc_by(delta(tx, before.and_then(|b| b.tx_bytes)));
            }
            if let Some(r) = c.rekeys {
                let then = before.and_then(|b| b.rekeys);
                for (sa, now, was) in [
                    ("ike", r.ike, then.map(|t| t.ike)),
                    ("child", r.child, then.map(|t| t.child)),
                ] {
                    let labels = RekeyLabels {
                        remote_cluster: c.remote_cluster.clone(),
                        sa,
                    };
                    self.rekeys.get_or_create(&labels).inc_by(delta(now, was));
                }
            }
            let handshakes = self.handshakes.get_or_create(&labels);
            if let Some(at) = c.last_handshake {
                if is_new_handshake(before.and_then(|b| b.last_handshake), at) {
                    handshakes.inc();
                }
                let unix = at
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map(|d| d.as_secs_f64())
                    .unwrap_or_default();
                self.last_handshake.get_or_create(&labels).set(unix);
            }
            seen.insert(c.remote_cluster.clone(), c.clone());
        }
        for gone in state.counters.keys().filter(|k| !seen.contains_key(*k)) {
            self.last_handshake.remove(&CableLabels {
                remote_cluster: gone.clone(),
            });
        }
        state.counters = seen;
    }
}

/// Whether `now` is another handshake than `before`. The runtime derives
/// the wall-clock time from a monotonic one on every read, so the same
/// handshake comes back a few microseconds apart; handshakes themselves are
/// seconds apart (WireGuard's REKEY_TIMEOUT is 5 s).
fn is_new_handshake(before: Option<SystemTime>, now: SystemTime) -> bool {
    let Some(before) = before else {
        return true;
    };
    let apart = now
        .duration_since(before)
        .unwrap_or_else(|earlier| earlier.duration());
    apart > Duration::from_secs(1)
}

#[cfg(test)]
mod tests;
