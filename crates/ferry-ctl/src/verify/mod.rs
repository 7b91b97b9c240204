//! `ferry verify`: end-to-end checks between clusters with temporary test
//! pods, every one of them removed afterwards — pod to pod both ways from
//! non-gateway nodes (UDP and TCP), a remote Service by its ClusterIP and
//! by its clusterset name (exported for the test, then unexported), and
//! gateway failover: where a cluster has two gateway nodes, its active
//! gateway pod is restarted under traffic and the traffic must resume.
//!
//! [`judge`] turns what was measured into lines (pure); [`verify`] runs
//! the pods: `run` the connectivity and service-discovery steps, `failover`
//! the gateway restart.

mod failover;
pub mod judge;
mod member;
mod part;
mod run;

use self::member::Member;
pub use self::member::View;
pub use self::part::{Options, Part};
use crate::Result;
use crate::check::{Findings, Group, Line};
use crate::cluster;
use crate::pods::{self, Cleanup, ProbeRun};
use crate::target::TargetSpec;

/// Runs `opts.parts` between every pair of clusters of `specs` (at least
/// two). Test objects are registered with `cleanup` and removed before
/// this returns.
pub async fn verify(
    specs: &[TargetSpec],
    opts: &Options,
    cleanup: &Cleanup,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Findings> {
    crate::target::require_two(specs, "verify checks between clusters")?;
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
            Err(e) => findings.groups.push(Group::unreadable(spec, &e)),
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

/// Runs every part of `opts` in order; their lines go to `lines`.
async fn run_parts(
    members: &mut [Member],
    opts: &Options,
    lines: &mut Vec<Line>,
    progress: &(dyn Fn(&str) + Sync),
) {
    let parts = opts.parts.as_slice();
    run::start_servers(members).await;
    let domain = members[0].facts.clusterset_domain();
    if parts.contains(&Part::ServiceDiscovery) {
        run::export_services(members, lines).await;
    }
    if parts.contains(&Part::Connectivity) || parts.contains(&Part::ServiceDiscovery) {
        progress("probing pod to pod and pod to service");
        let plans = (0..members.len())
            .map(|i| run::client_plan(members, i, parts, &domain))
            .collect();
        run::run_clients(members, plans).await;
        lines.extend(run::judge_pairs(members, parts, &domain));
    }
    if parts.contains(&Part::Failover) {
        for i in 0..members.len() {
            let peer = (i + 1) % members.len();
            let line = failover::failover(members, i, peer, opts.failover_budget, progress).await;
            lines.push(line);
        }
    }
}

#[cfg(test)]
mod tests;
