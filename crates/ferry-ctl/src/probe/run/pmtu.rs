//! The path-MTU probe: a don't-fragment datagram of the interface's MTU.

use std::time::{Duration, Instant};

use tokio::net::UdpSocket;

use super::sockets::*;
use crate::probe::spec::*;

/// MTU of the pod's main interface (`eth0`, else the largest non-loopback).
fn interface_mtu() -> Option<u32> {
    let read = |dev: &str| {
        std::fs::read_to_string(format!("/sys/class/net/{dev}/mtu"))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
    };
    read("eth0").or_else(|| {
        std::fs::read_dir("/sys/class/net")
            .ok()?
            .flatten()
            .filter_map(|d| d.file_name().into_string().ok())
            .filter(|n| n != "lo")
            .filter_map(|n| read(&n))
            .max()
    })
}

fn path_mtu(s: &UdpSocket) -> Option<u32> {
    nix::sys::socket::getsockopt(s, nix::sys::socket::sockopt::IpMtu)
        .ok()
        .and_then(|m| u32::try_from(m).ok())
}

fn too_big(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(nix::libc::EMSGSIZE)
}

pub(super) async fn pmtu(
    target: &str,
    size: usize,
    timeout_ms: u64,
) -> Result<PmtuOutcome, String> {
    let target = addr(target)?;
    let interface_mtu = interface_mtu();
    let size = match (size, interface_mtu) {
        (0, Some(m)) => (m as usize).saturating_sub(28),
        (0, None) => return Err("cannot read the pod interface's MTU".into()),
        (s, _) => s,
    };
    let sock = connected_udp(target).await?;
    let deadline = Instant::now() + Duration::from_millis(timeout_ms);
    let mut buf = vec![0u8; 65536];
    let mut seq = 0u64;
    let mut verdict = PmtuVerdict::BlackHoled;
    'probe: while Instant::now() < deadline {
        // A datagram bigger than the path MTU the kernel knows is refused
        // at once (or fragmented locally, which the path MTU then shows).
        if let Err(e) = sock.send(&raw_datagram(seq, size)).await
            && too_big(&e)
        {
            verdict = PmtuVerdict::Signalled;
            break;
        }
        seq += 1;
        if path_mtu(&sock).is_some_and(|m| (m as usize) < size + 28) {
            verdict = PmtuVerdict::Signalled;
            break;
        }
        let wait = tokio::time::Instant::now() + Duration::from_millis(50);
        loop {
            match tokio::time::timeout_at(wait, sock.recv(&mut buf)).await {
                Err(_) => break,
                Ok(Ok(n)) if raw_seq(&buf[..n]).is_some() && n >= size => {
                    verdict = PmtuVerdict::Passed;
                    break 'probe;
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) if too_big(&e) => {
                    verdict = PmtuVerdict::Signalled;
                    break 'probe;
                }
                Ok(Err(_)) => {
                    tokio::time::sleep_until(wait).await;
                    break;
                }
            }
        }
        if let Ok(Some(e)) = sock.take_error()
            && too_big(&e)
        {
            verdict = PmtuVerdict::Signalled;
            break;
        }
    }
    Ok(PmtuOutcome {
        size,
        interface_mtu,
        path_mtu: path_mtu(&sock),
        verdict,
    })
}
