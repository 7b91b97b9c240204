use super::*;
use boringtun::noise::TunnResult;

fn pair(psk_a: Option<PresharedKey>, psk_b: Option<PresharedKey>) -> (Peer, Peer) {
    let ka = PrivateKey::generate();
    let kb = PrivateKey::generate();
    let mut ca = PeerConfig::new(kb.public_key());
    ca.preshared_key = psk_a;
    ca.allowed_ips = vec!["100.64.2.0/24".parse().unwrap()];
    let mut cb = PeerConfig::new(ka.public_key());
    cb.preshared_key = psk_b;
    cb.allowed_ips = vec!["100.64.1.0/24".parse().unwrap()];
    (Peer::new(&ka, ca, 1), Peer::new(&kb, cb, 2))
}

/// Drive a handshake between two in-memory peers; returns whether data flows.
fn handshake_and_send(a: &Peer, b: &Peer) -> bool {
    let mut ip = [0u8; 28];
    ip[0] = 0x45;
    ip[3] = 28;
    ip[12..16].copy_from_slice(&[100, 64, 1, 1]);
    ip[16..20].copy_from_slice(&[100, 64, 2, 1]);
    let mut buf = vec![0u8; 2048];
    let mut buf2 = vec![0u8; 2048];
    let mut buf3 = vec![0u8; 2048];
    // a wants to send: gets a handshake initiation.
    let init = match a.tunn().encapsulate(&ip, &mut buf) {
        TunnResult::WriteToNetwork(p) => p.to_vec(),
        other => panic!("expected init, got {other:?}"),
    };
    let resp = match b.tunn().decapsulate(None, &init, &mut buf2) {
        TunnResult::WriteToNetwork(p) => p.to_vec(),
        other => panic!("expected response, got {other:?}"),
    };
    let keepalive = match a.tunn().decapsulate(None, &resp, &mut buf3) {
        TunnResult::WriteToNetwork(p) => p.to_vec(),
        _ => return false,
    };
    // flush the queued packet
    let queued = match a.tunn().decapsulate(None, &[], &mut buf) {
        TunnResult::WriteToNetwork(p) => p.to_vec(),
        other => panic!("expected queued data, got {other:?}"),
    };
    assert!(matches!(
        b.tunn().decapsulate(None, &keepalive, &mut buf2),
        TunnResult::Done
    ));
    matches!(b.tunn().decapsulate(None, &queued, &mut buf2), TunnResult::WriteToTunnelV4(p, _) if p == ip)
}

#[test]
fn in_memory_handshake_and_data() {
    let (a, b) = pair(None, None);
    assert!(handshake_and_send(&a, &b));
    assert!(a.stats().0.is_some());
}

#[test]
fn psk_mismatch_stops_data() {
    let (a, b) = pair(
        Some(PresharedKey::generate()),
        Some(PresharedKey::generate()),
    );
    assert!(!handshake_and_send(&a, &b));
}

#[test]
fn table_routes_by_prefix_and_index() {
    let (a, b) = pair(None, None);
    let (a, b) = (Arc::new(a), Arc::new(b));
    let t = PeerTable::new(
        None,
        [
            (a.clone(), &a.config.allowed_ips[..]),
            (b.clone(), &b.config.allowed_ips[..]),
        ],
    );
    assert_eq!(t.len(), 2);
    assert_eq!(t.route("100.64.2.9".parse().unwrap()).unwrap().index, 1);
    assert_eq!(t.route("100.64.1.9".parse().unwrap()).unwrap().index, 2);
    assert!(t.route("198.18.0.1".parse().unwrap()).is_none());
    assert_eq!(t.by_receiver_index(2 << 8 | 7).unwrap().index, 2);
    assert!(t.get(&a.public_key).is_some());
}

#[test]
fn endpoint_roams() {
    let (a, _) = pair(None, None);
    assert_eq!(a.endpoint(), None);
    assert!(a.set_endpoint("198.18.0.1:51820".parse().unwrap()));
    assert!(!a.set_endpoint("198.18.0.1:51820".parse().unwrap()));
    assert!(a.set_endpoint("198.18.0.2:51820".parse().unwrap()));
}
