//! `ferry tools probe`: what the temporary test pods of `ferry diagnose`,
//! `verify` and `benchmark` run (hidden from --help). `run` executes the
//! JSON tasks it is given, prints the report as one JSON line and writes
//! it into its own pod's annotation (see `ferry_ctl::probe`); `serve` is
//! the UDP/TCP echo and byte sink the others measure against.

use std::time::Duration;

use anyhow::Context;
use ferry_ctl::probe::{self, Task};

/// The probe helper.
#[derive(Debug, clap::Subcommand)]
pub enum Probe {
    /// Run tasks (a JSON array), report, exit.
    Run {
        /// The tasks, as JSON.
        #[arg(long)]
        tasks: String,
        /// Print the report only; do not write it into the pod.
        #[arg(long)]
        no_publish: bool,
    },
    /// Echo UDP and serve TCP echo/sink connections.
    Serve {
        /// UDP and TCP port.
        #[arg(long, default_value_t = probe::SERVE_PORT)]
        port: u16,
        /// Exit after this long.
        #[arg(long, default_value = "10m", value_parser = crate::cmd::errors::parse_duration)]
        max_duration: Duration,
    },
}

pub fn run(p: Probe) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match p {
        Probe::Run { tasks, no_publish } => {
            let tasks: Vec<Task> =
                serde_json::from_str(&tasks).context("parsing --tasks (a JSON array of tasks)")?;
            rt.block_on(async {
                let report = probe::run::run(&tasks).await;
                println!("{}", serde_json::to_string(&report)?);
                if !no_publish {
                    probe::publish(&report).await?;
                }
                Ok(())
            })
        }
        Probe::Serve { port, max_duration } => rt
            .block_on(probe::serve::serve(port, max_duration))
            .with_context(|| format!("serving on port {port}")),
    }
}
