//! `ferry join`: join this cluster to the clusterset, with `subctl join`'s
//! flags and their meaning.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use ferry_api::{BrokerInfo, CableDriver, Cidr, NetworkPlugin};
use ferry_ctl::Refusal;
use ferry_ctl::install::cidrs::{Discovered, FoundCidrs, Records};
use ferry_ctl::install::{self, CidrSource, GlobalnetRequest, JoinOptions, Unsupported};
use ferry_deploy::GatewaySettings;

/// Join a cluster to the broker described by broker-info.ferry.
///
/// Takes subctl join's flags with Submariner's meaning; those ferry does not
/// implement (the IPsec driver, load balancers, …) are refused
/// with the reason, never ignored.
///
/// Checks first, changing nothing if any check fails: the id is an RFC 1123
/// label not taken on the broker; the CIDRs parse; none overlaps a CIDR of a
/// joined cluster (the error names that cluster and both CIDRs). Without
/// --clustercidr / --servicecidr the CIDRs are discovered from the cluster
/// (kubeadm-config, kube-proxy's config, the nodes' podCIDRs, the API
/// server's Service range, the sandbox's records); what was found, and from
/// where, is printed, and join refuses when nothing says. Then it mints this
/// cluster's own broker token (it may write only objects labelled with this
/// cluster's id), and applies to the cluster: CRDs, namespace ferry-system,
/// the ferry-broker Secret, ServiceAccounts and RBAC, the ferry agent and
/// ferry dns Deployments, the ferry gateway DaemonSet (nodes labelled
/// ferry.dev/gateway=true) with the cable flags below and the ferry
/// route-agent DaemonSet (as the broker's --components say), and the
/// ClusterProperty cluster.clusterset.k8s.io = ID. Safe to re-run.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  ferry join broker-info.ferry --clusterid east --kubeconfig east.kubeconfig \\
      --clustercidr 100.64.0.0/16 --servicecidr 100.65.0.0/16 --gateway-node east-node1
  # As Submariner's docs and kube-ovn's write it:
  ferry join broker-info.ferry --clusterid cluster0 --clustercidr 100.64.0.0/16 \\
      --natt=false --cable-driver vxlan --health-check=false

Per gateway node (as Submariner's gateway.submariner.io annotations):
  kubectl annotate node N gateway.ferry.dev/public-ip=ipv4:198.18.0.7   # or dns:NAME, api:HOST
  kubectl annotate node N gateway.ferry.dev/udp-port=4501")]
pub struct Args {
    /// The broker-info.ferry written by `ferry deploy-broker`.
    broker_info: PathBuf,
    /// This cluster's id: an RFC 1123 label, unique in the clusterset.
    #[arg(long = "clusterid")]
    cluster_id: String,
    /// Kubeconfig of this cluster (default: $KUBECONFIG, ~/.kube/config, in-cluster).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Pod CIDRs, comma-separated (IPv4 and/or IPv6; default: discovered).
    #[arg(long = "clustercidr", value_name = "CIDR[,CIDR…]")]
    cluster_cidrs: Option<String>,
    /// Service CIDRs, comma-separated (default: discovered).
    #[arg(long = "servicecidr", value_name = "CIDR[,CIDR…]")]
    service_cidrs: Option<String>,
    /// Cable driver: wireguard, vxlan or ipsec (default: the broker's
    /// setting). libreswan, Submariner's name, means ferry's ipsec: IKEv2 +
    /// ESP in user space, always UDP-encapsulated on --nattport.
    #[arg(long, value_name = "DRIVER")]
    cable_driver: Option<String>,
    /// NAT traversal; --natt=false: the gateways expect to reach each other
    /// at their private IPs (published as the Endpoint's natEnabled).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set,
        num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    natt: bool,
    /// UDP port of the cable (wireguard, and ipsec's IKE and ESP: NAT-T;
    /// default 4500). A node's annotation gateway.ferry.dev/udp-port
    /// overrides it there.
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    nattport: Option<u16>,
    /// Encapsulate ESP in UDP even where plain ESP would pass. Accepted for
    /// subctl compatibility: ferry's ipsec cable always encapsulates (a
    /// user-space gateway cannot receive IP protocol 50), and the wireguard
    /// and vxlan cables are UDP anyway. Published on the Endpoint.
    #[arg(long)]
    force_udp_encaps: bool,
    /// With NAT on both sides, this cluster's gateway waits to be contacted
    /// (the responder). Published on the Endpoint.
    #[arg(long)]
    preferred_server: bool,
    /// Never ask an outside service for a gateway's public IP (api: entries
    /// of gateway.ferry.dev/public-ip are skipped).
    #[arg(long)]
    air_gapped: bool,
    /// active-active: every node labelled ferry.dev/gateway=true carries
    /// traffic at once, flows spread over them (wireguard and vxlan, no
    /// Globalnet); active-passive: one does, the others stand by.
    #[arg(long, value_enum, default_value_t = super::gateway::GatewayMode::ActivePassive)]
    gateway_mode: super::gateway::GatewayMode,
    /// Health-check every cable through the tunnel; --health-check=false: a
    /// cable counts as connected once set up.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set,
        num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    health_check: bool,
    /// Interval between health checks: seconds (Submariner's unit) or a
    /// duration such as 100ms (default: the broker's, 100ms).
    #[arg(long, value_name = "SECONDS|DURATION", value_parser = positive_duration)]
    health_check_interval: Option<Duration>,
    /// A connection turns `error` after more than this many health-check
    /// probes in a row go unanswered (default: after 800ms of silence).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    health_check_max_packet_loss_count: Option<u32>,
    /// Lifetime of the ipsec cable's IKE SAs, rekeyed in its last tenth
    /// (ipsec only; default 4h, strongSwan's; Libreswan's is 8h).
    #[arg(long, value_name = "DURATION", value_parser = super::gateway::ipsec_lifetime)]
    ipsec_ike_lifetime: Option<Duration>,
    /// Lifetime of the ipsec cable's child (ESP) SAs, rekeyed in its last
    /// tenth (ipsec only; default 1h, strongSwan's; Libreswan's is 8h).
    #[arg(long, value_name = "DURATION", value_parser = super::gateway::ipsec_lifetime)]
    ipsec_child_lifetime: Option<Duration>,
    /// When no node is labelled ferry.dev/gateway=true (and no
    /// --gateway-node), ask which one to label (on a terminal), else say so.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set,
        num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    label_gateway: bool,
    /// Label this node ferry.dev/gateway=true.
    #[arg(long, value_name = "NODE")]
    gateway_node: Option<String>,
    /// The broker's API URL, instead of the one in broker-info.ferry.
    #[arg(long, value_name = "URL")]
    broker_url: Option<String>,
    /// Verify the broker's certificate (always; =false is refused).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set,
        num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    check_broker_certificate: bool,
    /// Container image of ferry's components.
    #[arg(long, conflicts_with_all = ["repository", "version"])]
    image: Option<String>,
    /// Image repository: the image is REPOSITORY/ferry:VERSION.
    #[arg(long, value_name = "REPOSITORY")]
    repository: Option<String>,
    /// Image version (tag): the image is [REPOSITORY/]ferry:VERSION.
    #[arg(long, value_name = "VERSION")]
    version: Option<String>,
    /// Globalnet for this cluster: it reaches the others (and they it)
    /// through global addresses, so its CIDRs may overlap theirs. Default:
    /// on when the broker was deployed with --globalnet; =false leaves it off.
    #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set, num_args = 0..=1,
        require_equals = true, default_missing_value = "true")]
    globalnet: Option<bool>,
    /// This cluster's global CIDR (default: a free block of the broker's
    /// pool). Implies --globalnet.
    #[arg(long, value_name = "CIDR")]
    globalnet_cidr: Option<Cidr>,
    /// Addresses of the block taken from the pool (default: the broker's).
    /// Implies --globalnet.
    #[arg(long, value_name = "N")]
    globalnet_cluster_size: Option<u32>,
    /// Wait until ferry's pods in this cluster are ready, at most this long
    /// (`--wait` alone: 5m), showing which are still starting; without it
    /// join returns once the objects are applied.
    #[arg(long, value_name = "DURATION", num_args = 0..=1, default_missing_value = "5m",
          value_parser = super::errors::parse_duration)]
    wait: Option<Duration>,
    /// The cluster's CNI: generic, kube-ovn, calico or flannel (default:
    /// detected from the CNI's own objects, else generic). It chooses the
    /// route agent's node plumbing and is shown by `show networks`.
    #[arg(long, value_name = "CNI")]
    cni: Option<NetworkPlugin>,
    #[command(flatten)]
    refused: Refused,
}

/// subctl join flags whose meaning ferry does not implement.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Submariner flags ferry refuses (with the reason)")]
struct Refused {
    /// Gateways behind a LoadBalancer Service: not supported.
    #[arg(long)]
    load_balancer: bool,
    /// Extra DNS zones: not supported (ferry dns serves the clusterset domain).
    #[arg(long, value_name = "DOMAINS")]
    custom_domains: Option<String>,
    /// A custom CoreDNS ConfigMap: not supported (join edits kube-system/coredns).
    #[arg(long, value_name = "NS/NAME")]
    coredns_custom_configmap: Option<String>,
    /// ClusterSet IPs: set for the whole clusterset at the broker
    /// (`deploy-broker --enable-clusterset-ip`), so accepted where the
    /// clusterset has them and refused, with the reason, where it has not.
    #[arg(long)]
    enable_clusterset_ip: bool,
    /// A ClusterSet IP range per cluster: refused; each importing cluster's
    /// service range is used.
    #[arg(long, value_name = "CIDR")]
    clusterset_ip_cidr: Option<String>,
}

fn positive_duration(s: &str) -> Result<Duration, String> {
    let d = super::errors::parse_duration(s)?;
    if d.is_zero() {
        return Err(format!("{s:?} must be longer than zero"));
    }
    Ok(d)
}

impl Args {
    /// The first flag whose meaning ferry refuses, if any.
    fn refusal(&self) -> Option<Unsupported> {
        let r = &self.refused;
        let refused = [
            (r.load_balancer, Unsupported::LoadBalancer),
            (r.custom_domains.is_some(), Unsupported::CustomDomains),
            (
                r.coredns_custom_configmap.is_some(),
                Unsupported::CorednsCustomConfigmap,
            ),
            (
                r.clusterset_ip_cidr.is_some(),
                Unsupported::ClustersetIp {
                    flag: "--clusterset-ip-cidr",
                },
            ),
            (
                !self.check_broker_certificate,
                Unsupported::UncheckedBrokerCertificate,
            ),
        ];
        refused
            .into_iter()
            .find_map(|(given, u)| given.then_some(u))
    }

    /// `--enable-clusterset-ip` asks for what the clusterset has: refused
    /// only where its broker did not switch ClusterSet IPs on.
    fn clusterset_ip_refusal(&self, info: &BrokerInfo) -> Option<Unsupported> {
        (self.refused.enable_clusterset_ip && !info.settings.clusterset_ip).then_some(
            Unsupported::ClustersetIp {
                flag: "--enable-clusterset-ip",
            },
        )
    }

    /// Globalnet for this cluster, if on: asked for by a flag, or the
    /// broker's default (`deploy-broker --globalnet`) unless =false.
    fn globalnet(&self, info: &BrokerInfo) -> anyhow::Result<Option<GlobalnetRequest>> {
        let given = self.globalnet_cidr.is_some() || self.globalnet_cluster_size.is_some();
        let on = match self.globalnet {
            Some(false) if given => anyhow::bail!(ferry_ctl::Error::Usage(
                "--globalnet=false contradicts --globalnet-cidr / --globalnet-cluster-size".into()
            )),
            Some(on) => on,
            None => given || info.settings.globalnet,
        };
        Ok(on.then_some(GlobalnetRequest {
            cidr: self.globalnet_cidr,
            cluster_size: self.globalnet_cluster_size,
        }))
    }

    fn gateway(&self) -> GatewaySettings {
        GatewaySettings {
            nat_traversal: self.natt,
            nat_port: self.nattport,
            force_udp_encaps: self.force_udp_encaps,
            preferred_server: self.preferred_server,
            air_gapped: self.air_gapped,
            health_check: self.health_check,
            health_check_interval: self.health_check_interval,
            health_check_max_packet_loss: self.health_check_max_packet_loss_count,
            ipsec_ike_lifetime: self.ipsec_ike_lifetime,
            ipsec_child_lifetime: self.ipsec_child_lifetime,
            active_active: self.gateway_mode == super::gateway::GatewayMode::ActiveActive,
        }
    }

    fn image(&self) -> String {
        if let Some(i) = &self.image {
            return i.clone();
        }
        let version = self
            .version
            .clone()
            .unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_string());
        match &self.repository {
            Some(r) => format!("{}/ferry:{version}", r.trim_end_matches('/')),
            None => format!("{}:{version}", ferry_deploy::DEFAULT_IMAGE_REPOSITORY),
        }
    }

    fn cable_driver(&self) -> anyhow::Result<Option<CableDriver>> {
        Ok(match &self.cable_driver {
            None => None,
            Some(name) => Some(install::cable_driver(name)?),
        })
    }
}

fn cidrs(flag: &str, list: Option<&str>) -> anyhow::Result<Vec<Cidr>> {
    match list {
        None => Ok(Vec::new()),
        Some(l) => Cidr::parse_list(l).with_context(|| format!("--{flag}")),
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if let Some(u) = args.refusal() {
        return Err(ferry_ctl::Error::from(u).into());
    }
    let cable_driver = args.cable_driver()?;
    let cluster_cidrs = cidrs("clustercidr", args.cluster_cidrs.as_deref())?;
    let service_cidrs = cidrs("servicecidr", args.service_cidrs.as_deref())?;
    let text = std::fs::read_to_string(&args.broker_info)
        .with_context(|| format!("reading {}", args.broker_info.display()))?;
    let mut info = BrokerInfo::decode(&text)
        .with_context(|| format!("reading {}", args.broker_info.display()))?;
    if let Some(url) = &args.broker_url {
        info.api_server_url = url.clone();
        info.validate().context("--broker-url")?;
    }
    if let Some(u) = args.clusterset_ip_refusal(&info) {
        return Err(ferry_ctl::Error::from(u).into());
    }
    ferry_api::validate_cluster_id(&args.cluster_id)?;
    let mut opts = JoinOptions {
        cluster_id: args.cluster_id.clone(),
        cluster_cidrs,
        service_cidrs,
        cable_driver,
        gateway_node: args.gateway_node.clone(),
        image: args.image(),
        gateway: args.gateway(),
        globalnet: args.globalnet(&info)?,
        network_plugin: None,
    };
    // The gateways refuse it too (the clusterset's driver may be ipsec).
    let join_settings = ferry_gateway::config::JoinSettings {
        active_active: opts.gateway.active_active,
        ..Default::default()
    };
    if let Some(why) = join_settings.active_active_refusal(
        opts.cable_driver.unwrap_or(CableDriver::Wireguard),
        opts.globalnet.is_some(),
    ) {
        anyhow::bail!(ferry_ctl::Error::Usage(why));
    }
    image_preflight(args.kubeconfig.as_deref(), &opts.image)?;
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async {
        // Reach both APIs first, so an unreachable one or a bad token is
        // reported with its URL before anything changes.
        let local = ferry_ctl::Target::connect(&ferry_ctl::TargetSpec {
            kubeconfig: args.kubeconfig.clone(),
            context: None,
        })
        .await?;
        local.probe().await?;
        ferry_ctl::Target::broker(&info, &info.token)
            .await?
            .probe()
            .await?;
        opts.network_plugin = Some(network_plugin(&local.client, args.cni).await?);
        complete_cidrs(&local.client, &mut opts, args.kubeconfig.as_deref()).await?;
        if args.label_gateway
            && opts.gateway_node.is_none()
            && info.settings.components.connectivity
        {
            opts.gateway_node = choose_gateway_node(&local.client).await?;
        }
        let report = install::join(&local.client, &info, &opts).await?;
        eprintln!(
            "cluster {} {} the clusterset at {} ({} objects applied)",
            args.cluster_id,
            if report.rejoined {
                "re-joined"
            } else {
                "joined"
            },
            info.api_server_url,
            report.applied
        );
        if let Some(limit) = args.wait {
            wait_for_pods(&local.client, limit).await?;
        }
        anyhow::Ok(())
    })
}

/// `--wait`: polls ferry's workloads until their pods are ready, a line
/// each time the count changes (a spinner in between on a terminal).
async fn wait_for_pods(client: &kube::Client, limit: Duration) -> anyhow::Result<()> {
    let shown = super::progress::Progress::new("");
    let start = std::time::Instant::now();
    let mut last = String::new();
    loop {
        let r = install::wait::read_rollout(client).await?;
        let line = r.describe();
        if line != last {
            shown.line(&line);
            last = line;
        }
        if r.done() {
            return Ok(());
        }
        if start.elapsed() >= limit {
            anyhow::bail!(
                "ferry's pods were not ready after {limit:?} ({}); see `kubectl -n ferry-system get pods` and their events",
                r.waiting.join(", ")
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Fills in the CIDRs the flags did not give from what the cluster says,
/// printing what was found and from where; refuses when nothing says.
async fn complete_cidrs(
    client: &kube::Client,
    opts: &mut JoinOptions,
    kubeconfig: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let (need_pods, need_services) = (opts.cluster_cidrs.is_empty(), opts.service_cidrs.is_empty());
    let found = if need_pods || need_services {
        install::discover_cidrs(
            client,
            need_pods,
            need_services,
            sandbox_records(kubeconfig),
        )
        .await
    } else {
        Discovered::default()
    };
    for (kind, flag, mine, candidates) in [
        ("pod", "clustercidr", &mut opts.cluster_cidrs, &found.pods),
        (
            "service",
            "servicecidr",
            &mut opts.service_cidrs,
            &found.services,
        ),
    ] {
        if mine.is_empty() {
            let Some(first) = candidates.first() else {
                return Err(ferry_ctl::Error::from(Refusal::CidrsUnknown {
                    kind,
                    flag,
                    tried: format!("nothing in the cluster says ({})", found.misses.join("; ")),
                })
                .into());
            };
            *mine = first.cidrs.clone();
        }
        let chosen = match candidates.first() {
            Some(f) if f.cidrs == *mine => f.source.clone(),
            _ => CidrSource::Flag(flag),
        };
        eprintln!("{kind} CIDRs: {} (from {chosen})", list(mine));
        for other in candidates.iter().skip(1) {
            eprintln!(
                "  also found: {} (from {})",
                list(&other.cidrs),
                other.source
            );
        }
    }
    Ok(())
}

/// The cluster's CNI: `--cni`, else the one whose objects the cluster has,
/// else generic; printed with where it came from. A CNI ferry cannot drive
/// is refused unless `--cni` is given.
async fn network_plugin(
    client: &kube::Client,
    flag: Option<NetworkPlugin>,
) -> anyhow::Result<NetworkPlugin> {
    if flag.is_none()
        && let Some(u) = install::cni::undrivable(client).await
    {
        return Err(ferry_ctl::Error::from(Refusal::from(u)).into());
    }
    let (plugin, from) = match flag {
        Some(p) => (p, "--cni".to_string()),
        None => match install::cni::detect(client).await {
            Ok((p, _)) => (p, format!("{p}'s objects")),
            Err(_) => (
                NetworkPlugin::Generic,
                "no kube-ovn, Calico or flannel objects".to_string(),
            ),
        },
    };
    eprintln!("CNI: {plugin} (from {from})");
    Ok(plugin)
}

fn list(cidrs: &[Cidr]) -> String {
    cidrs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// The sandbox cluster (name and plan) whose kubeconfig `kubeconfig` (else
/// `$KUBECONFIG`) is, if any.
fn sandbox_cluster(kubeconfig: Option<&std::path::Path>) -> Option<(String, ferry_sandbox::Plan)> {
    let given = kubeconfig
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("KUBECONFIG").map(PathBuf::from))
        .and_then(|p| p.canonicalize().ok())?;
    ferry_sandbox::state::cluster_names()
        .into_iter()
        .filter(|name| {
            ferry_sandbox::state::kubeconfig_path(name)
                .canonicalize()
                .ok()
                .as_ref()
                == Some(&given)
        })
        .find_map(|name| {
            let plan = ferry_sandbox::state::load_plan(&name).ok()?;
            Some((name, plan))
        })
}

/// The sandbox's own plan of the cluster, when the kubeconfig is a sandbox
/// cluster's.
fn sandbox_records(kubeconfig: Option<&std::path::Path>) -> Records {
    let Some((name, plan)) = sandbox_cluster(kubeconfig) else {
        return Records::default();
    };
    let record = |text: String| -> Option<FoundCidrs> {
        Some(FoundCidrs {
            cidrs: Cidr::parse_list(&text).ok()?,
            source: CidrSource::Record(format!("the sandbox's plan of cluster {name}")),
        })
    };
    Records {
        pods: record(plan.pod_cidr.to_string()),
        services: record(plan.service_cidr.to_string()),
    }
}

/// Preflight of the image where this machine can tell, before anything is
/// reached: it is a reference, not a local archive path, and a `--runtime
/// runc` sandbox cluster's OCI store holds it (it pulls nothing).
fn image_preflight(kubeconfig: Option<&std::path::Path>, image: &str) -> anyhow::Result<()> {
    install::preflight::image_not_a_path(image, std::path::Path::exists)?;
    let Some((name, plan)) = sandbox_cluster(kubeconfig) else {
        return Ok(());
    };
    if plan.runtime != ferry_sandbox::Runtime::Runc {
        return Ok(());
    }
    let store = ferry_sandbox::oci::store::store_dir(&ferry_sandbox::state::cluster_dir(&name));
    let held = ferry_sandbox::oci::store::lookup(&store, image).is_some();
    let stored = ferry_sandbox::oci::store::references(&store);
    install::preflight::image_in_sandbox_store(image, &name, held, &stored)?;
    Ok(())
}

/// With no node labelled as a gateway: on a terminal, asks which node to
/// label (as subctl does); otherwise says how to label one.
async fn choose_gateway_node(client: &kube::Client) -> anyhow::Result<Option<String>> {
    let (nodes, gateways) = install::gateway_nodes(client).await?;
    if !gateways.is_empty() || nodes.is_empty() {
        return Ok(None);
    }
    if !std::io::stdin().is_terminal() {
        eprintln!(
            "note: no node is labelled ferry.dev/gateway=true yet: label one (kubectl label node NODE ferry.dev/gateway=true) or pass --gateway-node NODE"
        );
        return Ok(None);
    }
    eprintln!("No node is labelled ferry.dev/gateway=true. Which node should be the gateway?");
    for (i, n) in nodes.iter().enumerate() {
        eprintln!("  {}) {n}", i + 1);
    }
    eprint!("number or name (empty: none for now): ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("reading the answer")?;
    let answer = answer.trim();
    if answer.is_empty() {
        return Ok(None);
    }
    let picked = answer
        .parse::<usize>()
        .ok()
        .and_then(|i| nodes.get(i.checked_sub(1)?).cloned())
        .or_else(|| nodes.iter().find(|n| *n == answer).cloned());
    match picked {
        Some(n) => Ok(Some(n)),
        None => Err(
            ferry_ctl::Error::Usage(format!("{answer:?} is not one of the nodes listed")).into(),
        ),
    }
}

#[cfg(test)]
mod tests;
