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
//! When the route agent carries traffic from non-gateway nodes, the
//! throughput sections also measure ferry between pods on those nodes.
//!
//! Sandbox clusters are named `{prefix}-{w|v}{k|a|b}` (prefix `bd-PID`) and
//! deleted when the run ends, failed or not; `--keep` keeps them.
//! Addresses: the sandbox's own (100.64.0.0/10, 198.18.0.0/15); all traffic
//! stays inside the sandbox's network namespaces.
#![forbid(unsafe_code)]

mod anchor;
mod cluster;
mod measure;
mod probe;
mod sys;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use crate::anchor::{Anchor, End};
use crate::cluster::{Ferry, Joined, Pair};
use crate::measure::Sample;
use crate::probe::{Echo, Probe};
use crate::sys::wait_for;

/// ferry's cable devices (crates/ferry-gateway).
pub const WIREGUARD_CABLE: &str = "ferry-wg";
pub const VXLAN_CABLE: &str = "ferry-vxc";

/// UDP port of the failover echo servers in A's pods.
const ECHO_PORT: u16 = 7777;

/// The exported service: examples/nginx.yaml and a ServiceExport for it.
const NGINX_YAML: &str = include_str!("../../../examples/nginx.yaml");
const EXPORT_YAML: &str = "apiVersion: multicluster.x-k8s.io/v1alpha1
kind: ServiceExport
metadata:
  name: nginx
  namespace: nginx-test
";

/// Published anchors (shared/reference/anchors.md): Submariner needs ≥5 s
/// (5 health checks of 1 s) to declare a connection down; its Lease is 15 s.
const SUBMARINER_DOWN: Duration = Duration::from_secs(5);

const USAGE: &str = "\
usage: ferry-bench-dataplane [--ferry PATH] [--prefix bd-NAME] [--only wireguard,vxlan,failover,dns]
                             [--rounds 5] [--secs 5] [--pings 200] [--kills 10] [--cuts 5]
                             [--interval-ms 10] [--keep]
Needs root, iperf3, ping, wireguard-go, wg, ip and kubectl. Prefer bench/dataplane/run.sh.";

struct Args {
    ferry: PathBuf,
    prefix: String,
    sections: Vec<String>,
    rounds: usize,
    secs: u32,
    pings: u32,
    kills: usize,
    cuts: usize,
    interval: Duration,
    keep: bool,
}

impl Args {
    fn parse() -> Result<Args> {
        let exe = std::env::current_exe().context("locating this binary")?;
        let mut a = Args {
            ferry: exe.with_file_name("ferry"),
            prefix: format!("bd-{}", std::process::id()),
            sections: ["wireguard", "vxlan", "failover", "dns"]
                .map(String::from)
                .to_vec(),
            rounds: 5,
            secs: 5,
            pings: 200,
            kills: 10,
            cuts: 5,
            interval: Duration::from_millis(10),
            keep: false,
        };
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            if flag == "--keep" {
                a.keep = true;
                continue;
            }
            if flag == "-h" || flag == "--help" {
                println!("{USAGE}");
                std::process::exit(0);
            }
            let v = it
                .next()
                .ok_or_else(|| anyhow!("{flag} needs a value\n{USAGE}"))?;
            let num = || v.parse::<u64>().with_context(|| format!("{flag} {v}"));
            match flag.as_str() {
                "--ferry" => a.ferry = PathBuf::from(&v),
                "--prefix" => a.prefix = v.clone(),
                "--only" => a.sections = v.split(',').map(String::from).collect(),
                "--rounds" => a.rounds = num()? as usize,
                "--secs" => a.secs = num()? as u32,
                "--pings" => a.pings = num()? as u32,
                "--kills" => a.kills = num()? as usize,
                "--cuts" => a.cuts = num()? as usize,
                "--interval-ms" => a.interval = Duration::from_millis(num()?),
                _ => bail!("unknown flag {flag}\n{USAGE}"),
            }
        }
        if !a.prefix.starts_with("bd") || a.prefix.len() > 14 {
            bail!("--prefix must start with 'bd' and be at most 14 characters");
        }
        for s in &a.sections {
            if !["wireguard", "vxlan", "failover", "dns"].contains(&s.as_str()) {
                bail!("unknown section {s}\n{USAGE}");
            }
        }
        Ok(a)
    }

    /// Short host-unique tag for device names: the prefix's number mod 100000.
    fn tag(&self) -> String {
        let digits: String = self.prefix.chars().filter(char::is_ascii_digit).collect();
        let n: u64 = digits.parse().unwrap_or(u64::from(std::process::id()));
        (n % 100_000).to_string()
    }

    fn wants(&self, s: &str) -> bool {
        self.sections.iter().any(|x| x == s)
    }
}

/// One line of the result table.
struct Row {
    metric: String,
    ferry: String,
    anchor: String,
    /// ferry / anchor.
    ratio: Option<f64>,
    target: String,
    pass: Option<bool>,
}

#[derive(Default)]
struct Report {
    rows: Vec<Row>,
    notes: Vec<String>,
}

impl Report {
    fn print(&self, args: &Args, load: (&str, &str), elapsed: Duration) {
        println!();
        println!(
            "== ferry data plane vs anchors: sandbox clusters, pod -> pod across clusters ({:.0} s) ==",
            elapsed.as_secs_f64()
        );
        println!(
            "iperf3 {} s per run, {} pings at 10 ms, {} rounds (ferry and anchor back to back, order alternating); {} kills; {} cable cuts; probe every {} ms",
            args.secs,
            args.pings,
            args.rounds,
            args.kills,
            args.cuts,
            args.interval.as_millis()
        );
        println!(
            "load average (1/5/15 min): start {}, end {}",
            load.0, load.1
        );
        println!(
            "{:<56} {:>10} {:>26} {:>7} {:>9} {:>6}",
            "metric", "ferry", "anchor", "ratio", "target", "result"
        );
        for r in &self.rows {
            println!(
                "{:<56} {:>10} {:>26} {:>7} {:>9} {:>6}",
                r.metric,
                r.ferry,
                r.anchor,
                r.ratio.map_or("-".into(), |x| format!("{x:.2}x")),
                r.target,
                match r.pass {
                    Some(true) => "PASS",
                    Some(false) => "FAIL",
                    None => "-",
                }
            );
        }
        for n in &self.notes {
            println!("note: {n}");
        }
    }
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NAN, f64::max)
}

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

    if ["wireguard", "failover", "dns"]
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
            throughput(&args, &pair, anchor::Kind::WireguardGo, &mut report)?;
        }
        if args.wants("dns") {
            dns_cut(&args, &pair, &mut report)?;
        }
        if args.wants("failover") {
            failover(&args, &pair, &mut report)?;
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
        throughput(&args, &pair, anchor::Kind::Vxlan, &mut report)?;
    }
    report.print(&args, (&load_start, &sys::loadavg()), started.elapsed());
    Ok(())
}

/// Deletes sandbox clusters of earlier runs of this benchmark whose process
/// is gone (`bd-PID-{w,v}{k,a,b}` with no process PID).
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
        let ours = pid.parse::<u32>().is_ok()
            && suffix.len() == 2
            && matches!(&suffix[..1], "w" | "v")
            && matches!(&suffix[1..], "k" | "a" | "b");
        if ours && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            eprintln!("deleting {name}, left by an earlier run");
            let _ = ferry.run(&["sandbox", "delete", name]);
        }
    }
}

fn show(s: &Sample) -> String {
    format!(
        "1 stream {:.2} Gbit/s, 4 streams {:.2} Gbit/s, RTT {:.3} ms ({}% loss)",
        s.s1, s.s4, s.rtt, s.loss
    )
}

/// A figure of a [`Sample`]: name, getter, unit, whether the ratio has a target.
type Metric = (&'static str, fn(&Sample) -> f64, &'static str, bool);

const METRICS: &[Metric] = &[
    ("iperf3 1 stream", |s| s.s1, "Gbit/s", true),
    ("iperf3 4 streams", |s| s.s4, "Gbit/s", true),
    ("ping RTT avg", |s| s.rtt, "ms", false),
];

/// Which tunnel a run goes through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
    Ferry,
    Anchor,
}

/// The two tunnels between the pair's gateway nodes, side by side.
struct Paths<'a> {
    pair: &'a Pair,
    anchor: &'a Anchor,
    kind: anchor::Kind,
}

impl Paths<'_> {
    /// Runs `f` through `via` and checks with the tx counters of A's gateway
    /// devices that the traffic went that way: at least `min_packets` on
    /// that tunnel's device, and (for ferry's runs) next to nothing on the
    /// anchor's, which carries nothing else.
    fn run<T>(&self, via: Via, min_packets: u64, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let ns = &self.pair.a_nodes[0];
        let (fdev, adev) = (cable(self.pair), self.anchor.dev(0));
        let (f0, a0) = (sys::tx_counters(ns, fdev)?.1, sys::tx_counters(ns, adev)?.1);
        let v = f()?;
        let (f1, a1) = (sys::tx_counters(ns, fdev)?.1, sys::tx_counters(ns, adev)?.1);
        let (df, da) = (f1.saturating_sub(f0), a1.saturating_sub(a0));
        let (on, dev) = match via {
            Via::Ferry => (df, fdev),
            Via::Anchor => (da, adev),
        };
        if on < min_packets || (via == Via::Ferry && da * 10 > min_packets) {
            bail!(
                "a {via:?} run did not take its tunnel: {df} packets out of {fdev}, {da} out of {adev} (wanted >= {min_packets} on {dev})"
            );
        }
        Ok(v)
    }

    fn iperf(&self, via: Via, streams: u32, secs: u32) -> Result<f64> {
        let (from, to) = (&self.pair.a_pods[0], &self.pair.b_pods[0]);
        let port = match via {
            Via::Ferry => measure::FERRY_PORT,
            Via::Anchor => anchor::PORT,
        };
        self.run(via, 1000, || measure::iperf(from, to, port, streams, secs))
    }

    fn ping(&self, via: Via, count: u32) -> Result<(f64, f64)> {
        let (from, to) = (&self.pair.a_pods[0], &self.pair.b_pods[0]);
        let tos = (via == Via::Anchor).then_some(anchor::TOS);
        self.run(via, u64::from(count) * 9 / 10, || {
            measure::ping(from, to.ip, count, tos)
        })
    }

    fn label(&self, via: Via) -> &'static str {
        match via {
            Via::Ferry => "ferry",
            Via::Anchor => self.kind.label(),
        }
    }
}

/// Throughput and RTT of ferry's cable and of the anchor `kind` between the
/// same gateway namespaces and pods, each figure measured on both back to
/// back (the order alternating).
fn throughput(args: &Args, pair: &Pair, kind: anchor::Kind, report: &mut Report) -> Result<()> {
    let driver = pair.driver.as_str();
    eprintln!("--- {driver}: ferry vs {} ---", kind.label());
    let ends = [
        End::of(
            &pair.a_nodes[0],
            vec![pair.a.pod_cidr.clone(), pair.a.service_cidr.clone()],
        )?,
        End::of(
            &pair.b_nodes[0],
            vec![pair.b.pod_cidr.clone(), pair.b.service_cidr.clone()],
        )?,
    ];
    let (from, to) = (&pair.a_pods[0], &pair.b_pods[0]);
    let (from1, to1) = (&pair.a_pods[1], &pair.b_pods[1]);
    pair.wait_path(Duration::from_secs(60))?;
    let anchor = Anchor::up(kind, ends, &args.tag())?;
    wait_for(
        &format!("a ping over {}", kind.label()),
        Duration::from_secs(30),
        Duration::from_millis(10),
        || measure::ping_once_tos(&from.netns, to.ip, Some(anchor::TOS)).then_some(()),
    )?;
    let paths = Paths {
        pair,
        anchor: &anchor,
        kind,
    };
    // Pods on the other nodes go through the route agent's vx-ferry.
    let non_gateway = wait_for(
        "a ping between the non-gateway pods",
        Duration::from_secs(5),
        Duration::from_millis(50),
        || measure::ping_once(&from1.netns, to1.ip).then_some(()),
    )
    .is_ok();
    if !non_gateway {
        report.notes.push(format!(
            "{driver}: no ping from {}/{} on {} to {}/{} on {} (non-gateway nodes, via the route agent): measured between gateway-node pods only",
            pair.a.name, from1.name, from1.node, pair.b.name, to1.name, to1.node
        ));
    }
    let (mut fe, mut an, mut ng) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..args.rounds {
        let mut s = [Sample::default(), Sample::default()];
        for metric in 0..3 {
            let order = if (round + metric) % 2 == 0 {
                [Via::Ferry, Via::Anchor]
            } else {
                [Via::Anchor, Via::Ferry]
            };
            for via in order {
                let x = &mut s[usize::from(via == Via::Anchor)];
                match metric {
                    0 => x.s1 = paths.iperf(via, 1, args.secs)?,
                    1 => x.s4 = paths.iperf(via, 4, args.secs)?,
                    _ => (x.rtt, x.loss) = paths.ping(via, args.pings)?,
                }
            }
        }
        for (via, x) in [Via::Ferry, Via::Anchor].into_iter().zip(&s) {
            eprintln!(
                "round {round} {} ({driver} pair): {} [load {}]",
                paths.label(via),
                show(x),
                sys::loadavg()
            );
        }
        fe.push(s[0]);
        an.push(s[1]);
        if non_gateway {
            match measure::iperf(from1, to1, measure::FERRY_PORT, 1, args.secs).and_then(|s1| {
                let s4 = measure::iperf(from1, to1, measure::FERRY_PORT, 4, args.secs)?;
                let (rtt, loss) = measure::ping(from1, to1.ip, args.pings, None)?;
                Ok(Sample { s1, s4, rtt, loss })
            }) {
                Ok(x) => {
                    eprintln!(
                        "round {round} ferry {driver}, non-gateway pods: {} [load {}]",
                        show(&x),
                        sys::loadavg()
                    );
                    ng.push(x);
                }
                Err(e) => eprintln!("round {round} non-gateway pods: {e:#}"),
            }
        }
    }
    drop(anchor);

    let target = match kind {
        anchor::Kind::WireguardGo => 4.0,
        anchor::Kind::Vxlan => 0.9,
    };
    let pick = |v: &[Sample], f: fn(&Sample) -> f64| median(&v.iter().map(f).collect::<Vec<_>>());
    for &(name, f, unit, has_target) in METRICS {
        let (x, y) = (pick(&fe, f), pick(&an, f));
        // The ratio is the median of each round's ferry/anchor ratio: the
        // two ran back to back, so load that drifts between rounds cancels.
        let per_round: Vec<f64> = fe.iter().zip(&an).map(|(a, b)| f(a) / f(b)).collect();
        let ratio = median(&per_round);
        report.notes.push(format!(
            "{driver}: {name}: per-round ferry/{} ratios {}",
            kind.label(),
            per_round
                .iter()
                .map(|r| format!("{r:.2}"))
                .collect::<Vec<_>>()
                .join(" ")
        ));
        report.rows.push(Row {
            metric: format!("{driver}: {name} ({unit})"),
            ferry: format!("{x:.3}"),
            anchor: format!("{y:.3} {}", kind.label()),
            ratio: Some(ratio),
            target: if has_target {
                format!(">= {target}x")
            } else {
                "-".into()
            },
            pass: has_target.then_some(ratio >= target),
        });
    }
    if !ng.is_empty() {
        for &(name, f, unit, _) in METRICS {
            report.rows.push(Row {
                metric: format!("{driver}: {name}, non-gateway pods ({unit})"),
                ferry: format!("{:.3}", pick(&ng, f)),
                anchor: "-".into(),
                ratio: None,
                target: "-".into(),
                pass: None,
            });
        }
    }
    Ok(())
}

/// Cable device of the pair's driver.
fn cable(pair: &Pair) -> &'static str {
    if pair.driver == "vxlan" {
        VXLAN_CABLE
    } else {
        WIREGUARD_CABLE
    }
}

/// Waits until both of A's gateways run, exactly one is active (holds the
/// cable device) and a pod on it answers from B, stable for 2 s; returns
/// (active, standby) node indices.
fn steady(pair: &Pair, sock: &std::net::UdpSocket) -> Result<(usize, usize)> {
    // The last thing seen, for the error when it never settles.
    let last = std::cell::RefCell::new(String::new());
    let look = || {
        let pids = [0, 1].map(|k| sys::gateway_pid(&pair.a_nodes[k]));
        let active: Vec<usize> = (0..2)
            .filter(|k| sys::link_exists(&pair.a_nodes[*k], cable(pair)))
            .collect();
        let reply = match active[..] {
            [a] => probe::udp_roundtrip(
                sock,
                SocketAddr::new(pair.a_pods[a].ip.into(), ECHO_PORT),
                Duration::from_millis(300),
            ),
            _ => false,
        };
        *last.borrow_mut() = format!(
            "gateway pids (node0, node1) {pids:?}, nodes holding {} {active:?}, the active node's pod answering B: {reply}",
            cable(pair)
        );
        match (pids, &active[..], reply) {
            ([Some(p0), Some(p1)], [a], true) => Some((*a, [p0, p1])),
            _ => None,
        }
    };
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let first = wait_for(
            "A's two gateways running, one active, reachable from B",
            deadline.saturating_duration_since(Instant::now()),
            Duration::from_millis(100),
            look,
        );
        let first = match first {
            Ok(f) => f,
            Err(e) => bail!(
                "{e}: last seen: {}\n{}",
                last.borrow(),
                gateway_report(pair)
            ),
        };
        std::thread::sleep(Duration::from_secs(2));
        if look() == Some(first) {
            return Ok((first.0, 1 - first.0));
        }
    }
}

/// HA role and connections of every Gateway, and the Lease holder, of both
/// clusters (for error messages).
fn gateway_report(pair: &Pair) -> String {
    let mut out = String::new();
    for c in [&pair.a, &pair.b] {
        let holder = c
            .kubectl(&[
                "-n",
                "ferry-system",
                "get",
                "lease",
                "ferry-gateway",
                "-o",
                "jsonpath={.spec.holderIdentity} renewed {.spec.renewTime}",
            ])
            .unwrap_or_else(|e| format!("? ({e})"));
        out.push_str(&format!("{}: lease held by {holder}\n", c.name));
        let Ok(json) = c.kubectl(&["-n", "ferry-system", "get", "gateways", "-o", "json"]) else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&json) else {
            continue;
        };
        for g in v["items"].as_array().into_iter().flatten() {
            let st = &g["status"];
            let conns: Vec<String> = st["connections"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|x| {
                    format!(
                        "{} {} {} ({})",
                        x["clusterId"].as_str().unwrap_or("?"),
                        x["status"].as_str().unwrap_or("?"),
                        x["usingIp"].as_str().unwrap_or("?"),
                        x["statusMessage"].as_str().unwrap_or("")
                    )
                })
                .collect();
            out.push_str(&format!(
                "  Gateway {}: {} connections [{}]\n",
                g["metadata"]["name"].as_str().unwrap_or("?"),
                st["haStatus"].as_str().unwrap_or("?"),
                conns.join("; ")
            ));
        }
    }
    out
}

/// Failover: kill -9 of the active gateway → first reply through the standby.
fn failover(args: &Args, pair: &Pair, report: &mut Report) -> Result<()> {
    eprintln!("--- failover ({}) ---", pair.driver);
    pair.a.set_gateway(1, true)?;
    wait_for(
        "a ferry gateway on A's node 1",
        Duration::from_secs(60),
        Duration::from_millis(50),
        || sys::gateway_pid(&pair.a_nodes[1]),
    )?;
    let _echo = [
        Echo::start(&pair.a_pods[0].netns, ECHO_PORT)?,
        Echo::start(&pair.a_pods[1].netns, ECHO_PORT)?,
    ];
    let sock = probe::udp_socket(&pair.b_pods[0].netns, 0)?;
    let mut times = Vec::new();
    let mut failures = 0;
    let mut via_route_agent = 0;
    for i in 0..args.kills {
        let (active, standby) = steady(pair, &sock)?;
        let target = SocketAddr::new(pair.a_pods[standby].ip.into(), ECHO_PORT);
        let probe = Probe::start(&sock, target, args.interval, i as u32 + 1)?;
        std::thread::sleep(Duration::from_millis(300));
        let pid = sys::gateway_pid(&pair.a_nodes[active])
            .ok_or_else(|| anyhow!("the active gateway vanished"))?;
        let t_kill = Instant::now();
        sys::kill9(pid)?;
        let got = wait_for(
            "a reply through the new active gateway",
            Duration::from_secs(20),
            Duration::from_millis(1),
            || probe.first_reply_sent_after(t_kill),
        );
        let before = probe.answered_before(t_kill);
        drop(probe);
        via_route_agent += usize::from(before);
        match got {
            Ok((sent, at)) => {
                let d = at - t_kill;
                eprintln!(
                    "kill {i}: node{active}'s gateway (pid {pid}) killed; first reply from node{standby}'s pod {:.1} ms later (probe sent at +{:.1} ms; answered before the kill: {before}) [load {}]",
                    d.as_secs_f64() * 1e3,
                    (sent - t_kill).as_secs_f64() * 1e3,
                    sys::loadavg()
                );
                times.push(d.as_secs_f64() * 1e3);
            }
            Err(e) => {
                eprintln!("kill {i}: {e:#}");
                failures += 1;
            }
        }
        if !sys::link_exists(&pair.a_nodes[standby], cable(pair)) {
            report.notes.push(format!(
                "kill {i}: node{standby} did not hold the cable after the failover"
            ));
        }
    }
    // Leave A with node 0 as its only gateway again.
    pair.a.set_gateway(1, false)?;
    let med = median(&times);
    let mx = max(&times);
    let anchor = format!(">= {} ms Submariner", SUBMARINER_DOWN.as_millis());
    let limit = 1000.0;
    let all = failures == 0;
    for (name, v) in [("median", med), ("max", mx)] {
        report.rows.push(Row {
            metric: format!(
                "failover {name} of {} kills, kill -> reply (ms)",
                args.kills
            ),
            ferry: format!("{v:.0}"),
            anchor: anchor.clone(),
            ratio: Some(v / SUBMARINER_DOWN.as_secs_f64() / 1e3),
            target: format!("<= {limit:.0}"),
            pass: Some(all && v <= limit),
        });
    }
    report.notes.push(format!(
        "failover samples (ms): {}{}; probes to the standby's pod answered before the kill (route agent path) in {via_route_agent}/{} kills",
        times.iter().map(|t| format!("{t:.0}")).collect::<Vec<_>>().join(" "),
        if failures > 0 { format!("; {failures} kills never recovered within 20 s") } else { String::new() },
        args.kills
    ));
    Ok(())
}

/// Sets `wan0` of a namespace up again when dropped.
struct LinkUp<'a>(&'a str);

impl Drop for LinkUp<'_> {
    fn drop(&mut self) {
        let _ = sys::run("ip", &["-n", self.0, "link", "set", "wan0", "up"]);
    }
}

/// Queries until `want(answer)` holds; returns when the answer arrived.
fn dns_until(
    sock: &std::net::UdpSocket,
    server: SocketAddr,
    qname: &str,
    id: &mut u16,
    timeout: Duration,
    want: impl Fn(&probe::DnsAnswer) -> bool,
) -> Result<(Instant, usize)> {
    let deadline = Instant::now() + timeout;
    let mut n = 0;
    while Instant::now() < deadline {
        *id = id.wrapping_add(1);
        n += 1;
        if let Some(a) = probe::resolve(sock, server, qname, *id, Duration::from_millis(200))?
            && want(&a)
        {
            return Ok((Instant::now(), n));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    bail!("no such answer for {qname} within {timeout:?}")
}

/// Cable cut → the remote cluster leaves A's DNS answers.
fn dns_cut(args: &Args, pair: &Pair, report: &mut Report) -> Result<()> {
    eprintln!("--- cable cut -> out of DNS ({}) ---", pair.driver);
    for c in [&pair.a, &pair.b] {
        c.apply(NGINX_YAML)?;
        c.apply(EXPORT_YAML)?;
    }
    let dns_ip = pair.a.pod_ip_by_app("ferry-system", "ferry-dns")?;
    let port = pair.a.udp_target_port("ferry-system", "ferry-dns")?;
    let server = SocketAddr::new(dns_ip.into(), port);
    let sock = probe::udp_socket(&pair.a_pods[1].netns, 0)?;
    let qname = format!("{}.nginx.nginx-test.svc.clusterset.local", pair.b.name);
    let mut id: u16 = 0;
    dns_until(
        &sock,
        server,
        &qname,
        &mut id,
        Duration::from_secs(120),
        probe::DnsAnswer::has_address,
    )
    .with_context(|| format!("{qname} never resolved in {}", pair.a.name))?;
    let cut_ns = pair.b_nodes[0].as_str();
    let (mut gone, mut back) = (Vec::new(), Vec::new());
    for i in 0..args.cuts {
        // Steady: B answered for 2 s in a row.
        let mut since = Instant::now();
        while since.elapsed() < Duration::from_secs(2) {
            id = id.wrapping_add(1);
            let ok = probe::resolve(&sock, server, &qname, id, Duration::from_millis(200))?
                .is_some_and(|a| a.has_address());
            if !ok {
                since = Instant::now();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let t_cut = Instant::now();
        let guard = LinkUp(cut_ns);
        sys::run("ip", &["-n", cut_ns, "link", "set", "wan0", "down"])?;
        let cmd = t_cut.elapsed();
        let (at, n) = dns_until(
            &sock,
            server,
            &qname,
            &mut id,
            Duration::from_secs(20),
            |a| !a.has_address(),
        )?;
        let d = at - t_cut;
        let t_up = Instant::now();
        drop(guard);
        let (at_back, _) = dns_until(
            &sock,
            server,
            &qname,
            &mut id,
            Duration::from_secs(60),
            probe::DnsAnswer::has_address,
        )?;
        let b = at_back - t_up;
        eprintln!(
            "cut {i}: {} out of DNS {:.1} ms after `ip link set wan0 down` ({:.1} ms to run it; {n} queries), back {:.1} ms after link up [load {}]",
            pair.b.name,
            d.as_secs_f64() * 1e3,
            cmd.as_secs_f64() * 1e3,
            b.as_secs_f64() * 1e3,
            sys::loadavg()
        );
        gone.push(d.as_secs_f64() * 1e3);
        back.push(b.as_secs_f64() * 1e3);
    }
    let anchor = format!(">= {} ms Submariner", SUBMARINER_DOWN.as_millis());
    for (name, v) in [("median", median(&gone)), ("max", max(&gone))] {
        report.rows.push(Row {
            metric: format!("cable cut -> out of DNS, {name} of {} (ms)", args.cuts),
            ferry: format!("{v:.0}"),
            anchor: anchor.clone(),
            ratio: Some(v / SUBMARINER_DOWN.as_secs_f64() / 1e3),
            target: "<= 1000".into(),
            pass: Some(v <= 1000.0),
        });
    }
    report.rows.push(Row {
        metric: format!(
            "cable restored -> back in DNS, median of {} (ms)",
            args.cuts
        ),
        ferry: format!("{:.0}", median(&back)),
        anchor: "-".into(),
        ratio: None,
        target: "-".into(),
        pass: None,
    });
    report.notes.push(format!(
        "out-of-DNS samples (ms): {}; back-in-DNS samples (ms): {}",
        gone.iter()
            .map(|t| format!("{t:.0}"))
            .collect::<Vec<_>>()
            .join(" "),
        back.iter()
            .map(|t| format!("{t:.0}"))
            .collect::<Vec<_>>()
            .join(" ")
    ));
    Ok(())
}
