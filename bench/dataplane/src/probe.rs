//! Fine-grained probes with sockets made inside pod namespaces (so they are
//! the pods' traffic) but driven from this process, so that every instant
//! is on one monotonic clock with the disruptions (kill, link down):
//! - a UDP echo server in a pod;
//! - a prober sending a numbered UDP packet every interval and logging
//!   which were answered and when;
//! - a minimal DNS client (one A query, answer count and rcode).

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::sys;

/// A UDP socket bound to `0.0.0.0:port` inside namespace `ns`.
pub fn udp_socket(ns: &str, port: u16) -> Result<UdpSocket> {
    sys::in_netns(ns, move || UdpSocket::bind(("0.0.0.0", port)))
}

/// A UDP echo server in a namespace; stops when dropped.
pub struct Echo {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Echo {
    pub fn start(ns: &str, port: u16) -> Result<Echo> {
        let sock = udp_socket(ns, port)?;
        sock.set_read_timeout(Some(Duration::from_millis(100)))?;
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            while !s.load(Ordering::Relaxed) {
                if let Ok((n, from)) = sock.recv_from(&mut buf) {
                    let _ = sock.send_to(&buf[..n], from);
                }
            }
        });
        Ok(Echo {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What a [`Probe`] saw: send instants by sequence number, and replies.
#[derive(Default)]
pub struct ProbeLog {
    pub sent: Vec<Instant>,
    /// (sequence number, arrival).
    pub replies: Vec<(u64, Instant)>,
}

impl ProbeLog {
    /// The first reply (by arrival) to a probe sent at or after `t`:
    /// (its send instant, its arrival).
    pub fn first_reply_sent_after(&self, t: Instant) -> Option<(Instant, Instant)> {
        self.replies
            .iter()
            .filter_map(|(seq, at)| {
                let sent = *self.sent.get(usize::try_from(*seq).ok()?)?;
                (sent >= t).then_some((sent, *at))
            })
            .min_by_key(|(_, at)| *at)
    }

    /// Whether any probe sent before `t` was answered.
    pub fn answered_before(&self, t: Instant) -> bool {
        self.replies.iter().any(|(seq, _)| {
            usize::try_from(*seq)
                .ok()
                .and_then(|s| self.sent.get(s))
                .is_some_and(|sent| *sent < t)
        })
    }
}

/// Sends `run_id ‖ seq` to `target` every `interval` until stopped.
pub struct Probe {
    stop: Arc<AtomicBool>,
    pub log: Arc<Mutex<ProbeLog>>,
    thread: Option<JoinHandle<()>>,
}

impl Probe {
    pub fn start(
        sock: &UdpSocket,
        target: SocketAddr,
        interval: Duration,
        run_id: u32,
    ) -> Result<Probe> {
        let sock = sock.try_clone()?;
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(ProbeLog::default()));
        let (s, l) = (stop.clone(), log.clone());
        let thread = std::thread::spawn(move || {
            let mut next = Instant::now();
            let mut seq: u64 = 0;
            let mut buf = [0u8; 64];
            while !s.load(Ordering::Relaxed) {
                let now = Instant::now();
                if now >= next {
                    let mut msg = [0u8; 12];
                    msg[..4].copy_from_slice(&run_id.to_le_bytes());
                    msg[4..].copy_from_slice(&seq.to_le_bytes());
                    let t = Instant::now();
                    // Sends fail while there is no route: that is an outage too.
                    let _ = sock.send_to(&msg, target);
                    if let Ok(mut g) = l.lock() {
                        g.sent.push(t);
                    }
                    seq += 1;
                    next += interval;
                    continue;
                }
                let wait = (next - now).max(Duration::from_micros(100));
                let _ = sock.set_read_timeout(Some(wait));
                if let Ok(n) = sock.recv(&mut buf) {
                    let at = Instant::now();
                    if n == 12 && buf[..4] == run_id.to_le_bytes() {
                        let mut sb = [0u8; 8];
                        sb.copy_from_slice(&buf[4..12]);
                        if let Ok(mut g) = l.lock() {
                            g.replies.push((u64::from_le_bytes(sb), at));
                        }
                    }
                }
            }
        });
        Ok(Probe {
            stop,
            log,
            thread: Some(thread),
        })
    }

    pub fn first_reply_sent_after(&self, t: Instant) -> Option<(Instant, Instant)> {
        self.log.lock().ok()?.first_reply_sent_after(t)
    }

    pub fn answered_before(&self, t: Instant) -> bool {
        self.log.lock().is_ok_and(|g| g.answered_before(t))
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One UDP round trip to an echo server within `timeout`.
pub fn udp_roundtrip(sock: &UdpSocket, target: SocketAddr, timeout: Duration) -> bool {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let token = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut msg = [0u8; 12];
    msg[4..].copy_from_slice(&token.to_le_bytes());
    if sock.send_to(&msg, target).is_err() {
        return false;
    }
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 64];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let _ = sock.set_read_timeout(Some(left.max(Duration::from_micros(100))));
        match sock.recv(&mut buf) {
            Ok(12) if buf[..12] == msg => return true,
            Ok(_) => continue,
            Err(_) => return false,
        }
    }
    false
}

/// An A query for `qname` (recursion desired).
fn dns_query(id: u16, qname: &str) -> Vec<u8> {
    let mut q = Vec::with_capacity(64);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in qname.trim_end_matches('.').split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

/// Outcome of one DNS query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DnsAnswer {
    pub rcode: u8,
    pub answers: u16,
    /// The first A record's address.
    pub addr: Option<std::net::Ipv4Addr>,
}

impl DnsAnswer {
    /// The name resolved to at least one address.
    pub fn has_address(&self) -> bool {
        self.rcode == 0 && self.answers > 0
    }
}

/// Offset just past the (possibly compressed) name starting at `i`.
fn skip_name(msg: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let len = *msg.get(i)?;
        match len {
            0 => return Some(i + 1),
            l if l & 0xc0 == 0xc0 => return Some(i + 2),
            l => i += 1 + usize::from(l),
        }
    }
}

/// The address of the first A record in the answer section of DNS reply `msg`.
fn first_a(msg: &[u8]) -> Option<std::net::Ipv4Addr> {
    let word = |i: usize| Some(u16::from_be_bytes([*msg.get(i)?, *msg.get(i + 1)?]));
    let (questions, answers) = (word(4)?, word(6)?);
    let mut i = 12;
    for _ in 0..questions {
        i = skip_name(msg, i)? + 4;
    }
    for _ in 0..answers {
        i = skip_name(msg, i)?;
        let (rtype, rdlen) = (word(i)?, usize::from(word(i + 8)?));
        let data = msg.get(i + 10..i + 10 + rdlen)?;
        if rtype == 1 && rdlen == 4 {
            return Some(std::net::Ipv4Addr::new(data[0], data[1], data[2], data[3]));
        }
        i += 10 + rdlen;
    }
    None
}

/// Asks `server` for `qname`'s A records; `None` when no answer came within `timeout`.
pub fn resolve(
    sock: &UdpSocket,
    server: SocketAddr,
    qname: &str,
    id: u16,
    timeout: Duration,
) -> Result<Option<DnsAnswer>> {
    let q = dns_query(id, qname);
    sock.send_to(&q, server)?;
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 1500];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        sock.set_read_timeout(Some(left.max(Duration::from_micros(100))))?;
        match sock.recv(&mut buf) {
            Ok(n) if n >= 12 && buf[..2] == id.to_be_bytes() => {
                return Ok(Some(DnsAnswer {
                    rcode: buf[3] & 0x0f,
                    answers: u16::from_be_bytes([buf[6], buf[7]]),
                    addr: first_a(&buf[..n]),
                }));
            }
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(None);
            }
            Err(e) => bail!("DNS query to {server}: {e}"),
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_encoding() {
        let q = dns_query(0x1234, "a.bc.local");
        assert_eq!(&q[..4], &[0x12, 0x34, 0x01, 0x00]);
        assert_eq!(&q[12..], b"\x01a\x02bc\x05local\x00\x00\x01\x00\x01");
    }

    #[test]
    fn first_a_record_of_a_reply() {
        let mut msg = dns_query(7, "x.local");
        msg[6..8].copy_from_slice(&[0, 2]);
        // A CNAME (type 5) by a compressed name, then an A record.
        msg.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 5, 0, 2, 0xc0, 12]);
        msg.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 100, 120, 1, 9]);
        assert_eq!(first_a(&msg), Some("100.120.1.9".parse().unwrap()));
        msg[7] = 1;
        assert_eq!(first_a(&msg), None);
        assert_eq!(first_a(&msg[..20]), None);
    }

    #[test]
    fn first_reply_after_a_kill() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let log = ProbeLog {
            sent: vec![ms(0), ms(10), ms(20), ms(30)],
            // Seq 0 answered late, after the kill at 15 ms: it went the old way.
            replies: vec![(0, ms(16)), (3, ms(31)), (2, ms(33))],
        };
        assert_eq!(log.first_reply_sent_after(ms(15)), Some((ms(30), ms(31))));
        assert!(log.answered_before(ms(15)));
        assert_eq!(log.first_reply_sent_after(ms(40)), None);
    }
}
