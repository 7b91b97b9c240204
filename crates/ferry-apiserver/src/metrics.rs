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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResourceLabels {
    pub resource: String,
}

/// The server's metrics; rendered by `/metrics`.
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<VerbLabels, Histogram>,
    pub watches: Gauge,
    /// Events sent to watchers (initial ADDED events included), by resource:
    /// what a server's watch fan-out costs (`bench/scale` reads it).
    pub watch_events: Family<ResourceLabels, Counter>,
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
        let watch_events = Family::<ResourceLabels, Counter>::default();
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
        registry.register(
            "watch_events",
            "Events sent to watchers, by resource",
            watch_events.clone(),
        );
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
            watch_events,
            objects,
            db_bytes,
            revision,
        }
    }

    /// OpenMetrics 1.0 text, as prometheus-client writes it: a counter's
    /// family is named without `_total`, its samples with it, and the text
    /// ends with `# EOF`.
    pub fn render_openmetrics(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.push_str("# error encoding metrics\n");
        }
        out
    }

    /// The Prometheus text format 0.0.4 (what a scraper gets unless it asks
    /// for OpenMetrics): there `# HELP` and `# TYPE` name the samples
    /// themselves, so a counter's are `…_total`, and there is no `# EOF` or
    /// `# UNIT`.
    pub fn render_prometheus(&self) -> String {
        to_prometheus_text(&self.render_openmetrics())
    }
}

/// Rewrites OpenMetrics text as Prometheus text 0.0.4.
fn to_prometheus_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        match renamed {
            Some(l) => out.push_str(&l),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_named_by_their_samples_in_prometheus_text() {
        let metrics = Metrics::new();
        metrics
            .requests
            .get_or_create(&RequestLabels {
                verb: "get".into(),
                resource: "pods".into(),
                code: 200,
            })
            .inc();
        metrics
            .watch_events
            .get_or_create(&ResourceLabels {
                resource: "pods".into(),
            })
            .inc();
        let text = metrics.render_prometheus();
        // bench/scale reads this sample by name.
        assert!(
            text.contains("\nferry_apiserver_watch_events_total{resource=\"pods\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE ferry_apiserver_requests_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("# HELP ferry_apiserver_requests_total "),
            "{text}"
        );
        assert!(!text.contains("# EOF"));
        assert!(text.contains("# TYPE ferry_apiserver_open_watches gauge\n"));
        let om = metrics.render_openmetrics();
        assert!(om.contains("# TYPE ferry_apiserver_requests counter\n"));
        assert!(om.ends_with("# EOF\n"));
    }
}
