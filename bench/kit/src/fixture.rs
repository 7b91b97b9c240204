//! The objects a benchmark's exporting member starts from.

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Client;
use kube::api::{Api, PostParams};
use serde_json::json;

/// Creates Service `ns/name` (port 80, `cluster_ip` if given, else one the
/// API server allocates) and its EndpointSlice `<name>-x` with one ready
/// endpoint `pod_ip` on port 8080 — what a Deployment behind a Service
/// would leave, without the pods.
pub async fn service_with_one_endpoint(
    c: &Client,
    ns: &str,
    name: &str,
    cluster_ip: Option<&str>,
    pod_ip: &str,
) -> anyhow::Result<()> {
    let mut spec = json!({"ports": [{"name": "http", "port": 80}]});
    if let Some(ip) = cluster_ip {
        spec["clusterIP"] = json!(ip);
    }
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }))?;
    Api::<Service>::namespaced(c.clone(), ns)
        .create(&PostParams::default(), &svc)
        .await?;
    let slice: EndpointSlice = serde_json::from_value(json!({
        "metadata": {"name": format!("{name}-x"), "namespace": ns,
            "labels": {"kubernetes.io/service-name": name}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [pod_ip], "conditions": {"ready": true}}],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }))?;
    Api::<EndpointSlice>::namespaced(c.clone(), ns)
        .create(&PostParams::default(), &slice)
        .await?;
    Ok(())
}
