//! `ferry diagnose`: checks that find what is broken, active wherever a
//! check can be — real packets through the cables from temporary test pods
//! on ordinary (non-gateway) nodes, real DNS queries through the cluster
//! DNS, a packet sniffer on the gateway for the firewall — judged together
//! with what ferry's objects say, so a diagnosis cannot pass while traffic
//! fails (Submariner issue 2810).
//!
//! Every cluster given (`--kubeconfig a,b` / `--context a,b`) is diagnosed;
//! where two of them are given, probes between them go pod to pod, UDP
//! test datagrams are sent from one gateway node to the other's sniffer,
//! and full-size packets are echoed back; towards clusters not given, they
//! go to the remote gateway's health-check address inside the cable.
//!
//! [`evaluate`] turns facts and measurements into lines (pure); this module
//! plans the test pods, runs them, and always removes them.

pub mod evaluate;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::check::{Findings, Group, Line, Status};
use crate::cluster::{self, Facts};
use crate::explain::explain_error;
use crate::pods::{self, Cleanup, Created, PodPlan, ProbeRun, Role};
use crate::probe::spec::{DnsRecord, EchoFormat, Probe, Task};
use crate::probe::{Report, SERVE_PORT};
use crate::target::{Target, TargetSpec};
use crate::{Error, Result};

/// One check of `diagnose`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Check {
    /// The API server's version.
    K8sVersion,
    /// ferry's workloads and the active gateway.
    Deployment,
    /// CIDRs against other clusters and against real addresses.
    CidrOverlap,
    /// Traffic to every remote cluster, with the gateway's status.
    Connections,
    /// UDP to the cable port between the gateways.
    Firewall,
    /// Path MTU and full-size packets across the cables.
    Mtu,
    /// DNS answers for every ServiceImport.
    ServiceDiscovery,
}

impl Check {
    /// Every check, in the order `diagnose all` runs and prints them.
    pub const ALL: [Check; 7] = [
        Check::K8sVersion,
        Check::Deployment,
        Check::CidrOverlap,
        Check::Connections,
        Check::Firewall,
        Check::Mtu,
        Check::ServiceDiscovery,
    ];

    /// The name on the command line and in the output.
    pub fn name(&self) -> &'static str {
        match self {
            Check::K8sVersion => "k8s-version",
            Check::Deployment => "deployment",
            Check::CidrOverlap => "cidr-overlap",
            Check::Connections => "connections",
            Check::Firewall => "firewall",
            Check::Mtu => "mtu",
            Check::ServiceDiscovery => "service-discovery",
        }
    }

    /// Whether the check needs test pods.
    pub fn is_active(&self) -> bool {
        matches!(
            self,
            Check::Connections | Check::Firewall | Check::Mtu | Check::ServiceDiscovery
        )
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Check {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Check::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| Error::Usage(format!("unknown check {s:?}")))
    }
}

/// How to diagnose.
#[derive(Clone, Debug)]
pub struct Options {
    /// The checks to run (any order; printed in [`Check::ALL`] order).
    pub checks: Vec<Check>,
    /// How long a test pod may take to start and report.
    pub timeout: Duration,
}

/// A cluster that could be read.
struct Read {
    target: Target,
    facts: Facts,
}

/// What the test pods of one cluster measured.
#[derive(Default)]
struct Measured {
    /// Node and report (or why none) of the client pod.
    client: Option<(String, std::result::Result<Report, String>)>,
    /// Node and report of the sniffer on the active gateway.
    sniffer: Option<(String, std::result::Result<Report, String>)>,
    /// Report of the sender on the active gateway.
    sender: Option<std::result::Result<Report, String>>,
    /// The server pod's node and IP.
    server: Option<(String, String)>,
    /// Why the probes could not even start here.
    setup_error: Option<String>,
    /// Findings about where the pods had to run.
    notes: Vec<Line>,
}

fn message(e: &Error) -> String {
    explain_error(e).message
}

/// Runs the checks of `opts` against every cluster of `specs`; test pods
/// are registered with `cleanup` and removed before this returns.
pub async fn diagnose(
    specs: &[TargetSpec],
    opts: &Options,
    cleanup: &Cleanup,
    progress: &(dyn Fn(&str) + Sync),
) -> Findings {
    let mut checks = opts.checks.clone();
    checks.sort();
    checks.dedup();
    let read = futures::future::join_all(specs.iter().map(cluster::read)).await;
    let mut groups: Vec<Group> = Vec::new();
    let mut ok: Vec<(usize, Read)> = Vec::new();
    for (i, (spec, r)) in specs.iter().zip(read).enumerate() {
        match r {
            Ok((target, facts)) => {
                groups.push(Group {
                    header: format!(
                        "Cluster {} ({}, {})",
                        facts.id(),
                        spec.describe(),
                        target.url
                    ),
                    ..Default::default()
                });
                ok.push((i, Read { target, facts }));
            }
            Err(e) => {
                let x = explain_error(&e);
                groups.push(Group {
                    header: format!("Cluster ? ({})", spec.describe()),
                    lines: Vec::new(),
                    error: Some(x.message),
                    hint: x.hint,
                });
            }
        }
    }
    let reads: Vec<&Read> = ok.iter().map(|(_, r)| r).collect();
    let active: Vec<Check> = checks.iter().copied().filter(Check::is_active).collect();
    let window = sniff_window(&reads);
    let measured = if active.is_empty() || reads.is_empty() {
        reads.iter().map(|_| Measured::default()).collect()
    } else {
        let run = pods::run_id();
        let m = probe_all(
            &reads,
            &active,
            &run,
            opts.timeout,
            window,
            cleanup,
            progress,
        )
        .await;
        cleanup.run().await;
        m
    };
    let servers: Vec<(String, String)> = reads
        .iter()
        .zip(&measured)
        .filter_map(|(r, m)| {
            m.server
                .as_ref()
                .map(|(node, _)| (r.facts.id().to_string(), node.clone()))
        })
        .collect();
    for ((i, r), m) in ok.iter().zip(&measured) {
        let f = &r.facts;
        let pod_targets: Vec<(String, String)> = servers
            .iter()
            .filter(|(c, _)| c != f.id())
            .cloned()
            .collect();
        let setup = m.setup_error.clone().unwrap_or_default();
        let (client_node, client_report): (&str, evaluate::Probed<'_>) = match &m.client {
            Some((node, Ok(rep))) => (node, Ok(rep)),
            Some((node, Err(e))) => (node, Err(e.as_str())),
            None => ("-", Err(setup.as_str())),
        };
        let client = evaluate::Client {
            node: client_node,
            report: client_report,
        };
        let mut lines = Vec::new();
        for c in &checks {
            match c {
                Check::K8sVersion => lines.extend(evaluate::k8s_version(f)),
                Check::Deployment => lines.extend(evaluate::deployment(f)),
                Check::CidrOverlap => lines.extend(evaluate::cidr_overlap(f)),
                Check::Connections => {
                    lines.extend(m.notes.iter().cloned());
                    lines.extend(evaluate::connections(f, &client, &pod_targets));
                }
                Check::Firewall => {
                    let (node, sniffer): (Option<&str>, evaluate::Probed<'_>) = match &m.sniffer {
                        Some((n, Ok(rep))) => (Some(n), Ok(rep)),
                        Some((n, Err(e))) => (Some(n), Err(e.as_str())),
                        None => (
                            f.active_gateway().map(|g| g.spec.hostname.as_str()),
                            Err(setup.as_str()),
                        ),
                    };
                    let senders = reads
                        .iter()
                        .zip(&measured)
                        .filter(|(o, _)| o.facts.id() != f.id())
                        .filter_map(|(o, om)| {
                            let rep: evaluate::Probed<'_> = match om.sender.as_ref()? {
                                Ok(rep) => Ok(rep),
                                Err(e) => Err(e.as_str()),
                            };
                            Some((o.facts.id().to_string(), rep))
                        })
                        .collect();
                    lines.extend(evaluate::firewall(
                        f,
                        &evaluate::Firewall {
                            node,
                            sniffer,
                            senders,
                            window,
                        },
                    ));
                }
                Check::Mtu => lines.extend(evaluate::mtu(
                    f,
                    &client,
                    &pod_targets,
                    checks.contains(&Check::Connections),
                )),
                Check::ServiceDiscovery => lines.extend(evaluate::service_discovery(f, &client)),
            }
        }
        groups[*i].lines = lines;
    }
    Findings { groups }
}

/// How long a passive sniff watches: twice the health-check interval,
/// between 1.5 and 5 seconds.
fn sniff_window(reads: &[&Read]) -> Duration {
    let interval = reads
        .iter()
        .filter_map(|r| r.facts.snapshot.broker.as_ref())
        .filter_map(|b| b.health_check_interval.parse::<kube::core::Duration>().ok())
        .map(Duration::from)
        .max()
        .unwrap_or(Duration::from_secs(1));
    (interval * 2).clamp(Duration::from_millis(1500), Duration::from_secs(5))
}

/// The payload of the firewall test datagrams from `from` to `to`.
fn marker(run: &str, from: &str, to: &str) -> String {
    format!("ferry-firewall-probe {run} {from}->{to}")
}

const ECHOES: u32 = 5;

fn task(id: String, probe: Probe) -> Task {
    Task { id, probe }
}

/// The client tasks of cluster `f`.
fn client_tasks(
    f: &Facts,
    checks: &[Check],
    servers: &BTreeMap<String, String>,
    run: &str,
) -> Vec<Task> {
    let mut tasks = Vec::new();
    let remotes = f.remote_ids();
    let server_of = |r: &str| servers.get(r).map(|ip| format!("{ip}:{SERVE_PORT}"));
    // Small packets first: the connections check, and the baseline the
    // MTU check is judged against.
    if checks.contains(&Check::Connections) || checks.contains(&Check::Mtu) {
        for r in &remotes {
            if let Some(hc) = f.endpoint_of(r).and_then(cluster::health_check) {
                tasks.push(task(
                    format!("gw/{r}"),
                    Probe::Echo {
                        target: hc.to_string(),
                        count: ECHOES,
                        interval_ms: 20,
                        timeout_ms: 1000,
                        size: 0,
                        format: EchoFormat::Health,
                    },
                ));
            }
            if let Some(target) = server_of(r) {
                tasks.push(task(
                    format!("pod/{r}"),
                    Probe::Echo {
                        target,
                        count: ECHOES,
                        interval_ms: 20,
                        timeout_ms: 1000,
                        size: 64,
                        format: EchoFormat::Raw,
                    },
                ));
            }
        }
    }
    if checks.contains(&Check::Mtu) {
        for r in &remotes {
            let hc = f
                .endpoint_of(r)
                .and_then(cluster::health_check)
                .map(|a| a.to_string());
            if let Some(target) = server_of(r).or(hc) {
                tasks.push(task(
                    format!("mtu-big/{r}"),
                    Probe::Pmtu {
                        target,
                        size: 0,
                        timeout_ms: 1000,
                    },
                ));
            }
            if let Some(target) = server_of(r) {
                let mtu = evaluate::path_cable_mtu(f, r).unwrap_or(1400) as usize;
                tasks.push(task(
                    format!("mtu-fit/{r}"),
                    Probe::Echo {
                        target: target.clone(),
                        count: 3,
                        interval_ms: 20,
                        timeout_ms: 1000,
                        size: mtu.saturating_sub(28),
                        format: EchoFormat::Raw,
                    },
                ));
                tasks.push(task(
                    format!("mtu-tcp/{r}"),
                    Probe::Tcp {
                        target,
                        bytes: 256 * 1024,
                        timeout_ms: 3000,
                    },
                ));
            }
        }
    }
    if checks.contains(&Check::ServiceDiscovery) {
        let domain = f.clusterset_domain();
        tasks.push(task(
            "dns-version".into(),
            Probe::Dns {
                name: format!("dns-version.{domain}"),
                record: DnsRecord::Txt,
                timeout_ms: 1000,
                attempts: 2,
                retry_ms: 0,
            },
        ));
        tasks.push(task(
            "dns-nx".into(),
            Probe::Dns {
                name: format!("ferry-nx-{run}.ferry-system.svc.{domain}"),
                record: DnsRecord::A,
                timeout_ms: 2000,
                attempts: 1,
                retry_ms: 0,
            },
        ));
        let names = evaluate::resolvable_imports(f);
        let names = names.iter().take(evaluate::MAX_IMPORTS);
        for si in names {
            let (Some(ns), Some(n)) = (&si.metadata.namespace, &si.metadata.name) else {
                continue;
            };
            tasks.push(task(
                format!("dns/{ns}/{n}"),
                Probe::Dns {
                    name: evaluate::import_name(si, &domain),
                    record: DnsRecord::A,
                    timeout_ms: 1000,
                    attempts: 2,
                    retry_ms: 0,
                },
            ));
        }
    }
    tasks
}

/// Plans, starts and reads every test pod of every cluster.
async fn probe_all(
    reads: &[&Read],
    checks: &[Check],
    run: &str,
    timeout: Duration,
    window: Duration,
    cleanup: &Cleanup,
    progress: &(dyn Fn(&str) + Sync),
) -> Vec<Measured> {
    let runs: Vec<ProbeRun> = reads
        .iter()
        .map(|r| ProbeRun {
            id: run.to_string(),
            image: r.facts.image(),
            timeout,
            cleanup: cleanup.clone(),
        })
        .collect();
    let mut measured: Vec<Measured> = reads.iter().map(|_| Measured::default()).collect();

    // RBAC for the pods' reports.
    let rbac = futures::future::join_all(reads.iter().map(|r| pods::ensure_rbac(&r.target))).await;
    for (m, r) in measured.iter_mut().zip(rbac) {
        if let Err(e) = r {
            m.setup_error = Some(format!("cannot set up test pods: {}", message(&e)));
        }
    }
    let ids: Vec<String> = reads.iter().map(|r| r.facts.id().to_string()).collect();
    let usable = |i: usize, m: &[Measured]| m[i].setup_error.is_none();

    // Phase 1: servers (when clusters probe each other) and sniffers.
    let pairwise =
        ids.len() >= 2 && (checks.contains(&Check::Connections) || checks.contains(&Check::Mtu));
    let firewall = checks.contains(&Check::Firewall);
    let senders_possible: Vec<bool> = reads
        .iter()
        .enumerate()
        .map(|(i, r)| usable(i, &measured) && r.facts.active_gateway_node().is_some())
        .collect();
    let phase1 = futures::future::join_all(reads.iter().enumerate().map(|(i, r)| {
        let run = &runs[i];
        let f = &r.facts;
        let enabled = usable(i, &measured);
        let ids = &ids;
        let senders_possible = &senders_possible;
        async move {
            let mut server = None;
            let mut sniffer = None;
            if !enabled {
                return (server, sniffer);
            }
            let server_fut = async {
                if !pairwise {
                    return None;
                }
                let (node, _) = f.workload_node()?;
                let plan = PodPlan {
                    name: run.pod_name(Role::Server, "0"),
                    node: node.clone(),
                    role: Role::Server,
                    tasks: Vec::new(),
                };
                Some(start_server(run, &r.target, plan).await)
            };
            let sniffer_fut = async {
                if !firewall {
                    return None;
                }
                let node = f.active_gateway_node()?;
                let local = f.endpoint_of(f.id())?;
                let port = cluster::cable_port(local);
                let tasks: Vec<Task> = f
                    .remote_ids()
                    .into_iter()
                    .map(|rid| {
                        let marked = ids
                            .iter()
                            .position(|x| *x == rid)
                            .is_some_and(|j| senders_possible[j]);
                        let probe = if marked {
                            Probe::Sniff {
                                port,
                                marker: Some(marker(&run.id, &rid, f.id())),
                                from: Vec::new(),
                                want: 3,
                                timeout_ms: 4000,
                            }
                        } else {
                            Probe::Sniff {
                                port,
                                marker: None,
                                from: f
                                    .endpoint_of(&rid)
                                    .map(cluster::gateway_addresses)
                                    .unwrap_or_default(),
                                want: 3,
                                timeout_ms: u64::try_from(window.as_millis()).unwrap_or(2000),
                            }
                        };
                        task(format!("fw-in/{rid}"), probe)
                    })
                    .collect();
                let plan = PodPlan {
                    name: run.pod_name(Role::Sniffer, "0"),
                    node: node.clone(),
                    role: Role::Sniffer,
                    tasks,
                };
                let started = async {
                    let c = run.create_one(&r.target, &plan).await?;
                    run.wait_running(&c).await?;
                    Ok::<Created, Error>(c)
                };
                Some((node, started.await))
            };
            let (sv, sn) = tokio::join!(server_fut, sniffer_fut);
            server = sv;
            sniffer = sn;
            (server, sniffer)
        }
    }))
    .await;
    let mut servers: BTreeMap<String, String> = BTreeMap::new();
    let mut sniffers: Vec<Option<(String, std::result::Result<Created, String>)>> = Vec::new();
    for (i, (server, sniffer)) in phase1.into_iter().enumerate() {
        match server {
            Some(Ok((node, ip))) => {
                servers.insert(ids[i].clone(), ip.clone());
                measured[i].server = Some((node, ip));
            }
            Some(Err(e)) => {
                measured[i].notes.push(Line::with(
                    Check::Connections.name(),
                    Status::Warn,
                    format!(
                        "no echo server could run in {} ({}): other clusters probe its gateway only",
                        ids[i],
                        message(&e)
                    ),
                    "see the test pod error",
                ));
            }
            None => {}
        }
        sniffers.push(sniffer.map(|(n, r)| (n, r.map_err(|e| message(&e)))));
    }

    // Phase 2: clients and senders; then every report.
    if checks.iter().any(|c| c.is_active()) {
        progress(&format!(
            "probing from test pods in {} (run {run})",
            ids.join(", ")
        ));
    }
    let phase2 = futures::future::join_all(reads.iter().enumerate().map(|(i, r)| {
        let run = &runs[i];
        let f = &r.facts;
        let enabled = usable(i, &measured);
        let servers = &servers;
        let sniffer = sniffers[i].clone();
        let ids = &ids;
        let sniffers_ref = &sniffers;
        async move {
            if !enabled {
                return (None, None, None, Vec::new());
            }
            let mut notes = Vec::new();
            let notes_ref = &mut notes;
            let client_fut = async {
                let wants_client = checks.iter().any(|c| {
                    matches!(c, Check::Connections | Check::Mtu | Check::ServiceDiscovery)
                });
                if !wants_client {
                    return None;
                }
                let Some((node, note)) = f.workload_node() else {
                    return Some((
                        "-".to_string(),
                        Err(format!("{} has no ready node to run a test pod on", f.id())),
                    ));
                };
                let tasks = client_tasks(f, checks, servers, &run.id);
                let plan = PodPlan {
                    name: run.pod_name(Role::Client, "0"),
                    node: node.clone(),
                    role: Role::Client,
                    tasks,
                };
                if let Some(note) = note {
                    notes_ref.push(Line::with(
                        Check::Connections.name(),
                        Status::Warn,
                        note,
                        "traffic from ordinary nodes also crosses the route agent's vx-ferry, which this run could not test: add a worker node",
                    ));
                }
                let res = async {
                    let c = run.create_one(&r.target, &plan).await?;
                    run.wait_report(&c).await
                }
                .await
                .map_err(|e| message(&e));
                Some((node, res))
            };
            let sender_fut = async {
                if !firewall {
                    return None;
                }
                let node = f.active_gateway_node()?;
                let tasks: Vec<Task> = ids
                    .iter()
                    .enumerate()
                    .filter(|(j, rid)| *rid != f.id() && sniffers_ref[*j].is_some())
                    .filter_map(|(_, rid)| {
                        let ep = f.endpoint_of(rid)?;
                        let ip = f
                            .connection_to(rid)
                            .and_then(|c| c.using_ip)
                            .or_else(|| cluster::gateway_addresses(ep).first().copied())?;
                        Some(task(
                            format!("fw-out/{rid}"),
                            Probe::Send {
                                target: std::net::SocketAddr::new(ip, cluster::cable_port(ep))
                                    .to_string(),
                                marker: marker(&run.id, f.id(), rid),
                                count: 10,
                                interval_ms: 100,
                            },
                        ))
                    })
                    .collect();
                if tasks.is_empty() {
                    return None;
                }
                let plan = PodPlan {
                    name: run.pod_name(Role::Sender, "0"),
                    node,
                    role: Role::Sender,
                    tasks,
                };
                let res = async {
                    let c = run.create_one(&r.target, &plan).await?;
                    run.wait_report(&c).await
                }
                .await
                .map_err(|e| message(&e));
                Some(res)
            };
            let sniffer_fut = async {
                let (node, created) = sniffer?;
                let res = match created {
                    Ok(c) => run.wait_report(&c).await.map_err(|e| message(&e)),
                    Err(e) => Err(e),
                };
                Some((node, res))
            };
            let (client, sender, sniffed) = tokio::join!(client_fut, sender_fut, sniffer_fut);
            (client, sender, sniffed, notes)
        }
    }))
    .await;
    for (m, (client, sender, sniffed, notes)) in measured.iter_mut().zip(phase2) {
        m.client = client;
        m.sender = sender;
        m.sniffer = sniffed;
        m.notes.extend(notes);
    }
    measured
}

/// Creates a server pod and waits until it is ready: its node and IP.
async fn start_server(run: &ProbeRun, target: &Target, plan: PodPlan) -> Result<(String, String)> {
    let c = run.create_one(target, &plan).await?;
    let ip = run.wait_ready(&c).await?;
    Ok((plan.node, ip))
}

#[cfg(test)]
mod tests;
