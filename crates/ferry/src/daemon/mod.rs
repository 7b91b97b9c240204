//! The long-running daemons, one module each, and what they share: their
//! runtime, their /metrics server, and [`main`], the whole `main` of the
//! per-daemon binaries (`ferry-agent`, `ferry-dns`, `ferry-gateway`,
//! `ferry-route-agent`).

use std::process::ExitCode;

pub mod agent;
pub mod dns;
pub mod gateway;
pub mod route_agent;

/// A daemon binary's `main`: parses `A` as the whole command line of
/// `name` (the same flags as `ferry <daemon>`), then runs it; errors end
/// as every `ferry` command's do ([`crate::errors::report`]).
pub fn main<A: clap::Args>(name: &'static str, run: fn(A) -> anyhow::Result<()>) -> ExitCode {
    ferry_alloc::tune();
    let command = A::augment_args(clap::Command::new(name).version(env!("CARGO_PKG_VERSION")));
    let args = match A::from_arg_matches(&command.get_matches()) {
        Ok(args) => args,
        Err(e) => e.exit(),
    };
    crate::init_tracing("info");
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => crate::errors::report(&e),
    }
}

/// The tokio runtime of a long-running daemon: see
/// [`ferry_kube::runtime::daemon`] (few workers, no huge pages, freed memory
/// handed back when idle).
fn runtime(max_workers: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context as _;
    ferry_kube::runtime::daemon(max_workers).context("starting the async runtime")
}

/// Serves a daemon's `/metrics` at `addr` (`HOST:PORT`, empty: off). A port
/// that cannot be bound is logged, not fatal: the daemon's own job (routes,
/// cables, sync) matters more than its metrics.
async fn serve_metrics(addr: &str, render: ferry_kube::metrics::Render) {
    if let Err(error) = ferry_kube::metrics::spawn(addr, render).await {
        tracing::error!(%error, "no /metrics");
    }
}
