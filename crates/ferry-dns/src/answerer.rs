//! Query answering: from a parsed question to the records, and from a raw
//! packet to a raw response (the UDP fast path shares this with the hickory
//! [`RequestHandler`](crate::server::Handler)).

use std::cell::Cell;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use hickory_proto::op::{Edns, Message, MessageType, Metadata, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, NS, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType};

use crate::Error;
use crate::metrics::ChoiceCounters;
use crate::model::{Policy, Service, ServiceKind, ZoneData};

/// The MCS DNS specification version served at `dns-version.<zone>`.
pub const DNS_VERSION: &str = "1.0.0";

/// The UDP payload size we advertise and cap EDNS answers at (the DNS flag
/// day 2020 value: no fragmentation).
pub const EDNS_PAYLOAD: u16 = 1232;

/// Answering configuration.
#[derive(Clone, Debug)]
pub struct AnswererConfig {
    /// Zones we are authoritative for (the first is `clusterset.local` by default).
    pub zones: Vec<String>,
    /// TTL of every answer and of negative answers (SOA minimum).
    pub ttl: u32,
    /// Choice among exporting clusters.
    pub policy: Policy,
}

impl Default for AnswererConfig {
    fn default() -> Self {
        Self {
            zones: vec![ferry_api::labels::CLUSTERSET_DOMAIN.to_string()],
            ttl: 5,
            policy: Policy::LocalFirst,
        }
    }
}

struct Zone {
    name: LowerName,
    origin: Name,
    soa_mname: Name,
    soa_rname: Name,
    labels: usize,
}

/// The answerer: configuration plus the current [`ZoneData`]
/// snapshot, swapped atomically by the reflectors.
pub struct Answerer {
    zones: Vec<Zone>,
    ttl: u32,
    policy: Policy,
    data: RwLock<Arc<ZoneData>>,
    serial: AtomicU32,
    turn: AtomicU64,
    choices: ChoiceCounters,
}

impl std::fmt::Debug for Answerer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answerer")
            .field(
                "zones",
                &self
                    .zones
                    .iter()
                    .map(|z| z.origin.to_string())
                    .collect::<Vec<_>>(),
            )
            .field("ttl", &self.ttl)
            .field("policy", &self.policy)
            .finish()
    }
}

/// The answer to one question.
#[derive(Debug, Default)]
pub struct Lookup {
    /// Response code.
    pub rcode: ResponseCode,
    /// Whether we are authoritative (false only for REFUSED).
    pub authoritative: bool,
    /// Answer section.
    pub answers: Vec<Record>,
    /// Authority section (SOA on negative answers).
    pub authorities: Vec<Record>,
}

/// An encoded response and what the metrics need to know about it.
#[derive(Debug)]
pub struct Answered {
    /// The wire-format response.
    pub bytes: Vec<u8>,
    /// The question's type, if there was a question.
    pub qtype: Option<RecordType>,
    /// The response code sent.
    pub rcode: ResponseCode,
    /// The same request bytes (but the id) would get the same answer until
    /// the zone changes ([`Answerer::generation`]): no rotation was involved.
    pub cacheable: bool,
}

/// Where a name falls in our tree.
enum Node<'a> {
    Apex,
    DnsVersion,
    /// An empty non-terminal (`svc.<zone>`, `<ns>.svc.<zone>`, `_tcp.<svc>…`).
    Empty,
    Service(&'a Service, &'a str, &'a str),
    Port(&'a Service, &'a str, &'a str, &'a str, &'a str),
    Cluster(&'a Service, &'a str),
    Host(&'a Service, &'a str, &'a str),
}

impl Answerer {
    /// An answerer with the given configuration and no data.
    pub fn new(config: AnswererConfig) -> Result<Self, Error> {
        let mut zones = Vec::new();
        for z in &config.zones {
            let origin = Name::from_ascii(z)
                .map_err(|e| Error::InvalidZone(z.clone(), e.to_string()))?
                .to_lowercase();
            let mut origin = origin;
            origin.set_fqdn(true);
            let sub = |l: &str| {
                Name::from_ascii(l)
                    .and_then(|n| n.append_domain(&origin))
                    .map_err(|e| Error::InvalidZone(z.clone(), e.to_string()))
            };
            zones.push(Zone {
                name: LowerName::new(&origin),
                soa_mname: sub("ns.dns")?,
                soa_rname: sub("hostmaster")?,
                labels: origin.num_labels() as usize,
                origin,
            });
        }
        if zones.is_empty() {
            return Err(Error::InvalidZone(String::new(), "no zone".into()));
        }
        Ok(Self {
            zones,
            ttl: config.ttl,
            policy: config.policy,
            data: RwLock::new(Arc::new(ZoneData::default())),
            serial: AtomicU32::new(1),
            turn: AtomicU64::new(0),
            choices: ChoiceCounters::default(),
        })
    }

    /// Counts its choices among exporting clusters into `choices`
    /// ([`crate::metrics::Metrics::choice_counters`]).
    pub fn with_choice_counters(mut self, choices: ChoiceCounters) -> Self {
        self.choices = choices;
        self
    }

    /// Replaces the data answered from; the next query sees it.
    pub fn set_data(&self, data: ZoneData) {
        let data = Arc::new(data);
        match self.data.write() {
            Ok(mut g) => *g = data,
            // A writer panicked mid-assignment; the Arc swap cannot leave
            // the value torn, so take the lock over.
            Err(poisoned) => *poisoned.into_inner() = data,
        }
        self.serial.fetch_add(1, Ordering::Release);
    }

    /// The current snapshot.
    pub fn data(&self) -> Arc<ZoneData> {
        match self.data.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Changes whenever the zone data does (answers cached under an older
    /// generation are stale).
    pub fn generation(&self) -> u32 {
        self.serial.load(Ordering::Acquire)
    }

    /// The configured TTL.
    pub fn ttl(&self) -> u32 {
        self.ttl
    }

    fn soa(&self, zone: &Zone) -> Record {
        let soa = SOA::new(
            zone.soa_mname.clone(),
            zone.soa_rname.clone(),
            self.serial.load(Ordering::Relaxed),
            3600,
            600,
            86400,
            self.ttl,
        );
        Record::from_rdata(zone.origin.clone(), self.ttl, RData::SOA(soa))
    }

    /// Answers one question.
    pub fn lookup(&self, qname: &Name, qtype: RecordType, qclass: DNSClass) -> Lookup {
        self.lookup_varying(qname, qtype, qclass, &Cell::new(false))
    }

    /// [`Answerer::lookup`]; sets `varies` when the answer came from a
    /// rotation (round-robin among several clusters).
    fn lookup_varying(
        &self,
        qname: &Name,
        qtype: RecordType,
        qclass: DNSClass,
        varies: &Cell<bool>,
    ) -> Lookup {
        let lower = LowerName::new(qname);
        if !matches!(qclass, DNSClass::IN | DNSClass::ANY) {
            return refused();
        }
        if let Some(ip) = reverse_address(qname) {
            return self.reverse(qname, ip, qtype);
        }
        let Some(zone) = self.zones.iter().find(|z| z.name.zone_of(&lower)) else {
            return refused();
        };
        let data = self.data();
        let depth = (lower.num_labels() as usize).saturating_sub(zone.labels);
        let mut labels: Vec<&str> = Vec::with_capacity(depth);
        for l in lower.iter().take(depth) {
            match std::str::from_utf8(l) {
                Ok(s) => labels.push(s),
                // Not a name we could have created.
                Err(_) => return self.negative(zone, ResponseCode::NXDomain),
            }
        }
        let Some(node) = find_node(&data, &labels) else {
            return self.negative(zone, ResponseCode::NXDomain);
        };
        let mut answers = Vec::new();
        let exists = self.records(&data, zone, qname, &node, qtype, &mut answers, varies);
        if !exists {
            return self.negative(zone, ResponseCode::NXDomain);
        }
        if answers.is_empty() {
            return self.negative(zone, ResponseCode::NoError);
        }
        Lookup {
            rcode: ResponseCode::NoError,
            authoritative: true,
            answers,
            authorities: Vec::new(),
        }
    }

    /// A question about `<reversed ip>.in-addr.arpa` / `.ip6.arpa` (MCS DNS
    /// 2.3.3 and 2.4.3): the PTR of a ClusterSet IP or of a headless
    /// endpoint, named in the first zone. Addresses the zone does not know
    /// are REFUSED, as every name outside our zones: the reverse trees are
    /// not ours, and a resolver forwarding them here must fall back to
    /// cluster-local DNS (which already names the ClusterSet IPs through
    /// their derived Services, and the local pods).
    fn reverse(&self, qname: &Name, ip: IpAddr, qtype: RecordType) -> Lookup {
        let data = self.data();
        let Some(labels) = data.ptr_labels(ip) else {
            return refused();
        };
        let mut answers = Vec::new();
        if matches!(qtype, RecordType::PTR | RecordType::ANY) {
            let zone = &self.zones[0];
            let target = Name::from_labels(labels.iter().copied().chain(["svc"]))
                .and_then(|n| n.append_domain(&zone.origin));
            if let Ok(target) = target {
                answers.push(Record::from_rdata(
                    qname.clone(),
                    self.ttl,
                    RData::PTR(PTR(target)),
                ));
            }
        }
        Lookup {
            rcode: ResponseCode::NoError,
            authoritative: true,
            answers,
            authorities: Vec::new(),
        }
    }

    fn negative(&self, zone: &Zone, rcode: ResponseCode) -> Lookup {
        Lookup {
            rcode,
            authoritative: true,
            answers: Vec::new(),
            authorities: vec![self.soa(zone)],
        }
    }

    /// Pushes the records of `node` matching `qtype`; returns whether the
    /// name exists at all.
    #[allow(clippy::too_many_arguments)]
    fn records(
        &self,
        data: &ZoneData,
        zone: &Zone,
        qname: &Name,
        node: &Node<'_>,
        qtype: RecordType,
        out: &mut Vec<Record>,
        varies: &Cell<bool>,
    ) -> bool {
        let want = |t: RecordType| qtype == t || qtype == RecordType::ANY;
        let ttl = self.ttl;
        let rec = |rdata: RData| Record::from_rdata(qname.clone(), ttl, rdata);
        match *node {
            Node::Apex => {
                if want(RecordType::SOA) {
                    out.push(self.soa(zone));
                }
                if want(RecordType::NS) {
                    out.push(rec(RData::NS(NS(zone.soa_mname.clone()))));
                }
                true
            }
            Node::DnsVersion => {
                if want(RecordType::TXT) {
                    out.push(rec(RData::TXT(TXT::new(vec![DNS_VERSION.to_string()]))));
                }
                true
            }
            Node::Empty => true,
            Node::Service(svc, name, ns) => {
                let ips = self.service_ips(data, svc, varies);
                if ips.is_empty() {
                    return false;
                }
                push_addrs(&ips, qtype, &rec, out);
                if want(RecordType::SRV) {
                    for p in &svc.ports {
                        self.push_srv(data, zone, svc, name, ns, p.port, &rec, out);
                    }
                }
                true
            }
            Node::Port(svc, port, proto, name, ns) => {
                if self.service_ips(data, svc, varies).is_empty() {
                    return false;
                }
                let Some(p) = svc
                    .ports
                    .iter()
                    .find(|p| p.name == port && p.protocol == proto)
                else {
                    return false;
                };
                if want(RecordType::SRV) {
                    self.push_srv(data, zone, svc, name, ns, p.port, &rec, out);
                }
                true
            }
            Node::Cluster(svc, cluster) => {
                // MCS DNS spec 2.3.4: a service with a clusterset IP has no
                // per-cluster name (one without, ferry's Submariner-compatible
                // opt-out, keeps answering it).
                let has_vip = svc.kind == ServiceKind::ClusterSetIp && !svc.ips.is_empty();
                if has_vip || !data.eligible(svc, cluster) {
                    return false;
                }
                // 2.4.4: nor has a headless one; the name exists (its
                // `<hostname>.<clusterid>` names are below it) with no record.
                if svc.kind == ServiceKind::Headless {
                    return true;
                }
                let ips = ready_ips(svc, cluster);
                push_addrs(&ips, qtype, &rec, out);
                true
            }
            Node::Host(svc, host, cluster) => {
                if svc.kind != ServiceKind::Headless || !data.eligible(svc, cluster) {
                    return false;
                }
                let ips: Vec<IpAddr> = svc
                    .clusters
                    .get(cluster)
                    .into_iter()
                    .flatten()
                    .filter(|e| e.ready && e.hostname == host)
                    .map(|e| e.ip)
                    .collect();
                if ips.is_empty() {
                    return false;
                }
                push_addrs(&ips, qtype, &rec, out);
                true
            }
        }
    }

    /// The addresses `<svc>.<ns>.svc.<zone>` resolves to (empty: the name
    /// does not exist).
    fn service_ips(&self, data: &ZoneData, svc: &Service, varies: &Cell<bool>) -> Vec<IpAddr> {
        match svc.kind {
            ServiceKind::ClusterSetIp => {
                let turn = self.turn.fetch_add(1, Ordering::Relaxed);
                let Some((cluster, rotating)) = data.choose_among(svc, self.policy, turn) else {
                    self.choices.none.inc();
                    return Vec::new();
                };
                if data.local_cluster.as_deref() == Some(cluster) {
                    self.choices.local.inc();
                } else {
                    self.choices.remote.inc();
                }
                // With clusterset IPs the answer is the same whoever is chosen.
                if rotating && svc.ips.is_empty() {
                    varies.set(true);
                }
                if svc.ips.is_empty() {
                    ready_ips(svc, cluster)
                } else {
                    svc.ips.clone()
                }
            }
            ServiceKind::Headless => data
                .eligible_clusters(svc)
                .into_iter()
                .flat_map(|c| ready_ips(svc, c))
                .collect(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn push_srv(
        &self,
        data: &ZoneData,
        zone: &Zone,
        svc: &Service,
        name: &str,
        ns: &str,
        port: u16,
        rec: &dyn Fn(RData) -> Record,
        out: &mut Vec<Record>,
    ) {
        let Ok(base) =
            Name::from_labels([name, ns, "svc"]).and_then(|n| n.append_domain(&zone.origin))
        else {
            return;
        };
        match svc.kind {
            ServiceKind::ClusterSetIp => {
                out.push(rec(RData::SRV(SRV::new(0, 100, port, base))));
            }
            ServiceKind::Headless => {
                for cluster in data.eligible_clusters(svc) {
                    for e in svc.clusters.get(cluster).into_iter().flatten() {
                        if !e.ready {
                            continue;
                        }
                        let Ok(target) = Name::from_labels([e.hostname.as_str(), cluster])
                            .and_then(|n| n.append_domain(&base))
                        else {
                            continue;
                        };
                        out.push(rec(RData::SRV(SRV::new(0, 100, port, target))));
                    }
                }
            }
        }
    }

    /// Answers a raw query packet. `udp` enables truncation to the
    /// client's payload size. `None`: drop silently (not a query, or too
    /// short to answer).
    pub fn answer_packet(&self, packet: &[u8], udp: bool) -> Option<Answered> {
        // Too short for a header, or a response (never answer those: loops).
        if packet.len() < 12 || packet[2] & 0x80 != 0 {
            return None;
        }
        let request = match Message::from_vec(packet) {
            Ok(m) => m,
            Err(_) => {
                return Some(Answered {
                    bytes: formerr(packet),
                    qtype: None,
                    rcode: ResponseCode::FormErr,
                    cacheable: false,
                });
            }
        };
        let varies = Cell::new(false);
        let response = self.answer_message_varying(&request, &varies);
        let mut bytes = response.to_vec().ok()?;
        let limit = if udp {
            usize::from(
                request
                    .edns
                    .as_ref()
                    .map_or(512, |e| e.max_payload().clamp(512, EDNS_PAYLOAD)),
            )
        } else {
            usize::from(u16::MAX)
        };
        if bytes.len() > limit {
            bytes = response.truncate().to_vec().ok()?;
            // `truncate` keeps the header, question and OPT only.
            if let Some(b) = bytes.get_mut(2) {
                *b |= 0x02;
            }
        }
        Some(Answered {
            bytes,
            qtype: request.queries.first().map(Query::query_type),
            rcode: response.metadata.response_code,
            cacheable: !varies.get(),
        })
    }

    /// The response message to a parsed request.
    pub fn answer_message(&self, request: &Message) -> Message {
        self.answer_message_varying(request, &Cell::new(false))
    }

    fn answer_message_varying(&self, request: &Message, varies: &Cell<bool>) -> Message {
        let mut metadata = Metadata::new(
            request.metadata.id,
            MessageType::Response,
            request.metadata.op_code,
        );
        metadata.recursion_desired = request.metadata.recursion_desired;
        metadata.checking_disabled = request.metadata.checking_disabled;
        let mut response = Message::new(
            request.metadata.id,
            MessageType::Response,
            request.metadata.op_code,
        );
        if let Some(edns) = &request.edns {
            let mut ours = Edns::new();
            ours.set_max_payload(EDNS_PAYLOAD);
            ours.set_version(0);
            if edns.version() > 0 {
                metadata.response_code = ResponseCode::BADVERS;
                response.metadata = metadata;
                response.add_queries(request.queries.iter().cloned());
                response.set_edns(ours);
                return response;
            }
            response.set_edns(ours);
        }
        response.add_queries(request.queries.iter().cloned());
        if request.metadata.op_code != OpCode::Query {
            metadata.response_code = ResponseCode::NotImp;
            response.metadata = metadata;
            return response;
        }
        let [query] = request.queries.as_slice() else {
            metadata.response_code = ResponseCode::FormErr;
            response.metadata = metadata;
            return response;
        };
        let lookup = self.lookup_varying(
            query.name(),
            query.query_type(),
            query.query_class(),
            varies,
        );
        metadata.response_code = lookup.rcode;
        metadata.authoritative = lookup.authoritative;
        response.metadata = metadata;
        response.insert_answers(lookup.answers);
        response.insert_authorities(lookup.authorities);
        response
    }

    /// [`Answerer::lookup`] on a [`Query`].
    pub fn lookup_query(&self, query: &Query) -> Lookup {
        self.lookup(query.name(), query.query_type(), query.query_class())
    }
}

/// The address a full-length reverse name (`4.3.2.1.in-addr.arpa.`, 32
/// nibbles of `ip6.arpa.`) stands for; `None` for any other name.
fn reverse_address(qname: &Name) -> Option<IpAddr> {
    let mut fqdn = qname.clone();
    fqdn.set_fqdn(true);
    let net = fqdn.parse_arpa_name().ok()?;
    let full = if net.addr().is_ipv4() { 32 } else { 128 };
    (net.prefix_len() == full).then(|| net.addr())
}

fn refused() -> Lookup {
    Lookup {
        rcode: ResponseCode::Refused,
        authoritative: false,
        ..Default::default()
    }
}

/// A header-only FORMERR for a packet we could not parse.
fn formerr(packet: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 12];
    out[0] = packet[0];
    out[1] = packet[1];
    // QR=1, same opcode, RD copied.
    out[2] = 0x80 | (packet[2] & 0x79);
    out[3] = 1; // FORMERR
    out
}

fn ready_ips(svc: &Service, cluster: &str) -> Vec<IpAddr> {
    svc.clusters
        .get(cluster)
        .into_iter()
        .flatten()
        .filter(|e| e.ready)
        .map(|e| e.ip)
        .collect()
}

fn push_addrs(
    ips: &[IpAddr],
    qtype: RecordType,
    rec: &dyn Fn(RData) -> Record,
    out: &mut Vec<Record>,
) {
    for ip in ips {
        match ip {
            IpAddr::V4(v4) if matches!(qtype, RecordType::A | RecordType::ANY) => {
                out.push(rec(RData::A(A(*v4))));
            }
            IpAddr::V6(v6) if matches!(qtype, RecordType::AAAA | RecordType::ANY) => {
                out.push(rec(RData::AAAA(AAAA(*v6))));
            }
            _ => {}
        }
    }
}

/// Maps the labels below the zone apex (leftmost first) to a node.
fn find_node<'a>(data: &'a ZoneData, labels: &[&'a str]) -> Option<Node<'a>> {
    let service = |name: &str, ns: &str| data.service(ns, name).map(|s| &**s);
    match labels {
        [] => Some(Node::Apex),
        ["dns-version"] => Some(Node::DnsVersion),
        ["svc"] => Some(Node::Empty),
        [ns, "svc"] => data.services.contains_key(*ns).then_some(Node::Empty),
        [name, ns, "svc"] => Some(Node::Service(service(name, ns)?, name, ns)),
        [proto, name, ns, "svc"] if proto.starts_with('_') => {
            let svc = service(name, ns)?;
            let proto = &proto[1..];
            svc.ports
                .iter()
                .any(|p| p.protocol == proto)
                .then_some(Node::Empty)
        }
        [cluster, name, ns, "svc"] => Some(Node::Cluster(service(name, ns)?, cluster)),
        [port, proto, name, ns, "svc"] if port.starts_with('_') && proto.starts_with('_') => Some(
            Node::Port(service(name, ns)?, &port[1..], &proto[1..], name, ns),
        ),
        [host, cluster, name, ns, "svc"] => Some(Node::Host(service(name, ns)?, host, cluster)),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
