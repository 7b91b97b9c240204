//! The planner: from what the API says (this cluster's active gateway, every
//! cluster's CIDRs) and what the node is (name, underlay address, device and
//! MTU, pod CIDRs, interface addresses) to the data plane the node should have. Pure: no I/O, so every rule
//! about what goes where is tested here without root.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use ferry_api::{Cidr, ClusterSpec, EndpointSpec, NetworkPlugin};
use ferry_net::{FdbEntry, IfAddr, Mac, Route, VX_FERRY, Vxlan, vtep_mac};

/// Bytes the path behind the gateway may add on top of the underlay MTU: a
/// WireGuard cable over IPv6 (40 IPv6 + 8 UDP + 32 WireGuard). Routes to
/// remote CIDRs get `underlay MTU − CABLE_OVERHEAD`, so TCP MSS and PMTU are
/// right before the packet reaches the gateway.
pub const CABLE_OVERHEAD: u32 = 80;

/// This cluster's active gateway, from its `Endpoint`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActiveGateway {
    /// The gateway's node name (`spec.hostname`).
    pub hostname: String,
    /// Its underlay address (`spec.privateIp`).
    pub ip: Ipv4Addr,
}

/// What the API says, reduced to what the route agent needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterView {
    /// The active gateway, if there is one (with an IPv4 address); with
    /// active-active gateways the first of [`ClusterView::gateways`].
    pub gateway: Option<ActiveGateway>,
    /// Active-active: every gateway of this cluster (one Endpoint each),
    /// by Endpoint name; empty: only `gateway`.
    pub gateways: Vec<ActiveGateway>,
    /// Remote CIDR → the hostnames of the `gateways` that carry it: those
    /// paired with a gateway of its cluster
    /// ([`ferry_api::gateway_pairs`], as the gateways cable; the others
    /// have no partner there). Absent: all of them.
    pub carriers: BTreeMap<Cidr, BTreeSet<String>>,
    /// This cluster's own pod and service CIDRs (IPv4).
    pub local_cidrs: BTreeSet<Cidr>,
    /// This cluster's own pod CIDRs (IPv4): where a node's host-network
    /// source address must lie for other clusters to route it back.
    pub local_pod_cidrs: BTreeSet<Cidr>,
    /// Every other cluster's pod and service CIDRs (IPv4), deduplicated.
    pub remote_cidrs: BTreeSet<Cidr>,
    /// This cluster's CNI, as its own `Cluster` records it (generic when
    /// it records none): which [`crate::cni`] handler plumbs the node.
    pub network_plugin: NetworkPlugin,
}

/// Builds the [`ClusterView`] from this cluster's `Endpoint` (if any) and
/// every `Cluster` in the system namespace. IPv6 CIDRs and addresses are left
/// out; each thing left out gets a line in the returned notes.
pub fn cluster_view(
    local_id: &str,
    endpoint: Option<&EndpointSpec>,
    clusters: &[&ClusterSpec],
) -> (ClusterView, Vec<String>) {
    let mut notes = Vec::new();
    let mut view = ClusterView::default();
    if let Some(ep) = endpoint {
        if ep.cluster_id != local_id {
            notes.push(format!(
                "ignoring Endpoint of cluster {:?}: this cluster is {local_id:?}",
                ep.cluster_id
            ));
        } else {
            match ep.private_ip {
                IpAddr::V4(ip) => {
                    view.gateway = Some(ActiveGateway {
                        hostname: ep.hostname.clone(),
                        ip,
                    });
                }
                IpAddr::V6(ip) => notes.push(format!(
                    "ignoring gateway {} at {ip}: IPv6 underlays are not supported yet",
                    ep.hostname
                )),
            }
        }
    }
    for c in clusters {
        let local = c.cluster_id == local_id;
        if local {
            view.local_pod_cidrs
                .extend(c.cluster_cidrs.iter().filter(|c| c.is_ipv4()));
            view.network_plugin = c.network_plugin.unwrap_or_default();
        }
        let target = if local {
            &mut view.local_cidrs
        } else {
            &mut view.remote_cidrs
        };
        for cidr in reachable(c, local) {
            if cidr.is_ipv4() {
                target.insert(*cidr);
            } else {
                notes.push(format!(
                    "skipping {cidr} of cluster {}: IPv6 is not supported yet",
                    c.cluster_id
                ));
            }
        }
    }
    (view, notes)
}

/// The CIDRs of cluster `c` that are routed: a Globalnet cluster is
/// reached only through its global CIDRs (its own may overlap this
/// cluster's); this cluster's own global CIDRs are local.
fn reachable(c: &ClusterSpec, local: bool) -> Vec<&Cidr> {
    if !local && !c.global_cidrs.is_empty() {
        c.global_cidrs.iter().collect()
    } else {
        c.cluster_cidrs
            .iter()
            .chain(&c.service_cidrs)
            .chain(&c.global_cidrs)
            .collect()
    }
}

/// [`cluster_view`] from every `Endpoint` (by name): this cluster's
/// gateways are all of its Endpoints, by name (one with active-passive
/// gateways, one per gateway with active-active), and each remote CIDR is
/// carried by the gateways paired with one of its cluster's.
pub fn cluster_view_of_all(
    local_id: &str,
    endpoints: &BTreeMap<String, &EndpointSpec>,
    clusters: &[&ClusterSpec],
) -> (ClusterView, Vec<String>) {
    let local: Vec<&EndpointSpec> = endpoints
        .values()
        .copied()
        .filter(|e| e.cluster_id == local_id)
        .collect();
    let (mut view, notes) = cluster_view(local_id, local.first().copied(), clusters);
    if local.len() < 2 {
        return (view, notes);
    }
    view.gateways = local
        .iter()
        .filter_map(|e| match e.private_ip {
            IpAddr::V4(ip) => Some(ActiveGateway {
                hostname: e.hostname.clone(),
                ip,
            }),
            IpAddr::V6(_) => None,
        })
        .collect();
    let pairs = ferry_api::gateway_pairs::pairs_by_cluster(
        local_id,
        endpoints.iter().map(|(n, s)| (n, *s)),
    );
    for c in clusters.iter().filter(|c| c.cluster_id != local_id) {
        let Some(paired) = pairs.get(&c.cluster_id) else {
            continue;
        };
        let hosts: BTreeSet<String> = paired
            .keys()
            .filter_map(|name| Some(endpoints.get(name)?.hostname.clone()))
            .collect();
        for cidr in reachable(c, false) {
            view.carriers.insert(*cidr, hosts.clone());
        }
    }
    (view, notes)
}

/// This node, as the kernel and the Node object describe it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeFacts {
    /// The node name (`NODE_NAME`).
    pub name: String,
    /// Its underlay address: the Node's InternalIP.
    pub ip: Ipv4Addr,
    /// The interface holding `ip`.
    pub underlay_dev: String,
    /// That interface's MTU.
    pub underlay_mtu: u32,
    /// The Node's IPv4 pod CIDRs (`spec.podCIDRs`).
    pub pod_cidrs: Vec<Cidr>,
    /// The IPv4 addresses on the node's interfaces, `vx-ferry`'s left out
    /// (those are the route agent's own).
    pub addresses: Vec<IfAddr>,
}

/// Where the address a node's host-network traffic to other clusters leaves
/// from was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceOrigin {
    /// An interface of the node already holds it (the CNI's bridge or
    /// gateway veths, a tunnel device, the gateway's cable).
    Interface(String),
    /// Nothing held one: the first host address of the Node's podCIDR, the
    /// address a bridge CNI gives its bridge and ferry's gateway its
    /// health-check address.
    NodePodCidr(Cidr),
}

/// The address a node's host-network traffic to other clusters leaves
/// from: inside this cluster's pod CIDRs, so the other clusters route the
/// replies back into this cluster, where the pod routes bring them to this
/// node (as Submariner sources it from the CNI interface's address).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostSource {
    /// The address; the route agent also puts it on `vx-ferry` as a /32, so
    /// it stays on the node while routes use it, whatever the CNI does.
    pub ip: Ipv4Addr,
    /// Where it was found.
    pub origin: SourceOrigin,
}

/// Chooses the node's [`HostSource`]: an address already on one of its
/// interfaces inside its podCIDR, else one inside the cluster's pod CIDRs
/// (the lowest of either), else the first host address of its podCIDR when
/// that lies in the cluster's pod CIDRs (or those are not known yet). The
/// error says why there is none.
pub fn host_source(node: &NodeFacts, view: &ClusterView) -> Result<HostSource, String> {
    let in_cluster = |ip: Ipv4Addr| {
        view.local_pod_cidrs
            .iter()
            .any(|c| c.contains(IpAddr::V4(ip)))
    };
    let in_node = |ip: Ipv4Addr| node.pod_cidrs.iter().any(|c| c.contains(IpAddr::V4(ip)));
    let usable = |a: &&IfAddr| !a.ip.is_loopback() && a.ip != node.ip;
    let pick = |wanted: &dyn Fn(Ipv4Addr) -> bool| {
        node.addresses
            .iter()
            .filter(usable)
            .filter(|a| wanted(a.ip))
            .min_by_key(|a| (a.ip, a.dev.clone()))
    };
    let found = pick(&|ip| in_node(ip) && (view.local_pod_cidrs.is_empty() || in_cluster(ip)))
        .or_else(|| pick(&in_cluster));
    if let Some(a) = found {
        return Ok(HostSource {
            ip: a.ip,
            origin: SourceOrigin::Interface(a.dev.clone()),
        });
    }
    let Some(cidr) = node.pod_cidrs.first() else {
        return Err(format!(
            "Node {} has no IPv4 podCIDR and no interface address inside the cluster's pod CIDRs {}",
            node.name,
            list(&view.local_pod_cidrs)
        ));
    };
    let first = match cidr.addr() {
        IpAddr::V4(a) if cidr.prefix_len() < 31 => Ipv4Addr::from(u32::from(a) + 1),
        _ => {
            return Err(format!(
                "Node {}'s podCIDR {cidr} has no host address",
                node.name
            ));
        }
    };
    if !view.local_pod_cidrs.is_empty() && !in_cluster(first) {
        return Err(format!(
            "Node {}'s podCIDR {cidr} lies outside the cluster's pod CIDRs {}",
            node.name,
            list(&view.local_pod_cidrs)
        ));
    }
    Ok(HostSource {
        ip: first,
        origin: SourceOrigin::NodePodCidr(*cidr),
    })
}

fn list(cidrs: &BTreeSet<Cidr>) -> String {
    if cidrs.is_empty() {
        return "(none known)".into();
    }
    cidrs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What this node is for cross-cluster traffic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// No active gateway is known: `vx-ferry` exists, but nothing is routed.
    NoGateway,
    /// This node is the active gateway: it receives on `vx-ferry` and
    /// forwards into the cables (whose routes the gateway itself installs).
    Gateway,
    /// Another node is the active gateway: remote CIDRs go to it through `vx-ferry`.
    Node(ActiveGateway),
}

/// A remote CIDR left out of the routes, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// The CIDR.
    pub cidr: Cidr,
    /// Why.
    pub reason: String,
}

/// The data plane one node should have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    /// The node's role.
    pub role: Role,
    /// `vx-ferry` (on every node).
    pub vxlan: Vxlan,
    /// Static fdb entries of `vx-ferry`: the gateway's VTEP, on other nodes.
    pub fdb: Vec<FdbEntry>,
    /// Static neighbours on `vx-ferry`: the gateway's address and VTEP MAC.
    pub neigh: Vec<(Ipv4Addr, Mac)>,
    /// Routes of [`ferry_net::ROUTE_AGENT_TABLE`], sorted; their `src` is
    /// the host source's address.
    pub routes: Vec<Route>,
    /// The address host-network traffic to other clusters leaves from, or
    /// why there is none (that traffic then leaves from the node IP, which
    /// no other cluster routes back).
    pub host_source: Result<HostSource, String>,
    /// Sysctls to set, in order.
    pub sysctls: Vec<(String, String)>,
    /// Devices whose strict reverse-path filtering (`rp_filter=1`) must be
    /// loosened to 2: replies from remote CIDRs arrive on the underlay while
    /// the route back to them goes through `vx-ferry`.
    pub loose_rp_filter: Vec<String>,
    /// The nftables sets: this cluster's CIDRs and the remote ones.
    pub nft: crate::nft::Sets,
    /// Remote CIDRs not routed, with the reason.
    pub skipped: Vec<Skipped>,
    /// Objects the CNI needs in this cluster's API (Calico's IPPools for
    /// remote CIDRs), written by the active gateway's route agent; all of
    /// them carry `app.kubernetes.io/managed-by=ferry`.
    pub cni_objects: Vec<serde_json::Value>,
}

/// The data plane for `node` given `view`, with the generic host source
/// ([`host_source`]); [`crate::cni::plan`] is the one that follows the CNI.
pub fn plan(node: &NodeFacts, view: &ClusterView) -> Desired {
    plan_with_source(node, view, host_source(node, view))
}

/// [`plan`] with the host source a CNI handler chose.
pub fn plan_with_source(
    node: &NodeFacts,
    view: &ClusterView,
    host_source: Result<HostSource, String>,
) -> Desired {
    let gateways: Vec<&ActiveGateway> = if view.gateways.is_empty() {
        view.gateway.iter().collect()
    } else {
        view.gateways.iter().collect()
    };
    let my_rank = gateways.iter().position(|g| g.hostname == node.name);
    let role = match (&view.gateway, my_rank) {
        (None, _) => Role::NoGateway,
        (Some(_), Some(_)) => Role::Gateway,
        (Some(gw), None) => Role::Node(gw.clone()),
    };
    let mut skipped = Vec::new();
    let mut remote = Vec::new();
    for cidr in &view.remote_cidrs {
        let reason = if let Some(local) = view.local_cidrs.iter().find(|l| l.overlaps(cidr)) {
            Some(format!("overlaps this cluster's {local}"))
        } else if cidr.contains(IpAddr::V4(node.ip)) {
            Some(format!("holds this node's underlay address {}", node.ip))
        } else if let Some(gw) = &view.gateway
            && cidr.contains(IpAddr::V4(gw.ip))
        {
            Some(format!("holds the gateway's underlay address {}", gw.ip))
        } else {
            None
        };
        match reason {
            Some(reason) => skipped.push(Skipped {
                cidr: *cidr,
                reason,
            }),
            None => remote.push(*cidr),
        }
    }

    let src = host_source.as_ref().ok().map(|h| IpAddr::V4(h.ip));
    let vxlan = Vxlan::vx_ferry(node.ip, &node.underlay_dev, node.underlay_mtu);
    let mut sysctls = vec![(format!("net.ipv4.conf.{VX_FERRY}.rp_filter"), "2".into())];
    if role == Role::Gateway {
        sysctls.push(("net.ipv4.ip_forward".into(), "1".into()));
    }
    let mtu = node.underlay_mtu.saturating_sub(CABLE_OVERHEAD);
    // The gateway's VTEP is known on every other node even before a
    // remote CIDR is (as with active-passive gateways).
    let mut used: BTreeSet<Ipv4Addr> = match &role {
        Role::Node(gw) => BTreeSet::from([gw.ip]),
        Role::NoGateway | Role::Gateway => BTreeSet::new(),
    };
    let mut routes = Vec::new();
    for cidr in &remote {
        let hops: Vec<&ActiveGateway> = match view.carriers.get(cidr) {
            Some(carriers) => gateways
                .iter()
                .filter(|g| carriers.contains(&g.hostname))
                .copied()
                .collect(),
            None => gateways.clone(),
        };
        // A gateway carries the CIDRs it has a partner for itself (its
        // cable's routes); the rest goes to the gateways that have one.
        if my_rank.is_some() && hops.iter().any(|g| g.hostname == node.name) {
            continue;
        }
        let Some((first, more)) = hops.split_first() else {
            continue;
        };
        used.extend(hops.iter().map(|g| g.ip));
        routes.push(Route {
            via: Some(IpAddr::V4(first.ip)),
            more_via: more.iter().map(|g| IpAddr::V4(g.ip)).collect(),
            dev: Some(VX_FERRY.into()),
            onlink: true,
            src,
            mtu: Some(mtu),
            ..Route::to(*cidr)
        });
    }
    if routes.iter().any(|r| !r.more_via.is_empty()) {
        // Spread by flow (addresses, protocol and ports), not by address pair.
        sysctls.push(("net.ipv4.fib_multipath_hash_policy".into(), "1".into()));
    }
    let fdb: Vec<FdbEntry> = used
        .iter()
        .map(|ip| FdbEntry {
            mac: vtep_mac(*ip),
            dst: IpAddr::V4(*ip),
        })
        .collect();
    let neigh: Vec<(Ipv4Addr, Mac)> = used.iter().map(|ip| (*ip, vtep_mac(*ip))).collect();
    routes.sort();
    Desired {
        role,
        vxlan,
        fdb,
        neigh,
        routes,
        host_source,
        sysctls,
        loose_rp_filter: vec![node.underlay_dev.clone()],
        nft: crate::nft::Sets {
            local: view.local_cidrs.iter().copied().collect(),
            remote,
        },
        skipped,
        cni_objects: Vec::new(),
    }
}

#[cfg(test)]
mod tests;
