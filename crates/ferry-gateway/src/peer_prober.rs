//! The peer probes' socket loop: answers every request with whether this
//! gateway is active, and — while the lease loop names a holder to watch —
//! probes it every interval and reports the [`HolderMonitor`]'s verdict.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::peer::{Detect, HolderMonitor, HolderVerdict, PEER_PROBE_LEN, PeerProbe, Target};
use crate::{Error, Result};

/// Binds the peer-probe socket at `addr`. While another process of this
/// node still holds it (a predecessor being replaced), waits: that process
/// may still be active, so this one must not take part in the election yet.
pub async fn bind_when_free(addr: SocketAddr) -> Result<UdpSocket> {
    let mut said = false;
    loop {
        match UdpSocket::bind(addr).await {
            Ok(s) => return Ok(s),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                if !said {
                    tracing::info!(%addr, "peer-probe port busy (a previous gateway still stopping?); waiting");
                    said = true;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(Error::PeerSocket(e)),
        }
    }
}

/// Runs until `verdicts` has no receiver. `active` says what to answer on
/// `socket`; `target` is the holder to probe (none: only answer), from a
/// second socket on the same IP connected to it, so that a refused probe
/// (the holder's process is gone) comes back as an error; `seq_base` tells
/// this process's requests from an earlier one's.
pub async fn run(
    socket: UdpSocket,
    detect: Detect,
    seq_base: u64,
    active: watch::Receiver<bool>,
    mut target: watch::Receiver<Option<Target>>,
    verdicts: watch::Sender<HolderVerdict>,
) {
    let mut monitor = HolderMonitor::new(detect, seq_base);
    let mut tick = tokio::time::interval(detect.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut buf = [0u8; 64];
    let mut probe_buf = [0u8; 64];
    let mut prober: Option<UdpSocket> = None;
    let local_ip = socket.local_addr().map(|a| a.ip()).ok();
    let far = Duration::from_secs(3600);
    loop {
        let deadline = monitor
            .deadline()
            .map(Instant::from_std)
            .unwrap_or_else(|| Instant::now() + far);
        let changed = tokio::select! {
            r = target.changed() => {
                if r.is_err() { return; }
                let t = target.borrow_and_update().clone();
                prober = match (&t, local_ip) {
                    (Some(t), Some(ip)) => connect(ip, t.addr).await,
                    _ => None,
                };
                monitor.set_target(t);
                // Probe a new holder at once.
                tick.reset_immediately();
                true
            }
            _ = tick.tick(), if monitor.has_target() => {
                match (monitor.next_request(), &prober) {
                    (Some((addr, p)), Some(s)) => match s.try_send(&p.encode()) {
                        // The refusal of an earlier probe, reported here.
                        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                            refused(&mut monitor)
                        }
                        Err(e) => {
                            tracing::trace!(%addr, "peer probe not sent: {e}");
                            false
                        }
                        Ok(_) => false,
                    },
                    _ => false,
                }
            }
            _ = tokio::time::sleep_until(deadline) => monitor.poll(std::time::Instant::now()),
            r = recv(prober.as_ref(), &mut probe_buf) => match r {
                Ok((n, from)) => PeerProbe::decode(&probe_buf[..n])
                    .is_some_and(|p| monitor.on_reply(std::time::Instant::now(), from, p)),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => refused(&mut monitor),
                Err(_) => false,
            },
            r = socket.recv_from(&mut buf) => {
                let Ok((n, from)) = r else { continue };
                if let Some(p) = PeerProbe::decode(&buf[..n]).filter(|p| !p.reply) {
                    let answer = PeerProbe { reply: true, active: *active.borrow(), seq: p.seq };
                    let _ = socket.try_send_to(&answer.encode(), from);
                }
                false
            }
            _ = verdicts.closed() => return,
        };
        if changed {
            verdicts.send_replace(monitor.verdict());
        }
    }
}

fn refused(monitor: &mut HolderMonitor) -> bool {
    let changed = monitor.on_refused();
    if changed {
        tracing::info!("the active gateway's peer-probe port refused a probe: its process is gone");
    }
    changed
}

/// A socket on `ip` (any port) connected to `to`; `None` if that fails
/// (then nothing is probed and only the Lease's expiry decides).
async fn connect(ip: std::net::IpAddr, to: SocketAddr) -> Option<UdpSocket> {
    let s = UdpSocket::bind(SocketAddr::new(ip, 0)).await.ok()?;
    match s.connect(to).await {
        Ok(()) => Some(s),
        Err(e) => {
            tracing::warn!(%to, "peer probes: {e}");
            None
        }
    }
}

/// Receives on the probing socket; pending while there is none.
async fn recv(s: Option<&UdpSocket>, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
    match s {
        Some(s) => {
            let n = s.recv(buf).await?;
            Ok((n, s.peer_addr()?))
        }
        None => std::future::pending().await,
    }
}

/// Size check kept next to the buffer above.
const _: () = assert!(PEER_PROBE_LEN <= 64);
