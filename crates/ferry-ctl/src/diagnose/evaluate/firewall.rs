//! The `firewall` check.

use std::time::Duration;

use super::common::*;
use crate::check::{Line, Status};
use crate::cluster::{self, Facts};
use crate::diagnose::checks::Check;
use crate::probe::spec::SniffOutcome;
use crate::probe::{Outcome, Report};

/// Sniffer results for `firewall`: what the gateway of this cluster saw
/// from each remote cluster.
pub struct Firewall<'a> {
    /// The node of the sniffer (the active gateway).
    pub node: Option<&'a str>,
    /// Its report.
    pub sniffer: Probed<'a>,
    /// Remote clusters that sent marked datagrams, with their sender's
    /// report.
    pub senders: Vec<(String, Probed<'a>)>,
    /// How long the passive watch lasted.
    pub window: Duration,
}

/// `firewall`: UDP to this cluster's cable port arrives from each remote
/// gateway — marked datagrams sent by a host-network pod on the remote
/// gateway node when that cluster is diagnosed too, otherwise the remote
/// gateway's own cable traffic — seen by a packet sniffer on this
/// cluster's active gateway node, before any host firewall.
pub fn firewall(f: &Facts, fw: &Firewall<'_>) -> Vec<Line> {
    let name = Check::Firewall.name();
    let id = f.id();
    let remotes = match remotes_or_skip(f, name) {
        Ok(r) => r,
        Err(skip) => return skip,
    };
    let Some(node) = fw.node else {
        return vec![Line::with(
            name,
            Status::Fail,
            format!("{id} has no active gateway to receive cable traffic"),
            "see the deployment check",
        )];
    };
    let Some(local) = f.endpoint_of(id) else {
        return vec![Line::with(
            name,
            Status::Fail,
            format!("{id}'s gateway has published no Endpoint"),
            "see `kubectl -n ferry-system logs daemonset/ferry-gateway`",
        )];
    };
    let port = cluster::cable_port(local);
    let addr = cluster::gateway_addresses(local)
        .first()
        .map(ToString::to_string)
        .unwrap_or_default();
    let local_gw = LocalGateway {
        id,
        node,
        addr: &addr,
        port,
    };
    let mut out = Vec::new();
    for r in &remotes {
        let subject = format!("{r} → {id}");
        let sniffed = match fw.sniffer {
            Ok(rep) => match rep.get(&format!("fw-in/{r}")) {
                Some(Outcome::Sniff(s)) => Ok(s),
                Some(Outcome::Error { message }) => Err(message.clone()),
                _ => Err("the sniffer did not watch for it".into()),
            },
            Err(e) => Err(e.to_string()),
        };
        let sniffed = match sniffed {
            Ok(s) => s,
            Err(e) => {
                out.push(Line::with(
                    name,
                    Status::Fail,
                    format!("{subject}: could not watch UDP {port} on {node}: {e}"),
                    "the sniffer pod needs the host network and NET_RAW on the gateway node",
                ));
                continue;
            }
        };
        let sender = fw.senders.iter().find(|(c, _)| c == r);
        let seen = Seen {
            subject: &subject,
            remote: r,
            local: &local_gw,
            sniffed,
            behind_nat: behind_nat(f, r),
        };
        let line = match sender {
            Some((_, Err(e))) => Line::with(
                name,
                Status::Fail,
                format!("{subject}: no test datagram was sent ({e})"),
                "fix the sender pod on the remote gateway node first (see the error)",
            ),
            Some((_, Ok(rep))) => marked_line(&seen, rep),
            None => passive_line(f, &seen, fw.window),
        };
        out.push(line);
    }
    out
}

/// This cluster's active gateway, where the sniffer watched.
struct LocalGateway<'a> {
    id: &'a str,
    node: &'a str,
    /// The address other gateways reach it at.
    addr: &'a str,
    /// Its cable port.
    port: u16,
}

/// What the sniffer saw from one remote cluster.
struct Seen<'a> {
    /// `remote → local`, for messages.
    subject: &'a str,
    remote: &'a str,
    local: &'a LocalGateway<'a>,
    sniffed: &'a SniffOutcome,
    /// How the remote sees this gateway, when NAT discovery found it
    /// behind a NAT and the cable (opened from this side) is connected.
    behind_nat: Option<std::net::SocketAddr>,
}

/// This gateway's address on its NAT, when NAT discovery found its source
/// rewritten on the way to `remote` and the cable is up anyway: a NAT
/// without a port forward drops what nobody inside asked for.
fn behind_nat(f: &Facts, remote: &str) -> Option<std::net::SocketAddr> {
    let c = f
        .connection_to(remote)
        .filter(|c| c.status == ferry_api::ConnectionStatus::Connected)?;
    let nd = c.nat_discovery.as_ref()?;
    (nd.src_ip_nat_detected || nd.src_port_nat_detected)
        .then_some(nd.seen_as)
        .flatten()
}

/// The verdict when the remote gateway node sent marked test datagrams
/// (its sender's report `rep`).
fn marked_line(seen: &Seen<'_>, rep: &Report) -> Line {
    let name = Check::Firewall.name();
    let (subject, r, sniffed) = (seen.subject, seen.remote, seen.sniffed);
    let LocalGateway {
        id,
        node,
        addr,
        port,
    } = *seen.local;
    let (sent, send_error) = match rep.get(&format!("fw-out/{id}")) {
        Some(Outcome::Sent { count, error }) => (*count, error.clone()),
        Some(Outcome::Error { message }) => (0, Some(message.clone())),
        _ => (0, Some("the sender did not run".into())),
    };
    if sent == 0 && sniffed.seen == 0 {
        Line::with(
            name,
            Status::Fail,
            format!(
                "{subject}: {r}'s gateway node could not send any test datagram to {id}'s gateway ({addr}, UDP {port}): {}",
                send_error.as_deref().unwrap_or("no reason given")
            ),
            format!("check {r}'s gateway node: its network link and its route to {addr}"),
        )
    } else if sniffed.seen > 0 {
        Line::pass(
            name,
            format!(
                "{subject}: UDP {port} from {r}'s gateway node reaches {id}'s gateway {node} ({addr}): test datagrams arrive ({} seen, {sent} sent)",
                sniffed.seen
            ),
        )
    } else if let Some(mapped) = seen.behind_nat {
        Line::pass(
            name,
            format!(
                "{subject}: {id}'s gateway {node} is behind a NAT ({r} sees it as {mapped}), which drops the {sent} unsolicited test datagrams to {addr} UDP {port}, as it should; {id} opens the cable from its side and it is connected"
            ),
        )
    } else {
        Line::with(
            name,
            Status::Fail,
            format!(
                "{subject}: UDP {port} from {r}'s gateway node to {id}'s gateway {node} ({addr}) is blocked: 0 of {sent} test datagrams arrived"
            ),
            format!(
                "open UDP {port} from {r}'s gateway to {addr} (cloud security groups, firewalls, NAT port forwarding on the way)"
            ),
        )
    }
}

/// The verdict from the remote gateway's own cable traffic, watched for
/// `window`.
fn passive_line(f: &Facts, seen: &Seen<'_>, window: Duration) -> Line {
    let name = Check::Firewall.name();
    let (subject, r, sniffed) = (seen.subject, seen.remote, seen.sniffed);
    let LocalGateway {
        id,
        node,
        addr,
        port,
    } = *seen.local;
    let from = f
        .endpoint_of(r)
        .map(cluster::gateway_addresses)
        .unwrap_or_default();
    if sniffed.seen > 0 {
        Line::pass(
            name,
            format!(
                "{subject}: cable traffic from {r}'s gateway ({}) reaches UDP {port} of {id}'s gateway {node} ({} datagrams in {:.1}s)",
                list(&sniffed.sources),
                sniffed.seen,
                window.as_secs_f64()
            ),
        )
    } else {
        Line::with(
            name,
            Status::Warn,
            format!(
                "{subject}: no datagram from {r}'s gateway ({}) reached UDP {port} of {id}'s gateway {node} in {:.1}s",
                list(&from),
                window.as_secs_f64()
            ),
            format!(
                "if {r}'s gateway is up, UDP {port} from it to {addr} is blocked; diagnose both clusters at once (--kubeconfig {id}.kubeconfig,{r}.kubeconfig) to send test datagrams for a definitive answer"
            ),
        )
    }
}
