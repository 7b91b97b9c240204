//! What the probes share: target addresses, connected UDP sockets, name
//! resolution, microseconds.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;

use crate::probe::RAW_MAGIC;

pub(super) fn addr(target: &str) -> Result<SocketAddr, String> {
    target
        .parse()
        .map_err(|_| format!("{target:?} is not an ip:port"))
}

pub(super) async fn connected_udp(target: SocketAddr) -> Result<UdpSocket, String> {
    let local: SocketAddr = if target.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let s = UdpSocket::bind(local)
        .await
        .map_err(|e| format!("UDP socket: {e}"))?;
    s.connect(target)
        .await
        .map_err(|e| format!("UDP to {target}: {e}"))?;
    Ok(s)
}

pub(super) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Resolves `host:port` (a name through the pod's resolver), retrying
/// until it resolves; the caller bounds the time.
pub(super) async fn resolve(target: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = target.parse() {
        return Ok(a);
    }
    loop {
        match tokio::net::lookup_host(target).await.map(|mut a| a.next()) {
            Ok(Some(a)) => return Ok(a),
            Ok(None) | Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// A datagram of ours: magic, sequence number, padding to `size`.
pub(super) fn raw_datagram(seq: u64, size: usize) -> Vec<u8> {
    let mut b = Vec::with_capacity(size.max(12));
    b.extend_from_slice(&RAW_MAGIC);
    b.extend_from_slice(&seq.to_be_bytes());
    b.resize(size.max(12), 0x5a);
    b
}

pub(super) fn raw_seq(b: &[u8]) -> Option<u64> {
    if b.len() < 12 || b[..4] != RAW_MAGIC {
        return None;
    }
    let mut s = [0u8; 8];
    s.copy_from_slice(&b[4..12]);
    Some(u64::from_be_bytes(s))
}
