//! `ferry deploy-broker`: make a Kubernetes API (or an embedded `ferry
//! apiserver`) the clusterset's broker and write `broker-info.ferry`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use ferry_api::{BrokerInfo, Components};
use ferry_apiserver::Identity;
use ferry_ctl::install::{self, DeployBrokerOptions, Unsupported};

/// Deploy the broker: the namespace, CRDs and RBAC every cluster syncs
/// through, and `broker-info.ferry` for `ferry join`.
///
/// Against any Kubernetes API (a real cluster, or a `ferry apiserver`) given
/// by --kubeconfig (default: $KUBECONFIG, ~/.kube/config). With --embedded,
/// starts a `ferry apiserver` in this process as the broker (for people with
/// no cluster to spare) and keeps serving it until interrupted.
///
/// broker-info.ferry is base64 JSON holding the broker URL, its CA, a joiner
/// credential (a TokenRequest token of the broker's ferry-joiner
/// ServiceAccount: it can read the broker and mint a token for a new cluster
/// id — keep the file as secret as a kubeconfig; it never carries the admin
/// credential deploy-broker was given, and a broker that cannot mint one is
/// refused), the clusterset domain, the cables' pre-shared key, which
/// components join deploys and the settings every cluster shares. Re-running
/// keeps the key. Takes subctl deploy-broker's flags, Globalnet's included.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  ferry deploy-broker --kubeconfig broker.kubeconfig
  ferry deploy-broker --kubeconfig broker.kubeconfig --components service-discovery \\
      --ipsec-psk-from old-broker-info.ferry
  ferry deploy-broker --embedded --data-dir ./broker --listen 0.0.0.0:6443 \\
      --advertise-url https://198.18.0.1:6443")]
pub struct Args {
    /// Kubeconfig of the broker's API (admin rights).
    #[arg(long, conflicts_with = "embedded")]
    kubeconfig: Option<PathBuf>,
    /// Namespace on the broker holding the clusterset's objects.
    #[arg(long = "broker-namespace", visible_alias = "namespace",
        default_value = ferry_api::labels::BROKER_NAMESPACE)]
    namespace: String,
    /// Where to write broker-info.ferry.
    #[arg(short = 'o', long = "output", default_value = "broker-info.ferry")]
    output: PathBuf,
    /// Take the cables' pre-shared key from this existing broker-info.ferry
    /// (so clusters of an older clusterset keep working with the new broker).
    #[arg(long, value_name = "BROKER-INFO")]
    ipsec_psk_from: Option<PathBuf>,
    /// Which parts `join` deploys: service-discovery (MCS exchange, ferry
    /// dns) and/or connectivity (gateways, route agents), comma-separated.
    #[arg(
        long,
        value_name = "COMPONENTS",
        default_value = "service-discovery,connectivity"
    )]
    components: String,
    /// Run an embedded `ferry apiserver` as the broker.
    #[arg(long, requires = "data_dir")]
    embedded: bool,
    /// With --embedded: data directory of the embedded `ferry apiserver`
    /// broker. (Against --kubeconfig the joiner token is minted through
    /// TokenRequest; no data directory is needed.)
    #[arg(long, requires = "embedded")]
    data_dir: Option<PathBuf>,
    /// With --embedded: address and port to listen on.
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// With --embedded: URL clusters use to reach the broker (default https://LISTEN).
    #[arg(long)]
    advertise_url: Option<String>,
    /// With --embedded: extra DNS names or IPs for the serving certificate.
    #[arg(long = "tls-san", value_name = "NAME")]
    tls_sans: Vec<String>,
    /// Give every imported ClusterSetIP service a routed ClusterSet IP in
    /// each importing cluster: the ClusterIP its API server allocates, from
    /// its own service range, to the derived Service ferry writes there.
    /// Without it a ClusterSetIP name resolves to an exporting cluster's
    /// service IP.
    #[arg(long)]
    enable_clusterset_ip: bool,
    /// Globalnet: give clusters that join with it (`join --globalnet`, the
    /// default on such a broker) a block of global addresses, so clusters
    /// whose CIDRs overlap reach each other. Each cluster still chooses for
    /// itself (`join --globalnet=false`).
    #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set, num_args = 0..=1,
        require_equals = true, default_missing_value = "true")]
    globalnet: Option<bool>,
    /// Globalnet's pool (default 242.0.0.0/8, as Submariner's). Implies --globalnet.
    #[arg(long, value_name = "CIDR")]
    globalnet_cidr_range: Option<ferry_api::Cidr>,
    /// Addresses per cluster taken from the pool: a power of two (default
    /// 65536, a /16). Implies --globalnet.
    #[arg(long, value_name = "N")]
    globalnet_cluster_size: Option<u32>,
    #[command(flatten)]
    refused: Refused,
}

impl Args {
    /// Globalnet's pool, when asked for (`--globalnet`, its range or size,
    /// or `--components …,globalnet`), checked.
    fn globalnet_pool(&self) -> anyhow::Result<Option<ferry_globalnet::Pool>> {
        let asked = self.globalnet == Some(true)
            || self.globalnet_cidr_range.is_some()
            || self.globalnet_cluster_size.is_some()
            || self.components.split(',').any(|c| c.trim() == "globalnet");
        if !asked || self.globalnet == Some(false) {
            return Ok(None);
        }
        let range = match self.globalnet_cidr_range {
            Some(r) => r,
            None => ferry_api::globalnet::DEFAULT_CIDR_RANGE
                .parse()
                .context("Globalnet's default range")?,
        };
        let size = self
            .globalnet_cluster_size
            .unwrap_or(ferry_api::globalnet::DEFAULT_CLUSTER_SIZE);
        let pool = ferry_globalnet::Pool::new(range, size)
            .map_err(ferry_ctl::Error::from)
            .context("--globalnet-cidr-range / --globalnet-cluster-size")?;
        Ok(Some(pool))
    }

    /// `--components` without `globalnet` (which means `--globalnet`).
    fn components_without_globalnet(&self) -> String {
        self.components
            .split(',')
            .filter(|c| c.trim() != "globalnet")
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// subctl deploy-broker flags whose meaning ferry does not implement.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Submariner flags ferry refuses (with the reason)")]
struct Refused {
    /// Extra DNS zones: not supported.
    #[arg(long, value_name = "DOMAINS")]
    custom_domains: Option<String>,
    /// A separate ClusterSet IP range: ferry takes each importing cluster's
    /// service range instead (Submariner's `--clusterset-ip-cidr-range`).
    #[arg(long, value_name = "CIDR", alias = "clusterset-ip-cidr-range")]
    clusterset_ip_cidr: Option<String>,
}

impl Refused {
    /// The first flag whose meaning ferry refuses, if any.
    fn refusal(&self) -> Option<Unsupported> {
        [
            (self.custom_domains.is_some(), Unsupported::CustomDomains),
            (
                self.clusterset_ip_cidr.is_some(),
                Unsupported::ClustersetIpRange,
            ),
        ]
        .into_iter()
        .find_map(|(given, u)| given.then_some(u))
    }
}

/// The pre-shared key of an existing broker-info.ferry.
fn psk_from(path: &std::path::Path) -> anyhow::Result<[u8; ferry_api::broker_info::CABLE_PSK_LEN]> {
    let what = || format!("--ipsec-psk-from {}", path.display());
    let text = std::fs::read_to_string(path).with_context(what)?;
    let info = BrokerInfo::decode(&text).with_context(what)?;
    info.cable_psk_bytes().with_context(what)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(run_async(args))
}

async fn run_async(args: Args) -> anyhow::Result<()> {
    if let Some(u) = args.refused.refusal() {
        return Err(ferry_ctl::Error::from(u).into());
    }
    let components =
        Components::parse_list(&args.components_without_globalnet()).context("--components")?;
    let globalnet = args.globalnet_pool()?;
    let psk = args.ipsec_psk_from.as_deref().map(psk_from).transpose()?;
    let mut server = None;
    let kubeconfig = if args.embedded {
        // `requires = "data_dir"` guarantees it is present.
        let data_dir = args
            .data_dir
            .clone()
            .context("--embedded needs --data-dir")?;
        let mut config = ferry_apiserver::Config::new(&data_dir, args.listen);
        config.tls_sans = args.tls_sans.clone();
        config.advertise_url = args.advertise_url.clone();
        let running = ferry_apiserver::start(config)
            .await
            .context("starting the embedded broker API server")?;
        eprintln!("broker API server listening at {}", running.url);
        let path = running.admin_kubeconfig.clone();
        server = Some(running);
        Some(path)
    } else {
        args.kubeconfig.clone()
    };
    // Find the kubeconfig (the error lists where it looked) and reach the
    // API before changing anything.
    ferry_ctl::target::load(kubeconfig.as_deref())?;
    let kc = ferry_kube::read_kubeconfig(kubeconfig.as_deref())?;
    ferry_ctl::Target::connect(&ferry_ctl::TargetSpec {
        kubeconfig: kubeconfig.clone(),
        context: None,
    })
    .await?
    .probe()
    .await?;
    let config = kube::Config::from_custom_kubeconfig(kc.clone(), &Default::default())
        .await
        .context("reading the kubeconfig")?;
    let client = kube::Client::try_from(config).context("building a client")?;
    // The embedded server is ours: mint the joiner from its data directory.
    // Otherwise deploy_broker asks the broker through TokenRequest.
    let joiner_token = match &args.data_dir {
        Some(dir) => Some(
            ferry_apiserver::create_token(dir, &Identity::Joiner)
                .with_context(|| format!("minting a joiner token in {}", dir.display()))?,
        ),
        _ => None,
    };
    let mut info = install::deploy_broker(
        &client,
        &kc,
        &DeployBrokerOptions {
            namespace: args.namespace.clone(),
            joiner_token,
            psk,
            components,
        },
    )
    .await
    .context("deploying the broker")?;
    info.settings.clusterset_ip = args.enable_clusterset_ip;
    if let Some(pool) = &globalnet {
        info.settings.globalnet = true;
        info.settings.globalnet_cidr_range = Some(pool.range());
        info.settings.globalnet_cluster_size = Some(pool.cluster_size());
        eprintln!(
            "Globalnet: clusters joining with it take blocks of {} addresses from {} ({} blocks)",
            pool.cluster_size(),
            pool.range(),
            pool.block_count()
        );
    }
    let encoded = info.encode()?;
    ferry_kube::write_private(&args.output, encoded.as_bytes())?;
    eprintln!(
        "broker ready in namespace {} at {} (components: {}); wrote {} (join clusters with: ferry join {} --clusterid ID)",
        info.broker_namespace,
        info.api_server_url,
        info.settings.components,
        args.output.display(),
        args.output.display()
    );
    if let Some(note) = joined_before(&client, &info.broker_namespace).await {
        eprintln!("{note}");
    }
    if let Some(server) = server {
        eprintln!("serving the embedded broker; Ctrl-C to stop");
        tokio::signal::ctrl_c()
            .await
            .context("waiting for Ctrl-C")?;
        server.shutdown().await;
    }
    Ok(())
}

/// On a re-deployed broker, a note that the clusters already joined keep
/// the settings they joined with (their daemons read them at start) until
/// `ferry join` runs there again. Best effort: a broker that cannot be
/// listed gets no note.
async fn joined_before(client: &kube::Client, namespace: &str) -> Option<String> {
    let clusters: kube::Api<ferry_api::Cluster> = kube::Api::namespaced(client.clone(), namespace);
    let list = clusters
        .list_metadata(&Default::default())
        .await
        .inspect_err(|e| tracing::debug!(error = %e, "listing the joined clusters"))
        .ok()?;
    let mut names: Vec<String> = list
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    if names.is_empty() {
        return None;
    }
    names.sort();
    Some(format!(
        "note: {} cluster(s) already joined ({}): each keeps the settings it joined with until `ferry join` runs there again with this broker-info",
        names.len(),
        names.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use clap::Parser;

    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn parse(extra: &[&str]) -> Args {
        let mut argv = vec!["deploy-broker"];
        argv.extend_from_slice(extra);
        Cli::try_parse_from(argv).unwrap().args
    }

    #[test]
    fn subctl_flags_are_accepted_or_refused_by_type() {
        let a = parse(&[
            "--broker-namespace",
            "brk",
            "--components",
            "service-discovery",
        ]);
        assert_eq!(a.namespace, "brk");
        assert_eq!(a.refused.refusal(), None);
        assert!(!Components::parse_list(&a.components).unwrap().connectivity);
        assert_eq!(parse(&["--namespace", "x"]).namespace, "x");
        let refused = |extra: &[&str]| {
            let a = parse(extra);
            a.refused.refusal()
        };
        // Globalnet: the default pool, a given one, and bad sizes refused.
        assert!(
            parse(&["--globalnet=false"])
                .globalnet_pool()
                .unwrap()
                .is_none()
        );
        let p = parse(&["--globalnet"]).globalnet_pool().unwrap().unwrap();
        assert_eq!(
            (p.range().to_string(), p.cluster_size()),
            ("242.0.0.0/8".into(), 65536)
        );
        let a = parse(&[
            "--globalnet-cidr-range",
            "100.120.0.0/16",
            "--globalnet-cluster-size",
            "256",
        ]);
        assert_eq!(a.globalnet_pool().unwrap().unwrap().block_count(), 256);
        let a = parse(&["--components", "service-discovery,globalnet"]);
        assert!(a.globalnet_pool().unwrap().is_some());
        assert_eq!(a.components_without_globalnet(), "service-discovery");
        let e = parse(&[
            "--globalnet-cidr-range",
            "100.120.0.0/24",
            "--globalnet-cluster-size",
            "65536",
        ])
        .globalnet_pool()
        .unwrap_err();
        assert!(
            format!("{e:#}").contains("has 256 addresses, fewer than one cluster's 65536"),
            "{e:#}"
        );
        assert!(
            parse(&["--globalnet-cluster-size", "1000"])
                .globalnet_pool()
                .is_err()
        );
        assert_eq!(
            refused(&["--custom-domains", "a.b"]),
            Some(Unsupported::CustomDomains)
        );
        // Submariner's ClusterSet IP flags: on without a range; a range
        // (under either name) is refused with the reason.
        let a = parse(&["--enable-clusterset-ip"]);
        assert!(a.enable_clusterset_ip);
        assert_eq!(refused(&["--enable-clusterset-ip"]), None);
        for flag in ["--clusterset-ip-cidr", "--clusterset-ip-cidr-range"] {
            assert_eq!(
                refused(&["--enable-clusterset-ip", flag, "100.70.0.0/16"]),
                Some(Unsupported::ClustersetIpRange),
                "{flag}"
            );
        }
        // --data-dir belongs to --embedded.
        assert!(Cli::try_parse_from(["deploy-broker", "--data-dir", "d"]).is_err());
    }

    #[test]
    fn the_psk_comes_from_another_broker_info() {
        let dir = tempfile::tempdir().unwrap();
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let old = BrokerInfo::new("https://198.18.0.1:6443", pem, "t", &[9u8; 32]);
        let path = dir.path().join("old.ferry");
        std::fs::write(&path, old.encode().unwrap()).unwrap();
        assert_eq!(psk_from(&path).unwrap(), [9u8; 32]);
        std::fs::write(&path, "not base64 !").unwrap();
        let e = psk_from(&path).unwrap_err();
        assert!(format!("{e:#}").contains("--ipsec-psk-from"), "{e:#}");
    }

    #[test]
    fn a_psk_shorter_than_32_bytes_is_refused_with_the_reason() {
        use base64::Engine as _;
        use base64::engine::general_purpose::STANDARD;
        let dir = tempfile::tempdir().unwrap();
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let mut short = BrokerInfo::new("https://198.18.0.1:6443", pem, "t", &[9u8; 32]);
        // `encode` validates, so the short key is written as its JSON by hand.
        short.cable_psk = STANDARD.encode([9u8; 16]);
        let text = STANDARD.encode(serde_json::to_vec(&short).unwrap());
        let path = dir.path().join("short.ferry");
        std::fs::write(&path, text).unwrap();
        let e = format!("{:#}", psk_from(&path).unwrap_err());
        assert!(e.contains("--ipsec-psk-from"), "{e}");
        assert!(e.contains("cablePsk") && e.contains("32"), "{e}");
        assert!(e.contains("16"), "{e}");
    }

    /// A broker re-deployed over joined clusters says they keep their
    /// settings until re-joined; a new one says nothing.
    #[tokio::test]
    async fn a_redeployed_broker_names_the_clusters_that_keep_old_settings() {
        let dir = tempfile::tempdir().unwrap();
        let server = ferry_apiserver::start(ferry_apiserver::Config::new(
            dir.path(),
            "127.0.0.1:0".parse().unwrap(),
        ))
        .await
        .unwrap();
        let kc = kube::config::Kubeconfig::read_from(&server.admin_kubeconfig).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kc.clone(), &Default::default())
            .await
            .unwrap();
        let client = kube::Client::try_from(config).unwrap();
        let opts = DeployBrokerOptions {
            namespace: "ferry-broker".into(),
            joiner_token: Some("t".into()),
            ..Default::default()
        };
        install::deploy_broker(&client, &kc, &opts).await.unwrap();
        assert_eq!(joined_before(&client, "ferry-broker").await, None);
        for id in ["west", "east"] {
            install::apply_value(
                &client,
                &serde_json::json!({"apiVersion": "ferry.dev/v1alpha1", "kind": "Cluster",
                    "metadata": {"name": id, "namespace": "ferry-broker"},
                    "spec": {"clusterId": id, "clusterCidrs": ["100.64.0.0/16"],
                        "serviceCidrs": ["100.65.0.0/16"]}}),
            )
            .await
            .unwrap();
        }
        let note = joined_before(&client, "ferry-broker").await.unwrap();
        assert!(
            note.contains("2 cluster(s) already joined (east, west)"),
            "{note}"
        );
        server.shutdown().await;
    }
}
