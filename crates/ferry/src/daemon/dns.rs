//! `ferry dns` (and the `ferry-dns` binary): the authoritative DNS server for
//! `clusterset.local`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use ferry_dns::metrics::Metrics;
use ferry_dns::model::StaticZone;
use ferry_dns::{Answerer, AnswererConfig, DnsServer, Policy, ServerConfig};

/// Serve `clusterset.local` per the Multi-Cluster Services DNS specification.
///
/// Answers come from memory, kept current by watches on the local
/// ServiceImports, the EndpointSlices labelled
/// multicluster.kubernetes.io/service-name, and the Gateway status (connection
/// health and RTT); the API is never called per query.
///
/// Names served (in every zone): dns-version TXT "1.0.0";
/// <svc>.<ns>.svc A/AAAA and SRV; _<port>._<proto>.<svc>.<ns>.svc SRV;
/// headless <hostname>.<clusterid>.<svc>.<ns>.svc A/AAAA; and the extension
/// <clusterid>.<svc>.<ns>.svc A/AAAA. Names outside the zones get REFUSED.
///
/// Only clusters with ready endpoints and a connected gateway connection are
/// answered (the local cluster when it has ready endpoints). Policies:
/// local-first (the local cluster, else the lowest-RTT clusters within 20 % /
/// 1 ms, round-robin), round-robin (every eligible cluster in turn),
/// lowest-latency (the lowest-RTT band, the local cluster counting as 0).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to serve DNS on, UDP and TCP.
    #[arg(long, default_value = "0.0.0.0:53")]
    listen: SocketAddr,
    /// Extra zones to serve the same names under (repeatable);
    /// clusterset.local is always served.
    #[arg(long = "zone", value_name = "DOMAIN")]
    zones: Vec<String>,
    /// TTL of answers and of negative answers, in seconds.
    #[arg(long, default_value_t = 5)]
    ttl: u32,
    /// How to choose among exporting clusters: local-first, round-robin or
    /// lowest-latency.
    #[arg(long, default_value = "local-first")]
    policy: Policy,
    /// This cluster's id (default: the ClusterProperty cluster.clusterset.k8s.io).
    #[arg(long, env = "FERRY_CLUSTER_ID")]
    cluster_id: Option<String>,
    /// Kubeconfig to use (default: in-cluster config, then KUBECONFIG).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Address to serve /metrics on (Prometheus); empty to disable.
    #[arg(long, visible_alias = "metrics-addr", value_name = "HOST:PORT",
        default_value_t = format!("0.0.0.0:{}", ferry_api::ports::DNS_METRICS_PORT))]
    metrics_listen: String,
    /// UDP worker threads (default: one per CPU).
    #[arg(long)]
    udp_workers: Option<usize>,
    /// Serve a static zone from a JSON file instead of watching Kubernetes
    /// (tests, benchmarks, demos; see ferry_dns::model::StaticZone).
    #[arg(long, value_name = "FILE", conflicts_with = "kubeconfig")]
    static_zone: Option<PathBuf>,
}

/// Runs `ferry dns` until interrupted.
pub fn run(args: Args) -> anyhow::Result<()> {
    // One worker: UDP queries are answered on the server's own threads; the
    // runtime carries TCP, the watches and /metrics.
    super::runtime(1)?.block_on(serve(args))
}

async fn serve(args: Args) -> anyhow::Result<()> {
    // SIGTERM (how Kubernetes stops the Deployment's pods) or Ctrl-C.
    let shutdown = ferry_kube::shutdown_signal();
    let mut zones = vec![ferry_api::labels::CLUSTERSET_DOMAIN.to_string()];
    zones.extend(args.zones.iter().cloned());
    let metrics = Arc::new(Metrics::new());
    let answerer = Arc::new(
        Answerer::new(AnswererConfig {
            zones,
            ttl: args.ttl,
            policy: args.policy,
        })
        .context("configuring the zones")?
        .with_choice_counters(metrics.choice_counters(args.policy)),
    );

    let mut config = ServerConfig::new(args.listen);
    if let Some(n) = args.udp_workers {
        config.udp_workers = n;
    }
    let server = DnsServer::start(config, answerer.clone(), metrics.clone())
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    println!("ferry dns listening on {} (udp, tcp)", server.local_addr());

    if !args.metrics_listen.is_empty() {
        let addr: SocketAddr = args
            .metrics_listen
            .parse()
            .with_context(|| format!("--metrics-listen {:?}", args.metrics_listen))?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding metrics on {addr}"))?;
        tracing::info!(addr = %listener.local_addr()?, "metrics on /metrics");
        let m = metrics.clone();
        tokio::spawn(async move {
            if let Err(error) = ferry_dns::metrics::serve(listener, m).await {
                tracing::error!(%error, "metrics server");
            }
        });
    }

    let feed = async {
        if let Some(path) = &args.static_zone {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let data = StaticZone::from_json(&text)?.to_zone_data()?;
            let n: usize = data.services.values().map(|m| m.len()).sum();
            metrics.services.set(i64::try_from(n).unwrap_or(i64::MAX));
            answerer.set_data(data);
            tracing::info!(services = n, file = %path.display(), "static zone loaded");
            std::future::pending::<()>().await;
            return Ok(());
        }
        let client = ferry_kube::client_from_kubeconfig(args.kubeconfig.as_deref()).await?;
        let local = match args.cluster_id.clone() {
            Some(id) => Some(id),
            None => ferry_dns::reflector::local_cluster_id(&client).await,
        };
        if local.is_none() {
            tracing::warn!(
                "cluster id unknown (no --cluster-id, no ClusterProperty): only remote clusters with connected gateways will be answered"
            );
        }
        ferry_dns::reflector::run(client, answerer.clone(), metrics.clone(), local)
            .await
            .context("reflectors")
    };
    tokio::select! {
        r = feed => r,
        r = server.run() => r.context("dns server"),
        () = shutdown => {
            tracing::info!("interrupted, stopping");
            Ok(())
        }
    }
}
