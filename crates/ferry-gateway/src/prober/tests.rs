use super::*;

const INTERVAL: Duration = Duration::from_millis(100);

#[test]
fn acked_request_round_trips_and_plain_decoders_ignore_it() {
    let req = AckedRequest {
        probe: Probe {
            reply: false,
            seq: 7,
            sent_nanos: 123_456,
        },
        echo_age: Some(Duration::from_millis(100)),
        rtt: None,
    };
    let wire = req.encode();
    assert_eq!(AckedRequest::decode(&wire), Some(req));
    assert_eq!(
        Probe::decode(&wire),
        None,
        "older gateways and ferry-ctl skip it"
    );
    assert_eq!(AckedRequest::decode(&wire[..PROBE_LEN]), None);
    assert_eq!(AckedRequest::decode(&req.probe.encode()), None);
}

#[test]
fn the_lower_cluster_id_probes_when_both_know_acks() {
    assert_eq!(Role::towards("a", "b", true), Role::Prober);
    assert_eq!(Role::towards("b", "a", true), Role::Responder);
    assert_eq!(Role::towards("a", "b", false), Role::Plain);
    assert_eq!(Role::towards("b", "a", false), Role::Plain);
}

/// A checker on 127.0.0.1 with one remote, `peer`, in `role`.
async fn checker(peer: &UdpSocket, role: Role) -> Checker {
    let socket = bind(Ipv4Addr::LOCALHOST, 0).unwrap();
    // try_send_to reports WouldBlock until the runtime has seen the socket writable.
    socket.writable().await.unwrap();
    let mut remotes = HashMap::new();
    let target = Target {
        addr: peer.local_addr().unwrap(),
        role,
    };
    rebuild(
        &mut remotes,
        &BTreeMap::from([("remote".to_string(), target)]),
    );
    Checker {
        socket,
        epoch: Instant::now(),
        seq: 0,
        fresh_within: INTERVAL * 2,
        remotes,
    }
}

/// The next datagram `s` receives within 200 ms.
async fn next(s: &UdpSocket) -> Option<Vec<u8>> {
    let mut buf = [0u8; 64];
    let got = tokio::time::timeout(Duration::from_millis(200), s.recv(&mut buf)).await;
    got.ok()?.ok().map(|n| buf[..n].to_vec())
}

/// Feeds the checker's next datagram to `handle`.
async fn deliver(c: &mut Checker, from: &UdpSocket) -> Option<Reply> {
    let mut buf = [0u8; 64];
    let (n, addr) = tokio::time::timeout(Duration::from_millis(200), c.socket.recv_from(&mut buf))
        .await
        .ok()?
        .ok()?;
    assert_eq!(addr, from.local_addr().unwrap());
    c.handle(&buf[..n], addr)
}

fn acked(seq: u64, echo_age: Option<Duration>) -> [u8; acked::ACKED_LEN] {
    AckedRequest {
        probe: Probe {
            reply: false,
            seq,
            sent_nanos: 1,
        },
        echo_age,
        rtt: Some(Duration::from_micros(300)),
    }
    .encode()
}

#[tokio::test]
async fn a_responder_takes_fresh_acks_as_replies_and_stops_probing() {
    let remote = bind(Ipv4Addr::LOCALHOST, 0).unwrap();
    let mut c = checker(&remote, Role::Responder).await;
    let to = c.socket.local_addr().unwrap();
    // No acknowledgement yet: it probes like a plain gateway.
    c.send_requests();
    let first = next(&remote).await.expect("a plain request");
    assert!(Probe::decode(&first).is_some_and(|p| !p.reply));

    remote
        .send_to(&acked(1, Some(Duration::from_millis(100))), to)
        .await
        .unwrap();
    let reply = deliver(&mut c, &remote).await.expect("a fresh ack counts");
    assert_eq!(&*reply.cluster_id, "remote");
    assert_eq!(reply.rtt, Some(Duration::from_micros(300)));
    let echo = next(&remote).await.expect("the request is echoed");
    assert!(Probe::decode(&echo).is_some_and(|p| p.reply && p.seq == 1));

    // Fresh acknowledgements arrive: nothing to send.
    c.send_requests();
    assert_eq!(next(&remote).await, None);
}

#[tokio::test]
async fn a_stale_ack_proves_nothing_and_a_responder_probes_again() {
    let remote = bind(Ipv4Addr::LOCALHOST, 0).unwrap();
    let mut c = checker(&remote, Role::Responder).await;
    let to = c.socket.local_addr().unwrap();
    // The remote's requests arrive, but our echoes do not reach it.
    for (seq, age) in [(1, None), (2, Some(INTERVAL * 3))] {
        remote.send_to(&acked(seq, age), to).await.unwrap();
        assert!(deliver(&mut c, &remote).await.is_none(), "age {age:?}");
        next(&remote).await.expect("still echoed");
    }
    c.send_requests();
    let req = next(&remote).await.expect("probing again");
    assert!(Probe::decode(&req).is_some_and(|p| !p.reply));
}

#[tokio::test]
async fn a_prober_acknowledges_its_newest_echo() {
    let remote = bind(Ipv4Addr::LOCALHOST, 0).unwrap();
    let mut c = checker(&remote, Role::Prober).await;
    let to = c.socket.local_addr().unwrap();
    c.send_requests();
    let req = AckedRequest::decode(&next(&remote).await.unwrap()).expect("an acked request");
    assert_eq!((req.echo_age, req.rtt), (None, None));
    let echo = Probe {
        reply: true,
        ..req.probe
    };
    remote.send_to(&echo.encode(), to).await.unwrap();
    let reply = deliver(&mut c, &remote).await.expect("the echo is a reply");
    let rtt = reply.rtt.expect("a reply has its RTT");

    tokio::time::sleep(Duration::from_millis(5)).await;
    c.send_requests();
    let again = AckedRequest::decode(&next(&remote).await.unwrap()).unwrap();
    let age = again.echo_age.expect("acknowledges the echo");
    assert!(age >= Duration::from_millis(5), "{age:?}");
    assert_eq!(again.rtt, Some(rtt));
}

#[tokio::test]
async fn plain_requests_are_echoed_to_anyone() {
    let stranger = bind(Ipv4Addr::LOCALHOST, 0).unwrap();
    let other = bind(Ipv4Addr::LOCALHOST, 0).unwrap();
    let mut c = checker(&other, Role::Plain).await;
    let req = Probe {
        reply: false,
        seq: 9,
        sent_nanos: 5,
    };
    stranger
        .send_to(&req.encode(), c.socket.local_addr().unwrap())
        .await
        .unwrap();
    assert!(deliver(&mut c, &stranger).await.is_none());
    let echo = Probe::decode(&next(&stranger).await.unwrap()).unwrap();
    assert_eq!(echo, Probe { reply: true, ..req });
}
