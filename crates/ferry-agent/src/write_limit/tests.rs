use std::time::{Duration, Instant};

use super::{MIN_WRITES, WriteLimit};

#[test]
fn starts_at_the_maximum_and_never_exceeds_it() {
    let mut l = WriteLimit::new(256);
    assert_eq!(l.current(), 256);
    for _ in 0..10_000 {
        assert_eq!(l.succeeded(), 0);
    }
    assert_eq!(l.current(), 256);
    assert_eq!(WriteLimit::new(0).current(), 1, "at least one write");
}

#[test]
fn a_refusal_halves_once_per_window() {
    let t0 = Instant::now();
    let mut l = WriteLimit::new(256);
    assert_eq!(l.throttled(t0), 128);
    assert_eq!(l.current(), 128);
    // The other writes of the same window come back refused too.
    for ms in [1, 10, 100, 199] {
        assert_eq!(l.throttled(t0 + Duration::from_millis(ms)), 0);
    }
    assert_eq!(l.current(), 128);
    assert_eq!(l.throttled(t0 + Duration::from_millis(200)), 64);
    assert_eq!(l.current(), 64);
}

#[test]
fn never_goes_below_the_floor() {
    let mut t = Instant::now();
    let mut l = WriteLimit::new(256);
    for _ in 0..20 {
        l.throttled(t);
        t += Duration::from_secs(2);
    }
    assert_eq!(l.current(), MIN_WRITES);
    assert_eq!(l.throttled(t), 0);
    // A configured maximum below the floor stays where it is.
    let mut small = WriteLimit::new(2);
    assert_eq!(small.throttled(Instant::now()), 0);
    assert_eq!(small.current(), 2);
}

#[test]
fn grows_back_by_one_per_round_of_successes() {
    let mut l = WriteLimit::new(16);
    l.throttled(Instant::now());
    assert_eq!(l.current(), 8);
    // A round is as many successes as writes allowed in flight.
    let added: usize = (0..7).map(|_| l.succeeded()).sum();
    assert_eq!(added, 0);
    assert_eq!(l.succeeded(), 1);
    assert_eq!(l.current(), 9);
    let added: usize = (0..1000).map(|_| l.succeeded()).sum();
    assert_eq!(added, 7, "back to the maximum, not beyond");
    assert_eq!(l.current(), 16);
}
