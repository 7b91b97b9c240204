//! The peer probes' socket loop: answers every request with whether this
//! gateway is active, and — while the lease loop names a holder to watch —
//! probes it every interval and reports the [`HolderMonitor`]'s verdict.
//! With active-active gateways a [`PeerWatch`] probes every other gateway
//! of the cluster instead (see [`crate::peers`]), one task per peer.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::peer::{
    Detect, HolderMonitor, HolderVerdict, PEER_PROBE_LEN, PeerProbe, Target, Verdict,
};
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

/// A verdict change on one peer gateway: its Endpoint's name, the address
/// probed and the new verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerEvent {
    pub name: String,
    pub addr: SocketAddr,
    pub verdict: crate::peer::Verdict,
}

/// How long a peer's Endpoint may stand without its gateway ever answering
/// a probe before it is judged down: far beyond a starting gateway's time
/// from publishing its Endpoint to answering (milliseconds), and the same
/// order as the Lease that decides for a never-heard holder in
/// active-passive. Covers a gateway killed right after it published.
pub const NEVER_ANSWERED_GRACE: Duration = Duration::from_secs(10);

/// Peers judged down for never answering and not heard since: a name in
/// it gets no grace again, so a live gateway whose probes are blocked is
/// withdrawn at most once (it re-publishes and stays) instead of every
/// grace period.
type Silenced = std::sync::Arc<std::sync::Mutex<std::collections::BTreeSet<String>>>;

/// Probes every other active-active gateway of the cluster, one task per
/// peer (each from its own connected socket, so a refused probe comes back
/// to it), and sends each verdict change as a [`PeerEvent`]. Dropping it
/// stops the probes.
pub struct PeerWatch {
    local_ip: std::net::IpAddr,
    detect: Detect,
    grace: Duration,
    silenced: Silenced,
    tasks: std::collections::BTreeMap<String, (SocketAddr, tokio::task::JoinHandle<()>)>,
    events: tokio::sync::mpsc::Sender<PeerEvent>,
}

impl PeerWatch {
    /// Probes from `local_ip` (the node's private IP); the events come out
    /// of the receiver. A peer that never answers is judged down after
    /// `grace` ([`NEVER_ANSWERED_GRACE`] in production), once.
    pub fn new(
        local_ip: std::net::IpAddr,
        detect: Detect,
        grace: Duration,
    ) -> (Self, tokio::sync::mpsc::Receiver<PeerEvent>) {
        let (events, rx) = tokio::sync::mpsc::channel(64);
        let w = Self {
            local_ip,
            detect,
            grace,
            silenced: Default::default(),
            tasks: Default::default(),
            events,
        };
        (w, rx)
    }

    /// Probes exactly `targets` (name → address): a new or moved peer gets
    /// a fresh task (it starts from `Unknown`), a vanished one's stops.
    pub fn set_targets(&mut self, targets: &std::collections::BTreeMap<String, SocketAddr>) {
        self.tasks.retain(|name, (addr, task)| {
            let keep = targets.get(name) == Some(addr);
            if !keep {
                task.abort();
            }
            keep
        });
        for (name, addr) in targets {
            if self.tasks.contains_key(name) {
                continue;
            }
            let task = tokio::spawn(probe_peer(
                Peer {
                    name: name.clone(),
                    addr: *addr,
                },
                self.local_ip,
                self.detect,
                (self.grace, self.silenced.clone()),
                self.events.clone(),
            ));
            self.tasks.insert(name.clone(), (*addr, task));
        }
    }
}

/// The gateway one task probes.
struct Peer {
    name: String,
    addr: SocketAddr,
}

impl Drop for PeerWatch {
    fn drop(&mut self) {
        for (_, task) in self.tasks.values() {
            task.abort();
        }
    }
}

/// Probes `peer` every interval until aborted (or nobody listens to
/// `events`), sending each change of its verdict — and `Down` once if it
/// never answers within the grace (unless it was silenced before and has
/// not answered since).
async fn probe_peer(
    peer: Peer,
    local_ip: std::net::IpAddr,
    detect: Detect,
    (grace, silenced): (Duration, Silenced),
    events: tokio::sync::mpsc::Sender<PeerEvent>,
) {
    let Peer { name, addr } = peer;
    let Some(socket) = connect(local_ip, addr).await else {
        return;
    };
    let mut monitor = HolderMonitor::new(detect, crate::peer::random_seq_base());
    monitor.set_target(Some(Target {
        holder: name.clone(),
        addr,
    }));
    let mut tick = tokio::time::interval(detect.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut buf = [0u8; 64];
    let far = Duration::from_secs(3600);
    let mut silence_deadline = (!is_silenced(&silenced, &name)).then(|| Instant::now() + grace);
    // One timer for the whole task, re-armed only when the monitor's
    // deadline moves, instead of a new one put into and taken out of the
    // timer wheel on every loop turn (a probe and its answer: two turns
    // per interval and peer).
    let mut armed = monitor.deadline();
    let down_at =
        tokio::time::sleep_until(armed.map_or_else(|| Instant::now() + far, Instant::from_std));
    tokio::pin!(down_at);
    loop {
        let deadline = monitor.deadline();
        if deadline != armed {
            armed = deadline;
            down_at
                .as_mut()
                .reset(deadline.map_or_else(|| Instant::now() + far, Instant::from_std));
        }
        let never_answered = monitor.current() == Verdict::Unknown;
        let silence = silence_deadline.filter(|_| never_answered);
        let verdict = tokio::select! {
            _ = tick.tick() => match monitor.next_request() {
                Some((_, p)) => match socket.try_send(&p.encode()) {
                    // The refusal of an earlier probe, reported here.
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => changed(monitor.on_refused(), &monitor),
                    _ => None,
                },
                None => None,
            },
            _ = &mut down_at => {
                // Fired: park it until the monitor names a new deadline.
                armed = None;
                down_at.as_mut().reset(Instant::now() + far);
                changed(monitor.poll(std::time::Instant::now()), &monitor)
            }
            _ = sleep_until_some(silence) => {
                silence_deadline = None;
                set_silenced(&silenced, &name, true);
                tracing::warn!(peer = %name, %addr, grace = ?grace,
                    "peer gateway never answered a probe: judging it down (is UDP open between the gateway nodes?)");
                Some(Verdict::Down)
            }
            r = socket.recv(&mut buf) => match r {
                Ok(n) => changed(
                    PeerProbe::decode(&buf[..n])
                        .is_some_and(|p| monitor.on_reply(std::time::Instant::now(), addr, p)),
                    &monitor,
                ),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => changed(monitor.on_refused(), &monitor),
                Err(_) => None,
            },
            _ = events.closed() => return,
        };
        let Some(verdict) = verdict else { continue };
        if verdict == Verdict::Alive {
            set_silenced(&silenced, &name, false);
        }
        tracing::info!(peer = %name, %addr, ?verdict, "peer gateway");
        let event = PeerEvent {
            name: name.clone(),
            addr,
            verdict,
        };
        if events.send(event).await.is_err() {
            return;
        }
    }
}

/// The monitor's verdict if it `changed`.
fn changed(changed: bool, monitor: &HolderMonitor) -> Option<Verdict> {
    changed.then(|| monitor.current())
}

/// Sleeps until `at`, or forever when there is none.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn is_silenced(silenced: &Silenced, name: &str) -> bool {
    // A poisoned lock only means a task panicked mid-insert; the set is
    // still a valid set.
    silenced
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .contains(name)
}

fn set_silenced(silenced: &Silenced, name: &str, on: bool) {
    let mut set = silenced
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if on {
        set.insert(name.to_string());
    } else {
        set.remove(name);
    }
}

/// Size check kept next to the buffer above.
const _: () = assert!(PEER_PROBE_LEN <= 64);

#[cfg(test)]
mod tests;
