//! The health checker's socket loop: every interval it sends a probe to each
//! remote gateway's health-check address, echoes the probes it receives, and
//! reports each reply's RTT to the engine. The socket is bound to this
//! gateway's health-check address, so probes leave through the cable.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
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
    pub cluster_id: String,
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

/// Runs until `replies` is closed. `targets` maps cluster id → health-check
/// address and may change at any time.
pub async fn run(
    socket: UdpSocket,
    interval: Duration,
    targets: watch::Receiver<BTreeMap<String, SocketAddr>>,
    replies: mpsc::Sender<Reply>,
) {
    let socket = Arc::new(socket);
    let epoch = Instant::now();
    let mut seq = 0u64;
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut buf = [0u8; 64];
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let now = u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
                let list: Vec<SocketAddr> = targets.borrow().values().copied().collect();
                for addr in list {
                    seq += 1;
                    let p = Probe { reply: false, seq, sent_nanos: now };
                    // Unreachable remotes (no route yet, cable down) are
                    // exactly what the missing replies report.
                    if let Err(e) = socket.send_to(&p.encode(), addr).await {
                        tracing::trace!(%addr, "probe not sent: {e}");
                    }
                }
            }
            r = socket.recv_from(&mut buf) => {
                let Ok((n, from)) = r else { continue };
                let Some(p) = Probe::decode(&buf[..n]) else { continue };
                if !p.reply {
                    let echo = Probe { reply: true, ..p };
                    let _ = socket.send_to(&echo.encode(), from).await;
                    continue;
                }
                let sent = Duration::from_nanos(p.sent_nanos);
                let Some(rtt) = epoch.elapsed().checked_sub(sent) else { continue };
                let cluster = targets
                    .borrow()
                    .iter()
                    .find(|(_, a)| a.ip() == from.ip())
                    .map(|(c, _)| c.clone());
                if let Some(cluster_id) = cluster
                    && replies.send(Reply { cluster_id, rtt }).await.is_err()
                {
                    return;
                }
            }
            _ = replies.closed() => return,
        }
    }
}

/// Size check kept next to the buffer above.
const _: () = assert!(PROBE_LEN <= 64);
