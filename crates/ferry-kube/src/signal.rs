//! The shutdown signal of a daemon.

use std::future::Future;

use tokio::signal::unix::{SignalKind, signal};

/// Completes on SIGTERM (how Kubernetes and the sandbox stop a pod) or
/// Ctrl-C. The SIGTERM handler is installed at once, not at the first poll,
/// so a SIGTERM that arrives while the daemon is still starting is not the
/// default (instant) death. Call it inside a Tokio runtime.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    let term = signal(SignalKind::terminate())
        .inspect_err(|error| {
            tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops this process");
        })
        .ok();
    async move {
        match term {
            Some(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn sigterm_completes_it() {
        let stop = shutdown_signal();
        // Installed before the first poll: the signal is caught, not fatal.
        nix::sys::signal::raise(nix::sys::signal::Signal::SIGTERM).unwrap();
        tokio::time::timeout(Duration::from_secs(5), stop)
            .await
            .unwrap();
    }
}
