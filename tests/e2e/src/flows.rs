//! Many UDP echo flows between two pods, each with its own source port,
//! so a multipath route (L4 hash) spreads them over several gateways: a
//! short burst on one flow shows which gateway carries it (its cable
//! counters move), and a long run records, per flow, the longest time
//! without an echo — a flow through a killed gateway stalls, the others
//! must not.
//!
//! Sockets are opened in the pods' network namespaces by threads that
//! enter them (`setns` changes only the calling thread); a socket stays in
//! the namespace it was created in.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Binds a UDP socket to `addr` inside network namespace `netns` (a name
/// under /run/netns).
pub fn socket_in(netns: &str, addr: SocketAddr) -> UdpSocket {
    let path = format!("/run/netns/{netns}");
    std::thread::spawn(move || {
        let f = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        nix::sched::setns(f.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        UdpSocket::bind(addr).unwrap()
    })
    .join()
    .expect("the setns thread")
}

/// A UDP echo server in a pod: every datagram goes back to its sender.
pub struct Echo {
    /// Where it listens (the pod's IP, a port from the kernel).
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Echo {
    /// Starts it in `netns`, listening on `ip`.
    pub fn start(netns: &str, ip: Ipv4Addr) -> Echo {
        let sock = socket_in(netns, SocketAddr::new(ip.into(), 0));
        let addr = sock.local_addr().unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !stopped.load(Ordering::Relaxed) {
                if let Ok((n, from)) = sock.recv_from(&mut buf) {
                    let _ = sock.send_to(&buf[..n], from);
                }
            }
        });
        Echo {
            addr,
            stop,
            thread: Some(thread),
        }
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

/// One flow: a socket in the client pod connected to the echo server.
pub struct Flow {
    sock: UdpSocket,
}

/// What one flow saw during [`run`].
#[derive(Clone, Debug)]
pub struct FlowResult {
    /// Its source port.
    pub port: u16,
    /// Echoes received.
    pub replies: usize,
    /// The longest time without an echo (from the run's start to the first,
    /// between two, from the last to the run's end).
    pub gap: Duration,
}

/// Opens `n` flows from `netns` (source `ip`) to `server`.
pub fn open(netns: &str, ip: Ipv4Addr, server: SocketAddr, n: usize) -> Vec<Flow> {
    (0..n)
        .map(|_| {
            let sock = socket_in(netns, SocketAddr::new(ip.into(), 0));
            sock.connect(server).unwrap();
            Flow { sock }
        })
        .collect()
}

impl Flow {
    /// Its source port.
    pub fn port(&self) -> u16 {
        self.sock.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Sends `count` datagrams of `size` bytes and returns how many echoes
    /// came back within `timeout`.
    pub fn burst(&self, count: usize, size: usize, timeout: Duration) -> usize {
        let payload = vec![0x5a; size];
        for _ in 0..count {
            let _ = self.sock.send(&payload);
        }
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; size + 64];
        let mut got = 0;
        while got < count {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            self.sock.set_read_timeout(Some(left)).unwrap();
            if self.sock.recv(&mut buf).is_err() {
                break;
            }
            got += 1;
        }
        got
    }

    /// Sends a small datagram every `every` for `length` and records the
    /// echoes.
    fn run(&self, every: Duration, length: Duration) -> FlowResult {
        let start = Instant::now();
        let mut last = start;
        let mut gap = Duration::ZERO;
        let mut replies = 0;
        let mut buf = [0u8; 128];
        let mut next_send = start;
        while start.elapsed() < length {
            if Instant::now() >= next_send {
                let _ = self.sock.send(b"ferry active-active flow");
                next_send += every;
            }
            let wait = next_send
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1));
            self.sock.set_read_timeout(Some(wait)).unwrap();
            if self.sock.recv(&mut buf).is_ok() {
                let now = Instant::now();
                gap = gap.max(now - last);
                last = now;
                replies += 1;
            }
        }
        FlowResult {
            port: self.port(),
            replies,
            gap: gap.max(start.elapsed().saturating_sub(last - start)),
        }
    }
}

/// Runs every flow at once for `length` (one datagram per `every` each);
/// `during` runs meanwhile on the caller's thread (e.g. kills a gateway).
pub fn run(
    flows: &[Flow],
    every: Duration,
    length: Duration,
    during: impl FnOnce(),
) -> Vec<FlowResult> {
    std::thread::scope(|s| {
        let handles: Vec<_> = flows
            .iter()
            .map(|f| s.spawn(move || f.run(every, length)))
            .collect();
        during();
        handles
            .into_iter()
            .map(|h| h.join().expect("a flow thread"))
            .collect()
    })
}
