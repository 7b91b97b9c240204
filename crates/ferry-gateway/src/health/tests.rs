use super::*;

#[test]
fn rtt_summary() {
    let mut s = RttStats::new(3);
    assert!(s.summary().is_none());
    for ms in [10, 20, 30, 40] {
        s.add(Duration::from_millis(ms));
    }
    // The window keeps 20, 30, 40.
    let r = s.summary().unwrap();
    assert_eq!(Duration::from(r.last), Duration::from_millis(40));
    assert_eq!(Duration::from(r.min), Duration::from_millis(20));
    assert_eq!(Duration::from(r.max), Duration::from_millis(40));
    assert_eq!(Duration::from(r.average), Duration::from_millis(30));
    // Population stddev of 20, 30, 40 ms = 8.165 ms.
    assert_eq!(Duration::from(r.std_dev), Duration::from_micros(8165));
}

#[test]
fn state_machine() {
    let policy = HealthPolicy {
        error_after: Duration::from_millis(800),
        connect_grace: Duration::from_secs(2),
    };
    let t0 = Instant::now();
    let ms = |n| t0 + Duration::from_millis(n);
    let mut h = ConnectionHealth::new(t0);
    assert_eq!(h.status(), ConnectionStatus::Connecting);
    assert_eq!(h.deadline(&policy), Some(ms(2000)));
    // Within the grace period a silent new cable stays connecting.
    assert!(!h.on_tick(ms(1500), &policy));
    assert_eq!(h.status(), ConnectionStatus::Connecting);
    assert!(h.on_reply(ms(1600), Some(Duration::from_millis(1))));
    assert_eq!(h.status(), ConnectionStatus::Connected);
    // A remote's acknowledgement without an RTT figure counts as a reply.
    assert!(!h.on_reply(ms(1700), None));
    assert_eq!(
        h.rtt().map(|r| r.last),
        Some(Duration::from_millis(1).into())
    );
    // The deadline follows the last reply.
    assert_eq!(h.deadline(&policy), Some(ms(2500)));
    // 799 ms of silence: still fine; 800 ms: error.
    assert!(!h.on_tick(ms(2499), &policy));
    assert!(h.on_tick(ms(2500), &policy));
    assert_eq!(h.status(), ConnectionStatus::Error);
    assert_eq!(h.message(ms(2500)), "no health-check reply for 0.8s");
    assert_eq!(h.deadline(&policy), None);
    assert!(!h.on_tick(ms(5000), &policy));
    // It recovers by itself.
    assert!(h.on_reply(ms(5001), Some(Duration::from_millis(2))));
    assert_eq!(h.status(), ConnectionStatus::Connected);
    assert_eq!(h.message(ms(5001)), "");
}

#[test]
fn a_cable_that_never_answers_turns_error_after_the_grace() {
    let policy = HealthPolicy {
        error_after: Duration::from_millis(800),
        connect_grace: Duration::from_secs(2),
    };
    let t0 = Instant::now();
    let mut h = ConnectionHealth::new(t0);
    assert!(h.on_tick(t0 + Duration::from_secs(2), &policy));
    assert_eq!(
        h.message(t0 + Duration::from_secs(2)),
        "no health-check reply since the cable was set up 2.0s ago"
    );
}

#[test]
fn heard_news_counts_only_when_newer_than_the_cable() {
    let policy = HealthPolicy {
        error_after: Duration::from_millis(250),
        connect_grace: Duration::from_secs(2),
    };
    let t0 = Instant::now();
    let ms = |n| t0 + Duration::from_millis(n);
    let mut h = ConnectionHealth::new(ms(100));
    // A reply heard before this cable was set up (its previous incarnation).
    assert!(!h.on_heard(ms(50), &[Duration::from_micros(400)]));
    assert_eq!(h.status(), ConnectionStatus::Connecting);
    assert!(h.rtt().is_none());
    assert!(h.on_heard(ms(200), &[Duration::from_micros(300)]));
    assert_eq!(h.status(), ConnectionStatus::Connected);
    assert_eq!(h.deadline(&policy), Some(ms(450)));
    // The same news read again changes nothing.
    assert!(!h.on_heard(ms(200), &[]));
    assert!(!h.on_heard(ms(300), &[]));
    assert_eq!(h.deadline(&policy), Some(ms(550)));
    let rtt = h.rtt().unwrap();
    assert_eq!(Duration::from(rtt.last), Duration::from_micros(300));
}
