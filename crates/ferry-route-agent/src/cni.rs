//! CNI handlers: the part of a node's plumbing that depends on the cluster's
//! CNI, behind one small interface ([`NodePlumbing`]), chosen by the
//! `networkPlugin` `join` recorded in the cluster's `Cluster`:
//!
//! - generic (any CNI, flannel): the host source from an interface inside
//!   the node's podCIDR, else its first address ([`plan::host_source`]);
//! - kube-ovn: nodes reach pods through `ovn0`, whose address lies in the
//!   `join` subnet, so host-network traffic to other clusters leaves from
//!   `ovn0`'s address (replies come back to the gateway, and from there
//!   through kube-ovn's join switch to the node's `ovn0`); strict
//!   reverse-path filtering is loosened on `ovn0` too. The join subnet must be
//!   one of the cluster's pod CIDRs (kube-ovn's guide puts it in
//!   `--clustercidr`; `join` discovers it): then the identity SNAT of
//!   [`crate::nft`] (priority srcnat − 10) binds those connections before
//!   kube-ovn's `OVN-POSTROUTING` masquerade (iptables' nat table, srcnat),
//!   which then leaves them alone. A node whose `ovn0` address lies outside
//!   them gets no host source, with that reason. On the active gateway's
//!   node the gateway's cable routes (looked up first) take the same `ovn0`
//!   address as their source (`ferry-gateway`'s `HostSourceDev`).
//! - Calico: the generic host source, plus an IPPool per remote CIDR with
//!   `natOutgoing: false` (Calico does not masquerade traffic to it) and
//!   `disabled: true` (it never assigns addresses from it), which Submariner's
//!   Calico users write by hand; the active gateway's route agent keeps them.
//!
//! Pure, like [`plan`]: the daemon applies what [`plan`] returns.

use std::net::IpAddr;

use ferry_api::labels::{APP_MANAGED_BY, APP_MANAGED_BY_FERRY};
use ferry_api::{Cidr, NetworkPlugin};
use serde_json::{Value, json};

use crate::plan::{self, ClusterView, Desired, HostSource, NodeFacts, Role, SourceOrigin};

/// kube-ovn's interface from the node into its join subnet.
pub const OVN0: &str = "ovn0";

/// Calico's IPPool resource: API group, version and plural.
pub const CALICO_IPPOOL: (&str, &str, &str) = ("crd.projectcalico.org", "v1", "ippools");

/// What a CNI changes in a node's plumbing.
pub trait NodePlumbing: Sync {
    /// The address host-network traffic to other clusters leaves from, or
    /// why there is none.
    fn host_source(&self, node: &NodeFacts, view: &ClusterView) -> Result<HostSource, String> {
        plan::host_source(node, view)
    }

    /// Devices besides the underlay whose strict reverse-path filtering
    /// must be loosened.
    fn loose_rp_filter(&self) -> Vec<String> {
        Vec::new()
    }

    /// Objects the CNI needs in the cluster's API, given the node's role
    /// and the remote CIDRs routed.
    fn cni_objects(&self, _role: &Role, _remote: &[Cidr]) -> Vec<Value> {
        Vec::new()
    }
}

/// Any CNI without a handler of its own (and flannel).
pub struct Generic;

impl NodePlumbing for Generic {}

/// kube-ovn (see the module docs).
pub struct KubeOvn;

impl NodePlumbing for KubeOvn {
    fn host_source(&self, node: &NodeFacts, view: &ClusterView) -> Result<HostSource, String> {
        let Some(a) = node
            .addresses
            .iter()
            .filter(|a| a.dev == OVN0)
            .min_by_key(|a| a.ip)
        else {
            return Err(format!(
                "kube-ovn: node {} has no IPv4 address on {OVN0} (is kube-ovn's ovs-ovn running on it?)",
                node.name
            ));
        };
        let inside = view
            .local_pod_cidrs
            .iter()
            .any(|c| c.contains(IpAddr::V4(a.ip)));
        if !inside {
            return Err(format!(
                "kube-ovn: {OVN0}'s address {} on node {} lies outside the cluster's pod CIDRs; \
                 join with the join subnet in --clustercidr (e.g. --clustercidr <ovn-default>,<join>)",
                a.ip, node.name
            ));
        }
        Ok(HostSource {
            ip: a.ip,
            origin: SourceOrigin::Interface(OVN0.into()),
        })
    }

    fn loose_rp_filter(&self) -> Vec<String> {
        vec![OVN0.into()]
    }
}

/// Calico (see the module docs).
pub struct Calico;

impl NodePlumbing for Calico {
    fn cni_objects(&self, role: &Role, remote: &[Cidr]) -> Vec<Value> {
        if *role != Role::Gateway {
            return Vec::new();
        }
        remote.iter().map(calico_ippool).collect()
    }
}

/// The handler of `plugin`.
pub fn handler(plugin: NetworkPlugin) -> &'static dyn NodePlumbing {
    match plugin {
        NetworkPlugin::Generic | NetworkPlugin::Flannel => &Generic,
        NetworkPlugin::KubeOvn => &KubeOvn,
        NetworkPlugin::Calico => &Calico,
    }
}

/// The data plane for `node` given `view`, plumbed by the handler of the
/// cluster's CNI.
pub fn plan(node: &NodeFacts, view: &ClusterView) -> Desired {
    let h = handler(view.network_plugin);
    let mut d = plan::plan_with_source(node, view, h.host_source(node, view));
    for dev in h.loose_rp_filter() {
        if !d.loose_rp_filter.contains(&dev) {
            d.loose_rp_filter.push(dev);
        }
    }
    d.cni_objects = h.cni_objects(&d.role, &d.nft.remote);
    d
}

/// The IPPool that tells Calico `cidr` is another cluster's: no masquerade
/// towards it, no addresses from it.
pub fn calico_ippool(cidr: &Cidr) -> Value {
    let name = format!(
        "ferry-remote-{}",
        cidr.to_string().replace(['.', ':', '/'], "-")
    );
    json!({
        "apiVersion": format!("{}/{}", CALICO_IPPOOL.0, CALICO_IPPOOL.1),
        "kind": "IPPool",
        "metadata": {"name": name, "labels": {APP_MANAGED_BY: APP_MANAGED_BY_FERRY}},
        "spec": {"cidr": cidr.to_string(), "natOutgoing": false, "disabled": true},
    })
}

#[cfg(test)]
mod tests;
