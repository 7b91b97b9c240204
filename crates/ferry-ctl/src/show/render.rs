//! Rendering a [`Report`]: kubectl-style tables (each cluster under a
//! header naming it, each section titled with the cluster id), or the same
//! data as JSON or YAML. Pure functions: data in, string out.

use std::time::Duration;

use ferry_api::{
    ConnectionStatus, HaStatus, LatencyRtt, NatDiscovery, NatDiscoveryResult, ServiceImportType,
};

use super::model::*;
use crate::table::Table;
use crate::{Error, Result};

/// Output formats of `show`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// Human-readable tables.
    #[default]
    Table,
    /// One JSON document.
    Json,
    /// One YAML document.
    Yaml,
}

/// Renders `report` in `format`.
pub fn render(report: &Report, format: Format) -> Result<String> {
    match format {
        Format::Table => Ok(table(report)),
        Format::Json => serde_json::to_string_pretty(report)
            .map(|s| s + "\n")
            .map_err(|e| Error::Render(e.to_string())),
        Format::Yaml => to_yaml(report),
    }
}

/// `value` as one YAML document.
pub fn to_yaml<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_yaml_ng::to_string(value).map_err(|e| Error::Render(e.to_string()))
}

/// A duration the way people read RTTs: `0.35ms`, `12.4ms`, `230ms`, `1.5s`.
pub fn fmt_duration(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2}ms")
    } else if ms < 100.0 {
        format!("{ms:.1}ms")
    } else if ms < 10_000.0 {
        format!("{ms:.0}ms")
    } else {
        format!("{:.1}s", ms / 1000.0)
    }
}

fn rtt(r: &Option<LatencyRtt>, pick: fn(&LatencyRtt) -> kube::core::Duration) -> String {
    r.as_ref()
        .map_or_else(|| "-".into(), |r| fmt_duration(Duration::from(pick(r))))
}

fn or_dash(s: Option<&str>) -> String {
    match s {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => "-".into(),
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "-".into()
    } else {
        items.join(",")
    }
}

fn connection_status(s: ConnectionStatus) -> &'static str {
    match s {
        ConnectionStatus::Connecting => "connecting",
        ConnectionStatus::Connected => "connected",
        ConnectionStatus::Error => "error",
    }
}

/// Every cluster, one after the other, separated by a blank line.
pub fn table(report: &Report) -> String {
    let mut out = String::new();
    for (i, c) in report.clusters.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        cluster(c, &mut out);
    }
    out
}

fn cluster(c: &ClusterReport, out: &mut String) {
    if let Some(err) = &c.error {
        out.push_str(&format!("✗ {}: {err}\n", c.source));
        return;
    }
    let id = c.cluster_id.as_deref().unwrap_or("?");
    out.push_str(&format!("Cluster {id} ({}, {})\n", c.source, c.server));
    let v = &c.view;
    let mut section = |title: &str, body: String| {
        out.push('\n');
        out.push_str(&format!("{title} of {id}\n"));
        out.push_str(&body);
    };
    if let Some(rows) = &v.connections {
        section("Connections", connections(rows));
    }
    if let Some(rows) = &v.endpoints {
        section("Endpoints", endpoints(rows));
    }
    if let Some(rows) = &v.gateways {
        section("Gateways", gateways(rows));
    }
    if let Some(rows) = &v.networks {
        section("Networks", networks(rows));
    }
    if let Some(s) = &v.services {
        section("Imported services", imports(&s.imports));
        section("Exported services", exports(&s.exports));
    }
    if let Some(rows) = &v.brokers {
        section("Broker", brokers(rows));
    }
    if let Some(rows) = &v.versions {
        section("Versions", versions(rows));
    }
    if let Some(g) = &v.globalnet {
        section("Globalnet blocks", global_blocks(&g.blocks));
        section("Globalnet IPs", allocations(&g.allocations));
    }
}

fn global_blocks(rows: &[GlobalBlockRow]) -> String {
    let mut t = Table::new(&["CLUSTER", "GLOBAL-CIDRS"]);
    for r in rows {
        t.row(vec![
            if r.local {
                format!("{} (local)", r.cluster)
            } else {
                r.cluster.clone()
            },
            list(&r.global_cidrs),
        ]);
    }
    or_note(
        t,
        "none: no cluster has Globalnet on; `ferry globalnet enable` switches it on in a joined cluster",
    )
}

fn allocations(rows: &[AllocationRow]) -> String {
    let mut t = Table::new(&["KIND", "NAMESPACE", "NAME", "FOR", "IPS", "STATE"]);
    for r in rows {
        t.row(vec![
            r.kind.clone(),
            or_dash(Some(&r.namespace)),
            r.name.clone(),
            r.for_.clone(),
            list(&r.ips),
            r.state.clone(),
        ]);
    }
    or_note(
        t,
        "none: Globalnet is off in this cluster (or its agent has not started it yet)",
    )
}

fn or_note(t: Table, note: &str) -> String {
    if t.is_empty() {
        format!("  ({note})\n")
    } else {
        t.render()
    }
}

fn connections(rows: &[ConnectionRow]) -> String {
    let mut t = Table::new(&[
        "GATEWAY",
        "CLUSTER",
        "REMOTE-IP",
        "NAT",
        "NAT-DISCOVERY",
        "CABLE-DRIVER",
        "SUBNETS",
        "STATUS",
        "RTT-MIN",
        "RTT-AVG",
        "RTT-MAX",
        "MESSAGE",
    ]);
    for r in rows {
        t.row(vec![
            r.gateway.clone(),
            r.cluster.clone(),
            or_dash(r.remote_ip.as_deref()),
            if r.using_nat { "yes" } else { "no" }.into(),
            nat_discovery(r.nat_discovery.as_ref()),
            r.cable_driver.to_string(),
            list(&r.subnets),
            connection_status(r.status).into(),
            rtt(&r.latency_rtt, |l| l.min),
            rtt(&r.latency_rtt, |l| l.average),
            rtt(&r.latency_rtt, |l| l.max),
            r.status_message.clone(),
        ]);
    }
    or_note(
        t,
        "none: no gateway has reported a connection; see Gateways",
    )
}

/// NAT discovery in a few words: which address answered and how this
/// gateway looked to the remote (or where the remote's probes come from).
fn nat_discovery(nd: Option<&NatDiscovery>) -> String {
    let Some(nd) = nd else {
        return "-".into();
    };
    match nd.result {
        NatDiscoveryResult::Probing => "probing".into(),
        NatDiscoveryResult::PrivateIp | NatDiscoveryResult::PublicIp => {
            let which = if nd.result == NatDiscoveryResult::PrivateIp {
                "private ip"
            } else {
                "public ip"
            };
            match nd.seen_as {
                Some(a) => format!("{which}, seen as {a}"),
                None => which.into(),
            }
        }
        NatDiscoveryResult::InboundOnly => match nd.remote_seen_from {
            Some(a) => format!("inbound only, from {a}"),
            None => "inbound only".into(),
        },
        NatDiscoveryResult::Unreachable => "unreachable".into(),
    }
}

fn endpoints(rows: &[EndpointRow]) -> String {
    let mut t = Table::new(&[
        "CLUSTER",
        "GATEWAY",
        "ENDPOINT-IP",
        "PUBLIC-IP",
        "CABLE-DRIVER",
        "TYPE",
    ]);
    for r in rows {
        t.row(vec![
            r.cluster.clone(),
            r.hostname.clone(),
            r.private_ip.clone(),
            or_dash(r.public_ip.as_deref()),
            r.cable_driver.to_string(),
            if r.local { "local" } else { "remote" }.into(),
        ]);
    }
    or_note(t, "none: no gateway has published an Endpoint yet")
}

fn gateways(rows: &[GatewayRow]) -> String {
    let mut t = Table::new(&[
        "NODE",
        "HA-STATUS",
        "SHARE(LAST ~30S)",
        "CABLE-BYTES(SINCE UP)",
        "SUMMARY",
    ]);
    for r in rows {
        t.row(vec![
            r.node.clone(),
            match r.ha_status {
                Some(HaStatus::Active) => "active",
                Some(HaStatus::Passive) => "passive",
                None => "-",
            }
            .into(),
            share_cell(r),
            r.traffic
                .map_or("-".into(), |t| human_bytes(t.tx_bytes + t.rx_bytes)),
            r.summary.clone(),
        ]);
    }
    or_note(
        t,
        "none: no node is labelled ferry.dev/gateway=true; label one with `kubectl label node NODE ferry.dev/gateway=true`",
    )
}

/// `48%`; `idle` when its cluster's gateways moved no bytes in the window;
/// `-` when it reported none.
fn share_cell(r: &GatewayRow) -> String {
    match (r.share_percent, r.traffic) {
        (Some(p), _) => format!("{p:.0}%"),
        (None, Some(_)) => "idle".into(),
        (None, None) => "-".into(),
    }
}

/// Bytes in B, kB, MB, GB (powers of 1000), three significant digits.
fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if b < 1000 {
        return format!("{b} B");
    }
    let mut v = b as f64 / 1000.0;
    let mut unit = 0;
    while v >= 1000.0 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    let digits = if v < 10.0 {
        2
    } else if v < 100.0 {
        1
    } else {
        0
    };
    format!("{v:.digits$} {}", UNITS[unit])
}

fn networks(rows: &[NetworkRow]) -> String {
    let mut t = Table::new(&[
        "CLUSTER",
        "CNI",
        "CLUSTER-CIDRS",
        "SERVICE-CIDRS",
        "GLOBAL-CIDRS",
    ]);
    for r in rows {
        t.row(vec![
            if r.local {
                format!("{} (local)", r.cluster)
            } else {
                r.cluster.clone()
            },
            r.cni.clone().unwrap_or_else(|| "-".into()),
            list(&r.cluster_cidrs),
            list(&r.service_cidrs),
            list(&r.global_cidrs),
        ]);
    }
    or_note(t, "none: no Cluster published yet; is ferry agent running?")
}

fn imports(rows: &[ServiceRow]) -> String {
    let mut t = Table::new(&[
        "NAMESPACE",
        "NAME",
        "TYPE",
        "IP",
        "PORTS",
        "CLUSTER",
        "ENDPOINTS",
        "HEALTH",
    ]);
    for s in rows {
        let ty = match s.type_ {
            ServiceImportType::ClusterSetIp => "ClusterSetIP",
            ServiceImportType::Headless => "Headless",
        };
        let head = vec![
            s.namespace.clone(),
            s.name.clone(),
            ty.to_string(),
            if s.type_ == ServiceImportType::Headless {
                "None".into()
            } else {
                list(&s.ips)
            },
            list(&s.ports),
        ];
        if s.clusters.is_empty() {
            let mut cells = head;
            cells.extend([
                "-".into(),
                "-".into(),
                "unhealthy: no cluster exports it".into(),
            ]);
            t.row(cells);
            continue;
        }
        for (i, c) in s.clusters.iter().enumerate() {
            let mut cells = if i == 0 {
                head.clone()
            } else {
                vec![String::new(); head.len()]
            };
            cells.push(if c.local {
                format!("{} (local)", c.cluster)
            } else {
                c.cluster.clone()
            });
            cells.push(format!("{}/{}", c.ready_endpoints, c.endpoints));
            cells.push(if c.healthy {
                "healthy".into()
            } else {
                format!("unhealthy: {}", c.reason)
            });
            t.row(cells);
        }
    }
    or_note(
        t,
        "none; export one with `ferry export service NAME -n NAMESPACE`",
    )
}

fn exports(rows: &[ExportRow]) -> String {
    let mut t = Table::new(&["NAMESPACE", "NAME", "VALID", "READY", "CONFLICT", "MESSAGE"]);
    for r in rows {
        t.row(vec![
            r.namespace.clone(),
            r.name.clone(),
            or_dash(r.valid.as_deref()),
            or_dash(r.ready.as_deref()),
            or_dash(r.conflict.as_deref()),
            r.message.clone(),
        ]);
    }
    or_note(t, "none: no ServiceExport in this cluster")
}

fn brokers(rows: &[BrokerRow]) -> String {
    let mut t = Table::new(&[
        "URL",
        "NAMESPACE",
        "CLUSTERSET-DOMAIN",
        "CLUSTER-ID",
        "CABLE-DRIVER",
        "GLOBALNET",
        "HEALTH-CHECK",
    ]);
    for r in rows {
        t.row(vec![
            r.url.clone(),
            r.namespace.clone(),
            r.clusterset_domain.clone(),
            r.cluster_id.clone(),
            or_dash(r.cable_driver.as_deref()),
            if r.globalnet { "on" } else { "off" }.into(),
            format!("every {}", r.health_check_interval),
        ]);
    }
    or_note(t, "none")
}

fn versions(rows: &[VersionRow]) -> String {
    let mut t = Table::new(&["COMPONENT", "KIND", "REPOSITORY", "VERSION", "READY"]);
    for r in rows {
        t.row(vec![
            r.component.clone(),
            r.kind.clone(),
            r.repository.clone(),
            r.version.clone(),
            or_dash(r.ready.as_deref()),
        ]);
    }
    or_note(t, "none: no ferry workload in ferry-system")
}

#[cfg(test)]
mod tests;
