use std::time::{Duration, Instant};

use super::*;

const PROC_NET_DEV_TEXT: &str = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     840      12    0    0    0     0          0         0      840      12    0    0    0     0       0          0
ferry-wg: 1234567   890    0    0    0     0          0         0  7654321     4321    0    0    0     0       0          0
  wan0: 99 1 0 0 0 0 0 0 77 1 0 0 0 0 0 0
";

#[test]
fn the_cable_device_line_gives_received_and_sent_bytes() {
    assert_eq!(
        device_counters(PROC_NET_DEV_TEXT, "ferry-wg"),
        Some((1_234_567, 7_654_321))
    );
    assert_eq!(device_counters(PROC_NET_DEV_TEXT, "wan0"), Some((99, 77)));
    assert_eq!(device_counters(PROC_NET_DEV_TEXT, "ferry-vxc"), None);
    // The header's `face |bytes` is not a device.
    assert_eq!(device_counters(PROC_NET_DEV_TEXT, "face"), None);
}

#[test]
fn the_report_is_the_totals_and_the_bytes_since_the_previous_sample() {
    let t0 = Instant::now();
    let mut m = TrafficMeter::default();
    m.record(Some((100, 200)), t0);
    assert_eq!(m.report(), None, "one sample has no window");
    m.record(Some((1_100, 3_200)), t0 + Duration::from_secs(30));
    assert_eq!(
        m.report(),
        Some(CableTraffic {
            tx_bytes: 3_200,
            rx_bytes: 1_100,
            window_bytes: 4_000,
            window_seconds: 30,
        })
    );
    // An idle window: totals stay, the window is empty.
    m.record(Some((1_100, 3_200)), t0 + Duration::from_secs(60));
    assert_eq!(m.report().map(|r| r.window_bytes), Some(0));
}

#[test]
fn a_new_device_restarts_the_counts() {
    let t0 = Instant::now();
    let mut m = TrafficMeter::default();
    m.record(Some((5_000, 5_000)), t0);
    // Counters went down: the device was made anew; its bytes are the window's.
    m.record(Some((10, 20)), t0 + Duration::from_secs(30));
    assert_eq!(m.report().map(|r| r.window_bytes), Some(30));
    // The cable went down: nothing to report until two new samples.
    m.record(None, t0 + Duration::from_secs(60));
    assert_eq!(m.report(), None);
    m.record(Some((1, 1)), t0 + Duration::from_secs(90));
    assert_eq!(m.report(), None);
}
