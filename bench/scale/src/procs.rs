//! The child processes: a member's agent and the broker.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

/// A member's agent, as `ferry agent --kubeconfig K` runs it (the same
/// runtime, the same `ferry_agent::run`).
pub fn agent_main(kubeconfig: &Path) -> anyhow::Result<()> {
    ferry_bench_kit::agent_main(kubeconfig, None)
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
