//! The `failover` section: kill -9 of the active gateway to the first
//! reply through the standby.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};

use crate::args::Args;
use crate::cluster::{Joined, Pair, cable};
use crate::probe::{self, Echo, Probe};
use crate::report::{Report, Row, SUBMARINER_DOWN, max, median};
use crate::sys::{self, wait_for};

/// UDP port of the failover echo servers in A's pods.
const ECHO_PORT: u16 = 7777;

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
pub fn failover(args: &Args, pair: &Pair, report: &mut Report) -> Result<()> {
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
    // The wireguard pair's rows keep their names; other drivers say theirs.
    let driver = match pair.driver.as_str() {
        "wireguard" => String::new(),
        d => format!("{d}: "),
    };
    for (name, v) in [("median", med), ("max", mx)] {
        report.rows.push(Row {
            metric: format!(
                "{driver}failover {name} of {} kills, kill -> reply (ms)",
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
        "{driver}failover samples (ms): {}{}; probes to the standby's pod answered before the kill (route agent path) in {via_route_agent}/{} kills",
        times.iter().map(|t| format!("{t:.0}")).collect::<Vec<_>>().join(" "),
        if failures > 0 { format!("; {failures} kills never recovered within 20 s") } else { String::new() },
        args.kills
    ));
    Ok(())
}
