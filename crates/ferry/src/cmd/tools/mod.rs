//! `ferry tools`: developer tools that are not part of a deployed component.

pub mod echo;
pub mod probe;
pub mod wg;

/// Developer tools.
#[derive(Debug, clap::Subcommand)]
pub enum Tools {
    /// The user-space WireGuard data path: bring a device up, make keys.
    #[command(subcommand)]
    Wg(wg::Wg),
    /// Answer every HTTP request with the pod name and path (sandbox workloads).
    HttpEcho {
        #[arg(long, default_value_t = 8080)]
        port: u16,
    },
    /// Echo every TCP connection's bytes back (sandbox workloads).
    TcpEcho {
        #[arg(long, default_value_t = 9000)]
        port: u16,
    },
    /// What the test pods of diagnose, verify and benchmark run.
    #[command(subcommand, hide = true)]
    Probe(probe::Probe),
}

/// Run a tool.
pub fn run(t: Tools) -> anyhow::Result<()> {
    match t {
        Tools::Wg(w) => wg::run(w),
        Tools::HttpEcho { port } => echo::http_echo(port),
        Tools::TcpEcho { port } => echo::tcp_echo(port),
        Tools::Probe(p) => probe::run(p),
    }
}
