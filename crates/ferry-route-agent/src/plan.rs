//! The planner: from what the API says (this cluster's active gateway, every
//! cluster's CIDRs) and what the node is (name, underlay address, device and
//! MTU) to the data plane the node should have. Pure: no I/O, so every rule
//! about what goes where is tested here without root.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use ferry_api::{Cidr, ClusterSpec, EndpointSpec};
use ferry_net::{FdbEntry, Mac, Route, VX_FERRY, Vxlan, vtep_mac};

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
    /// The active gateway, if there is one (with an IPv4 address).
    pub gateway: Option<ActiveGateway>,
    /// This cluster's own pod and service CIDRs (IPv4).
    pub local_cidrs: BTreeSet<Cidr>,
    /// Every other cluster's pod and service CIDRs (IPv4), deduplicated.
    pub remote_cidrs: BTreeSet<Cidr>,
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
        let target = if c.cluster_id == local_id {
            &mut view.local_cidrs
        } else {
            &mut view.remote_cidrs
        };
        for cidr in c.cluster_cidrs.iter().chain(&c.service_cidrs) {
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
    /// Routes of [`ferry_net::ROUTE_AGENT_TABLE`], sorted.
    pub routes: Vec<Route>,
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
}

/// The data plane for `node` given `view`.
pub fn plan(node: &NodeFacts, view: &ClusterView) -> Desired {
    let role = match &view.gateway {
        None => Role::NoGateway,
        Some(gw) if gw.hostname == node.name => Role::Gateway,
        Some(gw) => Role::Node(gw.clone()),
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

    let vxlan = Vxlan::vx_ferry(node.ip, &node.underlay_dev, node.underlay_mtu);
    let mut sysctls = vec![(format!("net.ipv4.conf.{VX_FERRY}.rp_filter"), "2".into())];
    let (mut fdb, mut neigh, mut routes) = (Vec::new(), Vec::new(), Vec::new());
    match &role {
        Role::NoGateway => {}
        Role::Gateway => sysctls.push(("net.ipv4.ip_forward".into(), "1".into())),
        Role::Node(gw) => {
            let mac = vtep_mac(gw.ip);
            fdb.push(FdbEntry {
                mac,
                dst: IpAddr::V4(gw.ip),
            });
            neigh.push((gw.ip, mac));
            let mtu = node.underlay_mtu.saturating_sub(CABLE_OVERHEAD);
            routes = remote
                .iter()
                .map(|cidr| Route {
                    via: Some(IpAddr::V4(gw.ip)),
                    dev: Some(VX_FERRY.into()),
                    onlink: true,
                    mtu: Some(mtu),
                    ..Route::to(*cidr)
                })
                .collect();
        }
    }
    routes.sort();
    Desired {
        role,
        vxlan,
        fdb,
        neigh,
        routes,
        sysctls,
        loose_rp_filter: vec![node.underlay_dev.clone()],
        nft: crate::nft::Sets {
            local: view.local_cidrs.iter().copied().collect(),
            remote,
        },
        skipped,
    }
}

#[cfg(test)]
mod tests;
