//! The `ferry.dev/v1alpha1` resources: [`Cluster`], [`Endpoint`] and
//! [`Gateway`]. All are namespaced: each cluster publishes its own into the
//! broker namespace ([`crate::labels::BROKER_NAMESPACE`]) and every other
//! cluster copies them into its [`crate::labels::SYSTEM_NAMESPACE`].

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use kube::CustomResource;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use crate::{Cidr, Error};

/// API group of ferry's own resources.
pub const GROUP: &str = "ferry.dev";
/// API version of ferry's own resources.
pub const VERSION: &str = "v1alpha1";
/// `kubectl get ferry` lists every ferry resource.
pub const CATEGORY: &str = "ferry";

/// One member cluster of the clusterset: its id and the address ranges its
/// pods and services use. Published by the cluster's agent.
// kube's repeated `printcolumn(type_ = …)` trips this lint.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[kube(
    group = "ferry.dev",
    version = "v1alpha1",
    kind = "Cluster",
    namespaced,
    derive = "PartialEq",
    category = "ferry",
    doc = "A member cluster of the clusterset: its id and its pod and service CIDRs.",
    printcolumn(name = "CLUSTER-ID", type_ = "string", json_path = ".spec.clusterId"),
    printcolumn(
        name = "CLUSTER-CIDRS",
        type_ = "string",
        json_path = ".spec.clusterCidrs"
    ),
    printcolumn(
        name = "SERVICE-CIDRS",
        type_ = "string",
        json_path = ".spec.serviceCidrs"
    ),
    printcolumn(name = "CNI", type_ = "string", json_path = ".spec.networkPlugin"),
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSpec {
    /// The cluster id: an RFC 1123 label, unique in the clusterset.
    pub cluster_id: String,
    /// Pod CIDRs (one or more; IPv4 and/or IPv6).
    pub cluster_cidrs: Vec<Cidr>,
    /// Service CIDRs (one or more; IPv4 and/or IPv6).
    pub service_cidrs: Vec<Cidr>,
    /// Global CIDRs, when the clusterset uses globalnet for overlapping CIDRs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub global_cidrs: Vec<Cidr>,
    /// The CNI `join` detected in the cluster (from its own objects), which
    /// chooses the route agent's node plumbing; absent: the generic one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_plugin: Option<NetworkPlugin>,
}

/// A CNI whose objects `join` recognises and whose node plumbing the route
/// agent knows (Submariner's `networkPlugin`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum NetworkPlugin {
    /// Any CNI ferry has no handler for: routes through `vx-ferry`, the
    /// node's source from its podCIDR or a CNI interface inside it.
    #[default]
    Generic,
    /// kube-ovn: nodes reach pods through `ovn0`, whose address lies in the
    /// `join` subnet.
    KubeOvn,
    /// Calico: remote CIDRs need IPPools (`natOutgoing: false`, `disabled: true`).
    Calico,
    /// flannel: the generic plumbing.
    Flannel,
}

impl NetworkPlugin {
    /// Every plugin, in a stable order.
    pub const ALL: [NetworkPlugin; 4] = [
        NetworkPlugin::Generic,
        NetworkPlugin::KubeOvn,
        NetworkPlugin::Calico,
        NetworkPlugin::Flannel,
    ];

    /// The serialized name.
    pub fn as_str(&self) -> &'static str {
        match self {
            NetworkPlugin::Generic => "generic",
            NetworkPlugin::KubeOvn => "kube-ovn",
            NetworkPlugin::Calico => "calico",
            NetworkPlugin::Flannel => "flannel",
        }
    }
}

impl fmt::Display for NetworkPlugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for NetworkPlugin {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        NetworkPlugin::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| Error::UnknownNetworkPlugin(s.to_string()))
    }
}

/// Keys of [`EndpointSpec::backend_config`].
pub mod backend_config {
    /// The gateway's WireGuard public key, base64 (never the private key).
    pub const PUBLIC_KEY: &str = "publicKey";
    /// UDP port the cable listens on.
    pub const PORT: &str = "port";
    /// MTU of the cable interface.
    pub const MTU: &str = "mtu";
    /// UDP port of the gateway's health checker.
    pub const HEALTH_CHECK_PORT: &str = "healthCheckPort";
    /// MAC address of the gateway's VXLAN cable interface (vxlan driver).
    pub const VTEP_MAC: &str = "vtepMac";
    /// `"false"` when the cluster joined with `--natt=false` (Submariner's
    /// `nat_enabled`): NAT traversal is off, its gateways expect to be reached
    /// at their private IP.
    pub const NAT_ENABLED: &str = "natEnabled";
    /// `"true"` when the cluster joined with `--preferred-server`: with NAT on
    /// both sides, this gateway waits to be contacted (the responder).
    pub const PREFERRED_SERVER: &str = "preferredServer";
    /// `"true"` when the cluster joined with `--force-udp-encaps`: encapsulate
    /// in UDP even where plain ESP would pass (IPsec; the WireGuard and VXLAN
    /// cables are always UDP).
    pub const FORCE_UDP_ENCAPS: &str = "forceUdpEncaps";
    /// With active-active gateways: the slot this gateway claims, which
    /// decides its partner in each remote cluster (see
    /// [`crate::gateway_pairs`]).
    pub const GATEWAY_SLOT: &str = "gatewaySlot";
}

/// How a gateway carries traffic to other clusters.
///
/// Its schema (hand-written below) lists `libreswan` besides the serialized
/// names, so objects written with Submariner's name pass the CRD's enum.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum CableDriver {
    /// Encrypted WireGuard tunnels (user space or kernel). The default.
    #[default]
    Wireguard,
    /// Unencrypted kernel VXLAN, for trusted networks.
    Vxlan,
    /// IKEv2 + ESP tunnels (ferry's user-space IPsec, UDP-encapsulated on the
    /// NAT-T port). `libreswan`, Submariner's name for its IPsec driver, is
    /// accepted as an alias when reading.
    #[serde(alias = "libreswan")]
    Ipsec,
}

impl CableDriver {
    /// Submariner's name for its IPsec driver, read as [`CableDriver::Ipsec`].
    pub const LIBRESWAN: &str = "libreswan";

    /// Every driver, in a stable order.
    pub const ALL: [CableDriver; 3] = [
        CableDriver::Wireguard,
        CableDriver::Vxlan,
        CableDriver::Ipsec,
    ];

    /// The serialized (lowercase) name.
    pub fn as_str(&self) -> &'static str {
        match self {
            CableDriver::Wireguard => "wireguard",
            CableDriver::Vxlan => "vxlan",
            CableDriver::Ipsec => "ipsec",
        }
    }
}

impl fmt::Display for CableDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CableDriver {
    type Err = Error;

    /// The serialized names, and `libreswan` for [`CableDriver::Ipsec`]
    /// (so a `subctl join --cable-driver libreswan` line works unchanged).
    fn from_str(s: &str) -> Result<Self, Error> {
        if s == Self::LIBRESWAN {
            return Ok(CableDriver::Ipsec);
        }
        CableDriver::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| Error::InvalidCableDriver(s.to_string()))
    }
}

impl JsonSchema for CableDriver {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "CableDriver".into()
    }

    /// A string enum of every driver's name plus [`CableDriver::LIBRESWAN`]: the derived
    /// schema would list only the serialized names, and an API server
    /// checking the CRD's enum would refuse a `cableDriver: libreswan` that
    /// serde reads fine.
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let mut names: Vec<&str> = CableDriver::ALL.iter().map(CableDriver::as_str).collect();
        names.push(CableDriver::LIBRESWAN);
        json_schema!({"type": "string", "enum": names})
    }
}

/// A cluster's active gateway, as remote gateways need it to open a cable.
/// Published by the active gateway.
// kube's repeated `printcolumn(type_ = …)` trips this lint.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[kube(
    group = "ferry.dev",
    version = "v1alpha1",
    kind = "Endpoint",
    namespaced,
    derive = "PartialEq",
    category = "ferry",
    doc = "A cluster's active gateway: addresses, subnets behind it and cable settings.",
    printcolumn(name = "CLUSTER", type_ = "string", json_path = ".spec.clusterId"),
    printcolumn(name = "DRIVER", type_ = "string", json_path = ".spec.cableDriver"),
    printcolumn(name = "PUBLIC-IP", type_ = "string", json_path = ".spec.publicIp"),
    printcolumn(name = "PRIVATE-IP", type_ = "string", json_path = ".spec.privateIp"),
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct EndpointSpec {
    /// Id of the cluster this gateway belongs to.
    pub cluster_id: String,
    /// Name of the gateway node.
    pub hostname: String,
    /// The cable driver this gateway speaks.
    pub cable_driver: CableDriver,
    /// Address remote gateways use when they do not share a network with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub public_ip: Option<IpAddr>,
    /// The gateway node's own address.
    #[schemars(with = "String")]
    pub private_ip: IpAddr,
    /// Every CIDR reachable through this gateway (cluster and service CIDRs).
    pub subnets: Vec<Cidr>,
    /// Driver settings such as `publicKey` (the WireGuard public key) and
    /// `port`; keys are in the `backend_config` module.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub backend_config: BTreeMap<String, String>,
    /// Address inside the cable that answers health checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub health_check_ip: Option<IpAddr>,
}

/// One gateway node of a cluster and, in its status, its cables.
// kube's repeated `printcolumn(type_ = …)` trips this lint.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[kube(
    group = "ferry.dev",
    version = "v1alpha1",
    kind = "Gateway",
    namespaced,
    derive = "PartialEq",
    category = "ferry",
    status = "GatewayStatus",
    doc = "A gateway node: its HA role and the state of its cable to every remote cluster.",
    printcolumn(name = "CLUSTER", type_ = "string", json_path = ".spec.clusterId"),
    printcolumn(name = "NODE", type_ = "string", json_path = ".spec.hostname"),
    printcolumn(name = "HA-STATUS", type_ = "string", json_path = ".status.haStatus"),
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct GatewaySpec {
    /// Id of the cluster this gateway belongs to.
    pub cluster_id: String,
    /// Name of the gateway node.
    pub hostname: String,
}

/// Observed state of a gateway.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayStatus {
    /// Whether this gateway holds the Lease and carries traffic.
    pub ha_status: HaStatus,
    /// Name of the `Endpoint` this gateway published, when active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_endpoint: Option<String>,
    /// Why the gateway as a whole is not working, if it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_failure: Option<String>,
    /// One entry per remote cluster's active gateway.
    #[serde(default)]
    pub connections: Vec<Connection>,
    /// Bytes the cable device carried (active gateways; absent until two
    /// samples were taken). Refreshed with the RTT figures, not on its own:
    /// it adds no API write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic: Option<CableTraffic>,
}

/// Bytes a gateway's cable device carried to and from every remote cluster
/// (inner packets, both ways), from the device's own counters.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CableTraffic {
    /// Bytes sent into the cable since the device came up.
    pub tx_bytes: u64,
    /// Bytes received from the cable since the device came up.
    pub rx_bytes: u64,
    /// Bytes both ways during the window that ended when this was sampled.
    pub window_bytes: u64,
    /// Length of that window in seconds (the status refresh period, ~30 s).
    pub window_seconds: u32,
}

/// A gateway's high-availability role.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum HaStatus {
    /// Holds the Lease, publishes the Endpoint and carries traffic.
    Active,
    /// Standing by.
    #[default]
    Passive,
}

/// The cable from this gateway to one remote gateway.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    /// Name of the remote `Endpoint`.
    pub endpoint: String,
    /// Id of the remote cluster.
    pub cluster_id: String,
    /// Cable driver in use for this connection.
    pub cable_driver: CableDriver,
    /// Where the cable stands.
    pub status: ConnectionStatus,
    /// Human-readable detail, e.g. why it is in error.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status_message: String,
    /// The remote address the cable uses (its private or public IP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub using_ip: Option<IpAddr>,
    /// Whether the cable goes through NAT (uses the remote public IP).
    #[serde(default)]
    pub using_nat: bool,
    /// Round-trip times measured by the health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_rtt: Option<LatencyRtt>,
    /// What NAT discovery (UDP 4490) found on the way to the remote gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nat_discovery: Option<NatDiscovery>,
}

/// The outcome of NAT discovery towards one remote gateway.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NatDiscovery {
    /// Which of the remote's addresses answered.
    pub result: NatDiscoveryResult,
    /// This gateway's address and port as the remote saw its probe (its
    /// mapping on a NAT, if there is one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub seen_as: Option<std::net::SocketAddr>,
    /// The address and port the remote's own probes arrive from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub remote_seen_from: Option<std::net::SocketAddr>,
    /// The remote's answer: our probe's source address was rewritten (this
    /// gateway is behind a NAT).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub src_ip_nat_detected: bool,
    /// The remote's answer: our probe's source port was rewritten.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub src_port_nat_detected: bool,
    /// The remote's answer: our probe was sent to an address that is not
    /// the remote's own (a NAT forwarded it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dst_ip_nat_detected: bool,
    /// One line saying what was found and what the cable does about it.
    pub message: String,
}

/// Which of a remote gateway's addresses answer NAT discovery.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum NatDiscoveryResult {
    /// Probes sent, no verdict yet.
    #[default]
    Probing,
    /// Its private IP answers: no NAT in between, cable to that address.
    PrivateIp,
    /// Its public IP answers: cable to that address.
    PublicIp,
    /// Neither answers, but its probes reach this gateway: it is behind a
    /// NAT and opens the cable from its side.
    InboundOnly,
    /// Neither answers and none of its probes arrive: UDP between the two
    /// gateways is blocked.
    Unreachable,
}

impl NatDiscoveryResult {
    /// The serialized name.
    pub fn as_str(&self) -> &'static str {
        match self {
            NatDiscoveryResult::Probing => "probing",
            NatDiscoveryResult::PrivateIp => "privateIp",
            NatDiscoveryResult::PublicIp => "publicIp",
            NatDiscoveryResult::InboundOnly => "inboundOnly",
            NatDiscoveryResult::Unreachable => "unreachable",
        }
    }
}

/// State of one cable.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConnectionStatus {
    /// Being set up, or not yet confirmed by a health check.
    #[default]
    Connecting,
    /// Up: health checks are answered.
    Connected,
    /// Down: see the status message.
    Error,
}

/// Round-trip time statistics over the recent health checks, as Go-style
/// duration strings (`"1.234ms"`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LatencyRtt {
    /// The most recent sample.
    pub last: kube::core::Duration,
    /// Smallest sample.
    pub min: kube::core::Duration,
    /// Mean.
    pub average: kube::core::Duration,
    /// Largest sample.
    pub max: kube::core::Duration,
    /// Standard deviation.
    pub std_dev: kube::core::Duration,
}

impl LatencyRtt {
    /// Statistics from `std` durations, in field order.
    pub fn new(
        last: std::time::Duration,
        min: std::time::Duration,
        average: std::time::Duration,
        max: std::time::Duration,
        std_dev: std::time::Duration,
    ) -> Self {
        Self {
            last: last.into(),
            min: min.into(),
            average: average.into(),
            max: max.into(),
            std_dev: std_dev.into(),
        }
    }
}

#[cfg(test)]
mod tests;
