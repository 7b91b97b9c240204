//! The cluster DNS: answers A queries for `<svc>.<ns>.svc.cluster.local`
//! (the ClusterIP, or the ready endpoints of headless services) and
//! `<hostname>.<svc>.<ns>.svc.cluster.local`, forwards `clusterset.local` to
//! a configured upstream, and refuses everything else (nothing leaves the
//! host). A small responder over UDP and TCP; messages are parsed and built
//! with hickory-proto.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record, RecordType};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

use crate::Result;

const TTL: u32 = 5;

/// What to do with a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Found(Vec<Ipv4Addr>),
    NxDomain,
    Forward,
    Refused,
}

/// A parsed query and its (first) question.
#[derive(Debug, Clone, PartialEq)]
pub struct Question {
    /// The whole query.
    pub message: Message,
    /// The question's name, lower case, without the trailing dot.
    pub name: String,
    /// The question's type.
    pub qtype: RecordType,
}

/// Parses a query; None if malformed or without a question.
pub fn parse_query(q: &[u8]) -> Option<Question> {
    let message = Message::from_vec(q).ok()?;
    let first = message.queries.first()?;
    let name = first.name().to_lowercase().to_ascii();
    let qtype = first.query_type();
    Some(Question {
        name: name.trim_end_matches('.').to_string(),
        qtype,
        message,
    })
}

/// Builds the response to `q`: its id, opcode and RD echoed, authoritative,
/// recursion available, the first question, and `answers` as A records.
pub fn build_response(q: &Question, rcode: ResponseCode, answers: &[Ipv4Addr]) -> Option<Vec<u8>> {
    let request = &q.message.metadata;
    let mut r = Message::response(request.id, request.op_code);
    r.metadata.authoritative = true;
    r.metadata.recursion_desired = request.recursion_desired;
    r.metadata.recursion_available = true;
    r.metadata.response_code = rcode;
    let question = q.message.queries.first()?;
    r.add_query(question.clone());
    for ip in answers {
        r.add_answer(Record::from_rdata(
            question.name().clone(),
            TTL,
            RData::A(A(*ip)),
        ));
    }
    r.to_vec().ok()
}

/// Looks a name up in the services and EndpointSlices.
pub fn lookup(name: &str, services: &[Arc<Service>], slices: &[Arc<EndpointSlice>]) -> Lookup {
    let name = name.trim_end_matches('.');
    if name == "clusterset.local" || name.ends_with(".clusterset.local") {
        return Lookup::Forward;
    }
    let Some(rest) = name.strip_suffix(".svc.cluster.local") else {
        return if name == "cluster.local" || name.ends_with(".cluster.local") {
            Lookup::NxDomain
        } else {
            Lookup::Refused
        };
    };
    let parts: Vec<&str> = rest.split('.').collect();
    let (host, svc, ns) = match parts.as_slice() {
        [svc, ns] => (None, *svc, *ns),
        [host, svc, ns] => (Some(*host), *svc, *ns),
        _ => return Lookup::NxDomain,
    };
    let Some(service) = services.iter().find(|s| {
        s.metadata.name.as_deref() == Some(svc) && s.metadata.namespace.as_deref() == Some(ns)
    }) else {
        return Lookup::NxDomain;
    };
    let spec = service.spec.clone().unwrap_or_default();
    let cluster_ip = spec.cluster_ip.unwrap_or_default();
    let headless = cluster_ip == "None";
    if host.is_none() && !headless {
        return match cluster_ip.parse() {
            Ok(ip) => Lookup::Found(vec![ip]),
            Err(_) => Lookup::NxDomain,
        };
    }
    let mut ips = Vec::new();
    for slice in slices.iter().filter(|s| {
        s.metadata.namespace.as_deref() == Some(ns)
            && s.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("kubernetes.io/service-name"))
                .map(String::as_str)
                == Some(svc)
    }) {
        for ep in &slice.endpoints {
            let ready = ep.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
            if !ready || (host.is_some() && ep.hostname.as_deref() != host) {
                continue;
            }
            ips.extend(
                ep.addresses
                    .iter()
                    .filter_map(|a| a.parse::<Ipv4Addr>().ok()),
            );
        }
    }
    ips.sort();
    ips.dedup();
    if ips.is_empty() && host.is_some() {
        Lookup::NxDomain
    } else {
        Lookup::Found(ips)
    }
}

/// Where `clusterset.local` queries go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// A fixed address (any address reachable from node 0: pod, ClusterIP, WAN).
    Addr(SocketAddr),
    /// A Service of the cluster, by its ClusterIP, looked up per query.
    Service {
        namespace: String,
        name: String,
        port: u16,
    },
}

/// The default upstream: ferry's own MCS DNS, once deployed.
pub const DEFAULT_UPSTREAM: &str = "ferry-system/ferry-dns:53";

impl Upstream {
    /// Parses `IP:PORT` or `NAMESPACE/SERVICE[:PORT]` (port 53 by default).
    pub fn parse(s: &str) -> crate::Result<Upstream> {
        if let Ok(a) = s.parse::<SocketAddr>() {
            return Ok(Upstream::Addr(a));
        }
        let bad = || {
            crate::Error::Invalid(format!(
                "bad DNS upstream {s:?}: use IP:PORT or NAMESPACE/SERVICE[:PORT]"
            ))
        };
        let (svc, port) = match s.rsplit_once(':') {
            Some((svc, p)) => (svc, p.parse().map_err(|_| bad())?),
            None => (s, 53),
        };
        let (namespace, name) = svc.split_once('/').ok_or_else(bad)?;
        if namespace.is_empty() || name.is_empty() {
            return Err(bad());
        }
        Ok(Upstream::Service {
            namespace: namespace.into(),
            name: name.into(),
            port,
        })
    }
}

/// The DNS server of one cluster.
#[derive(Clone)]
pub struct Dns {
    pub services: Store<Service>,
    pub slices: Store<EndpointSlice>,
    pub upstream: Option<Upstream>,
    /// Forwarded queries leave from this network namespace (a node's), so
    /// ClusterIPs and pod IPs are reachable; None: the current one.
    pub forward_netns: Option<String>,
}

/// A UDP socket created inside `netns` (it stays there when used from any
/// thread), on a thread of its own since setns is per thread.
fn udp_socket_in(netns: Option<String>) -> Option<std::net::UdpSocket> {
    std::thread::spawn(move || {
        if let Some(ns) = netns {
            let f = std::fs::File::open(format!("/run/netns/{ns}")).ok()?;
            nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).ok()?;
        }
        let s = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
        s.set_nonblocking(true).ok()?;
        Some(s)
    })
    .join()
    .ok()
    .flatten()
}

impl Dns {
    /// Answers one query (None: drop it).
    pub async fn answer(&self, query: &[u8]) -> Option<Vec<u8>> {
        let q = parse_query(query)?;
        match lookup(&q.name, &self.services.state(), &self.slices.state()) {
            Lookup::Found(ips) => {
                let ips = if q.qtype == RecordType::A {
                    ips
                } else {
                    Vec::new()
                };
                build_response(&q, ResponseCode::NoError, &ips)
            }
            Lookup::NxDomain => build_response(&q, ResponseCode::NXDomain, &[]),
            Lookup::Refused => build_response(&q, ResponseCode::Refused, &[]),
            Lookup::Forward => match self.forward(query).await {
                Some(r) => Some(r),
                None => build_response(&q, ResponseCode::ServFail, &[]),
            },
        }
    }

    fn upstream_addr(&self) -> Option<SocketAddr> {
        match self.upstream.as_ref()? {
            Upstream::Addr(a) => Some(*a),
            Upstream::Service {
                namespace,
                name,
                port,
            } => {
                let svc = self.services.state().into_iter().find(|s| {
                    s.metadata.namespace.as_deref() == Some(namespace)
                        && s.metadata.name.as_deref() == Some(name)
                })?;
                let ip: Ipv4Addr = svc.spec.as_ref()?.cluster_ip.as_ref()?.parse().ok()?;
                Some(SocketAddr::from((ip, *port)))
            }
        }
    }

    async fn forward(&self, query: &[u8]) -> Option<Vec<u8>> {
        let up = self.upstream_addr()?;
        let netns = self.forward_netns.clone();
        let std_sock = tokio::task::spawn_blocking(move || udp_socket_in(netns))
            .await
            .ok()??;
        let sock = UdpSocket::from_std(std_sock).ok()?;
        sock.send_to(query, up).await.ok()?;
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(2), sock.recv(&mut buf))
            .await
            .ok()?
            .ok()?;
        buf.truncate(n);
        Some(buf)
    }

    /// Serves UDP and TCP on `addr` until the task is dropped.
    pub async fn serve(self, addr: SocketAddr) -> Result<()> {
        let udp = Arc::new(
            UdpSocket::bind(addr)
                .await
                .map_err(|e| crate::Error::io("binding DNS (udp) on", addr.to_string(), e))?,
        );
        let tcp = TcpListener::bind(addr)
            .await
            .map_err(|e| crate::Error::io("binding DNS (tcp) on", addr.to_string(), e))?;
        let this = self.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = tcp.accept().await {
                let this = this.clone();
                tokio::spawn(async move {
                    loop {
                        let mut len = [0u8; 2];
                        if conn.read_exact(&mut len).await.is_err() {
                            return;
                        }
                        let mut q = vec![0u8; usize::from(u16::from_be_bytes(len))];
                        if conn.read_exact(&mut q).await.is_err() {
                            return;
                        }
                        let Some(r) = this.answer(&q).await else {
                            return;
                        };
                        let mut out = (r.len() as u16).to_be_bytes().to_vec();
                        out.extend_from_slice(&r);
                        if conn.write_all(&out).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, peer)) = udp.recv_from(&mut buf).await else {
                continue;
            };
            let q = buf[..n].to_vec();
            let this = self.clone();
            let udp = udp.clone();
            tokio::spawn(async move {
                if let Some(r) = this.answer(&q).await {
                    let _ = udp.send_to(&r, peer).await;
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in name.split('.') {
            q.push(l.len() as u8);
            q.extend_from_slice(l.as_bytes());
        }
        q.extend_from_slice(&[0, 0, 1, 0, 1]);
        q
    }

    fn svc(ns: &str, name: &str, ip: &str) -> Arc<Service> {
        Arc::new(
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "namespace": ns},
                "spec": {"clusterIP": ip}
            }))
            .unwrap(),
        )
    }

    #[test]
    fn parse_and_answer() {
        let q = query("Nginx.nginx-test.svc.cluster.local");
        let p = parse_query(&q).unwrap();
        assert_eq!(p.name, "nginx.nginx-test.svc.cluster.local");
        assert_eq!(p.qtype, RecordType::A);
        let r =
            build_response(&p, ResponseCode::NoError, &[Ipv4Addr::new(100, 96, 0, 10)]).unwrap();
        assert_eq!(&r[0..2], &[0x12, 0x34]);
        assert_eq!(u16::from_be_bytes([r[6], r[7]]), 1);
        assert_eq!(&r[r.len() - 4..], &[100, 96, 0, 10]);
    }

    #[tokio::test]
    async fn forwards_clusterset_local_only() {
        let upstream = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let up_addr = upstream.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            let (n, peer) = upstream.recv_from(&mut buf).await.unwrap();
            let q = parse_query(&buf[..n]).unwrap();
            let r =
                build_response(&q, ResponseCode::NoError, &[Ipv4Addr::new(100, 70, 0, 9)]).unwrap();
            upstream.send_to(&r, peer).await.unwrap();
        });
        let dns = Dns {
            services: kube::runtime::reflector::store().0,
            slices: kube::runtime::reflector::store().0,
            upstream: Some(Upstream::Addr(up_addr)),
            forward_netns: None,
        };
        let r = dns
            .answer(&query("web.a.svc.clusterset.local"))
            .await
            .unwrap();
        assert_eq!(&r[r.len() - 4..], &[100, 70, 0, 9]);
        // Outside our zones: REFUSED, never forwarded.
        let r = dns.answer(&query("example.com")).await.unwrap();
        assert_eq!(r[3] & 0xf, 5);
        // Unknown cluster.local names: NXDOMAIN.
        let r = dns
            .answer(&query("nope.a.svc.cluster.local"))
            .await
            .unwrap();
        assert_eq!(r[3] & 0xf, 3);
    }

    #[test]
    fn upstream_parse() {
        assert_eq!(
            Upstream::parse("100.96.0.10:53").unwrap(),
            Upstream::Addr("100.96.0.10:53".parse().unwrap())
        );
        assert_eq!(
            Upstream::parse(DEFAULT_UPSTREAM).unwrap(),
            Upstream::Service {
                namespace: "ferry-system".into(),
                name: "ferry-dns".into(),
                port: 53
            }
        );
        assert!(Upstream::parse("nonsense").is_err());
    }

    #[test]
    fn lookups() {
        let services = vec![svc("a", "web", "100.96.0.10"), svc("a", "db", "None")];
        let slices: Vec<Arc<EndpointSlice>> = vec![Arc::new(
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "db-x", "namespace": "a",
                  "labels": {"kubernetes.io/service-name": "db"}},
                "addressType": "IPv4",
                "endpoints": [
                  {"addresses": ["100.64.0.3"], "hostname": "db-0", "conditions": {"ready": true}},
                  {"addresses": ["100.64.1.3"], "conditions": {"ready": false}}
                ]
            }))
            .unwrap(),
        )];
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert_eq!(
            lookup("web.a.svc.cluster.local", &services, &slices),
            Lookup::Found(vec![ip("100.96.0.10")])
        );
        assert_eq!(
            lookup("db.a.svc.cluster.local", &services, &slices),
            Lookup::Found(vec![ip("100.64.0.3")])
        );
        assert_eq!(
            lookup("db-0.db.a.svc.cluster.local", &services, &slices),
            Lookup::Found(vec![ip("100.64.0.3")])
        );
        assert_eq!(
            lookup("x.a.svc.cluster.local", &services, &slices),
            Lookup::NxDomain
        );
        assert_eq!(
            lookup("web.a.svc.clusterset.local", &services, &slices),
            Lookup::Forward
        );
        assert_eq!(lookup("example.com", &services, &slices), Lookup::Refused);
    }
}
