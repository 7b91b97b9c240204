//! One module per subcommand.

pub mod agent;
pub mod apiserver;
pub mod benchmark;
pub mod completion;
pub mod crds;
pub mod dashboard;
pub mod demo;
pub mod deploy_broker;
pub mod diagnose;
pub mod dns;
pub mod errors;
pub mod export;
pub mod gateway;
pub mod gather;
pub mod globalnet;
pub mod join;
pub mod progress;
pub mod recover_broker_info;
pub mod route_agent;
pub mod sandbox;
pub mod show;
pub mod targets;
pub mod tools;
pub mod uninstall;
pub mod verify;

/// The tokio runtime of a long-running daemon: at most `max_workers` worker
/// threads (fewer on a machine with fewer CPUs), each of which hands the
/// memory it freed back to the kernel when it runs out of work
/// ([`ferry_alloc::release_when_idle`]), and whose heap has no huge pages
/// ([`ferry_alloc::small_pages`]). Every worker costs its own stack and
/// allocator heap, so daemons whose work is not the data path keep one or
/// two instead of tokio's one per CPU (issue #19: idle RSS).
pub fn daemon_runtime(max_workers: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context as _;
    ferry_alloc::small_pages();
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(max_workers.clamp(1, cpus.max(1)))
        .on_thread_park(ferry_alloc::release_when_idle)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Serves a daemon's `/metrics` at `addr` (`HOST:PORT`, empty: off). A port
/// that cannot be bound is logged, not fatal: the daemon's own job (routes,
/// cables, sync) matters more than its metrics.
pub async fn serve_metrics(addr: &str, render: ferry_kube::metrics::Render) {
    if let Err(error) = ferry_kube::metrics::spawn(addr, render).await {
        tracing::error!(%error, "no /metrics");
    }
}

/// Logs go to stderr; `RUST_LOG` filters them (default `info`).
/// `default` applies when `RUST_LOG` is unset: daemons log at info, while
/// interactive commands that narrate their own progress pass `warn`.
pub fn init_tracing(default: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
