use super::*;
use crate::proto::crypto::AeadKey;
use crate::proto::proposal::Encr;

fn pair(encr: Encr, esn: bool) -> (EspOutbound, EspInbound) {
    let km: Vec<u8> = (0..encr.keymat_len() as u8).collect();
    (
        EspOutbound::new(0x1000, AeadKey::new(encr, &km).unwrap(), esn),
        EspInbound::new(0x1000, AeadKey::new(encr, &km).unwrap(), esn),
    )
}

fn seal(out: &EspOutbound, inner: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; inner.len() + ESP_OVERHEAD];
    let n = out.seal(inner, NEXT_HEADER_IPV4, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

#[test]
fn seal_open_round_trip_all_ciphers_and_lengths() {
    for encr in [Encr::AesGcm128, Encr::AesGcm256, Encr::ChaCha20Poly1305] {
        for esn in [false, true] {
            let (o, i) = pair(encr, esn);
            for len in [0usize, 1, 2, 3, 4, 5, 63, 1400] {
                let inner: Vec<u8> = (0..len).map(|x| x as u8).collect();
                let mut pkt = seal(&o, &inner);
                assert_eq!((pkt.len() - ESP_HEADER_LEN - TAG_LEN) % 4, 0, "alignment");
                assert_eq!(classify(&pkt), Datagram::Esp(0x1000));
                let r = i.open(&mut pkt).unwrap();
                assert_eq!(&pkt[r.start..r.start + r.len], &inner[..]);
                assert_eq!(r.next_header, NEXT_HEADER_IPV4);
            }
        }
    }
}

#[test]
fn replays_tampering_and_wrong_keys_are_refused() {
    let (o, i) = pair(Encr::AesGcm256, false);
    let p1 = seal(&o, b"one");
    let p2 = seal(&o, b"two");
    i.open(&mut p2.clone()).unwrap();
    // Out of order within the window: fine, once.
    i.open(&mut p1.clone()).unwrap();
    assert!(matches!(i.open(&mut p1.clone()), Err(Error::Replay(1))));
    assert!(matches!(i.open(&mut p2.clone()), Err(Error::Replay(2))));
    assert_eq!(i.counters.replayed.load(Ordering::Relaxed), 2);
    let mut bad = seal(&o, b"three");
    let n = bad.len();
    bad[n - 20] ^= 1;
    assert!(matches!(i.open(&mut bad), Err(Error::Integrity)));
    // A forged packet does not move the window: the genuine one still gets in.
    let (o2, _) = pair(Encr::ChaCha20Poly1305, false);
    let mut forged = seal(&o2, b"x");
    assert!(i.open(&mut forged).is_err());
    for n in 0..ESP_HEADER_LEN + TAG_LEN + 2 {
        assert!(i.open(&mut vec![0u8; n]).is_err());
    }
    assert_eq!(i.counters.packets.load(Ordering::Relaxed), 2);
}

#[test]
fn replay_window_slides() {
    let mut w = ReplayWindow::default();
    assert!(!w.check(0));
    assert!(w.update(5));
    assert!(w.update(REPLAY_WINDOW + 4));
    // 5 is now exactly out of the window; 6 is the oldest inside.
    assert!(!w.check(4));
    assert!(!w.check(5));
    assert!(w.check(6));
    assert!(w.update(6));
    assert!(!w.update(6));
    assert!(w.update(3 * REPLAY_WINDOW));
    assert!(!w.check(REPLAY_WINDOW + 4));
    // Slots reused after sliding are clear.
    assert!(w.check(3 * REPLAY_WINDOW - 1));
}

#[test]
fn esn_high_bits_are_inferred() {
    let mut w = ReplayWindow::default();
    assert_eq!(w.infer_esn(7), 7);
    w.update(u64::from(u32::MAX) - 10);
    // Just past the 32-bit wrap: next subspace.
    assert_eq!(w.infer_esn(3), (1 << 32) | 3);
    assert_eq!(w.infer_esn(u32::MAX - 20), u64::from(u32::MAX) - 20);
    w.update((1 << 32) | 3);
    // A late packet from before the wrap still maps to the old subspace.
    assert_eq!(w.infer_esn(u32::MAX - 5), u64::from(u32::MAX) - 5);
}

#[test]
fn nat_t_datagrams_are_told_apart() {
    assert_eq!(classify(&[0xff]), Datagram::Keepalive);
    assert_eq!(classify(&[0, 0, 0, 0, 1, 2]), Datagram::Ike(&[1, 2][..]));
    assert_eq!(classify(&[1, 2, 3]), Datagram::Invalid);
    assert_eq!(classify(&[]), Datagram::Invalid);
}

#[test]
fn sequence_space_ends_without_esn() {
    let (o, _) = pair(Encr::AesGcm128, false);
    o.seq.store(u64::from(u32::MAX), Ordering::Relaxed);
    assert!(o.needs_rekey());
    let mut buf = vec![0u8; 64];
    assert!(matches!(
        o.seal(b"x", 4, &mut buf),
        Err(Error::SequenceExhausted(0x1000))
    ));
}
