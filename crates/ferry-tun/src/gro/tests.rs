use super::*;

const SRC: [u8; 4] = [100, 64, 0, 1];
const DST: [u8; 4] = [100, 64, 0, 2];

/// A valid IPv4 TCP segment (checksums filled in) with a timestamp option.
fn tcp4(id: u16, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let tcph = 32;
    let len = 20 + tcph + payload.len();
    let mut p = vec![0u8; len];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    p[4..6].copy_from_slice(&id.to_be_bytes());
    p[6] = 0x40; // DF
    p[8] = 64;
    p[9] = IPPROTO_TCP;
    p[12..16].copy_from_slice(&SRC);
    p[16..20].copy_from_slice(&DST);
    let c = !fold(sum(&p[..20], 0));
    p[10..12].copy_from_slice(&c.to_be_bytes());
    let t = &mut p[20..];
    t[0..2].copy_from_slice(&40000u16.to_be_bytes());
    t[2..4].copy_from_slice(&5201u16.to_be_bytes());
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[8..12].copy_from_slice(&ack.to_be_bytes());
    t[12] = ((tcph / 4) as u8) << 4;
    t[13] = flags;
    t[14..16].copy_from_slice(&512u16.to_be_bytes());
    t[20..32].copy_from_slice(&[1, 1, 8, 10, 0, 0, 0, 7, 0, 0, 0, 9]);
    t[tcph..].copy_from_slice(payload);
    let pseudo = sum(&p[12..20], u64::from(IPPROTO_TCP) + (len - 20) as u64);
    let c = !fold(sum(&p[20..], pseudo));
    p[36..38].copy_from_slice(&c.to_be_bytes());
    p
}

fn udp4(id: u16, payload: &[u8]) -> Vec<u8> {
    let len = 28 + payload.len();
    let mut p = vec![0u8; len];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    p[4..6].copy_from_slice(&id.to_be_bytes());
    p[8] = 64;
    p[9] = IPPROTO_UDP;
    p[12..16].copy_from_slice(&SRC);
    p[16..20].copy_from_slice(&DST);
    let c = !fold(sum(&p[..20], 0));
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p[20..22].copy_from_slice(&4000u16.to_be_bytes());
    p[22..24].copy_from_slice(&4001u16.to_be_bytes());
    p[24..26].copy_from_slice(&((len - 20) as u16).to_be_bytes());
    p[28..].copy_from_slice(payload);
    let pseudo = sum(&p[12..20], u64::from(IPPROTO_UDP) + (len - 20) as u64);
    let c = !fold(sum(&p[20..], pseudo));
    p[26..28].copy_from_slice(&c.to_be_bytes());
    p
}

fn payload(i: usize, n: usize) -> Vec<u8> {
    (0..n).map(|k| (i * 31 + k) as u8).collect()
}

/// Push `pkts` into a batch and return what `flush` writes.
fn run(pkts: &[Vec<u8>], udp_gso: bool, slots: usize) -> Vec<Vec<u8>> {
    let mut b = TunBatch::new(slots, udp_gso);
    let mut out = Vec::new();
    for p in pkts {
        if b.is_full() {
            b.flush(|w| {
                out.push(w.to_vec());
                Ok(w.len())
            })
            .unwrap();
        }
        b.next_buf()[..p.len()].copy_from_slice(p);
        b.push(p.len());
    }
    b.flush(|w| {
        out.push(w.to_vec());
        Ok(w.len())
    })
    .unwrap();
    out
}

/// Segment a written GSO packet the way the kernel would (tun-rs's splitter,
/// which recomputes every checksum) into plain packets.
fn resegment(written: &[u8]) -> Vec<Vec<u8>> {
    let hdr = tun_rs::VirtioNetHdr::decode(&written[..VNET_HDR_LEN]).unwrap();
    let mut input = written[VNET_HDR_LEN..].to_vec();
    let v6 = input[0] >> 4 == 6;
    let mut bufs = vec![vec![0u8; 2048]; 128];
    let mut sizes = vec![0usize; 128];
    let n = tun_rs::gso_split(&mut input, hdr, &mut bufs, &mut sizes, 0, v6).unwrap();
    (0..n).map(|i| bufs[i][..sizes[i]].to_vec()).collect()
}

/// The transport checksum the kernel completes from the seeded field equals
/// the one computed from scratch.
fn assert_seeded_checksum(written: &[u8]) {
    let p = &written[VNET_HDR_LEN..];
    let csum_start = usize::from(u16::from_ne_bytes([written[6], written[7]]));
    let csum_offset = usize::from(u16::from_ne_bytes([written[8], written[9]]));
    let completed = !fold(sum(&p[csum_start..], 0));
    let mut zeroed = p.to_vec();
    zeroed[csum_start + csum_offset..csum_start + csum_offset + 2].fill(0);
    let proto = p[9];
    let pseudo = sum(&p[12..20], u64::from(proto) + (p.len() - csum_start) as u64);
    let scratch = !fold(sum(&zeroed[csum_start..], pseudo));
    assert_eq!(completed, scratch);
}

#[test]
fn in_order_tcp_segments_become_one_gso_packet_that_splits_back() {
    let seg = 1388;
    let pkts: Vec<_> = (0..10)
        .map(|i| {
            tcp4(
                7 + i as u16,
                1000 + (i * seg) as u32,
                55,
                TCP_ACK,
                &payload(i, seg),
            )
        })
        .collect();
    let out = run(&pkts, false, 8);
    assert_eq!(out.len(), 1, "all ten coalesced into one write");
    let w = &out[0];
    assert_eq!(w[0], F_NEEDS_CSUM);
    assert_eq!(w[1], GSO_TCPV4);
    assert_eq!(u16::from_ne_bytes([w[4], w[5]]) as usize, seg);
    assert_eq!(w.len(), VNET_HDR_LEN + 52 + 10 * seg);
    assert_seeded_checksum(w);
    assert_eq!(resegment(w), pkts);
}

#[test]
fn psh_ends_the_packet_and_a_gap_starts_a_new_one() {
    let s = 100;
    let pkts = vec![
        tcp4(1, 0, 9, TCP_ACK, &payload(0, s)),
        tcp4(2, 100, 9, TCP_ACK | TCP_PSH, &payload(1, s)),
        tcp4(3, 200, 9, TCP_ACK, &payload(2, s)),
        tcp4(4, 5000, 9, TCP_ACK, &payload(3, s)),
        tcp4(5, 5100, 9, TCP_ACK, &payload(4, 40)),
        tcp4(6, 5140, 9, TCP_ACK, &payload(5, 40)),
    ];
    let out = run(&pkts, false, 8);
    assert_eq!(out.len(), 4);
    let first = resegment(&out[0]);
    assert_eq!(first, pkts[..2].to_vec(), "PSH kept on the last segment");
    assert_eq!(
        out[1][VNET_HDR_LEN..],
        pkts[2][..],
        "after PSH: a packet of its own"
    );
    assert_eq!(out[1][..VNET_HDR_LEN], [0; VNET_HDR_LEN]);
    // 5000 follows a gap: new packet; a short segment ends it.
    assert_eq!(resegment(&out[2]), pkts[3..5].to_vec());
    assert_eq!(out[3][VNET_HDR_LEN..], pkts[5][..]);
}

#[test]
fn a_packet_that_cannot_join_its_flow_closes_it_so_nothing_is_reordered() {
    let s = 200;
    let fin = 0x11;
    let pkts = vec![
        tcp4(1, 0, 9, TCP_ACK, &payload(0, s)),
        tcp4(2, 200, 9, fin, &payload(1, s)),
        // same flow, in sequence after the FIN packet: must not jump ahead of it
        tcp4(3, 400, 9, TCP_ACK, &payload(2, s)),
        tcp4(4, 600, 10, TCP_ACK, &payload(3, s)),
    ];
    let out = run(&pkts, false, 8);
    let plain: Vec<_> = out.iter().map(|w| w[VNET_HDR_LEN..].to_vec()).collect();
    assert_eq!(
        plain, pkts,
        "written one by one, in order (ACK number changed too)"
    );
}

#[test]
fn interleaved_flows_coalesce_separately_and_stay_in_order() {
    let s = 300;
    let other = |id: u16, seq: u32, i: usize| {
        let mut p = tcp4(id, seq, 1, TCP_ACK, &payload(i, s));
        p[20..22].copy_from_slice(&40001u16.to_be_bytes()); // another source port
        let len = p.len();
        p[36..38].fill(0);
        let pseudo = sum(&p[12..20], u64::from(IPPROTO_TCP) + (len - 20) as u64);
        let c = !fold(sum(&p[20..], pseudo));
        p[36..38].copy_from_slice(&c.to_be_bytes());
        p
    };
    let a: Vec<_> = (0..3)
        .map(|i| tcp4(i as u16, (i * s) as u32, 1, TCP_ACK, &payload(i, s)))
        .collect();
    let b: Vec<_> = (0..3)
        .map(|i| other(50 + i as u16, (i * s) as u32, 9 + i))
        .collect();
    let pkts = vec![
        a[0].clone(),
        b[0].clone(),
        a[1].clone(),
        b[1].clone(),
        a[2].clone(),
        b[2].clone(),
    ];
    let out = run(&pkts, false, 8);
    assert_eq!(out.len(), 2);
    assert_eq!(resegment(&out[0]), a);
    assert_eq!(resegment(&out[1]), b);
}

#[test]
fn udp_coalesces_only_when_the_tun_takes_udp_segmentation() {
    let pkts: Vec<_> = (0..5).map(|i| udp4(i as u16, &payload(i, 500))).collect();
    let out = run(&pkts, false, 8);
    assert_eq!(out.len(), 5);
    let out = run(&pkts, true, 8);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0][1], GSO_UDP_L4);
    assert_seeded_checksum(&out[0]);
    assert_eq!(resegment(&out[0]), pkts);
}

#[test]
fn slots_are_reused_and_garbage_passes_through_unchanged() {
    let garbage = vec![0x45, 1, 2];
    let icmp = {
        let mut p = tcp4(1, 0, 0, TCP_ACK, &payload(0, 10));
        p[9] = 1;
        p
    };
    let pkts = vec![garbage.clone(), icmp.clone(), vec![0x60; 10]];
    let out = run(&pkts, true, 2);
    let plain: Vec<_> = out.iter().map(|w| w[VNET_HDR_LEN..].to_vec()).collect();
    assert_eq!(plain, pkts);
    // 100 segments of one flow fit in a 2-slot batch (64 KiB per slot).
    let pkts: Vec<_> = (0..100)
        .map(|i| tcp4(i as u16, (i * 600) as u32, 1, TCP_ACK, &payload(i, 600)))
        .collect();
    let out = run(&pkts, false, 2);
    assert_eq!(out.len(), 1);
    assert_eq!(resegment(&out[0]).len(), 100);
}
