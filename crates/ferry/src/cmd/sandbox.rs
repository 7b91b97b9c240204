//! `ferry sandbox`: multi-node Kubernetes-like clusters from network
//! namespaces on this machine (see the ferry-sandbox crate).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use ferry_sandbox::plan::Cidr;

/// Sandbox clusters: real multi-node networks from network namespaces.
#[derive(Debug, clap::Subcommand)]
pub enum Sandbox {
    /// Create a cluster: bridge, node namespaces, API server, controllers,
    /// pod runners, service proxy and DNS. Needs root.
    Create {
        /// Cluster name (1-20 of a-z, 0-9, '-'); nodes are NAME-node0, NAME-node1, ...
        name: String,
        /// Number of nodes.
        #[arg(long, default_value_t = 2)]
        nodes: u32,
        /// Pod CIDR inside 100.64.0.0/10 (default: 100.{64+i}.0.0/16 for the i-th cluster;
        /// the 33rd to 64th clusters have no default and need both CIDRs).
        #[arg(long)]
        pod_cidr: Option<String>,
        /// Service CIDR inside 100.64.0.0/10 (default: 100.{96+i}.0.0/16).
        #[arg(long)]
        service_cidr: Option<String>,
        /// Forward clusterset.local queries to IP:PORT or NAMESPACE/SERVICE[:PORT]
        /// (sent from node 0; default: ferry-system/ferry-dns:53).
        #[arg(long)]
        dns_upstream: Option<String>,
        /// Image repository whose containers run the local ferry binary.
        #[arg(long, default_value = "ferry")]
        ferry_image: String,
        /// Put the nodes behind a NAT router whose WAN address 198.19.I.1 is
        /// the cluster's public IP: masquerade (random source ports, no
        /// inbound; the default), port-forward (also forwards UDP 4490, 4500
        /// and 4800 to node 0, for a --preferred-server gateway there) or
        /// block-udp (drops all UDP).
        #[arg(long, value_name = "MODE", num_args = 0..=1, default_missing_value = "masquerade",
            require_equals = true)]
        nat: Option<String>,
        /// Seconds to wait for the cluster to come up.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
        /// How pods run: local (host processes in the pod's network
        /// namespace; ferry's image runs this binary) or runc (containers of
        /// the --image images run under runc: the image's rootfs, user,
        /// capabilities, read-only root, cgroup limits; other images as local).
        #[arg(long, default_value = "local")]
        runtime: ferry_sandbox::Runtime,
        /// An OCI image archive or layout directory to import for --runtime
        /// runc (e.g. target/image/ferry-0.1.0.oci.tar from scripts/image.sh);
        /// repeatable.
        #[arg(long = "image", value_name = "PATH")]
        images: Vec<PathBuf>,
        /// The CNI the cluster is shaped like: bridge (pods behind veths,
        /// nodes routing each other's /24) or kube-ovn (the pod CIDR's lower
        /// half ovn-default, its upper half the join subnet of every node's
        /// ovn0, nodes reaching pods through ovn0, natOutgoing masquerade,
        /// and the ovn-default and join Subnets in the API server).
        #[arg(long, default_value = "bridge")]
        cni: ferry_sandbox::plan::SandboxCni,
    },
    /// Build two clusters, join them and reach a service across them (the
    /// one-command demo; see `ferry sandbox demo --help`).
    Demo(super::demo::Args),
    /// Delete a cluster, or every cluster and anything left over with --all.
    Delete {
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        name: Option<String>,
        #[arg(long)]
        all: bool,
    },
    /// List clusters.
    List,
    /// Print the path of a cluster's admin kubeconfig.
    Kubeconfig { name: String },
    /// Run a command in a node's (NAME-nodeK) or pod's ([NAMESPACE/]POD) network namespace.
    Exec {
        name: String,
        target: String,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Print a pod's container logs.
    Logs { name: String, pod: String },
    /// Run a cluster's supervisor (started by `create`).
    #[command(hide = true)]
    Supervise {
        name: String,
        /// Image repository whose containers run the local ferry binary.
        #[arg(long, default_value = "ferry")]
        ferry_image: String,
    },
}

fn cidr(s: Option<String>) -> anyhow::Result<Option<Cidr>> {
    s.map(|s| Cidr::parse(&s)).transpose().map_err(Into::into)
}

/// Runs a sandbox subcommand.
pub fn run(cmd: Sandbox) -> anyhow::Result<()> {
    match cmd {
        Sandbox::Create {
            name,
            nodes,
            pod_cidr,
            service_cidr,
            dns_upstream,
            ferry_image,
            nat,
            timeout,
            runtime,
            images,
            cni,
        } => {
            let opts = ferry_sandbox::CreateOptions {
                name: name.clone(),
                nodes,
                pod_cidr: cidr(pod_cidr)?,
                service_cidr: cidr(service_cidr)?,
                dns_upstream,
                nat: nat
                    .as_deref()
                    .map(str::parse::<ferry_sandbox::NatMode>)
                    .transpose()?,
                ferry_exe: std::env::current_exe().context("locating the ferry binary")?,
                ferry_image,
                timeout: Duration::from_secs(timeout),
                runtime,
                images,
                cni,
            };
            let started = std::time::Instant::now();
            let plan = ferry_sandbox::create(&opts)
                .with_context(|| format!("creating sandbox cluster {name}"))?;
            eprintln!(
                "cluster {} ready in {:.2}s: {} nodes, pods {}, services {}",
                plan.name,
                started.elapsed().as_secs_f64(),
                plan.nodes,
                plan.pod_cidr,
                plan.service_cidr
            );
            if plan.cni == ferry_sandbox::plan::SandboxCni::KubeOvn {
                eprintln!(
                    "kube-ovn-shaped: Subnets ovn-default {} and join {} (ovn0 on every node)",
                    plan.ovn_default_cidr(),
                    plan.join_cidr()
                );
            }
            println!(
                "{}",
                ferry_sandbox::state::kubeconfig_path(&plan.name).display()
            );
            Ok(())
        }
        Sandbox::Demo(args) => super::demo::run(args),
        Sandbox::Delete { name, all } => {
            if all {
                let names = ferry_sandbox::delete_all().context("deleting all sandbox clusters")?;
                for n in names {
                    eprintln!("deleted {n}");
                }
            } else if let Some(name) = name {
                ferry_sandbox::delete(&name)
                    .with_context(|| format!("deleting sandbox cluster {name}"))?;
                eprintln!("deleted {name}");
            }
            Ok(())
        }
        Sandbox::List => {
            use std::fmt::Write as _;
            let mut out = format!(
                "{:<20} {:>5} {:<8} {:<18} {:<18} KUBECONFIG\n",
                "NAME", "NODES", "STATUS", "POD-CIDR", "SERVICE-CIDR"
            );
            for c in ferry_sandbox::list() {
                let _ = writeln!(
                    out,
                    "{:<20} {:>5} {:<8} {:<18} {:<18} {}",
                    c.plan.name,
                    c.plan.nodes,
                    if c.running { "Running" } else { "Stopped" },
                    c.plan.pod_cidr.to_string(),
                    c.plan.service_cidr.to_string(),
                    c.kubeconfig.display()
                );
            }
            // `ferry sandbox list | grep -q x` closes the pipe early: that is
            // not an error worth a panic.
            use std::io::Write as _;
            match std::io::stdout().write_all(out.as_bytes()) {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                other => other.context("writing to stdout"),
            }
        }
        Sandbox::Kubeconfig { name } => {
            ferry_sandbox::state::load_plan(&name)?;
            println!("{}", ferry_sandbox::state::kubeconfig_path(&name).display());
            Ok(())
        }
        Sandbox::Exec {
            name,
            target,
            command,
        } => {
            use std::os::unix::process::CommandExt;
            let netns = ferry_sandbox::exec_target(&name, &target)?;
            let err = std::process::Command::new("ip")
                .args(["netns", "exec", &netns])
                .args(&command)
                .exec();
            Err(anyhow::Error::new(err).context(format!("running ip netns exec {netns}")))
        }
        Sandbox::Logs { name, pod } => {
            print!("{}", ferry_sandbox::logs(&name, &pod)?);
            Ok(())
        }
        Sandbox::Supervise { name, ferry_image } => {
            let config = ferry_sandbox::runner::RunnerConfig {
                ferry_exe: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("ferry")),
                ferry_image,
            };
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("starting the runtime")?;
            rt.block_on(ferry_sandbox::supervisor::supervise(&name, config))
                .with_context(|| format!("supervising sandbox cluster {name}"))
        }
    }
}
