//! `ferry show`: what clusters know about the clusterset.

use anyhow::Context;
use ferry_ctl::show::topology::{self, Topology};
use ferry_ctl::show::{self, Format, Section};

const EXAMPLES: &str = "Examples:
  ferry show all
  ferry show connections --kubeconfig east.kubeconfig,west.kubeconfig
  ferry show services --context east,west -o json
  ferry show gateways -o yaml
  ferry show globalnet --kubeconfig west.kubeconfig
  ferry show topology --kubeconfig east.kubeconfig,west.kubeconfig -o svg > clusterset.svg";

/// Show the state of the clusterset as one or several clusters see it.
///
/// Sections: connections (each gateway cable: remote cluster and IP, NAT,
/// cable driver, subnets, status, RTT min/avg/max), endpoints (every
/// cluster's gateway), gateways (this cluster's gateway nodes, HA role,
/// summary), networks (every cluster's pod and service CIDRs), services
/// (imported services with type, IP, ports and, per exporting cluster,
/// ready endpoints and health: ready endpoints and, for remote clusters, a
/// connected cable; plus this cluster's exports and their conditions),
/// brokers (broker URL, namespace, clusterset domain; never credentials),
/// versions (the image of each ferry component), globalnet (every
/// cluster's global CIDRs, and this cluster's global egress and ingress IPs
/// with what each is for), or all of them.
///
/// `topology` draws the clusterset: clusters, their gateways
/// (active/standby), the cables between them with driver, status and RTT,
/// and imported/exported service counts; a cable that is not up is marked
/// (`✗` in text, red in dot and svg). `-o text` (the default), `dot`
/// (Graphviz), `svg` (self-contained, no Graphviz needed), `json`, `yaml`.
///
/// Several clusters at once: --kubeconfig a,b or --context c1,c2. Each
/// cluster's output starts with a line naming it; an unreachable cluster
/// gets one line saying why, the others are still shown, and the exit code
/// is then 1.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// What to show.
    #[arg(value_enum, default_value_t = What::All)]
    what: What,
    #[command(flatten)]
    clusters: super::targets::ClusterTargets,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Table)]
    output: Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum What {
    All,
    Connections,
    Endpoints,
    Gateways,
    Networks,
    Services,
    Brokers,
    Versions,
    Globalnet,
    Topology,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Output {
    Table,
    Json,
    Yaml,
    /// `topology` only.
    Text,
    /// `topology` only: Graphviz dot.
    Dot,
    /// `topology` only.
    Svg,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let sections: Vec<Section> = match args.what {
        What::All => Section::ALL.to_vec(),
        What::Connections => vec![Section::Connections],
        What::Endpoints => vec![Section::Endpoints],
        What::Gateways => vec![Section::Gateways],
        What::Networks => vec![Section::Networks],
        What::Services => vec![Section::Services],
        What::Brokers => vec![Section::Brokers],
        What::Versions => vec![Section::Versions],
        What::Globalnet => vec![Section::Globalnet],
        What::Topology => return topology(&args),
    };
    let format = match args.output {
        Output::Table => Format::Table,
        Output::Json => Format::Json,
        Output::Yaml => Format::Yaml,
        Output::Text | Output::Dot | Output::Svg => {
            return Err(ferry_ctl::Error::Usage(format!(
                "-o {} draws the topology; use it with `ferry show topology`",
                format!("{:?}", args.output).to_lowercase()
            ))
            .into());
        }
    };
    let specs = args.clusters.specs()?;
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let report = rt.block_on(show::show(&specs, &sections));
    // A single cluster that failed is reported as the command's error (with
    // its hint) instead of a table line.
    if !(report.only_failure() && format == Format::Table) {
        super::errors::print(&show::render(&report, format)?)?;
    }
    report.check()?;
    Ok(())
}

/// `show topology`: the same reads as `show`, drawn.
fn topology(args: &Args) -> anyhow::Result<()> {
    let specs = args.clusters.specs()?;
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let report = rt.block_on(show::show(&specs, &topology::SECTIONS));
    if report.only_failure() {
        report.check()?;
    }
    let t = Topology::from_report(&report);
    let out = match args.output {
        Output::Table | Output::Text => topology::text(&t),
        Output::Dot => topology::dot(&t),
        Output::Svg => topology::svg(&t),
        Output::Json => serde_json::to_string_pretty(&t).context("rendering JSON")? + "\n",
        Output::Yaml => ferry_ctl::show::render::to_yaml(&t)?,
    };
    super::errors::print(&out)?;
    report.check()?;
    Ok(())
}
