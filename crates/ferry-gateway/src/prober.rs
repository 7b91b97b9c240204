//! The health checker's socket loop: every interval it sends a probe to each
//! remote gateway's health-check address, echoes the probes it receives, and
//! reports each reply's RTT to the engine. The socket is bound to this
//! gateway's health-check address, so probes leave through the cable.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};

use crate::{Error, Result};
use ferry_api::health_probe::{PROBE_LEN, Probe};

/// A reply from a remote cluster's gateway.
#[derive(Clone, Debug)]
pub struct Reply {
    /// The cluster whose health-check address answered.
    pub cluster_id: Arc<str>,
    /// Round-trip time of the probe.
    pub rtt: Duration,
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

/// Runs until `replies` is closed. `targets` maps cluster id → health-check
/// address and may change at any time.
///
/// Cheap per cable: one wake-up sends every probe of a tick, and each
/// wake-up drains every datagram waiting on the socket (a tick's replies
/// come back together) and hands the replies over in one batch.
pub async fn run(
    socket: UdpSocket,
    interval: Duration,
    mut targets: watch::Receiver<BTreeMap<String, SocketAddr>>,
    replies: mpsc::Sender<Vec<Reply>>,
) {
    let socket = Arc::new(socket);
    let epoch = Instant::now();
    let mut seq = 0u64;
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut buf = [0u8; 64];
    // Remote health-check IP → cluster, rebuilt when the targets change.
    let mut by_ip: HashMap<IpAddr, Arc<str>> = HashMap::new();
    let mut addrs: Vec<SocketAddr> = Vec::new();
    loop {
        if targets.has_changed().unwrap_or(false) {
            let t = targets.borrow_and_update();
            by_ip = t
                .iter()
                .map(|(c, a)| (a.ip(), Arc::from(c.as_str())))
                .collect();
            addrs = t.values().copied().collect();
        }
        tokio::select! {
            _ = tick.tick() => {
                let now = u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
                for addr in &addrs {
                    seq += 1;
                    let p = Probe { reply: false, seq, sent_nanos: now };
                    // Unreachable remotes (no route yet, cable down) are
                    // exactly what the missing replies report.
                    if let Err(e) = socket.try_send_to(&p.encode(), *addr) {
                        tracing::trace!(%addr, "probe not sent: {e}");
                    }
                }
            }
            r = socket.recv_from(&mut buf) => {
                let mut batch = Vec::new();
                let mut next = r;
                // Bounded, so a flood cannot starve the tick.
                for _ in 0..MAX_DRAIN {
                    let Ok((n, from)) = next else { break };
                    if let Some(reply) = handle(&socket, &buf[..n], from, epoch, &by_ip) {
                        batch.push(reply);
                    }
                    next = socket.try_recv_from(&mut buf);
                }
                if !batch.is_empty() && replies.send(batch).await.is_err() {
                    return;
                }
            }
            _ = replies.closed() => return,
        }
    }
}

/// Echoes a request; turns a reply into its RTT.
fn handle(
    socket: &UdpSocket,
    datagram: &[u8],
    from: SocketAddr,
    epoch: Instant,
    by_ip: &HashMap<IpAddr, Arc<str>>,
) -> Option<Reply> {
    let p = Probe::decode(datagram)?;
    if !p.reply {
        let echo = Probe { reply: true, ..p };
        let _ = socket.try_send_to(&echo.encode(), from);
        return None;
    }
    let rtt = epoch
        .elapsed()
        .checked_sub(Duration::from_nanos(p.sent_nanos))?;
    Some(Reply {
        cluster_id: by_ip.get(&from.ip())?.clone(),
        rtt,
    })
}

/// Size check kept next to the buffer above.
const _: () = assert!(PROBE_LEN <= 64);
