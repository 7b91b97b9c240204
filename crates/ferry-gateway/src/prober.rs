//! The health checker's socket loop: every interval it sends a probe to
//! the remote gateways' health-check addresses, echoes the probes it
//! receives, and reports each reply's RTT to the engine. The socket is
//! bound to this gateway's health-check address, so probes leave through
//! the cable.
//!
//! Cheap per cable (issue #19: ≤ 0.05 % of a core per cable at idle), since
//! each datagram costs an encryption and a wake-up on both sides:
//! - one side probes for both ([`Role`], [`acked`]): two datagrams per
//!   cable and interval instead of four, when both gateways know how;
//! - every gateway ticks at the same wall-clock phase (a multiple of the
//!   interval since the Unix epoch), so the requests and echoes of all
//!   cables arrive together and one wake-up drains many of them;
//! - one tick sends every probe, each wake-up drains every waiting datagram,
//!   and nothing is allocated per probe;
//! - replies go to a board the engine reads when it judges the cables
//!   ([`heard`]), not through a channel: the engine wakes only for a reply
//!   that may change a cable's state.

pub mod acked;
pub mod heard;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use acked::AckedRequest;
use heard::Heard;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::watch;

use crate::{Error, Result};
use ferry_api::health_probe::{PROBE_LEN, Probe};

/// A reply from a remote cluster's gateway.
#[derive(Clone, Debug)]
pub struct Reply {
    /// The cluster whose health-check address answered.
    pub cluster_id: Arc<str>,
    /// Round-trip time of the probe (as the remote measured it, when the
    /// remote probes for both and has no figure yet: `None`).
    pub rtt: Option<Duration>,
}

/// How this gateway health-checks one cable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The remote knows only plain probes: both sides send requests and
    /// echo each other's.
    Plain,
    /// This side probes for both with acknowledged requests.
    Prober,
    /// The remote probes for both: this side echoes, and a fresh
    /// acknowledgement in the remote's request is its proof that the cable
    /// works both ways. It sends plain requests only while no fresh one
    /// arrives (the remote not yet aware of this side, or the cable down).
    Responder,
}

impl Role {
    /// Towards a remote whose Endpoint says whether it knows acknowledged
    /// requests (`remote_acks`): the lower cluster id probes.
    pub fn towards(local_cluster: &str, remote_cluster: &str, remote_acks: bool) -> Role {
        match (remote_acks, local_cluster < remote_cluster) {
            (false, _) => Role::Plain,
            (true, true) => Role::Prober,
            (true, false) => Role::Responder,
        }
    }
}

/// A remote gateway's health-check address and how it is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    /// Its health-check address.
    pub addr: SocketAddr,
    /// Who probes.
    pub role: Role,
}

/// Binds the health-check socket. `IP_FREEBIND` lets it bind before the
/// address is on the cable device (a standby has no cable yet).
pub fn bind(ip: Ipv4Addr, port: u16) -> Result<UdpSocket> {
    let s =
        Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(Error::HealthSocket)?;
    s.set_freebind_v4(true).map_err(Error::HealthSocket)?;
    s.set_reuse_address(true).map_err(Error::HealthSocket)?;
    s.bind(&SocketAddr::V4(SocketAddrV4::new(ip, port)).into())
        .map_err(Error::HealthSocket)?;
    s.set_nonblocking(true).map_err(Error::HealthSocket)?;
    UdpSocket::from_std(s.into()).map_err(Error::HealthSocket)
}

/// Datagrams handled per wake-up at most.
const MAX_DRAIN: usize = 256;

/// What the socket loop knows about one remote gateway.
#[derive(Debug)]
struct Remote {
    cluster_id: Arc<str>,
    target: Target,
    /// Send time (this loop's clock, ns) of the newest request it echoed.
    echoed_sent: Option<u64>,
    /// That echo's round-trip time.
    rtt: Option<Duration>,
    /// When its last fresh acknowledged request arrived (role `Responder`).
    acked_at: Option<Instant>,
}

/// The remote gateways by health-check IP; each keeps its echo state
/// across target changes.
fn rebuild(old: &mut HashMap<IpAddr, Remote>, targets: &BTreeMap<String, Target>) {
    let mut next = HashMap::with_capacity(targets.len());
    for (cluster, t) in targets {
        let mut r = old.remove(&t.addr.ip()).unwrap_or(Remote {
            cluster_id: Arc::from(cluster.as_str()),
            target: *t,
            echoed_sent: None,
            rtt: None,
            acked_at: None,
        });
        if *r.cluster_id != **cluster || r.target != *t {
            r.cluster_id = Arc::from(cluster.as_str());
            r.target = *t;
            r.acked_at = None;
        }
        next.insert(t.addr.ip(), r);
    }
    *old = next;
}

/// The first tick: the next multiple of `interval` since the Unix epoch, so
/// every gateway's probes leave at the same phase (see the module docs).
pub(crate) fn aligned_start(interval: Duration) -> tokio::time::Instant {
    let since_epoch = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let period = interval.as_nanos().max(1);
    let wait = u64::try_from(period - since_epoch % period).unwrap_or(0);
    tokio::time::Instant::now() + Duration::from_nanos(wait)
}

/// The socket loop's state: the socket, its clock and the remotes.
struct Checker {
    socket: UdpSocket,
    epoch: Instant,
    seq: u64,
    /// An acknowledgement older than this proves nothing (two intervals:
    /// one lost echo is tolerated).
    fresh_within: Duration,
    remotes: HashMap<IpAddr, Remote>,
}

impl Checker {
    fn now_nanos(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Sends this tick's requests.
    fn send_requests(&mut self) {
        let now = self.now_nanos();
        let instant = Instant::now();
        for r in self.remotes.values() {
            self.seq += 1;
            let probe = Probe {
                reply: false,
                seq: self.seq,
                sent_nanos: now,
            };
            let sent = match r.target.role {
                Role::Plain => self.socket.try_send_to(&probe.encode(), r.target.addr),
                Role::Prober => {
                    let req = AckedRequest {
                        probe,
                        echo_age: r
                            .echoed_sent
                            .map(|s| Duration::from_nanos(now.saturating_sub(s))),
                        rtt: r.rtt,
                    };
                    self.socket.try_send_to(&req.encode(), r.target.addr)
                }
                Role::Responder => {
                    if r.acked_at
                        .is_some_and(|t| instant.duration_since(t) <= self.fresh_within)
                    {
                        continue;
                    }
                    self.socket.try_send_to(&probe.encode(), r.target.addr)
                }
            };
            // Unreachable remotes (no route yet, cable down) are exactly
            // what the missing replies report.
            if let Err(e) = sent {
                tracing::trace!(addr = %r.target.addr, "probe not sent: {e}");
            }
        }
    }

    /// Echoes a request; turns a reply or a fresh acknowledgement into a [`Reply`].
    fn handle(&mut self, datagram: &[u8], from: SocketAddr) -> Option<Reply> {
        if let Some(p) = Probe::decode(datagram) {
            if !p.reply {
                self.echo(p, from);
                return None;
            }
            let now = self.now_nanos();
            let rtt = Duration::from_nanos(now.checked_sub(p.sent_nanos)?);
            let r = self.remotes.get_mut(&from.ip())?;
            if r.echoed_sent.is_none_or(|s| s < p.sent_nanos) {
                r.echoed_sent = Some(p.sent_nanos);
                r.rtt = Some(rtt);
            }
            return Some(Reply {
                cluster_id: r.cluster_id.clone(),
                rtt: Some(rtt),
            });
        }
        let a = AckedRequest::decode(datagram)?;
        self.echo(a.probe, from);
        let r = self.remotes.get_mut(&from.ip())?;
        // No echo yet, or too old to prove our echoes still reach it.
        if a.echo_age.is_none_or(|age| age > self.fresh_within) {
            return None;
        }
        r.acked_at = Some(Instant::now());
        Some(Reply {
            cluster_id: r.cluster_id.clone(),
            rtt: a.rtt,
        })
    }

    fn echo(&self, request: Probe, to: SocketAddr) {
        let echo = Probe {
            reply: true,
            ..request
        };
        let _ = self.socket.try_send_to(&echo.encode(), to);
    }
}

/// Runs until the sender of `targets` is gone. `targets` maps cluster id →
/// health-check address and role, and may change at any time; every reply
/// is recorded in `heard`.
pub async fn run(
    socket: UdpSocket,
    interval: Duration,
    mut targets: watch::Receiver<BTreeMap<String, Target>>,
    heard: Arc<Heard>,
) {
    let mut c = Checker {
        socket,
        epoch: Instant::now(),
        seq: 0,
        fresh_within: interval * 2,
        remotes: HashMap::new(),
    };
    let mut tick = tokio::time::interval_at(aligned_start(interval), interval);
    // Skip, not Delay: a late tick must not shift the phase for good (on a
    // loaded node every gateway's phase would drift apart, and each
    // remote's requests would wake this loop on their own).
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut buf = [0u8; 64];
    loop {
        tokio::select! {
            r = targets.changed() => {
                if r.is_err() {
                    return;
                }
                let t = targets.borrow_and_update();
                rebuild(&mut c.remotes, &t);
                heard.retain(|cluster| t.contains_key(cluster));
            }
            _ = tick.tick() => c.send_requests(),
            r = c.socket.recv_from(&mut buf) => {
                let mut next = r;
                // Bounded, so a flood cannot starve the tick.
                for _ in 0..MAX_DRAIN {
                    let Ok((n, from)) = next else { break };
                    if let Some(reply) = c.handle(&buf[..n], from) {
                        heard.record(&reply.cluster_id, Instant::now(), reply.rtt);
                    }
                    next = c.socket.try_recv_from(&mut buf);
                }
            }
        }
    }
}

/// Size checks kept next to the buffer above.
const _: () = assert!(PROBE_LEN <= 64 && acked::ACKED_LEN <= 64);

#[cfg(test)]
mod tests;
