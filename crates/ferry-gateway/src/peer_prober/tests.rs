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
    let (mut watch, mut rx) = PeerWatch::new(LOOPBACK, detect());
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

#[tokio::test]
async fn a_peer_that_never_answered_is_never_judged_down() {
    // A bound socket that never answers: no refusal, no answer.
    let mute = UdpSocket::bind(SocketAddr::new(LOOPBACK, 0)).await.unwrap();
    let addr = mute.local_addr().unwrap();
    let (mut watch, mut rx) = PeerWatch::new(LOOPBACK, detect());
    watch.set_targets(&BTreeMap::from([("a-n1".to_string(), addr)]));
    // Many detection times pass without a verdict.
    let got = tokio::time::timeout(detect().time() * 20, rx.recv()).await;
    assert!(got.is_err(), "no verdict expected: {got:?}");
}

#[tokio::test]
async fn a_vanished_peer_is_no_longer_probed() {
    let (addr, peer) = answering_peer().await;
    let (mut watch, mut rx) = PeerWatch::new(LOOPBACK, detect());
    watch.set_targets(&BTreeMap::from([("a-n1".to_string(), addr)]));
    assert_eq!(next_event(&mut rx).await.verdict, Verdict::Alive);
    // Its Endpoint is withdrawn: its task stops, so its death says nothing.
    watch.set_targets(&BTreeMap::new());
    assert!(watch.tasks.is_empty());
    peer.abort();
    let got = tokio::time::timeout(detect().time() * 20, rx.recv()).await;
    assert!(got.is_err(), "no verdict expected: {got:?}");
}
