use super::*;

#[test]
fn probe_round_trips_and_rejects_garbage() {
    let p = Probe {
        reply: true,
        seq: 42,
        sent_nanos: 1_234_567,
    };
    assert_eq!(Probe::decode(&p.encode()), Some(p));
    let mut bad = p.encode();
    bad[0] = b'X';
    assert_eq!(Probe::decode(&bad), None);
    let mut kind = p.encode();
    kind[4] = 7;
    assert_eq!(Probe::decode(&kind), None);
    assert_eq!(Probe::decode(&p.encode()[..20]), None);
    assert_eq!(Probe::decode(&[]), None);
}

#[test]
fn the_wire_form_is_fixed() {
    // Gateways of different versions answer each other: the bytes never change.
    let p = Probe {
        reply: false,
        seq: 0x0102_0304_0506_0708,
        sent_nanos: 0x1112_1314_1516_1718,
    };
    assert_eq!(
        p.encode(),
        *b"FRYH\x00\x01\x02\x03\x04\x05\x06\x07\x08\x11\x12\x13\x14\x15\x16\x17\x18"
    );
}
