//! The `globalnet` section (issue #16): a pair whose clusters have
//! IDENTICAL pod and service CIDRs, joined with Globalnet, against a plain
//! wireguard pair of the same run:
//! - pod → service throughput (iperf3, 1 and 4 streams) to B's service by
//!   its global ingress IP, against the plain pair's ClusterIP; ping RTT to
//!   B's pod by its headless-service global IP, against the plain pair's
//!   pod IP (a ClusterIP, global or not, answers TCP/UDP only, not ping);
//!   the two pairs back to back, order alternating, ratio = median of the
//!   per-round translated/untranslated ratios;
//! - the time from a `ServiceExport` in B to A's `ferry dns` answering its
//!   clusterset name with a global IP, and to a TCP connect from a pod in A
//!   to that IP succeeding.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ferry_sandbox::harness::Pod;

use crate::args::Args;
use crate::cluster::{Joined, Pair, Setup};
use crate::measure::{self, Sample};
use crate::probe;
use crate::report::{Report, Row, max, median};
use crate::sys::{self, wait_for};

/// Both clusters' CIDRs (the same in A and B), and the broker's pool of
/// global CIDRs: as tests/e2e/tests/globalnet.rs.
const SANDBOX_ARGS: &[&str] = &[
    "--pod-cidr",
    "100.90.0.0/16",
    "--service-cidr",
    "100.91.0.0/16",
];
const BROKER_ARGS: &[&str] = &[
    "--globalnet",
    "--globalnet-cidr-range",
    "100.120.0.0/16",
    "--globalnet-cluster-size",
    "256",
];
/// How the Globalnet pair is made ([`Pair::up_with`]).
pub const SETUP: Setup<'static> = Setup {
    sandbox: SANDBOX_ARGS,
    broker: BROKER_ARGS,
};

/// TCP port of the listener in B's `p0` that the reachability checks connect to.
const CONNECT_PORT: u16 = 5301;
/// The ClusterIP service in B in front of `p0` (iperf3 and the listener).
const SERVICE: &str = "gn-iperf";
/// The headless service of `p0`: its pod gets a global IP of its own.
const HEADLESS: &str = "gn-p0";

/// A Service in `default` selecting the pod `p0` (`kubectl run` labels it `run=p0`).
fn service_yaml(name: &str, ports: &[u16], headless: bool) -> String {
    let cluster_ip = if headless { "  clusterIP: None\n" } else { "" };
    let ports: String = ports
        .iter()
        .map(|p| {
            format!(
                "    - name: p{p}\n      port: {p}\n      targetPort: {p}\n      protocol: TCP\n"
            )
        })
        .collect();
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n{cluster_ip}  selector:\n    run: p0\n  ports:\n{ports}"
    )
}

fn export_yaml(name: &str) -> String {
    format!(
        "apiVersion: multicluster.x-k8s.io/v1alpha1\nkind: ServiceExport\nmetadata:\n  name: {name}\n  namespace: default\n"
    )
}

fn clusterset_name(service: &str) -> String {
    format!("{service}.default.svc.clusterset.local")
}

/// A's `ferry dns`, asked from A's gateway-node pod.
struct Dns {
    sock: UdpSocket,
    server: SocketAddr,
    id: u16,
}

impl Dns {
    fn of(pair: &Pair) -> Result<Dns> {
        let ip = pair.a.pod_ip_by_app("ferry-system", "ferry-dns")?;
        let port = pair.a.udp_target_port("ferry-system", "ferry-dns")?;
        Ok(Dns {
            sock: probe::udp_socket(&pair.a_pods[0].netns, 0)?,
            server: SocketAddr::new(ip.into(), port),
            id: 0,
        })
    }

    /// Asks until `qname` has an address (a query every millisecond or so).
    fn wait_addr(&mut self, qname: &str, timeout: Duration) -> Result<Ipv4Addr> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            self.id = self.id.wrapping_add(1);
            let answer = probe::resolve(
                &self.sock,
                self.server,
                qname,
                self.id,
                Duration::from_millis(200),
            )?;
            if let Some(addr) = answer
                .filter(probe::DnsAnswer::has_address)
                .and_then(|a| a.addr)
            {
                return Ok(addr);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        bail!("{qname} had no address within {timeout:?}")
    }
}

/// Whether a TCP connect from namespace `ns` to `to` succeeds within 50 ms.
fn connects(ns: &str, to: SocketAddr) -> bool {
    sys::in_netns(ns, move || {
        TcpStream::connect_timeout(&to, Duration::from_millis(50))
    })
    .is_ok()
}

/// Waits until a TCP connect from `ns` to `to` succeeds (polled every 5 ms).
fn wait_connect(ns: &str, to: SocketAddr, timeout: Duration) -> Result<()> {
    wait_for(
        &format!("a TCP connect to {to}"),
        timeout,
        Duration::from_millis(5),
        || connects(ns, to).then_some(()),
    )
}

/// Where a pair's measurements go: the iperf3 server (B's `p0`, addressed
/// by `service`), and the address pinged for B's `p0`.
struct Target {
    service: Pod,
    ping: Ipv4Addr,
    /// Holds B's `p0` listener on [`CONNECT_PORT`] open.
    _listener: TcpListener,
}

impl Target {
    /// B's service and pod as A reaches them: by global IPs (`global`) or
    /// by ClusterIP and pod IP; waits until the service answers a connect.
    fn of(pair: &Pair, dns: Option<&mut Dns>) -> Result<Target> {
        let port: u16 = measure::FERRY_PORT.parse()?;
        pair.b
            .apply(&service_yaml(SERVICE, &[port, CONNECT_PORT], false))?;
        let listener = sys::in_netns(&pair.b_pods[0].netns, || {
            TcpListener::bind(("0.0.0.0", CONNECT_PORT))
        })?;
        let (service_ip, ping) = match dns {
            Some(dns) => {
                pair.b.apply(&service_yaml(HEADLESS, &[port], true))?;
                for name in [SERVICE, HEADLESS] {
                    pair.b.apply(&export_yaml(name))?;
                }
                let wait = Duration::from_secs(120);
                let service = dns.wait_addr(&clusterset_name(SERVICE), wait)?;
                (service, dns.wait_addr(&clusterset_name(HEADLESS), wait)?)
            }
            None => (
                pair.b.service_ip("default", SERVICE)?.parse::<Ipv4Addr>()?,
                pair.b_pods[0].ip,
            ),
        };
        let to = SocketAddr::new(service_ip.into(), CONNECT_PORT);
        wait_connect(&pair.a_pods[0].netns, to, Duration::from_secs(60))
            .with_context(|| format!("{} {SERVICE} from {}", pair.b.name, pair.a.name))?;
        let service = Pod {
            ip: service_ip,
            ..pair.b_pods[0].clone()
        };
        Ok(Target {
            service,
            ping,
            _listener: listener,
        })
    }

    /// Measures figure `metric` (0: 1 stream, 1: 4 streams, 2: ping) into `s`.
    fn measure(&self, pair: &Pair, args: &Args, metric: usize, s: &mut Sample) -> Result<()> {
        let from = &pair.a_pods[0];
        match metric {
            0 => s.s1 = measure::iperf(from, &self.service, measure::FERRY_PORT, 1, args.secs)?,
            1 => s.s4 = measure::iperf(from, &self.service, measure::FERRY_PORT, 4, args.secs)?,
            _ => (s.rtt, s.loss) = measure::ping(from, self.ping, args.pings, None)?,
        }
        Ok(())
    }
}

/// The section: translated vs untranslated paths, then export → reachable.
pub fn globalnet(args: &Args, plain: &Pair, gn: &Pair, report: &mut Report) -> Result<()> {
    eprintln!("--- globalnet: translated vs plain wireguard ---");
    let mut dns = Dns::of(gn)?;
    let targets = [
        Target::of(plain, None).context("the plain pair's service")?,
        Target::of(gn, Some(&mut dns)).context("the Globalnet pair's service")?,
    ];
    let pairs = [plain, gn];
    let mut samples = [Vec::new(), Vec::new()];
    for round in 0..args.rounds {
        let mut s = [Sample::default(), Sample::default()];
        for metric in 0..3 {
            let order = if (round + metric) % 2 == 0 {
                [0, 1]
            } else {
                [1, 0]
            };
            for k in order {
                targets[k].measure(pairs[k], args, metric, &mut s[k])?;
            }
        }
        eprintln!(
            "round {round}: globalnet/plain 1 stream {:.2}x, 4 streams {:.2}x, RTT {:.2}x (globalnet {:.2}/{:.2} Gbit/s, {:.3} ms; plain {:.2}/{:.2} Gbit/s, {:.3} ms) [load {}]",
            s[1].s1 / s[0].s1,
            s[1].s4 / s[0].s4,
            s[1].rtt / s[0].rtt,
            s[1].s1,
            s[1].s4,
            s[1].rtt,
            s[0].s1,
            s[0].s4,
            s[0].rtt,
            sys::loadavg()
        );
        for (v, x) in samples.iter_mut().zip(s) {
            v.push(x);
        }
    }
    path_rows(&samples[1], &samples[0], report);
    // `targets` keeps B's listener open for the connects.
    export_rows(args, gn, &mut dns, report)
}

/// Rows translated/untranslated: medians of each and of the per-round ratios.
fn path_rows(gn: &[Sample], plain: &[Sample], report: &mut Report) {
    type Figure = (&'static str, &'static str, fn(&Sample) -> f64, bool);
    let figures: [Figure; 3] = [
        ("iperf3 1 stream to the service", "Gbit/s", |s| s.s1, true),
        ("iperf3 4 streams to the service", "Gbit/s", |s| s.s4, true),
        ("ping RTT avg to the pod", "ms", |s| s.rtt, false),
    ];
    for (name, unit, f, more_is_better) in figures {
        let per_round: Vec<f64> = gn.iter().zip(plain).map(|(g, p)| f(g) / f(p)).collect();
        let ratio = median(&per_round);
        let pick = |v: &[Sample]| median(&v.iter().map(f).collect::<Vec<_>>());
        // RTT: 0.9× the plain path's performance is 1/0.9 of its RTT.
        let (target, pass) = if more_is_better {
            (">= 0.9x", ratio >= 0.9)
        } else {
            ("<= 1.11x", ratio <= 1.0 / 0.9)
        };
        report.notes.push(format!(
            "globalnet: {name}: per-round globalnet/plain ratios {}",
            per_round
                .iter()
                .map(|r| format!("{r:.2}"))
                .collect::<Vec<_>>()
                .join(" ")
        ));
        report.rows.push(Row {
            metric: format!("globalnet: {name} ({unit})"),
            ferry: format!("{:.3}", pick(gn)),
            anchor: format!("{:.3} plain wireguard", pick(plain)),
            ratio: Some(ratio),
            target: target.into(),
            pass: Some(pass),
        });
    }
}

/// One ServiceExport in B of a fresh service `name` (created first, not
/// exported): (ms until A's DNS answers a global IP, ms until it connects).
fn export_once(gn: &Pair, dns: &mut Dns, name: &str) -> Result<(f64, f64)> {
    gn.b.apply(&service_yaml(name, &[CONNECT_PORT], false))?;
    let t0 = Instant::now();
    gn.b.apply(&export_yaml(name))?;
    let applied = t0.elapsed();
    let addr = dns.wait_addr(&clusterset_name(name), Duration::from_secs(30))?;
    let resolved = t0.elapsed();
    let to = SocketAddr::new(addr.into(), CONNECT_PORT);
    wait_connect(&gn.a_pods[0].netns, to, Duration::from_secs(30))?;
    let reached = t0.elapsed();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    eprintln!(
        "export {name}: {addr} resolvable {:.0} ms, reachable {:.0} ms after `kubectl apply` of the ServiceExport ({:.0} ms to run it) [load {}]",
        ms(resolved),
        ms(reached),
        ms(applied),
        sys::loadavg()
    );
    Ok((ms(resolved), ms(reached)))
}

/// Rows ServiceExport → resolvable and → reachable global IP, p50 and max.
fn export_rows(args: &Args, gn: &Pair, dns: &mut Dns, report: &mut Report) -> Result<()> {
    let (mut resolved, mut reached) = (Vec::new(), Vec::new());
    for i in 0..args.exports {
        let (r, c) = export_once(gn, dns, &format!("gn-x{i}"))?;
        resolved.push(r);
        reached.push(c);
    }
    let n = args.exports;
    for (what, v) in [("resolvable", &resolved), ("reachable", &reached)] {
        for (stat, x) in [("p50", median(v)), ("max", max(v))] {
            report.rows.push(Row {
                metric: format!("globalnet: ServiceExport -> {what} global IP, {stat} of {n} (ms)"),
                ferry: format!("{x:.0}"),
                anchor: "-".into(),
                ratio: None,
                target: "<= 1000".into(),
                pass: Some(x <= 1000.0),
            });
        }
        report.notes.push(format!(
            "globalnet: ServiceExport -> {what} samples (ms): {}",
            v.iter()
                .map(|t| format!("{t:.0}"))
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    Ok(())
}
