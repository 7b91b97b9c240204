//! The test pods of `diagnose`, in two phases: first the listeners (an echo
//! server per cluster when clusters probe each other, a sniffer on each
//! active gateway for the firewall check), then the probers (a client pod
//! on an ordinary node, a sender on each active gateway) and every report.

use std::collections::BTreeMap;
use std::time::Duration;

use super::checks::Check;
use super::tasks;
use crate::check::{Line, Status};
use crate::cluster::Facts;
use crate::explain::explain_error;
use crate::pods::{self, Cleanup, Created, PodPlan, ProbeRun, Role};
use crate::probe::Report;
use crate::target::Target;
use crate::{Error, Result};

/// A cluster that could be read.
pub(super) struct Read {
    pub target: Target,
    pub facts: Facts,
}

/// What the test pods of one cluster measured.
#[derive(Default)]
pub(super) struct Measured {
    /// Node and report (or why none) of the client pod.
    pub client: Option<(String, std::result::Result<Report, String>)>,
    /// Node and report (or why none) of the host-network client pod.
    pub host_client: Option<(String, std::result::Result<Report, String>)>,
    /// Node and report of the sniffer on the active gateway.
    pub sniffer: Option<(String, std::result::Result<Report, String>)>,
    /// Report of the sender on the active gateway.
    pub sender: Option<std::result::Result<Report, String>>,
    /// The server pod's node and IP.
    pub server: Option<(String, String)>,
    /// Why the probes could not even start here.
    pub setup_error: Option<String>,
    /// Findings about where the pods had to run.
    pub notes: Vec<Line>,
}

fn message(e: &Error) -> String {
    explain_error(e).message
}

/// What every cluster's pods need to know of the whole run.
struct Plan<'a> {
    checks: &'a [Check],
    /// The ids of the clusters diagnosed, in the order of `reads`.
    ids: Vec<String>,
    /// How long a passive sniff watches.
    window: Duration,
}

impl Plan<'_> {
    /// Clusters probe each other's echo servers.
    fn pairwise(&self) -> bool {
        self.ids.len() >= 2
            && [Check::Connections, Check::HostNetwork, Check::Mtu]
                .iter()
                .any(|c| self.checks.contains(c))
    }

    fn firewall(&self) -> bool {
        self.checks.contains(&Check::Firewall)
    }
}

/// A sniffer pod: its node and the started pod (or why it did not start).
type Sniffer = Option<(String, std::result::Result<Created, String>)>;

/// What phase 1 started in one cluster: its echo server (node and IP) and
/// its sniffer.
type Listeners = (Option<Result<(String, String)>>, Sniffer);

/// Plans, starts and reads every test pod of every cluster.
pub(super) async fn probe_all(
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
    let plan = Plan {
        checks,
        ids: reads.iter().map(|r| r.facts.id().to_string()).collect(),
        window,
    };
    let mut measured = set_up_rbac(reads).await;

    // Phase 1: servers (when clusters probe each other) and sniffers.
    let senders_possible: Vec<bool> = reads
        .iter()
        .zip(&measured)
        .map(|(r, m)| m.setup_error.is_none() && r.facts.active_gateway_node().is_some())
        .collect();
    let phase1 =
        futures::future::join_all(reads.iter().zip(&runs).zip(&measured).map(|((r, run), m)| {
            let enabled = m.setup_error.is_none();
            start_listeners(r, run, enabled, &plan, &senders_possible)
        }))
        .await;
    let (servers, sniffers) = record_listeners(&mut measured, &plan.ids, phase1);

    // Phase 2: clients and senders; then every report.
    if checks.iter().any(|c| c.is_active()) {
        progress(&format!(
            "probing from test pods in {} (run {run})",
            plan.ids.join(", ")
        ));
    }
    let phase2 = futures::future::join_all(reads.iter().enumerate().map(|(i, r)| {
        let enabled = measured[i].setup_error.is_none();
        probe_from(r, &runs[i], enabled, &plan, &servers, &sniffers, i)
    }))
    .await;
    for (m, ((client, host_client), sender, sniffed, notes)) in measured.iter_mut().zip(phase2) {
        m.client = client;
        m.host_client = host_client;
        m.sender = sender;
        m.sniffer = sniffed;
        m.notes.extend(notes);
    }
    measured
}

/// RBAC for the pods' reports; a cluster where it fails gets no test pods.
async fn set_up_rbac(reads: &[&Read]) -> Vec<Measured> {
    let rbac = futures::future::join_all(reads.iter().map(|r| pods::ensure_rbac(&r.target))).await;
    rbac.into_iter()
        .map(|r| Measured {
            setup_error: r
                .err()
                .map(|e| format!("cannot set up test pods: {}", message(&e))),
            ..Measured::default()
        })
        .collect()
}

/// Phase 1 in one cluster: its echo server and its sniffer, where wanted.
async fn start_listeners(
    r: &Read,
    run: &ProbeRun,
    enabled: bool,
    plan: &Plan<'_>,
    senders_possible: &[bool],
) -> Listeners {
    if !enabled {
        return (None, None);
    }
    let server = async {
        if !plan.pairwise() {
            return None;
        }
        let (node, _) = r.facts.workload_node()?;
        Some(
            run.start_server(&r.target, &node)
                .await
                .map(|ip| (node, ip)),
        )
    };
    let sniffer = async {
        if !plan.firewall() {
            return None;
        }
        start_sniffer(r, run, plan, senders_possible).await
    };
    tokio::join!(server, sniffer)
}

/// The sniffer on `r`'s active gateway node, running; `None` without an
/// active gateway or a local Endpoint.
async fn start_sniffer(
    r: &Read,
    run: &ProbeRun,
    plan: &Plan<'_>,
    senders_possible: &[bool],
) -> Sniffer {
    let f = &r.facts;
    let node = f.active_gateway_node()?;
    let local = f.endpoint_of(f.id())?;
    let sends = |rid: &str| {
        plan.ids
            .iter()
            .position(|x| x == rid)
            .is_some_and(|j| senders_possible[j])
    };
    let pod = PodPlan {
        name: run.pod_name(Role::Sniffer, "0"),
        node: node.clone(),
        role: Role::Sniffer,
        tasks: tasks::sniffer_tasks(
            f,
            &run.id,
            crate::cluster::cable_port(local),
            sends,
            plan.window,
        ),
    };
    let started = run
        .start_running(&r.target, &pod)
        .await
        .map_err(|e| message(&e));
    Some((node, started))
}

/// Keeps phase 1's servers in `measured` (a server that did not start is a
/// warning) and returns the server IPs by cluster id and the sniffers.
fn record_listeners(
    measured: &mut [Measured],
    ids: &[String],
    phase1: Vec<Listeners>,
) -> (BTreeMap<String, String>, Vec<Sniffer>) {
    let mut servers: BTreeMap<String, String> = BTreeMap::new();
    let mut sniffers = Vec::new();
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
        sniffers.push(sniffer);
    }
    (servers, sniffers)
}

/// A pod's node and its report (or why there is none).
type NodeReport = Option<(String, std::result::Result<Report, String>)>;

/// What phase 2 brings back from one cluster: client and host-network
/// client, sender, sniffer, notes.
type Probed = (
    (NodeReport, NodeReport),
    Option<std::result::Result<Report, String>>,
    NodeReport,
    Vec<Line>,
);

/// Phase 2 in cluster `i` (`r`): its client and sender pods, and the
/// reports of all three.
async fn probe_from(
    r: &Read,
    run: &ProbeRun,
    enabled: bool,
    plan: &Plan<'_>,
    servers: &BTreeMap<String, String>,
    sniffers: &[Sniffer],
    i: usize,
) -> Probed {
    if !enabled {
        return ((None, None), None, None, Vec::new());
    }
    let sniffer = async {
        let (node, created) = sniffers[i].clone()?;
        let res = match created {
            Ok(c) => run.wait_report(&c).await.map_err(|e| message(&e)),
            Err(e) => Err(e),
        };
        Some((node, res))
    };
    let ((client, note), host_client, sender, sniffed) = tokio::join!(
        run_client(r, run, plan, servers),
        run_host_client(r, run, plan, servers),
        run_sender(r, run, plan, sniffers),
        sniffer
    );
    (
        (client, host_client),
        sender,
        sniffed,
        note.into_iter().collect(),
    )
}

/// The host-network client on the same ordinary node as the client pod.
async fn run_host_client(
    r: &Read,
    run: &ProbeRun,
    plan: &Plan<'_>,
    servers: &BTreeMap<String, String>,
) -> NodeReport {
    if !plan.checks.contains(&Check::HostNetwork) {
        return None;
    }
    let f = &r.facts;
    let Some((node, _)) = f.workload_node() else {
        return Some((
            "-".to_string(),
            Err(format!("{} has no ready node to run a test pod on", f.id())),
        ));
    };
    let pod = PodPlan {
        name: run.pod_name(Role::HostClient, "0"),
        node: node.clone(),
        role: Role::HostClient,
        tasks: tasks::host_tasks(f, servers),
    };
    let res = run
        .run_to_report(&r.target, &pod)
        .await
        .map_err(|e| message(&e));
    Some((node, res))
}

/// The client pod on an ordinary node, and a note when there is none.
async fn run_client(
    r: &Read,
    run: &ProbeRun,
    plan: &Plan<'_>,
    servers: &BTreeMap<String, String>,
) -> (
    Option<(String, std::result::Result<Report, String>)>,
    Option<Line>,
) {
    let f = &r.facts;
    let wants_client = plan
        .checks
        .iter()
        .any(|c| matches!(c, Check::Connections | Check::Mtu | Check::ServiceDiscovery));
    if !wants_client {
        return (None, None);
    }
    let Some((node, note)) = f.workload_node() else {
        return (
            Some((
                "-".to_string(),
                Err(format!("{} has no ready node to run a test pod on", f.id())),
            )),
            None,
        );
    };
    let pod = PodPlan {
        name: run.pod_name(Role::Client, "0"),
        node: node.clone(),
        role: Role::Client,
        tasks: tasks::client_tasks(f, plan.checks, servers, &run.id),
    };
    let note = note.map(|note| {
        Line::with(
            Check::Connections.name(),
            Status::Warn,
            note,
            "traffic from ordinary nodes also crosses the route agent's vx-ferry, which this run could not test: add a worker node",
        )
    });
    let res = run
        .run_to_report(&r.target, &pod)
        .await
        .map_err(|e| message(&e));
    (Some((node, res)), note)
}

/// The sender on `r`'s active gateway node, to every cluster with a
/// sniffer; `None` when there is nothing to send.
async fn run_sender(
    r: &Read,
    run: &ProbeRun,
    plan: &Plan<'_>,
    sniffers: &[Sniffer],
) -> Option<std::result::Result<Report, String>> {
    if !plan.firewall() {
        return None;
    }
    let f = &r.facts;
    let node = f.active_gateway_node()?;
    let sniffed = plan
        .ids
        .iter()
        .zip(sniffers)
        .filter(|(_, s)| s.is_some())
        .map(|(id, _)| id);
    let tasks = tasks::sender_tasks(f, &run.id, sniffed);
    if tasks.is_empty() {
        return None;
    }
    let pod = PodPlan {
        name: run.pod_name(Role::Sender, "0"),
        node,
        role: Role::Sender,
        tasks,
    };
    Some(
        run.run_to_report(&r.target, &pod)
            .await
            .map_err(|e| message(&e)),
    )
}
