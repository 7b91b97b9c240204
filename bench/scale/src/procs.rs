//! The child processes (a member's agent, the broker) and what /proc says
//! about them.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

/// A member's agent, as `ferry agent --kubeconfig K` runs it (the same
/// runtime, the same `ferry_agent::run`).
pub fn agent_main(kubeconfig: &Path) -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async {
        let local = crate::members::client(kubeconfig).await?;
        let (cfg, info) = ferry_agent::load_config(&local, "ferry-system").await?;
        let broker = ferry_kube::broker_client(&info, &info.token).await?;
        ferry_agent::run(cfg, local, broker, std::future::pending()).await;
        Ok(())
    })
}

/// The broker: a `ferry apiserver` in `dir` on a loopback port, as `ferry
/// apiserver` runs it. Prints `KUBECONFIG<TAB>JOINER-TOKEN` once it serves,
/// then serves until killed.
pub fn broker_main(dir: &Path) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        let loopback = "127.0.0.1:0".parse()?;
        let server = ferry_apiserver::start(ferry_apiserver::Config::new(dir, loopback)).await?;
        let joiner = ferry_apiserver::create_token(dir, &ferry_apiserver::Identity::Joiner)?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}\t{joiner}", server.admin_kubeconfig.display())?;
        out.flush()?;
        drop(out);
        server.wait().await;
        Ok(())
    })
}

/// VmRSS and VmHWM of a process, in MB (0 when it is gone).
pub fn rss_mb(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// User + system CPU seconds a process has used (USER_HZ is 100 on Linux).
pub fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime: fields 14 and 15 of the line, 11 and 12 after "(comm) ".
    (ticks(11) + ticks(12)) / 100.0
}

/// The machine's 1-minute load average (the box is shared: say how loaded).
pub fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}
