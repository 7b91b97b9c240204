//! `ferry verify`: end-to-end checks between clusters with temporary test
//! pods, every one of them removed afterwards — pod to pod both ways from
//! non-gateway nodes (UDP and TCP), a remote Service by its ClusterIP and
//! by its clusterset name (exported for the test, then unexported), and
//! gateway failover: where a cluster has two gateway nodes, its active
//! gateway pod is restarted under traffic and the traffic must resume.
//!
//! [`judge`] turns what was measured into lines (pure); [`verify`] runs
//! the pods.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use ferry_api::labels::SYSTEM_NAMESPACE;
use ferry_api::{ConnectionStatus, HaStatus, ServiceImport};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, ListParams};

use crate::check::{Findings, Group, Line, Status};
use crate::cluster::{self, Facts};
use crate::explain::explain_error;
use crate::pods::{self, Cleanup, PodPlan, ProbeRun, Role};
use crate::probe::spec::{DnsRecord, EchoFormat, Probe, StreamOutcome, Task};
use crate::probe::{Outcome, Report, SERVE_PORT};
use crate::show::render::fmt_duration;
use crate::target::{Target, TargetSpec};
use crate::{Error, Result};

/// One part of `verify`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Part {
    /// Pod to pod, both ways.
    Connectivity,
    /// A remote Service by ClusterIP and by clusterset name.
    ServiceDiscovery,
    /// Restart of the active gateway under traffic.
    Failover,
}

impl Part {
    /// Every part, in the order they run.
    pub const ALL: [Part; 3] = [Part::Connectivity, Part::ServiceDiscovery, Part::Failover];

    /// The name on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Part::Connectivity => "connectivity",
            Part::ServiceDiscovery => "service-discovery",
            Part::Failover => "failover",
        }
    }
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Part {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Part::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                Error::Usage(format!(
                    "unknown part {s:?} (connectivity, service-discovery, failover)"
                ))
            })
    }
}

/// How to verify.
#[derive(Clone, Debug)]
pub struct Options {
    /// The parts to run.
    pub parts: Vec<Part>,
    /// How long a test pod may take to start and report, and an export to
    /// show up in the other clusters.
    pub timeout: Duration,
    /// How long traffic may take to resume after a gateway restart.
    pub failover_budget: Duration,
}

/// A readable cluster and what ran in it.
struct Member {
    target: Target,
    facts: Facts,
    run: ProbeRun,
    /// The server pod: node and IP.
    server: std::result::Result<(String, String), String>,
    /// The exported test Service: name and ClusterIP.
    service: Option<std::result::Result<(String, String), String>>,
    /// The client pod: node and report.
    client: Option<(String, std::result::Result<Report, String>)>,
}

fn message(e: &Error) -> String {
    explain_error(e).message
}

/// The test Service name of member `i`.
fn service_name(run: &str, i: usize) -> String {
    format!("ferry-verify-{run}-{i}")
}

/// Runs `opts.parts` between every pair of clusters of `specs` (at least
/// two). Test objects are registered with `cleanup` and removed before
/// this returns.
pub async fn verify(
    specs: &[TargetSpec],
    opts: &Options,
    cleanup: &Cleanup,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Findings> {
    if specs.len() < 2 {
        return Err(Error::Usage(
            "verify checks between clusters: give two (--kubeconfig a,b or --context a,b)".into(),
        ));
    }
    let read = futures::future::join_all(specs.iter().map(cluster::read)).await;
    let mut findings = Findings::default();
    let run_id = pods::run_id();
    let mut members: Vec<Member> = Vec::new();
    for (spec, r) in specs.iter().zip(read) {
        match r {
            Ok((target, facts)) => members.push(Member {
                run: ProbeRun {
                    id: run_id.clone(),
                    image: facts.image(),
                    timeout: opts.timeout,
                    cleanup: cleanup.clone(),
                },
                target,
                facts,
                server: Err("not started".into()),
                service: None,
                client: None,
            }),
            Err(e) => {
                let x = explain_error(&e);
                findings.groups.push(Group {
                    header: format!("Cluster ? ({})", spec.describe()),
                    lines: Vec::new(),
                    error: Some(x.message),
                    hint: x.hint,
                });
            }
        }
    }
    if members.len() < 2 {
        return Ok(findings);
    }
    let ids: Vec<String> = members.iter().map(|m| m.facts.id().to_string()).collect();
    progress(&format!("verifying {} (run {run_id})", ids.join(" ↔ ")));
    let mut lines = Vec::new();
    run_parts(&mut members, opts, &mut lines, progress).await;
    cleanup.run().await;
    findings.groups.insert(
        0,
        Group {
            header: format!(
                "Clusters {} ({})",
                ids.join(", "),
                members
                    .iter()
                    .map(|m| m.target.label.clone())
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            lines,
            error: None,
            hint: None,
        },
    );
    Ok(findings)
}

async fn run_parts(
    members: &mut [Member],
    opts: &Options,
    lines: &mut Vec<Line>,
    progress: &(dyn Fn(&str) + Sync),
) {
    let wants = |p: Part| opts.parts.contains(&p);
    // RBAC and one echo server per cluster, on an ordinary node.
    let servers = futures::future::join_all(members.iter().map(|m| async move {
        pods::ensure_rbac(&m.target).await?;
        let (node, _) = m.facts.workload_node().ok_or_else(|| Error::ProbePod {
            cluster: m.target.label.clone(),
            pod: "(server)".into(),
            reason: "no ready node to run it on".into(),
            image: m.run.image.clone(),
        })?;
        let plan = PodPlan {
            name: m.run.pod_name(Role::Server, "0"),
            node: node.clone(),
            role: Role::Server,
            tasks: Vec::new(),
        };
        let c = m.run.create_one(&m.target, &plan).await?;
        let ip = m.run.wait_ready(&c).await?;
        Ok::<_, Error>((node, ip))
    }))
    .await;
    for (m, s) in members.iter_mut().zip(servers) {
        m.server = s.map_err(|e| message(&e));
    }
    let domain = members[0].facts.clusterset_domain();

    // The test Services, exported, and visible in every other cluster.
    if wants(Part::ServiceDiscovery) {
        let exported = futures::future::join_all(members.iter().enumerate().map(|(i, m)| {
            let name = service_name(&m.run.id, i);
            async move {
                if m.server.is_err() {
                    return Err("no server pod to export".to_string());
                }
                m.run
                    .export_server(&m.target, &name)
                    .await
                    .map(|ip| (name, ip))
                    .map_err(|e| message(&e))
            }
        }))
        .await;
        for (m, e) in members.iter_mut().zip(exported) {
            m.service = Some(e);
        }
        let waits = futures::future::join_all(members.iter().enumerate().flat_map(|(i, m)| {
            members
                .iter()
                .enumerate()
                .filter(move |(j, _)| *j != i)
                .filter_map(move |(_, other)| {
                    let (name, _) = m.service.as_ref()?.as_ref().ok()?;
                    Some(wait_imported(
                        other,
                        name.clone(),
                        m.facts.id().to_string(),
                        m.run.timeout,
                    ))
                })
        }))
        .await;
        for w in waits {
            if let Err((what, e)) = w {
                lines.push(Line::with(
                    Part::ServiceDiscovery.name(),
                    Status::Fail,
                    what,
                    e,
                ));
            }
        }
    }

    // One client per cluster: to every other cluster's pod and Service.
    if wants(Part::Connectivity) || wants(Part::ServiceDiscovery) {
        progress("probing pod to pod and pod to service");
        let plans: Vec<Option<(String, Vec<Task>)>> = members
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let (node, _) = m.facts.workload_node()?;
                let mut tasks = Vec::new();
                for (j, o) in members.iter().enumerate() {
                    if i == j {
                        continue;
                    }
                    let oid = o.facts.id();
                    if wants(Part::Connectivity)
                        && let Ok((_, ip)) = &o.server
                    {
                        let target = format!("{ip}:{SERVE_PORT}");
                        tasks.push(Task {
                            id: format!("udp/{oid}"),
                            probe: Probe::Echo {
                                target: target.clone(),
                                count: 5,
                                interval_ms: 20,
                                timeout_ms: 1000,
                                size: 64,
                                format: EchoFormat::Raw,
                            },
                        });
                        tasks.push(Task {
                            id: format!("tcp/{oid}"),
                            probe: Probe::Tcp {
                                target,
                                bytes: 64 * 1024,
                                timeout_ms: 3000,
                            },
                        });
                    }
                    if wants(Part::ServiceDiscovery)
                        && let Some(Ok((name, ip))) = &o.service
                    {
                        let fqdn = format!("{name}.{SYSTEM_NAMESPACE}.svc.{domain}");
                        let budget = u64::try_from(m.run.timeout.as_millis()).unwrap_or(60_000);
                        tasks.push(Task {
                            id: format!("dns/{oid}"),
                            probe: Probe::Dns {
                                name: fqdn.clone(),
                                record: DnsRecord::A,
                                timeout_ms: 1000,
                                attempts: 2,
                                retry_ms: budget.min(15_000),
                            },
                        });
                        tasks.push(Task {
                            id: format!("svc-ip/{oid}"),
                            probe: Probe::Tcp {
                                target: format!("{ip}:{SERVE_PORT}"),
                                bytes: 16 * 1024,
                                timeout_ms: 5000,
                            },
                        });
                        tasks.push(Task {
                            id: format!("svc-name/{oid}"),
                            probe: Probe::Tcp {
                                target: format!("{fqdn}.:{SERVE_PORT}"),
                                bytes: 16 * 1024,
                                timeout_ms: budget.min(15_000),
                            },
                        });
                    }
                }
                Some((node, tasks))
            })
            .collect();
        let results =
            futures::future::join_all(members.iter().zip(plans).map(|(m, plan)| async move {
                let (node, tasks) = plan?;
                let plan = PodPlan {
                    name: m.run.pod_name(Role::Client, "0"),
                    node: node.clone(),
                    role: Role::Client,
                    tasks,
                };
                let r = async {
                    let c = m.run.create_one(&m.target, &plan).await?;
                    m.run.wait_report(&c).await
                }
                .await
                .map_err(|e| message(&e));
                Some((node, r))
            }))
            .await;
        for (m, r) in members.iter_mut().zip(results) {
            m.client = r;
        }
        let views: Vec<View<'_>> = members.iter().map(View::of).collect();
        for (i, a) in views.iter().enumerate() {
            for (j, b) in views.iter().enumerate() {
                if i == j {
                    continue;
                }
                if wants(Part::Connectivity) {
                    lines.extend(judge::connectivity(a, b));
                }
                if wants(Part::ServiceDiscovery) {
                    lines.extend(judge::service_discovery(a, b, &domain));
                }
            }
        }
    }

    if wants(Part::Failover) {
        for i in 0..members.len() {
            let peer = (i + 1) % members.len();
            let line = failover(members, i, peer, opts.failover_budget, progress).await;
            lines.push(line);
        }
    }
}

/// What [`judge`] needs of one member.
pub struct View<'a> {
    /// Cluster id.
    pub id: &'a str,
    /// Server pod node and IP, or why there is none.
    pub server: std::result::Result<(&'a str, &'a str), &'a str>,
    /// Exported test Service name and ClusterIP, or why there is none.
    pub service: Option<std::result::Result<(&'a str, &'a str), &'a str>>,
    /// Client node and report, or why there is none.
    pub client: Option<(&'a str, std::result::Result<&'a Report, &'a str>)>,
}

impl<'a> View<'a> {
    fn of(m: &'a Member) -> View<'a> {
        View {
            id: m.facts.id(),
            server: match &m.server {
                Ok((n, ip)) => Ok((n.as_str(), ip.as_str())),
                Err(e) => Err(e.as_str()),
            },
            service: m.service.as_ref().map(|s| match s {
                Ok((n, ip)) => Ok((n.as_str(), ip.as_str())),
                Err(e) => Err(e.as_str()),
            }),
            client: m.client.as_ref().map(|(node, r)| {
                (
                    node.as_str(),
                    match r {
                        Ok(rep) => Ok(rep),
                        Err(e) => Err(e.as_str()),
                    },
                )
            }),
        }
    }
}

/// Waits until `other` imports `name` from `from` with a ready endpoint.
async fn wait_imported(
    other: &Member,
    name: String,
    from: String,
    timeout: Duration,
) -> std::result::Result<Duration, (String, String)> {
    let started = Instant::now();
    let api: Api<ServiceImport> = Api::namespaced(other.target.client.clone(), SYSTEM_NAMESPACE);
    loop {
        if let Ok(Some(si)) = api.get_opt(&name).await
            && si
                .status
                .as_ref()
                .is_some_and(|s| s.clusters.iter().any(|c| c.cluster == from))
        {
            return Ok(started.elapsed());
        }
        if started.elapsed() > timeout {
            return Err((
                format!(
                    "{from} → {}: the test Service {SYSTEM_NAMESPACE}/{name} exported from {from} was not imported in {} within {}",
                    other.facts.id(),
                    other.facts.id(),
                    fmt_duration(timeout)
                ),
                format!(
                    "see `ferry show services` in both clusters and `kubectl -n {SYSTEM_NAMESPACE} logs deployment/ferry-agent`; the agents sync through the broker"
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Restarts the active gateway pod of member `i` while a pod there streams
/// UDP to member `peer`'s server; the traffic must resume.
async fn failover(
    members: &[Member],
    i: usize,
    peer: usize,
    budget: Duration,
    progress: &(dyn Fn(&str) + Sync),
) -> Line {
    let name = Part::Failover.name();
    let m = &members[i];
    let p = &members[peer];
    let id = m.facts.id();
    let gateways = m.facts.gateway_nodes();
    if gateways.len() < 2 {
        return Line::with(
            name,
            Status::Skip,
            format!(
                "{id} has {} gateway node{} ({}): failover needs two",
                gateways.len(),
                if gateways.len() == 1 { "" } else { "s" },
                if gateways.is_empty() {
                    "none".to_string()
                } else {
                    gateways.join(", ")
                }
            ),
            "label a second node that other clusters can reach: kubectl label node NODE ferry.dev/gateway=true",
        );
    }
    let Ok((_, peer_ip)) = &p.server else {
        return Line::with(
            name,
            Status::Fail,
            format!("{id}: no server pod in {} to stream to", p.facts.id()),
            "see the connectivity lines",
        );
    };
    let Some((node, _)) = m.facts.workload_node() else {
        return Line::with(
            name,
            Status::Fail,
            format!("{id}: no ready node for the streaming pod"),
            "see `kubectl get nodes`",
        );
    };
    // Who is active now (read fresh: earlier steps took time).
    let Ok(now) = cluster::read_target(&m.target).await else {
        return Line::with(
            name,
            Status::Fail,
            format!("{id}: cannot read its gateways"),
            "see the connectivity lines",
        );
    };
    let Some(old) = now.active_gateway_node() else {
        return Line::with(
            name,
            Status::Fail,
            format!("{id} has no active gateway to restart"),
            "run `ferry diagnose deployment`",
        );
    };
    progress(&format!(
        "failover: restarting {id}'s active gateway pod on {old} under traffic"
    ));
    let budget_ms = u64::try_from(budget.as_millis()).unwrap_or(30_000);
    let plan = PodPlan {
        name: m.run.pod_name(Role::Client, "failover"),
        node: node.clone(),
        role: Role::Client,
        tasks: vec![Task {
            id: "stream".into(),
            probe: Probe::Stream {
                target: format!("{peer_ip}:{SERVE_PORT}"),
                interval_ms: 20,
                duration_ms: budget_ms + 2000,
                recovered_after: 10,
                // Traffic flows for a second before the restart; a
                // takeover that shows no outage is done by then.
                quiet_end_ms: 6000,
            },
        }],
    };
    let c = match m.run.create_one(&m.target, &plan).await {
        Ok(c) => c,
        Err(e) => {
            return Line::with(
                name,
                Status::Fail,
                format!("{id}: {}", message(&e)),
                "see the test pod error",
            );
        }
    };
    if let Err(e) = m.run.wait_running(&c).await {
        return Line::with(
            name,
            Status::Fail,
            format!("{id}: {}", message(&e)),
            "see the test pod error",
        );
    }
    // Let traffic flow before the restart.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let pods_api: Api<Pod> = Api::namespaced(m.target.client.clone(), SYSTEM_NAMESPACE);
    let lp = ListParams::default().labels("app.kubernetes.io/name=ferry-gateway");
    let gw_pod = pods_api.list(&lp).await.ok().and_then(|l| {
        l.items.into_iter().find(|p| {
            p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(old.as_str())
                && p.metadata.deletion_timestamp.is_none()
        })
    });
    let Some(gw_name) = gw_pod.and_then(|p| p.metadata.name) else {
        return Line::with(
            name,
            Status::Fail,
            format!("{id}: no ferry-gateway pod on {old}"),
            "run `ferry diagnose deployment`",
        );
    };
    let restarted = Instant::now();
    if let Err(e) = pods_api.delete(&gw_name, &DeleteParams::default()).await {
        return Line::with(
            name,
            Status::Fail,
            format!("{id}: cannot restart gateway pod {gw_name}: {e}"),
            "the kubeconfig needs the right to delete pods in ferry-system",
        );
    }
    // Who takes over, and when its cable to the peer is up again.
    let peer_id = p.facts.id().to_string();
    let takeover = async {
        let api: Api<ferry_api::Gateway> =
            Api::namespaced(m.target.client.clone(), SYSTEM_NAMESPACE);
        loop {
            if let Ok(l) = api.list(&ListParams::default()).await {
                let active = l.items.into_iter().find(|g| {
                    g.status.as_ref().is_some_and(|s| {
                        s.ha_status == HaStatus::Active
                            && s.connections.iter().any(|c| {
                                c.cluster_id == peer_id && c.status == ConnectionStatus::Connected
                            })
                    })
                });
                if let Some(g) = active
                    && (g.spec.hostname != old || restarted.elapsed() > Duration::from_secs(2))
                {
                    return Some((g.spec.hostname, restarted.elapsed()));
                }
            }
            if restarted.elapsed() > budget {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let (report, took) = tokio::join!(m.run.wait_report(&c), takeover);
    let stream = match report {
        Ok(r) => match r.get("stream") {
            Some(Outcome::Stream(s)) => s.clone(),
            Some(Outcome::Error { message }) => {
                return Line::with(
                    name,
                    Status::Fail,
                    format!("{id}: the streaming pod failed: {message}"),
                    "see the connectivity lines",
                );
            }
            _ => StreamOutcome::default(),
        },
        Err(e) => {
            return Line::with(
                name,
                Status::Fail,
                format!("{id}: {}", message(&e)),
                "the streaming pod could not report (the API may be unreachable from it during the failover)",
            );
        }
    };
    judge::failover(id, p.facts.id(), &node, &old, took, &stream, budget)
}

/// From measurements to lines. Pure.
pub mod judge {
    use super::*;

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
}

#[cfg(test)]
mod tests;
