//! `ferry deploy-broker`: make a Kubernetes API (or an embedded `ferry
//! apiserver`) the clusterset's broker and write `broker-info.ferry`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use ferry_apiserver::Identity;
use ferry_ctl::install::{self, DeployBrokerOptions};

/// Deploy the broker: the namespace, CRDs and RBAC every cluster syncs
/// through, and `broker-info.ferry` for `ferry join`.
///
/// Against any Kubernetes API (a real cluster, or a `ferry apiserver`) given
/// by --kubeconfig (default: $KUBECONFIG, ~/.kube/config). With --embedded,
/// starts a `ferry apiserver` in this process as the broker (for people with
/// no cluster to spare) and keeps serving it until interrupted.
///
/// broker-info.ferry is base64 JSON holding the broker URL, its CA, a joiner
/// credential (it can read the broker and mint a token for a new cluster id —
/// keep the file as secret as a kubeconfig), the clusterset domain, the
/// cables' pre-shared key and the settings every cluster shares. Re-running
/// keeps the key.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  ferry deploy-broker --kubeconfig broker.kubeconfig
  ferry deploy-broker --embedded --data-dir ./broker --listen 0.0.0.0:6443 \\
      --advertise-url https://198.18.0.1:6443")]
pub struct Args {
    /// Kubeconfig of the broker's API (admin rights).
    #[arg(long, conflicts_with = "embedded")]
    kubeconfig: Option<PathBuf>,
    /// Namespace on the broker holding the clusterset's objects.
    #[arg(long, default_value = ferry_api::labels::BROKER_NAMESPACE)]
    namespace: String,
    /// Where to write broker-info.ferry.
    #[arg(short = 'o', long = "output", default_value = "broker-info.ferry")]
    output: PathBuf,
    /// Run an embedded `ferry apiserver` as the broker.
    #[arg(long, requires = "data_dir")]
    embedded: bool,
    /// Data directory of the `ferry apiserver` broker. With --embedded: where
    /// it keeps its state. Without: the data directory of the ferry apiserver
    /// behind --kubeconfig, used to mint a joiner token (instead of handing
    /// out the kubeconfig's admin token).
    #[arg(long)]
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
    /// The range (IPv4 CIDR) imported ClusterSetIP services get their
    /// clusterset IP from, in each importing cluster; it must not overlap
    /// any cluster's pod or service CIDR. Without it, no clusterset IPs: a
    /// ClusterSetIP name resolves to an exporting cluster's service IP.
    #[arg(long, value_name = "CIDR")]
    clusterset_ip_cidr: Option<ferry_api::Cidr>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(run_async(args))
}

async fn run_async(args: Args) -> anyhow::Result<()> {
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
    let joiner_token = match &args.data_dir {
        Some(dir) => Some(
            ferry_apiserver::create_token(dir, &Identity::Joiner)
                .with_context(|| format!("minting a joiner token in {}", dir.display()))?,
        ),
        None => None,
    };
    let mut info = install::deploy_broker(
        &client,
        &kc,
        &DeployBrokerOptions {
            namespace: args.namespace.clone(),
            joiner_token,
        },
    )
    .await
    .context("deploying the broker")?;
    if let Some(cidr) = args.clusterset_ip_cidr {
        anyhow::ensure!(
            cidr.is_ipv4(),
            "--clusterset-ip-cidr {cidr}: clusterset IPs are IPv4 for now"
        );
    }
    info.settings.clusterset_ip_cidr = args.clusterset_ip_cidr;
    let encoded = info.encode()?;
    ferry_kube::write_private(&args.output, encoded.as_bytes())?;
    eprintln!(
        "broker ready in namespace {} at {}; wrote {} (join clusters with: ferry join {} --clusterid ID)",
        info.broker_namespace,
        info.api_server_url,
        args.output.display(),
        args.output.display()
    );
    if let Some(server) = server {
        eprintln!("serving the embedded broker; Ctrl-C to stop");
        tokio::signal::ctrl_c()
            .await
            .context("waiting for Ctrl-C")?;
        server.shutdown().await;
    }
    Ok(())
}
