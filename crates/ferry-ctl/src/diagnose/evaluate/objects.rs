//! The checks that read objects only: `k8s-version`, `deployment`,
//! `cidr-overlap`.

use std::collections::BTreeSet;
use std::net::IpAddr;

use ferry_api::labels::SYSTEM_NAMESPACE;
use ferry_api::{Cidr, Cluster, HaStatus};

use super::common::*;
use crate::check::{Line, Status};
use crate::cluster::Facts;
use crate::diagnose::checks::Check;

/// The oldest Kubernetes minor version ferry supports.
pub const MIN_VERSION: (u32, u32) = (1, 27);

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
        let found = s
            .deployments
            .iter()
            .find(|x| x.metadata.name.as_deref() == Some(d))
            .map(|dep| {
                let want = dep.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                let ready = dep
                    .status
                    .as_ref()
                    .and_then(|s| s.ready_replicas)
                    .unwrap_or(0);
                (ready, want)
            });
        out.push(workload_line(
            Workload {
                kind: "Deployment",
                name: d,
                found,
                where_: String::new(),
            },
            format!("see `kubectl -n {ns} describe deployment {d}` and `kubectl -n {ns} logs deployment/{d}`"),
        ));
    }
    let gateway_nodes = f.gateway_nodes();
    for d in ["ferry-gateway", "ferry-route-agent"] {
        let found = s
            .daemonsets
            .iter()
            .find(|x| x.metadata.name.as_deref() == Some(d))
            .map(|ds| {
                let st = ds.status.clone().unwrap_or_default();
                (st.number_ready, st.desired_number_scheduled)
            });
        if d == "ferry-gateway" && found.is_some_and(|(_, want)| want == 0) {
            out.push(Line::with(
                name,
                Status::Fail,
                format!("DaemonSet {ns}/{d} runs nowhere: no node is labelled ferry.dev/gateway=true"),
                "label a node that other clusters can reach: kubectl label node NODE ferry.dev/gateway=true",
            ));
            continue;
        }
        let where_ = if d == "ferry-gateway" {
            format!(" (on {})", list(&gateway_nodes))
        } else {
            String::new()
        };
        out.push(workload_line(
            Workload {
                kind: "DaemonSet",
                name: d,
                found,
                where_,
            },
            format!(
                "see `kubectl -n {ns} get pods -o wide` and `kubectl -n {ns} logs daemonset/{d}`"
            ),
        ));
    }
    out.push(active_gateway_line(f));
    out
}

/// Exactly one of this cluster's gateways is active, and not failing.
fn active_gateway_line(f: &Facts) -> Line {
    let name = Check::Deployment.name();
    let ns = SYSTEM_NAMESPACE;
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
        [] => Line::with(
            name,
            Status::Fail,
            if gateways.is_empty() {
                "no gateway has reported (no Gateway object)".to_string()
            } else {
                format!("no gateway is active ({} standing by)", gateways.len())
            },
            format!("see the gateway's log: `kubectl -n {ns} logs daemonset/ferry-gateway`"),
        ),
        [one] => {
            let failure = f
                .active_gateway()
                .and_then(|g| g.status.as_ref()?.status_failure.clone());
            let standby = gateways.len() - 1;
            match failure {
                Some(why) => Line::with(
                    name,
                    Status::Fail,
                    format!("gateway {one} is active but failing: {why}"),
                    format!("see `kubectl -n {ns} logs` of the ferry-gateway pod on {one}"),
                ),
                None => Line::pass(
                    name,
                    format!("gateway {one} is active ({standby} standing by)"),
                ),
            }
        }
        many => Line::with(
            name,
            Status::Warn,
            format!(
                "{} gateways say they are active: {}",
                many.len(),
                many.join(", ")
            ),
            "only one should hold the lease: check the clocks of the gateway nodes and `kubectl -n ferry-system get lease`",
        ),
    }
}

/// One of ferry's workloads in [`SYSTEM_NAMESPACE`], as `deployment`
/// judges it.
struct Workload<'a> {
    /// `Deployment` or `DaemonSet`.
    kind: &'a str,
    name: &'a str,
    /// Ready and wanted replicas; `None` when it is missing.
    found: Option<(i32, i32)>,
    /// Appended to a passing line: where it runs.
    where_: String,
}

/// The readiness line of `w`: `Kind ns/name: ready/want ready`, failing
/// with `hint` while not all wanted replicas are ready.
fn workload_line(w: Workload<'_>, hint: String) -> Line {
    let name = Check::Deployment.name();
    let (ns, kind, d) = (SYSTEM_NAMESPACE, w.kind, w.name);
    match w.found {
        None => Line::with(
            name,
            Status::Fail,
            format!("{kind} {ns}/{d} is missing"),
            "run `ferry join` again (it recreates what is missing)",
        ),
        Some((ready, want)) if want > 0 && ready >= want => Line::pass(
            name,
            format!("{kind} {ns}/{d}: {ready}/{want} ready{}", w.where_),
        ),
        Some((ready, want)) => Line::with(
            name,
            Status::Fail,
            format!("{kind} {ns}/{d}: {ready}/{want} ready"),
            hint,
        ),
    }
}

/// A FAIL for each cluster whose Cluster object declares no pod or no
/// service CIDRs: nothing can be routed to them, and overlaps go unseen.
fn missing_cidrs(s: &crate::show::build::Snapshot) -> Vec<Line> {
    let name = Check::CidrOverlap.name();
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for c in &s.clusters {
        let cid = &c.spec.cluster_id;
        if !seen.insert(cid.clone()) {
            continue;
        }
        let missing: Vec<&str> = [
            ("pod", c.spec.cluster_cidrs.is_empty()),
            ("service", c.spec.service_cidrs.is_empty()),
        ]
        .into_iter()
        .filter_map(|(kind, empty)| empty.then_some(kind))
        .collect();
        if !missing.is_empty() {
            out.push(Line::with(
                name,
                Status::Fail,
                format!(
                    "cluster {cid}'s Cluster object has no {} CIDRs: other clusters route nothing to it there",
                    missing.join(" and no ")
                ),
                format!(
                    "re-run `ferry join` for {cid} (it discovers the CIDRs, or pass --clustercidr and --servicecidr)"
                ),
            ));
        }
    }
    out
}

/// One overlap between two clusters' CIDRs.
struct Overlap {
    message: String,
    /// A global CIDR is in it (nothing resolves that); else pod/service
    /// CIDRs only (Globalnet on both sides resolves it).
    global: bool,
}

/// Every overlap between `own`'s and `other`'s CIDRs.
fn overlaps_with(own: &Cluster, other: &Cluster) -> Vec<Overlap> {
    let named = |c: &Cluster| -> Vec<(&'static str, Cidr)> {
        let s = &c.spec;
        s.cluster_cidrs
            .iter()
            .map(|x| ("pod", *x))
            .chain(s.service_cidrs.iter().map(|x| ("service", *x)))
            .chain(s.global_cidrs.iter().map(|x| ("global", *x)))
            .collect()
    };
    let (id, oid) = (&own.spec.cluster_id, &other.spec.cluster_id);
    let mut out = Vec::new();
    for (kb, b) in named(other) {
        for (ka, a) in named(own) {
            if a.overlaps(&b) {
                out.push(Overlap {
                    message: format!("{id}'s {ka} CIDR {a} overlaps {oid}'s {kb} CIDR {b}"),
                    global: ka == "global" || kb == "global",
                });
            }
        }
    }
    // Pod/service overlaps first, as before Globalnet.
    out.sort_by_key(|o| o.global);
    out
}

/// Which of the two clusters need Globalnet for their overlapping CIDRs.
fn globalnet_hint(own: &Cluster, other: &Cluster) -> String {
    let off: Vec<&str> = [own, other]
        .into_iter()
        .filter(|c| c.spec.global_cidrs.is_empty())
        .map(|c| c.spec.cluster_id.as_str())
        .collect();
    let which = match off.as_slice() {
        [one] => format!("{one} has none: run `ferry globalnet enable` in {one}"),
        _ => format!(
            "neither has it: run `ferry globalnet enable` in both ({})",
            off.join(", ")
        ),
    };
    format!(
        "traffic is routed by destination, so these two clusters cannot reach each other there unless both have Globalnet (global IPs): {which}; or rejoin one with other --clustercidr/--servicecidr (`ferry show networks` lists what is taken)"
    )
}

/// `cidr-overlap`: this cluster's CIDRs against every other cluster's, and
/// the addresses its pods and Services really have against the declared
/// CIDRs.
/// Overlapping pod/service CIDRs are fine between two Globalnet clusters;
/// otherwise the hint says which of the two need Globalnet.
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
    let mut out = missing_cidrs(s);
    let mine: Vec<(&str, Cidr)> = own
        .spec
        .cluster_cidrs
        .iter()
        .map(|c| ("pod", *c))
        .chain(own.spec.service_cidrs.iter().map(|c| ("service", *c)))
        .collect();
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
    let mut bridged = Vec::new();
    let mut seen = BTreeSet::new();
    for other in &s.clusters {
        let oid = &other.spec.cluster_id;
        if oid == id || !seen.insert(oid.clone()) {
            continue;
        }
        others += 1;
        let overlaps = overlaps_with(own, other);
        // Two Globalnet clusters reach each other only through global IPs:
        // their own CIDRs may overlap.
        let both_global = !own.spec.global_cidrs.is_empty() && !other.spec.global_cidrs.is_empty();
        if both_global && overlaps.iter().any(|o| !o.global) {
            bridged.push(oid.clone());
        }
        for o in overlaps {
            if both_global && !o.global {
                continue;
            }
            let hint = if o.global {
                "global CIDRs must be unique in the clusterset: rejoin one of them with another --globalnet-cidr (`ferry show globalnet` lists the blocks)".to_string()
            } else {
                globalnet_hint(own, other)
            };
            out.push(Line::with(name, Status::Fail, o.message, hint));
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
    if out.is_empty() && !bridged.is_empty() {
        out.push(Line::pass(
            name,
            format!(
                "pod/service CIDRs overlap {}'s, which is fine: both have Globalnet on and reach each other through global IPs ({} here)",
                bridged.join(", "),
                list(&own.spec.global_cidrs)
            ),
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
