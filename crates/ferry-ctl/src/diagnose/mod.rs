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

mod checks;
pub mod evaluate;
mod probing;
mod tasks;

use std::time::Duration;

pub use self::checks::{Check, Options};
use self::probing::{Measured, Read};
use crate::check::{Findings, Group, Line};
use crate::cluster;
use crate::pods::{self, Cleanup};
use crate::target::TargetSpec;

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
    let (mut groups, ok) = read_all(specs).await;
    let reads: Vec<&Read> = ok.iter().map(|(_, r)| r).collect();
    let active: Vec<Check> = checks.iter().copied().filter(Check::is_active).collect();
    let window = sniff_window(&reads);
    let measured = if active.is_empty() || reads.is_empty() {
        reads.iter().map(|_| Measured::default()).collect()
    } else {
        let run = pods::run_id();
        let m = probing::probe_all(
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
        let everyone = Everyone {
            reads: &reads,
            measured: &measured,
            servers: &servers,
            window,
        };
        groups[*i].lines = judge_cluster(r, m, &checks, &everyone);
    }
    Findings { groups }
}

/// Reads every cluster of `specs`: a group per spec (with the error of
/// those that cannot be read), and the readable ones by group index.
async fn read_all(specs: &[TargetSpec]) -> (Vec<Group>, Vec<(usize, Read)>) {
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
            Err(e) => groups.push(Group::unreadable(spec, &e)),
        }
    }
    (groups, ok)
}

/// What one cluster's verdicts need of the others.
struct Everyone<'a> {
    reads: &'a [&'a Read],
    measured: &'a [Measured],
    /// Cluster id and node of every echo server that ran.
    servers: &'a [(String, String)],
    window: Duration,
}

/// The lines of every check of `checks` for cluster `r`, which measured `m`.
fn judge_cluster(r: &Read, m: &Measured, checks: &[Check], everyone: &Everyone<'_>) -> Vec<Line> {
    let f = &r.facts;
    let pod_targets: Vec<(String, String)> = everyone
        .servers
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
    for c in checks {
        match c {
            Check::K8sVersion => lines.extend(evaluate::k8s_version(f)),
            Check::Cni => lines.extend(evaluate::cni(f)),
            Check::KubeProxyMode => lines.extend(evaluate::kube_proxy_mode(f)),
            Check::Deployment => lines.extend(evaluate::deployment(f)),
            Check::CidrOverlap => lines.extend(evaluate::cidr_overlap(f)),
            Check::Connections => {
                lines.extend(m.notes.iter().cloned());
                lines.extend(evaluate::connections(f, &client, &pod_targets));
            }
            Check::HostNetwork => {
                let host = match &m.host_client {
                    Some((node, Ok(rep))) => evaluate::Client {
                        node,
                        report: Ok(rep),
                    },
                    Some((node, Err(e))) => evaluate::Client {
                        node,
                        report: Err(e.as_str()),
                    },
                    None => evaluate::Client {
                        node: "-",
                        report: Err(setup.as_str()),
                    },
                };
                lines.extend(evaluate::host_network(f, &host, &pod_targets));
            }
            Check::NatDiscovery => lines.extend(evaluate::nat_discovery(f)),
            Check::Firewall => lines.extend(judge_firewall(r, m, &setup, everyone)),
            Check::Mtu => lines.extend(evaluate::mtu(
                f,
                &client,
                &pod_targets,
                checks.contains(&Check::Connections),
            )),
            Check::ServiceDiscovery => lines.extend(evaluate::service_discovery(f, &client)),
        }
    }
    lines
}

/// The firewall lines of cluster `r`: its sniffer's report against the
/// senders of the other clusters.
fn judge_firewall(r: &Read, m: &Measured, setup: &str, everyone: &Everyone<'_>) -> Vec<Line> {
    let f = &r.facts;
    let (node, sniffer): (Option<&str>, evaluate::Probed<'_>) = match &m.sniffer {
        Some((n, Ok(rep))) => (Some(n), Ok(rep)),
        Some((n, Err(e))) => (Some(n), Err(e.as_str())),
        None => (
            f.active_gateway().map(|g| g.spec.hostname.as_str()),
            Err(setup),
        ),
    };
    let senders = everyone
        .reads
        .iter()
        .zip(everyone.measured)
        .filter(|(o, _)| o.facts.id() != f.id())
        .filter_map(|(o, om)| {
            let rep: evaluate::Probed<'_> = match om.sender.as_ref()? {
                Ok(rep) => Ok(rep),
                Err(e) => Err(e.as_str()),
            };
            Some((o.facts.id().to_string(), rep))
        })
        .collect();
    evaluate::firewall(
        f,
        &evaluate::Firewall {
            node,
            sniffer,
            senders,
            window: everyone.window,
        },
    )
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

#[cfg(test)]
mod tests;
