//! `ferry agent` (and the `ferry-agent` binary): the control-plane daemon of
//! one member cluster.

use std::path::PathBuf;

use anyhow::Context;
use ferry_api::{BrokerInfo, Cidr};

/// Run the agent: sync this cluster with the broker.
///
/// Publishes this cluster's Cluster and its gateways' Endpoints to the
/// broker and copies every other cluster's into ferry-system; turns each
/// ServiceExport into this cluster's ServiceImport + EndpointSlice on the
/// broker (with Valid/Ready/Conflict conditions), and merges every cluster's
/// exports into local ServiceImports and EndpointSlices under the MCS rules.
///
/// In a cluster it needs no flags: it reads the ferry-broker Secret that
/// `ferry join` created in its namespace. Out of a cluster (tests, debugging)
/// give --kubeconfig, and --broker-info with a cluster-scoped token plus
/// --cluster-id and the CIDRs, or let it read the Secret too.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Kubeconfig of this cluster (default: in-cluster, $KUBECONFIG, ~/.kube/config).
    #[arg(long, env = "FERRY_KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// Namespace of ferry's components (and of the ferry-broker Secret).
    #[arg(long, env = "POD_NAMESPACE", default_value = ferry_api::labels::SYSTEM_NAMESPACE)]
    namespace: String,
    /// broker-info.ferry carrying this cluster's own token (default: from the Secret).
    #[arg(long, env = "FERRY_BROKER_INFO", requires = "cluster_id")]
    broker_info: Option<PathBuf>,
    /// This cluster's id (default: from the Secret).
    #[arg(long, env = "FERRY_CLUSTER_ID")]
    cluster_id: Option<String>,
    /// Pod CIDRs, comma-separated (default: from the Secret).
    #[arg(long = "clustercidr", env = "FERRY_CLUSTER_CIDRS")]
    cluster_cidrs: Option<String>,
    /// Service CIDRs, comma-separated (default: from the Secret).
    #[arg(long = "servicecidr", env = "FERRY_SERVICE_CIDRS")]
    service_cidrs: Option<String>,
    /// Most writes in flight at once to either API (multiplexed over one
    /// HTTP/2 connection per API server). Halved for a while whenever an
    /// API server answers 429 (overloaded), then raised back step by step.
    #[arg(long, default_value_t = 256)]
    write_concurrency: usize,
    /// Address to serve Prometheus /metrics on (ferry_agent_*); empty to disable.
    #[arg(long, visible_alias = "metrics-addr", value_name = "HOST:PORT",
        default_value_t = format!("0.0.0.0:{}", ferry_api::ports::AGENT_METRICS_PORT))]
    metrics_listen: String,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    super::runtime(ferry_agent::WORKER_THREADS)?.block_on(run_async(args))
}

async fn run_async(args: Args) -> anyhow::Result<()> {
    // The agent reads no object's managedFields: its clients skip them.
    let local = ferry_kube::multiplexed_client_from_kubeconfig(
        args.kubeconfig.as_deref(),
        ferry_kube::ManagedFields::Skip,
    )
    .await?;
    let (mut cfg, info) = match (&args.broker_info, &args.cluster_id) {
        (Some(path), Some(id)) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let info =
                BrokerInfo::decode(&text).with_context(|| format!("reading {}", path.display()))?;
            let mut cfg = ferry_agent::AgentConfig::new(id.clone(), Vec::new(), Vec::new());
            cfg.broker_namespace = info.broker_namespace.clone();
            (cfg, info)
        }
        _ => ferry_agent::load_config(&local, &args.namespace)
            .await
            .context("reading the agent's configuration")?,
    };
    cfg.system_namespace = args.namespace.clone();
    if let Some(id) = &args.cluster_id {
        ferry_api::validate_cluster_id(id)?;
        cfg.cluster_id = id.clone();
    }
    if let Some(l) = &args.cluster_cidrs {
        cfg.cluster_cidrs = Cidr::parse_list(l).context("--clustercidr")?;
    }
    if let Some(l) = &args.service_cidrs {
        cfg.service_cidrs = Cidr::parse_list(l).context("--servicecidr")?;
    }
    cfg.write_concurrency = args.write_concurrency;
    // A token that expires (Kubernetes TokenRequest) is renewed before it
    // does, and kept in the Secret it came from (not with --broker-info).
    let secret = args
        .broker_info
        .is_none()
        .then(|| (local.clone(), args.namespace.clone()));
    let (broker, renewer) = ferry_agent::token::broker_client(&info, &cfg.cluster_id, secret)
        .await
        .context("connecting to the broker")?;
    let renewal = renewer.map(|r| tokio::spawn(async move { r.run().await }));
    // Globalnet: this agent hands out the cluster's global IPs.
    let globalnet = match cfg.global_cidrs.first() {
        Some(cidr) => {
            let block = ferry_globalnet::Block::new(*cidr).context("the global CIDR")?;
            let client = local.clone();
            Some(tokio::spawn(ferry_agent::globalnet::run(
                client,
                block,
                std::future::pending::<()>(),
            )))
        }
        None => None,
    };
    super::serve_metrics(
        &args.metrics_listen,
        ferry_kube::metrics::render_registry(cfg.metrics.registry()),
    )
    .await;
    ferry_agent::run(cfg, local, broker, ferry_kube::shutdown_signal()).await;
    if let Some(task) = globalnet {
        task.abort();
    }
    if let Some(task) = renewal {
        task.abort();
    }
    Ok(())
}
