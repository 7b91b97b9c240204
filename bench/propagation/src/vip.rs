//! ClusterSet IP latency: the time from a new `ServiceExport` in cluster
//! `a` to a routed, answering ClusterSet IP in cluster `b`:
//! - routed: `b`'s ServiceImport has an IP, the derived Service `b`'s API
//!   server allocated has that ClusterIP, and the import's EndpointSlice
//!   is labelled for the derived Service with `a`'s endpoint ready — all a
//!   service proxy (kube-proxy, or the sandbox's) needs to route it;
//! - answering: `ferry dns` (in this process, its reflectors on `b`'s API)
//!   answers `<svc>.bench.svc.clusterset.local A` with that IP.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_dns::metrics::Metrics;
use ferry_dns::{Answerer, AnswererConfig, DnsServer, ServerConfig};
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use kube::Client;
use tokio::net::UdpSocket;

use crate::NS;
use crate::clusterset::{create_export, create_service};
use crate::watch::{self, ImportSeen, Latest, SliceSeen};

/// `ferry dns` serving cluster `b`'s zone on loopback.
struct Dns {
    server: DnsServer,
    feed: tokio::task::JoinHandle<()>,
    socket: UdpSocket,
    next_id: u16,
}

impl Dns {
    async fn start(b: Client) -> anyhow::Result<Dns> {
        let metrics = Arc::new(Metrics::new());
        let answerer = Arc::new(Answerer::new(AnswererConfig::default())?);
        let mut config = ServerConfig::new("127.0.0.1:0".parse()?);
        config.udp_workers = 1;
        let server = DnsServer::start(config, answerer.clone(), metrics.clone()).await?;
        let feed = tokio::spawn(async move {
            if let Err(e) = ferry_dns::reflector::run(b, answerer, metrics, Some("b".into())).await
            {
                tracing::warn!(error = %e, "dns reflectors stopped");
            }
        });
        let socket = UdpSocket::bind("127.0.0.1:0").await?;
        socket.connect(server.local_addr()).await?;
        Ok(Dns {
            server,
            feed,
            socket,
            next_id: 1,
        })
    }

    /// The A records `name` resolves to now (empty: none, or no answer
    /// within 100 ms).
    async fn resolve(&mut self, name: &str) -> anyhow::Result<Vec<String>> {
        self.next_id = self.next_id.wrapping_add(1);
        let mut query = Message::new(self.next_id, MessageType::Query, OpCode::Query);
        query.add_query(Query::query(Name::from_ascii(name)?, RecordType::A));
        self.socket.send(&query.to_vec()?).await?;
        let mut buf = [0u8; 1500];
        let Ok(got) =
            tokio::time::timeout(Duration::from_millis(100), self.socket.recv(&mut buf)).await
        else {
            return Ok(Vec::new());
        };
        let answer = Message::from_vec(buf.get(..got?).unwrap_or_default())?;
        Ok(answer
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(a.0.to_string()),
                _ => None,
            })
            .collect())
    }

    fn addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    async fn stop(self) {
        self.feed.abort();
        let _ = self.feed.await;
        self.server.shutdown().await;
    }
}

/// What `b` holds of one service, from the benchmark's watches.
pub struct Seen {
    pub imports: Latest<ImportSeen>,
    pub services: Latest<Option<String>>,
    pub slices: Latest<SliceSeen>,
}

impl Seen {
    /// The ClusterSet IP of `svc` once it is routed in `b` (see the module
    /// doc), else `None`.
    fn routed(&self, svc: &str) -> Option<String> {
        let ((_, ip), _) = watch::get(&self.imports, svc)?;
        let ip = ip?;
        let derived = ferry_agent::vips::derived_service_name(NS, svc);
        let (cluster_ip, _) = watch::get(&self.services, &derived)?;
        let ((ready, proxied), _) = watch::get(&self.slices, &format!("{svc}-a"))?;
        (cluster_ip.as_deref() == Some(ip.as_str()) && ready && proxied == Some(derived))
            .then_some(ip)
    }
}

/// Exports `samples` new services from `a` one at a time (numbered from
/// `first`), timing each until `b` routes and answers its ClusterSet IP.
pub async fn latencies(
    a: &Client,
    b: &Client,
    seen: &Seen,
    first: usize,
    samples: usize,
) -> anyhow::Result<Vec<Duration>> {
    let mut dns = Dns::start(b.clone()).await?;
    eprintln!("ferry dns for b on {}", dns.addr());
    let mut lat = Vec::with_capacity(samples);
    for k in 0..samples {
        let svc = format!("vip-{k}");
        create_service(a, &svc, first + k, false).await?;
        let t0 = Instant::now();
        create_export(a, &svc).await?;
        let fqdn = format!("{svc}.{NS}.svc.clusterset.local");
        let deadline = t0 + Duration::from_secs(30);
        loop {
            if let Some(ip) = seen.routed(&svc)
                && dns.resolve(&fqdn).await? == [ip]
            {
                lat.push(t0.elapsed());
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{svc}'s ClusterSet IP was not routed and answered in b within 30 s"
            );
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }
    dns.stop().await;
    Ok(lat)
}

/// How many of `svc-0` … `svc-<n-1>` have their ClusterSet IP routed in `b`.
pub fn count_routed(seen: &Seen, n: usize) -> usize {
    (0..n)
        .filter(|i| seen.routed(&format!("svc-{i}")).is_some())
        .count()
}
