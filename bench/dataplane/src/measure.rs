//! Throughput (iperf3) and RTT (ping) between two pods, run inside their
//! network namespaces.

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

use crate::sys;
use ferry_sandbox::harness::Pod;

/// TCP port of the iperf3 server of ferry's runs (the anchor's: [`crate::anchor::PORT`]).
pub const FERRY_PORT: &str = "5299";

/// One measurement of a path.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    /// iperf3, one stream, Gbit/s received.
    pub s1: f64,
    /// iperf3, four streams, Gbit/s received.
    pub s4: f64,
    /// ping RTT average, ms.
    pub rtt: f64,
    /// ping loss, percent.
    pub loss: f64,
}

/// Gbit/s received by an `iperf3 -s` in `to`'s namespace from a client in `from`'s.
pub fn iperf(from: &Pod, to: &Pod, port: &str, streams: u32, secs: u32) -> Result<f64> {
    let mut last_err = anyhow!("iperf3 never ran");
    for _attempt in 0..3 {
        let mut server = sys::ns_spawn(&to.netns, &[], "iperf3", &["-s", "-1", "-p", port])?;
        std::thread::sleep(Duration::from_millis(300));
        let out = sys::ns_run(
            &from.netns,
            "iperf3",
            &[
                "-c",
                &to.ip.to_string(),
                "-p",
                port,
                "-t",
                &secs.to_string(),
                "-P",
                &streams.to_string(),
                "-J",
            ],
        );
        let _ = server.kill();
        let _ = server.wait();
        match out.and_then(|o| {
            let v: serde_json::Value = serde_json::from_str(&o).context("iperf3 -J output")?;
            v["end"]["sum_received"]["bits_per_second"]
                .as_f64()
                .ok_or_else(|| anyhow!("iperf3: no end.sum_received: {}", v["error"]))
        }) {
            Ok(bps) => return Ok(bps / 1e9),
            Err(e) => last_err = e,
        }
    }
    Err(last_err)
}

/// `ping -c COUNT -i 0.01 [-Q TOS]`: (average RTT in ms, loss in percent).
pub fn ping(from: &Pod, to: Ipv4Addr, count: u32, tos: Option<&str>) -> Result<(f64, f64)> {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &from.netns, "ping", "-q", "-i", "0.01"]);
    if let Some(t) = tos {
        cmd.args(["-Q", t]);
    }
    let out = cmd
        .args(["-c", &count.to_string(), &to.to_string()])
        .stdin(Stdio::null())
        .output()
        .context("running ping")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let loss = text
        .lines()
        .find_map(|l| {
            let i = l.find("% packet loss")?;
            l[..i].rsplit([' ', ',']).next()?.parse::<f64>().ok()
        })
        .ok_or_else(|| anyhow!("ping: no loss figure in {text:?}"))?;
    let rtt = text
        .lines()
        .find(|l| l.starts_with("rtt") || l.starts_with("round-trip"))
        .and_then(|l| l.split('=').nth(1))
        .and_then(|v| v.trim().split('/').nth(1))
        .and_then(|v| v.parse::<f64>().ok());
    match rtt {
        Some(rtt) => Ok((rtt, loss)),
        None => bail!("ping {to}: no replies ({loss}% loss)"),
    }
}

/// One ping with a 1 s deadline.
pub fn ping_once(from_ns: &str, to: Ipv4Addr) -> bool {
    ping_once_tos(from_ns, to, None)
}

/// One ping with TOS `tos` and a 1 s deadline.
pub fn ping_once_tos(from_ns: &str, to: Ipv4Addr, tos: Option<&str>) -> bool {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", from_ns, "ping", "-c", "1", "-W", "1", "-q"]);
    if let Some(t) = tos {
        cmd.args(["-Q", t]);
    }
    cmd.arg(to.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
