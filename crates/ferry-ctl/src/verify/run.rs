//! The connectivity and service-discovery parts of `verify`, step by step:
//! a server pod per cluster, the exported test Services, one client pod per
//! cluster probing every other cluster, and the verdicts per pair.

use std::ops::ControlFlow::{Break, Continue};
use std::time::{Duration, Instant};

use ferry_api::ServiceImport;
use ferry_api::labels::SYSTEM_NAMESPACE;
use kube::Api;

use super::judge;
use super::member::{Member, View, message, service_name};
use super::part::Part;
use crate::check::{Line, Status};
use crate::pods::{self, PodPlan, Role};
use crate::poll::poll_until;
use crate::probe::SERVE_PORT;
use crate::probe::spec::{DnsRecord, EchoFormat, Probe, Task};
use crate::show::render::fmt_duration;
use crate::{Error, Result};

/// RBAC and one echo server per cluster, on an ordinary node.
pub(super) async fn start_servers(members: &mut [Member]) {
    let servers = futures::future::join_all(members.iter().map(start_server)).await;
    for (m, s) in members.iter_mut().zip(servers) {
        m.server = s.map_err(|e| message(&e));
    }
}

async fn start_server(m: &Member) -> Result<(String, String)> {
    pods::ensure_rbac(&m.target).await?;
    let (node, _) = m.facts.workload_node().ok_or_else(|| Error::ProbePod {
        cluster: m.target.label.clone(),
        pod: "(server)".into(),
        reason: "no ready node to run it on".into(),
        image: m.run.image.clone(),
    })?;
    let ip = m.run.start_server(&m.target, &node).await?;
    Ok((node, ip))
}

/// The test Services, exported, and visible in every other cluster: a
/// failing line for each import that did not show up.
pub(super) async fn export_services(members: &mut [Member], lines: &mut Vec<Line>) {
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
    let members = &*members;
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

/// Waits until `other` imports `name` from `from` with a ready endpoint.
async fn wait_imported(
    other: &Member,
    name: String,
    from: String,
    timeout: Duration,
) -> std::result::Result<Duration, (String, String)> {
    let started = Instant::now();
    let api: Api<ServiceImport> = Api::namespaced(other.target.client.clone(), SYSTEM_NAMESPACE);
    let (api, name_ref, from_ref) = (&api, &name, &from);
    let imported = poll_until(
        started + timeout,
        Duration::from_millis(100),
        move || async move {
            let found = matches!(api.get_opt(name_ref).await, Ok(Some(si)) if si
                .status
                .as_ref()
                .is_some_and(|s| s.clusters.iter().any(|c| &c.cluster == from_ref)));
            if found {
                Break(started.elapsed())
            } else {
                Continue(())
            }
        },
    )
    .await;
    imported.map_err(|()| {
        (
            format!(
                "{from} → {}: the test Service {SYSTEM_NAMESPACE}/{name} exported from {from} was not imported in {} within {}",
                other.facts.id(),
                other.facts.id(),
                fmt_duration(timeout)
            ),
            format!(
                "see `ferry show services` in both clusters and `kubectl -n {SYSTEM_NAMESPACE} logs deployment/ferry-agent`; the agents sync through the broker"
            ),
        )
    })
}

/// The probes the client pod of member `i` runs against every other
/// member, and the node it runs on; `None` without a node for it.
pub(super) fn client_plan(
    members: &[Member],
    i: usize,
    parts: &[Part],
    domain: &str,
) -> Option<(String, Vec<Task>)> {
    let m = &members[i];
    let (node, _) = m.facts.workload_node()?;
    let mut tasks = Vec::new();
    for (j, o) in members.iter().enumerate() {
        if i == j {
            continue;
        }
        let oid = o.facts.id();
        if parts.contains(&Part::Connectivity)
            && let Ok((_, ip)) = &o.server
        {
            tasks.extend(connectivity_tasks(oid, ip));
        }
        if parts.contains(&Part::ServiceDiscovery)
            && let Some(Ok((name, ip))) = &o.service
        {
            let fqdn = format!("{name}.{SYSTEM_NAMESPACE}.svc.{domain}");
            let budget = u64::try_from(m.run.timeout.as_millis()).unwrap_or(60_000);
            tasks.extend(service_tasks(oid, &fqdn, ip, budget));
        }
    }
    Some((node, tasks))
}

/// UDP echoes and a TCP echo to cluster `oid`'s server pod at `ip`.
fn connectivity_tasks(oid: &str, ip: &str) -> [Task; 2] {
    let target = format!("{ip}:{SERVE_PORT}");
    [
        Task {
            id: format!("udp/{oid}"),
            probe: Probe::Echo {
                target: target.clone(),
                count: 5,
                interval_ms: 20,
                timeout_ms: 1000,
                size: 64,
                format: EchoFormat::Raw,
            },
        },
        Task {
            id: format!("tcp/{oid}"),
            probe: Probe::Tcp {
                target,
                bytes: 64 * 1024,
                timeout_ms: 3000,
            },
        },
    ]
}

/// Cluster `oid`'s test Service: its name resolved, TCP to its ClusterIP
/// `ip` and to its name; `budget_ms` bounds the waits for the import.
fn service_tasks(oid: &str, fqdn: &str, ip: &str, budget_ms: u64) -> [Task; 3] {
    [
        Task {
            id: format!("dns/{oid}"),
            probe: Probe::Dns {
                name: fqdn.to_string(),
                record: DnsRecord::A,
                timeout_ms: 1000,
                attempts: 2,
                retry_ms: budget_ms.min(15_000),
            },
        },
        Task {
            id: format!("svc-ip/{oid}"),
            probe: Probe::Tcp {
                target: format!("{ip}:{SERVE_PORT}"),
                bytes: 16 * 1024,
                timeout_ms: 5000,
            },
        },
        Task {
            id: format!("svc-name/{oid}"),
            probe: Probe::Tcp {
                target: format!("{fqdn}.:{SERVE_PORT}"),
                bytes: 16 * 1024,
                timeout_ms: budget_ms.min(15_000),
            },
        },
    ]
}

/// Runs each member's client pod (where it has a plan) and keeps its report.
pub(super) async fn run_clients(members: &mut [Member], plans: Vec<Option<(String, Vec<Task>)>>) {
    let results =
        futures::future::join_all(members.iter().zip(plans).map(|(m, plan)| async move {
            let (node, tasks) = plan?;
            let plan = PodPlan {
                name: m.run.pod_name(Role::Client, "0"),
                node: node.clone(),
                role: Role::Client,
                tasks,
            };
            let r = m
                .run
                .run_to_report(&m.target, &plan)
                .await
                .map_err(|e| message(&e));
            Some((node, r))
        }))
        .await;
    for (m, r) in members.iter_mut().zip(results) {
        m.client = r;
    }
}

/// The verdicts of every ordered pair of members.
pub(super) fn judge_pairs(members: &[Member], parts: &[Part], domain: &str) -> Vec<Line> {
    let mut lines = Vec::new();
    let views: Vec<View<'_>> = members.iter().map(View::of).collect();
    for (i, a) in views.iter().enumerate() {
        for (j, b) in views.iter().enumerate() {
            if i == j {
                continue;
            }
            if parts.contains(&Part::Connectivity) {
                lines.extend(judge::connectivity(a, b));
            }
            if parts.contains(&Part::ServiceDiscovery) {
                lines.extend(judge::service_discovery(a, b, domain));
            }
        }
    }
    lines
}
