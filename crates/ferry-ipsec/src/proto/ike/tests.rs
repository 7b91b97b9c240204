//! Two sessions talking to each other in memory, with time driven by the test.

use super::*;
use crate::proto::esp::{ESP_OVERHEAD, NEXT_HEADER_IPV4};
use crate::proto::message::Identity;
use std::net::IpAddr;

const A: &str = "198.18.0.1:4500";
const B: &str = "198.18.0.2:4500";

fn net(s: &str, p: u8) -> TrafficSelector {
    TrafficSelector::subnet(s.parse::<IpAddr>().unwrap(), p).unwrap()
}

fn config(local: &str, remote: &str, initiate: bool) -> Config {
    let (l, r): (SocketAddr, SocketAddr) = (local.parse().unwrap(), remote.parse().unwrap());
    let a_side = local == A;
    let (mine, theirs) = if a_side {
        (
            vec![net("100.64.1.0", 24)],
            vec![net("100.64.2.0", 24), net("100.65.2.0", 24)],
        )
    } else {
        (
            vec![net("100.64.2.0", 24), net("100.65.2.0", 24)],
            vec![net("100.64.1.0", 24)],
        )
    };
    Config {
        psk: Psk::new(vec![7u8; 32]),
        local_id: Identity::ip(l.ip()),
        remote_id: Identity::ip(r.ip()),
        local_addr: l,
        remote_addr: r,
        ike_suites: vec!["aes256gcm16-prfsha256-x25519".parse().unwrap()],
        esp_suites: vec!["aes256gcm16".parse().unwrap()],
        local_ts: mine,
        remote_ts: theirs,
        initiate,
        force_encap: true,
        timers: Timers {
            ike_rekey: Duration::from_secs(1000),
            child_rekey: Duration::from_secs(300),
            dpd: Duration::from_secs(30),
            retransmit_base: Duration::from_secs(1),
            retransmit_tries: 3,
            retry: Duration::from_secs(5),
        },
    }
}

struct Pair {
    a: Session,
    b: Session,
    t0: Instant,
}

impl Pair {
    fn new(ca: Config, cb: Config) -> Self {
        let t0 = Instant::now();
        Self {
            a: Session::new(ca, t0).unwrap(),
            b: Session::new(cb, t0).unwrap(),
            t0,
        }
    }
    fn at(&self, secs: u64) -> Instant {
        self.t0 + Duration::from_secs(secs)
    }
    /// Deliver everything both sides send until both are quiet.
    fn pump(&mut self, now: Instant) {
        self.pump_filtered(now, |_, _| true);
    }
    fn pump_filtered(&mut self, now: Instant, mut keep: impl FnMut(bool, &[u8]) -> bool) {
        for _ in 0..50 {
            self.a.poll(now);
            self.b.poll(now);
            let from_a = self.a.take_transmits();
            let from_b = self.b.take_transmits();
            if from_a.is_empty() && from_b.is_empty() {
                return;
            }
            let keepalive = |t: &Transmit| t.bytes == [0xff];
            let (from_a, from_b): (Vec<_>, Vec<_>) = (
                from_a.into_iter().filter(|t| !keepalive(t)).collect(),
                from_b.into_iter().filter(|t| !keepalive(t)).collect(),
            );
            for t in from_a {
                assert_eq!(t.dst, B.parse().unwrap());
                if keep(true, &t.bytes) {
                    let _ = self.b.handle(now, A.parse().unwrap(), &t.bytes[4..]);
                }
            }
            for t in from_b {
                if keep(false, &t.bytes) {
                    let _ = self.a.handle(now, B.parse().unwrap(), &t.bytes[4..]);
                }
            }
        }
        panic!("sessions never went quiet");
    }
}

/// Seal on `from`'s outbound SA and open on `to`'s matching inbound SA.
fn carry(from: &Session, to: &Session) -> Result<(), crate::Error> {
    let out = &from.outbound().expect("no outbound SA").outbound;
    let inner = [0x45u8; 100];
    let mut pkt = vec![0u8; inner.len() + ESP_OVERHEAD];
    let n = out.seal(&inner, NEXT_HEADER_IPV4, &mut pkt)?;
    pkt.truncate(n);
    let inb = to
        .children()
        .iter()
        .find(|c| c.inbound.spi == out.spi)
        .ok_or(crate::Error::UnknownSpi(out.spi))?;
    let r = inb.inbound.open(&mut pkt)?;
    assert_eq!(&pkt[r.start..r.start + r.len], &inner[..]);
    Ok(())
}

fn established(p: &Pair) {
    assert_eq!(p.a.status(), &Status::Established, "a: {:?}", p.a.status());
    assert_eq!(p.b.status(), &Status::Established, "b: {:?}", p.b.status());
    carry(&p.a, &p.b).unwrap();
    carry(&p.b, &p.a).unwrap();
}

#[test]
fn establishes_with_every_supported_suite() {
    for (ike, esp) in [
        ("aes256gcm16-prfsha256-x25519", "aes256gcm16"),
        ("aes128gcm16-prfsha256-ecp256", "aes128gcm16"),
        ("chacha20poly1305-prfsha256-x25519", "chacha20poly1305"),
        ("chacha20poly1305-prfsha256-ecp256", "chacha20poly1305-esn"),
    ] {
        let mut ca = config(A, B, true);
        let mut cb = config(B, A, false);
        for c in [&mut ca, &mut cb] {
            c.ike_suites = vec![ike.parse().unwrap()];
            c.esp_suites = vec![esp.parse().unwrap()];
        }
        let mut p = Pair::new(ca, cb);
        p.pump(p.t0);
        established(&p);
        let (ca, cb) = (&p.a.children()[0], &p.b.children()[0]);
        assert_eq!(ca.suite.to_string(), esp);
        // The one child SA covers both of b's subnets.
        assert_eq!(ca.remote_ts.len(), 2);
        assert_eq!(cb.local_ts.len(), 2);
    }
}

#[test]
fn responder_narrows_selectors_and_asks_for_another_group() {
    let mut ca = config(A, B, true);
    let mut cb = config(B, A, false);
    // a prefers P-256 in its first KE; b only does X25519 → INVALID_KE_PAYLOAD, retry.
    ca.ike_suites = vec![
        "aes256gcm16-prfsha256-ecp256".parse().unwrap(),
        "aes256gcm16-prfsha256-x25519".parse().unwrap(),
    ];
    // a asks for all of 100.64.0.0/10; b has only one /24 of it.
    ca.remote_ts = vec![net("100.64.0.0", 10)];
    cb.local_ts = vec![net("100.64.2.0", 24), net("198.18.100.0", 24)];
    let mut p = Pair::new(ca, cb);
    p.pump(p.t0);
    established(&p);
    assert_eq!(p.a.children()[0].remote_ts, vec![net("100.64.2.0", 24)]);
}

#[test]
fn wrong_psk_fails_with_a_clear_reason_on_both_sides() {
    let ca = config(A, B, true);
    let mut cb = config(B, A, false);
    cb.psk = Psk::new(vec![8u8; 32]);
    let mut p = Pair::new(ca, cb);
    p.pump(p.t0);
    let Status::Failed(why_b) = p.b.status() else {
        panic!("{:?}", p.b.status())
    };
    assert!(why_b.contains("preshared key mismatch"), "{why_b}");
    let Status::Failed(why_a) = p.a.status() else {
        panic!("{:?}", p.a.status())
    };
    assert!(why_a.contains("preshared key"), "{why_a}");
    assert!(p.a.children().is_empty() && p.b.children().is_empty());
    // a tries again later (and fails again), it does not give up.
    p.pump(p.at(6));
    assert!(matches!(p.a.status(), Status::Failed(_)));
}

#[test]
fn short_psk_and_disjoint_proposals_are_refused() {
    let mut c = config(A, B, true);
    c.psk = Psk::new(b"short".to_vec());
    assert!(matches!(
        Session::new(c, Instant::now()),
        Err(crate::Error::Config(_))
    ));

    let ca = config(A, B, true);
    let mut cb = config(B, A, false);
    cb.ike_suites = vec!["chacha20poly1305-prfsha256-x25519".parse().unwrap()];
    let mut p = Pair::new(ca, cb);
    p.pump(p.t0);
    let Status::Failed(why) = p.a.status() else {
        panic!("{:?}", p.a.status())
    };
    assert!(why.contains("none of our IKE proposals"), "{why}");
    let Status::Failed(why) = p.b.status() else {
        panic!()
    };
    assert!(why.contains("no proposal chosen"), "{why}");

    let ca = config(A, B, true);
    let mut cb = config(B, A, false);
    cb.local_ts = vec![net("198.18.50.0", 24)];
    let mut p = Pair::new(ca, cb);
    p.pump(p.t0);
    let Status::Failed(why) = p.a.status() else {
        panic!("{:?}", p.a.status())
    };
    assert!(why.contains("TS_UNACCEPTABLE"), "{why}");
}

#[test]
fn child_rekey_keeps_the_old_sa_until_deleted() {
    let mut p = Pair::new(config(A, B, true), config(B, A, false));
    p.pump(p.t0);
    established(&p);
    let old_a_out = p.a.outbound().unwrap().outbound.clone();
    let old_b_out = p.b.outbound().unwrap().outbound.clone();
    // A packet sealed on the old SA, in flight during the rekey.
    let mut late = vec![0u8; 10 + ESP_OVERHEAD];
    let n = old_b_out.seal(&[1; 10], 4, &mut late).unwrap();
    late.truncate(n);
    // Let the rekey request and its answer through, but hold the delete back.
    let now = p.at(301);
    let mut informational = 0;
    p.pump_filtered(now, |_, b| {
        let ex = b[4 + 18];
        if ex == crate::proto::consts::exchange::INFORMATIONAL {
            informational += 1;
            return false;
        }
        true
    });
    assert!(informational > 0);
    assert_eq!(p.a.children().len(), 2);
    assert_eq!(p.b.children().len(), 2);
    // a sends on the new SA at once; b keeps sending on the old one until a uses the new.
    assert_ne!(p.a.outbound().unwrap().outbound.spi, old_a_out.spi);
    assert_eq!(p.b.outbound().unwrap().outbound.spi, old_b_out.spi);
    // The old inbound SA still decrypts.
    let old_in =
        p.a.children()
            .iter()
            .find(|c| c.inbound.spi == old_b_out.spi)
            .unwrap();
    old_in.inbound.open(&mut late).unwrap();
    carry(&p.a, &p.b).unwrap();
    p.b.poll(now);
    assert_ne!(p.b.outbound().unwrap().outbound.spi, old_b_out.spi);
    // Now let the delete through (it is retransmitted): the old SAs go on both sides.
    p.pump(p.at(303));
    assert_eq!(p.a.children().len(), 1);
    assert_eq!(p.b.children().len(), 1);
    established(&p);
}

#[test]
fn ike_rekey_moves_children_and_deletes_the_old_sa() {
    let (mut ca, mut cb) = (config(A, B, true), config(B, A, false));
    ca.timers.child_rekey = Duration::from_secs(10_000);
    cb.timers.child_rekey = Duration::from_secs(10_000);
    let mut p = Pair::new(ca, cb);
    p.pump(p.t0);
    let child_spi = p.a.children()[0].inbound.spi;
    p.pump(p.at(1001));
    assert_eq!(p.a.ike_sa_count(), 1);
    assert_eq!(p.b.ike_sa_count(), 1);
    assert_eq!(p.a.children()[0].inbound.spi, child_spi);
    established(&p);
    // The new IKE SA works: a liveness check on it is answered.
    p.pump(p.at(1100));
    established(&p);
    // And b can rekey it in turn (b is the responder of the first IKE SA).
    p.pump(p.at(2100));
    assert_eq!(p.a.ike_sa_count(), 1);
    established(&p);
}

#[test]
fn dead_peer_is_detected_and_the_initiator_starts_over() {
    let mut p = Pair::new(config(A, B, true), config(B, A, false));
    p.pump(p.t0);
    // b goes silent.
    for s in [31u64, 32, 34, 38, 46, 47] {
        p.pump_filtered(p.at(s), |from_a, _| !from_a);
    }
    let Status::Failed(why) = p.a.status() else {
        panic!("{:?}", p.a.status())
    };
    assert!(why.contains("dead peer"), "{why}");
    assert!(p.a.children().is_empty());
    // Back: a re-initiates after its retry delay, b replaces the old SAs.
    p.pump(p.at(60));
    established(&p);
    assert_eq!(p.b.ike_sa_count(), 1);
    assert_eq!(p.b.children().len(), 1);
}

#[test]
fn restarted_peer_replaces_the_old_sas() {
    let mut p = Pair::new(config(A, B, false), config(B, A, true));
    p.pump(p.t0);
    established(&p);
    // b restarts (a fresh session that initiates again).
    p.b = Session::new(config(B, A, true), p.at(10)).unwrap();
    p.pump(p.at(10));
    established(&p);
    assert_eq!(p.a.ike_sa_count(), 1);
    assert_eq!(p.a.children().len(), 1);
}

#[test]
fn retransmitted_requests_get_the_same_answer_and_garbage_is_counted() {
    let mut p = Pair::new(config(A, B, true), config(B, A, false));
    let now = p.t0;
    p.a.poll(now);
    let init = p.a.take_transmits().remove(0);
    p.b.handle(now, A.parse().unwrap(), &init.bytes[4..])
        .unwrap();
    let r1 = p.b.take_transmits();
    p.b.handle(now, A.parse().unwrap(), &init.bytes[4..])
        .unwrap();
    let r2 = p.b.take_transmits();
    assert_eq!(r1, r2);
    assert_eq!(p.b.ike_sa_count(), 1);
    p.a.handle(now, B.parse().unwrap(), &r1[0].bytes[4..])
        .unwrap();
    let auth = p.a.take_transmits().remove(0);
    // Truncations and bit flips of a real message are dropped and counted.
    let msg = &auth.bytes[4..];
    for n in [0, 10, 28, msg.len() - 1] {
        assert!(p.b.handle(now, A.parse().unwrap(), &msg[..n]).is_err());
    }
    for i in [20, 40, msg.len() - 1] {
        let mut bad = msg.to_vec();
        bad[i] ^= 1;
        assert!(
            p.b.handle(now, A.parse().unwrap(), &bad).is_err(),
            "flip at {i}"
        );
    }
    assert!(p.b.counters().invalid + p.b.counters().unexpected >= 7);
    assert!(p.b.take_transmits().is_empty());
    p.b.handle(now, A.parse().unwrap(), &auth.bytes[4..])
        .unwrap();
    let r1 = p.b.take_transmits();
    p.b.handle(now, A.parse().unwrap(), &auth.bytes[4..])
        .unwrap();
    assert_eq!(r1, p.b.take_transmits());
    assert_eq!(p.b.children().len(), 1);
    p.a.handle(now, B.parse().unwrap(), &r1[0].bytes[4..])
        .unwrap();
    established(&p);
}

#[test]
fn nat_keepalives_are_sent_while_sas_are_up() {
    let mut p = Pair::new(config(A, B, true), config(B, A, false));
    p.pump(p.t0);
    p.a.poll(p.at(21));
    let sent = p.a.take_transmits();
    assert!(sent.iter().any(|t| t.bytes == [0xff]), "{sent:?}");
    p.a.poll(p.at(22));
    assert!(!p.a.take_transmits().iter().any(|t| t.bytes == [0xff]));
}

#[test]
fn a_responder_told_to_initiate_opens_the_sa_and_keeps_it_when_told_to_stop() {
    // Neither side initiates: nothing happens.
    let mut p = Pair::new(config(A, B, false), config(B, A, false));
    p.pump(p.at(1));
    assert_eq!(p.a.status(), &Status::Connecting);
    assert_eq!(p.a.ike_sa_count() + p.b.ike_sa_count(), 0);
    // The gateway decides a initiates (NAT discovery answered): it does at once.
    let mut now_initiator = config(A, B, true);
    assert!(p.a.config().same_peer(&now_initiator));
    p.a.update(&now_initiator, p.at(2));
    p.pump(p.at(2));
    established(&p);
    // Told to stop initiating, a keeps the SAs it has.
    now_initiator.initiate = false;
    p.a.update(&now_initiator, p.at(3));
    p.pump(p.at(3));
    established(&p);
    // A different peer address is not the same peer (the SAs must go).
    let mut moved = config(A, B, true);
    moved.remote_addr = "198.18.0.3:4500".parse().unwrap();
    assert!(!p.a.config().same_peer(&moved));
}

#[test]
fn a_peer_that_moves_mid_session_is_followed_and_the_move_recorded() {
    let mut p = Pair::new(config(A, B, true), config(B, A, false));
    p.pump(p.t0);
    established(&p);
    assert_eq!(p.b.moved_from(), None);
    // b goes quiet for longer than the liveness interval (the ESP that
    // `established` carried counts as heard at the first poll): a checks on
    // b, and its request reaches b from a new address (a NAT rebinding, say).
    p.a.poll(p.at(31));
    p.a.take_transmits();
    p.a.poll(p.at(62));
    let dpd = p.a.take_transmits();
    let dpd = dpd
        .iter()
        .find(|t| t.bytes != [0xff])
        .expect("a DPD request");
    // A forged copy (bad integrity) from elsewhere moves nothing.
    let mut forged = dpd.bytes[4..].to_vec();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    let elsewhere: SocketAddr = "198.18.0.66:4500".parse().unwrap();
    assert!(p.b.handle(p.at(62), elsewhere, &forged).is_err());
    assert_eq!(p.b.remote(), A.parse().unwrap());
    assert_eq!(p.b.moved_from(), None);
    let moved: SocketAddr = "198.18.0.9:4501".parse().unwrap();
    p.b.handle(p.at(62), moved, &dpd.bytes[4..]).unwrap();
    assert_eq!(p.b.remote(), moved);
    assert_eq!(p.b.moved_from(), Some(A.parse().unwrap()));
    // The answer goes to where a is now.
    let answer = p.b.take_transmits();
    assert!(
        !answer.is_empty() && answer.iter().all(|t| t.dst == moved),
        "{answer:?}"
    );
}
