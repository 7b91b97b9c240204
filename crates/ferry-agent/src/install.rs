//! `ferry deploy-broker` and `ferry join`, as library calls: building clients
//! from kubeconfigs and `broker-info.ferry`, applying generated manifests,
//! minting cluster-scoped broker tokens, and the checks `join` makes before
//! it changes anything.
//!
//! Trust model: `broker-info.ferry` carries a *joiner* credential — it may
//! read the broker namespace and mint a token for any new cluster id, so
//! treat the file like a kubeconfig. Each cluster keeps only its own
//! `cluster:<id>` token (in the `ferry-broker` Secret of `ferry-system`),
//! which may write only objects labelled `ferry.dev/cluster=<id>`. On
//! `ferry apiserver` the joiner is a built-in identity (minted from the data
//! directory); against a ferry apiserver reached only through an admin
//! kubeconfig, the admin token is the only credential able to mint cluster
//! tokens, so it is written instead (with a warning). On real Kubernetes the
//! joiner is a ServiceAccount with a narrow Role, and a
//! ValidatingAdmissionPolicy enforces the per-cluster label rule.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ferry_api::labels::{self, CLUSTER};
use ferry_api::{BrokerInfo, CableDriver, Cidr, Cluster, ClusterProperty, find_overlap};
use ferry_deploy::{BROKER_JOINER, BROKER_SECRET, CLUSTER_SA_PREFIX, ClusterParams, secret_keys};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Node, Secret, Service, ServiceAccount};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, Config};
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::sync::AgentConfig;
use crate::{Error, Result};

/// Field manager of what `join` and `deploy-broker` apply.
const FIELD_MANAGER: &str = "ferry";

/// Secret in the broker namespace holding the cables' pre-shared key, so a
/// second `deploy-broker` keeps it.
pub const PSK_SECRET: &str = "ferry-cable-psk";

/// Reads a kubeconfig (the given file, else `$KUBECONFIG`, else
/// `~/.kube/config`).
pub fn read_kubeconfig(path: Option<&Path>) -> Result<Kubeconfig> {
    let kc = match path {
        Some(p) => Kubeconfig::read_from(p),
        None => Kubeconfig::read(),
    };
    kc.map_err(|e| Error::Client {
        what: path.map_or("the default kubeconfig".into(), |p| p.display().to_string()),
        reason: e.to_string(),
    })
}

/// A client from a kubeconfig (see [`read_kubeconfig`]); with no path and
/// no kubeconfig, the in-cluster configuration. kube-rs's own HTTP/1.1
/// client: each request in flight has a connection of its own, which suits
/// the gateway's 100 ms lease renewals and the other light users.
pub async fn client_from_kubeconfig(path: Option<&Path>) -> Result<Client> {
    let config = config_from_kubeconfig(path).await?;
    Client::try_from(config).map_err(|e| Error::Client {
        what: "the cluster".into(),
        reason: e.to_string(),
    })
}

/// Like [`client_from_kubeconfig`], but all requests share one HTTP/2
/// connection ([`crate::client`]): for `ferry agent`, which keeps hundreds
/// of writes in flight.
pub async fn multiplexed_client_from_kubeconfig(path: Option<&Path>) -> Result<Client> {
    let config = config_from_kubeconfig(path).await?;
    crate::client::http2_client(config).map_err(|e| Error::Client {
        what: "the cluster".into(),
        reason: e.to_string(),
    })
}

async fn config_from_kubeconfig(path: Option<&Path>) -> Result<Config> {
    let config = match path {
        Some(_) => {
            let kc = read_kubeconfig(path)?;
            Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .map_err(|e| Error::Client {
                    what: "the kubeconfig".into(),
                    reason: e.to_string(),
                })?
        }
        None => Config::infer().await.map_err(|e| Error::Client {
            what: "this cluster (no --kubeconfig, no KUBECONFIG, not in a pod)".into(),
            reason: e.to_string(),
        })?,
    };
    Ok(config)
}

/// A client for the broker described by `info`, authenticating with `token`.
pub async fn broker_client(info: &BrokerInfo, token: &str) -> Result<Client> {
    broker_client_as(info, json!({"token": token})).await
}

/// A client for the broker described by `info` whose token is (re-)read from
/// `path` (kube-rs re-reads it at least once a minute; see [`crate::token`]).
pub async fn broker_client_with_token_file(info: &BrokerInfo, path: &Path) -> Result<Client> {
    broker_client_as(info, json!({"tokenFile": path})).await
}

async fn broker_client_as(info: &BrokerInfo, user: Value) -> Result<Client> {
    let kc: Kubeconfig = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "broker", "cluster": {
            "server": info.api_server_url,
            "certificate-authority-data": STANDARD.encode(info.ca_bundle.as_bytes()),
        }}],
        "users": [{"name": "broker", "user": user}],
        "contexts": [{"name": "broker", "context": {"cluster": "broker", "user": "broker"}}],
        "current-context": "broker",
    }))
    .map_err(|e| Error::Client {
        what: "the broker".into(),
        reason: e.to_string(),
    })?;
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(|e| Error::Client {
            what: format!("the broker at {}", info.api_server_url),
            reason: e.to_string(),
        })?;
    crate::client::http2_client(config).map_err(|e| Error::Client {
        what: format!("the broker at {}", info.api_server_url),
        reason: e.to_string(),
    })
}

/// Server URL, CA bundle (PEM) and bearer token of a kubeconfig's current context.
pub fn kubeconfig_endpoint(kc: &Kubeconfig) -> Result<(String, String, Option<String>)> {
    let v = serde_json::to_value(kc).map_err(|e| Error::Config(e.to_string()))?;
    let ctx_name = v["current-context"].as_str().unwrap_or_default();
    let contexts = v["contexts"].as_array().cloned().unwrap_or_default();
    let ctx = contexts
        .iter()
        .find(|c| c["name"] == ctx_name)
        .or(contexts.first())
        .ok_or_else(|| Error::Config("the kubeconfig has no context".into()))?;
    let find = |list: &str, name: &Value| {
        v[list]
            .as_array()
            .and_then(|l| l.iter().find(|e| &e["name"] == name).cloned())
            .unwrap_or(Value::Null)
    };
    let cluster = find("clusters", &ctx["context"]["cluster"]);
    let user = find("users", &ctx["context"]["user"]);
    let server = cluster["cluster"]["server"]
        .as_str()
        .ok_or_else(|| Error::Config("the kubeconfig's cluster has no server".into()))?
        .to_string();
    let ca = if let Some(data) = cluster["cluster"]["certificate-authority-data"].as_str() {
        let pem = STANDARD
            .decode(data.trim())
            .map_err(|e| Error::Config(format!("certificate-authority-data: {e}")))?;
        String::from_utf8_lossy(&pem).into_owned()
    } else if let Some(file) = cluster["cluster"]["certificate-authority"].as_str() {
        std::fs::read_to_string(file)
            .map_err(|e| Error::Config(format!("reading certificate-authority {file}: {e}")))?
    } else {
        return Err(Error::Config(
            "the kubeconfig's cluster has no certificate authority; the broker needs one".into(),
        ));
    };
    let token = user["user"]["token"].as_str().map(str::to_string);
    Ok((server, ca, token))
}

/// Whether the API server is a `ferry apiserver`.
pub async fn is_ferry_apiserver(client: &Client) -> Result<bool> {
    let v = client
        .apiserver_version()
        .await
        .map_err(|e| Error::kube("reading the API server version", e))?;
    Ok(v.git_version.contains("-ferry"))
}

fn plural(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    // A vowel before the y keeps it: gateway → gateways, policy → policies.
    let vowel_y =
        lower.len() >= 2 && matches!(lower.as_bytes()[lower.len() - 2], b'a' | b'e' | b'o' | b'u');
    if !vowel_y && let Some(stem) = lower.strip_suffix('y') {
        format!("{stem}ies")
    } else {
        format!("{lower}s")
    }
}

/// Server-side applies one object given as JSON (apiVersion, kind, metadata).
pub async fn apply_value(client: &Client, obj: &Value) -> Result<()> {
    let api_version = obj["apiVersion"].as_str().unwrap_or_default();
    let kind = obj["kind"].as_str().unwrap_or_default();
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let ar = ApiResource::from_gvk_with_plural(&gvk, &plural(kind));
    let api: Api<DynamicObject> = match obj["metadata"]["namespace"].as_str() {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    };
    let pp = PatchParams::apply(FIELD_MANAGER).force();
    // A custom resource may be refused for a moment while its CRD is being
    // established on a real cluster: retry briefly.
    let mut attempt = 0;
    loop {
        match api.patch(name, &pp, &Patch::Apply(obj)).await {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 && attempt < 40 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            // Someone created it between the server's lookup and its create
            // (e.g. the agent this join just started): apply again, now as
            // an update.
            Err(kube::Error::Api(s)) if s.reason == "AlreadyExists" && attempt < 40 => {
                attempt += 1;
            }
            Err(e) => return Err(Error::kube(format!("applying {kind} {name}"), e)),
        }
    }
}

/// Options of [`deploy_broker`].
#[derive(Clone, Debug)]
pub struct DeployBrokerOptions {
    /// The broker namespace.
    pub namespace: String,
    /// A joiner token minted out of band (`ferry apiserver` data directory);
    /// `None`: use a ServiceAccount token on Kubernetes, or the kubeconfig's
    /// own token on `ferry apiserver`.
    pub joiner_token: Option<String>,
}

/// Deploys the broker through an admin `client` whose kubeconfig is `kc`,
/// and returns the `broker-info.ferry` to hand to `join`. Re-runnable: the
/// cable key is kept in the broker namespace and reused.
pub async fn deploy_broker(
    client: &Client,
    kc: &Kubeconfig,
    opts: &DeployBrokerOptions,
) -> Result<BrokerInfo> {
    let (url, ca, kc_token) = kubeconfig_endpoint(kc)?;
    let ferry = is_ferry_apiserver(client).await?;
    let objects = ferry_deploy::broker_manifests(&opts.namespace)?;
    for obj in &objects {
        let kind = obj["kind"].as_str().unwrap_or_default();
        if ferry && !matches!(kind, "CustomResourceDefinition" | "Namespace") {
            continue; // ferry apiserver enforces the cluster scoping itself
        }
        apply_value(client, obj).await?;
    }

    let secrets: Api<Secret> = Api::namespaced(client.clone(), &opts.namespace);
    let psk = match secrets
        .get_opt(PSK_SECRET)
        .await
        .map_err(|e| Error::kube("reading the cable key", e))?
        .and_then(|s| s.data)
        .and_then(|d| d.get("psk").cloned())
    {
        Some(bytes) if bytes.0.len() == ferry_api::broker_info::CABLE_PSK_LEN => {
            let mut k = [0u8; ferry_api::broker_info::CABLE_PSK_LEN];
            k.copy_from_slice(&bytes.0);
            k
        }
        _ => {
            let mut k = [0u8; ferry_api::broker_info::CABLE_PSK_LEN];
            rand::fill(&mut k);
            apply_value(
                client,
                &json!({
                    "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                    "metadata": {"name": PSK_SECRET, "namespace": opts.namespace,
                        "labels": {labels::APP_MANAGED_BY: labels::APP_MANAGED_BY_FERRY}},
                    "data": {"psk": STANDARD.encode(k)},
                }),
            )
            .await?;
            k
        }
    };

    let token = match (&opts.joiner_token, ferry) {
        (Some(t), _) => t.clone(),
        (None, true) => {
            warn!(
                "no joiner token (pass --data-dir of the ferry apiserver to mint one); broker-info.ferry will carry the kubeconfig's admin token"
            );
            kc_token.ok_or_else(|| {
                Error::Config("the kubeconfig has no bearer token to hand to join".into())
            })?
        }
        (None, false) => {
            let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), &opts.namespace);
            request_token(&sas, BROKER_JOINER, None).await?
        }
    };
    let mut info = BrokerInfo::new(url, ca, token, &psk);
    info.broker_namespace = opts.namespace.clone();
    info.validate()?;
    Ok(info)
}

/// A token for ServiceAccount `name`, valid for `seconds` (default a year;
/// Kubernetes caps it, ferry apiserver's tokens do not expire).
pub(crate) async fn request_token(
    sas: &Api<ServiceAccount>,
    name: &str,
    seconds: Option<i64>,
) -> Result<String> {
    let req = TokenRequest {
        spec: TokenRequestSpec {
            audiences: Vec::new(),
            expiration_seconds: Some(seconds.unwrap_or(365 * 24 * 3600)),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer = sas
        .create_token_request(name, &PostParams::default(), &req)
        .await
        .map_err(|e| Error::kube(format!("requesting a token for serviceaccount {name}"), e))?;
    answer
        .status
        .map(|s| s.token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::Config(format!("the broker returned no token for {name}")))
}

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
}

/// What [`join`] did.
#[derive(Clone, Debug)]
pub struct JoinReport {
    /// Whether this cluster had joined before (a re-run).
    pub rejoined: bool,
    /// Objects applied to the cluster.
    pub applied: usize,
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
        Err(e) => return Err(Error::kube("reading kube-system/coredns", e)),
    };
    let Some(corefile) = coredns.data.as_ref().and_then(|d| d.get("Corefile")) else {
        return Ok(());
    };
    let services: Api<Service> = Api::namespaced(local.clone(), labels::SYSTEM_NAMESPACE);
    let ip = services
        .get("ferry-dns")
        .await
        .map_err(|e| Error::kube("reading the ferry-dns Service", e))?
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
        .map_err(|e| Error::kube("adding ferry's forward block to kube-system/coredns", e))?;
    info!(%ip, domain, "CoreDNS forwards the clusterset zone to ferry dns");
    Ok(())
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
    ferry_api::validate_cluster_id(cluster_id)?;
    ferry_api::check_no_self_overlap(cidrs)?;
    if let Some(own) = own_id
        && own != cluster_id
    {
        return Err(Error::Refused(format!(
            "this cluster already joined the clusterset as {own:?}; it cannot join again as {cluster_id:?}"
        )));
    }
    for c in clusters {
        let id = &c.spec.cluster_id;
        if id == cluster_id {
            if own_id == Some(cluster_id) {
                continue;
            }
            return Err(Error::Refused(format!(
                "cluster id {cluster_id:?} is taken: another cluster has joined the broker with it"
            )));
        }
        let theirs: Vec<Cidr> = c
            .spec
            .cluster_cidrs
            .iter()
            .chain(&c.spec.service_cidrs)
            .copied()
            .collect();
        if let Some((mine, other)) = find_overlap(cidrs, &theirs) {
            return Err(Error::Refused(format!(
                "CIDR {mine} of cluster {cluster_id:?} overlaps CIDR {other} of cluster {id:?}"
            )));
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
    let joiner = broker_client(info, &info.token).await?;
    let bns = info.broker_namespace.as_str();

    // Read-only checks first.
    let props: Api<ClusterProperty> = Api::all(local.clone());
    let own_id = match props.get_opt(labels::CLUSTER_ID_PROPERTY).await {
        Ok(p) => p.map(|p| p.spec.value),
        Err(kube::Error::Api(s)) if s.code == 404 => None, // CRD not installed yet
        Err(e) => return Err(Error::kube("reading this cluster's ClusterProperty", e)),
    };
    let clusters: Api<Cluster> = Api::namespaced(joiner.clone(), bns);
    let existing = clusters
        .list(&Default::default())
        .await
        .map_err(|e| {
            Error::kube(
                format!("listing the clusters on the broker {}", info.api_server_url),
                e,
            )
        })?
        .items;
    check_join(&existing, id, own_id.as_deref(), &cidrs)?;
    let rejoined = own_id.as_deref() == Some(id);

    // A cluster-scoped broker token: reuse this cluster's while it is good
    // for a while yet, else mint one.
    let secrets: Api<Secret> = Api::namespaced(local.clone(), labels::SYSTEM_NAMESPACE);
    let mut token = None;
    if let Ok(Some(s)) = secrets.get_opt(BROKER_SECRET).await
        && let Ok((cfg, old)) = config_from_secret(&s)
        && cfg.cluster_id == id
        && old.api_server_url == info.api_server_url
        && crate::token::usable(&old.token, k8s_openapi::jiff::Timestamp::now().as_second())
    {
        token = Some(old.token);
    }
    let token = match token {
        Some(t) => t,
        None => {
            let sa_name = format!("{CLUSTER_SA_PREFIX}{id}");
            let ferry = is_ferry_apiserver(&joiner).await?;
            for obj in ferry_deploy::broker_cluster_identity(bns, id) {
                if ferry && obj["kind"] != "ServiceAccount" {
                    continue;
                }
                apply_value(&joiner, &obj).await?;
            }
            let sas: Api<ServiceAccount> = Api::namespaced(joiner.clone(), bns);
            request_token(&sas, &sa_name, None).await?
        }
    };
    let mut cluster_info = info.clone();
    cluster_info.token = token.clone();

    let params = ClusterParams {
        cluster_id: id.into(),
        image: opts.image.clone(),
        namespace: labels::SYSTEM_NAMESPACE.into(),
        broker_info: cluster_info.encode()?,
        cluster_cidrs: opts.cluster_cidrs.clone(),
        service_cidrs: opts.service_cidrs.clone(),
        cable_driver: opts
            .cable_driver
            .unwrap_or(info.settings.default_cable_driver),
    };
    let objects = ferry_deploy::cluster_manifests(&params)?;
    for obj in &objects {
        apply_value(local, obj).await?;
    }

    forward_clusterset_to_ferry_dns(local, &info.clusterset_domain).await?;

    // Publish the Cluster at once, so a concurrent join sees the id and CIDRs.
    let broker = broker_client(info, &token).await?;
    let cluster = json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "Cluster",
        "metadata": {"name": id, "namespace": bns, "labels": {
            CLUSTER: id, labels::APP_MANAGED_BY: labels::APP_MANAGED_BY_FERRY}},
        "spec": {"clusterId": id, "clusterCidrs": opts.cluster_cidrs, "serviceCidrs": opts.service_cidrs},
    });
    apply_value(&broker, &cluster).await?;

    if let Some(node) = &opts.gateway_node {
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
            .map_err(|e| Error::kube(format!("labelling node {node} as a gateway"), e))?;
    }
    info!(cluster = id, rejoined, "joined");
    Ok(JoinReport {
        rejoined,
        applied: objects.len() + 1,
    })
}

/// The agent's configuration and its broker info from the `ferry-broker`
/// Secret's contents.
pub fn config_from_secret(secret: &Secret) -> Result<(AgentConfig, BrokerInfo)> {
    let data: BTreeMap<String, String> = secret
        .data
        .as_ref()
        .map(|d| {
            d.iter()
                .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned()))
                .collect()
        })
        .unwrap_or_default();
    let get = |k: &str| {
        data.get(k)
            .cloned()
            .ok_or_else(|| Error::Config(format!("the broker Secret has no key {k:?}")))
    };
    let info = BrokerInfo::decode(&get(secret_keys::BROKER_INFO)?)?;
    let list = |k: &str| -> Result<Vec<Cidr>> {
        match data.get(k).map(|s| s.trim()) {
            None | Some("") => Ok(Vec::new()),
            Some(s) => Ok(Cidr::parse_list(s)?),
        }
    };
    let mut cfg = AgentConfig::new(
        get(secret_keys::CLUSTER_ID)?,
        list(secret_keys::CLUSTER_CIDRS)?,
        list(secret_keys::SERVICE_CIDRS)?,
    );
    cfg.broker_namespace = info.broker_namespace.clone();
    Ok((cfg, info))
}

/// Reads the agent's configuration from the `ferry-broker` Secret in `namespace`.
pub async fn load_config(local: &Client, namespace: &str) -> Result<(AgentConfig, BrokerInfo)> {
    let secrets: Api<Secret> = Api::namespaced(local.clone(), namespace);
    let s = secrets
        .get(BROKER_SECRET)
        .await
        .map_err(|e| Error::kube(format!("reading Secret {namespace}/{BROKER_SECRET}"), e))?;
    let (mut cfg, info) = config_from_secret(&s)?;
    cfg.system_namespace = namespace.into();
    Ok((cfg, info))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(id: &str, cidrs: &[&str]) -> Cluster {
        Cluster::new(
            id,
            ferry_api::ClusterSpec {
                cluster_id: id.into(),
                cluster_cidrs: cidrs.iter().map(|c| c.parse().unwrap()).collect(),
                service_cidrs: Vec::new(),
                global_cidrs: Vec::new(),
            },
        )
    }

    #[test]
    fn join_checks() {
        let existing = vec![
            cluster("a", &["100.64.0.0/16"]),
            cluster("b", &["100.66.0.0/16"]),
        ];
        let c = |s: &str| -> Vec<Cidr> { vec![s.parse().unwrap()] };
        struct Case {
            name: &'static str,
            id: &'static str,
            own: Option<&'static str>,
            cidrs: Vec<Cidr>,
            err: Option<&'static str>,
        }
        let cases = vec![
            Case {
                name: "free id, disjoint",
                id: "c",
                own: None,
                cidrs: c("100.68.0.0/16"),
                err: None,
            },
            Case {
                name: "bad id",
                id: "C_1",
                own: None,
                cidrs: vec![],
                err: Some("invalid cluster id"),
            },
            Case {
                name: "taken",
                id: "a",
                own: None,
                cidrs: c("100.68.0.0/16"),
                err: Some("is taken"),
            },
            Case {
                name: "re-join of the same cluster",
                id: "a",
                own: Some("a"),
                cidrs: c("100.64.0.0/16"),
                err: None,
            },
            Case {
                name: "already joined under another id",
                id: "c",
                own: Some("a"),
                cidrs: vec![],
                err: Some("already joined"),
            },
            Case {
                name: "overlap names the other cluster and both CIDRs",
                id: "c",
                own: None,
                cidrs: c("100.66.128.0/17"),
                err: Some(
                    "CIDR 100.66.128.0/17 of cluster \"c\" overlaps CIDR 100.66.0.0/16 of cluster \"b\"",
                ),
            },
            Case {
                name: "own CIDRs overlap each other",
                id: "c",
                own: None,
                cidrs: vec![
                    "100.70.0.0/16".parse().unwrap(),
                    "100.70.1.0/24".parse().unwrap(),
                ],
                err: Some("overlaps"),
            },
        ];
        for case in cases {
            let got = check_join(&existing, case.id, case.own, &case.cidrs);
            match (got, case.err) {
                (Ok(()), None) => {}
                (Err(e), Some(want)) => {
                    assert!(e.to_string().contains(want), "{}: {e}", case.name)
                }
                (got, want) => panic!("{}: got {got:?}, want {want:?}", case.name),
            }
        }
    }

    #[test]
    fn plurals() {
        assert_eq!(plural("ClusterProperty"), "clusterproperties");
        assert_eq!(
            plural("ValidatingAdmissionPolicy"),
            "validatingadmissionpolicies"
        );
        assert_eq!(plural("EndpointSlice"), "endpointslices");
        assert_eq!(plural("Endpoint"), "endpoints");
        assert_eq!(plural("Gateway"), "gateways");
    }
}
