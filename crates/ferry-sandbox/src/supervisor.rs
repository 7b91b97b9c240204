//! The per-cluster supervisor process (`ferry sandbox supervise NAME`): the
//! cluster's API server, its Node objects, the controllers, the pod runner,
//! the service proxy of every node and the cluster DNS, in one process in
//! the host namespace (pods and per-node work reach into the node
//! namespaces with `ip netns exec` and per-thread `setns`).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use crate::controllers::{Controllers, Stores, Wakers, run_loop};
use crate::dns::Dns;
use crate::nft::{self, ServicePort};
use crate::plan::Plan;
use crate::runner::{Runner, RunnerConfig};
use crate::{Error, Result, state};

/// Port of every sandbox API server (on the host's bridge address).
pub const APISERVER_PORT: u16 = 6443;

/// A kube client from a kubeconfig file.
pub async fn client_from(path: &std::path::Path) -> Result<Client> {
    let kc = Kubeconfig::read_from(path)?;
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
    Ok(Client::try_from(config)?)
}

/// Runs the supervisor until SIGTERM/SIGINT.
pub async fn supervise(name: &str, config: RunnerConfig) -> Result<()> {
    let _ = nix::unistd::setsid(); // detach from the creating terminal; fails harmlessly if already a leader
    let plan = state::load_plan(name)?;
    state::write_file(
        &state::pid_path(name),
        std::process::id().to_string().as_bytes(),
    )?;
    let mut cfg = ferry_apiserver::Config::new(
        state::apiserver_dir(name),
        SocketAddr::from((plan.host_ip(), APISERVER_PORT)),
    );
    cfg.tls_sans.push(plan.host_ip().to_string());
    // The API server allocates ClusterIPs, from the cluster's own range.
    cfg.service_cluster_ip_range = plan.service_cidr.to_string().parse()?;
    let server = ferry_apiserver::start(cfg).await?;
    let client = client_from(&server.admin_kubeconfig).await?;
    register_nodes(&client, &plan).await?;
    if plan.cni == crate::plan::SandboxCni::KubeOvn {
        crate::kube_ovn::publish(&client, &plan).await?;
    }

    let wakers = Arc::new(Wakers::default());
    let stores = Stores::start(&client, wakers.clone()).await;
    Controllers::new(client.clone(), stores.clone(), plan.clone()).spawn(&wakers);
    let runner = Runner::new(
        client.clone(),
        plan.clone(),
        stores.clone(),
        config,
        server.admin_kubeconfig.clone(),
    );
    runner.spawn(&wakers);
    spawn_proxy(plan.clone(), stores.clone(), &wakers);
    let dns = Dns {
        services: stores.services.clone(),
        slices: stores.slices.clone(),
        upstream: Some(crate::dns::Upstream::parse(
            plan.dns_upstream
                .as_deref()
                .unwrap_or(crate::dns::DEFAULT_UPSTREAM),
        )?),
        forward_netns: Some(plan.node_netns(0)),
    };
    let dns_addr = SocketAddr::from((plan.host_ip(), 53));
    tokio::spawn(async move {
        if let Err(e) = dns.serve(dns_addr).await {
            tracing::error!(error = %e, "cluster DNS");
        }
    });
    state::write_file(&state::ready_path(name), b"ready\n")?;
    tracing::info!(cluster = %name, url = %server.url, "sandbox cluster up");

    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| Error::io("installing", "SIGTERM handler", e))?;
    let mut int = signal(SignalKind::interrupt())
        .map_err(|e| Error::io("installing", "SIGINT handler", e))?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("stopping pods");
    let _ = tokio::time::timeout(Duration::from_secs(3), runner.shutdown()).await;
    server.shutdown().await;
    Ok(())
}

async fn register_nodes(client: &Client, plan: &Plan) -> Result<()> {
    let api: Api<Node> = Api::all(client.clone());
    for k in 0..plan.nodes {
        let name = plan.node_name(k);
        let cidr = plan.node_pod_cidr(k).to_string();
        let status = json!({
            "addresses": [
                {"type": "InternalIP", "address": plan.node_ip(k).to_string()},
                {"type": "ExternalIP", "address": plan.public_ip(k).to_string()},
                {"type": "Hostname", "address": name},
            ],
            "conditions": [{
                "type": "Ready", "status": "True", "reason": "SandboxNodeReady",
                "message": "ferry sandbox node is ready",
                "lastHeartbeatTime": k8s_openapi::jiff::Timestamp::now().to_string(),
                "lastTransitionTime": k8s_openapi::jiff::Timestamp::now().to_string(),
            }],
        });
        let node: Node = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {
                "name": name,
                "labels": {
                    "kubernetes.io/hostname": name,
                    "kubernetes.io/os": "linux",
                    "sandbox.ferry.dev/cluster": plan.name,
                },
                "annotations": {
                    "sandbox.ferry.dev/netns": plan.node_netns(k),
                    "sandbox.ferry.dev/wan-ip": plan.public_ip(k).to_string(),
                },
            },
            "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
            "status": status,
        }))?;
        match api.create(&PostParams::default(), &node).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {
                api.patch_status(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": status})),
                )
                .await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The service ports and ready endpoints the proxy programs.
pub fn service_ports(stores: &Stores) -> Vec<ServicePort> {
    let slices = stores.slices.state();
    let mut out = Vec::new();
    for s in stores.services.state() {
        let spec = s.spec.clone().unwrap_or_default();
        let Some(cluster_ip) = spec
            .cluster_ip
            .as_deref()
            .and_then(|ip| ip.parse::<Ipv4Addr>().ok())
        else {
            continue;
        };
        let ns = s.namespace().unwrap_or_default();
        let svc = s.name_any();
        let affinity_timeout = affinity_timeout(&spec);
        let mine: Vec<_> = slices
            .iter()
            .filter(|e| {
                e.namespace().as_deref() == Some(&ns)
                    && e.labels().get("kubernetes.io/service-name") == Some(&svc)
            })
            .collect();
        for sp in spec.ports.clone().unwrap_or_default() {
            let pname = sp.name.clone().unwrap_or_default();
            let protocol = sp
                .protocol
                .clone()
                .unwrap_or_else(|| "TCP".into())
                .to_ascii_lowercase();
            let mut endpoints = Vec::new();
            for e in &mine {
                let Some(port) = e
                    .ports
                    .iter()
                    .flatten()
                    .find(|p| p.name.clone().unwrap_or_default() == pname)
                    .and_then(|p| p.port)
                    .and_then(|p| u16::try_from(p).ok())
                else {
                    continue;
                };
                for ep in &e.endpoints {
                    if ep.conditions.as_ref().and_then(|c| c.ready) == Some(false) {
                        continue;
                    }
                    for a in &ep.addresses {
                        if let Ok(ip) = a.parse() {
                            endpoints.push((ip, port));
                        }
                    }
                }
            }
            endpoints.sort();
            endpoints.dedup();
            let Ok(port) = u16::try_from(sp.port) else {
                continue;
            };
            out.push(ServicePort {
                id: format!("{ns}/{svc}:{pname}"),
                cluster_ip,
                protocol,
                port,
                endpoints,
                affinity_timeout,
            });
        }
    }
    out
}

/// `sessionAffinity: ClientIP`'s timeout, as kube-proxy reads it.
fn affinity_timeout(spec: &k8s_openapi::api::core::v1::ServiceSpec) -> Option<u32> {
    (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
        spec.session_affinity_config
            .as_ref()
            .and_then(|c| c.client_ip.as_ref())
            .and_then(|c| c.timeout_seconds)
            .and_then(|t| u32::try_from(t).ok())
            .filter(|t| *t > 0)
            .unwrap_or(nft::DEFAULT_AFFINITY_TIMEOUT)
    })
}

fn spawn_proxy(plan: Plan, stores: Stores, wakers: &Wakers) {
    let w = wakers.register();
    let applied: Arc<tokio::sync::Mutex<HashMap<u32, String>>> = Arc::default();
    tokio::spawn(async move {
        run_loop("proxy", w, || {
            let (plan, stores, applied) = (plan.clone(), stores.clone(), applied.clone());
            async move {
                let script = nft::render(&plan, &service_ports(&stores));
                let mut applied = applied.lock().await;
                let mut jobs = Vec::new();
                for k in 0..plan.nodes {
                    if applied.get(&k) == Some(&script) {
                        continue;
                    }
                    let (ns, s) = (plan.node_netns(k), script.clone());
                    jobs.push((
                        k,
                        tokio::task::spawn_blocking(move || crate::net::nft_apply(&ns, &s)),
                    ));
                }
                for (k, job) in jobs {
                    match job.await {
                        Ok(Ok(())) => {
                            applied.insert(k, script.clone());
                        }
                        Ok(Err(e)) => tracing::warn!(node = k, error = %e, "nft"),
                        Err(_) => {}
                    }
                }
                Ok(())
            }
        })
        .await
    });
}
