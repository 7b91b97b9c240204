//! The `service-discovery` check.

use std::collections::BTreeSet;
use std::net::IpAddr;

use ferry_api::labels::{BROKER_NAMESPACE, SERVICE_NAME, SOURCE_CLUSTER};
use ferry_api::{ConnectionStatus, ServiceImport, ServiceImportType};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::common::*;
use crate::check::{Line, Status};
use crate::cluster::Facts;
use crate::diagnose::checks::Check;
use crate::probe::spec::DnsOutcome;
use crate::probe::{Outcome, Report};

/// The name a ServiceImport is resolved by.
pub fn import_name(si: &ServiceImport, domain: &str) -> String {
    format!(
        "{}.{}.svc.{domain}",
        si.metadata.name.as_deref().unwrap_or(""),
        si.metadata.namespace.as_deref().unwrap_or("")
    )
}

/// What a DNS answer for `si` may contain: the import's ClusterSet IPs,
/// else the ready endpoint addresses of the clusters ferry dns may answer
/// with (this one, and those whose cable is connected); with the clusters
/// they come from.
pub fn expected_answer(f: &Facts, si: &ServiceImport) -> (BTreeSet<IpAddr>, Vec<String>) {
    let name = si.metadata.name.as_deref().unwrap_or("");
    let ns = si.metadata.namespace.as_deref().unwrap_or("");
    let eligible = |c: &str| {
        c == f.id()
            || f.connection_to(c)
                .is_some_and(|x| x.status == ConnectionStatus::Connected)
    };
    let slices: Vec<&EndpointSlice> = f
        .snapshot
        .slices
        .iter()
        .filter(|s| s.metadata.namespace.as_deref() == Some(ns))
        .filter(|s| {
            s.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(SERVICE_NAME))
                .is_some_and(|n| n == name)
        })
        .collect();
    let mut clusters: Vec<String> = Vec::new();
    let mut ips = BTreeSet::new();
    for s in slices {
        let Some(c) = s
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SOURCE_CLUSTER))
        else {
            continue;
        };
        if !eligible(c) {
            continue;
        }
        let ready: Vec<IpAddr> = s
            .endpoints
            .iter()
            .filter(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true))
            .flat_map(|e| e.addresses.iter().filter_map(|a| a.parse().ok()))
            .collect();
        if !ready.is_empty() && !clusters.contains(c) {
            clusters.push(c.clone());
        }
        ips.extend(ready);
    }
    if si.spec.type_ == ServiceImportType::ClusterSetIp && !si.spec.ips.is_empty() {
        let set: BTreeSet<IpAddr> = si.spec.ips.iter().filter_map(|i| i.parse().ok()).collect();
        return (
            if clusters.is_empty() {
                BTreeSet::new()
            } else {
                set
            },
            clusters,
        );
    }
    (ips, clusters)
}

/// The DNS outcome of task `id`.
fn dns<'a>(r: &'a Report, id: &str) -> Result<&'a DnsOutcome, String> {
    match r.get(id) {
        Some(Outcome::Dns(d)) => Ok(d),
        Some(Outcome::Error { message }) => Err(message.clone()),
        _ => Err("the probe pod did not run this query".into()),
    }
}

/// The ServiceImports whose names resolve, by namespace and name: all but
/// those in the broker namespace (a cluster hosting the broker holds every
/// cluster's per-cluster imports there).
pub fn resolvable_imports(f: &Facts) -> Vec<&ServiceImport> {
    let broker_ns = f
        .snapshot
        .broker
        .as_ref()
        .map_or(BROKER_NAMESPACE, |b| b.namespace.as_str());
    let mut imports: Vec<&ServiceImport> = f
        .snapshot
        .imports
        .iter()
        .filter(|si| si.metadata.namespace.as_deref() != Some(broker_ns))
        .collect();
    imports.sort_by_key(|si| (si.metadata.namespace.clone(), si.metadata.name.clone()));
    imports
}

/// How many ServiceImports are resolved at most.
pub const MAX_IMPORTS: usize = 50;

/// `service-discovery`: from an ordinary pod, through the cluster DNS —
/// `dns-version.<zone>` proves the zone reaches ferry dns, an unknown name
/// must get NXDOMAIN at once, and every ServiceImport's name must resolve
/// to what the import and its EndpointSlices say.
pub fn service_discovery(f: &Facts, client: &Client<'_>) -> Vec<Line> {
    let name = Check::ServiceDiscovery.name();
    let domain = f.clusterset_domain();
    let report = match client.report {
        Ok(r) => r,
        Err(e) => {
            return vec![Line::with(
                name,
                Status::Fail,
                format!("no DNS query ran ({e})"),
                "fix the test pod first (see the error), then re-run",
            )];
        }
    };
    let dns_hint = format!(
        "check ferry dns (`kubectl -n ferry-system get pods -l app.kubernetes.io/name=ferry-dns`, its log) and that the cluster DNS forwards {domain} to the ferry-dns Service (`kubectl -n kube-system get configmap coredns -o yaml`)"
    );
    let mut out = Vec::new();
    out.push(zone_line(report, &domain, &dns_hint));
    out.push(nx_line(report, &dns_hint));
    let imports = resolvable_imports(f);
    if imports.is_empty() {
        out.push(Line::with(
            name,
            Status::Skip,
            "no ServiceImport in this cluster: no service name to resolve",
            "export a service from any cluster: ferry export service NAME -n NAMESPACE",
        ));
        return out;
    }
    for si in imports.iter().take(MAX_IMPORTS) {
        out.push(import_line(f, si, report, &domain, &dns_hint));
    }
    if imports.len() > MAX_IMPORTS {
        out.push(Line::with(
            name,
            Status::Skip,
            format!(
                "{} more ServiceImports not resolved (at most {MAX_IMPORTS} per run)",
                imports.len() - MAX_IMPORTS
            ),
            "`ferry show services` lists them all",
        ));
    }
    out
}

/// Whether the cluster DNS forwards the clusterset zone to ferry dns: the
/// `dns-version` record.
fn zone_line(report: &Report, domain: &str, dns_hint: &str) -> Line {
    let name = Check::ServiceDiscovery.name();
    match dns(report, "dns-version") {
        Ok(d) if !d.texts.is_empty() => Line::pass(
            name,
            format!(
                "the cluster DNS ({}) forwards {domain} to ferry dns: dns-version.{domain} → {} ({})",
                d.server,
                d.texts.join(","),
                us(d.elapsed_us)
            ),
        ),
        Ok(d) => Line::with(
            name,
            Status::Fail,
            format!(
                "the cluster DNS ({}) gives no dns-version.{domain} record ({}), so {domain} does not reach ferry dns",
                d.server,
                d.rcode.as_deref().unwrap_or("no answer")
            ),
            dns_hint,
        ),
        Err(e) => Line::with(
            name,
            Status::Fail,
            format!("querying dns-version.{domain} failed: {e}"),
            dns_hint,
        ),
    }
}

/// A name nobody exports gets NXDOMAIN at once.
fn nx_line(report: &Report, dns_hint: &str) -> Line {
    let name = Check::ServiceDiscovery.name();
    match dns(report, "dns-nx") {
        Ok(d) if d.rcode.as_deref() == Some("NXDomain") => Line::pass(
            name,
            format!(
                "a name nobody exports gets NXDOMAIN at once ({})",
                us(d.elapsed_us)
            ),
        ),
        Ok(d) => Line::with(
            name,
            Status::Fail,
            format!(
                "a name nobody exports gets {} after {}: clients wait on resolver retries instead of failing fast",
                d.rcode.as_deref().unwrap_or("no answer"),
                us(d.elapsed_us)
            ),
            dns_hint,
        ),
        Err(e) => Line::with(
            name,
            Status::Fail,
            format!("querying a name nobody exports failed: {e}"),
            dns_hint,
        ),
    }
}

/// The name of ServiceImport `si` resolves to what the import says.
fn import_line(
    f: &Facts,
    si: &ServiceImport,
    report: &Report,
    domain: &str,
    dns_hint: &str,
) -> Line {
    let name = Check::ServiceDiscovery.name();
    let ns = si.metadata.namespace.as_deref().unwrap_or("");
    let n = si.metadata.name.as_deref().unwrap_or("");
    let fqdn = import_name(si, domain);
    let (expected, clusters) = expected_answer(f, si);
    let exp = expected.iter().copied().collect::<Vec<_>>();
    match dns(report, &format!("dns/{ns}/{n}")) {
        Err(e) => Line::with(
            name,
            Status::Fail,
            format!("{fqdn}: the query failed: {e}"),
            dns_hint,
        ),
        Ok(d) if d.rcode.is_none() => Line::with(
            name,
            Status::Fail,
            format!("{fqdn}: no answer in {}", us(d.elapsed_us)),
            dns_hint,
        ),
        Ok(d) if d.addresses.is_empty() && expected.is_empty() => Line::with(
            name,
            Status::Warn,
            format!(
                "{fqdn}: {} — consistently, as no cluster this one can reach has a ready endpoint for it",
                d.rcode.as_deref().unwrap_or("")
            ),
            "see `ferry show services`: the exporting clusters' pods are not ready, or their cables are down",
        ),
        Ok(d) if d.addresses.is_empty() => Line::with(
            name,
            Status::Fail,
            format!(
                "{fqdn}: {} although the ServiceImport {ns}/{n} has ready endpoints {} (from {})",
                d.rcode.as_deref().unwrap_or(""),
                list(&exp),
                clusters.join(", ")
            ),
            dns_hint,
        ),
        Ok(d) => {
            let got: BTreeSet<IpAddr> = d.addresses.iter().copied().collect();
            let extra: Vec<IpAddr> = got.difference(&expected).copied().collect();
            if extra.is_empty() {
                Line::pass(
                    name,
                    format!(
                        "{fqdn} → {} ({}), as the ServiceImport says (from {})",
                        list(&d.addresses),
                        us(d.elapsed_us),
                        clusters.join(", ")
                    ),
                )
            } else {
                Line::with(
                    name,
                    Status::Fail,
                    format!(
                        "{fqdn} → {}, but the ServiceImport {ns}/{n} says {}",
                        list(&d.addresses),
                        list(&exp)
                    ),
                    "ferry dns answers with stale or foreign data: see `kubectl -n ferry-system logs deployment/ferry-dns`",
                )
            }
        }
    }
}
