//! The zone data model and the answer choice: which clusters a service name
//! resolves to, given readiness, gateway connection health and RTT.
//!
//! Everything here is pure: no I/O, no clocks. The reflectors build a
//! [`ZoneData`] snapshot; the server reads it.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::Error;

/// How to choose among the clusters that export a service.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Policy {
    /// The local cluster when it has ready endpoints, otherwise the
    /// lowest-RTT connected clusters (round-robin within the tolerance band).
    #[default]
    LocalFirst,
    /// Every eligible cluster in turn.
    RoundRobin,
    /// The lowest-RTT eligible clusters (the local cluster counts as RTT 0),
    /// round-robin within the tolerance band.
    LowestLatency,
}

impl FromStr for Policy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "local-first" => Ok(Self::LocalFirst),
            "round-robin" => Ok(Self::RoundRobin),
            "lowest-latency" => Ok(Self::LowestLatency),
            other => Err(Error::InvalidPolicy(other.to_string())),
        }
    }
}

impl Policy {
    /// The policy's name, as `--policy` takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LocalFirst => "local-first",
            Self::RoundRobin => "round-robin",
            Self::LowestLatency => "lowest-latency",
        }
    }
}

impl std::fmt::Display for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// ClusterSetIP or headless, as on the ServiceImport.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ServiceKind {
    /// Answers with the clusterset IPs (or the chosen cluster's service IP).
    #[default]
    ClusterSetIp,
    /// Answers with the ready endpoints' own addresses.
    Headless,
}

/// A named port of a service (SRV records).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Port {
    /// Port name, lower case.
    pub name: String,
    /// Protocol, lower case (`tcp`, `udp`, `sctp`).
    pub protocol: String,
    /// Port number.
    pub port: u16,
}

/// One endpoint of one cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointAddr {
    /// The address.
    pub ip: IpAddr,
    /// The DNS label of this endpoint (its hostname, or the dashed IP).
    pub hostname: String,
    /// Ready to receive traffic.
    pub ready: bool,
}

impl EndpointAddr {
    /// An endpoint named by `hostname`, or by its dashed address when there is none.
    pub fn new(ip: IpAddr, hostname: Option<&str>, ready: bool) -> Self {
        let hostname = match hostname {
            Some(h) if !h.is_empty() => h.to_ascii_lowercase(),
            _ => dashed(ip),
        };
        Self {
            ip,
            hostname,
            ready,
        }
    }
}

/// `10.0.0.1` → `10-0-0-1`; `fd00::1` → `fd00--1`.
pub fn dashed(ip: IpAddr) -> String {
    ip.to_string().replace(['.', ':'], "-")
}

/// A service as the DNS sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Service {
    /// ClusterSetIP or headless.
    pub kind: ServiceKind,
    /// Clusterset IPs from the ServiceImport (may be empty).
    pub ips: Vec<IpAddr>,
    /// Named ports (unnamed ports have no SRV records).
    pub ports: Vec<Port>,
    /// Endpoints by cluster id (from the MCS EndpointSlices).
    pub clusters: BTreeMap<String, Vec<EndpointAddr>>,
}

impl Service {
    /// Whether `cluster` has at least one ready endpoint.
    pub fn has_ready(&self, cluster: &str) -> bool {
        self.clusters
            .get(cluster)
            .is_some_and(|eps| eps.iter().any(|e| e.ready))
    }
}

/// The state of the gateway connection to a remote cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    /// The connection is `connected`.
    pub connected: bool,
    /// Average RTT, when measured.
    pub rtt: Option<Duration>,
}

/// Everything the server answers from: one immutable snapshot.
#[derive(Clone, Debug, Default)]
pub struct ZoneData {
    /// Services by namespace, then name (lower case).
    pub services: HashMap<String, HashMap<String, Arc<Service>>>,
    /// Gateway connections by remote cluster id.
    pub links: HashMap<String, Link>,
    /// This cluster's id, if known.
    pub local_cluster: Option<String>,
}

impl ZoneData {
    /// Adds (or replaces) a service.
    pub fn insert(&mut self, namespace: &str, name: &str, service: Service) {
        self.services
            .entry(namespace.to_ascii_lowercase())
            .or_default()
            .insert(name.to_ascii_lowercase(), Arc::new(service));
    }

    /// Looks a service up (names in lower case).
    pub fn service(&self, namespace: &str, name: &str) -> Option<&Arc<Service>> {
        self.services.get(namespace)?.get(name)
    }

    /// Whether `cluster` may be answered for `svc`: it has ready endpoints
    /// and is either the local cluster or reached by a connected gateway
    /// connection.
    pub fn eligible(&self, svc: &Service, cluster: &str) -> bool {
        svc.has_ready(cluster)
            && (self.local_cluster.as_deref() == Some(cluster)
                || self.links.get(cluster).is_some_and(|l| l.connected))
    }

    /// What `ip` is, for its PTR record: the labels below `svc.<zone>`
    /// of the name it belongs to — `[<hostname>, <clusterid>, <svc>, <ns>]`
    /// for a ready endpoint of a headless service in an eligible cluster,
    /// `[<svc>, <ns>]` for a ClusterSet IP. `None`: not an address this
    /// zone answers for. An address found twice (it should not be) gives
    /// the first name in (namespace, service, cluster) order.
    pub fn ptr_labels(&self, ip: IpAddr) -> Option<Vec<&str>> {
        let mut found: Vec<Vec<&str>> = Vec::new();
        for (ns, services) in &self.services {
            for (name, svc) in services {
                match svc.kind {
                    ServiceKind::ClusterSetIp if svc.ips.contains(&ip) => {
                        found.push(vec![name.as_str(), ns.as_str()]);
                    }
                    ServiceKind::ClusterSetIp => {}
                    ServiceKind::Headless => {
                        for (cluster, eps) in &svc.clusters {
                            let ep = eps.iter().find(|e| e.ready && e.ip == ip);
                            if let Some(e) = ep.filter(|_| self.eligible(svc, cluster)) {
                                found.push(vec![
                                    e.hostname.as_str(),
                                    cluster.as_str(),
                                    name.as_str(),
                                    ns.as_str(),
                                ]);
                            }
                        }
                    }
                }
            }
        }
        found
            .into_iter()
            .min_by(|a, b| a.iter().rev().cmp(b.iter().rev()))
    }

    /// Eligible clusters of `svc`, local first, then by RTT (unmeasured
    /// last), then by id.
    pub fn eligible_clusters<'a>(&'a self, svc: &'a Service) -> Vec<&'a str> {
        let mut out: Vec<&str> = svc
            .clusters
            .keys()
            .map(String::as_str)
            .filter(|c| self.eligible(svc, c))
            .collect();
        out.sort_by_key(|c| (self.rtt_key(c), *c));
        out
    }

    fn rtt_key(&self, cluster: &str) -> Duration {
        if self.local_cluster.as_deref() == Some(cluster) {
            return Duration::ZERO;
        }
        self.links
            .get(cluster)
            .and_then(|l| l.rtt)
            .unwrap_or(Duration::MAX)
    }

    /// The clusters to answer with for `svc` under `policy`; `turn` is a
    /// rotating counter for round-robin. Returns at most one cluster, except
    /// that an empty result means no cluster is eligible.
    pub fn choose<'a>(&'a self, svc: &'a Service, policy: Policy, turn: u64) -> Option<&'a str> {
        self.choose_among(svc, policy, turn).map(|(c, _)| c)
    }

    /// [`ZoneData::choose`], also telling whether there was more than one
    /// candidate (the answer then rotates and must not be cached).
    pub fn choose_among<'a>(
        &'a self,
        svc: &'a Service,
        policy: Policy,
        turn: u64,
    ) -> Option<(&'a str, bool)> {
        let eligible = self.eligible_clusters(svc);
        if eligible.is_empty() {
            return None;
        }
        let local = self.local_cluster.as_deref();
        let pool: Vec<&str> = match policy {
            Policy::RoundRobin => eligible,
            Policy::LocalFirst => {
                if let Some(l) = local.filter(|l| eligible.contains(l)) {
                    return Some((l, false));
                }
                self.band(&eligible)
            }
            Policy::LowestLatency => self.band(&eligible),
        };
        // `pool` is never empty: `eligible` is not, and `band` keeps the first.
        let i = (turn % pool.len().max(1) as u64) as usize;
        pool.get(i).map(|c| (*c, pool.len() > 1))
    }

    /// The clusters whose RTT is within [`tolerance`] of the best one
    /// (`sorted` is sorted by RTT).
    fn band<'a>(&self, sorted: &[&'a str]) -> Vec<&'a str> {
        let Some(first) = sorted.first() else {
            return Vec::new();
        };
        let best = self.rtt_key(first);
        let limit = best.saturating_add(tolerance(best));
        sorted
            .iter()
            .copied()
            .filter(|c| self.rtt_key(c) <= limit)
            .collect()
    }
}

/// How much slower than the best cluster a cluster may be and still share
/// its traffic: 20 % of the best RTT, at least 1 ms.
pub fn tolerance(best: Duration) -> Duration {
    (best / 5).max(Duration::from_millis(1))
}

/// A static zone description (JSON), for serving without Kubernetes:
/// tests, benchmarks, demos.
#[derive(Clone, Debug, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StaticZone {
    /// This cluster's id.
    #[serde(default)]
    pub local_cluster: Option<String>,
    /// Gateway connections by remote cluster id.
    #[serde(default)]
    pub links: BTreeMap<String, StaticLink>,
    /// The services.
    #[serde(default)]
    pub services: Vec<StaticService>,
}

/// A gateway connection in a [`StaticZone`].
#[derive(Clone, Debug, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StaticLink {
    /// `connected` (true) or anything else (false).
    pub connected: bool,
    /// Average RTT in milliseconds.
    #[serde(default)]
    pub rtt_ms: Option<f64>,
}

/// A service in a [`StaticZone`].
#[derive(Clone, Debug, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StaticService {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `true` for headless services.
    #[serde(default)]
    pub headless: bool,
    /// Clusterset IPs.
    #[serde(default)]
    pub ips: Vec<IpAddr>,
    /// Named ports: `name/protocol/port`, e.g. `http/TCP/80`.
    #[serde(default)]
    pub ports: Vec<String>,
    /// Endpoints by cluster: `ip`, `hostname@ip` or either with a `!` suffix
    /// for not ready.
    #[serde(default)]
    pub clusters: BTreeMap<String, Vec<String>>,
}

impl StaticZone {
    /// Parses the JSON form.
    pub fn from_json(text: &str) -> Result<Self, Error> {
        serde_json::from_str(text).map_err(|e| Error::StaticZone(e.to_string()))
    }

    /// The snapshot this describes.
    pub fn to_zone_data(&self) -> Result<ZoneData, Error> {
        let mut data = ZoneData {
            local_cluster: self.local_cluster.clone(),
            ..Default::default()
        };
        for (id, l) in &self.links {
            data.links.insert(
                id.clone(),
                Link {
                    connected: l.connected,
                    rtt: l
                        .rtt_ms
                        .map(|ms| Duration::from_secs_f64(ms.max(0.0) / 1000.0)),
                },
            );
        }
        let bad = |what: &str| Error::StaticZone(what.to_string());
        for s in &self.services {
            let mut svc = Service {
                kind: if s.headless {
                    ServiceKind::Headless
                } else {
                    ServiceKind::ClusterSetIp
                },
                ips: s.ips.clone(),
                ..Default::default()
            };
            for p in &s.ports {
                let mut it = p.split('/');
                let (Some(name), Some(proto), Some(port), None) =
                    (it.next(), it.next(), it.next(), it.next())
                else {
                    return Err(bad(p));
                };
                svc.ports.push(Port {
                    name: name.to_ascii_lowercase(),
                    protocol: proto.to_ascii_lowercase(),
                    port: port.parse().map_err(|_| bad(p))?,
                });
            }
            for (cluster, eps) in &s.clusters {
                let mut list = Vec::new();
                for e in eps {
                    let (e, ready) = match e.strip_suffix('!') {
                        Some(e) => (e, false),
                        None => (e.as_str(), true),
                    };
                    let (host, ip) = match e.split_once('@') {
                        Some((h, ip)) => (Some(h), ip),
                        None => (None, e),
                    };
                    list.push(EndpointAddr::new(
                        ip.parse().map_err(|_| bad(e))?,
                        host,
                        ready,
                    ));
                }
                svc.clusters.insert(cluster.clone(), list);
            }
            data.insert(&s.namespace, &s.name, svc);
        }
        Ok(data)
    }
}

#[cfg(test)]
mod tests;
