//! The DNS probe: queries to the pod's resolver.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RData, RecordType};

use super::sockets::*;
use crate::probe::spec::*;

/// The first `nameserver` of /etc/resolv.conf.
fn resolver() -> Result<SocketAddr, String> {
    let text = std::fs::read_to_string("/etc/resolv.conf")
        .map_err(|e| format!("reading /etc/resolv.conf: {e}"))?;
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|ip| ip.trim().parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .next()
        .ok_or_else(|| "/etc/resolv.conf has no nameserver".to_string())
}

pub(super) async fn dns(
    name: &str,
    record: DnsRecord,
    timeout_ms: u64,
    attempts: u32,
    retry_ms: u64,
) -> Result<DnsOutcome, String> {
    let server = resolver()?;
    let started = Instant::now();
    let until = started + Duration::from_millis(retry_ms);
    loop {
        let mut d = query(server, name, record, timeout_ms, attempts).await?;
        let found = !d.addresses.is_empty() || !d.texts.is_empty();
        if found || Instant::now() >= until {
            d.elapsed_us = micros(started.elapsed());
            return Ok(d);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One query to `server`, retried `attempts` times.
pub async fn query(
    server: SocketAddr,
    name: &str,
    record: DnsRecord,
    timeout_ms: u64,
    attempts: u32,
) -> Result<DnsOutcome, String> {
    let fqdn = if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    };
    let qname = Name::from_ascii(&fqdn).map_err(|e| format!("{name:?} is not a DNS name: {e}"))?;
    let mut msg = Message::query();
    msg.metadata.recursion_desired = true;
    let rtype = match record {
        DnsRecord::A => RecordType::A,
        DnsRecord::Txt => RecordType::TXT,
    };
    msg.add_query(Query::query(qname, rtype));
    let id = msg.metadata.id;
    let wire = msg
        .to_vec()
        .map_err(|e| format!("encoding the query: {e}"))?;
    let sock = connected_udp(server).await?;
    let started = Instant::now();
    let mut buf = vec![0u8; 4096];
    for _ in 0..attempts.max(1) {
        if let Err(e) = sock.send(&wire).await {
            tokio::time::sleep(Duration::from_millis(timeout_ms.min(200))).await;
            tracing::debug!("query to {server}: {e}");
            continue;
        }
        let deadline = tokio::time::Instant::now() + Duration::from_millis(timeout_ms);
        loop {
            match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
                Err(_) => break,
                Ok(Err(_)) => {
                    tokio::time::sleep_until(deadline).await;
                    break;
                }
                Ok(Ok(n)) => {
                    let Ok(resp) = Message::from_vec(&buf[..n]) else {
                        continue;
                    };
                    if resp.metadata.id != id {
                        continue;
                    }
                    let addresses = resp
                        .answers
                        .iter()
                        .filter_map(|r| match &r.data {
                            RData::A(a) => Some(IpAddr::V4(a.0)),
                            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                            _ => None,
                        })
                        .collect();
                    let texts = resp
                        .answers
                        .iter()
                        .filter_map(|r| match &r.data {
                            RData::TXT(t) => Some(
                                t.txt_data
                                    .iter()
                                    .map(|b| String::from_utf8_lossy(b).into_owned())
                                    .collect::<String>(),
                            ),
                            _ => None,
                        })
                        .collect();
                    return Ok(DnsOutcome {
                        server: server.to_string(),
                        rcode: Some(format!("{:?}", resp.metadata.response_code)),
                        addresses,
                        texts,
                        elapsed_us: micros(started.elapsed()),
                    });
                }
            }
        }
    }
    Ok(DnsOutcome {
        server: server.to_string(),
        rcode: None,
        addresses: Vec::new(),
        texts: Vec::new(),
        elapsed_us: micros(started.elapsed()),
    })
}
