//! End-to-end tests in network namespaces (root only; they pass vacuously, with a
//! note, elsewhere): ferry ↔ ferry, interop with wireguard-go both ways, rekey,
//! roaming, peer removal, preshared-key mismatch, and garbage on the UDP port.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use ferry_wireguard::{DeviceConfig, PresharedKey};
use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const A_IN: &str = "100.64.0.1";
const B_IN: &str = "100.64.0.2";

fn sa(ip: &str, port: u16) -> SocketAddr {
    format!("{ip}:{port}").parse().unwrap()
}

fn cfg(keys: &Keys, port: u16) -> DeviceConfig {
    let mut c = DeviceConfig::new(format!("fw{}", tag()), keys.private.clone());
    c.listen_port = Some(port);
    c
}

/// Keys and device configs of a tunnel between `p.a` (100.64.0.1) and `p.b`
/// (100.64.0.2), both on port 51820, each the other's peer: a knows b's
/// endpoint; b knows a's only when `b_knows_a` (else it learns it from a's
/// handshake).
struct Tunnel {
    ka: Keys,
    kb: Keys,
    ca: DeviceConfig,
    cb: DeviceConfig,
}

fn tunnel(p: &Pair, b_knows_a: bool) -> Tunnel {
    let (ka, kb) = (Keys::new(), Keys::new());
    let mut ca = cfg(&ka, 51820);
    ca.peers = vec![peer(kb.public, Some(sa(&p.b_ip, 51820)), "100.64.0.2/32")];
    let mut cb = cfg(&kb, 51820);
    let a_ep = b_knows_a.then(|| sa(&p.a_ip, 51820));
    cb.peers = vec![peer(ka.public, a_ep, "100.64.0.1/32")];
    Tunnel { ka, kb, ca, cb }
}

#[test]
fn ferry_to_ferry_ping_tcp_and_wg_show() {
    require_root!();
    let p = Pair::new();
    let Tunnel { kb, ca, cb, .. } = tunnel(&p, true);
    let da = ferry(&p.a, ca, A_IN);
    let db = ferry(&p.b, cb, B_IN);
    assert!(p.a.ping(B_IN, 3), "ping through the tunnel");
    assert!(p.b.ping(A_IN, 3), "ping back");
    let bps = iperf(&p.b, &p.a, B_IN, "20M");
    assert!(bps > 0.0);
    let bps = iperf(&p.a, &p.b, A_IN, "20M");
    assert!(bps > 0.0);
    // `wg show` talks to our UAPI socket.
    let out = run_ok(p.a.cmd("wg").args(["show", da.name(), "dump"]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&kb.public.to_string()), "{text}");
    assert!(text.contains(&format!("{}:51820", p.b_ip)), "{text}");
    let stats = db.peers();
    assert!(stats[0].last_handshake.is_some());
    assert!(stats[0].rx_bytes > 10_000_000, "{stats:?}");
    // `wg set` too: remove the peer, then add it back with keepalive.
    let key = kb.public.to_string();
    run_ok(
        p.a.cmd("wg")
            .args(["set", da.name(), "peer", &key, "remove"]),
    );
    assert!(da.peers().is_empty());
    assert!(!p.a.ping(B_IN, 1));
    let ep = format!("{}:51820", p.b_ip);
    run_ok(p.a.cmd("wg").args([
        "set",
        da.name(),
        "peer",
        &key,
        "endpoint",
        &ep,
        "allowed-ips",
        "100.64.0.2/32",
        "persistent-keepalive",
        "25",
    ]));
    assert_eq!(da.peers()[0].config.persistent_keepalive, Some(25));
    assert!(
        p.a.ping(B_IN, 3),
        "traffic after `wg set` re-added the peer"
    );
}

fn interop(ferry_initiates: bool) {
    let p = Pair::new();
    let (kf, kg) = (Keys::new(), Keys::new());
    // ferry in a, wireguard-go in b; only the initiator knows the other's endpoint.
    let mut cf = cfg(&kf, 51820);
    let ep = ferry_initiates.then(|| sa(&p.b_ip, 51821));
    cf.peers = vec![peer(kg.public, ep, "100.64.0.2/32")];
    let _df = ferry(&p.a, cf, A_IN);
    let a_ep = format!("{}:51820", p.a_ip);
    let _wg = WgGo::start(
        &p.b,
        &kg,
        51821,
        B_IN,
        &kf.public,
        (!ferry_initiates).then_some(a_ep.as_str()),
        "100.64.0.1/32",
    );
    let (init, resp, resp_ip) = if ferry_initiates {
        (&p.a, &p.b, B_IN)
    } else {
        (&p.b, &p.a, A_IN)
    };
    assert!(init.ping(resp_ip, 3), "initiator pings responder");
    let other = if ferry_initiates { A_IN } else { B_IN };
    assert!(resp.ping(other, 3), "responder pings back");
    assert!(
        iperf(&p.b, &p.a, B_IN, "10M") > 0.0,
        "TCP ferry -> wireguard-go"
    );
    assert!(
        iperf(&p.a, &p.b, A_IN, "10M") > 0.0,
        "TCP wireguard-go -> ferry"
    );
}

#[test]
fn interop_ferry_initiates_to_wireguard_go() {
    require_root!();
    interop(true);
}

#[test]
fn interop_wireguard_go_initiates_to_ferry() {
    require_root!();
    interop(false);
}

#[test]
fn rekey_with_short_timer_keeps_traffic() {
    require_root!();
    let p = Pair::new();
    let Tunnel { mut ca, cb, .. } = tunnel(&p, false);
    ca.rekey_after = Some(Duration::from_secs(2));
    let da = ferry(&p.a, ca, A_IN);
    let _db = ferry(&p.b, cb, B_IN);
    assert!(p.a.ping(B_IN, 2));
    let first = da.peers()[0].last_handshake.unwrap();
    // A later handshake replaces the session, and traffic keeps flowing across it.
    assert!(eventually(Duration::from_secs(30), || {
        p.a.ping(B_IN, 1);
        da.peers()[0].last_handshake.is_some_and(|t| t > first)
    }));
    let second = da.peers()[0].last_handshake.unwrap();
    assert!(eventually(Duration::from_secs(30), || {
        p.a.ping(B_IN, 1);
        da.peers()[0].last_handshake.is_some_and(|t| t > second)
    }));
    assert!(p.a.ping(B_IN, 5), "traffic after two rekeys");
    assert!(p.b.ping(A_IN, 3));
}

#[test]
fn endpoint_roaming_follows_the_peer() {
    require_root!();
    let p = Pair::new();
    let Tunnel { ca, cb, .. } = tunnel(&p, false);
    let _da = ferry(&p.a, ca, A_IN);
    let db = ferry(&p.b, cb, B_IN);
    assert!(p.a.ping(B_IN, 2));
    assert_eq!(db.peers()[0].config.endpoint, Some(sa(&p.a_ip, 51820)));
    // a moves to a new underlay address
    let new_ip = format!("{}.3", p.a_ip.rsplit_once('.').unwrap().0);
    p.a.ip(&["addr", "del", &format!("{}/24", p.a_ip), "dev", &p.a_veth]);
    p.a.ip(&["addr", "add", &format!("{new_ip}/24"), "dev", &p.a_veth]);
    assert!(
        p.a.ping_until(B_IN, Duration::from_secs(10)),
        "traffic after roaming"
    );
    assert_eq!(db.peers()[0].config.endpoint, Some(sa(&new_ip, 51820)));
    assert!(p.b.ping(A_IN, 3), "b answers at the new endpoint");
}

#[test]
fn peer_removed_and_readded() {
    require_root!();
    let p = Pair::new();
    let Tunnel { ka, ca, cb, .. } = tunnel(&p, true);
    let b_peer = cb.peers[0].clone();
    let _da = ferry(&p.a, ca, A_IN);
    let db = ferry(&p.b, cb, B_IN);
    assert!(p.a.ping(B_IN, 2));
    assert!(db.remove_peer(&ka.public));
    assert!(db.peers().is_empty());
    assert!(!p.a.ping(B_IN, 2), "no traffic once the peer is removed");
    db.upsert_peer(b_peer);
    // b initiates a fresh handshake as soon as it has something to send
    assert!(
        p.b.ping_until(A_IN, Duration::from_secs(10)),
        "traffic after re-adding"
    );
    assert!(p.a.ping(B_IN, 3));
}

/// Collects log output of this test process.
#[derive(Clone, Default)]
struct LogBuf(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn preshared_key_mismatch_blocks_traffic_and_says_so() {
    require_root!();
    let logs = LogBuf::default();
    let w = logs.clone();
    tracing_subscriber::fmt()
        .with_writer(move || w.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .init();
    let p = Pair::new();
    let Tunnel { mut ca, mut cb, .. } = tunnel(&p, true);
    // Each side gets its own random key: they do not match.
    ca.peers[0].preshared_key = Some(PresharedKey::generate());
    cb.peers[0].preshared_key = Some(PresharedKey::generate());
    let _da = ferry(&p.a, ca, A_IN);
    let _db = ferry(&p.b, cb, B_IN);
    assert!(
        !p.a.ping(B_IN, 3),
        "no traffic with mismatched preshared keys"
    );
    let text = String::from_utf8_lossy(&logs.0.lock().unwrap()).to_string();
    assert!(text.contains("preshared key mismatch"), "log was: {text}");
}

#[test]
fn garbage_and_truncated_datagrams_are_dropped() {
    require_root!();
    let p = Pair::new();
    let Tunnel { ca, cb, .. } = tunnel(&p, true);
    let _da = ferry(&p.a, ca, A_IN);
    let db = ferry(&p.b, cb, B_IN);
    assert!(p.a.ping(B_IN, 1));
    let target = sa(&p.b_ip, 51820);
    p.a.enter(move || {
        let s = UdpSocket::bind("0.0.0.0:0").unwrap();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for i in 0..3000usize {
            let len = (rnd() % 1600) as usize;
            let mut d: Vec<u8> = (0..len).map(|_| rnd() as u8).collect();
            if !d.is_empty() {
                // valid-looking type byte with wrong lengths and random indexes
                d[0] = (i % 5) as u8;
                if d.len() > 3 {
                    d[1..4].fill(0);
                }
            }
            let d = match i % 7 {
                0 => d.into_iter().take(148).collect(),
                1 => d.into_iter().take(92).collect(),
                2 => d.into_iter().take(32).collect(),
                _ => d,
            };
            let _ = s.send_to(&d, target);
        }
        let _ = s.send_to(&[], target);
    });
    assert!(eventually(Duration::from_secs(10), || db.rx_invalid() > 1000));
    assert!(p.a.ping(B_IN, 3), "tunnel still works");
    assert!(p.b.ping(A_IN, 3));
}

#[test]
fn hub_with_two_peers_changes_one_without_disturbing_the_other() {
    require_root!();
    let (a, b, h) = (Netns::new("a"), Netns::new("b"), Netns::new("h"));
    let t = tag();
    let link = |x: &Netns, xn: &str, xip: &str, yn: &str, yip: &str| {
        run_ok(std::process::Command::new("ip").args([
            "link", "add", xn, "netns", &x.name, "type", "veth", "peer", "name", yn, "netns",
            &h.name,
        ]));
        x.ip(&["addr", "add", &format!("{xip}/24"), "dev", xn]);
        h.ip(&["addr", "add", &format!("{yip}/24"), "dev", yn]);
        x.ip(&["link", "set", xn, "up"]);
        h.ip(&["link", "set", yn, "up"]);
    };
    link(
        &a,
        &format!("fxa{t}"),
        "198.18.201.1",
        &format!("fxha{t}"),
        "198.18.201.2",
    );
    link(
        &b,
        &format!("fxb{t}"),
        "198.18.202.1",
        &format!("fxhb{t}"),
        "198.18.202.2",
    );
    let (ka, kb, kh) = (Keys::new(), Keys::new(), Keys::new());
    let mut ch = cfg(&kh, 51820);
    let hub_b = peer(kb.public, None, "100.64.0.3/32");
    ch.peers = vec![peer(ka.public, None, "100.64.0.1/32"), hub_b.clone()];
    let dh = ferry(&h, ch, "100.64.0.2");
    let mut ca = cfg(&ka, 51820);
    ca.peers = vec![peer(
        kh.public,
        Some(sa("198.18.201.2", 51820)),
        "100.64.0.0/24",
    )];
    let _da = ferry(&a, ca, A_IN);
    let mut cb = cfg(&kb, 51820);
    cb.peers = vec![peer(
        kh.public,
        Some(sa("198.18.202.2", 51820)),
        "100.64.0.0/24",
    )];
    let _db = ferry(&b, cb, "100.64.0.3");
    assert!(a.ping("100.64.0.2", 2));
    assert!(b.ping("100.64.0.2", 2));
    // the hub routes by allowed IPs: replies go to the right peer
    assert!(h.ping(A_IN, 2));
    assert!(h.ping("100.64.0.3", 2));
    let hs_a = dh
        .peers()
        .into_iter()
        .find(|p| p.config.public_key == ka.public)
        .unwrap()
        .last_handshake;
    // change b's allowed IPs, then remove b: a keeps its session and its traffic
    let mut changed = hub_b.clone();
    changed.allowed_ips = vec![
        "100.64.0.3/32".parse().unwrap(),
        "100.64.9.0/24".parse().unwrap(),
    ];
    dh.upsert_peer(changed);
    assert!(a.ping("100.64.0.2", 2));
    assert!(b.ping("100.64.0.2", 2));
    assert!(dh.remove_peer(&kb.public));
    assert!(a.ping("100.64.0.2", 3));
    assert!(!h.ping("100.64.0.3", 1));
    let after = dh.peers();
    assert_eq!(after.len(), 1);
    // (last_handshake is derived from a monotonic age, so allow clock jitter)
    let (t0, t1) = (hs_a.unwrap(), after[0].last_handshake.unwrap());
    let drift = t1.duration_since(t0).unwrap_or_else(|e| e.duration());
    assert!(
        drift < Duration::from_millis(500),
        "a's session was not disturbed"
    );
}
