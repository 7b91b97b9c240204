//! The `host-network` check: what a node's own processes see (host-network
//! pods, kubelet probes, `ping` from a node shell), not only its pods.

use ferry_api::labels::CNI_IFACE_IP;

use super::common::*;
use crate::check::{Line, Status};
use crate::cluster::Facts;
use crate::diagnose::checks::Check;
use crate::probe::Outcome;

/// The address the route agent says `node`'s host-network traffic leaves
/// from (its Node's [`CNI_IFACE_IP`] annotation).
fn source_of<'a>(f: &'a Facts, node: &str) -> Option<&'a str> {
    f.nodes
        .iter()
        .find(|n| n.metadata.name.as_deref() == Some(node))?
        .metadata
        .annotations
        .as_ref()?
        .get(CNI_IFACE_IP)
        .map(String::as_str)
}

/// One probe's words and whether it crossed (`None`: crossed partly).
fn part(report: &crate::probe::Report, id: &str, what: &str) -> (String, Option<bool>) {
    match report.get(id) {
        Some(Outcome::Tcp(t)) => (
            format!(
                "a TCP connection to {what} carried {} bytes both ways (connect {})",
                t.echoed,
                us(t.connect_us)
            ),
            Some(true),
        ),
        Some(Outcome::Echo(e)) => {
            let crossed = match e.received {
                0 => Some(false),
                n if n == e.sent => Some(true),
                _ => None,
            };
            (
                format!(
                    "{}/{} probes to {what} answered{}",
                    e.received,
                    e.sent,
                    avg_rtt(e)
                ),
                crossed,
            )
        }
        Some(Outcome::Error { message }) => (
            format!("the probe to {what} failed: {message}"),
            Some(false),
        ),
        Some(other) => (format!("unexpected outcome {other:?}"), Some(false)),
        None => (format!("no probe to {what} ran"), Some(false)),
    }
}

/// `host-network`: from a host-network pod on an ordinary node, UDP probes
/// to each remote gateway's health-check address and, when the remote
/// cluster is diagnosed too, UDP and TCP to a pod on one of its
/// non-gateway nodes. Such traffic crosses only when it leaves from an
/// address inside this cluster's pod CIDRs (the route agent's `src`), so the
/// line names that address.
pub fn host_network(f: &Facts, host: &Client<'_>, pod_targets: &[(String, String)]) -> Vec<Line> {
    let name = Check::HostNetwork.name();
    let remotes = match remotes_or_skip(f, name) {
        Ok(r) => r,
        Err(skip) => return skip,
    };
    let node = host.node;
    let source = match source_of(f, node) {
        Some(ip) => format!("source {ip}"),
        None => format!("no {CNI_IFACE_IP} on the Node"),
    };
    let mut out = Vec::new();
    for r in &remotes {
        let subject = format!("{} → {r}", f.id());
        let report = match host.report {
            Ok(rep) => rep,
            Err(e) => {
                out.push(Line::with(
                    name,
                    Status::Fail,
                    format!("{subject}: no probe ran from the host network of {node} ({e})"),
                    "fix the test pod first (see the error), then re-run",
                ));
                continue;
            }
        };
        let mut parts = vec![part(
            report,
            &format!("host-gw/{r}"),
            &format!("{r}'s gateway"),
        )];
        if let Some((_, where_)) = pod_targets.iter().find(|(c, _)| c == r) {
            let pod = format!("a pod on {where_}");
            parts.push(part(report, &format!("host-pod/{r}"), &pod));
            parts.push(part(report, &format!("host-tcp/{r}"), &pod));
        }
        let failed = parts.iter().any(|(_, ok)| *ok == Some(false));
        let partial = parts.iter().any(|(_, ok)| ok.is_none());
        let words: Vec<String> = parts.into_iter().map(|(w, _)| w).collect();
        let detail = format!(
            "{subject}: from the host network of {node} ({source}): {}",
            words.join(", ")
        );
        out.push(if failed {
            Line::with(name, Status::Fail, detail, fail_hint(f, node, r))
        } else if partial {
            Line::with(
                name,
                Status::Warn,
                detail,
                "some probes were lost: re-run; persistent loss points at an overloaded gateway or a lossy path",
            )
        } else {
            Line::pass(name, detail)
        });
    }
    out
}

fn fail_hint(f: &Facts, node: &str, remote: &str) -> String {
    match source_of(f, node) {
        None => format!(
            "the route agent on {node} found no address inside {}'s pod CIDRs to send host traffic from, so it leaves from the node IP, which {remote} does not route back: see `kubectl -n ferry-system logs daemonset/ferry-route-agent` (give the Node a podCIDR inside the cluster CIDR)",
            f.id()
        ),
        Some(ip) => format!(
            "host traffic from {node} should leave from {ip}: {node} must hold it (`ip addr show vx-ferry` there) and route the remote CIDRs with `src {ip}` (`ip route show table 7100`), it must lie inside {}'s cluster CIDRs (`ferry show networks`), and {remote} must route it back through its gateway; if `ferry diagnose connections` passes, see the route agent's log on {node}",
            f.id()
        ),
    }
}
