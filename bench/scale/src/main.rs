//! `bench/scale`: ferry's control plane with many member clusters. One
//! broker (a `ferry apiserver` in a child process, so its RSS and CPU are its
//! own) and N member clusters (default 250), each with M exported services
//! (default 100, distinct names, so every member imports N·M services). Each
//! member is a loopback `ferry apiserver` of its own (all in this process:
//! cheap, but each one a full API server with its own store) and has its own
//! `ferry agent` in a child process (this binary re-executed with `agent`,
//! running `ferry_agent::run` as `ferry agent` does: its own watches on its
//! cluster and the broker, its own writes).
//!
//! It measures
//! - sync: agents start → every member holds a ServiceImport with
//!   `status.clusters` and an imported EndpointSlice for every service of
//!   every other cluster (target ≤ 30 s for 250 × 100);
//! - the broker: RSS, CPU, writes (revisions) per second, and the events its
//!   watches delivered (its `ferry_apiserver_watch_events` counter), per agent;
//! - each agent's RSS (min / median / max);
//! - change: flip the readiness of one service's EndpointSlice in one member,
//!   and time until each of the other N−1 members has stored it (p50 / p99 /
//!   max over `--changes` changes; target p99 ≤ 500 ms).
//!
//! It is not a data-plane or DNS benchmark, and the members are API servers
//! without nodes, gateways or a DNS: only the MCS exchange runs.
#![forbid(unsafe_code)]

mod members;
mod observe;
mod procs;
mod report;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

// mimalloc, tuned: see ferry-alloc (as the `ferry` binary).
#[global_allocator]
static ALLOCATOR: ferry_alloc::Allocator = ferry_alloc::Allocator;

const HELP: &str = "\
ferry-bench-scale: one broker, N member clusters with M exported services each

usage: ferry-bench-scale [--clusters N] [--services M] [--changes K] [--timeout SECS]

  --clusters N    member clusters (default 250), each an in-process ferry apiserver
                  with its own ferry agent (child process)
  --services M    services each member exports (default 100)
  --changes K     single-service changes timed after the sync (default 5)
  --timeout SECS  give up on the sync after SECS (default 900)

Targets (issue #19, 250 x 100): every member has every import <= 30 s;
one change reaches all other members p99 <= 500 ms.
Every member stores 2 x (N-1) x M imported objects and its agent keeps them
too: 250 x 100 is 12.4 million objects in all (see bench/scale/README.md);
raise `ulimit -n` for N > 200.";

/// What to run.
#[derive(Debug, Clone)]
pub struct Args {
    pub clusters: usize,
    pub services: usize,
    pub changes: usize,
    pub timeout: Duration,
}

fn parse_args(args: &[String]) -> anyhow::Result<Option<Args>> {
    let mut out = Args {
        clusters: 250,
        services: 100,
        changes: 5,
        timeout: Duration::from_secs(900),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| -> anyhow::Result<usize> {
            let v = it.next().with_context(|| format!("{name} needs a value"))?;
            v.parse().with_context(|| format!("{name} {v:?}"))
        };
        match a.as_str() {
            "-h" | "--help" => return Ok(None),
            "--clusters" => out.clusters = value("--clusters")?,
            "--services" => out.services = value("--services")?,
            "--changes" => out.changes = value("--changes")?,
            "--timeout" => out.timeout = Duration::from_secs(value("--timeout")? as u64),
            other => anyhow::bail!("unknown argument {other:?} (see --help)"),
        }
    }
    anyhow::ensure!(
        (2..=1000).contains(&out.clusters),
        "--clusters must be 2..=1000"
    );
    anyhow::ensure!(
        (1..=4000).contains(&out.services),
        "--services must be 1..=4000"
    );
    Ok(Some(out))
}

fn main() -> anyhow::Result<()> {
    ferry_alloc::tune();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("agent") => {
            let kubeconfig = PathBuf::from(args.get(1).context("agent KUBECONFIG")?);
            return procs::agent_main(&kubeconfig);
        }
        Some("broker") => {
            let dir = PathBuf::from(args.get(1).context("broker DATA_DIR")?);
            return procs::broker_main(&dir);
        }
        _ => {}
    }
    let Some(args) = parse_args(&args)? else {
        println!("{HELP}");
        return Ok(());
    };
    ferry_bench_kit::log_warnings_to_stderr();
    let rt = tokio::runtime::Runtime::new()?;
    let outcome = rt.block_on(run(&args))?;
    report::print(&args, &outcome);
    Ok(())
}

async fn run(args: &Args) -> anyhow::Result<report::Outcome> {
    let load_before = ferry_bench_kit::procfs::loadavg();
    let tmp = tempfile::tempdir()?;
    let broker = members::Broker::start(tmp.path()).await?;
    let members = members::start_all(tmp.path(), &broker, args).await?;
    let sync = observe::sync(&broker, &members, args).await?;
    observe::settle(&broker, &members).await?;
    let change = observe::changes(&members, args).await?;
    let mut agents = sync.agents;
    for a in &mut agents {
        let _ = a.kill().await;
    }
    members::stop_all(members).await;
    Ok(report::Outcome {
        sync: sync.figures,
        change,
        load_before,
        load_after: ferry_bench_kit::procfs::loadavg(),
    })
}
