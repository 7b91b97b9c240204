//! Every ferry daemon's `/metrics` in a sandbox clusterset (issue #18): the
//! agent, DNS, gateway and route agent of two joined clusters are scraped at
//! the port their pods' `prometheus.io/port` annotation names, each
//! exposition is parsed by a real OpenMetrics parser, the documented metric
//! names (README.md, "Metrics") must be there with their types, and every
//! metric the Grafana dashboard (deploy/grafana/ferry-dashboard.json) queries
//! must exist in what was scraped.
//! Root only (skipped otherwise); the test builds and deletes its own clusters.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ferry_e2e::{Broker, Cluster, Clusterset, repo_root, usable, wait_for};
use openmetrics_parser::OpenMetricsType;
use openmetrics_parser::openmetrics::parse_openmetrics;

/// The documented families, by component, with their type; `true`: the
/// family must already hold a sample in a connected two-cluster clusterset.
const DOCUMENTED: &[(&str, &str, OpenMetricsType, bool)] = &[
    (
        "gateway",
        "ferry_gateway_cable_status",
        OpenMetricsType::Gauge,
        true,
    ),
    (
        "gateway",
        "ferry_gateway_cable_rtt_seconds",
        OpenMetricsType::Histogram,
        true,
    ),
    (
        "gateway",
        "ferry_gateway_cable_received_bytes",
        OpenMetricsType::Counter,
        true,
    ),
    (
        "gateway",
        "ferry_gateway_cable_sent_bytes",
        OpenMetricsType::Counter,
        true,
    ),
    (
        "gateway",
        "ferry_gateway_cable_handshakes",
        OpenMetricsType::Counter,
        true,
    ),
    (
        "gateway",
        "ferry_gateway_cable_last_handshake_timestamp_seconds",
        OpenMetricsType::Gauge,
        true,
    ),
    // IPsec cables only: absent over this test's WireGuard cables, scraped
    // by tests/e2e/tests/ipsec.rs's rekey test.
    (
        "gateway",
        "ferry_gateway_cable_rekeys",
        OpenMetricsType::Counter,
        false,
    ),
    (
        "gateway",
        "ferry_gateway_lease_active",
        OpenMetricsType::Gauge,
        true,
    ),
    (
        "gateway",
        "ferry_gateway_lease_transitions",
        OpenMetricsType::Counter,
        true,
    ),
    (
        "gateway",
        "ferry_gateway_failovers",
        OpenMetricsType::Counter,
        true,
    ),
    (
        "gateway",
        "ferry_gateway_last_failover_duration_seconds",
        OpenMetricsType::Gauge,
        true,
    ),
    (
        "agent",
        "ferry_agent_writes",
        OpenMetricsType::Counter,
        true,
    ),
    (
        "agent",
        "ferry_agent_write_duration_seconds",
        OpenMetricsType::Histogram,
        true,
    ),
    (
        "agent",
        "ferry_agent_reconcile_duration_seconds",
        OpenMetricsType::Histogram,
        true,
    ),
    (
        "agent",
        "ferry_agent_queue_depth",
        OpenMetricsType::Gauge,
        true,
    ),
    (
        "agent",
        "ferry_agent_writes_in_flight",
        OpenMetricsType::Gauge,
        true,
    ),
    (
        "agent",
        "ferry_agent_throttled_writes",
        OpenMetricsType::Counter,
        true,
    ),
    (
        "agent",
        "ferry_agent_write_limit",
        OpenMetricsType::Gauge,
        true,
    ),
    (
        "agent",
        "ferry_agent_local_change_to_broker_write_seconds",
        OpenMetricsType::Histogram,
        true,
    ),
    (
        "route-agent",
        "ferry_route_agent_programmed_routes",
        OpenMetricsType::Gauge,
        true,
    ),
    (
        "route-agent",
        "ferry_route_agent_programmed_rules",
        OpenMetricsType::Gauge,
        true,
    ),
    (
        "route-agent",
        "ferry_route_agent_role",
        OpenMetricsType::Gauge,
        true,
    ),
    (
        "route-agent",
        "ferry_route_agent_route_changes",
        OpenMetricsType::Counter,
        true,
    ),
    (
        "route-agent",
        "ferry_route_agent_applies",
        OpenMetricsType::Counter,
        true,
    ),
    (
        "route-agent",
        "ferry_route_agent_apply_duration_seconds",
        OpenMetricsType::Histogram,
        true,
    ),
    (
        "route-agent",
        "ferry_route_agent_repoints",
        OpenMetricsType::Counter,
        true,
    ),
    (
        "route-agent",
        "ferry_route_agent_repoint_duration_seconds",
        OpenMetricsType::Histogram,
        true,
    ),
    ("dns", "ferry_dns_queries", OpenMetricsType::Counter, false),
    (
        "dns",
        "ferry_dns_query_duration_seconds",
        OpenMetricsType::Histogram,
        true,
    ),
    (
        "dns",
        "ferry_dns_clusterset_answers",
        OpenMetricsType::Counter,
        true,
    ),
    ("dns", "ferry_dns_services", OpenMetricsType::Gauge, true),
];

/// One scraped family: its type and whether it holds a sample.
type Families = BTreeMap<String, (OpenMetricsType, bool)>;

/// The ferry pods of `c`: (component, where to run curl, port annotation).
fn ferry_pods(c: &Cluster) -> Vec<(String, String, String)> {
    let out = c
        .kubectl(&["-n", "ferry-system", "get", "pods", "-o", "json"])
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["status"]["phase"] == "Running")
        .map(|p| {
            let app = p["metadata"]["labels"]["app.kubernetes.io/name"]
                .as_str()
                .unwrap();
            let ann = &p["metadata"]["annotations"];
            assert_eq!(ann["prometheus.io/scrape"], "true", "{app}: {p}");
            assert_eq!(ann["prometheus.io/path"], "/metrics", "{app}");
            let port = ann["prometheus.io/port"].as_str().unwrap().to_string();
            let ports = p["spec"]["containers"][0]["ports"].to_string();
            assert!(ports.contains(&port), "{app}: port {port} not in {ports}");
            // A host-network pod shares its node's namespace.
            let target = if p["spec"]["hostNetwork"] == true {
                p["spec"]["nodeName"].as_str().unwrap().to_string()
            } else {
                format!("ferry-system/{}", p["metadata"]["name"].as_str().unwrap())
            };
            let component = app.trim_start_matches("ferry-").to_string();
            (component, target, port)
        })
        .collect()
}

/// Scrapes and parses one endpoint.
fn scrape(c: &Cluster, target: &str, port: &str) -> Families {
    let text = c
        .curl(target, &format!("http://127.0.0.1:{port}/metrics"))
        .unwrap();
    let exposition = parse_openmetrics(&text)
        .unwrap_or_else(|e| panic!("{target}:{port} is not OpenMetrics ({e:?}):\n{text}"));
    exposition
        .families
        .values()
        .map(|f| {
            let has_sample = f.iter_samples().next().is_some();
            (f.family_name.clone(), (f.family_type, has_sample))
        })
        .collect()
}

/// Every family scraped in `c`, by component (merged over its pods).
fn scrape_all(c: &Cluster) -> BTreeMap<String, Families> {
    let mut all: BTreeMap<String, Families> = BTreeMap::new();
    for (component, target, port) in ferry_pods(c) {
        let families = scrape(c, &target, &port);
        let merged = all.entry(component).or_default();
        for (name, (ty, sampled)) in families {
            let e = merged.entry(name).or_insert((ty, false));
            e.1 |= sampled;
        }
    }
    all
}

/// What is missing from `all` among the documented families.
fn missing(all: &BTreeMap<String, Families>) -> Vec<String> {
    DOCUMENTED
        .iter()
        .filter_map(|(component, name, ty, sampled)| {
            let got = all.get(*component).and_then(|f| f.get(*name));
            match got {
                Some((t, s)) if t == ty && (*s || !sampled) => None,
                // A family no cable here feeds has no sample, and such a
                // family is left out of the exposition; its own test
                // scrapes it (the rekey counter: tests/e2e/tests/ipsec.rs).
                None if !sampled => None,
                other => Some(format!("{component}: {name} ({ty:?}) got {other:?}")),
            }
        })
        .collect()
}

/// One query to the cluster's ferry-dns pod, so its query counters hold a
/// sample (a family without one is not in the exposition).
fn ask_dns(c: &Cluster) {
    let ip = ferry_e2e::ferry_dns_pod_ip(c).to_string();
    let out = c
        .ferry(&[
            "sandbox",
            "exec",
            &c.name,
            &c.node(0),
            "--",
            "dig",
            "+tries=3",
            "+time=1",
            &format!("@{}", ip.trim()),
            "nothing.default.svc.clusterset.local",
        ])
        .unwrap();
    assert!(out.contains("NXDOMAIN"), "{out}");
}

/// The sample names a family of type `ty` named `family` exposes.
fn sample_names(family: &str, ty: &OpenMetricsType) -> Vec<String> {
    match ty {
        OpenMetricsType::Counter => vec![format!("{family}_total")],
        OpenMetricsType::Histogram => ["_bucket", "_sum", "_count"]
            .iter()
            .map(|s| format!("{family}{s}"))
            .collect(),
        _ => vec![family.to_string()],
    }
}

/// Metric names used in the dashboard's queries.
fn dashboard_metrics() -> BTreeSet<String> {
    let path = repo_root().join("deploy/grafana/ferry-dashboard.json");
    let dash: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut names = BTreeSet::new();
    for panel in dash["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap();
            let mut rest = expr;
            while let Some(at) = rest.find("ferry_") {
                let tail = &rest[at..];
                let end = tail
                    .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
                    .unwrap_or(tail.len());
                names.insert(tail[..end].to_string());
                rest = &tail[end..];
            }
        }
    }
    names
}

#[test]
fn every_daemon_serves_the_documented_metrics_and_the_dashboard_uses_only_those() {
    if !usable() {
        return;
    }
    let tag = format!("e18m{}", std::process::id() % 10_000);
    let cs = Clusterset::new(
        &tag,
        &[2, 2],
        &[&[0], &[0]],
        "wireguard",
        Broker::FirstCluster,
    );
    let mut exposed = BTreeSet::new();
    for c in &cs.clusters {
        ask_dns(c);
        // Byte counters and RTTs are sampled every second after the cables
        // connect: wait for them rather than sleep.
        let scraped = wait_for(
            Duration::from_secs(60),
            &format!("every documented metric in {}", c.name),
            || {
                let all = scrape_all(c);
                let gaps = missing(&all);
                if !gaps.is_empty() {
                    eprintln!("{}: still missing {gaps:?}", c.name);
                }
                let components: BTreeSet<&str> = all.keys().map(String::as_str).collect();
                let want = BTreeSet::from(["agent", "dns", "gateway", "route-agent"]);
                (gaps.is_empty() && components == want).then_some(all)
            },
        );
        exposed.extend(
            scraped
                .values()
                .flat_map(|f| f.iter())
                .flat_map(|(name, (ty, _))| sample_names(name, ty)),
        );
    }
    let used = dashboard_metrics();
    assert!(used.len() >= 20, "the dashboard queries only {used:?}");
    let unknown: Vec<&String> = used.difference(&exposed).collect();
    assert!(
        unknown.is_empty(),
        "the dashboard queries metrics no daemon exposes: {unknown:?}\nexposed: {exposed:?}"
    );
}
