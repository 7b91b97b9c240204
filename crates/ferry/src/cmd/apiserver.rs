//! `ferry apiserver`: run the embedded API server, or mint tokens for it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use ferry_apiserver::{Config, Identity};

/// Run ferry's embedded Kubernetes-compatible API server.
///
/// One process, one data directory: objects are kept in a SQLite revision log
/// (every write fsynced before it is acknowledged), served over TLS with a CA
/// generated on first start. The first start also writes an admin kubeconfig
/// to DATA_DIR/admin.kubeconfig, so that
///
///     KUBECONFIG=DATA_DIR/admin.kubeconfig kubectl get namespaces
///
/// works at once. Scoped tokens for clusters joining a broker come from
/// `ferry apiserver token create`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    action: Option<Action>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Where the database, CA and admin kubeconfig are kept.
    #[arg(long, env = "FERRY_APISERVER_DATA_DIR", default_value_os_t = default_data_dir())]
    data_dir: PathBuf,
    /// Address and port to listen on (TLS).
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Extra DNS names or IP addresses for the serving certificate.
    #[arg(long = "tls-san", value_name = "NAME")]
    tls_sans: Vec<String>,
    /// URL clients use to reach this server, written into kubeconfigs
    /// (default: https://LISTEN, with 0.0.0.0 shown as 127.0.0.1).
    #[arg(long, value_name = "URL")]
    advertise_url: Option<String>,
    /// Largest request body accepted, in bytes (413 above).
    #[arg(long, default_value_t = 3 * 1024 * 1024)]
    max_body_bytes: usize,
    /// Revisions of history kept for watchers that resume; older ones are
    /// compacted away (watchers that ask for them get 410 Expired and relist).
    #[arg(long, default_value_t = 10_000)]
    history_revisions: u64,
    /// How often to compact the history, in seconds.
    #[arg(long, default_value_t = 60)]
    compaction_interval_secs: u64,
    /// Most writes (POST, PUT, PATCH, DELETE) handled at once; beyond it
    /// clients get 429 Too Many Requests with Retry-After, as from
    /// kube-apiserver. 0: no limit (writes queue for the group commit
    /// instead).
    #[arg(long, default_value_t = 0)]
    max_mutating_requests_inflight: usize,
    /// IPv4 CIDR Service cluster IPs are allocated from (as kube-apiserver's
    /// flag; a Service asking for an address outside it gets 422).
    #[arg(long, value_name = "CIDR", default_value = ferry_apiserver::DEFAULT_SERVICE_CLUSTER_IP_RANGE)]
    service_cluster_ip_range: String,
    /// Ports NodePort and LoadBalancer Services are given, LOW-HIGH.
    #[arg(long, value_name = "LOW-HIGH", default_value = "30000-32767")]
    service_node_port_range: String,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Manage bearer tokens.
    #[command(subcommand)]
    Token(TokenAction),
}

#[derive(Debug, clap::Subcommand)]
enum TokenAction {
    /// Mint a token and print it. Only its hash is stored.
    ///
    /// With --cluster ID the token may read everything but write only objects
    /// labelled ferry.dev/cluster=ID; with --joiner it may read everything and
    /// mint cluster tokens through ServiceAccount TokenRequests (what
    /// `ferry join` uses); with --admin it may do anything.
    Create {
        /// The server's data directory.
        #[arg(long, env = "FERRY_APISERVER_DATA_DIR", default_value_os_t = default_data_dir())]
        data_dir: PathBuf,
        /// Cluster id the token is scoped to.
        #[arg(long, required_unless_present_any = ["admin", "joiner"], conflicts_with_all = ["admin", "joiner"])]
        cluster: Option<String>,
        /// Mint an admin token instead.
        #[arg(long, conflicts_with = "joiner")]
        admin: bool,
        /// Mint a joiner token instead.
        #[arg(long)]
        joiner: bool,
    },
}

fn default_data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(d).join("ferry/apiserver");
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".local/share/ferry/apiserver"),
        None => PathBuf::from("ferry-apiserver-data"),
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.action {
        Some(Action::Token(TokenAction::Create {
            data_dir,
            cluster,
            admin,
            joiner,
        })) => {
            let identity = match (cluster, admin) {
                (_, true) => Identity::Admin,
                (None, false) if joiner => Identity::Joiner,
                (Some(id), false) => {
                    ferry_api::validate_cluster_id(&id)?;
                    Identity::Cluster(id)
                }
                (None, false) => anyhow::bail!("give --cluster ID or --admin"),
            };
            let token = ferry_apiserver::create_token(&data_dir, &identity)
                .with_context(|| format!("minting a token for {identity}"))?;
            println!("{token}");
            Ok(())
        }
        None => serve(args.serve),
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let mut config = Config::new(&args.data_dir, args.listen);
        config.tls_sans = args.tls_sans;
        config.advertise_url = args.advertise_url;
        config.body_limit = args.max_body_bytes;
        config.history_revisions = args.history_revisions;
        config.compaction_interval = Duration::from_secs(args.compaction_interval_secs.max(1));
        config.max_mutating_inflight = args.max_mutating_requests_inflight;
        config.service_cluster_ip_range = args
            .service_cluster_ip_range
            .parse()
            .context("--service-cluster-ip-range")?;
        config.service_node_port_range =
            ferry_apiserver::service_ips::parse_port_range(&args.service_node_port_range)
                .context("--service-node-port-range")?;
        let server = ferry_apiserver::start(config)
            .await
            .with_context(|| format!("starting the API server in {}", args.data_dir.display()))?;
        tracing::info!(url = %server.url, data_dir = %args.data_dir.display(), "ferry apiserver ready");
        eprintln!(
            "ferry apiserver listening on {}\nadmin kubeconfig: {}\ntry: KUBECONFIG={} kubectl get namespaces",
            server.url,
            server.admin_kubeconfig.display(),
            server.admin_kubeconfig.display()
        );
        tokio::select! {
            _ = server_wait(server) => {}
            _ = ferry_kube::shutdown_signal() => tracing::info!("shutting down"),
        }
        Ok(())
    })
}

async fn server_wait(server: ferry_apiserver::RunningServer) {
    server.wait().await
}
