//! Helpers for the root-only network-namespace tests: namespaces with unique names
//! that are deleted on drop (and swept if a crashed test left them; both from
//! `ferry_net::testing`, the one netns guard of the workspace), a device started
//! inside a namespace, wireguard-go driven by `wg`, and commands run in a namespace.
//!
//! Addresses come only from 198.18.0.0/15 (underlay) and 100.64.0.0/10 (tunnel);
//! no namespace gets a default route.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use ferry_wireguard::{Device, DeviceConfig, PeerConfig, PrivateKey, PublicKey};
use std::net::SocketAddr;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub use ferry_net::testing::{is_root, sweep, tag};

/// Skip (pass vacuously, with a note) when not root or without /dev/net/tun.
#[macro_export]
macro_rules! require_root {
    () => {
        if !common::is_root() || !std::path::Path::new("/dev/net/tun").exists() {
            eprintln!("skipped: needs root and /dev/net/tun");
            return;
        }
        common::sweep();
    };
}

/// Picks the underlay /24 of each [`Pair`].
static SUBNETS: AtomicU32 = AtomicU32::new(0);

/// A network namespace from ferry-net's test guard (a unique
/// `fnt-<pid>-…` name, `lo` up, deleted on drop and swept by [`sweep`] once
/// its process is gone), with the helpers these tests use.
pub struct Netns {
    pub name: String,
    _guard: ferry_net::testing::Netns,
}

impl Netns {
    pub fn new(role: &str) -> Self {
        let guard = ferry_net::testing::Netns::new(role).unwrap();
        Self {
            name: guard.name.clone(),
            _guard: guard,
        }
    }
    pub fn cmd(&self, prog: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, prog]);
        c
    }
    pub fn ip(&self, args: &[&str]) {
        run_ok(Command::new("ip").arg("-n").arg(&self.name).args(args));
    }
    /// Run `f` on a thread that has entered this namespace; anything it creates
    /// (TUN, sockets, threads) lives there.
    pub fn enter<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/var/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let f_ns = std::fs::File::open(&path).unwrap();
            nix::sched::setns(f_ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            f()
        })
        .join()
        .unwrap()
    }
    /// ping; true when all replies came back.
    pub fn ping(&self, dst: &str, count: u32) -> bool {
        self.cmd("ping")
            .args(["-c", &count.to_string(), "-i", "0.2", "-W", "2", "-q", dst])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    }
    /// ping until one reply comes back, or `deadline` passes.
    pub fn ping_until(&self, dst: &str, deadline: Duration) -> bool {
        let t = Instant::now();
        while t.elapsed() < deadline {
            if self
                .cmd("ping")
                .args(["-c", "1", "-W", "1", "-q", dst])
                .stdout(Stdio::null())
                .status()
                .unwrap()
                .success()
            {
                return true;
            }
        }
        false
    }
}

pub fn run_ok(c: &mut Command) -> Output {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{c:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Two namespaces joined by a veth: a = 198.18.x.1, b = 198.18.x.2.
pub struct Pair {
    pub a: Netns,
    pub b: Netns,
    pub a_ip: String,
    pub b_ip: String,
    pub a_veth: String,
}

impl Pair {
    pub fn new() -> Self {
        let a = Netns::new("a");
        let b = Netns::new("b");
        let t = tag();
        let (va, vb) = (format!("fva{t}"), format!("fvb{t}"));
        run_ok(Command::new("ip").args([
            "link", "add", &va, "netns", &a.name, "type", "veth", "peer", "name", &vb, "netns",
            &b.name,
        ]));
        let octet = (SUBNETS.fetch_add(1, Ordering::Relaxed) % 250) + 1;
        let a_ip = format!("198.18.{octet}.1");
        let b_ip = format!("198.18.{octet}.2");
        a.ip(&["addr", "add", &format!("{a_ip}/24"), "dev", &va]);
        b.ip(&["addr", "add", &format!("{b_ip}/24"), "dev", &vb]);
        a.ip(&["link", "set", &va, "up"]);
        b.ip(&["link", "set", &vb, "up"]);
        Self {
            a,
            b,
            a_ip,
            b_ip,
            a_veth: va,
        }
    }
}

/// Keys of one side.
pub struct Keys {
    pub private: PrivateKey,
    pub public: PublicKey,
}

impl Keys {
    pub fn new() -> Self {
        let private = PrivateKey::generate();
        Self {
            public: private.public_key(),
            private,
        }
    }
}

pub fn peer(key: PublicKey, endpoint: Option<SocketAddr>, allowed: &str) -> PeerConfig {
    let mut p = PeerConfig::new(key);
    p.endpoint = endpoint;
    p.allowed_ips = vec![allowed.parse().unwrap()];
    p
}

/// Start a ferry device inside `ns`.
pub fn ferry(ns: &Netns, mut cfg: DeviceConfig, addr: &str) -> Device {
    cfg.addresses = vec![(addr.parse().unwrap(), 24)];
    ns.enter(move || Device::start(cfg).unwrap())
}

/// wireguard-go inside a namespace, configured with `wg`, killed on drop.
pub struct WgGo {
    child: Child,
    pub iface: String,
    ns: String,
}

impl WgGo {
    pub fn start(
        ns: &Netns,
        keys: &Keys,
        port: u16,
        addr: &str,
        peer: &PublicKey,
        endpoint: Option<&str>,
        allowed: &str,
    ) -> Self {
        let iface = format!("fwg{}", tag());
        let child = ns
            .cmd("wireguard-go")
            .args(["-f", &iface])
            .env("WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let me = Self {
            child,
            iface: iface.clone(),
            ns: ns.name.clone(),
        };
        let sock = format!("/var/run/wireguard/{iface}.sock");
        let t = Instant::now();
        while !std::path::Path::new(&sock).exists() {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "wireguard-go did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let dir = tempfile::tempdir().unwrap();
        let kf = dir.path().join("key");
        std::fs::write(&kf, keys.private.to_base64()).unwrap();
        let mut c = ns.cmd("wg");
        c.args([
            "set",
            &iface,
            "listen-port",
            &port.to_string(),
            "private-key",
        ])
        .arg(&kf)
        .args(["peer", &peer.to_string(), "allowed-ips", allowed]);
        if let Some(e) = endpoint {
            c.args(["endpoint", e]);
        }
        run_ok(&mut c);
        ns.ip(&["addr", "add", &format!("{addr}/24"), "dev", &iface]);
        ns.ip(&["link", "set", &iface, "up"]);
        me
    }
}

impl Drop for WgGo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(format!("/var/run/wireguard/{}.sock", self.iface));
        let _ = &self.ns;
    }
}

/// iperf3 server in `server` (one test), client in `client`; returns bits/s.
pub fn iperf(server: &Netns, client: &Netns, dst: &str, bytes: &str) -> f64 {
    let mut s = server
        .cmd("iperf3")
        .args(["-s", "-1", "-p", "5201"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let out = client
        .cmd("iperf3")
        .args(["-c", dst, "-p", "5201", "-n", bytes, "-J"])
        .output()
        .unwrap();
    let _ = s.kill();
    let _ = s.wait();
    assert!(
        out.status.success(),
        "iperf3 failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap_or(0.0)
}

/// Poll `f` until it returns true or `deadline` passes.
pub fn eventually(deadline: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}
