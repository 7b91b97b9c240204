use super::*;

fn peer(c: &str) -> Peer {
    Peer {
        cluster_id: c.into(),
        endpoint: c.into(),
    }
}

fn addr(s: &str) -> SocketAddrV4 {
    s.parse().unwrap()
}

fn request() -> Request {
    Request {
        request_number: 0x0102_0304_0506_0708,
        sender: peer("east"),
        receiver: peer("west"),
        using_src: addr("198.18.100.10:4490"),
        using_dst: addr("198.19.1.10:4490"),
    }
}

#[test]
fn request_and_response_round_trip() {
    let req = Message::Request(request());
    let wire = req.encode().unwrap();
    assert_eq!(&wire[..6], b"FRYN\x01\x01");
    assert_eq!(Message::decode(&wire).unwrap(), req);

    let resp = Message::Response(Response {
        request_number: 7,
        response: ResponseType::NatDetected,
        sender: peer("west"),
        receiver: peer("east"),
        src_ip_nat_detected: true,
        src_port_nat_detected: false,
        dst_ip_nat_detected: true,
        received_src: addr("198.19.0.1:40123"),
    });
    let wire = resp.encode().unwrap();
    assert_eq!(wire[15], 1 | 4, "flags byte");
    assert_eq!(Message::decode(&wire).unwrap(), resp);
}

#[test]
fn every_truncation_and_corruption_is_refused() {
    let wire = Message::Request(request()).encode().unwrap();
    for n in 0..wire.len() {
        assert!(Message::decode(&wire[..n]).is_err(), "truncated to {n}");
    }
    let mut long = wire.clone();
    long.push(0);
    assert!(matches!(
        Message::decode(&long),
        Err(Error::NatDiscoveryMalformed("trailing bytes"))
    ));
    let mut bad = wire.clone();
    bad[0] = b'X';
    assert!(Message::decode(&bad).is_err());
    let mut bad = wire.clone();
    bad[4] = 2;
    assert!(matches!(
        Message::decode(&bad),
        Err(Error::NatDiscoveryMalformed("unsupported version"))
    ));
    let mut bad = wire;
    bad[5] = 9;
    assert!(Message::decode(&bad).is_err());
    // A health probe on the wrong port is not a NAT discovery datagram.
    let probe = crate::health_probe::Probe {
        reply: false,
        seq: 1,
        sent_nanos: 2,
    };
    assert!(Message::decode(&probe.encode()).is_err());
}

#[test]
fn names_longer_than_a_length_byte_are_refused() {
    let mut r = request();
    r.sender.endpoint = "x".repeat(256);
    assert!(Message::Request(r).encode().is_err());
}

#[test]
fn responder_sees_no_nat_when_nothing_changed() {
    let req = request();
    let r = respond(
        &req,
        req.using_src,
        &peer("west"),
        &["198.19.1.10".parse().unwrap()],
    );
    assert_eq!(r.response, ResponseType::Ok);
    assert!(!r.nat_detected());
    assert_eq!(r.received_src, req.using_src);
    assert_eq!((r.sender, r.receiver), (peer("west"), peer("east")));
    assert_eq!(r.request_number, req.request_number);
}

#[test]
fn responder_reports_the_source_a_nat_gave_the_request() {
    let req = request();
    let seen = addr("198.19.0.1:40123");
    let r = respond(&req, seen, &peer("west"), &["198.19.1.10".parse().unwrap()]);
    assert_eq!(r.response, ResponseType::NatDetected);
    assert!(r.src_ip_nat_detected && r.src_port_nat_detected && !r.dst_ip_nat_detected);
    assert_eq!(r.received_src, seen);
}

#[test]
fn responder_detects_a_forwarded_destination() {
    // Sent to the router's public address, forwarded to the node's own.
    let req = request();
    let r = respond(
        &req,
        req.using_src,
        &peer("west"),
        &["198.18.101.10".parse().unwrap()],
    );
    assert!(r.dst_ip_nat_detected && !r.src_ip_nat_detected);
    assert_eq!(r.response, ResponseType::NatDetected);
}

#[test]
fn responder_answers_only_for_itself() {
    let req = request();
    let local = ["198.19.1.10".parse().unwrap()];
    let r = respond(&req, req.using_src, &peer("north"), &local);
    assert_eq!(r.response, ResponseType::UnknownDstCluster);
    let other = Peer {
        cluster_id: "west".into(),
        endpoint: "west-old".into(),
    };
    let r = respond(&req, req.using_src, &other, &local);
    assert_eq!(r.response, ResponseType::UnknownDstEndpoint);
}
