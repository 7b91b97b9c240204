//! Malformed and hostile packets over the wire: each is dropped or answered
//! FORMERR, and the server keeps answering.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::UdpSocket;

use ferry_dns::Policy;

fn query(id: u16, name: &str) -> Vec<u8> {
    let mut b = id.to_be_bytes().to_vec();
    b.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for l in name.split('.') {
        b.push(l.len() as u8);
        b.extend_from_slice(l.as_bytes());
    }
    b.extend_from_slice(&[0, 0, 1, 0, 1]);
    b
}

fn hostile() -> Vec<(&'static str, Vec<u8>)> {
    let header = |id: u16, qd: u16| {
        let mut b = id.to_be_bytes().to_vec();
        b.extend_from_slice(&[0x01, 0x00]);
        b.extend_from_slice(&qd.to_be_bytes());
        b.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        b
    };
    let mut v = vec![
        ("empty", vec![]),
        ("one byte", vec![0x42]),
        ("short header", vec![1, 2, 3, 4, 5, 6, 7]),
        ("header only, qd=1", header(0x1001, 1)),
        (
            "garbage",
            (0..300u32).map(|i| (i * 7919 % 251) as u8).collect(),
        ),
        ("all ones", vec![0xff; 600]),
    ];
    // compression pointer to itself (offset 12)
    let mut p = header(0x1002, 1);
    p.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
    v.push(("self-pointer loop", p));
    // two pointers pointing at each other
    let mut p = header(0x1003, 1);
    p.extend_from_slice(&[0xc0, 14, 0xc0, 12, 0, 1, 0, 1]);
    v.push(("pointer ping-pong", p));
    // forward pointer past the end
    let mut p = header(0x1004, 1);
    p.extend_from_slice(&[0xc0, 0xff, 0, 1, 0, 1]);
    v.push(("pointer past end", p));
    // a 64-byte label (max is 63)
    let mut p = header(0x1005, 1);
    p.push(64);
    p.extend_from_slice(&[b'a'; 64]);
    p.extend_from_slice(&[0, 0, 1, 0, 1]);
    v.push(("label of 64", p));
    // a name longer than 255 bytes: 5 × 63-byte labels
    let mut p = header(0x1006, 1);
    for _ in 0..5 {
        p.push(63);
        p.extend_from_slice(&[b'b'; 63]);
    }
    p.extend_from_slice(&[0, 0, 1, 0, 1]);
    v.push(("name over 255", p));
    // qdcount 65535 with one question
    let mut p = query(0x1007, "web.default.svc.clusterset.local");
    p[4] = 0xff;
    p[5] = 0xff;
    v.push(("qdcount lies", p));
    // a response (QR set): must never be answered (reflection loops)
    let mut p = query(0x1008, "web.default.svc.clusterset.local");
    p[2] |= 0x80;
    v.push(("response packet", p));
    // truncated in the middle of the question
    let p = query(0x1009, "web.default.svc.clusterset.local");
    v.push(("cut question", p[..20].to_vec()));
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_udp_packets_are_dropped_or_formerr() {
    let s = common::start(&["clusterset.local"], Policy::LocalFirst).await;
    let port = s.port;
    tokio::task::spawn_blocking(move || {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.connect(("127.0.0.1", port)).unwrap();
        let mut buf = [0u8; 4096];
        for (i, (what, packet)) in hostile().into_iter().enumerate() {
            sock.send(&packet).unwrap();
            // A valid query after each: its answer marks the end of whatever
            // the hostile packet produced, without timing anything.
            let probe = 0x7000 + i as u16;
            sock.send(&query(probe, "web.default.svc.clusterset.local"))
                .unwrap();
            loop {
                let n = sock.recv(&mut buf).unwrap();
                let id = u16::from_be_bytes([buf[0], buf[1]]);
                if id == probe {
                    assert_eq!(buf[3] & 0x0f, 0, "{what}: probe answered NOERROR");
                    break;
                }
                assert!(n >= 12, "{what}: short answer");
                assert_eq!(buf[2] & 0x80, 0x80, "{what}: QR set");
                let rcode = buf[3] & 0x0f;
                assert!(rcode == 1, "{what}: expected FORMERR, got rcode {rcode}");
            }
        }
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_tcp_frames_do_not_stop_the_server() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = common::start(&["clusterset.local"], Policy::LocalFirst).await;
    for (what, packet) in hostile() {
        let mut c = tokio::net::TcpStream::connect(("127.0.0.1", s.port))
            .await
            .unwrap();
        let mut frame = (packet.len() as u16).to_be_bytes().to_vec();
        frame.extend_from_slice(&packet);
        c.write_all(&frame).await.unwrap();
        c.shutdown().await.unwrap();
        // Whatever comes back (nothing, or a FORMERR) must not be NOERROR data.
        let mut out = Vec::new();
        let _ = c.read_to_end(&mut out).await;
        if out.len() >= 14 {
            assert_ne!(out[5] & 0x0f, 0, "{what}: got NOERROR for a hostile frame");
        }
    }
    let out = common::dig(s.port, &["+tcp", "web.default.svc.clusterset.local", "A"]).await;
    assert!(out.contains("242.1.0.10"), "{out}");
}
