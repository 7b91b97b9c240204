//! Prometheus metrics: queries by type and response code, answer latency,
//! dropped packets, and the size of the zone.

use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::Error;
use crate::model::Policy;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChoiceLabels {
    policy: &'static str,
    choice: &'static str,
}

/// What the answerer chose for a ClusterSetIP service, by the outcome of
/// the health policy: the local cluster, a remote one, or none (no cluster
/// with ready endpoints and a connected cable).
#[derive(Clone, Debug, Default)]
pub struct ChoiceCounters {
    /// The local cluster was chosen.
    pub local: Counter,
    /// A remote cluster was chosen.
    pub remote: Counter,
    /// No cluster was eligible: the name does not resolve.
    pub none: Counter,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueryLabels {
    qtype: &'static str,
    rcode: &'static str,
    proto: &'static str,
}

/// The DNS server's metrics and their registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    queries: Family<QueryLabels, Counter>,
    latency: Histogram,
    dropped: Counter,
    /// Services in the current snapshot.
    pub services: Gauge,
    /// Snapshots built by the reflectors.
    pub rebuilds: Counter,
    choices: Family<ChoiceLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric under `ferry_dns_`.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("ferry_dns");
        let queries = Family::<QueryLabels, Counter>::default();
        registry.register(
            "queries",
            "DNS queries answered, by query type, response code and transport",
            queries.clone(),
        );
        // 1 µs … ~16 ms
        let latency = Histogram::new(exponential_buckets(1e-6, 2.0, 15));
        registry.register(
            "query_duration_seconds",
            "Time from a parsed query to its encoded answer",
            latency.clone(),
        );
        let dropped = Counter::default();
        registry.register(
            "dropped_packets",
            "Packets dropped without an answer (too short, or not a query)",
            dropped.clone(),
        );
        let services = Gauge::default();
        registry.register("services", "Services in the zone", services.clone());
        let rebuilds = Counter::default();
        registry.register(
            "zone_rebuilds",
            "Zone snapshots built from the reflectors' stores",
            rebuilds.clone(),
        );
        let choices = Family::<ChoiceLabels, Counter>::default();
        registry.register(
            "clusterset_answers",
            "ClusterSetIP answers computed, by policy and the cluster chosen (local, remote, none: no healthy exporter); a repeat served from the UDP cache is not counted again",
            choices.clone(),
        );
        Self {
            choices,
            registry,
            queries,
            latency,
            dropped,
            services,
            rebuilds,
        }
    }

    /// Counts one answered query.
    pub fn query(&self, qtype: Option<RecordType>, rcode: ResponseCode, tcp: bool, took: Duration) {
        let labels = QueryLabels {
            qtype: qtype.map_or("none", <&'static str>::from),
            rcode: rcode_name(rcode),
            proto: if tcp { "tcp" } else { "udp" },
        };
        self.queries.get_or_create(&labels).inc();
        self.latency.observe(took.as_secs_f64());
    }

    /// Counters for an answerer choosing under `policy`.
    pub fn choice_counters(&self, policy: Policy) -> ChoiceCounters {
        let policy = policy.as_str();
        let get = |choice| {
            self.choices
                .get_or_create(&ChoiceLabels { policy, choice })
                .clone()
        };
        ChoiceCounters {
            local: get("local"),
            remote: get("remote"),
            none: get("none"),
        }
    }

    /// Counts one dropped packet.
    pub fn dropped(&self) {
        self.dropped.inc();
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        ferry_kube::metrics::encode(&self.registry)
    }
}

fn rcode_name(rcode: ResponseCode) -> &'static str {
    match rcode {
        ResponseCode::NoError => "NOERROR",
        ResponseCode::FormErr => "FORMERR",
        ResponseCode::ServFail => "SERVFAIL",
        ResponseCode::NXDomain => "NXDOMAIN",
        ResponseCode::NotImp => "NOTIMP",
        ResponseCode::Refused => "REFUSED",
        ResponseCode::BADVERS => "BADVERS",
        _ => "OTHER",
    }
}

/// Serves `GET /metrics` on `listener` until the task is dropped (the
/// server every daemon shares, `ferry_kube::metrics`).
pub async fn serve(listener: tokio::net::TcpListener, metrics: Arc<Metrics>) -> Result<(), Error> {
    ferry_kube::metrics::serve(listener, Arc::new(move || metrics.encode()))
        .await
        .map_err(|e| match e {
            ferry_kube::Error::Metrics { source, .. } => Error::io("serving /metrics", source),
            other => Error::io("serving /metrics", std::io::Error::other(other.to_string())),
        })
}
