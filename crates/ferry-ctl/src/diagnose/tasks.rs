//! What each test pod of `diagnose` probes: the client's echoes, MTU probes
//! and DNS queries, the sniffer's watch on the cable port, the sender's
//! marked datagrams.

use std::collections::BTreeMap;
use std::time::Duration;

use super::checks::Check;
use super::evaluate;
use crate::cluster::{self, Facts};
use crate::probe::SERVE_PORT;
use crate::probe::spec::{DnsRecord, EchoFormat, Probe, Task};

/// The payload of the firewall test datagrams from `from` to `to`.
pub(super) fn marker(run: &str, from: &str, to: &str) -> String {
    format!("ferry-firewall-probe {run} {from}->{to}")
}

const ECHOES: u32 = 5;

fn task(id: String, probe: Probe) -> Task {
    Task { id, probe }
}

/// The client tasks of cluster `f`; `servers` holds the echo server IP of
/// each cluster diagnosed along.
pub(super) fn client_tasks(
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
            tasks.extend(echo_tasks(f, r, server_of(r)));
        }
    }
    if checks.contains(&Check::Mtu) {
        for r in &remotes {
            tasks.extend(mtu_tasks(f, r, server_of(r)));
        }
    }
    if checks.contains(&Check::ServiceDiscovery) {
        tasks.extend(dns_tasks(f, run));
    }
    tasks
}

/// Small echoes to remote `r`'s gateway health checker and, when it is
/// diagnosed along, to its echo server `server`.
fn echo_tasks(f: &Facts, r: &str, server: Option<String>) -> Vec<Task> {
    let mut tasks = Vec::new();
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
    if let Some(target) = server {
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
    tasks
}

/// The host-network client's tasks: from a node's own network namespace
/// to each remote cluster's gateway health checker and, where an echo
/// server runs, to that pod by UDP and by TCP (what a kubelet probe does).
pub(super) fn host_tasks(f: &Facts, servers: &BTreeMap<String, String>) -> Vec<Task> {
    let mut tasks = Vec::new();
    for r in f.remote_ids() {
        let server = servers.get(&r).map(|ip| format!("{ip}:{SERVE_PORT}"));
        for t in echo_tasks(f, &r, server.clone()) {
            tasks.push(task(format!("host-{}", t.id), t.probe));
        }
        if let Some(target) = server {
            tasks.push(task(
                format!("host-tcp/{r}"),
                Probe::Tcp {
                    target,
                    bytes: 64 * 1024,
                    timeout_ms: 3000,
                },
            ));
        }
    }
    tasks
}

/// Towards remote `r`: a packet bigger than the cable MTU and, with an
/// echo server there, one of exactly the MTU and a TCP transfer.
fn mtu_tasks(f: &Facts, r: &str, server: Option<String>) -> Vec<Task> {
    let mut tasks = Vec::new();
    let hc = f
        .endpoint_of(r)
        .and_then(cluster::health_check)
        .map(|a| a.to_string());
    if let Some(target) = server.clone().or(hc) {
        tasks.push(task(
            format!("mtu-big/{r}"),
            Probe::Pmtu {
                target,
                size: 0,
                timeout_ms: 1000,
            },
        ));
    }
    if let Some(target) = server {
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
    tasks
}

/// The zone's version record, a name that must not exist, and every
/// resolvable ServiceImport's name (at most [`evaluate::MAX_IMPORTS`]).
fn dns_tasks(f: &Facts, run: &str) -> Vec<Task> {
    let domain = f.clusterset_domain();
    let mut tasks = vec![
        task(
            "dns-version".into(),
            Probe::Dns {
                name: format!("dns-version.{domain}"),
                record: DnsRecord::Txt,
                timeout_ms: 1000,
                attempts: 2,
                retry_ms: 0,
            },
        ),
        task(
            "dns-nx".into(),
            Probe::Dns {
                name: format!("ferry-nx-{run}.ferry-system.svc.{domain}"),
                record: DnsRecord::A,
                timeout_ms: 2000,
                attempts: 1,
                retry_ms: 0,
            },
        ),
    ];
    let names = evaluate::resolvable_imports(f);
    for si in names.iter().take(evaluate::MAX_IMPORTS) {
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
    tasks
}

/// The sniffer tasks on `f`'s gateway, watching cable port `port`: for the
/// marked datagrams of each remote that sends them (`sends(remote)`), else
/// for the remote gateway's own traffic during `window`.
pub(super) fn sniffer_tasks(
    f: &Facts,
    run: &str,
    port: u16,
    sends: impl Fn(&str) -> bool,
    window: Duration,
) -> Vec<Task> {
    f.remote_ids()
        .into_iter()
        .map(|rid| {
            let probe = if sends(&rid) {
                Probe::Sniff {
                    port,
                    marker: Some(marker(run, &rid, f.id())),
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
        .collect()
}

/// The sender tasks on `f`'s gateway: marked datagrams to the cable port
/// of every cluster of `sniffed` (those with a sniffer).
pub(super) fn sender_tasks<'a>(
    f: &Facts,
    run: &str,
    sniffed: impl Iterator<Item = &'a String>,
) -> Vec<Task> {
    sniffed
        .filter(|rid| *rid != f.id())
        .filter_map(|rid| {
            let ep = f.endpoint_of(rid)?;
            let ip = f
                .connection_to(rid)
                .and_then(|c| c.using_ip)
                .or_else(|| cluster::gateway_addresses(ep).first().copied())?;
            Some(task(
                format!("fw-out/{rid}"),
                Probe::Send {
                    target: std::net::SocketAddr::new(ip, cluster::cable_port(ep)).to_string(),
                    marker: marker(run, f.id(), rid),
                    count: 10,
                    interval_ms: 100,
                },
            ))
        })
        .collect()
}
