//! The Service controller: EndpointSlices from ready pods. (ClusterIPs are
//! the API server's: it allocates them from the cluster's service range.)

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::PostParams;
use kube::{Api, ResourceExt};

use super::controller::Controllers;
use super::objects::{is_terminating, map_matches, owner_ref, pod_ready};

impl Controllers {
    pub(super) async fn endpoint_slices(&self) -> Result<(), kube::Error> {
        let pods = self.stores.pods.state();
        let slices = self.stores.slices.state();
        for s in self.stores.services.state() {
            let spec = s.spec.clone().unwrap_or_default();
            let Some(selector) = spec.selector.clone().filter(|m| !m.is_empty()) else {
                continue;
            };
            if is_terminating(s.as_ref()) {
                continue;
            }
            let ns = s.namespace().unwrap_or_default();
            let mut members: Vec<&Arc<Pod>> = pods
                .iter()
                .filter(|p| {
                    p.namespace().as_deref() == Some(&ns)
                        && !is_terminating(p.as_ref())
                        && map_matches(
                            &selector,
                            p.metadata.labels.as_ref().unwrap_or(&BTreeMap::new()),
                        )
                        && p.status
                            .as_ref()
                            .and_then(|st| st.pod_ip.as_ref())
                            .is_some_and(|ip| !ip.is_empty())
                })
                .collect();
            members.sort_by_key(|p| p.name_any());
            let ports: Vec<EndpointPort> = spec
                .ports
                .clone()
                .unwrap_or_default()
                .iter()
                .map(|sp| EndpointPort {
                    name: Some(sp.name.clone().unwrap_or_default()),
                    protocol: Some(sp.protocol.clone().unwrap_or_else(|| "TCP".into())),
                    port: Some(resolve_target_port(
                        sp.target_port.as_ref(),
                        sp.port,
                        members.first().map(|p| p.as_ref()),
                    )),
                    app_protocol: sp.app_protocol.clone(),
                })
                .collect();
            let endpoints: Vec<Endpoint> = members
                .iter()
                .map(|p| {
                    let ready = pod_ready(p);
                    Endpoint {
                        addresses: vec![
                            p.status
                                .as_ref()
                                .and_then(|st| st.pod_ip.clone())
                                .unwrap_or_default(),
                        ],
                        conditions: Some(EndpointConditions {
                            ready: Some(ready),
                            serving: Some(ready),
                            terminating: Some(false),
                        }),
                        hostname: p.spec.as_ref().and_then(|sp| sp.hostname.clone()),
                        node_name: p.spec.as_ref().and_then(|sp| sp.node_name.clone()),
                        target_ref: Some(k8s_openapi::api::core::v1::ObjectReference {
                            kind: Some("Pod".into()),
                            name: Some(p.name_any()),
                            namespace: Some(ns.clone()),
                            uid: p.uid(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }
                })
                .collect();
            let name = format!("{}-sbx", s.name_any());
            let existing = slices
                .iter()
                .find(|e| e.namespace().as_deref() == Some(&ns) && e.name_any() == name);
            if let Some(e) = existing
                && e.endpoints == endpoints
                && e.ports.as_ref() == Some(&ports)
            {
                continue;
            }
            let mut labels = BTreeMap::new();
            labels.insert("kubernetes.io/service-name".to_string(), s.name_any());
            labels.insert(
                "endpointslice.kubernetes.io/managed-by".to_string(),
                "sandbox.ferry.dev".to_string(),
            );
            let mut slice = EndpointSlice {
                metadata: kube::api::ObjectMeta {
                    name: Some(name.clone()),
                    namespace: Some(ns.clone()),
                    labels: Some(labels),
                    owner_references: Some(vec![owner_ref(s.as_ref())]),
                    ..Default::default()
                },
                address_type: "IPv4".into(),
                endpoints,
                ports: Some(ports),
            };
            let api: Api<EndpointSlice> = Api::namespaced(self.client.clone(), &ns);
            match existing {
                Some(e) => {
                    slice.metadata.resource_version = e.resource_version();
                    api.replace(&name, &PostParams::default(), &slice).await?;
                }
                None => {
                    api.create(&PostParams::default(), &slice).await?;
                }
            }
        }
        Ok(())
    }
}

/// The endpoint port for a service port: a number, a container port name
/// looked up in `pod`, or the service port itself.
pub fn resolve_target_port(target: Option<&IntOrString>, port: i32, pod: Option<&Pod>) -> i32 {
    match target {
        Some(IntOrString::Int(n)) => *n,
        Some(IntOrString::String(name)) => {
            if let Ok(n) = name.parse() {
                return n;
            }
            pod.and_then(|p| p.spec.as_ref())
                .into_iter()
                .flat_map(|s| s.containers.iter())
                .flat_map(|c| c.ports.iter().flatten())
                .find(|cp| cp.name.as_deref() == Some(name))
                .map(|cp| cp.container_port)
                .unwrap_or(port)
        }
        None => port,
    }
}
