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
