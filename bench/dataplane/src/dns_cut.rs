//! The `dns` section: time from a cable cut to the remote cluster leaving
//! the DNS answers, and back.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::args::Args;
use crate::cluster::{Joined, Pair};
use crate::probe;
use crate::report::{Report, Row, SUBMARINER_DOWN, max, median};
use crate::sys;

/// The exported service: examples/nginx.yaml and a ServiceExport for it.
const NGINX_YAML: &str = include_str!("../../../examples/nginx.yaml");
const EXPORT_YAML: &str = "apiVersion: multicluster.x-k8s.io/v1alpha1
kind: ServiceExport
metadata:
  name: nginx
  namespace: nginx-test
";

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
pub fn dns_cut(args: &Args, pair: &Pair, report: &mut Report) -> Result<()> {
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
