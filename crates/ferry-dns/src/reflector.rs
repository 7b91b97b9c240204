//! Reflectors: kube-rs watchers over `ServiceImport`s, MCS-labelled
//! `EndpointSlice`s and `Gateway`s keep local stores; every change rebuilds
//! the zone snapshot ([`build`], pure) and swaps it into the answerer. Queries
//! never touch the API.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use ferry_api::{
    ClusterProperty, ConnectionStatus, Gateway, HaStatus, ServiceImport, ServiceImportType, labels,
};
use ferry_kube::Watch;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::watcher;
use kube::{Api, Client};
use tokio::sync::Notify;

use crate::Error;
use crate::answerer::Answerer;
use crate::metrics::Metrics;
use crate::model::{EndpointAddr, Link, Port, Service, ServiceKind, ZoneData};

/// Builds the zone snapshot from the three stores' contents.
///
/// - a service exists when its `ServiceImport` does; its endpoints come from
///   EndpointSlices labelled with its name and a source cluster (FQDN slices
///   are ignored; an endpoint without a `ready` condition counts as ready);
/// - links come from the local cluster's active gateways (all active
///   gateways when the local id is unknown): a cluster is connected when any
///   of them reports its connection `connected`; RTT is the lowest average.
pub fn build(
    imports: &[Arc<ServiceImport>],
    slices: &[Arc<EndpointSlice>],
    gateways: &[Arc<Gateway>],
    local_cluster: Option<&str>,
) -> ZoneData {
    let mut services: HashMap<(String, String), Service> = HashMap::new();
    for si in imports {
        let (Some(ns), Some(name)) = (
            si.metadata.namespace.as_deref(),
            si.metadata.name.as_deref(),
        ) else {
            continue;
        };
        let svc = Service {
            kind: match si.spec.type_ {
                ServiceImportType::ClusterSetIp => ServiceKind::ClusterSetIp,
                ServiceImportType::Headless => ServiceKind::Headless,
            },
            ips: si
                .spec
                .ips
                .iter()
                .filter_map(|ip| ip.parse::<IpAddr>().ok())
                .collect(),
            ports: si
                .spec
                .ports
                .iter()
                .filter_map(|p| {
                    Some(Port {
                        name: p
                            .name
                            .as_deref()
                            .filter(|n| !n.is_empty())?
                            .to_ascii_lowercase(),
                        protocol: p.protocol.to_ascii_lowercase(),
                        port: u16::try_from(p.port).ok()?,
                    })
                })
                .collect(),
            clusters: Default::default(),
        };
        services.insert((ns.to_ascii_lowercase(), name.to_ascii_lowercase()), svc);
    }
    for slice in slices {
        let Some(ns) = slice.metadata.namespace.as_deref() else {
            continue;
        };
        let Some(l) = slice.metadata.labels.as_ref() else {
            continue;
        };
        let (Some(name), Some(cluster)) =
            (l.get(labels::SERVICE_NAME), l.get(labels::SOURCE_CLUSTER))
        else {
            continue;
        };
        if slice.address_type == "FQDN" {
            continue;
        }
        let Some(svc) = services.get_mut(&(ns.to_ascii_lowercase(), name.to_ascii_lowercase()))
        else {
            continue;
        };
        let list = svc
            .clusters
            .entry(cluster.to_ascii_lowercase())
            .or_default();
        for ep in &slice.endpoints {
            let ready = ep.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
            for a in &ep.addresses {
                if let Ok(ip) = a.parse::<IpAddr>() {
                    list.push(EndpointAddr::new(ip, ep.hostname.as_deref(), ready));
                }
            }
        }
    }
    let mut data = ZoneData {
        local_cluster: local_cluster.map(str::to_ascii_lowercase),
        ..Default::default()
    };
    for gw in gateways {
        let Some(status) = gw.status.as_ref() else {
            continue;
        };
        if status.ha_status != HaStatus::Active {
            continue;
        }
        if local_cluster.is_some_and(|l| !gw.spec.cluster_id.eq_ignore_ascii_case(l)) {
            continue;
        }
        for c in &status.connections {
            let connected = c.status == ConnectionStatus::Connected;
            let rtt = c
                .latency_rtt
                .map(|r| Duration::from(r.average))
                .filter(|_| connected);
            let link = data
                .links
                .entry(c.cluster_id.to_ascii_lowercase())
                .or_insert(Link {
                    connected: false,
                    rtt: None,
                });
            link.connected |= connected;
            link.rtt = match (link.rtt, rtt) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
    }
    for ((ns, name), svc) in services {
        data.insert(&ns, &name, svc);
    }
    data
}

/// Reads this cluster's id from the KEP-2149 `ClusterProperty`
/// `cluster.clusterset.k8s.io`, if there is one.
pub async fn local_cluster_id(client: &Client) -> Option<String> {
    let api: Api<ClusterProperty> = Api::all(client.clone());
    match api.get_opt(labels::CLUSTER_ID_PROPERTY).await {
        Ok(p) => p.map(|p| p.spec.value),
        Err(error) => {
            tracing::debug!(%error, "reading the cluster id property");
            None
        }
    }
}

/// Runs the reflectors and keeps `answerer`'s zone current, forever.
pub async fn run(
    client: Client,
    answerer: Arc<Answerer>,
    metrics: Arc<Metrics>,
    local_cluster: Option<String>,
) -> Result<(), Error> {
    let notify = Arc::new(Notify::new());
    let slice_config = watcher::Config::default().labels(labels::SERVICE_NAME);
    let (imports, w1) = Watch::new(
        Api::<ServiceImport>::all(client.clone()),
        watcher::Config::default(),
    )
    .notify(notify.clone());
    let (slices, w2) =
        Watch::new(Api::<EndpointSlice>::all(client.clone()), slice_config).notify(notify.clone());
    let (gateways, w3) =
        Watch::new(Api::<Gateway>::all(client), watcher::Config::default()).notify(notify.clone());
    let drive = async {
        tokio::join!(w1, w2, w3);
    };

    let rebuild = async {
        // Answer nothing rather than a partial zone: wait for the first lists.
        let _ = imports.wait_until_ready().await;
        let _ = slices.wait_until_ready().await;
        // Gateways are optional (no CRD, or single cluster): wait briefly.
        let _ = tokio::time::timeout(Duration::from_secs(5), gateways.wait_until_ready()).await;
        loop {
            let data = build(
                &imports.state(),
                &slices.state(),
                &gateways.state(),
                local_cluster.as_deref(),
            );
            let n: usize = data.services.values().map(HashMap::len).sum();
            metrics.services.set(i64::try_from(n).unwrap_or(i64::MAX));
            metrics.rebuilds.inc();
            answerer.set_data(data);
            tracing::debug!(services = n, "zone rebuilt");
            notify.notified().await;
        }
    };
    tokio::select! {
        () = drive => {},
        () = rebuild => {},
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn arc<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Arc<T> {
        Arc::new(serde_json::from_value(v).unwrap())
    }

    #[test]
    fn builds_services_endpoints_and_links() {
        let imports = vec![arc::<ServiceImport>(serde_json::json!({
            "apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceImport",
            "metadata": {"name": "Web", "namespace": "default"},
            "spec": {"type": "ClusterSetIP", "ips": ["242.0.0.1"],
                     "ports": [{"name": "http", "protocol": "TCP", "port": 80}, {"protocol": "TCP", "port": 81}]}
        }))];
        let slice = |cluster: &str, ready: Option<bool>, ip: &str| {
            arc::<EndpointSlice>(serde_json::json!({
                "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": format!("web-{cluster}"), "namespace": "default",
                  "labels": {labels::SERVICE_NAME: "web", labels::SOURCE_CLUSTER: cluster}},
                "addressType": "IPv4",
                "endpoints": [{"addresses": [ip], "conditions": {"ready": ready}}]
            }))
        };
        let slices = vec![
            slice("east", Some(true), "10.0.0.1"),
            slice("west", None, "10.1.0.1"),
            slice("north", Some(false), "10.2.0.1"),
        ];
        let gw = |cluster: &str, ha: &str, conns: serde_json::Value| {
            arc::<Gateway>(serde_json::json!({
                "apiVersion": "ferry.dev/v1alpha1", "kind": "Gateway",
                "metadata": {"name": format!("gw-{cluster}-{ha}"), "namespace": "ferry-system"},
                "spec": {"clusterId": cluster, "hostname": "node"},
                "status": {"haStatus": ha, "connections": conns}
            }))
        };
        let conn = |c: &str, status: &str, avg: &str| {
            serde_json::json!({
                "endpoint": format!("{c}-ep"), "clusterId": c, "cableDriver": "wireguard", "status": status,
                "latencyRtt": {"last": avg, "min": avg, "average": avg, "max": avg, "stdDev": "0s"}
            })
        };
        let gateways = vec![
            gw(
                "east",
                "active",
                serde_json::json!([
                    conn("west", "connected", "2ms"),
                    conn("north", "error", "1ms")
                ]),
            ),
            gw(
                "east",
                "passive",
                serde_json::json!([conn("north", "connected", "1ms")]),
            ),
            gw(
                "south",
                "active",
                serde_json::json!([conn("north", "connected", "1ms")]),
            ),
        ];
        let d = build(&imports, &slices, &gateways, Some("east"));
        let s = d.service("default", "web").unwrap();
        assert_eq!(s.ips, vec!["242.0.0.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(s.ports.len(), 1, "unnamed ports have no SRV");
        assert!(s.has_ready("east") && s.has_ready("west") && !s.has_ready("north"));
        assert_eq!(
            d.links["west"],
            Link {
                connected: true,
                rtt: Some(Duration::from_millis(2))
            }
        );
        assert!(
            !d.links["north"].connected,
            "only the local active gateway counts"
        );
        assert_eq!(d.eligible_clusters(s), ["east", "west"]);
    }
}
