//! Reading what `show` needs from one cluster into a [`Snapshot`]: only
//! the lists the asked-for sections use, each from where ferry keeps it.

use ferry_api::labels::{self, CLUSTER_ID_PROPERTY, SYSTEM_NAMESPACE};
use ferry_api::{
    Cluster, ClusterGlobalEgressIP, ClusterProperty, Endpoint, Gateway, GlobalEgressIP,
    GlobalIngressIP, ServiceExport, ServiceImport,
};
use ferry_deploy::{BROKER_SECRET, secret_keys};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{Node, Secret};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::ListParams;
use serde::de::DeserializeOwned;

use super::Section;
use super::build::Snapshot;
use super::model::BrokerRow;
use crate::target::Target;
use crate::{Error, Result};

/// Label selector of everything `ferry join` creates.
pub const PART_OF_FERRY: &str = "app.kubernetes.io/part-of=ferry";

async fn list<K>(t: &Target, api: Api<K>, lp: &ListParams, what: &str) -> Result<Vec<K>>
where
    K: Clone + DeserializeOwned + std::fmt::Debug,
{
    match api.list(lp).await {
        Ok(l) => Ok(l.items),
        // The resource type is not installed: nothing of it to show.
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(Vec::new()),
        Err(e) => Err(t.error(format!("listing {what}"), e)),
    }
}

/// The broker row of the `ferry-broker` Secret: URL, namespace, domain,
/// settings; never the token, key or CA.
pub fn broker_row(secret: &Secret) -> Result<BrokerRow> {
    let ferry_deploy::BrokerSecret {
        cluster_id,
        broker_info: info,
        ..
    } = ferry_deploy::BrokerSecret::from_secret(secret).map_err(|e| Error::BrokerSecret {
        namespace: secret
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| SYSTEM_NAMESPACE.into()),
        name: BROKER_SECRET.into(),
        reason: e.to_string(),
    })?;
    let cable_driver = secret
        .data
        .as_ref()
        .and_then(|d| d.get(secret_keys::CABLE_DRIVER))
        .map(|b| String::from_utf8_lossy(&b.0).into_owned());
    Ok(BrokerRow {
        url: info.api_server_url.clone(),
        namespace: info.broker_namespace.clone(),
        clusterset_domain: info.clusterset_domain.clone(),
        cluster_id,
        cable_driver,
        globalnet: info.settings.globalnet,
        health_check_interval: info.settings.health_check_interval.to_string(),
    })
}

/// Reads the objects the `sections` need. Fails with [`Error::NotJoined`]
/// when the cluster has neither the cluster-id `ClusterProperty` nor the
/// `ferry-broker` Secret.
pub async fn snapshot(t: &Target, sections: &[Section]) -> Result<Snapshot> {
    let c = &t.client;
    let sys = SYSTEM_NAMESPACE;
    let props: Api<ClusterProperty> = Api::all(c.clone());
    let prop_id = match props.get_opt(CLUSTER_ID_PROPERTY).await {
        Ok(p) => p.map(|p| p.spec.value),
        Err(kube::Error::Api(s)) if s.code == 404 => None,
        Err(e) => return Err(t.error("reading the cluster id (ClusterProperty)", e)),
    };
    let need_secret = prop_id.is_none() || sections.contains(&Section::Brokers);
    let secret = if need_secret {
        let secrets: Api<Secret> = Api::namespaced(c.clone(), sys);
        secrets
            .get_opt(BROKER_SECRET)
            .await
            .map_err(|e| t.error(format!("reading Secret {sys}/{BROKER_SECRET}"), e))?
    } else {
        None
    };
    let broker = match &secret {
        Some(s) => Some(broker_row(s)?),
        None => None,
    };
    let cluster_id = match (prop_id, &broker) {
        (Some(id), _) => id,
        (None, Some(b)) => b.cluster_id.clone(),
        (None, None) => {
            return Err(Error::NotJoined {
                what: t.label.clone(),
                detail: format!(
                    "no ClusterProperty {CLUSTER_ID_PROPERTY} and no Secret {sys}/{BROKER_SECRET}"
                ),
            });
        }
    };

    let needs = |s: &[Section]| s.iter().any(|x| sections.contains(x));
    let all = ListParams::default();
    let mut snap = Snapshot {
        cluster_id,
        broker: if sections.contains(&Section::Brokers) {
            broker
        } else {
            None
        },
        ..Default::default()
    };
    if needs(&[Section::Connections, Section::Networks, Section::Globalnet]) {
        snap.clusters = list(
            t,
            Api::<Cluster>::namespaced(c.clone(), sys),
            &all,
            "Clusters",
        )
        .await?;
    }
    if needs(&[Section::Connections, Section::Endpoints]) {
        snap.endpoints = list(
            t,
            Api::<Endpoint>::namespaced(c.clone(), sys),
            &all,
            "Endpoints",
        )
        .await?;
    }
    if needs(&[Section::Connections, Section::Gateways, Section::Services]) {
        snap.gateways = list(
            t,
            Api::<Gateway>::namespaced(c.clone(), sys),
            &all,
            "Gateways",
        )
        .await?;
    }
    if needs(&[Section::Gateways]) {
        let lp = ListParams::default().labels(&format!(
            "{}={}",
            labels::GATEWAY,
            labels::GATEWAY_ENABLED
        ));
        snap.gateway_nodes = list(t, Api::<Node>::all(c.clone()), &lp, "gateway nodes")
            .await?
            .into_iter()
            .filter_map(|n| n.metadata.name)
            .collect();
    }
    if needs(&[Section::Versions]) {
        let lp = ListParams::default().labels(PART_OF_FERRY);
        snap.deployments = list(
            t,
            Api::<Deployment>::namespaced(c.clone(), sys),
            &lp,
            "Deployments",
        )
        .await?;
        snap.daemonsets = list(
            t,
            Api::<DaemonSet>::namespaced(c.clone(), sys),
            &lp,
            "DaemonSets",
        )
        .await?;
    }
    if needs(&[Section::Services]) {
        snap.imports = list(
            t,
            Api::<ServiceImport>::all(c.clone()),
            &all,
            "ServiceImports",
        )
        .await?;
        snap.exports = list(
            t,
            Api::<ServiceExport>::all(c.clone()),
            &all,
            "ServiceExports",
        )
        .await?;
        let lp = ListParams::default().labels(&format!(
            "{}={}",
            labels::MANAGED_BY,
            labels::MANAGED_BY_FERRY
        ));
        snap.slices = list(
            t,
            Api::<EndpointSlice>::all(c.clone()),
            &lp,
            "EndpointSlices",
        )
        .await?;
    }
    if needs(&[Section::Globalnet]) {
        let api = Api::<ClusterGlobalEgressIP>::all(c.clone());
        snap.cluster_egress = list(t, api, &all, "ClusterGlobalEgressIPs").await?;
        let api = Api::<GlobalEgressIP>::all(c.clone());
        snap.egress = list(t, api, &all, "GlobalEgressIPs").await?;
        let api = Api::<GlobalIngressIP>::all(c.clone());
        snap.ingress = list(t, api, &all, "GlobalIngressIPs").await?;
    }
    Ok(snap)
}
