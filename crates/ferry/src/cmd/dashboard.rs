//! `ferry dashboard`: the live topology page.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;

const EXAMPLES: &str = "Examples:
  ferry dashboard --kubeconfig east.kubeconfig,west.kubeconfig
  ferry dashboard --context east,west --listen 127.0.0.1:9000 --refresh 2s";

/// Serve a live picture of the clusterset on a local web page.
///
/// The page shows the topology of `ferry show topology -o svg` (clusters,
/// gateways, cables with driver, status and RTT; a cable that is down in
/// red) beside the `show` tables of connections, endpoints, gateways and
/// services, and follows the clusters as they change: ferry re-reads them
/// every --refresh and the page fetches the new state as often. One
/// self-contained page (no external assets, no login): it listens on
/// 127.0.0.1 only, unless --allow-remote.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    #[command(flatten)]
    clusters: super::targets::ClusterTargets,
    /// Address to serve the page on (port 0: any free port, printed).
    #[arg(long, default_value = "127.0.0.1:8090", value_name = "HOST:PORT")]
    listen: SocketAddr,
    /// Allow a --listen address other than loopback: anyone who reaches it
    /// sees the clusterset's topology and addresses.
    #[arg(long)]
    allow_remote: bool,
    /// How often the clusters are read and the page updated.
    #[arg(long, default_value = "1s", value_parser = super::errors::parse_duration)]
    refresh: Duration,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    use ferry_ctl::dashboard;
    dashboard::check_listen(args.listen, args.allow_remote)?;
    if args.refresh < Duration::from_millis(100) {
        return Err(ferry_ctl::Error::Usage(
            "--refresh must be at least 100ms (each refresh reads every cluster's API)".into(),
        )
        .into());
    }
    let specs = args.clusters.specs()?;
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async {
        let listener = dashboard::bind(args.listen).await?;
        let addr = listener.local_addr().unwrap_or(args.listen);
        // The line scripts (and the e2e test) read the URL from.
        println!("ferry dashboard on http://{addr}/ (Ctrl-C to stop)");
        tokio::select! {
            served = dashboard::serve(listener, specs, args.refresh) => served?,
            _ = tokio::signal::ctrl_c() => {}
        }
        Ok(())
    })
}
