//! The UDP probes: echoes (ferry's own datagrams or the gateways'
//! health-check format), a steady stream across a failover, and marked
//! datagrams for the firewall sniffer.

use std::time::{Duration, Instant};

use super::sockets::*;
use crate::probe::spec::*;

fn datagram(format: EchoFormat, seq: u64, size: usize) -> Vec<u8> {
    match format {
        EchoFormat::Raw => raw_datagram(seq, size),
        EchoFormat::Health => ferry_api::health_probe::Probe {
            reply: false,
            seq,
            sent_nanos: 0,
        }
        .encode()
        .to_vec(),
    }
}

fn reply_seq(format: EchoFormat, b: &[u8]) -> Option<u64> {
    match format {
        EchoFormat::Raw => raw_seq(b),
        EchoFormat::Health => ferry_api::health_probe::Probe::decode(b)
            .filter(|p| p.reply)
            .map(|p| p.seq),
    }
}

pub(super) async fn echo(
    target: &str,
    count: u32,
    interval_ms: u64,
    timeout_ms: u64,
    size: usize,
    format: EchoFormat,
) -> Result<EchoOutcome, String> {
    let target = addr(target)?;
    let sock = connected_udp(target).await?;
    let interval = Duration::from_millis(interval_ms);
    let mut sent_at: Vec<Option<Instant>> = vec![None; count as usize];
    let mut out = EchoOutcome::default();
    let mut buf = vec![0u8; 65536];
    let mut next_send = Instant::now();
    let mut last_sent = Instant::now();
    let timeout = Duration::from_millis(timeout_ms);
    let mut seq = 0u32;
    while out.received < count {
        let now = Instant::now();
        if seq < count && now >= next_send {
            let packet = datagram(format, u64::from(seq), size);
            // Stamped before the send, as ping does: a thread preempted
            // after the send must not shorten the round trip.
            last_sent = Instant::now();
            if let Err(e) = sock.send(&packet).await {
                out.send_error.get_or_insert_with(|| e.to_string());
            }
            sent_at[seq as usize] = Some(last_sent);
            seq += 1;
            out.sent = seq;
            next_send = now + interval;
            continue;
        }
        let wake = if seq < count {
            next_send
        } else {
            last_sent + timeout
        };
        if seq >= count && now >= wake {
            break;
        }
        match tokio::time::timeout_at(wake.into(), sock.recv(&mut buf)).await {
            Ok(Ok(n)) => {
                let Some(s) = reply_seq(format, &buf[..n]) else {
                    continue;
                };
                if let Some(slot) = usize::try_from(s).ok().and_then(|i| sent_at.get_mut(i))
                    && let Some(t) = slot.take()
                {
                    out.received += 1;
                    out.rtt_us.push(micros(t.elapsed()));
                }
            }
            // ICMP errors surface here on a connected socket (port
            // unreachable, message too long): keep going, the count says it.
            Ok(Err(e)) => {
                out.send_error.get_or_insert_with(|| e.to_string());
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Err(_) => {}
        }
    }
    Ok(out)
}

pub(super) async fn stream(
    target: &str,
    interval_ms: u64,
    duration_ms: u64,
    recovered_after: u32,
    quiet_end_ms: u64,
) -> Result<StreamOutcome, String> {
    let a = addr(target)?;
    let sock = connected_udp(a).await?;
    let interval = Duration::from_millis(interval_ms.max(1));
    let started = Instant::now();
    let end = started + Duration::from_millis(duration_ms);
    let outage = interval * 3 + Duration::from_millis(50);
    let mut out = StreamOutcome::default();
    let mut buf = vec![0u8; 2048];
    let mut seq = 0u64;
    let mut next_send = Instant::now();
    let mut last_reply: Option<Instant> = None;
    let mut in_outage = false;
    let mut any_outage = false;
    let mut since_outage = 0u32;
    let quiet_end = (quiet_end_ms > 0).then(|| started + Duration::from_millis(quiet_end_ms));
    loop {
        let now = Instant::now();
        if now >= end || (!any_outage && quiet_end.is_some_and(|q| now >= q)) {
            break;
        }
        if now >= next_send {
            let _ = sock.send(&raw_datagram(seq, 64)).await;
            seq += 1;
            out.sent += 1;
            next_send += interval;
            if let Some(l) = last_reply
                && now.duration_since(l) > outage
            {
                in_outage = true;
                any_outage = true;
                since_outage = 0;
            }
            continue;
        }
        match tokio::time::timeout_at(next_send.into(), sock.recv(&mut buf)).await {
            Ok(Ok(n)) => {
                if raw_seq(&buf[..n]).is_none() {
                    continue;
                }
                let t = Instant::now();
                if let Some(l) = last_reply {
                    out.longest_gap_us = out.longest_gap_us.max(micros(t.duration_since(l)));
                }
                last_reply = Some(t);
                out.received += 1;
                if in_outage {
                    since_outage += 1;
                    if since_outage >= recovered_after.max(1) {
                        out.recovered = true;
                        break;
                    }
                }
            }
            Ok(Err(_)) => tokio::time::sleep(Duration::from_millis(1)).await,
            Err(_) => {}
        }
    }
    let now = Instant::now();
    if let Some(l) = last_reply {
        out.longest_gap_us = out.longest_gap_us.max(micros(now.duration_since(l)));
        out.flowing = now.duration_since(l) <= outage || out.recovered;
    }
    out.elapsed_us = micros(started.elapsed());
    Ok(out)
}

pub(super) async fn send(
    target: &str,
    marker: &str,
    count: u32,
    interval_ms: u64,
) -> Result<(u32, Option<String>), String> {
    let a = addr(target)?;
    let sock = connected_udp(a).await?;
    let mut sent = 0;
    let mut error = None;
    for i in 0..count {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(interval_ms)).await;
        }
        // An ICMP error from an earlier datagram may surface here; the
        // sniffer on the other side is the judge.
        match sock.send(marker.as_bytes()).await {
            Ok(_) => sent += 1,
            Err(e) => {
                error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    Ok((sent, error))
}
