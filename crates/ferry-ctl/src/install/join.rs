//! `ferry join`: checks a cluster against the broker's, then installs ferry
//! in it with a broker token of its own and publishes its `Cluster`.

use ferry_api::labels::{self, CLUSTER};
use ferry_api::{
    BrokerInfo, CableDriver, Cidr, Cluster, ClusterProperty, NetworkPlugin, find_overlap,
};
use ferry_deploy::{
    BROKER_SECRET, BrokerSecret, CLUSTER_SA_PREFIX, ClusterParams, GatewaySettings,
};
use k8s_openapi::api::core::v1::{ConfigMap, Node, Secret, Service, ServiceAccount};
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use tracing::{info, warn};

use super::Unsupported;
use super::apply::{apply_value, is_ferry_apiserver, kube_error};
use super::globalnet::{self, GlobalnetRequest};
use crate::{Error, Refusal, Result};

/// Options of [`join`].
#[derive(Clone, Debug)]
pub struct JoinOptions {
    /// The cluster id.
    pub cluster_id: String,
    /// Pod CIDRs.
    pub cluster_cidrs: Vec<Cidr>,
    /// Service CIDRs.
    pub service_cidrs: Vec<Cidr>,
    /// Cable driver (default: the broker's).
    pub cable_driver: Option<CableDriver>,
    /// Node to label `ferry.dev/gateway=true`.
    pub gateway_node: Option<String>,
    /// Image of the components.
    pub image: String,
    /// The gateway's settings (subctl join's `--natt`, `--health-check`, …).
    pub gateway: GatewaySettings,
    /// Globalnet for this cluster (`--globalnet`), with what it asks.
    pub globalnet: Option<GlobalnetRequest>,
    /// The cluster's CNI (detected, or `--cni`); recorded in its `Cluster`.
    pub network_plugin: Option<NetworkPlugin>,
}

/// What [`join`] did.
#[derive(Clone, Debug)]
pub struct JoinReport {
    /// Whether this cluster had joined before (a re-run).
    pub rejoined: bool,
    /// Objects applied to the cluster.
    pub applied: usize,
}

/// Checks a join against the broker's clusters without changing anything:
/// the id is free (or already this cluster's, `own_id`), and no CIDR of this
/// cluster overlaps one of another cluster.
pub fn check_join(
    clusters: &[Cluster],
    cluster_id: &str,
    own_id: Option<&str>,
    cidrs: &[Cidr],
) -> Result<()> {
    check_join_as(clusters, cluster_id, own_id, cidrs, false)
}

/// [`check_join`] for a cluster with Globalnet on (`globalnet`) or off.
/// Two Globalnet clusters reach each other only through global CIDRs, so
/// their own CIDRs may overlap; every other pair routes the other's pod and
/// service CIDRs, which must not overlap. Global CIDRs never may.
pub fn check_join_as(
    clusters: &[Cluster],
    cluster_id: &str,
    own_id: Option<&str>,
    cidrs: &[Cidr],
    globalnet: bool,
) -> Result<()> {
    ferry_api::validate_cluster_id(cluster_id)?;
    ferry_api::check_no_self_overlap(cidrs)?;
    if let Some(own) = own_id
        && own != cluster_id
    {
        return Err(Error::Refused(Refusal::AlreadyJoined {
            own: own.to_string(),
            wanted: cluster_id.to_string(),
        }));
    }
    for c in clusters {
        let id = &c.spec.cluster_id;
        if id == cluster_id {
            if own_id == Some(cluster_id) {
                continue;
            }
            return Err(Error::Refused(Refusal::IdTaken {
                id: cluster_id.to_string(),
            }));
        }
        let both_global = globalnet && !c.spec.global_cidrs.is_empty();
        let theirs: Vec<Cidr> = c
            .spec
            .cluster_cidrs
            .iter()
            .chain(&c.spec.service_cidrs)
            .filter(|_| !both_global)
            .chain(&c.spec.global_cidrs)
            .copied()
            .collect();
        if let Some((mine, other)) = find_overlap(cidrs, &theirs) {
            return Err(Error::Refused(Refusal::CidrOverlap {
                cidr: mine,
                cluster: cluster_id.to_string(),
                other_cidr: other,
                other_cluster: id.clone(),
            }));
        }
    }
    Ok(())
}

/// Joins the cluster behind `local` to the broker described by `info`.
/// Validates everything before changing anything; idempotent.
pub async fn join(local: &Client, info: &BrokerInfo, opts: &JoinOptions) -> Result<JoinReport> {
    let id = opts.cluster_id.as_str();
    ferry_api::validate_cluster_id(id)?;
    let cidrs: Vec<Cidr> = opts
        .cluster_cidrs
        .iter()
        .chain(&opts.service_cidrs)
        .copied()
        .collect();
    let joiner = ferry_kube::broker_client(info, &info.token).await?;
    let bns = info.broker_namespace.as_str();

    // Read-only checks first.
    let props: Api<ClusterProperty> = Api::all(local.clone());
    let own_id = match props.get_opt(labels::CLUSTER_ID_PROPERTY).await {
        Ok(p) => p.map(|p| p.spec.value),
        Err(kube::Error::Api(s)) if s.code == 404 => None, // CRD not installed yet
        Err(e) => return Err(kube_error("reading this cluster's ClusterProperty", e)),
    };
    let clusters: Api<Cluster> = Api::namespaced(joiner.clone(), bns);
    let existing = clusters
        .list(&Default::default())
        .await
        .map_err(|e| {
            kube_error(
                format!("listing the clusters on the broker {}", info.api_server_url),
                e,
            )
        })?
        .items;
    check_join_as(
        &existing,
        id,
        own_id.as_deref(),
        &cidrs,
        opts.globalnet.is_some(),
    )?;
    check_settings(opts, info)?;
    super::preflight::preflight(
        local,
        &super::preflight::Asked {
            image: &opts.image,
            gateway_node: opts.gateway_node.as_deref(),
            cable_driver: driver(opts, info),
            nat_port: opts.gateway.nat_port,
            connectivity: info.settings.components.connectivity,
        },
    )
    .await?;
    if let Some(req) = &opts.globalnet {
        let held = globalnet::held(&joiner, bns).await?;
        globalnet::check_request(info, req, &cidrs, &globalnet::taken(&existing, &held, id))?;
    }
    let rejoined = own_id.as_deref() == Some(id);

    let token = cluster_token(local, &joiner, info, id).await?;
    let mut cluster_info = info.clone();
    cluster_info.token = token.clone();
    let broker = ferry_kube::broker_client(info, &token).await?;
    let global_cidrs = match &opts.globalnet {
        Some(req) => vec![globalnet::claim(&broker, info, id, req, &cidrs, &existing).await?],
        None => Vec::new(),
    };

    let params = ClusterParams {
        cluster_id: id.into(),
        image: opts.image.clone(),
        namespace: labels::SYSTEM_NAMESPACE.into(),
        broker_info: cluster_info.encode()?,
        cluster_cidrs: opts.cluster_cidrs.clone(),
        service_cidrs: opts.service_cidrs.clone(),
        global_cidrs: global_cidrs.clone(),
        network_plugin: opts.network_plugin,
        cable_driver: driver(opts, info),
        gateway: opts.gateway.clone(),
        components: info.settings.components,
    };
    let objects = ferry_deploy::cluster_manifests(&params)?;
    for obj in &objects {
        apply_value(local, obj).await?;
    }
    keep_joiner_token(local, id, &info.token).await?;

    if info.settings.components.service_discovery {
        forward_clusterset_to_ferry_dns(local, &info.clusterset_domain).await?;
    }

    // Publish the Cluster at once, so a concurrent join sees the id and CIDRs.
    let spec = ferry_api::ClusterSpec {
        cluster_id: id.into(),
        cluster_cidrs: opts.cluster_cidrs.clone(),
        service_cidrs: opts.service_cidrs.clone(),
        global_cidrs: global_cidrs.clone(),
        network_plugin: opts.network_plugin,
    };
    let cluster = json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "Cluster",
        "metadata": {"name": id, "namespace": bns, "labels": {
            CLUSTER: id, labels::APP_MANAGED_BY: labels::APP_MANAGED_BY_FERRY}},
        "spec": spec,
    });
    apply_value(&broker, &cluster).await?;

    if let Some(node) = &opts.gateway_node {
        label_gateway(local, node).await?;
    }
    info!(cluster = id, rejoined, "joined");
    Ok(JoinReport {
        rejoined,
        applied: objects.len() + 2,
    })
}

fn driver(opts: &JoinOptions, info: &BrokerInfo) -> CableDriver {
    opts.cable_driver
        .unwrap_or(info.settings.default_cable_driver)
}

/// Refuses, before anything changes, a join whose CIDRs are unknown (the
/// gateway cannot route without them) or whose settings contradict.
fn check_settings(opts: &JoinOptions, info: &BrokerInfo) -> Result<()> {
    for (cidrs, kind, flag) in [
        (&opts.cluster_cidrs, "pod", "clustercidr"),
        (&opts.service_cidrs, "service", "servicecidr"),
    ] {
        if cidrs.is_empty() {
            return Err(Refusal::CidrsUnknown {
                kind,
                flag,
                tried: "none were given".into(),
            }
            .into());
        }
    }
    if let (CableDriver::Vxlan, Some(port)) = (driver(opts, info), opts.gateway.nat_port) {
        return Err(Unsupported::NatPortWithVxlan { port }.into());
    }
    let driver = driver(opts, info);
    for (given, flag) in [
        (opts.gateway.ipsec_ike_lifetime, "--ipsec-ike-lifetime"),
        (opts.gateway.ipsec_child_lifetime, "--ipsec-child-lifetime"),
    ] {
        if given.is_some() && driver != CableDriver::Ipsec {
            return Err(Unsupported::IpsecLifetimeWithoutIpsec { flag, driver }.into());
        }
    }
    Ok(())
}

/// The cluster's nodes, and which of them are labelled
/// `ferry.dev/gateway=true` (for `join --label-gateway`).
pub async fn gateway_nodes(local: &Client) -> Result<(Vec<String>, Vec<String>)> {
    let nodes: Api<Node> = Api::all(local.clone());
    let list = nodes
        .list(&Default::default())
        .await
        .map_err(|e| kube_error("listing the cluster's nodes", e))?;
    let mut all = Vec::new();
    let mut gateways = Vec::new();
    for n in list.items {
        let Some(name) = n.metadata.name else {
            continue;
        };
        let labelled = n
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(labels::GATEWAY))
            .is_some_and(|v| v == labels::GATEWAY_ENABLED);
        if labelled {
            gateways.push(name.clone());
        }
        all.push(name);
    }
    Ok((all, gateways))
}

/// A cluster-scoped broker token: this cluster's own while it is good for a
/// while yet, else a new one minted through the `joiner` client.
async fn cluster_token(
    local: &Client,
    joiner: &Client,
    info: &BrokerInfo,
    id: &str,
) -> Result<String> {
    let secrets: Api<Secret> = Api::namespaced(local.clone(), labels::SYSTEM_NAMESPACE);
    if let Ok(Some(s)) = secrets.get_opt(BROKER_SECRET).await
        && let Ok(old) = BrokerSecret::from_secret(&s)
        && old.cluster_id == id
        && old.broker_info.api_server_url == info.api_server_url
        && ferry_agent::token::usable(
            &old.broker_info.token,
            k8s_openapi::jiff::Timestamp::now().as_second(),
        )
    {
        return Ok(old.broker_info.token);
    }
    let bns = info.broker_namespace.as_str();
    let sa_name = format!("{CLUSTER_SA_PREFIX}{id}");
    let ferry = is_ferry_apiserver(joiner).await?;
    for obj in ferry_deploy::broker_cluster_identity(bns, id) {
        if ferry && obj["kind"] != "ServiceAccount" {
            continue;
        }
        apply_value(joiner, &obj).await?;
    }
    let sas: Api<ServiceAccount> = Api::namespaced(joiner.clone(), bns);
    Ok(ferry_kube::request_token(&sas, &sa_name, None).await?)
}

/// Keeps broker-info.ferry's joiner token in the `ferry-joiner` Secret, so
/// `ferry recover-broker-info` can write the file again from this cluster.
async fn keep_joiner_token(local: &Client, id: &str, token: &str) -> Result<()> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(token);
    apply_value(
        local,
        &json!({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": ferry_deploy::JOINER_SECRET, "namespace": labels::SYSTEM_NAMESPACE,
                "labels": {CLUSTER: id, labels::APP_MANAGED_BY: labels::APP_MANAGED_BY_FERRY}},
            "data": {ferry_deploy::joiner_secret_keys::TOKEN: b64},
        }),
    )
    .await
}

/// Labels `node` as a gateway (`ferry.dev/gateway=true`).
async fn label_gateway(local: &Client, node: &str) -> Result<()> {
    let nodes: Api<Node> = Api::all(local.clone());
    nodes
        .patch(
            node,
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"labels": {labels::GATEWAY: labels::GATEWAY_ENABLED}}}),
            ),
        )
        .await
        .map_err(|e| kube_error(format!("labelling node {node} as a gateway"), e))?;
    Ok(())
}

/// On clusters whose DNS is CoreDNS (`kube-system/coredns` with a
/// `Corefile`), adds the marked block that forwards the clusterset zone to the
/// `ferry-dns` Service; idempotent. Clusters without it (the sandbox, whose
/// own DNS already forwards the zone) are left alone.
async fn forward_clusterset_to_ferry_dns(local: &Client, domain: &str) -> Result<()> {
    let configmaps: Api<ConfigMap> = Api::namespaced(local.clone(), "kube-system");
    let coredns = match configmaps.get_opt("coredns").await {
        Ok(Some(cm)) => cm,
        Ok(None) => return Ok(()),
        Err(kube::Error::Api(s)) if s.code == 403 || s.code == 404 => return Ok(()),
        Err(e) => return Err(kube_error("reading kube-system/coredns", e)),
    };
    let Some(corefile) = coredns.data.as_ref().and_then(|d| d.get("Corefile")) else {
        return Ok(());
    };
    let services: Api<Service> = Api::namespaced(local.clone(), labels::SYSTEM_NAMESPACE);
    let ip = services
        .get("ferry-dns")
        .await
        .map_err(|e| kube_error("reading the ferry-dns Service", e))?
        .spec
        .and_then(|s| s.cluster_ip)
        .filter(|ip| !ip.is_empty() && ip != "None");
    let Some(ip) = ip else {
        warn!("the ferry-dns Service has no ClusterIP yet; CoreDNS not configured (re-run join)");
        return Ok(());
    };
    let updated = ferry_deploy::coredns::ensure_forward_block(corefile, &[domain.to_string()], &ip);
    if &updated == corefile {
        return Ok(());
    }
    configmaps
        .patch(
            "coredns",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"Corefile": updated}})),
        )
        .await
        .map_err(|e| kube_error("adding ferry's forward block to kube-system/coredns", e))?;
    info!(%ip, domain, "CoreDNS forwards the clusterset zone to ferry dns");
    Ok(())
}

#[cfg(test)]
mod tests;
