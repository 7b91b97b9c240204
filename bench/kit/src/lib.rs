//! What ferry's control-plane benchmarks (`bench/propagation`,
//! `bench/scale`) share: a client made as ferry's daemons make theirs, the
//! agent as a member's child process runs it, the Service-with-one-endpoint
//! fixture members export, and what `/proc` says about a process.
//!
//! It is not a harness: each benchmark brings up its own clusters and
//! prints its own report; the data-path benchmarks need none of this.
#![forbid(unsafe_code)]

pub mod fixture;
pub mod procfs;

use std::path::Path;

use anyhow::Context;
use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};

/// Logs at `warn` (or `RUST_LOG`) to stderr, which keeps the report on
/// stdout clean.
pub fn log_warnings_to_stderr() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// A multiplexed client from a kubeconfig, as ferry's daemons make them
/// (reading whole objects, as the benchmarks' own watches need).
pub async fn client(kubeconfig: &Path) -> anyhow::Result<Client> {
    client_reading(kubeconfig, ferry_kube::ManagedFields::Read).await
}

async fn client_reading(
    kubeconfig: &Path,
    fields: ferry_kube::ManagedFields,
) -> anyhow::Result<Client> {
    let kc = Kubeconfig::read_from(kubeconfig)?;
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
    Ok(ferry_kube::multiplexed_client(
        config,
        ferry_kube::ClientFor::Cluster,
        fields,
    )?)
}

/// The `main` of a benchmark's agent child process: a member's agent as
/// `ferry agent --kubeconfig K` runs it, on the daemon's runtime (its worker
/// count, no huge pages, freed memory handed back when idle: what the
/// agent's RSS and CPU are measured on); `write_concurrency` overrides the
/// configured one. Runs until the process is killed.
pub fn agent_main(kubeconfig: &Path, write_concurrency: Option<usize>) -> anyhow::Result<()> {
    ferry_kube::runtime::daemon(ferry_agent::WORKER_THREADS)
        .context("starting the async runtime")?
        .block_on(run_agent(kubeconfig, write_concurrency))
}

/// A member's agent, as `ferry agent --kubeconfig K` runs it (the same
/// `ferry_agent::run`); `write_concurrency` overrides the configured one.
/// Runs until the process is killed.
async fn run_agent(kubeconfig: &Path, write_concurrency: Option<usize>) -> anyhow::Result<()> {
    // The clients `ferry agent` makes: they skip managedFields.
    let skip = ferry_kube::ManagedFields::Skip;
    let local = client_reading(kubeconfig, skip).await?;
    let (mut cfg, info) = ferry_agent::load_config(&local, "ferry-system")
        .await
        .context("reading the agent's configuration")?;
    if let Some(n) = write_concurrency {
        cfg.write_concurrency = n;
    }
    let broker = ferry_kube::broker_client_reading(&info, &info.token, skip).await?;
    ferry_agent::run(cfg, local, broker, std::future::pending()).await;
    Ok(())
}
