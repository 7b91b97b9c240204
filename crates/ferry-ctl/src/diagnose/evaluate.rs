//! From what was read and what the probes measured to PASS/WARN/FAIL/SKIP
//! lines, check by check. Pure: every function takes [`Facts`] and probe
//! [`Report`]s and returns [`Line`]s, so each verdict is unit-tested.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use ferry_api::labels::{BROKER_NAMESPACE, SERVICE_NAME, SOURCE_CLUSTER, SYSTEM_NAMESPACE};
use ferry_api::{Cidr, ConnectionStatus, HaStatus, ServiceImport, ServiceImportType};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::Check;
use crate::check::{Line, Status};
use crate::cluster::{self, Facts};
use crate::probe::spec::{DnsOutcome, EchoOutcome, PmtuOutcome, PmtuVerdict};
use crate::probe::{Outcome, Report};
use crate::show::render::fmt_duration;

/// The oldest Kubernetes minor version ferry supports.
pub const MIN_VERSION: (u32, u32) = (1, 27);

/// A probe pod's report, or why there is none.
pub type Probed<'a> = Result<&'a Report, &'a str>;

fn us(v: u64) -> String {
    fmt_duration(Duration::from_micros(v))
}

/// ` (rtt avg …)`, or nothing when no echo came back.
fn avg_rtt(e: &EchoOutcome) -> String {
    if e.rtt_us.is_empty() {
        return String::new();
    }
    format!(
        " (rtt avg {})",
        us(e.rtt_us.iter().sum::<u64>() / e.rtt_us.len() as u64)
    )
}

fn list<T: ToString>(v: &[T]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// `k8s-version`: the API server is recent enough.
pub fn k8s_version(f: &Facts) -> Vec<Line> {
    let name = Check::K8sVersion.name();
    let line = match &f.version {
        None => Line::with(
            name,
            Status::Warn,
            "the API server did not tell its version",
            "check `kubectl version`; ferry supports Kubernetes v1.27 and newer",
        ),
        Some((major, minor, text)) if (*major, *minor) < MIN_VERSION => Line::with(
            name,
            Status::Fail,
            format!(
                "the API server runs {text}; ferry supports v{}.{} and newer",
                MIN_VERSION.0, MIN_VERSION.1
            ),
            "upgrade the cluster (EndpointSlice v1, server-side apply and the CRD features ferry uses need it)",
        ),
        Some((_, _, text)) => Line::pass(
            name,
            format!(
                "the API server runs {text} (ferry supports v{}.{} and newer)",
                MIN_VERSION.0, MIN_VERSION.1
            ),
        ),
    };
    vec![line]
}

/// `deployment`: ferry's workloads are ready, a gateway node is labelled
/// and one gateway is active.
pub fn deployment(f: &Facts) -> Vec<Line> {
    let name = Check::Deployment.name();
    let s = &f.snapshot;
    let ns = SYSTEM_NAMESPACE;
    let mut out = Vec::new();
    for d in ["ferry-agent", "ferry-dns"] {
        let Some(dep) = s
            .deployments
            .iter()
            .find(|x| x.metadata.name.as_deref() == Some(d))
        else {
            out.push(Line::with(
                name,
                Status::Fail,
                format!("Deployment {ns}/{d} is missing"),
                "run `ferry join` again (it recreates what is missing)",
            ));
            continue;
        };
        let want = dep.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let ready = dep
            .status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0);
        if want > 0 && ready >= want {
            out.push(Line::pass(
                name,
                format!("Deployment {ns}/{d}: {ready}/{want} ready"),
            ));
        } else {
            out.push(Line::with(
                name,
                Status::Fail,
                format!("Deployment {ns}/{d}: {ready}/{want} ready"),
                format!("see `kubectl -n {ns} describe deployment {d}` and `kubectl -n {ns} logs deployment/{d}`"),
            ));
        }
    }
    let gateway_nodes = f.gateway_nodes();
    for d in ["ferry-gateway", "ferry-route-agent"] {
        let Some(ds) = s
            .daemonsets
            .iter()
            .find(|x| x.metadata.name.as_deref() == Some(d))
        else {
            out.push(Line::with(
                name,
                Status::Fail,
                format!("DaemonSet {ns}/{d} is missing"),
                "run `ferry join` again (it recreates what is missing)",
            ));
            continue;
        };
        let st = ds.status.clone().unwrap_or_default();
        let (want, ready) = (st.desired_number_scheduled, st.number_ready);
        if d == "ferry-gateway" && want == 0 {
            out.push(Line::with(
                name,
                Status::Fail,
                format!("DaemonSet {ns}/{d} runs nowhere: no node is labelled ferry.dev/gateway=true"),
                "label a node that other clusters can reach: kubectl label node NODE ferry.dev/gateway=true",
            ));
        } else if want > 0 && ready >= want {
            let where_ = if d == "ferry-gateway" {
                format!(" (on {})", list(&gateway_nodes))
            } else {
                String::new()
            };
            out.push(Line::pass(
                name,
                format!("DaemonSet {ns}/{d}: {ready}/{want} ready{where_}"),
            ));
        } else {
            out.push(Line::with(
                name,
                Status::Fail,
                format!("DaemonSet {ns}/{d}: {ready}/{want} ready"),
                format!("see `kubectl -n {ns} get pods -o wide` and `kubectl -n {ns} logs daemonset/{d}`"),
            ));
        }
    }
    let gateways = f.own_gateways();
    let active: Vec<&str> = gateways
        .iter()
        .filter(|g| {
            g.status
                .as_ref()
                .is_some_and(|s| s.ha_status == HaStatus::Active)
        })
        .map(|g| g.spec.hostname.as_str())
        .collect();
    match active.as_slice() {
        [] => out.push(Line::with(
            name,
            Status::Fail,
            if gateways.is_empty() {
                "no gateway has reported (no Gateway object)".to_string()
            } else {
                format!("no gateway is active ({} standing by)", gateways.len())
            },
            format!("see the gateway's log: `kubectl -n {ns} logs daemonset/ferry-gateway`"),
        )),
        [one] => {
            let failure = f
                .active_gateway()
                .and_then(|g| g.status.as_ref()?.status_failure.clone());
            let standby = gateways.len() - 1;
            match failure {
                Some(why) => out.push(Line::with(
                    name,
                    Status::Fail,
                    format!("gateway {one} is active but failing: {why}"),
                    format!("see `kubectl -n {ns} logs` of the ferry-gateway pod on {one}"),
                )),
                None => out.push(Line::pass(
                    name,
                    format!("gateway {one} is active ({standby} standing by)"),
                )),
            }
        }
        many => out.push(Line::with(
            name,
            Status::Warn,
            format!("{} gateways say they are active: {}", many.len(), many.join(", ")),
            "only one should hold the lease: check the clocks of the gateway nodes and `kubectl -n ferry-system get lease`",
        )),
    }
    out
}

/// `cidr-overlap`: this cluster's CIDRs against every other cluster's, and
/// the addresses its pods and Services really have against the declared
/// CIDRs.
pub fn cidr_overlap(f: &Facts) -> Vec<Line> {
    let name = Check::CidrOverlap.name();
    let s = &f.snapshot;
    let id = f.id();
    let Some(own) = s.clusters.iter().find(|c| c.spec.cluster_id == id) else {
        return vec![Line::with(
            name,
            Status::Fail,
            format!("this cluster's Cluster object ({SYSTEM_NAMESPACE}/{id}) is missing"),
            "the agent publishes it: see `kubectl -n ferry-system logs deployment/ferry-agent`",
        )];
    };
    let mine: Vec<(&str, Cidr)> = own
        .spec
        .cluster_cidrs
        .iter()
        .map(|c| ("pod", *c))
        .chain(own.spec.service_cidrs.iter().map(|c| ("service", *c)))
        .collect();
    let mut out = Vec::new();
    for (i, (ka, a)) in mine.iter().enumerate() {
        for (kb, b) in &mine[i + 1..] {
            if a.overlaps(b) {
                out.push(Line::with(
                    name,
                    Status::Fail,
                    format!("{id}'s {ka} CIDR {a} overlaps its own {kb} CIDR {b}"),
                    "rejoin with disjoint --clustercidr and --servicecidr",
                ));
            }
        }
    }
    let mut others = 0;
    let mut seen = BTreeSet::new();
    for other in &s.clusters {
        let oid = &other.spec.cluster_id;
        if oid == id || !seen.insert(oid.clone()) {
            continue;
        }
        others += 1;
        let theirs = other
            .spec
            .cluster_cidrs
            .iter()
            .map(|c| ("pod", c))
            .chain(other.spec.service_cidrs.iter().map(|c| ("service", c)));
        for (kb, b) in theirs {
            for (ka, a) in &mine {
                if a.overlaps(b) {
                    out.push(Line::with(
                        name,
                        Status::Fail,
                        format!("{id}'s {ka} CIDR {a} overlaps {oid}'s {kb} CIDR {b}"),
                        "traffic is routed by destination, so these two clusters cannot reach each other there: rejoin one of them with other --clustercidr/--servicecidr (`ferry show networks` lists what is taken)",
                    ));
                }
            }
        }
    }
    let outside = |ips: &[(String, IpAddr)], cidrs: &[Cidr]| -> Vec<String> {
        ips.iter()
            .filter(|(_, ip)| cidrs.iter().any(|c| c.addr().is_ipv4() == ip.is_ipv4()))
            .filter(|(_, ip)| !cidrs.iter().any(|c| c.contains(*ip)))
            .map(|(n, ip)| format!("{n} {ip}"))
            .collect()
    };
    let stray_pods = outside(&f.pod_ips, &own.spec.cluster_cidrs);
    if !stray_pods.is_empty() {
        out.push(Line::with(
            name,
            Status::Fail,
            format!(
                "{} pod(s) have addresses outside the declared pod CIDRs {} (e.g. {}): other clusters cannot reach them",
                stray_pods.len(),
                list(&own.spec.cluster_cidrs),
                stray_pods[0]
            ),
            "rejoin with --clustercidr covering the pod network (several CIDRs: --clustercidr A,B)",
        ));
    }
    let stray_svcs = outside(&f.service_ips, &own.spec.service_cidrs);
    if !stray_svcs.is_empty() {
        out.push(Line::with(
            name,
            Status::Fail,
            format!(
                "{} Service(s) have ClusterIPs outside the declared service CIDRs {} (e.g. {}): other clusters cannot reach them",
                stray_svcs.len(),
                list(&own.spec.service_cidrs),
                stray_svcs[0]
            ),
            "rejoin with --servicecidr covering the service network (several CIDRs: --servicecidr A,B)",
        ));
    }
    if out.is_empty() {
        out.push(Line::pass(
            name,
            format!(
                "pod CIDRs {} and service CIDRs {} overlap none of the {others} other cluster(s), and hold the {} pod and {} Service addresses sampled",
                list(&own.spec.cluster_cidrs),
                list(&own.spec.service_cidrs),
                f.pod_ips.len(),
                f.service_ips.len()
            ),
        ));
    }
    out
}

fn echo<'a>(r: &'a Report, id: &str) -> Result<&'a EchoOutcome, String> {
    match r.get(id) {
        Some(Outcome::Echo(e)) => Ok(e),
        Some(Outcome::Error { message }) => Err(message.clone()),
        Some(other) => Err(format!("unexpected outcome {other:?}")),
        None => Err("the probe pod did not run this probe".into()),
    }
}

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

/// Where the client pod ran, for messages.
pub struct Client<'a> {
    /// Its node.
    pub node: &'a str,
    /// Its report.
    pub report: Probed<'a>,
}

/// `connections`: real traffic from an ordinary pod of this cluster to
/// each remote cluster — to the remote gateway's health-check address
/// (through both route agents' paths into the cable) and, when the remote
/// cluster is also being diagnosed, to a pod on one of its non-gateway
/// nodes — judged together with what the gateway reports.
pub fn connections(f: &Facts, client: &Client<'_>, pod_targets: &[(String, String)]) -> Vec<Line> {
    let name = Check::Connections.name();
    let id = f.id();
    let remotes = f.remote_ids();
    if remotes.is_empty() {
        return vec![Line::with(
            name,
            Status::Skip,
            format!("{id} knows no other cluster"),
            "join another cluster to the same broker (`ferry join`)",
        )];
    }
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
        let port = f.endpoint_of(r).map(cluster::cable_port).unwrap_or(4500);
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
    let remotes = f.remote_ids();
    if remotes.is_empty() {
        return vec![Line::with(
            name,
            Status::Skip,
            format!("{id} knows no other cluster"),
            "join another cluster to the same broker (`ferry join`)",
        )];
    }
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
        let line = match sender {
            Some((_, Err(e))) => Line::with(
                name,
                Status::Fail,
                format!("{subject}: no test datagram was sent ({e})"),
                "fix the sender pod on the remote gateway node first (see the error)",
            ),
            Some((_, Ok(rep))) => {
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
                        format!(
                            "check {r}'s gateway node: its network link and its route to {addr}"
                        ),
                    )
                } else if sniffed.seen > 0 {
                    Line::pass(
                        name,
                        format!(
                            "{subject}: UDP {port} from {r}'s gateway node reaches {id}'s gateway {node} ({addr}): test datagrams arrive ({} seen, {sent} sent)",
                            sniffed.seen
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
            None => {
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
                            fw.window.as_secs_f64()
                        ),
                    )
                } else {
                    Line::with(
                        name,
                        Status::Warn,
                        format!(
                            "{subject}: no datagram from {r}'s gateway ({}) reached UDP {port} of {id}'s gateway {node} in {:.1}s",
                            list(&from),
                            fw.window.as_secs_f64()
                        ),
                        format!(
                            "if {r}'s gateway is up, UDP {port} from it to {addr} is blocked; diagnose both clusters at once (--kubeconfig {id}.kubeconfig,{r}.kubeconfig) to send test datagrams for a definitive answer"
                        ),
                    )
                }
            }
        };
        out.push(line);
    }
    out
}

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
    let remotes = f.remote_ids();
    if remotes.is_empty() {
        return vec![Line::with(
            name,
            Status::Skip,
            format!("{id} knows no other cluster"),
            "join another cluster to the same broker (`ferry join`)",
        )];
    }
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
        let cable_text = cable.map_or_else(|| "unknown".to_string(), |m| m.to_string());
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
        match report.get(&format!("mtu-fit/{r}")) {
            Some(Outcome::Echo(e)) if e.received > 0 => out.push(Line::pass(
                name,
                format!(
                    "{subject}: {}-byte packets (the cable MTU) with don't-fragment cross to a pod on {where_} and back ({}/{})",
                    cable_text, e.received, e.sent
                ),
            )),
            Some(Outcome::Echo(e)) => out.push(Line::with(
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
            Some(Outcome::Error { message }) => out.push(Line::with(
                name,
                Status::Fail,
                format!("{subject}: the full-size probe failed: {message}"),
                "see the connections check",
            )),
            _ => {}
        }
        match report.get(&format!("mtu-tcp/{r}")) {
            Some(Outcome::Tcp(t)) => {
                let clamp = cable.map(|c| c.saturating_sub(40));
                match (t.mss, clamp) {
                    (Some(mss), Some(max)) if mss > max => out.push(Line::with(
                        name,
                        Status::Warn,
                        format!(
                            "{subject}: TCP MSS {mss} exceeds the cable MTU {cable_text} − 40 = {max}, yet {} bytes were echoed",
                            t.echoed
                        ),
                        "the route agent's MSS clamp is not applied: check its nftables table (`nft list ruleset` on the node) and its log",
                    )),
                    (mss, _) => out.push(Line::pass(
                        name,
                        format!(
                            "{subject}: a TCP transfer of {} bytes to a pod on {where_} is echoed whole (MSS {})",
                            t.echoed,
                            mss.map_or_else(|| "unknown".to_string(), |m| m.to_string())
                        ),
                    )),
                }
            }
            Some(Outcome::Error { message }) => out.push(Line::with(
                name,
                Status::Fail,
                format!("{subject}: a TCP transfer to a pod on {where_} failed: {message}"),
                "small packets cross but a bulk transfer does not: typical of a black-holed MTU; check that ICMP 'fragmentation needed' reaches the pods and that the MSS clamp is in place",
            )),
            _ => {}
        }
    }
    out
}

fn pmtu_line(subject: &str, p: &PmtuOutcome, cable: Option<u32>, node: &str) -> Line {
    let name = Check::Mtu.name();
    let packet = p.size + 28;
    let cable_text = cable.map_or_else(|| "unknown".to_string(), |m| m.to_string());
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
    match dns(report, "dns-version") {
        Ok(d) if !d.texts.is_empty() => out.push(Line::pass(
            name,
            format!(
                "the cluster DNS ({}) forwards {domain} to ferry dns: dns-version.{domain} → {} ({})",
                d.server,
                d.texts.join(","),
                us(d.elapsed_us)
            ),
        )),
        Ok(d) => out.push(Line::with(
            name,
            Status::Fail,
            format!(
                "the cluster DNS ({}) gives no dns-version.{domain} record ({}), so {domain} does not reach ferry dns",
                d.server,
                d.rcode.as_deref().unwrap_or("no answer")
            ),
            dns_hint.clone(),
        )),
        Err(e) => out.push(Line::with(
            name,
            Status::Fail,
            format!("querying dns-version.{domain} failed: {e}"),
            dns_hint.clone(),
        )),
    }
    match dns(report, "dns-nx") {
        Ok(d) if d.rcode.as_deref() == Some("NXDomain") => out.push(Line::pass(
            name,
            format!(
                "a name nobody exports gets NXDOMAIN at once ({})",
                us(d.elapsed_us)
            ),
        )),
        Ok(d) => out.push(Line::with(
            name,
            Status::Fail,
            format!(
                "a name nobody exports gets {} after {}: clients wait on resolver retries instead of failing fast",
                d.rcode.as_deref().unwrap_or("no answer"),
                us(d.elapsed_us)
            ),
            dns_hint.clone(),
        )),
        Err(e) => out.push(Line::with(
            name,
            Status::Fail,
            format!("querying a name nobody exports failed: {e}"),
            dns_hint.clone(),
        )),
    }
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
        let ns = si.metadata.namespace.as_deref().unwrap_or("");
        let n = si.metadata.name.as_deref().unwrap_or("");
        let fqdn = import_name(si, &domain);
        let (expected, clusters) = expected_answer(f, si);
        let exp = expected.iter().copied().collect::<Vec<_>>();
        let line = match dns(report, &format!("dns/{ns}/{n}")) {
            Err(e) => Line::with(
                name,
                Status::Fail,
                format!("{fqdn}: the query failed: {e}"),
                dns_hint.clone(),
            ),
            Ok(d) if d.rcode.is_none() => Line::with(
                name,
                Status::Fail,
                format!("{fqdn}: no answer in {}", us(d.elapsed_us)),
                dns_hint.clone(),
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
                dns_hint.clone(),
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
        };
        out.push(line);
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
