//! Prometheus metrics: requests by verb/resource/code, latency, open
//! watches, objects and database size.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub verb: String,
    pub resource: String,
    pub code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerbLabels {
    pub verb: String,
}

/// The server's metrics; rendered by `/metrics`.
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<VerbLabels, Histogram>,
    pub watches: Gauge,
    pub objects: Gauge,
    pub db_bytes: Gauge<u64, AtomicU64>,
    pub revision: Gauge<u64, AtomicU64>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("ferry_apiserver");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<VerbLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ])
        });
        let watches = Gauge::default();
        let objects = Gauge::default();
        let db_bytes = Gauge::<u64, AtomicU64>::default();
        let revision = Gauge::<u64, AtomicU64>::default();
        registry.register(
            "requests",
            "API requests by verb, resource and HTTP code",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time to answer a request (watch: time to start streaming)",
            latency.clone(),
        );
        registry.register("open_watches", "Watch streams open now", watches.clone());
        registry.register("objects", "Objects stored", objects.clone());
        registry.register(
            "db_size_bytes",
            "Size of the database and its WAL on disk",
            db_bytes.clone(),
        );
        registry.register("revision", "Newest committed revision", revision.clone());
        Metrics {
            registry,
            requests,
            latency,
            watches,
            objects,
            db_bytes,
            revision,
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.push_str("# error encoding metrics\n");
        }
        out
    }
}
