use super::*;
use crate::proto::consts::{exchange, notify, protocol};
use crate::proto::crypto::AeadKey;
use crate::proto::proposal::{self, Encr, EspSuite, IkeSuite};
use crate::proto::sk;
use std::net::IpAddr;

fn header(exchange: u8) -> Header {
    Header {
        spi_i: 0x0102030405060708,
        spi_r: 0x1112131415161718,
        next_payload: 0,
        exchange,
        flags: consts::FLAG_INITIATOR,
        message_id: 7,
        length: 0,
    }
}

fn sample_payloads() -> Vec<Payload> {
    let ike: IkeSuite = "aes256gcm16-prfsha256-x25519".parse().unwrap();
    let esp: EspSuite = "chacha20poly1305-esn".parse().unwrap();
    vec![
        Payload::Sa(vec![proposal::ike_proposal(&[ike], vec![])]),
        Payload::Sa(proposal::esp_proposals(&[esp], 0xdeadbeef, false)),
        Payload::Ke {
            group: 31,
            data: vec![9; 32],
        },
        Payload::Nonce(vec![1; 32]),
        Payload::IdI(Identity::ip("198.18.0.1".parse().unwrap())),
        Payload::IdR(Identity::fqdn("gw.example")),
        Payload::Auth {
            method: consts::AUTH_SHARED_KEY_MIC,
            data: vec![3; 32],
        },
        Payload::Notify(Notify {
            protocol: protocol::ESP,
            spi: vec![0, 0, 1, 0],
            ty: notify::REKEY_SA,
            data: vec![],
        }),
        Payload::Notify(Notify::new(notify::NAT_DETECTION_SOURCE_IP, vec![7; 20])),
        Payload::Delete(Delete {
            protocol: protocol::ESP,
            spis: vec![0x1000, 0x2000],
        }),
        Payload::Delete(Delete {
            protocol: protocol::IKE,
            spis: vec![],
        }),
        Payload::TsI(vec![
            TrafficSelector::subnet("100.64.0.0".parse().unwrap(), 16).unwrap(),
            TrafficSelector::subnet("100.65.0.0".parse().unwrap(), 16).unwrap(),
        ]),
        Payload::TsR(vec![
            TrafficSelector::subnet("2001:db8::".parse().unwrap(), 32).unwrap(),
        ]),
        Payload::Other {
            ty: consts::payload::VENDOR_ID,
            body: b"ferry".to_vec(),
        },
    ]
}

#[test]
fn plain_message_round_trips() {
    let p = sample_payloads();
    let bytes = build_plain(header(exchange::IKE_SA_INIT), &p);
    let parsed = parse(&bytes).unwrap();
    assert_eq!(parsed.header.length as usize, bytes.len());
    assert_eq!(parsed.header.exchange, exchange::IKE_SA_INIT);
    assert_eq!(parsed.header.spi_i, 0x0102030405060708);
    assert!(parsed.sk.is_none());
    assert_eq!(parsed.payloads, p);
}

#[test]
fn encrypted_message_round_trips_and_detects_tampering() {
    for encr in [Encr::AesGcm128, Encr::AesGcm256, Encr::ChaCha20Poly1305] {
        let key = AeadKey::new(encr, &vec![5u8; encr.keymat_len()]).unwrap();
        let p = sample_payloads();
        let bytes = sk::seal(header(exchange::IKE_AUTH), &p, &key, 1).unwrap();
        let mut parsed = parse(&bytes).unwrap();
        assert!(parsed.payloads.is_empty());
        sk::open(&bytes, &mut parsed, &key).unwrap();
        assert_eq!(parsed.payloads, p);
        // Any flipped bit, header included, fails authentication.
        for i in [0, 17, 30, bytes.len() / 2, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[i] ^= 0x40;
            let r = parse(&bad).and_then(|mut pp| sk::open(&bad, &mut pp, &key));
            assert!(r.is_err(), "{encr:?}: flip at {i} accepted");
        }
    }
}

#[test]
fn truncated_and_garbage_messages_are_refused() {
    let bytes = build_plain(header(exchange::IKE_SA_INIT), &sample_payloads());
    for n in 0..bytes.len() {
        assert!(parse(&bytes[..n]).is_err(), "prefix of {n} bytes parsed");
    }
    // A lying payload length.
    let mut bad = bytes.clone();
    bad[HEADER_LEN + 3] = 0xff;
    assert!(parse(&bad).is_err());
    // An unknown critical payload.
    let mut crit = Vec::new();
    header(exchange::INFORMATIONAL).write(&mut crit);
    crit[16] = 200;
    crit.extend_from_slice(&[0, 0x80, 0, 4]);
    let len = crit.len() as u32;
    crit[24..28].copy_from_slice(&len.to_be_bytes());
    assert!(matches!(
        parse(&crit),
        Err(crate::Error::UnsupportedCritical(200))
    ));
    // Same payload, not critical: kept as Other.
    crit[HEADER_LEN + 1] = 0;
    assert_eq!(parse(&crit).unwrap().payloads.len(), 1);
}

#[test]
fn traffic_selectors_narrow_and_convert_to_cidrs() {
    let net = |s: &str, p| TrafficSelector::subnet(s.parse::<IpAddr>().unwrap(), p).unwrap();
    let wide = net("100.64.0.0", 10);
    let a = net("100.65.1.0", 24);
    assert!(a.within(&wide));
    assert!(!wide.within(&a));
    assert_eq!(wide.intersect(&a), Some(a));
    assert_eq!(
        net("100.64.0.0", 16).intersect(&net("100.65.0.0", 16)),
        None
    );
    assert_eq!(
        crate::proto::ts::narrow(&[wide], &[a, net("198.18.0.0", 15)]),
        vec![a]
    );
    assert_eq!(a.cidrs(), vec![("100.65.1.0".parse().unwrap(), 24)]);
    let odd = TrafficSelector {
        start: "100.64.0.1".parse().unwrap(),
        end: "100.64.0.6".parse().unwrap(),
        ..a
    };
    let c: Vec<String> = odd
        .cidrs()
        .iter()
        .map(|(a, p)| format!("{a}/{p}"))
        .collect();
    assert_eq!(
        c,
        [
            "100.64.0.1/32",
            "100.64.0.2/31",
            "100.64.0.4/31",
            "100.64.0.6/32"
        ]
    );
    let all = net("0.0.0.0", 0);
    assert_eq!(all.cidrs(), vec![("0.0.0.0".parse().unwrap(), 0)]);
    assert_eq!(net("::", 0).cidrs(), vec![("::".parse().unwrap(), 0)]);
}

#[test]
fn proposals_choose_ours_in_order_and_refuse_strangers() {
    let ours: Vec<IkeSuite> = [
        "chacha20poly1305-prfsha256-x25519",
        "aes256gcm16-prfsha256-ecp256",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();
    let theirs = proposal::ike_proposal(
        &[ours[1], "aes128gcm16-prfsha256-x25519".parse().unwrap()],
        vec![],
    );
    let (s, p) = proposal::choose_ike(&ours, &[theirs]).unwrap();
    assert_eq!(s, ours[1]);
    assert_eq!(p.transforms.len(), 3);
    let other: IkeSuite = "aes128gcm16-x25519".parse().unwrap();
    assert!(matches!(
        proposal::choose_ike(&[other], &[proposal::ike_proposal(&[ours[1]], vec![])]),
        Err(crate::Error::NoProposalChosen("IKE"))
    ));
    assert!("aes256-sha1-modp2048".parse::<IkeSuite>().is_err());
    assert_eq!(ours[0].to_string(), "chacha20poly1305-prfsha256-x25519");

    let esp: Vec<EspSuite> = vec![
        "aes256gcm16".parse().unwrap(),
        "chacha20poly1305-x25519".parse().unwrap(),
    ];
    let offer = proposal::esp_proposals(&esp[1..], 0x1234, true);
    let (s, p) = proposal::choose_esp(&esp, &offer, true).unwrap();
    assert_eq!(s.dh, esp[1].dh);
    assert_eq!(p.spi, 0x1234u32.to_be_bytes());
    // In IKE_AUTH (no KE) the DH transform is not chosen.
    let (s, _) =
        proposal::choose_esp(&esp, &proposal::esp_proposals(&esp[1..], 1, false), false).unwrap();
    assert_eq!(s.dh, None);
}
