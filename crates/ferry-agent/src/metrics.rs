//! The agent's Prometheus metrics (`ferry_agent_*`): writes by kind,
//! direction, operation and result with their latency, reconcile latency,
//! keys waiting and writes in flight, 429 answers and the current write
//! limit, and the time from a change in this cluster to its write on the
//! broker. The sync engine reports into [`Metrics`]; `ferry agent` serves
//! it on `--metrics-addr` (`ferry_kube::metrics`).

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::store::{Kind, Side};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WriteLabels {
    kind: &'static str,
    direction: &'static str,
    op: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabels {
    direction: &'static str,
}

/// How a write ended, for its labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WriteResult {
    Ok,
    /// HTTP 429: the server is overloaded.
    Throttled,
    Error,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 100 µs … ~6.5 s
    Histogram::new(exponential_buckets(1e-4, 2.0, 17))
}

/// The agent's metrics and their registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Arc<Registry>,
    writes: Family<WriteLabels, Counter>,
    write_duration: HistogramFamily<DirectionLabels>,
    reconcile_duration: Histogram,
    queue_depth: Gauge,
    writes_in_flight: Gauge,
    throttled: Counter,
    write_limit: Gauge,
    change_to_broker: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::ServiceExport => "ServiceExport",
        Kind::Service => "Service",
        Kind::EndpointSlice => "EndpointSlice",
        Kind::Namespace => "Namespace",
        Kind::ServiceImport => "ServiceImport",
        Kind::Cluster => "Cluster",
        Kind::Endpoint => "Endpoint",
        Kind::Gateway => "Gateway",
    }
}

fn direction(side: Side) -> &'static str {
    match side {
        Side::Local => "to_local",
        Side::Broker => "to_broker",
    }
}

impl Metrics {
    /// Registers every metric under `ferry_agent_`.
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("ferry_agent");
        let writes = Family::<WriteLabels, Counter>::default();
        r.register(
            "writes",
            "Objects written, by kind, direction (to_broker, to_local), operation and result",
            writes.clone(),
        );
        let write_duration: HistogramFamily<DirectionLabels> =
            Family::new_with_constructor(latency_histogram);
        r.register(
            "write_duration_seconds",
            "Time of one write against an API server (waiting for a writer not included)",
            write_duration.clone(),
        );
        let reconcile_duration = latency_histogram();
        r.register(
            "reconcile_duration_seconds",
            "Time of one reconcile of a key (writes are queued, not awaited)",
            reconcile_duration.clone(),
        );
        let queue_depth = Gauge::default();
        r.register(
            "queue_depth",
            "Keys waiting to be reconciled (queued, or held back while the writers are full)",
            queue_depth.clone(),
        );
        let writes_in_flight = Gauge::default();
        r.register(
            "writes_in_flight",
            "Writes started and not yet answered",
            writes_in_flight.clone(),
        );
        let throttled = Counter::default();
        r.register(
            "throttled_writes",
            "Writes an API server refused as overloaded (HTTP 429)",
            throttled.clone(),
        );
        let write_limit = Gauge::default();
        r.register(
            "write_limit",
            "Writes allowed in flight now (halved on 429, raised back step by step)",
            write_limit.clone(),
        );
        let change_to_broker = latency_histogram();
        r.register(
            "local_change_to_broker_write_seconds",
            "From a watched change in this cluster to the broker write it caused",
            change_to_broker.clone(),
        );
        Metrics {
            registry: Arc::new(r),
            writes,
            write_duration,
            reconcile_duration,
            queue_depth,
            writes_in_flight,
            throttled,
            write_limit,
            change_to_broker,
        }
    }

    /// The registry, for `/metrics`.
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.clone()
    }

    /// One write ended.
    pub(crate) fn written(
        &self,
        kind: Kind,
        side: Side,
        op: &'static str,
        result: WriteResult,
        took: Duration,
    ) {
        let result_name = match result {
            WriteResult::Ok => "ok",
            WriteResult::Throttled => "throttled",
            WriteResult::Error => "error",
        };
        self.writes
            .get_or_create(&WriteLabels {
                kind: kind_name(kind),
                direction: direction(side),
                op,
                result: result_name,
            })
            .inc();
        self.write_duration
            .get_or_create(&DirectionLabels {
                direction: direction(side),
            })
            .observe(took.as_secs_f64());
        if result == WriteResult::Throttled {
            self.throttled.inc();
        }
    }

    /// One reconcile took `took`.
    pub(crate) fn reconciled(&self, took: Duration) {
        self.reconcile_duration.observe(took.as_secs_f64());
    }

    /// The engine's queue and writers now.
    pub(crate) fn set_load(&self, waiting: usize, in_flight: usize, limit: usize) {
        let n = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
        self.queue_depth.set(n(waiting));
        self.writes_in_flight.set(n(in_flight));
        self.write_limit.set(n(limit));
    }

    /// A local change reached the broker after `took`.
    pub(crate) fn change_reached_broker(&self, took: Duration) {
        self.change_to_broker.observe(took.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn writes_are_counted_by_kind_direction_and_result() {
        let m = Metrics::new();
        let ms = Duration::from_millis(1);
        m.written(
            Kind::ServiceImport,
            Side::Broker,
            "apply",
            WriteResult::Ok,
            ms,
        );
        m.written(
            Kind::EndpointSlice,
            Side::Local,
            "apply",
            WriteResult::Throttled,
            ms,
        );
        m.set_load(3, 2, 128);
        m.change_reached_broker(ms);
        let t = ferry_kube::metrics::encode(&m.registry());
        for want in [
            r#"ferry_agent_writes_total{kind="ServiceImport",direction="to_broker",op="apply",result="ok"} 1"#,
            r#"ferry_agent_writes_total{kind="EndpointSlice",direction="to_local",op="apply",result="throttled"} 1"#,
            "ferry_agent_throttled_writes_total 1",
            "ferry_agent_queue_depth 3",
            "ferry_agent_writes_in_flight 2",
            "ferry_agent_write_limit 128",
            "ferry_agent_local_change_to_broker_write_seconds_count 1",
            r#"ferry_agent_write_duration_seconds_count{direction="to_local"} 1"#,
        ] {
            assert!(t.contains(want), "{want} missing in\n{t}");
        }
    }
}
