use super::*;

const INTERVAL: Duration = Duration::from_millis(100);

/// Whether the engine's alarm went off (without waiting for it).
async fn woken(h: &Heard) -> bool {
    tokio::time::timeout(Duration::from_millis(1), h.urgent())
        .await
        .is_ok()
}

#[tokio::test]
async fn only_a_reply_after_a_silence_wakes_the_engine() {
    let h = Heard::new(INTERVAL);
    let b: Arc<str> = Arc::from("b");
    let t0 = Instant::now();
    let ms = |n| t0 + Duration::from_millis(n);
    h.record(&b, t0, Some(Duration::from_micros(300)));
    assert!(woken(&h).await, "the first reply from a remote");
    for at in [100, 200, 300] {
        h.record(&b, ms(at), Some(Duration::from_micros(300)));
    }
    assert!(!woken(&h).await, "replies on time");
    // One lost: 200 ms since the last.
    h.record(&b, ms(500), None);
    assert!(woken(&h).await, "a reply after a lost one");
}

#[tokio::test]
async fn a_read_takes_the_samples_and_keeps_the_latest_time() {
    let h = Heard::new(INTERVAL);
    let b: Arc<str> = Arc::from("b");
    let t0 = Instant::now();
    let later = t0 + INTERVAL;
    h.record(&b, t0, Some(Duration::from_micros(300)));
    // An acknowledgement without an RTT figure still counts as heard.
    h.record(&b, later, None);
    let mut seen = Vec::new();
    h.read(|c, n| seen.push((c.to_string(), n.clone())));
    let want = News {
        last: Some(later),
        rtts: vec![Duration::from_micros(300)],
    };
    assert_eq!(seen, vec![("b".to_string(), want)]);
    let mut again = Vec::new();
    h.read(|_, n| again.push(n.clone()));
    assert_eq!(
        again,
        vec![News {
            last: Some(later),
            rtts: vec![]
        }]
    );
    // Still remembered: a reply on time after the read is not urgent.
    let _ = woken(&h).await;
    h.record(&b, later + INTERVAL, None);
    assert!(!woken(&h).await);
    h.retain(|c| c != "b");
    let mut none = 0;
    h.read(|_, _| none += 1);
    assert_eq!(none, 0);
}
