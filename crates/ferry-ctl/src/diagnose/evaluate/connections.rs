//! The `connections` check.

use std::time::Duration;

use ferry_api::ConnectionStatus;
use ferry_api::ports::DEFAULT_CABLE_PORT;

use super::common::*;
use crate::check::{Line, Status};
use crate::cluster::{self, Facts};
use crate::diagnose::checks::Check;
use crate::show::render::fmt_duration;

fn gateway_says(f: &Facts, remote: &str) -> (String, Option<ConnectionStatus>) {
    let Some(gw) = f.active_gateway() else {
        return ("no gateway of this cluster is active".into(), None);
    };
    let node = &gw.spec.hostname;
    match f.connection_to(remote) {
        None => (
            format!("gateway {node} has no connection to {remote}"),
            None,
        ),
        Some(c) => {
            let word = match c.status {
                ConnectionStatus::Connected => "connected",
                ConnectionStatus::Connecting => "connecting",
                ConnectionStatus::Error => "error",
            };
            let mut text = format!("gateway {node} reports {word}");
            if !c.status_message.is_empty() {
                text.push_str(&format!(" ({})", c.status_message));
            }
            if c.status == ConnectionStatus::Connected
                && let Some(rtt) = &c.latency_rtt
            {
                text.push_str(&format!(
                    ", rtt avg {}",
                    fmt_duration(Duration::from(rtt.average))
                ));
            }
            (text, Some(c.status))
        }
    }
}

/// `connections`: real traffic from an ordinary pod of this cluster to
/// each remote cluster — to the remote gateway's health-check address
/// (through both route agents' paths into the cable) and, when the remote
/// cluster is also being diagnosed, to a pod on one of its non-gateway
/// nodes — judged together with what the gateway reports.
pub fn connections(f: &Facts, client: &Client<'_>, pod_targets: &[(String, String)]) -> Vec<Line> {
    let name = Check::Connections.name();
    let id = f.id();
    let remotes = match remotes_or_skip(f, name) {
        Ok(r) => r,
        Err(skip) => return skip,
    };
    let mut out = Vec::new();
    for r in &remotes {
        let subject = format!("{id} → {r}");
        let (says, status) = gateway_says(f, r);
        let report = match client.report {
            Ok(rep) => rep,
            Err(e) => {
                out.push(Line::with(
                    name,
                    Status::Fail,
                    format!("{subject}: no probe ran ({e}); {says}"),
                    "fix the test pod first (see the error), then re-run",
                ));
                continue;
            }
        };
        let port = f
            .endpoint_of(r)
            .map(cluster::cable_port)
            .unwrap_or(DEFAULT_CABLE_PORT);
        let gw = echo(report, &format!("gw/{r}"));
        let pod = pod_targets
            .iter()
            .find(|(c, _)| c == r)
            .map(|(_, where_)| (where_, echo(report, &format!("pod/{r}"))));
        let mut parts = Vec::new();
        let mut ok = true;
        let mut partial = false;
        match &gw {
            Ok(e) => {
                parts.push(format!(
                    "{}/{} probes from a pod on {} to {r}'s gateway answered{}",
                    e.received,
                    e.sent,
                    client.node,
                    avg_rtt(e)
                ));
                ok &= e.received > 0;
                partial |= e.received > 0 && e.received < e.sent;
            }
            Err(why) if f.endpoint_of(r).is_none() => {
                parts.push(format!("{r} has published no gateway Endpoint ({why})"));
                ok = false;
            }
            Err(why) => {
                parts.push(format!("the probe to {r}'s gateway failed: {why}"));
                ok = false;
            }
        }
        if let Some((where_, res)) = &pod {
            match res {
                Ok(e) => {
                    parts.push(format!(
                        "{}/{} to a pod on {where_}{}",
                        e.received,
                        e.sent,
                        avg_rtt(e)
                    ));
                    ok &= e.received > 0;
                    partial |= e.received > 0 && e.received < e.sent;
                }
                Err(why) => {
                    parts.push(format!("the probe to the pod on {where_} failed: {why}"));
                    ok = false;
                }
            }
        }
        let gw_ok = gw.as_ref().is_ok_and(|e| e.received > 0);
        let detail = format!("{subject}: {}; {says}", parts.join(", "));
        let line = if !ok {
            let hint = if status == Some(ConnectionStatus::Connected) && gw_ok {
                format!(
                    "the cable carries the gateways' traffic but not the pods': check the route agents (`kubectl -n ferry-system logs daemonset/ferry-route-agent`) and anything filtering traffic between the pod CIDRs on {r}'s nodes"
                )
            } else if status == Some(ConnectionStatus::Connected) {
                format!(
                    "the gateway still says connected but no packet crosses: the status is stale or only the health checks pass; check the path between the gateways (`ferry diagnose firewall`, UDP {port}) and `kubectl -n ferry-system logs daemonset/ferry-gateway`"
                )
            } else {
                format!(
                    "the cable to {r} is down: check that the gateways reach each other over UDP {port} (`ferry diagnose firewall`, with both kubeconfigs for a definitive answer), then `kubectl -n ferry-system logs daemonset/ferry-gateway` on both sides"
                )
            };
            Line::with(name, Status::Fail, detail, hint)
        } else if partial {
            Line::with(
                name,
                Status::Warn,
                detail,
                "some probes were lost: re-run; persistent loss points at an overloaded gateway or a lossy path between the gateways",
            )
        } else if status != Some(ConnectionStatus::Connected) {
            Line::with(
                name,
                Status::Warn,
                detail,
                "traffic crosses, but the gateway's status disagrees: it may lag; if it persists, see `kubectl -n ferry-system logs daemonset/ferry-gateway`",
            )
        } else {
            Line::pass(name, detail)
        };
        out.push(line);
    }
    out
}
