//! From measurements to lines. Pure.

use std::time::Duration;

use ferry_api::labels::SYSTEM_NAMESPACE;

use super::member::View;
use super::part::Part;
use crate::check::{Line, Status};
use crate::probe::Outcome;
use crate::probe::spec::StreamOutcome;
use crate::show::render::fmt_duration;

fn us(v: u64) -> String {
    fmt_duration(Duration::from_micros(v))
}

/// `a → b` pod to pod: UDP echoes and a TCP echo.
pub fn connectivity(a: &View<'_>, b: &View<'_>) -> Vec<Line> {
    let name = Part::Connectivity.name();
    let subject = format!("{} → {}", a.id, b.id);
    let (server_node, server_ip) = match b.server {
        Ok(s) => s,
        Err(e) => {
            return vec![Line::with(
                name,
                Status::Fail,
                format!("{subject}: no server pod in {} ({e})", b.id),
                "see the test pod error",
            )];
        }
    };
    let (node, report) = match &a.client {
        Some((n, Ok(r))) => (*n, *r),
        Some((_, Err(e))) => {
            return vec![Line::with(
                name,
                Status::Fail,
                format!("{subject}: no client pod in {} ({e})", a.id),
                "see the test pod error",
            )];
        }
        None => {
            return vec![Line::with(
                name,
                Status::Fail,
                format!("{subject}: {} has no node for a client pod", a.id),
                "see `kubectl get nodes`",
            )];
        }
    };
    let where_ = format!("a pod on {node} → a pod on {server_node} ({server_ip})");
    let udp = match report.get(&format!("udp/{}", b.id)) {
        Some(Outcome::Echo(e)) if e.received == e.sent && e.sent > 0 => Ok(format!(
            "UDP {}/{} echoed (rtt avg {})",
            e.received,
            e.sent,
            us(e.rtt_us.iter().sum::<u64>() / u64::from(e.received.max(1)))
        )),
        Some(Outcome::Echo(e)) => Err(format!("UDP {}/{} echoed", e.received, e.sent)),
        Some(Outcome::Error { message }) => Err(format!("UDP failed: {message}")),
        _ => Err("UDP not probed".into()),
    };
    let tcp = match report.get(&format!("tcp/{}", b.id)) {
        Some(Outcome::Tcp(t)) if t.echoed == 64 * 1024 => Ok(format!(
            "TCP {} bytes echoed (connect {})",
            t.echoed,
            us(t.connect_us)
        )),
        Some(Outcome::Tcp(t)) => Err(format!(
            "TCP only {} of {} bytes echoed",
            t.echoed,
            64 * 1024
        )),
        Some(Outcome::Error { message }) => Err(format!("TCP failed: {message}")),
        _ => Err("TCP not probed".into()),
    };
    let line = match (udp, tcp) {
        (Ok(u), Ok(t)) => Line::pass(name, format!("{subject}: {where_}: {u}, {t}")),
        (u, t) => Line::with(
            name,
            Status::Fail,
            format!(
                "{subject}: {where_}: {}, {}",
                u.unwrap_or_else(|e| e),
                t.unwrap_or_else(|e| e)
            ),
            format!(
                "run `ferry diagnose all` against both clusters (--kubeconfig {a}.kubeconfig,{b}.kubeconfig) to find the broken piece",
                a = a.id,
                b = b.id
            ),
        ),
    };
    vec![line]
}

/// `a → b`: b's exported test Service by name and by ClusterIP.
pub fn service_discovery(a: &View<'_>, b: &View<'_>, domain: &str) -> Vec<Line> {
    let name = Part::ServiceDiscovery.name();
    let subject = format!("{} → {}", a.id, b.id);
    let (svc, ip) = match b.service {
        Some(Ok(s)) => s,
        Some(Err(e)) => {
            return vec![Line::with(
                name,
                Status::Fail,
                format!("{subject}: no test Service exported from {} ({e})", b.id),
                "the kubeconfig needs the right to create Services and ServiceExports in ferry-system",
            )];
        }
        None => return Vec::new(),
    };
    let Some((node, Ok(report))) = &a.client else {
        return vec![Line::with(
            name,
            Status::Fail,
            format!("{subject}: no client pod in {}", a.id),
            "see the connectivity lines",
        )];
    };
    let fqdn = format!("{svc}.{SYSTEM_NAMESPACE}.svc.{domain}");
    let mut out = Vec::new();
    let dns_hint = "run `ferry diagnose service-discovery` in the importing cluster";
    match report.get(&format!("dns/{}", b.id)) {
        Some(Outcome::Dns(d)) if d.addresses.iter().any(|x| x.to_string() == ip) => {
            out.push(Line::pass(
                name,
                format!(
                    "{subject}: {fqdn} → {} ({}'s Service ClusterIP), answered after {} from a pod on {node}",
                    ip,
                    b.id,
                    us(d.elapsed_us)
                ),
            ))
        }
        Some(Outcome::Dns(d)) => out.push(Line::with(
            name,
            Status::Fail,
            format!(
                "{subject}: {fqdn} → {} ({}), expected {ip} ({}'s Service ClusterIP)",
                if d.addresses.is_empty() {
                    "no address".to_string()
                } else {
                    d.addresses
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                },
                d.rcode.as_deref().unwrap_or("no answer"),
                b.id
            ),
            dns_hint,
        )),
        Some(Outcome::Error { message }) => out.push(Line::with(
            name,
            Status::Fail,
            format!("{subject}: resolving {fqdn} failed: {message}"),
            dns_hint,
        )),
        _ => {}
    }
    for (key, how) in [
        ("svc-ip", format!("by ClusterIP {ip}")),
        ("svc-name", format!("by name {fqdn}")),
    ] {
        match report.get(&format!("{key}/{}", b.id)) {
            Some(Outcome::Tcp(t)) if t.echoed == 16 * 1024 => out.push(Line::pass(
                name,
                format!(
                    "{subject}: TCP to {}'s Service {how} is echoed ({})",
                    b.id, t.address
                ),
            )),
            Some(Outcome::Tcp(t)) => out.push(Line::with(
                name,
                Status::Fail,
                format!(
                    "{subject}: TCP to {}'s Service {how}: only {} of {} bytes echoed",
                    b.id,
                    t.echoed,
                    16 * 1024
                ),
                "the service proxy of the exporting cluster or the cable drops traffic: `ferry diagnose all`",
            )),
            Some(Outcome::Error { message }) => out.push(Line::with(
                name,
                Status::Fail,
                format!("{subject}: TCP to {}'s Service {how} failed: {message}", b.id),
                "`ferry diagnose all` against both clusters finds the broken piece",
            )),
            _ => {}
        }
    }
    out
}

/// The failover of `id`'s gateway, judged from the stream's outcome.
pub fn failover(
    id: &str,
    peer: &str,
    node: &str,
    old: &str,
    took: Option<(String, Duration)>,
    s: &StreamOutcome,
    budget: Duration,
) -> Line {
    let name = Part::Failover.name();
    let after = match &took {
        Some((new, t)) if new != old => format!(
            "gateway {new} took over from {old} after {}",
            fmt_duration(*t)
        ),
        Some((_, t)) => format!("gateway {old} was active again after {}", fmt_duration(*t)),
        None => format!(
            "no gateway of {id} reported a connected cable to {peer} within {}",
            fmt_duration(budget)
        ),
    };
    let traffic = format!(
        "UDP from a pod on {node} to a pod in {peer}: {}/{} echoed, longest gap {}",
        s.received,
        s.sent,
        us(s.longest_gap_us)
    );
    if s.received > 0 && s.flowing && took.is_some() {
        Line::pass(
            name,
            format!(
                "{id}: restarted the active gateway pod on {old}: {after}; {traffic}; traffic resumed"
            ),
        )
    } else if s.received > 0 && s.flowing {
        Line::with(
            name,
            Status::Warn,
            format!(
                "{id}: restarted the active gateway pod on {old}: traffic resumed ({traffic}), but {after}"
            ),
            "the Gateway status lags: see `ferry show gateways`",
        )
    } else {
        Line::with(
            name,
            Status::Fail,
            format!(
                "{id}: restarted the active gateway pod on {old}: traffic did not resume ({traffic}); {after}"
            ),
            format!(
                "see `kubectl -n ferry-system logs daemonset/ferry-gateway` in {id} and `ferry diagnose connections`"
            ),
        )
    }
}
