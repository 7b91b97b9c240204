//! NAT discovery towards one remote gateway, as Submariner does it: probe
//! the remote's private and public address on UDP 4490 until one answers
//! (the private one wins when both do), note whether the answer reports NAT
//! on the way and how this gateway looked to the remote, and note whether the
//! remote's own probes reach us. Pure: the socket loop (`nat_prober`) feeds
//! it datagrams and sends what [`Discovery::due`] asks for.
//!
//! The verdict ([`Outcome`]) decides the cable: send to the address that
//! answered; if none does but the remote's probes arrive, the remote is
//! behind a NAT and must open the cable itself; if nothing crosses at all,
//! UDP between the two is blocked.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use ferry_api::nat_discovery::{Peer, Request, Response, ResponseType};
use ferry_api::{NatDiscovery, NatDiscoveryResult};

/// Timing of the probes and of the verdicts.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// Between probes to an address that has not answered.
    pub interval: Duration,
    /// After the first answer, how long the private address may still win
    /// (and is still probed).
    pub settle: Duration,
    /// Between probes once settled: to the chosen address (so a restarted
    /// remote hears from us again) and, with no answer at all, to both.
    pub refresh: Duration,
    /// The same, while the cable's health checks prove the path: a
    /// restarted remote turns the cable `error` within the health budget,
    /// and from then on `refresh` applies again. Until then, a probe a
    /// second per remote only cost every gateway a wake-up per remote and
    /// second (issue #19: probing must stay cheap as the mesh grows).
    pub proven_refresh: Duration,
    /// With no answer but the remote's probes arriving, how long to wait
    /// before concluding the remote is only reachable from its side. None by
    /// default: a WireGuard responder must have the peer before the remote's
    /// first handshake arrives (else that handshake is lost and retried only
    /// 5 s later), and an answer arriving later still turns the verdict.
    pub inbound_grace: Duration,
    /// With nothing crossing either way, how long before UDP counts as blocked.
    pub timeout: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            interval: Duration::from_millis(200),
            settle: Duration::from_secs(1),
            refresh: Duration::from_secs(1),
            proven_refresh: Duration::from_secs(10),
            inbound_grace: Duration::ZERO,
            timeout: Duration::from_secs(3),
        }
    }
}

/// The remote gateway as its Endpoint describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Its cluster and Endpoint name, as probes address it.
    pub peer: Peer,
    /// Its address inside its own network.
    pub private_ip: Ipv4Addr,
    /// The address it says other clusters reach it at, if any.
    pub public_ip: Option<Ipv4Addr>,
    /// Port its NAT discovery responder listens on.
    pub port: u16,
}

impl Target {
    /// Whether a probe that arrived from `from` claiming `req` was sent by
    /// this gateway: it came from, or says it left from, one of its
    /// addresses. (Behind a NAT that rewrites both, it cannot be told, and
    /// discovery waits for the gateway's next probe.)
    pub fn sent(&self, from: SocketAddrV4, req: &Request) -> bool {
        req.sender.cluster_id == self.peer.cluster_id
            && [*from.ip(), *req.using_src.ip()]
                .iter()
                .any(|ip| *ip == self.private_ip || Some(*ip) == self.public_ip)
    }

    /// The public address, when it is a second address to try.
    fn distinct_public(&self) -> Option<Ipv4Addr> {
        self.public_ip.filter(|p| *p != self.private_ip)
    }
}

/// Which of the remote's addresses answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// Its private IP.
    Private,
    /// Its public IP.
    Public,
}

/// The verdict so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing decided yet.
    Probing,
    /// The remote answers at `ip`.
    Reach {
        /// Which address.
        via: Via,
        /// That address.
        ip: Ipv4Addr,
        /// The answer reported rewriting on the way.
        nat: bool,
        /// Our source address and port as the remote saw it.
        seen_as: SocketAddrV4,
    },
    /// The remote does not answer, but its probes reach us from `from`.
    InboundOnly {
        /// Where its probes come from (its NAT's mapping).
        from: SocketAddrV4,
        /// That differs from the source the remote claims.
        nat: bool,
    },
    /// Nothing crossed in either direction within the timeout.
    Unreachable,
}

#[derive(Clone, Debug, Default)]
struct AddressProbe {
    last_sent: Option<Instant>,
    answer: Option<(Instant, Response)>,
}

/// What we know of the remote's probes to us.
#[derive(Clone, Copy, Debug)]
struct Inbound {
    from: SocketAddrV4,
    claimed: SocketAddrV4,
}

/// NAT discovery state for one remote gateway.
#[derive(Clone, Debug)]
pub struct Discovery {
    target: Target,
    started: Instant,
    /// Request numbers below this belong to an earlier discovery.
    first_request: u64,
    next_request: u64,
    private: AddressProbe,
    public: AddressProbe,
    inbound: Option<Inbound>,
    /// When the first answer arrived (later refresh answers do not move it).
    first_answer: Option<Instant>,
    /// Answers that refused us (wrong cluster or Endpoint), for the report.
    refused: Option<ResponseType>,
}

impl Discovery {
    /// Starts discovery; request numbers start at `first_request` (random,
    /// so answers to an earlier run are told apart).
    pub fn new(target: Target, now: Instant, first_request: u64) -> Self {
        Self {
            target,
            started: now,
            first_request,
            next_request: first_request,
            private: AddressProbe::default(),
            public: AddressProbe::default(),
            inbound: None,
            first_answer: None,
            refused: None,
        }
    }

    /// The remote this is about.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Probes to send now: destination and request number. `cable_proven`:
    /// the cable to this remote passes its health checks.
    pub fn due(
        &mut self,
        now: Instant,
        policy: &Policy,
        cable_proven: bool,
    ) -> Vec<(SocketAddrV4, u64)> {
        let refresh = if cable_proven {
            policy.proven_refresh
        } else {
            policy.refresh
        };
        let outcome = self.outcome(now, policy);
        let first_answer = self.first_answer;
        let settled = first_answer.is_some_and(|at| now.duration_since(at) >= policy.settle);
        let timed_out = now.duration_since(self.started) >= policy.timeout;
        let mut out = Vec::new();
        let addrs = [
            (Via::Private, Some(self.target.private_ip)),
            (Via::Public, self.target.distinct_public()),
        ];
        for (via, ip) in addrs {
            let Some(ip) = ip else { continue };
            let chosen = matches!(outcome, Outcome::Reach { via: v, .. } if v == via);
            let probe = match via {
                Via::Private => &mut self.private,
                Via::Public => &mut self.public,
            };
            let every = if chosen || (first_answer.is_none() && timed_out) {
                refresh
            } else if probe.answer.is_some() || settled {
                continue;
            } else {
                policy.interval
            };
            if probe
                .last_sent
                .is_some_and(|t| now.duration_since(t) < every)
            {
                continue;
            }
            probe.last_sent = Some(now);
            out.push((SocketAddrV4::new(ip, self.target.port), self.next_request));
            self.next_request = self.next_request.wrapping_add(1);
        }
        out
    }

    /// A response arrived from `from`; returns whether it counted. Only an
    /// answer from the very address probed counts (as Submariner, a private
    /// address answering from elsewhere is refused).
    pub fn on_response(&mut self, now: Instant, from: SocketAddrV4, r: &Response) -> bool {
        let fresh = r.request_number.wrapping_sub(self.first_request)
            < self.next_request.wrapping_sub(self.first_request);
        if !fresh || r.sender.cluster_id != self.target.peer.cluster_id {
            return false;
        }
        if !matches!(r.response, ResponseType::Ok | ResponseType::NatDetected) {
            self.refused = Some(r.response);
            return false;
        }
        let probe = if *from.ip() == self.target.private_ip {
            &mut self.private
        } else if Some(*from.ip()) == self.target.distinct_public() {
            &mut self.public
        } else {
            return false;
        };
        probe.answer = Some((now, r.clone()));
        self.first_answer.get_or_insert(now);
        true
    }

    /// The remote's probe `req` arrived from `from`.
    pub fn on_request(&mut self, from: SocketAddrV4, req: &Request) {
        if req.sender.cluster_id == self.target.peer.cluster_id {
            self.inbound = Some(Inbound {
                from,
                claimed: req.using_src,
            });
        }
    }

    /// Whether the remote's probes reach us.
    pub fn inbound_seen(&self) -> bool {
        self.inbound.is_some()
    }

    /// Whether the timeout has passed without any answer.
    pub fn timed_out(&self, now: Instant, policy: &Policy) -> bool {
        now.duration_since(self.started) >= policy.timeout
    }

    /// The verdict at `now`.
    pub fn outcome(&self, now: Instant, policy: &Policy) -> Outcome {
        let reach = |via, ip, p: &AddressProbe| {
            p.answer.as_ref().map(|(_, r)| Outcome::Reach {
                via,
                ip,
                nat: r.nat_detected(),
                seen_as: r.received_src,
            })
        };
        if let Some(o) = reach(Via::Private, self.target.private_ip, &self.private) {
            return o;
        }
        if let Some(ip) = self.target.distinct_public()
            && let Some(o) = reach(Via::Public, ip, &self.public)
        {
            return o;
        }
        let waited = now.duration_since(self.started);
        match self.inbound {
            Some(i) if waited >= policy.inbound_grace => Outcome::InboundOnly {
                from: i.from,
                nat: i.from != i.claimed,
            },
            _ if waited >= policy.timeout => Outcome::Unreachable,
            _ => Outcome::Probing,
        }
    }

    /// The outcome as the Gateway status reports it.
    pub fn report(&self, now: Instant, policy: &Policy) -> NatDiscovery {
        let t = &self.target;
        let tried = match t.distinct_public() {
            Some(p) => format!("private {} and public {p}", t.private_ip),
            None => format!("{}", t.private_ip),
        };
        let remote_seen_from = self.inbound.map(|i| SocketAddr::V4(i.from));
        let answer = [&self.private, &self.public]
            .into_iter()
            .find_map(|p| p.answer.as_ref().map(|(_, r)| r));
        let (result, seen_as, message) = match self.outcome(now, policy) {
            Outcome::Probing => (
                NatDiscoveryResult::Probing,
                None,
                format!("probing {tried} on UDP {}", t.port),
            ),
            Outcome::Reach {
                via,
                ip,
                nat,
                seen_as,
            } => (
                match via {
                    Via::Private => NatDiscoveryResult::PrivateIp,
                    Via::Public => NatDiscoveryResult::PublicIp,
                },
                Some(SocketAddr::V4(seen_as)),
                format!(
                    "{} IP {ip} answered; {}; it sees this gateway as {seen_as}",
                    match via {
                        Via::Private => "private",
                        Via::Public => "public",
                    },
                    if nat { "NAT on the way" } else { "no NAT" }
                ),
            ),
            Outcome::InboundOnly { from, .. } => (
                NatDiscoveryResult::InboundOnly,
                None,
                format!(
                    "{tried} do not answer, but its probes arrive from {from}: \
                     it is behind a NAT and opens the cable from its side"
                ),
            ),
            Outcome::Unreachable => (
                NatDiscoveryResult::Unreachable,
                None,
                format!(
                    "no answer from {tried} on UDP {} for {:?} and none of its probes \
                     arrived: UDP between the gateways is blocked (a NAT or firewall){}",
                    t.port,
                    policy.timeout,
                    match self.refused {
                        Some(r) => format!("; a gateway answered {r:?} (not the Endpoint probed)"),
                        None => String::new(),
                    }
                ),
            ),
        };
        let chosen = match result {
            NatDiscoveryResult::PrivateIp | NatDiscoveryResult::PublicIp => answer,
            _ => None,
        };
        NatDiscovery {
            result,
            seen_as,
            remote_seen_from,
            src_ip_nat_detected: chosen.is_some_and(|r| r.src_ip_nat_detected),
            src_port_nat_detected: chosen.is_some_and(|r| r.src_port_nat_detected),
            dst_ip_nat_detected: chosen.is_some_and(|r| r.dst_ip_nat_detected),
            message,
        }
    }
}

#[cfg(test)]
mod tests;
