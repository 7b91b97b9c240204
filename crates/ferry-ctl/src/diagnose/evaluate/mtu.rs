//! The `mtu` check.

use super::common::*;
use crate::check::{Line, Status};
use crate::cluster::{self, Facts};
use crate::diagnose::checks::Check;
use crate::probe::spec::{PmtuOutcome, PmtuVerdict};
use crate::probe::{Outcome, Report};

/// The smallest cable MTU on the way from `f` to `remote`.
pub fn path_cable_mtu(f: &Facts, remote: &str) -> Option<u32> {
    let a = f.endpoint_of(f.id()).and_then(cluster::cable_mtu);
    let b = f.endpoint_of(remote).and_then(cluster::cable_mtu);
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// `mtu`: towards each remote cluster, a don't-fragment packet bigger than
/// the cable MTU is refused with "fragmentation needed" (or carried)
/// rather than silently dropped; when the remote cluster is diagnosed
/// too, a packet of exactly the cable MTU crosses both ways and a TCP
/// transfer's MSS is clamped to the cable. Where not even small packets
/// cross, the MTU is not judged: that is a connections failure (reported
/// there when `connections_checked`, else here).
pub fn mtu(
    f: &Facts,
    client: &Client<'_>,
    pod_targets: &[(String, String)],
    connections_checked: bool,
) -> Vec<Line> {
    let name = Check::Mtu.name();
    let id = f.id();
    let remotes = match remotes_or_skip(f, name) {
        Ok(r) => r,
        Err(skip) => return skip,
    };
    let mut out = Vec::new();
    for r in &remotes {
        let subject = format!("{id} → {r}");
        let Ok(report) = client.report else {
            out.push(Line::with(
                name,
                Status::Fail,
                format!(
                    "{subject}: no probe ran ({})",
                    client.report.err().unwrap_or("")
                ),
                "fix the test pod first (see the error), then re-run",
            ));
            continue;
        };
        let baseline = [format!("pod/{r}"), format!("gw/{r}")]
            .iter()
            .find_map(|id| match report.get(id) {
                Some(Outcome::Echo(e)) => Some(e.received > 0),
                _ => None,
            });
        if baseline == Some(false) {
            out.push(Line::with(
                name,
                if connections_checked {
                    Status::Skip
                } else {
                    Status::Fail
                },
                format!("{subject}: not judged: not even small packets cross"),
                "see `ferry diagnose connections`",
            ));
            continue;
        }
        let cable = path_cable_mtu(f, r);
        let cable_text = mtu_text(cable);
        match report.get(&format!("mtu-big/{r}")) {
            Some(Outcome::Pmtu(p)) => out.push(pmtu_line(&subject, p, cable, client.node)),
            Some(Outcome::Error { message }) => out.push(Line::with(
                name,
                Status::Fail,
                format!("{subject}: the path-MTU probe failed: {message}"),
                "see the connections check",
            )),
            _ => {}
        }
        let pod = pod_targets.iter().find(|(c, _)| c == r);
        let Some((_, where_)) = pod else {
            out.push(Line::with(
                name,
                Status::Skip,
                format!("{subject}: full-size packets across need a pod in {r} to echo them"),
                format!(
                    "diagnose both clusters at once (--kubeconfig {id}.kubeconfig,{r}.kubeconfig)"
                ),
            ));
            continue;
        };
        out.extend(full_size_line(&subject, report, r, where_, &cable_text));
        out.extend(tcp_line(&subject, report, r, where_, cable));
    }
    out
}

/// A packet of the cable MTU with don't-fragment, echoed by the pod on
/// `where_` in `r`.
fn full_size_line(
    subject: &str,
    report: &Report,
    r: &str,
    where_: &str,
    cable_text: &str,
) -> Option<Line> {
    let name = Check::Mtu.name();
    match report.get(&format!("mtu-fit/{r}")) {
        Some(Outcome::Echo(e)) if e.received > 0 => Some(Line::pass(
            name,
            format!(
                "{subject}: {}-byte packets (the cable MTU) with don't-fragment cross to a pod on {where_} and back ({}/{})",
                cable_text, e.received, e.sent
            ),
        )),
        Some(Outcome::Echo(e)) => Some(Line::with(
            name,
            Status::Fail,
            format!(
                "{subject}: {cable_text}-byte packets (the cable MTU) with don't-fragment do not cross to a pod on {where_} (0/{}){}",
                e.sent,
                e.send_error
                    .as_deref()
                    .map(|x| format!(": {x}"))
                    .unwrap_or_default()
            ),
            "the network between the gateways carries less than the cable MTU plus the tunnel overhead: lower the cable MTU, or fix the underlay MTU",
        )),
        Some(Outcome::Error { message }) => Some(Line::with(
            name,
            Status::Fail,
            format!("{subject}: the full-size probe failed: {message}"),
            "see the connections check",
        )),
        _ => None,
    }
}

/// A TCP transfer to the pod on `where_` in `r`: echoed whole, with an MSS
/// clamped to the cable MTU.
fn tcp_line(
    subject: &str,
    report: &Report,
    r: &str,
    where_: &str,
    cable: Option<u32>,
) -> Option<Line> {
    let name = Check::Mtu.name();
    let cable_text = mtu_text(cable);
    match report.get(&format!("mtu-tcp/{r}")) {
        Some(Outcome::Tcp(t)) => {
            let clamp = cable.map(|c| c.saturating_sub(40));
            match (t.mss, clamp) {
                (Some(mss), Some(max)) if mss > max => Some(Line::with(
                    name,
                    Status::Warn,
                    format!(
                        "{subject}: TCP MSS {mss} exceeds the cable MTU {cable_text} − 40 = {max}, yet {} bytes were echoed",
                        t.echoed
                    ),
                    "the route agent's MSS clamp is not applied: check its nftables table (`nft list ruleset` on the node) and its log",
                )),
                (mss, _) => Some(Line::pass(
                    name,
                    format!(
                        "{subject}: a TCP transfer of {} bytes to a pod on {where_} is echoed whole (MSS {})",
                        t.echoed,
                        mss.map_or_else(|| "unknown".to_string(), |m| m.to_string())
                    ),
                )),
            }
        }
        Some(Outcome::Error { message }) => Some(Line::with(
            name,
            Status::Fail,
            format!("{subject}: a TCP transfer to a pod on {where_} failed: {message}"),
            "small packets cross but a bulk transfer does not: typical of a black-holed MTU; check that ICMP 'fragmentation needed' reaches the pods and that the MSS clamp is in place",
        )),
        _ => None,
    }
}

fn pmtu_line(subject: &str, p: &PmtuOutcome, cable: Option<u32>, node: &str) -> Line {
    let name = Check::Mtu.name();
    let packet = p.size + 28;
    let cable_text = mtu_text(cable);
    if let (Some(ifm), Some(c)) = (p.interface_mtu, cable)
        && ifm <= c
    {
        return Line::pass(
            name,
            format!(
                "{subject}: the pod interface MTU {ifm} fits the cable MTU {c}: nothing needs fragmenting"
            ),
        );
    }
    match p.verdict {
        PmtuVerdict::Signalled => Line::pass(
            name,
            format!(
                "{subject}: a {packet}-byte don't-fragment packet from a pod on {node} is answered with 'fragmentation needed' (path MTU {}, cable MTU {cable_text}), so senders adapt",
                p.path_mtu
                    .map_or_else(|| "?".to_string(), |m| m.to_string())
            ),
        ),
        PmtuVerdict::Passed | PmtuVerdict::NotNeeded => Line::pass(
            name,
            format!(
                "{subject}: a {packet}-byte don't-fragment packet from a pod on {node} crosses intact"
            ),
        ),
        PmtuVerdict::BlackHoled => Line::with(
            name,
            Status::Fail,
            format!(
                "{subject}: {packet}-byte don't-fragment packets from a pod on {node} vanish: no ICMP 'fragmentation needed' comes back (cable MTU {cable_text}), so large TCP segments stall"
            ),
            "let ICMP type 3 code 4 reach the pods, or give pods an MTU no bigger than the cable's; TCP also relies on the route agent's MSS clamp",
        ),
    }
}

/// A cable MTU for messages: the number, or `unknown`.
fn mtu_text(cable: Option<u32>) -> String {
    cable.map_or_else(|| "unknown".to_string(), |m| m.to_string())
}
