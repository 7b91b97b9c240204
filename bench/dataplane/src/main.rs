//! `bench/dataplane`: ferry's data plane between sandbox clusters, against
//! its anchors, in one run (see `run.sh` and README.md).
//!
//! Sections (`--only` picks some):
//! - `wireguard`: pod→pod across clusters (pods on the gateway nodes), iperf3
//!   with 1 and 4 streams and ping RTT, over ferry's `wireguard` cable and
//!   over `wireguard-go` placed between the same two gateway namespaces,
//!   next to ferry's cable (policy rules pick the tunnel per run: see
//!   `anchor`); every figure is measured on both back to back, in
//!   alternating order, and the ratio is the median of the per-round
//!   ratios. Target: ≥4× wireguard-go.
//! - `vxlan`: the same over ferry's `vxlan` cable and over a bare kernel
//!   VXLAN device between the same namespaces. Target: ≥0.9× bare.
//! - `idle`: two gateway nodes in cluster A, nothing happening for
//!   `--idle-secs`: API writes/s of A and B (committed revisions and write
//!   requests by resource from their API servers' `/metrics`) against
//!   client-go's leader lease (0.5/s), target ≤0.2/s (issue #19); CPU of
//!   each `ferry gateway` process.
//! - `failover`: two gateway nodes in cluster A; a UDP probe every 10 ms
//!   from a pod in B to a pod on A's standby node; kill -9 the active
//!   `ferry gateway`; time from the kill to the first reply to a probe sent
//!   after it (which can only have gone through the new active gateway).
//!   Median and max over `--kills`. Target ≤1 s.
//! - `dns`: a service exported from both clusters; A's `ferry dns` asked for
//!   `B.nginx.nginx-test.svc.clusterset.local` every millisecond; `wan0` of
//!   B's gateway node set down; time until the answer has no address.
//!   Target ≤1 s.
//!
//! - `ipsec`: the same over ferry's `ipsec` cable, against wireguard-go
//!   again (no strongSwan in the gateway namespaces yet: bench/ipsec is
//!   where ferry's IPsec meets strongSwan). Target ≥3.2× wireguard-go
//!   (= 0.8× the `wireguard` section's 4× target); when the `wireguard`
//!   section ran too, a row ipsec/wireguard (the ratio of the two sections'
//!   ratios to the same anchor) with target ≥0.8×.
//! - `ipsec-failover`: `failover` on the ipsec pair.
//! - `globalnet`: a wireguard pair with IDENTICAL pod/service CIDRs joined
//!   with Globalnet, against the plain `wireguard` pair in the same run:
//!   iperf3 to B's service by its global ingress IP vs by its ClusterIP,
//!   ping to B's pod by its global IP vs its pod IP (target ≥0.9×); time
//!   from a ServiceExport in B to a global IP that A's `ferry dns` answers
//!   and a pod in A connects to (p50/max over `--exports`, target ≤1 s).
//!
//! - `mesh` (only with `--only`): `--clusters N` one-node clusters joined
//!   through one broker (wireguard, N−1 cables per gateway), all cables
//!   connected, then `--idle-secs` of nothing: CPU of every gateway, per
//!   gateway and per cable (target ≤0.05 % of a core per cable, issue #19).
//!
//! When the route agent carries traffic from non-gateway nodes, the
//! throughput sections also measure ferry between pods on those nodes.
//!
//! - `active-active` (only with `--only`): two clusters joined with
//!   `--gateway-mode active-active`, pods on a non-gateway node each;
//!   iperf3 with 16 streams with 1 and with 2 gateways per cluster, back
//!   to back (the 1-gateway run is the anchor, target ≥ 1.7×), ferry's CPU
//!   seconds per GB and each gateway's share of the cable bytes.
//!
//! Each section is a module (`throughput` for the cable ones, `failover`,
//! `dns_cut`, `globalnet`); `args` reads the command line and `report` prints the table.
//!
//! Sandbox clusters are named `{prefix}-{w|v|i|g|x}{k|a|b}` (prefix `bd-PID`) and
//! deleted when the run ends, failed or not; `--keep` keeps them.
//! Addresses: the sandbox's own (100.64.0.0/10, 198.18.0.0/15); all traffic
//! stays inside the sandbox's network namespaces.
#![forbid(unsafe_code)]

mod active_active;
mod anchor;
mod args;
mod cluster;
mod dns_cut;
mod failover;
mod globalnet;
mod idle;
mod measure;
mod mesh;
mod probe;
mod report;
mod sys;
mod throughput;

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::args::Args;
use crate::cluster::{Ferry, Pair};
use crate::report::Report;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let args = Args::parse()?;
    if !nix::unistd::Uid::effective().is_root() {
        bail!("run as root (network namespaces, sandbox clusters)");
    }
    for tool in ["iperf3", "ping", "wireguard-go", "wg", "ip", "kubectl"] {
        sys::run("sh", &["-c", &format!("command -v {tool}")])
            .with_context(|| format!("{tool} is not installed (scripts/setup.sh installs it)"))?;
    }
    let ferry = Ferry(args.ferry.clone());
    ferry
        .run(&["gateway", "--help"])
        .with_context(|| format!("{} has no `gateway` subcommand", args.ferry.display()))?;
    sweep_stale(&ferry);
    let started = Instant::now();
    let load_start = sys::loadavg();
    eprintln!("load average at start: {load_start}");
    let tmp = tempfile::tempdir()?;
    let mut report = Report::default();
    let mut wireguard_ratios = None;

    if ["wireguard", "idle", "failover", "dns", "globalnet"]
        .iter()
        .any(|s| args.wants(s))
    {
        let pair = Pair::up(
            &ferry,
            args.keep,
            &format!("{}-w", args.prefix),
            "wireguard",
            tmp.path(),
        )?;
        if args.wants("wireguard") {
            wireguard_ratios = Some(throughput::throughput(
                &args,
                &pair,
                anchor::Kind::WireguardGo,
                &mut report,
            )?);
        }
        if args.wants("idle") {
            idle::idle(&args, &pair, &mut report)?;
        }
        if args.wants("dns") {
            dns_cut::dns_cut(&args, &pair, &mut report)?;
        }
        if args.wants("failover") {
            failover::failover(&args, &pair, &mut report)?;
        }
        if args.wants("globalnet") {
            let gn = Pair::up_with(
                &ferry,
                args.keep,
                &format!("{}-g", args.prefix),
                "wireguard",
                tmp.path(),
                &globalnet::SETUP,
            )?;
            globalnet::globalnet(&args, &pair, &gn, &mut report)?;
        }
    }
    if args.wants("vxlan") {
        let pair = Pair::up(
            &ferry,
            args.keep,
            &format!("{}-v", args.prefix),
            "vxlan",
            tmp.path(),
        )?;
        throughput::throughput(&args, &pair, anchor::Kind::Vxlan, &mut report)?;
    }
    if ["ipsec", "ipsec-failover"].iter().any(|s| args.wants(s)) {
        let pair = Pair::up(
            &ferry,
            args.keep,
            &format!("{}-i", args.prefix),
            "ipsec",
            tmp.path(),
        )?;
        if args.wants("ipsec") {
            let ratios =
                throughput::throughput(&args, &pair, anchor::Kind::WireguardGo, &mut report)?;
            if let Some(wg) = &wireguard_ratios {
                report::vs_wireguard(&mut report, &ratios, wg);
            }
        }
        if args.wants("ipsec-failover") {
            failover::failover(&args, &pair, &mut report)?;
        }
    }
    if args.wants("active-active") {
        active_active::active_active(&args, &ferry, tmp.path(), &mut report)?;
    }
    if args.wants("mesh") {
        mesh::mesh(&args, &ferry, tmp.path(), &mut report)?;
    }
    report.print(&args, (&load_start, &sys::loadavg()), started.elapsed());
    Ok(())
}

/// Deletes sandbox clusters of earlier runs of this benchmark whose process
/// is gone (`bd-PID-{w,v,i,g}{k,a,b}` with no process PID).
fn sweep_stale(ferry: &Ferry) {
    let Ok(list) = ferry.run(&["sandbox", "list"]) else {
        return;
    };
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(rest) = name.strip_prefix("bd-") else {
            continue;
        };
        let Some((pid, suffix)) = rest.split_once('-') else {
            continue;
        };
        let pair = suffix.len() == 2
            && matches!(&suffix[..1], "w" | "v" | "i" | "g" | "x")
            && matches!(&suffix[1..], "k" | "a" | "b");
        let mesh = suffix == "mk"
            || (suffix.len() == 3
                && suffix.starts_with('m')
                && suffix[1..].bytes().all(|b| b.is_ascii_digit()));
        let ours = pid.parse::<u32>().is_ok() && (pair || mesh);
        if ours && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            eprintln!("deleting {name}, left by an earlier run");
            let _ = ferry.run(&["sandbox", "delete", name]);
        }
    }
}
