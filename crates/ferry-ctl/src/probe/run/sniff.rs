//! The firewall sniffer: a raw socket on the gateway node watching UDP to
//! the cable port, before any host firewall.

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::probe::spec::*;

/// The UDP datagram inside an IPv4 packet: (source, destination port,
/// payload).
pub fn parse_udp(packet: &[u8]) -> Option<(IpAddr, u16, &[u8])> {
    if packet.len() < 28 || packet[0] >> 4 != 4 || packet[9] != 17 {
        return None;
    }
    let ihl = usize::from(packet[0] & 0x0f) * 4;
    // Only first fragments carry the UDP header.
    let frag_offset = u16::from_be_bytes([packet[6], packet[7]]) & 0x1fff;
    if ihl < 20 || packet.len() < ihl + 8 || frag_offset != 0 {
        return None;
    }
    let src = IpAddr::from([packet[12], packet[13], packet[14], packet[15]]);
    let udp = &packet[ihl..];
    let dport = u16::from_be_bytes([udp[2], udp[3]]);
    Some((src, dport, &udp[8..]))
}

pub(super) fn sniff(
    port: u16,
    marker: Option<&str>,
    from: &[IpAddr],
    want: u32,
    timeout: Duration,
) -> Result<SniffOutcome, String> {
    use socket2::{Domain, Protocol, Socket, Type};
    use std::io::Read;
    const ETH_P_ALL: u16 = 0x0003;
    // Cooked packets (from the network header on) of every protocol on
    // every interface, as tcpdump -i any sees them.
    let s = Socket::new(
        Domain::PACKET,
        Type::DGRAM,
        Some(Protocol::from(i32::from(ETH_P_ALL.to_be()))),
    )
    .map_err(|e| format!("packet socket (needs NET_RAW): {e}"))?;
    let deadline = Instant::now() + timeout;
    let mut out = SniffOutcome::default();
    let mut sources = BTreeSet::new();
    let mut buf = vec![0u8; 65536];
    while out.seen < want.max(1) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        s.set_read_timeout(Some(left))
            .map_err(|e| format!("packet socket: {e}"))?;
        let n = match (&s).read(&mut buf) {
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("reading packets: {e}")),
        };
        let Some((src, dport, payload)) = parse_udp(&buf[..n]) else {
            continue;
        };
        if dport != port {
            continue;
        }
        let hit = match marker {
            Some(m) => payload.windows(m.len().max(1)).any(|w| w == m.as_bytes()),
            None => from.contains(&src),
        };
        if hit {
            out.seen += 1;
            sources.insert(src);
        }
    }
    out.sources = sources.into_iter().collect();
    Ok(out)
}
