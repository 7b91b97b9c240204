use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use super::*;
use crate::peer::Verdict;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn detect() -> Detect {
    Detect {
        interval: Duration::from_millis(20),
        multiplier: 3,
    }
}

/// A peer gateway's answering side: answers every probe as active.
async fn answering_peer() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let s = UdpSocket::bind(SocketAddr::new(LOOPBACK, 0)).await.unwrap();
    let addr = s.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut buf = [0u8; 64];
        while let Ok((n, from)) = s.recv_from(&mut buf).await {
            if let Some(p) = PeerProbe::decode(&buf[..n]) {
                let answer = PeerProbe {
                    reply: true,
                    active: true,
                    seq: p.seq,
                };
                let _ = s.send_to(&answer.encode(), from).await;
            }
        }
    });
    (addr, task)
}

async fn next_event(rx: &mut tokio::sync::mpsc::Receiver<PeerEvent>) -> PeerEvent {
    tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("a peer verdict within 30 s")
        .expect("the watch is alive")
}

#[tokio::test]
async fn a_peer_that_answered_and_then_died_is_reported_down() {
    let (addr, peer) = answering_peer().await;
    let (mut watch, mut rx) = PeerWatch::new(LOOPBACK, detect(), GRACE);
    watch.set_targets(&BTreeMap::from([("a-n1".to_string(), addr)]));
    let alive = next_event(&mut rx).await;
    assert_eq!(
        alive,
        PeerEvent {
            name: "a-n1".into(),
            addr,
            verdict: Verdict::Alive
        }
    );
    // Its process is gone: its port refuses (or stays silent) → down.
    peer.abort();
    let _ = peer.await;
    let down = next_event(&mut rx).await;
    assert_eq!(down.verdict, Verdict::Down);
    assert_eq!(down.name, "a-n1");
}

/// Long enough that no test peer that answers is ever mistaken for silent.
const GRACE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_peer_that_never_answered_is_not_judged_by_the_detection_time() {
    // A bound socket that never answers: no refusal, no answer.
    let mute = UdpSocket::bind(SocketAddr::new(LOOPBACK, 0)).await.unwrap();
    let addr = mute.local_addr().unwrap();
    let (mut watch, mut rx) = PeerWatch::new(LOOPBACK, detect(), GRACE);
    watch.set_targets(&BTreeMap::from([("a-n1".to_string(), addr)]));
    // Many detection times pass without a verdict.
    let got = tokio::time::timeout(detect().time() * 20, rx.recv()).await;
    assert!(got.is_err(), "no verdict expected: {got:?}");
}

#[tokio::test]
async fn a_peer_that_never_answers_is_judged_down_once_after_the_grace() {
    let grace = Duration::from_millis(300);
    let mute = UdpSocket::bind(SocketAddr::new(LOOPBACK, 0)).await.unwrap();
    let addr = mute.local_addr().unwrap();
    let peer = BTreeMap::from([("a-n1".to_string(), addr)]);
    let (mut watch, mut rx) = PeerWatch::new(LOOPBACK, detect(), grace);
    let started = std::time::Instant::now();
    watch.set_targets(&peer);
    let down = next_event(&mut rx).await;
    assert_eq!((down.name.as_str(), down.verdict), ("a-n1", Verdict::Down));
    assert!(started.elapsed() >= grace, "{:?}", started.elapsed());
    // Its Endpoint is withdrawn and published again (it may be alive with
    // its probes blocked): a new target, but no second silent verdict.
    watch.set_targets(&BTreeMap::new());
    watch.set_targets(&peer);
    let got = tokio::time::timeout(grace * 5, rx.recv()).await;
    assert!(got.is_err(), "no second verdict expected: {got:?}");
    // Once it answers it is alive, and a later silence counts again.
    drop(mute);
    watch.set_targets(&BTreeMap::new());
    let (addr, answering) = answering_peer().await;
    let peer = BTreeMap::from([("a-n1".to_string(), addr)]);
    watch.set_targets(&peer);
    assert_eq!(next_event(&mut rx).await.verdict, Verdict::Alive);
    answering.abort();
    let _ = answering.await;
    assert_eq!(next_event(&mut rx).await.verdict, Verdict::Down);
    let mute = UdpSocket::bind(SocketAddr::new(LOOPBACK, 0)).await.unwrap();
    let peer = BTreeMap::from([("a-n1".to_string(), mute.local_addr().unwrap())]);
    watch.set_targets(&peer);
    assert_eq!(next_event(&mut rx).await.verdict, Verdict::Down);
}

#[tokio::test]
async fn a_vanished_peer_is_no_longer_probed() {
    let (addr, peer) = answering_peer().await;
    let (mut watch, mut rx) = PeerWatch::new(LOOPBACK, detect(), GRACE);
    watch.set_targets(&BTreeMap::from([("a-n1".to_string(), addr)]));
    assert_eq!(next_event(&mut rx).await.verdict, Verdict::Alive);
    // Its Endpoint is withdrawn: its task stops, so its death says nothing.
    watch.set_targets(&BTreeMap::new());
    assert!(watch.tasks.is_empty());
    peer.abort();
    let got = tokio::time::timeout(detect().time() * 20, rx.recv()).await;
    assert!(got.is_err(), "no verdict expected: {got:?}");
}
