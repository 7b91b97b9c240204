//! What `join` checks before it changes anything, that the cluster can run
//! ferry as asked: Pod Security lets privileged pods into ferry's namespace
//! (an existing namespace enforcing a stricter level is refused, not
//! relabelled behind the admin's back), `--gateway-node` names a node of
//! the cluster, no other host-network pod on the
//! gateway node declares one of the gateway's UDP ports, and the image is
//! on a node or names a registry to pull from, where the nodes tell (and
//! is a reference, not a local archive path; in a `--runtime runc`
//! sandbox cluster, one its OCI store holds). Each
//! refusal names the flag or command that fixes it. The judgements are pure
//! functions of the objects read, tested beside the code.

use std::collections::BTreeMap;

use ferry_api::labels;
use ferry_api::{CableDriver, ports};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::Client;
use kube::api::{Api, ListParams};

use super::apply::kube_error;
use crate::{Refusal, Result};

/// What the checks need of `join`'s options.
#[derive(Clone, Debug)]
pub struct Asked<'a> {
    /// The image of ferry's components.
    pub image: &'a str,
    /// The node to label as the gateway, if given.
    pub gateway_node: Option<&'a str>,
    /// The cable driver.
    pub cable_driver: CableDriver,
    /// `--nattport`, if given.
    pub nat_port: Option<u16>,
    /// Whether the gateway and route agent are deployed (`--components`
    /// with connectivity).
    pub connectivity: bool,
}

/// Runs every check against the cluster behind `local`.
pub async fn preflight(local: &Client, asked: &Asked<'_>) -> Result<()> {
    image_not_a_path(asked.image, std::path::Path::exists)?;
    let namespaces: Api<Namespace> = Api::all(local.clone());
    let ns = namespaces
        .get_opt(labels::SYSTEM_NAMESPACE)
        .await
        .map_err(|e| kube_error("reading namespace ferry-system", e))?;
    if let Some(ns) = ns {
        pod_security(ns.metadata.labels.as_ref())?;
    }
    if !asked.connectivity {
        return Ok(());
    }
    let nodes = Api::<Node>::all(local.clone())
        .list(&ListParams::default())
        .await
        .map_err(|e| kube_error("listing the cluster's nodes", e))?
        .items;
    let gateway = gateway_node(&nodes, asked.gateway_node)?;
    image_available(&nodes, asked.image)?;
    if let Some(node) = gateway {
        let pods = Api::<Pod>::all(local.clone())
            .list(&ListParams::default())
            .await
            .map_err(|e| kube_error("listing the cluster's pods", e))?
            .items;
        udp_ports_free(&node, &pods, &gateway_ports(asked))?;
    }
    Ok(())
}

/// Refuses a namespace whose enforced Pod Security level is not `privileged`.
pub fn pod_security(ns_labels: Option<&BTreeMap<String, String>>) -> Result<()> {
    let key = ferry_deploy::POD_SECURITY_ENFORCE;
    match ns_labels.and_then(|l| l.get(key)) {
        Some(level) if level != "privileged" => Err(Refusal::Preflight {
            problem: format!(
                "namespace {} enforces Pod Security {level:?}, which refuses the gateway's and route agent's privileged host-network pods",
                labels::SYSTEM_NAMESPACE
            ),
            fix: format!(
                "allow them: kubectl label namespace {} {key}=privileged --overwrite",
                labels::SYSTEM_NAMESPACE
            ),
        }
        .into()),
        _ => Ok(()),
    }
}

/// The gateway node: `--gateway-node` (which must exist), else the node
/// already labelled, else none yet (join then says how to label one). A
/// cluster without nodes yet is let through with a warning: the gateway
/// starts once a node is labelled.
pub fn gateway_node(nodes: &[Node], asked: Option<&str>) -> Result<Option<String>> {
    let names: Vec<String> = nodes
        .iter()
        .filter_map(|n| n.metadata.name.clone())
        .collect();
    if names.is_empty() && asked.is_none() {
        tracing::warn!("the cluster has no nodes yet: the gateway starts once one is labelled");
        return Ok(None);
    }
    if let Some(want) = asked {
        if !names.iter().any(|n| n == want) {
            return Err(Refusal::Preflight {
                problem: format!("node {want:?} does not exist"),
                fix: format!("pass --gateway-node with one of: {}", names.join(", ")),
            }
            .into());
        }
        return Ok(Some(want.to_string()));
    }
    Ok(nodes
        .iter()
        .find(|n| {
            n.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(labels::GATEWAY))
                .is_some_and(|v| v == labels::GATEWAY_ENABLED)
        })
        .and_then(|n| n.metadata.name.clone()))
}

/// The UDP ports the gateway binds on its node.
pub fn gateway_ports(asked: &Asked<'_>) -> Vec<u16> {
    let cable = match asked.cable_driver {
        CableDriver::Vxlan => ports::VXLAN_CABLE_PORT,
        CableDriver::Wireguard | CableDriver::Ipsec => {
            asked.nat_port.unwrap_or(ports::DEFAULT_CABLE_PORT)
        }
    };
    vec![
        cable,
        ports::NAT_DISCOVERY_PORT,
        ports::DEFAULT_HEALTH_CHECK_PORT,
        ports::PEER_PROBE_PORT,
    ]
}

/// Refuses when a host-network pod on `node` (of `pods`, which may hold
/// other nodes' too) other than ferry's own
/// declares one of `wanted` as a UDP port (a Submariner gateway, an IPsec
/// daemon run as a pod): the gateway could not bind it.
pub fn udp_ports_free(node: &str, pods: &[Pod], wanted: &[u16]) -> Result<()> {
    for p in pods {
        let ns = p.metadata.namespace.as_deref().unwrap_or_default();
        let Some(spec) = &p.spec else { continue };
        if ns == labels::SYSTEM_NAMESPACE
            || spec.host_network != Some(true)
            || spec.node_name.as_deref() != Some(node)
        {
            continue;
        }
        let declared = spec
            .containers
            .iter()
            .flat_map(|c| c.ports.iter().flatten())
            .filter(|cp| cp.protocol.as_deref() == Some("UDP"))
            .map(|cp| cp.host_port.unwrap_or(cp.container_port));
        for port in declared {
            if let Ok(port) = u16::try_from(port)
                && wanted.contains(&port)
            {
                return Err(Refusal::Preflight {
                    problem: format!(
                        "UDP port {port} on node {node} is taken by host-network pod {ns}/{}",
                        p.metadata.name.as_deref().unwrap_or_default()
                    ),
                    fix: "pass --nattport with a free port (wireguard, ipsec), or --gateway-node with another node".into(),
                }
                .into());
            }
        }
    }
    Ok(())
}

/// Refuses an image that no node holds and that names no registry, when
/// every node reports its images (otherwise the nodes cannot tell).
pub fn image_available(nodes: &[Node], image: &str) -> Result<()> {
    let lists: Vec<Vec<String>> = nodes
        .iter()
        .map(|n| {
            n.status
                .iter()
                .flat_map(|s| s.images.iter().flatten())
                .flat_map(|i| i.names.iter().flatten().cloned())
                .collect()
        })
        .collect();
    if lists.is_empty() || lists.iter().any(Vec::is_empty) {
        return Ok(());
    }
    let held = lists.iter().flatten().any(|n| same_image(n, image));
    if held || names_a_registry(image) {
        return Ok(());
    }
    Err(Refusal::Preflight {
        problem: format!("image {image:?} is on no node and names no registry to pull it from"),
        fix: "load it on the nodes (scripts/image.sh builds it) or pass --image REGISTRY/ferry:TAG (or --repository REGISTRY)".into(),
    }
    .into())
}

/// Refuses an `--image` that is a path on this machine rather than an
/// image reference (`/…`, `./…`, `../…`, `~/…`, or a name ending in `.tar`,
/// `.tar.gz`, `.tgz`): a node pulls references, never reads the joiner's
/// files. A path that does not exist is named as such (a typo, or the
/// archive `scripts/image.sh` writes was not built yet); `exists` is the
/// file system's answer.
pub fn image_not_a_path(image: &str, exists: impl Fn(&std::path::Path) -> bool) -> Result<()> {
    let looks_like_path = ["/", "./", "../", "~/"]
        .iter()
        .any(|p| image.starts_with(p))
        || [".tar", ".tar.gz", ".tgz"]
            .iter()
            .any(|s| image.ends_with(s));
    if !looks_like_path {
        return Ok(());
    }
    let problem = if exists(std::path::Path::new(image)) {
        format!("--image {image:?} is a local archive, not an image reference a node can pull")
    } else {
        format!("--image {image:?} names a local archive path that does not exist")
    };
    Err(Refusal::Preflight {
        problem,
        fix: "load the archive into the nodes' runtime (podman load, skopeo copy; the sandbox: ferry sandbox create --runtime runc --image ARCHIVE) and pass --image with its reference, e.g. ferry:TAG".into(),
    }
    .into())
}

/// A `--runtime runc` sandbox cluster runs images only from its own OCI
/// store and pulls nothing: refuses an image the store does not hold
/// (`held`), listing the references it does (`stored`).
pub fn image_in_sandbox_store(
    image: &str,
    cluster: &str,
    held: bool,
    stored: &[String],
) -> Result<()> {
    if held {
        return Ok(());
    }
    let have = if stored.is_empty() {
        "none".to_string()
    } else {
        stored.join(", ")
    };
    Err(Refusal::Preflight {
        problem: format!(
            "--image {image:?} is not in the OCI store of sandbox cluster {cluster} (runtime runc; it pulls nothing; it holds: {have})"
        ),
        fix: format!(
            "pass --image with a reference it holds, or recreate it with ferry sandbox create {cluster} --runtime runc --image ARCHIVE holding {image}"
        ),
    }
    .into())
}

/// Whether the first path component is a registry host (`ghcr.io/…`,
/// `localhost:5000/…`), as container runtimes decide it.
fn names_a_registry(image: &str) -> bool {
    image.split_once('/').is_some_and(|(first, _)| {
        first.contains('.') || first.contains(':') || first == "localhost"
    })
}

/// Whether a node's image name is `image` (a bare name is `docker.io/library/…`).
fn same_image(listed: &str, image: &str) -> bool {
    let strip = |s: &str| {
        s.trim_start_matches("docker.io/")
            .trim_start_matches("library/")
            .to_string()
    };
    strip(listed) == strip(image)
}

#[cfg(test)]
mod tests;
