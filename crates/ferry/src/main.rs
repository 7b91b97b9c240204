//! The `ferry` binary: every ferry component and the CLI, one subcommand each.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

mod cmd;

// mimalloc, tuned: see ferry-alloc.
#[global_allocator]
static ALLOCATOR: ferry_alloc::Allocator = ferry_alloc::Allocator;

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
// Commands whose Args struct carries the doc comment (first paragraph: the
// one-line summary; all of it: the long --help) have none here: a doc
// comment on the variant would replace both.
enum Command {
    Agent(cmd::agent::Args),
    Apiserver(cmd::apiserver::Args),
    Benchmark(cmd::benchmark::Args),
    Completion(cmd::completion::Args),
    /// Print ferry's CustomResourceDefinitions as a multi-document YAML stream.
    ///
    /// Generated from the Rust types: ferry.dev Cluster, Endpoint, Gateway; MCS
    /// ServiceExport, ServiceImport; about.k8s.io ClusterProperty. Install them
    /// with `ferry crds | kubectl apply -f -`.
    Crds(cmd::crds::Args),
    Dashboard(cmd::dashboard::Args),
    DeployBroker(cmd::deploy_broker::Args),
    Diagnose(cmd::diagnose::Args),
    Dns(cmd::dns::Args),
    /// Export a Service to the clusterset (creates its ServiceExport).
    #[command(subcommand)]
    Export(cmd::export::Export),
    Gather(cmd::gather::Args),
    Gateway(cmd::gateway::Args),
    /// Globalnet in a joined cluster (`ferry globalnet enable`).
    #[command(subcommand)]
    Globalnet(cmd::globalnet::Globalnet),
    Join(cmd::join::Args),
    RecoverBrokerInfo(cmd::recover_broker_info::Args),
    RouteAgent(cmd::route_agent::Args),
    /// Multi-node Kubernetes-like clusters from network namespaces (ferry's kind).
    #[command(subcommand)]
    Sandbox(cmd::sandbox::Sandbox),
    Show(cmd::show::Args),
    /// Developer tools (e.g. `ferry tools wg up`).
    #[command(subcommand)]
    Tools(cmd::tools::Tools),
    Uninstall(cmd::uninstall::Args),
    /// Stop exporting a Service (deletes its ServiceExport).
    #[command(subcommand)]
    Unexport(cmd::export::Unexport),
    Verify(cmd::verify::Args),
}

/// Runs the command; errors become one `error:` line and a `hint:` line,
/// exit code 2 for usage errors and 1 for failures (cmd::errors).
fn main() -> ExitCode {
    ferry_alloc::tune();
    let cli = Cli::parse();
    // The demo prints its own timed steps; the library's info logs would
    // only interleave with them.
    let narrated = matches!(
        cli.command,
        Command::Sandbox(cmd::sandbox::Sandbox::Demo(_))
    );
    cmd::init_tracing(if narrated { "warn" } else { "info" });
    let result = match cli.command {
        Command::Agent(args) => cmd::agent::run(args),
        Command::Apiserver(args) => cmd::apiserver::run(args),
        Command::Benchmark(args) => cmd::benchmark::run(args),
        Command::Completion(args) => cmd::completion::run(args, Cli::command()),
        Command::Crds(args) => cmd::crds::run(args),
        Command::Dashboard(args) => cmd::dashboard::run(args),
        Command::DeployBroker(args) => cmd::deploy_broker::run(args),
        Command::Diagnose(args) => cmd::diagnose::run(args),
        Command::Dns(args) => cmd::dns::run(args),
        Command::Export(e) => cmd::export::run_export(e),
        Command::Gateway(args) => cmd::gateway::run(args),
        Command::Gather(args) => cmd::gather::run(args),
        Command::Globalnet(g) => cmd::globalnet::run(g),
        Command::Join(args) => cmd::join::run(args),
        Command::RecoverBrokerInfo(args) => cmd::recover_broker_info::run(args),
        Command::RouteAgent(args) => cmd::route_agent::run(args),
        Command::Sandbox(s) => cmd::sandbox::run(s),
        Command::Show(args) => cmd::show::run(args),
        Command::Tools(t) => cmd::tools::run(t),
        Command::Uninstall(args) => cmd::uninstall::run(args),
        Command::Unexport(u) => cmd::export::run_unexport(u),
        Command::Verify(args) => cmd::verify::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => cmd::errors::report(&e),
    }
}
