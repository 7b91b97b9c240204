//! The failover part of `verify`: where a cluster has two gateway nodes,
//! its active gateway pod is restarted while a pod streams UDP to another
//! cluster, and the traffic must resume.

use std::ops::ControlFlow::{Break, Continue};
use std::time::{Duration, Instant};

use ferry_api::labels::{self, SYSTEM_NAMESPACE};
use ferry_api::{ConnectionStatus, HaStatus};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, ListParams};

use super::judge;
use super::member::{Member, message};
use super::part::Part;
use crate::check::{Line, Status};
use crate::cluster;
use crate::pods::{Created, PodPlan, Role};
use crate::poll::poll_until;
use crate::probe::spec::{Probe, StreamOutcome, Task};
use crate::probe::{Outcome, SERVE_PORT};

/// A failing failover line.
fn fail(message: String, hint: impl Into<String>) -> Line {
    Line::with(Part::Failover.name(), Status::Fail, message, hint)
}

/// Restarts the active gateway pod of member `i` while a pod there streams
/// UDP to member `peer`'s server; the traffic must resume.
pub(super) async fn failover(
    members: &[Member],
    i: usize,
    peer: usize,
    budget: Duration,
    progress: &(dyn Fn(&str) + Sync),
) -> Line {
    match restart_under_traffic(&members[i], &members[peer], budget, progress).await {
        Ok(line) | Err(line) => line,
    }
}

/// [`failover`]'s steps; `Err` is a line for a step that could not be done.
async fn restart_under_traffic(
    m: &Member,
    p: &Member,
    budget: Duration,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Line, Line> {
    let id = m.facts.id();
    let (peer_ip, node) = preconditions(m, p)?;
    // Who is active now (read fresh: earlier steps took time).
    let Ok(now) = cluster::read_target(&m.target).await else {
        return Err(fail(
            format!("{id}: cannot read its gateways"),
            "see the connectivity lines",
        ));
    };
    let Some(old) = now.active_gateway_node() else {
        return Err(fail(
            format!("{id} has no active gateway to restart"),
            "run `ferry diagnose deployment`",
        ));
    };
    progress(&format!(
        "failover: restarting {id}'s active gateway pod on {old} under traffic"
    ));
    let c = start_stream(m, &node, peer_ip, budget).await?;
    // Let traffic flow before the restart.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let restarted = restart_gateway_pod(m, &old).await?;
    let takeover = wait_takeover(m, p.facts.id(), &old, restarted, budget);
    let (report, took) = tokio::join!(m.run.wait_report(&c), takeover);
    let stream = match report {
        Ok(r) => stream_outcome(id, r.get("stream"))?,
        Err(e) => {
            return Err(fail(
                format!("{id}: {}", message(&e)),
                "the streaming pod could not report (the API may be unreachable from it during the failover)",
            ));
        }
    };
    Ok(judge::failover(
        id,
        p.facts.id(),
        &node,
        &old,
        took,
        &stream,
        budget,
    ))
}

/// Two gateway nodes in `m`, a server pod in `p` to stream to (its IP) and
/// a node in `m` for the streaming pod.
fn preconditions<'a>(m: &Member, p: &'a Member) -> Result<(&'a str, String), Line> {
    let id = m.facts.id();
    let gateways = m.facts.gateway_nodes();
    if gateways.len() < 2 {
        return Err(Line::with(
            Part::Failover.name(),
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
        ));
    }
    let Ok((_, peer_ip)) = &p.server else {
        return Err(fail(
            format!("{id}: no server pod in {} to stream to", p.facts.id()),
            "see the connectivity lines",
        ));
    };
    let Some((node, _)) = m.facts.workload_node() else {
        return Err(fail(
            format!("{id}: no ready node for the streaming pod"),
            "see `kubectl get nodes`",
        ));
    };
    Ok((peer_ip, node))
}

/// Starts the pod on `node` that streams UDP to `peer_ip` for the whole
/// budget, and waits until it runs.
async fn start_stream(
    m: &Member,
    node: &str,
    peer_ip: &str,
    budget: Duration,
) -> Result<Created, Line> {
    let id = m.facts.id();
    let budget_ms = u64::try_from(budget.as_millis()).unwrap_or(30_000);
    let plan = PodPlan {
        name: m.run.pod_name(Role::Client, "failover"),
        node: node.to_string(),
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
    m.run
        .start_running(&m.target, &plan)
        .await
        .map_err(|e| fail(format!("{id}: {}", message(&e)), "see the test pod error"))
}

/// Deletes the ferry-gateway pod on node `old`; returns when.
async fn restart_gateway_pod(m: &Member, old: &str) -> Result<Instant, Line> {
    let id = m.facts.id();
    let pods_api: Api<Pod> = Api::namespaced(m.target.client.clone(), SYSTEM_NAMESPACE);
    let lp = ListParams::default().labels(&format!("{}=ferry-gateway", labels::APP_NAME));
    let gw_pod = pods_api.list(&lp).await.ok().and_then(|l| {
        l.items.into_iter().find(|p| {
            p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(old)
                && p.metadata.deletion_timestamp.is_none()
        })
    });
    let Some(gw_name) = gw_pod.and_then(|p| p.metadata.name) else {
        return Err(fail(
            format!("{id}: no ferry-gateway pod on {old}"),
            "run `ferry diagnose deployment`",
        ));
    };
    let restarted = Instant::now();
    if let Err(e) = pods_api.delete(&gw_name, &DeleteParams::default()).await {
        return Err(fail(
            format!("{id}: cannot restart gateway pod {gw_name}: {e}"),
            "the kubeconfig needs the right to delete pods in ferry-system",
        ));
    }
    Ok(restarted)
}

/// Who takes over from `old`, and when its cable to `peer_id` is up again;
/// `None` when none is within `budget`.
async fn wait_takeover(
    m: &Member,
    peer_id: &str,
    old: &str,
    restarted: Instant,
    budget: Duration,
) -> Option<(String, Duration)> {
    let api: Api<ferry_api::Gateway> = Api::namespaced(m.target.client.clone(), SYSTEM_NAMESPACE);
    let api = &api;
    let found = poll_until(
        restarted + budget,
        Duration::from_millis(100),
        move || async move {
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
                    return Break((g.spec.hostname, restarted.elapsed()));
                }
            }
            Continue(())
        },
    )
    .await;
    found.ok()
}

/// The stream's outcome from the pod's report entry.
fn stream_outcome(id: &str, reported: Option<&Outcome>) -> Result<StreamOutcome, Line> {
    match reported {
        Some(Outcome::Stream(s)) => Ok(s.clone()),
        Some(Outcome::Error { message }) => Err(fail(
            format!("{id}: the streaming pod failed: {message}"),
            "see the connectivity lines",
        )),
        _ => Ok(StreamOutcome::default()),
    }
}
