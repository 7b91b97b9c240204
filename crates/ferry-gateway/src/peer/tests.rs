use super::*;

const DETECT: Detect = Detect {
    interval: Duration::from_millis(50),
    multiplier: 3,
};

fn target(holder: &str, port: u16) -> Target {
    Target {
        holder: holder.into(),
        addr: SocketAddr::from(([198, 18, 0, 1], port)),
    }
}

fn answer(req: PeerProbe, active: bool) -> PeerProbe {
    PeerProbe {
        reply: true,
        active,
        seq: req.seq,
    }
}

#[test]
fn wire_format_round_trips_and_rejects_strays() {
    for (reply, active) in [(false, false), (true, false), (true, true)] {
        let p = PeerProbe {
            reply,
            active,
            seq: 0x0102_0304_0506_0708,
        };
        let b = p.encode();
        assert_eq!(b.len(), PEER_PROBE_LEN);
        assert_eq!(PeerProbe::decode(&b), Some(p));
    }
    let good = PeerProbe {
        reply: true,
        active: true,
        seq: 7,
    }
    .encode();
    assert_eq!(PeerProbe::decode(&good[..PEER_PROBE_LEN - 1]), None);
    let mut bad_magic = good;
    bad_magic[0] = b'X';
    assert_eq!(PeerProbe::decode(&bad_magic), None);
    let mut bad_flags = good;
    bad_flags[4] = 0x80;
    assert_eq!(PeerProbe::decode(&bad_flags), None);
    // The health probe's format is not a peer probe.
    let health = ferry_api::health_probe::Probe {
        reply: false,
        seq: 1,
        sent_nanos: 2,
    }
    .encode();
    assert_eq!(PeerProbe::decode(&health), None);
}

#[test]
fn a_holder_that_answered_is_down_after_the_detection_time() {
    let t0 = Instant::now();
    let ms = |n| t0 + Duration::from_millis(n);
    let mut m = HolderMonitor::new(DETECT, 100);
    assert!(m.next_request().is_none(), "no target, no probe");
    m.set_target(Some(target("a", 1)));
    let (addr, req) = m.next_request().unwrap();
    assert_eq!(addr, target("a", 1).addr);
    assert_eq!(m.verdict().verdict, Verdict::Unknown);
    assert!(m.on_reply(ms(1), addr, answer(req, true)));
    assert_eq!(m.verdict().verdict, Verdict::Alive);
    // A later answer moves the deadline.
    let (_, req) = m.next_request().unwrap();
    assert!(!m.on_reply(ms(60), addr, answer(req, true)));
    // Then silence: the multiplier's requests each get an interval.
    for _ in 0..DETECT.multiplier {
        m.next_request().unwrap();
        assert_eq!(m.deadline(), None, "not yet more than the multiplier");
    }
    assert!(!m.poll(ms(1000)));
    m.next_request().unwrap();
    assert_eq!(m.deadline(), Some(ms(60) + DETECT.time()));
    assert!(!m.poll(ms(60) + DETECT.time() - Duration::from_millis(1)));
    assert!(m.poll(ms(60) + DETECT.time()));
    assert_eq!(m.verdict().verdict, Verdict::Down);
    assert_eq!(m.deadline(), None);
    // It answers again (a stall, not a death): alive again.
    let (_, req) = m.next_request().unwrap();
    assert!(m.on_reply(ms(2000), addr, answer(req, true)));
    assert_eq!(m.verdict().verdict, Verdict::Alive);
}

/// A standby that was itself descheduled (a loaded node) sent no probes
/// meanwhile: however long since the last answer, that is no verdict.
#[test]
fn a_standby_that_sent_no_probes_blames_no_one() {
    let t0 = Instant::now();
    let mut m = HolderMonitor::new(DETECT, 0);
    m.set_target(Some(target("a", 1)));
    let (addr, req) = m.next_request().unwrap();
    m.on_reply(t0, addr, answer(req, true));
    m.next_request().unwrap();
    assert!(!m.poll(t0 + Duration::from_secs(5)));
    assert_eq!(m.verdict().verdict, Verdict::Alive);
    // The first probes after the stall are answered: still alive.
    let (_, req) = m.next_request().unwrap();
    assert!(!m.on_reply(t0 + Duration::from_secs(5), addr, answer(req, true)));
    assert_eq!(m.deadline(), None);
}

#[test]
fn a_holder_that_never_answered_is_never_declared_down() {
    let t0 = Instant::now();
    let mut m = HolderMonitor::new(DETECT, 0);
    m.set_target(Some(target("a", 1)));
    for _ in 0..10 {
        m.next_request();
    }
    assert!(!m.poll(t0 + Duration::from_secs(60)));
    assert_eq!(m.verdict().verdict, Verdict::Unknown);
    // Nor by an answer saying it is not active (it has not become active yet).
    let (addr, req) = m.next_request().unwrap();
    assert!(!m.on_reply(t0, addr, answer(req, false)));
    assert_eq!(m.verdict().verdict, Verdict::Unknown);
}

#[test]
fn a_holder_that_says_it_stepped_down_is_down_at_once() {
    let t0 = Instant::now();
    let mut m = HolderMonitor::new(DETECT, 0);
    m.set_target(Some(target("a", 1)));
    let (addr, req) = m.next_request().unwrap();
    m.on_reply(t0, addr, answer(req, true));
    let (_, req) = m.next_request().unwrap();
    assert!(m.on_reply(t0, addr, answer(req, false)));
    assert_eq!(m.verdict().verdict, Verdict::Down);
}

#[test]
fn answers_from_elsewhere_or_for_an_old_target_are_ignored() {
    let t0 = Instant::now();
    let mut m = HolderMonitor::new(DETECT, 0);
    m.set_target(Some(target("a", 1)));
    let (_, old) = m.next_request().unwrap();
    m.set_target(Some(target("b", 2)));
    let b = target("b", 2).addr;
    assert!(!m.on_reply(t0, b, answer(old, true)), "request to a");
    let (_, req) = m.next_request().unwrap();
    assert!(!m.on_reply(t0, target("a", 1).addr, answer(req, true)));
    assert!(!m.on_reply(
        t0,
        b,
        PeerProbe {
            reply: false,
            ..answer(req, true)
        }
    ));
    let future = PeerProbe {
        seq: req.seq + 5,
        ..answer(req, true)
    };
    assert!(!m.on_reply(t0, b, future), "never sent");
    assert!(m.on_reply(t0, b, answer(req, true)));
    // The same target again keeps the verdict; a new one resets it.
    m.set_target(Some(target("b", 2)));
    assert_eq!(m.verdict().verdict, Verdict::Alive);
    m.set_target(None);
    assert_eq!(m.verdict(), HolderVerdict::default());
}

#[test]
fn a_refused_probe_downs_a_holder_that_answered_at_once() {
    let t0 = Instant::now();
    let mut m = HolderMonitor::new(DETECT, 0);
    m.set_target(Some(target("a", 1)));
    assert!(!m.on_refused(), "never answered: no verdict");
    assert_eq!(m.verdict().verdict, Verdict::Unknown);
    let (addr, req) = m.next_request().unwrap();
    m.on_reply(t0, addr, answer(req, true));
    assert!(m.on_refused());
    assert_eq!(m.verdict().verdict, Verdict::Down);
    assert!(!m.on_refused());
}
