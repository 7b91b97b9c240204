//! Label and annotation keys, well-known names and defaults shared by every
//! ferry component.

/// The cluster id of the cluster an object belongs to (or came from). The API
/// server's scoped tokens (`cluster:<id>`) may only write objects that carry
/// this label with their own id, and may never change it.
pub const CLUSTER: &str = "ferry.dev/cluster";

/// Node label that makes a node a gateway candidate; the value is
/// [`GATEWAY_ENABLED`].
pub const GATEWAY: &str = "ferry.dev/gateway";

/// The value of [`GATEWAY`] on gateway nodes.
pub const GATEWAY_ENABLED: &str = "true";

/// Node annotation (Submariner's `gateway.submariner.io/public-ip`): how the
/// gateway on this node finds the address other clusters reach it at — a
/// comma-separated list tried in order of `ipv4:ADDRESS`, `dns:NAME`
/// (its first IPv4 address) or `api:HOST[/PATH]` (an HTTPS service that
/// answers with the caller's address; skipped with `--air-gapped`).
pub const PUBLIC_IP_ANNOTATION: &str = "gateway.ferry.dev/public-ip";

/// Node annotation (Submariner's `gateway.submariner.io/udp-port`): the UDP
/// port of the cable on this node, instead of the cluster's `--nattport`.
pub const UDP_PORT_ANNOTATION: &str = "gateway.ferry.dev/udp-port";

/// ServiceAccount label on a broker: the ServiceAccount whose tokens stand
/// for the joiner identity (value `true`); only an admin may request them.
pub const JOINER: &str = "ferry.dev/joiner";

/// MCS label on EndpointSlices of an imported service: the service's name.
pub const SERVICE_NAME: &str = "multicluster.kubernetes.io/service-name";

/// MCS label on EndpointSlices of an imported service: the id of the cluster
/// whose endpoints the slice holds.
pub const SOURCE_CLUSTER: &str = "multicluster.kubernetes.io/source-cluster";

/// Standard EndpointSlice label naming the controller that manages a slice.
pub const MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";

/// ferry's value for [`MANAGED_BY`].
pub const MANAGED_BY_FERRY: &str = "agent.ferry.dev";

/// Generic `app.kubernetes.io/managed-by` label, set on everything ferry
/// creates so `ferry uninstall` can find it.
pub const APP_MANAGED_BY: &str = "app.kubernetes.io/managed-by";

/// ferry's value for [`APP_MANAGED_BY`].
pub const APP_MANAGED_BY_FERRY: &str = "ferry";

/// Standard `app.kubernetes.io/name` label: which application an object
/// belongs to (each ferry component, and the test pods, by its own name).
pub const APP_NAME: &str = "app.kubernetes.io/name";

/// Standard `app.kubernetes.io/part-of` label; on everything ferry deploys
/// its value is [`APP_PART_OF_FERRY`].
pub const APP_PART_OF: &str = "app.kubernetes.io/part-of";

/// ferry's value for [`APP_PART_OF`].
pub const APP_PART_OF_FERRY: &str = "ferry";

/// On a copy of an object (on the broker or in another cluster): the name of
/// the object it was copied from.
pub const ORIGIN_NAME: &str = "ferry.dev/origin-name";

/// On a copy of an object: the namespace of the object it was copied from.
pub const ORIGIN_NAMESPACE: &str = "ferry.dev/origin-namespace";

/// Name of the KEP-2149 `ClusterProperty` holding this cluster's id.
pub const CLUSTER_ID_PROPERTY: &str = "cluster.clusterset.k8s.io";

/// Name of the KEP-2149 `ClusterProperty` holding the clusterset's name.
pub const CLUSTERSET_PROPERTY: &str = "clusterset.k8s.io";

/// Default namespace of the broker, holding every cluster's published objects.
pub const BROKER_NAMESPACE: &str = "ferry-broker";

/// Default namespace of ferry's components inside each member cluster.
pub const SYSTEM_NAMESPACE: &str = "ferry-system";

/// Default DNS zone of the clusterset (MCS DNS specification).
pub const CLUSTERSET_DOMAIN: &str = "clusterset.local";

/// Annotation the route agent puts on its Node: the address inside this
/// cluster's pod CIDRs that the node's host-network traffic to other
/// clusters leaves from, and at which other clusters reach the node
/// (Submariner's `submariner.io/cniIfaceIp`). Absent when the node has none.
pub const CNI_IFACE_IP: &str = "ferry.dev/cni-iface-ip";

/// Annotation on a `ServiceExport`: `"false"` exports the service without a
/// clusterset IP (importing clusters answer with an exporting cluster's own
/// service IP, as Submariner does by default); `"true"` or absent: with one,
/// when the clusterset has a clusterset-IP range. Also carried on the
/// cluster's ServiceImport on the broker.
pub const CLUSTERSET_IP: &str = "ferry.dev/clusterset-ip";

/// Annotation on a `ServiceExport` of a Globalnet cluster: the service's
/// global ingress IP (its `GlobalIngressIP`'s `status.allocatedIP`), which
/// the export carries instead of the cluster IP. Written by the agent.
pub const GLOBAL_IP: &str = "ferry.dev/global-ip";

/// Annotation on a `ServiceExport` of a headless Service in a Globalnet
/// cluster: a JSON object from each ready pod's IP to its global ingress
/// IP (its `GlobalIngressIP` `pod-NAME`, `target: HeadlessServicePod`); the
/// export's EndpointSlice carries the global IPs. Written by the agent.
pub const GLOBAL_POD_IPS: &str = "ferry.dev/global-pod-ips";
