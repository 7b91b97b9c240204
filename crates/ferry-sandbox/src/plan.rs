//! The address and name plan of a sandbox cluster: pure functions of the
//! cluster's name, index, node count and CIDRs.
//!
//! Cluster `i` (0..64) uses bridge `fsb{i}` with 198.18.{100+i}.0/24 (host .1,
//! node k .{10+k}), WAN addresses 198.19.{i}.{10+k}/16 on the shared bridge
//! `fsbwan`, by default pod CIDR 100.{64+i}.0.0/16 (node k gets the k-th /24)
//! and service CIDR 100.{96+i}.0.0/16. Those defaults fill 100.64.0.0/10 with
//! the first 32 clusters, so clusters 32..64 must be given both CIDRs
//! (small ones, e.g. /24s, that no other cluster uses).
//!
//! A cluster created `--cni kube-ovn` is shaped like kube-ovn: its pod CIDR
//! splits in two halves, the lower one `ovn-default` (the pods; node k's
//! slice is still its k-th /24) and the upper one `join`, on which every node
//! has `ovn0` (node k at the (k+2)-th address, all on the bridge
//! `fsb{i}j`); nodes reach each other's pods through `ovn0`, pod traffic
//! leaving the pod CIDR is masqueraded as kube-ovn's `natOutgoing` does, and
//! the API server holds the `ovn-default` and `join` `Subnet`s. Both halves
//! lie inside the cluster's own /16, so they collide with no other cluster.
//!
//! A cluster created `--nat` has no node on the WAN: a router namespace
//! (`fsb{i}-rt`) sits on its bridge at .254 and on the WAN at 198.19.{i}.1,
//! the cluster's one public address, and masquerades the nodes behind it.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Largest number of sandbox clusters at once.
pub const MAX_CLUSTERS: u32 = 64;
/// Clusters with an index below this have default CIDRs (a /16 each).
pub const DEFAULT_CIDR_CLUSTERS: u32 = 32;
/// Largest number of nodes in a cluster.
pub const MAX_NODES: u32 = 16;
/// Prefix of every network namespace, link and /etc/netns directory we make.
pub const PREFIX: &str = "fsb";
/// The shared WAN bridge.
pub const WAN_BRIDGE: &str = "fsbwan";

/// An IPv4 CIDR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Cidr {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Cidr {
    /// Parses `a.b.c.d/n`, requiring the address to be the network address.
    pub fn parse(s: &str) -> Result<Cidr> {
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| Error::Invalid(format!("{s:?} is not a CIDR (a.b.c.d/n)")))?;
        let addr: Ipv4Addr = a
            .parse()
            .map_err(|_| Error::Invalid(format!("{s:?}: bad address")))?;
        let prefix: u8 = p
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| Error::Invalid(format!("{s:?}: bad prefix length")))?;
        let c = Cidr { addr, prefix };
        if c.network() != addr {
            return Err(Error::Invalid(format!(
                "{s:?}: host bits set (did you mean {}/{prefix}?)",
                c.network()
            )));
        }
        Ok(c)
    }

    fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        }
    }

    /// The network address.
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    /// Whether `ip` is inside.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network())
    }

    /// Whether `other` lies entirely inside.
    pub fn covers(&self, other: &Cidr) -> bool {
        other.prefix >= self.prefix && self.contains(other.addr)
    }

    /// Whether the two overlap.
    pub fn overlaps(&self, other: &Cidr) -> bool {
        self.covers(other) || other.covers(self)
    }

    /// Number of addresses.
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }

    /// The `n`-th address (no bounds check beyond wrapping inside the CIDR).
    pub fn nth(&self, n: u64) -> Ipv4Addr {
        let off = (n % self.size()) as u32;
        Ipv4Addr::from(u32::from(self.network()).wrapping_add(off))
    }

    /// The `k`-th sub-network of length `prefix`.
    pub fn subnet(&self, prefix: u8, k: u32) -> Cidr {
        let step = 1u64 << (32 - u32::from(prefix));
        Cidr {
            addr: Ipv4Addr::from(
                (u64::from(u32::from(self.network())) + step * u64::from(k)) as u32,
            ),
            prefix,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl TryFrom<String> for Cidr {
    type Error = Error;
    fn try_from(s: String) -> Result<Cidr> {
        Cidr::parse(&s)
    }
}

impl From<Cidr> for String {
    fn from(c: Cidr) -> String {
        c.to_string()
    }
}

/// 100.64.0.0/10: the only space pods and services may use.
pub const POD_SPACE: Cidr = Cidr {
    addr: Ipv4Addr::new(100, 64, 0, 0),
    prefix: 10,
};
/// 198.18.0.0/15: the only space nodes, bridges and WAN may use.
pub const NODE_SPACE: Cidr = Cidr {
    addr: Ipv4Addr::new(198, 18, 0, 0),
    prefix: 15,
};

/// What the router in front of a `--nat` cluster does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NatMode {
    /// Source NAT with random ports, replies by connection tracking, no
    /// inbound forwards: unsolicited inbound traffic is dropped (a cloud NAT).
    Masquerade,
    /// As `masquerade`, plus a forward of the cable and NAT discovery ports
    /// (UDP 4490, 4500, 4800) to node 0, as a home router's port forward to
    /// the gateway (a `--preferred-server`).
    PortForward,
    /// Drops every UDP datagram in either direction (a hostile firewall).
    BlockUdp,
}

impl NatMode {
    /// Every mode, as `--nat` takes them.
    pub const ALL: [NatMode; 3] = [NatMode::Masquerade, NatMode::PortForward, NatMode::BlockUdp];

    /// The name `--nat` takes.
    pub fn as_str(&self) -> &'static str {
        match self {
            NatMode::Masquerade => "masquerade",
            NatMode::PortForward => "port-forward",
            NatMode::BlockUdp => "block-udp",
        }
    }
}

impl std::str::FromStr for NatMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<NatMode> {
        NatMode::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "unknown NAT mode {s:?}: use masquerade, port-forward or block-udp"
                ))
            })
    }
}

impl std::fmt::Display for NatMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The CNI a sandbox cluster is shaped like.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SandboxCni {
    /// Pods behind a veth each, nodes routing each other's /24 on the
    /// cluster bridge; no CNI objects in the API.
    #[default]
    Bridge,
    /// kube-ovn-shaped (see the module docs).
    KubeOvn,
}

impl SandboxCni {
    /// Every shape, as `--cni` takes them.
    pub const ALL: [SandboxCni; 2] = [SandboxCni::Bridge, SandboxCni::KubeOvn];

    /// The name `--cni` takes.
    pub fn as_str(&self) -> &'static str {
        match self {
            SandboxCni::Bridge => "bridge",
            SandboxCni::KubeOvn => "kube-ovn",
        }
    }

    fn is_bridge(&self) -> bool {
        *self == SandboxCni::Bridge
    }
}

impl std::str::FromStr for SandboxCni {
    type Err = Error;
    fn from_str(s: &str) -> Result<SandboxCni> {
        SandboxCni::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| Error::Invalid(format!("unknown CNI {s:?}: use bridge or kube-ovn")))
    }
}

impl std::fmt::Display for SandboxCni {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything about one cluster's names and addresses. Stored as
/// `cluster.json` in its state directory before anything is created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub name: String,
    pub index: u32,
    pub nodes: u32,
    pub pod_cidr: Cidr,
    pub service_cidr: Cidr,
    /// Where `clusterset.local` queries are forwarded (host:port), if anywhere.
    #[serde(default)]
    pub dns_upstream: Option<String>,
    /// The NAT router in front of the nodes, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nat: Option<NatMode>,
    /// How pods' containers run.
    #[serde(default, skip_serializing_if = "crate::oci::Runtime::is_local")]
    pub runtime: crate::oci::Runtime,
    /// The CNI the cluster is shaped like.
    #[serde(default, skip_serializing_if = "SandboxCni::is_bridge")]
    pub cni: SandboxCni,
}

/// Checks a cluster name: 1-20 of `[a-z0-9-]`, starting with a letter.
pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 20
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "bad cluster name {name:?}: use 1-20 of a-z, 0-9 and '-', starting with a letter"
        )))
    }
}

impl Plan {
    /// A plan with defaults for the CIDRs not given; validates everything.
    pub fn new(
        name: &str,
        index: u32,
        nodes: u32,
        pod_cidr: Option<Cidr>,
        service_cidr: Option<Cidr>,
    ) -> Result<Plan> {
        validate_name(name)?;
        if index >= MAX_CLUSTERS {
            return Err(Error::Invalid(format!(
                "at most {MAX_CLUSTERS} sandbox clusters at once"
            )));
        }
        if nodes == 0 || nodes > MAX_NODES {
            return Err(Error::Invalid(format!("--nodes must be 1..={MAX_NODES}")));
        }
        // The i-th /16 above 100.{second_octet}.0.0, for the first 32 clusters.
        let default_cidr = |second_octet: u32| {
            if index >= DEFAULT_CIDR_CLUSTERS {
                return Err(Error::Invalid(format!(
                    "{DEFAULT_CIDR_CLUSTERS} sandbox clusters already use the default CIDRs \
                     (100.64.0.0/10 is full): give this one --pod-cidr and --service-cidr"
                )));
            }
            Ok(Cidr {
                addr: Ipv4Addr::new(100, (second_octet + index) as u8, 0, 0),
                prefix: 16,
            })
        };
        let pod_cidr = match pod_cidr {
            Some(c) => c,
            None => default_cidr(64)?,
        };
        let service_cidr = match service_cidr {
            Some(c) => c,
            None => default_cidr(96)?,
        };
        for (what, c) in [("pod", pod_cidr), ("service", service_cidr)] {
            if !POD_SPACE.covers(&c) {
                return Err(Error::Invalid(format!(
                    "{what} CIDR {c} must lie inside {POD_SPACE}"
                )));
            }
        }
        if pod_cidr.overlaps(&service_cidr) {
            return Err(Error::Invalid(format!(
                "pod CIDR {pod_cidr} overlaps service CIDR {service_cidr}"
            )));
        }
        if pod_cidr.prefix > 24 || pod_cidr.size() / 256 < u64::from(nodes) {
            return Err(Error::Invalid(format!(
                "pod CIDR {pod_cidr} has too few /24s for {nodes} nodes"
            )));
        }
        if service_cidr.prefix > 28 {
            return Err(Error::Invalid(format!(
                "service CIDR {service_cidr} is too small"
            )));
        }
        Ok(Plan {
            name: name.to_string(),
            index,
            nodes,
            pod_cidr,
            service_cidr,
            dns_upstream: None,
            nat: None,
            runtime: crate::oci::Runtime::Local,
            cni: SandboxCni::Bridge,
        })
    }

    /// This plan shaped like `cni`; kube-ovn needs every node's /24 in the
    /// lower half of the pod CIDR.
    pub fn with_cni(mut self, cni: SandboxCni) -> Result<Plan> {
        if cni == SandboxCni::KubeOvn
            && (self.pod_cidr.prefix > 23 || self.pod_cidr.size() / 512 < u64::from(self.nodes))
        {
            return Err(Error::Invalid(format!(
                "pod CIDR {} is too small for kube-ovn's two halves with {} nodes",
                self.pod_cidr, self.nodes
            )));
        }
        self.cni = cni;
        Ok(self)
    }

    /// kube-ovn's `ovn-default` Subnet: the lower half of the pod CIDR.
    pub fn ovn_default_cidr(&self) -> Cidr {
        self.pod_cidr.subnet(self.pod_cidr.prefix + 1, 0)
    }
    /// kube-ovn's `join` Subnet: the upper half of the pod CIDR.
    pub fn join_cidr(&self) -> Cidr {
        self.pod_cidr.subnet(self.pod_cidr.prefix + 1, 1)
    }
    /// Node `k`'s `ovn0` address in the join subnet (.1 is the gateway).
    pub fn node_join_ip(&self, k: u32) -> Ipv4Addr {
        self.join_cidr().nth(2 + u64::from(k))
    }
    /// The bridge joining the nodes' `ovn0` (kube-ovn's join switch).
    pub fn join_bridge(&self) -> String {
        format!("{PREFIX}{}j", self.index)
    }
    /// Host end of node `k`'s `ovn0` veth.
    pub fn join_veth(&self, k: u32) -> String {
        format!("{PREFIX}{}o{k}", self.index)
    }
    /// Where node `j`'s pods are reached from another node: its `ovn0`
    /// (kube-ovn) or its address on the cluster bridge.
    pub fn node_pod_next_hop(&self, j: u32) -> Ipv4Addr {
        match self.cni {
            SandboxCni::KubeOvn => self.node_join_ip(j),
            SandboxCni::Bridge => self.node_ip(j),
        }
    }

    /// The cluster bridge (host side).
    pub fn bridge(&self) -> String {
        format!("{PREFIX}{}", self.index)
    }
    /// The host's address on the cluster bridge: API server and DNS listen here.
    pub fn host_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, 100 + self.index as u8, 1)
    }
    /// The host addresses (API server, DNS) of every cluster index but this
    /// one. Nodes route them through their own bridge to the host, which owns
    /// them all and answers locally (no forwarding between bridges): this is
    /// how one cluster reaches another's API, e.g. a broker on cluster0.
    pub fn other_host_ips(&self) -> Vec<Ipv4Addr> {
        (0..MAX_CLUSTERS)
            .filter(|&k| k != self.index)
            .map(|k| Ipv4Addr::new(198, 18, 100 + k as u8, 1))
            .collect()
    }
    /// The cluster bridge's subnet.
    pub fn bridge_cidr(&self) -> Cidr {
        Cidr {
            addr: Ipv4Addr::new(198, 18, 100 + self.index as u8, 0),
            prefix: 24,
        }
    }
    /// Kubernetes node name.
    pub fn node_name(&self, k: u32) -> String {
        format!("{}-node{k}", self.name)
    }
    /// Node index from a node name.
    pub fn node_index(&self, node: &str) -> Option<u32> {
        let k: u32 = node
            .strip_prefix(&self.name)?
            .strip_prefix("-node")?
            .parse()
            .ok()?;
        (k < self.nodes).then_some(k)
    }
    /// Prefix of every network namespace of this cluster.
    pub fn netns_prefix(&self) -> String {
        format!("{PREFIX}{}-", self.index)
    }
    /// The node's network namespace.
    pub fn node_netns(&self, k: u32) -> String {
        format!("{}n{k}", self.netns_prefix())
    }
    /// A pod's network namespace (`seq` is unique per node).
    pub fn pod_netns(&self, k: u32, seq: u64) -> String {
        format!("{}n{k}-p{seq}", self.netns_prefix())
    }
    /// Host end of the node's veth on the cluster bridge.
    pub fn node_veth(&self, k: u32) -> String {
        format!("{PREFIX}{}n{k}", self.index)
    }
    /// Host end of the node's veth on the WAN bridge.
    pub fn wan_veth(&self, k: u32) -> String {
        format!("{PREFIX}{}w{k}", self.index)
    }
    /// Whether a host link name belongs to this cluster.
    pub fn owns_link(&self, link: &str) -> bool {
        let own = self.bridge();
        link == own
            || link == self.join_bridge()
            || ["n", "w", "r", "o"].iter().any(|s| {
                link.strip_prefix(&format!("{own}{s}"))
                    .is_some_and(|r| !r.is_empty() && r.chars().all(|c| c.is_ascii_digit()))
            })
    }
    /// The node's address on the cluster bridge.
    pub fn node_ip(&self, k: u32) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, 100 + self.index as u8, 10 + k as u8)
    }
    /// The node's address on the WAN bridge (a /16 shared by all clusters).
    pub fn node_wan_ip(&self, k: u32) -> Ipv4Addr {
        Ipv4Addr::new(198, 19, self.index as u8, 10 + k as u8)
    }
    /// The address other clusters reach node `k` at: its own on the WAN,
    /// or behind a NAT the router's.
    pub fn public_ip(&self, k: u32) -> Ipv4Addr {
        match self.nat {
            Some(_) => self.router_wan_ip(),
            None => self.node_wan_ip(k),
        }
    }
    /// The NAT router's namespace.
    pub fn router_netns(&self) -> String {
        format!("{}rt", self.netns_prefix())
    }
    /// Host ends of the router's veths: on the cluster bridge (`r0`) and
    /// on the WAN bridge (`r1`).
    pub fn router_veths(&self) -> (String, String) {
        (
            format!("{PREFIX}{}r0", self.index),
            format!("{PREFIX}{}r1", self.index),
        )
    }
    /// The router's address on the cluster bridge: the nodes' way out.
    pub fn router_lan_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, 100 + self.index as u8, 254)
    }
    /// The router's address on the WAN: the cluster's public address.
    pub fn router_wan_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(198, 19, self.index as u8, 1)
    }
    /// The WAN every cluster shares.
    pub fn wan_cidr(&self) -> Cidr {
        Cidr {
            addr: Ipv4Addr::new(198, 19, 0, 0),
            prefix: 16,
        }
    }
    /// The node's slice of the pod CIDR.
    pub fn node_pod_cidr(&self, k: u32) -> Cidr {
        self.pod_cidr.subnet(24, k)
    }
    /// The pods' gateway on node `k` (first address of its slice).
    pub fn node_pod_gateway(&self, k: u32) -> Ipv4Addr {
        self.node_pod_cidr(k).nth(1)
    }
    /// The nftables table in every node.
    pub fn nft_table(&self) -> String {
        format!("ferry-sbx-{}", self.name)
    }
    /// resolv.conf for a pod in Kubernetes namespace `ns` (or a node: None).
    pub fn resolv_conf(&self, ns: Option<&str>) -> String {
        let search = match ns {
            Some(ns) => format!("{ns}.svc.cluster.local svc.cluster.local cluster.local"),
            None => "svc.cluster.local cluster.local".to_string(),
        };
        format!(
            "search {search}\nnameserver {}\noptions ndots:5\n",
            self.host_ip()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parse_and_math() {
        let c = Cidr::parse("100.64.0.0/16").unwrap();
        assert_eq!(c.subnet(24, 3).to_string(), "100.64.3.0/24");
        assert_eq!(c.nth(10), Ipv4Addr::new(100, 64, 0, 10));
        assert!(POD_SPACE.covers(&c));
        assert!(Cidr::parse("100.64.0.1/16").is_err());
        assert!(Cidr::parse("10.0.0.0/8").is_ok());
    }

    #[test]
    fn plan_defaults_and_names() {
        let p = Plan::new("east", 3, 2, None, None).unwrap();
        assert_eq!(p.pod_cidr.to_string(), "100.67.0.0/16");
        assert_eq!(p.service_cidr.to_string(), "100.99.0.0/16");
        assert_eq!(p.node_pod_cidr(1).to_string(), "100.67.1.0/24");
        assert_eq!(p.node_ip(1), Ipv4Addr::new(198, 18, 103, 11));
        assert_eq!(p.node_netns(1), "fsb3-n1");
        assert_eq!(p.node_index("east-node1"), Some(1));
        assert_eq!(p.node_index("east-node2"), None);
        assert!(p.owns_link("fsb3") && p.owns_link("fsb3n1") && p.owns_link("fsb3w0"));
        assert!(!p.owns_link("fsb31n1") && !p.owns_link("fsb30"));
        assert!(NODE_SPACE.contains(p.node_wan_ip(0)));
        assert_eq!(p.public_ip(1), p.node_wan_ip(1));
    }

    #[test]
    fn kube_ovn_plan_splits_the_pod_cidr_into_ovn_default_and_join() {
        let p = Plan::new("east", 3, 2, None, None)
            .unwrap()
            .with_cni(SandboxCni::KubeOvn)
            .unwrap();
        assert_eq!(p.ovn_default_cidr().to_string(), "100.67.0.0/17");
        assert_eq!(p.join_cidr().to_string(), "100.67.128.0/17");
        assert!(p.ovn_default_cidr().covers(&p.node_pod_cidr(1)));
        assert_eq!(p.node_join_ip(1), Ipv4Addr::new(100, 67, 128, 3));
        assert_eq!(p.node_pod_next_hop(1), p.node_join_ip(1));
        // Inside the cluster's own /16: no other cluster's ranges.
        let other = Plan::new("west", 4, 2, None, None).unwrap();
        for c in [p.ovn_default_cidr(), p.join_cidr()] {
            assert!(p.pod_cidr.covers(&c));
            assert!(!c.overlaps(&other.pod_cidr) && !c.overlaps(&other.service_cidr));
        }
        assert!(p.owns_link("fsb3j") && p.owns_link("fsb3o1") && !p.owns_link("fsb31j"));
        let small = Plan::new(
            "tiny",
            5,
            2,
            Some(Cidr::parse("100.69.0.0/23").unwrap()),
            None,
        );
        assert!(small.unwrap().with_cni(SandboxCni::KubeOvn).is_err());
        // Stored plans without the field load as bridge clusters.
        let mut v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["cni"], "kube-ovn");
        v.as_object_mut().unwrap().remove("cni");
        assert_eq!(
            serde_json::from_value::<Plan>(v).unwrap().cni,
            SandboxCni::Bridge
        );
    }

    #[test]
    fn nat_plan_puts_every_node_behind_the_router() {
        let mut p = Plan::new("east", 3, 2, None, None).unwrap();
        p.nat = Some("port-forward".parse().unwrap());
        assert_eq!(p.public_ip(0), Ipv4Addr::new(198, 19, 3, 1));
        assert_eq!(p.public_ip(1), p.router_wan_ip());
        assert_eq!(p.router_lan_ip(), Ipv4Addr::new(198, 18, 103, 254));
        assert!(p.bridge_cidr().contains(p.router_lan_ip()));
        assert!(p.wan_cidr().contains(p.router_wan_ip()));
        assert!(NODE_SPACE.covers(&p.wan_cidr()));
        assert_eq!(p.router_netns(), "fsb3-rt");
        assert!(p.router_netns().starts_with(&p.netns_prefix()));
        let (lan, wan) = p.router_veths();
        assert!(p.owns_link(&lan) && p.owns_link(&wan));
        assert!("cgnat".parse::<NatMode>().is_err());
        // Stored plans without the field still load.
        let mut v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["nat"], "port-forward");
        v.as_object_mut().unwrap().remove("nat");
        assert_eq!(serde_json::from_value::<Plan>(v).unwrap().nat, None);
    }

    #[test]
    fn plan_rejects_outside_space() {
        assert!(Plan::new("a", 0, 2, Cidr::parse("10.0.0.0/16").ok(), None).is_err());
        assert!(
            Plan::new(
                "a",
                0,
                2,
                Cidr::parse("100.64.0.0/16").ok(),
                Cidr::parse("100.64.0.0/20").ok()
            )
            .is_err()
        );
        assert!(Plan::new("Bad", 0, 2, None, None).is_err());
    }

    #[test]
    fn clusters_past_the_defaults_need_both_cidrs() {
        let cidr = |s: &str| Cidr::parse(s).ok();
        assert!(Plan::new("a", 31, 1, None, None).is_ok());
        for (pod, svc) in [
            (None, None),
            (cidr("100.95.1.0/24"), None),
            (None, cidr("100.127.1.0/24")),
        ] {
            let err = Plan::new("a", 32, 1, pod, svc).unwrap_err().to_string();
            assert!(err.contains("--pod-cidr and --service-cidr"), "{err}");
        }
        let p = Plan::new("a", 63, 1, cidr("100.95.1.0/24"), cidr("100.127.1.0/24")).unwrap();
        assert_eq!(p.host_ip(), Ipv4Addr::new(198, 18, 163, 1));
        assert_eq!(p.node_wan_ip(0), Ipv4Addr::new(198, 19, 63, 10));
        assert!(
            Plan::new(
                "a",
                MAX_CLUSTERS,
                1,
                cidr("100.95.1.0/24"),
                cidr("100.127.1.0/24")
            )
            .is_err()
        );
    }
}
