//! The `ferry` binary: every ferry component and the CLI, one subcommand each.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};

mod cmd;

/// ferry connects Kubernetes clusters: pods reach pods and services in other
/// clusters by IP through encrypted gateway tunnels, and find them by name
/// through the Multi-Cluster Services API.
#[derive(Debug, Parser)]
#[command(name = "ferry", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Sync this cluster with the broker: clusters, endpoints, MCS exports/imports.
    Agent(cmd::agent::Args),
    /// Run the embedded, durable, Kubernetes-compatible API server.
    Apiserver(cmd::apiserver::Args),
    /// Print ferry's CustomResourceDefinitions as a multi-document YAML stream.
    ///
    /// Generated from the Rust types: ferry.dev Cluster, Endpoint, Gateway; MCS
    /// ServiceExport, ServiceImport; about.k8s.io ClusterProperty. Install them
    /// with `ferry crds | kubectl apply -f -`.
    Crds(cmd::crds::Args),
    /// Deploy the broker and write broker-info.ferry for `ferry join`.
    DeployBroker(cmd::deploy_broker::Args),
    /// Serve clusterset.local (MCS DNS), health- and latency-aware.
    Dns(cmd::dns::Args),
    /// Run the gateway engine on this node: HA lease, Endpoint, cables, health checks.
    Gateway(cmd::gateway::Args),
    /// Join this cluster to the clusterset (validates, then installs ferry).
    Join(cmd::join::Args),
    /// Route cross-cluster traffic from this node through vx-ferry to the active gateway.
    #[command(long_about = cmd::route_agent::LONG_ABOUT)]
    RouteAgent(cmd::route_agent::Args),
    /// Multi-node Kubernetes-like clusters from network namespaces (ferry's kind).
    #[command(subcommand)]
    Sandbox(cmd::sandbox::Sandbox),
    /// Developer tools (e.g. `ferry tools wg up`).
    #[command(subcommand)]
    Tools(cmd::tools::Tools),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    cmd::init_tracing();
    match cli.command {
        Command::Agent(args) => cmd::agent::run(args),
        Command::Apiserver(args) => cmd::apiserver::run(args),
        Command::Crds(args) => cmd::crds::run(args),
        Command::DeployBroker(args) => cmd::deploy_broker::run(args),
        Command::Dns(args) => cmd::dns::run(args),
        Command::Gateway(args) => cmd::gateway::run(args),
        Command::Join(args) => cmd::join::run(args),
        Command::RouteAgent(args) => cmd::route_agent::run(args),
        Command::Sandbox(s) => cmd::sandbox::run(s),
        Command::Tools(t) => cmd::tools::run(t),
    }
}
