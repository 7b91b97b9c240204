//! `ferry sandbox demo`: the seed's whole flow on one machine, from nothing —
//! two sandbox clusters, a broker, both joined, a gateway node each, an HTTP
//! service exported from cluster1 and reached by name from cluster0 — with
//! every step timed, then the commands to try next.

use std::collections::BTreeMap;
use std::ops::ControlFlow::{Break, Continue};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use ferry_api::{BrokerInfo, CableDriver, ConnectionStatus, Gateway, ServiceImport};
use ferry_ctl::install::{self, DeployBrokerOptions, JoinOptions};
use ferry_ctl::poll::poll_until;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

/// The two demo clusters.
const CLUSTERS: [&str; 2] = ["cluster0", "cluster1"];
/// The service the demo exports (examples/nginx.yaml).
const NGINX_YAML: &str = include_str!("../../../../examples/nginx.yaml");
const SERVICE_NAME: &str = "nginx.nginx-test.svc.clusterset.local";
const CLIENT_POD: &str = "demo-client";

/// Build two sandbox clusters, join them and reach a service across them.
///
/// From nothing: sandbox clusters cluster0 and cluster1 (2 nodes each), the
/// broker on cluster0, both clusters joined, node0 of each labelled as its
/// gateway, examples/nginx.yaml running in cluster1 and exported. Then it
/// shows the broker's ServiceImport and EndpointSlice, resolves
/// nginx.nginx-test.svc.clusterset.local from cluster0, fetches the service
/// over HTTP from a pod on cluster0's non-gateway node, and prints the cable
/// status and what to try next. The clusters stay up until
/// `ferry sandbox delete --all`. Needs root.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Cable driver between the clusters: wireguard (encrypted), ipsec
    /// (encrypted; libreswan is accepted) or vxlan.
    #[arg(long, default_value = "wireguard")]
    cable_driver: CableDriver,
    /// Seconds to wait for each step that waits (connections, DNS, HTTP).
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// How pods run: runc (ferry's components as containers of its image;
    /// the default when runc and the image are there) or local (host
    /// processes; fast).
    #[arg(long)]
    runtime: Option<ferry_sandbox::Runtime>,
    /// The OCI image archive for --runtime runc (default: the one
    /// scripts/image.sh builds, target/image/ferry-VERSION.oci.tar).
    #[arg(long)]
    image: Option<PathBuf>,
}

/// The runtime a demo runs in and the images it imports: --runtime as
/// given (runc needs --image or scripts/image.sh's output in the working
/// directory); without it, runc when runc and that image are there, else
/// local, saying which and why.
fn demo_runtime(args: &Args) -> anyhow::Result<(ferry_sandbox::Runtime, Vec<PathBuf>)> {
    use ferry_sandbox::Runtime;
    let image = args.image.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "target/image/ferry-{}.oci.tar",
            env!("CARGO_PKG_VERSION")
        ))
    });
    match args.runtime {
        Some(Runtime::Local) if args.image.is_some() => bail!("--image needs --runtime runc"),
        Some(Runtime::Local) => Ok((Runtime::Local, Vec::new())),
        Some(Runtime::Runc) if !image.exists() => bail!(
            "no image at {}: build it with scripts/image.sh or pass --image",
            image.display()
        ),
        Some(Runtime::Runc) => Ok((Runtime::Runc, vec![image])),
        None => Ok(default_runtime(image)),
    }
}

/// Without --runtime: runc with `image` when both are there, else local.
fn default_runtime(image: PathBuf) -> (ferry_sandbox::Runtime, Vec<PathBuf>) {
    use ferry_sandbox::Runtime;
    let runc = std::process::Command::new("runc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let why_not = match (runc, image.exists()) {
        (true, true) => {
            eprintln!(
                "runtime runc: ferry's components run as containers of {} \
                 (--runtime local runs the host binary instead)",
                image.display()
            );
            return (Runtime::Runc, vec![image]);
        }
        (false, _) => "runc is not installed (scripts/setup.sh installs it)".to_string(),
        (true, false) => format!(
            "no image at {} (scripts/image.sh builds it)",
            image.display()
        ),
    };
    eprintln!("runtime local: {why_not}; ferry's components run as host processes");
    (Runtime::Local, Vec::new())
}

struct Steps {
    started: Instant,
    n: usize,
    total: usize,
}

impl Steps {
    fn start(&mut self, what: &str) -> Instant {
        self.n += 1;
        eprintln!("[{}/{}] {what}", self.n, self.total);
        Instant::now()
    }
    fn done(&self, t: Instant, detail: &str) {
        eprintln!(
            "      done in {:.2}s{}{detail}",
            t.elapsed().as_secs_f64(),
            if detail.is_empty() { "" } else { ": " }
        );
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if !nix::unistd::Uid::effective().is_root() {
        bail!("ferry sandbox demo needs root (it creates network namespaces); run it with sudo");
    }
    let existing: Vec<String> = ferry_sandbox::list()
        .into_iter()
        .map(|c| c.plan.name)
        .filter(|n| CLUSTERS.contains(&n.as_str()))
        .collect();
    if !existing.is_empty() {
        bail!(
            "sandbox cluster(s) {} already exist; the demo builds them from nothing.\n\
             hint: remove them with `ferry sandbox delete {}` (or `ferry sandbox delete --all`) and run the demo again",
            existing.join(", "),
            existing.join(" && ferry sandbox delete ")
        );
    }
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(demo(args))
}

async fn demo(args: Args) -> anyhow::Result<()> {
    let timeout = Duration::from_secs(args.timeout);
    let mut steps = Steps {
        started: Instant::now(),
        n: 0,
        total: 8,
    };
    let exe = std::env::current_exe().context("locating the ferry binary")?;
    let runtime = demo_runtime(&args)?;
    let plans = create_clusters(&mut steps, &exe, timeout, runtime)?;
    let kubeconfigs: Vec<PathBuf> = CLUSTERS
        .iter()
        .map(|n| ferry_sandbox::state::kubeconfig_path(n))
        .collect();
    let mut clients = Vec::new();
    for k in &kubeconfigs {
        clients.push(ferry_kube::client_from_kubeconfig(Some(k)).await?);
    }
    let info = deploy_broker(&mut steps, &clients[0], &kubeconfigs[0]).await?;
    join_both(&mut steps, &plans, &clients, &info, args.cable_driver).await?;
    deploy_service(&mut steps, &plans, &clients, &kubeconfigs).await?;

    // 5. Cables up.
    let t = steps.start("waiting for the cables between the gateways");
    for (plan, client) in plans.iter().zip(&clients) {
        wait_connected(client, &plan.name, timeout).await?;
    }
    steps.done(t, "both gateways report their connection `connected`");

    show_broker_view(&mut steps, &clients, &kubeconfigs[0], timeout).await?;
    let url = resolve_and_fetch(&mut steps, &plans[0], &clients[0], timeout).await?;
    show_connections(&mut steps, &exe, &kubeconfigs)?;
    eprintln!(
        "\nferry demo done in {:.1}s. The clusters stay up; try:",
        steps.started.elapsed().as_secs_f64()
    );
    print_next_steps(&kubeconfigs, &url);
    Ok(())
}

/// Step 1: the clusters, created side by side.
fn create_clusters(
    steps: &mut Steps,
    exe: &Path,
    timeout: Duration,
    (runtime, images): (ferry_sandbox::Runtime, Vec<PathBuf>),
) -> anyhow::Result<Vec<ferry_sandbox::Plan>> {
    let t = steps.start("creating sandbox clusters cluster0 and cluster1 (2 nodes each)");
    let mut plans = Vec::new();
    let handles: Vec<_> = CLUSTERS
        .iter()
        .map(|name| {
            let opts = ferry_sandbox::CreateOptions {
                name: (*name).into(),
                nodes: 2,
                pod_cidr: None,
                service_cidr: None,
                dns_upstream: None,
                nat: None,
                ferry_exe: exe.to_path_buf(),
                ferry_image: "ferry".into(),
                timeout,
                runtime,
                images: images.clone(),
                cni: Default::default(),
            };
            std::thread::spawn(move || ferry_sandbox::create(&opts))
        })
        .collect();
    for (h, name) in handles.into_iter().zip(CLUSTERS) {
        let plan = h
            .join()
            .map_err(|_| anyhow::anyhow!("creating {name} panicked"))?
            .with_context(|| format!("creating sandbox cluster {name}"))?;
        plans.push(plan);
    }
    steps.done(
        t,
        &plans
            .iter()
            .map(|p| format!("{} pods {} services {}", p.name, p.pod_cidr, p.service_cidr))
            .collect::<Vec<_>>()
            .join("; "),
    );
    Ok(plans)
}

/// Step 2: the broker on cluster0, and its broker-info file.
async fn deploy_broker(
    steps: &mut Steps,
    client: &Client,
    kubeconfig: &Path,
) -> anyhow::Result<BrokerInfo> {
    let t = steps.start("deploying the broker on cluster0");
    let kc = ferry_kube::read_kubeconfig(Some(kubeconfig))?;
    let joiner_token = ferry_apiserver::create_token(
        &ferry_sandbox::state::apiserver_dir(CLUSTERS[0]),
        &ferry_apiserver::Identity::Joiner,
    )
    .ok();
    let info = install::deploy_broker(
        client,
        &kc,
        &DeployBrokerOptions {
            namespace: ferry_api::labels::BROKER_NAMESPACE.into(),
            joiner_token,
            ..Default::default()
        },
    )
    .await
    .context("deploying the broker")?;
    let info_path = ferry_sandbox::state::cluster_dir(CLUSTERS[0]).join("broker-info.ferry");
    std::fs::write(&info_path, info.encode()?)
        .with_context(|| format!("writing {}", info_path.display()))?;
    steps.done(
        t,
        &format!("{} → {}", info.api_server_url, info_path.display()),
    );
    Ok(info)
}

/// Step 3: both clusters joined, node0 of each as the gateway.
async fn join_both(
    steps: &mut Steps,
    plans: &[ferry_sandbox::Plan],
    clients: &[Client],
    info: &BrokerInfo,
    cable_driver: CableDriver,
) -> anyhow::Result<()> {
    let t = steps.start(&format!(
        "joining cluster0 and cluster1 (cable driver {cable_driver}, gateway node NAME-node0)"
    ));
    for (plan, client) in plans.iter().zip(clients) {
        let opts = JoinOptions {
            cluster_id: plan.name.clone(),
            cluster_cidrs: vec![plan.pod_cidr.to_string().parse()?],
            service_cidrs: vec![plan.service_cidr.to_string().parse()?],
            cable_driver: Some(cable_driver),
            gateway_node: Some(plan.node_name(0)),
            image: ferry_deploy::default_image(),
            gateway: Default::default(),
            globalnet: None,
            network_plugin: None,
        };
        install::join(client, info, &opts)
            .await
            .with_context(|| format!("joining {}", plan.name))?;
    }
    steps.done(t, "");
    Ok(())
}

/// Step 4: the service in cluster1, exported; its namespace in cluster0 too
/// (MCS namespace sameness: imports appear where the namespace exists), and
/// a client pod on cluster0's non-gateway node.
async fn deploy_service(
    steps: &mut Steps,
    plans: &[ferry_sandbox::Plan],
    clients: &[Client],
    kubeconfigs: &[PathBuf],
) -> anyhow::Result<()> {
    let t = steps.start("deploying examples/nginx.yaml in cluster1 and exporting it");
    kubectl_apply(&kubeconfigs[1], NGINX_YAML)?;
    let export = json!({
        "apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceExport",
        "metadata": {"name": "nginx", "namespace": "nginx-test"},
    });
    kubectl_apply(&kubeconfigs[1], &export.to_string())?;
    let ns: Api<Namespace> = Api::all(clients[0].clone());
    let body: Namespace = serde_json::from_value(json!({"metadata": {"name": "nginx-test"}}))?;
    ns.patch(
        "nginx-test",
        &PatchParams::apply("ferry-demo"),
        &Patch::Apply(&body),
    )
    .await
    .context("creating namespace nginx-test in cluster0")?;
    let pods: Api<Pod> = Api::namespaced(clients[0].clone(), "default");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": CLIENT_POD},
        "spec": {
            "nodeName": plans[0].node_name(1),
            "containers": [{"name": "sleep", "image": "busybox", "command": ["sleep", "infinity"]}],
        },
    }))?;
    pods.create(&PostParams::default(), &pod)
        .await
        .context("creating the demo client pod")?;
    steps.done(t, "");
    Ok(())
}

/// Step 6: the broker's view, as in the seed. Waits for the import in
/// every cluster, the exporting one too: a user's `dig` there must answer
/// as soon as the demo is done.
async fn show_broker_view(
    steps: &mut Steps,
    clients: &[Client],
    kubeconfig: &Path,
    timeout: Duration,
) -> anyhow::Result<()> {
    let t = steps
        .start("the broker's ServiceImport and EndpointSlice (cluster0, namespace ferry-broker)");
    for (client, name) in clients.iter().zip(CLUSTERS) {
        let what = format!("the ServiceImport nginx in {name}");
        wait_for(timeout, &what, || async {
            let si: Api<ServiceImport> = Api::namespaced(client.clone(), "nginx-test");
            Ok(si.get_opt("nginx").await?.is_some())
        })
        .await?;
    }
    for what in ["serviceimport", "endpointslice"] {
        let cmd = format!("kubectl -n ferry-broker get {what}");
        println!("$ {cmd}");
        print!(
            "{}",
            kubectl(kubeconfig, &["-n", "ferry-broker", "get", what])?
        );
    }
    println!("$ kubectl -n nginx-test get serviceimport   # in cluster0");
    print!(
        "{}",
        kubectl(kubeconfig, &["-n", "nginx-test", "get", "serviceimport"])?
    );
    steps.done(t, "");
    Ok(())
}

/// Step 7: the name resolved and the service fetched over HTTP from the
/// client pod on cluster0's non-gateway node; returns the URL.
async fn resolve_and_fetch(
    steps: &mut Steps,
    plan: &ferry_sandbox::Plan,
    client: &Client,
    timeout: Duration,
) -> anyhow::Result<String> {
    let t = steps.start(&format!(
        "resolving and fetching {SERVICE_NAME} from pod {CLIENT_POD} on {} (not a gateway)",
        plan.node_name(1)
    ));
    let client_ns = wait_pod_netns(client, timeout).await?;
    let answer = wait_for_output(timeout, "a DNS answer", || {
        let out = netns_run(
            &client_ns,
            &["dig", "+short", "+time=1", "+tries=1", SERVICE_NAME],
        )?;
        Ok((!out.trim().is_empty() && !out.contains(";;")).then_some(out))
    })
    .await?;
    println!("$ dig +short {SERVICE_NAME}   # from {CLIENT_POD} in cluster0");
    print!("{answer}");
    let url = format!("http://{SERVICE_NAME}:8080/");
    let body = wait_for_output(timeout, "an HTTP reply", || {
        let out = netns_run(&client_ns, &["curl", "-s", "--max-time", "2", &url])?;
        Ok((!out.trim().is_empty()).then_some(out))
    })
    .await?;
    println!("$ curl -s {url}   # from {CLIENT_POD} in cluster0");
    println!("{}", body.trim_end());
    steps.done(t, "");
    Ok(url)
}

/// Step 8: the cables, as `ferry show connections` prints them.
fn show_connections(steps: &mut Steps, exe: &Path, kubeconfigs: &[PathBuf]) -> anyhow::Result<()> {
    let t = steps.start("connections");
    let out = Command::new(exe)
        .args(["show", "connections", "--kubeconfig"])
        .arg(
            kubeconfigs
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(","),
        )
        .output()
        .context("running ferry show connections")?;
    println!("$ ferry show connections");
    print!("{}", String::from_utf8_lossy(&out.stdout));
    if !out.status.success() {
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
    }
    steps.done(t, "");
    Ok(())
}

/// What to try next, with the demo's own kubeconfigs and URL.
fn print_next_steps(kubeconfigs: &[PathBuf], url: &str) {
    let k0 = kubeconfigs[0].display();
    let k1 = kubeconfigs[1].display();
    eprintln!(
        "  export KUBECONFIG={k0}                # cluster0 (also the broker)\n\
         \x20 ferry show all --kubeconfig {k0},{k1}\n\
         \x20 ferry diagnose all\n\
         \x20 ferry sandbox exec cluster0 {CLIENT_POD} -- curl -s {url}\n\
         \x20 ferry sandbox exec cluster0 {CLIENT_POD} -- dig {SERVICE_NAME}\n\
         \x20 kubectl --kubeconfig {k1} -n nginx-test scale deployment nginx --replicas=3\n\
         \x20 kubectl --kubeconfig {k0} -n ferry-system get gateways,endpoints.ferry.dev,clusters.ferry.dev\n\
         \x20 ferry sandbox delete --all             # when done"
    );
}

fn kubectl(kubeconfig: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .context("running kubectl (is it installed?)")?;
    if !out.status.success() {
        bail!(
            "kubectl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn kubectl_apply(kubeconfig: &Path, manifest: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["apply", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("running kubectl apply (is kubectl installed?)")?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(manifest.as_bytes())
            .context("writing to kubectl")?;
    }
    let out = child.wait_with_output().context("waiting for kubectl")?;
    if !out.status.success() {
        bail!(
            "kubectl apply failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn netns_run(netns: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("ip")
        .args(["netns", "exec", netns])
        .args(args)
        .output()
        .with_context(|| format!("running {} in {netns}", args[0]))?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Waits until `check` says yes (an error counts as no), every 50 ms.
async fn wait_for<F, Fut>(timeout: Duration, what: &str, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let deadline = Instant::now() + timeout;
    let looked = poll_until(deadline, Duration::from_millis(50), || {
        let check = check();
        async move {
            if check.await.unwrap_or(false) {
                Break(())
            } else {
                Continue(())
            }
        }
    })
    .await;
    if looked.is_err() {
        bail!("timed out after {timeout:?} waiting for {what}");
    }
    Ok(())
}

/// Waits until `check` returns some output, every 100 ms; a timeout names
/// the last error `check` met.
async fn wait_for_output<F>(timeout: Duration, what: &str, mut check: F) -> anyhow::Result<String>
where
    F: FnMut() -> anyhow::Result<Option<String>>,
{
    let deadline = Instant::now() + timeout;
    let mut last_err = None;
    let looked = poll_until(deadline, Duration::from_millis(100), || {
        let outcome = match check() {
            Ok(Some(out)) => Break(out),
            Ok(None) => Continue(()),
            Err(e) => {
                last_err = Some(e);
                Continue(())
            }
        };
        std::future::ready(outcome)
    })
    .await;
    looked.or_else(|()| {
        let cause = last_err
            .map(|e| format!(" (last error: {e:#})"))
            .unwrap_or_default();
        bail!("timed out after {timeout:?} waiting for {what}{cause}")
    })
}

/// Waits until the cluster's active gateway reports every connection connected.
async fn wait_connected(client: &Client, cluster: &str, timeout: Duration) -> anyhow::Result<()> {
    let api: Api<Gateway> = Api::namespaced(client.clone(), ferry_api::labels::SYSTEM_NAMESPACE);
    // What the gateways said last, for the timeout message.
    let last: std::cell::RefCell<BTreeMap<String, String>> = Default::default();
    let (api, last_ref) = (&api, &last);
    let deadline = Instant::now() + timeout;
    let looked = poll_until(deadline, Duration::from_millis(50), move || async move {
        let Ok(list) = api.list(&Default::default()).await else {
            return Continue(());
        };
        let mut last = last_ref.borrow_mut();
        last.clear();
        for gw in list.items {
            let Some(s) = gw.status else { continue };
            for c in &s.connections {
                last.insert(
                    c.cluster_id.clone(),
                    format!("{:?} {}", c.status, c.status_message),
                );
                if c.status == ConnectionStatus::Connected {
                    return Break(());
                }
            }
        }
        Continue(())
    })
    .await;
    if looked.is_err() {
        bail!(
            "timed out after {timeout:?}: {cluster}'s gateway has no connected cable ({:?}).\n\
             hint: kubectl --kubeconfig {} -n ferry-system get gateways -o yaml; ferry sandbox logs {cluster} <gateway pod>",
            last.borrow(),
            ferry_sandbox::state::kubeconfig_path(cluster).display()
        );
    }
    Ok(())
}

/// The client pod's network namespace, once it runs.
async fn wait_pod_netns(client: &Client, timeout: Duration) -> anyhow::Result<String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    wait_for(timeout, "the demo client pod to run", || async {
        let p = pods.get(CLIENT_POD).await?;
        Ok(p.status.and_then(|s| s.phase).as_deref() == Some("Running"))
    })
    .await?;
    ferry_sandbox::exec_target(CLUSTERS[0], &format!("default/{CLIENT_POD}"))
        .context("finding the demo client pod's namespace")
}
