//! What the `ferry` CLI and the per-daemon binaries share: the four node and
//! cluster daemons ([`daemon`]: agent, dns, gateway, route agent) and how
//! every command ends ([`errors`]).
//!
//! Each daemon is both a `ferry` subcommand (`ferry agent`) and a binary of
//! its own (`ferry-agent`), which is what ferry's manifests run: a binary
//! that links one daemon maps only that daemon's code, while the multi-call
//! `ferry` spreads a daemon's code over a text four times larger and keeps
//! ~10 MB more of it resident per process (issue #19; bench/rss/README.md).
#![forbid(unsafe_code)]

pub mod daemon;
pub mod errors;

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
