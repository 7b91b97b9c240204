//! The probe pod's side of the measurements: each [`Task`] run against
//! real sockets, failures turned into [`Outcome::Error`], never a panic.
//! All tasks of a pod run concurrently.

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use super::spec::*;
use super::{MODE_ECHO, MODE_SINK, RAW_MAGIC};

/// Runs every task (concurrently) and collects their outcomes in order.
pub async fn run(tasks: &[Task]) -> Report {
    let results = futures::future::join_all(tasks.iter().map(|t| async move {
        TaskReport {
            id: t.id.clone(),
            outcome: run_one(&t.probe).await,
        }
    }))
    .await;
    Report {
        pod_ip: std::env::var("POD_IP").unwrap_or_default(),
        results,
    }
}

/// Runs one task.
pub async fn run_one(p: &Probe) -> Outcome {
    let r = match p {
        Probe::Echo {
            target,
            count,
            interval_ms,
            timeout_ms,
            size,
            format,
        } => echo(target, *count, *interval_ms, *timeout_ms, *size, *format)
            .await
            .map(Outcome::Echo),
        Probe::Tcp {
            target,
            bytes,
            timeout_ms,
        } => tcp(target, *bytes, *timeout_ms).await.map(Outcome::Tcp),
        Probe::Dns {
            name,
            record,
            timeout_ms,
            attempts,
            retry_ms,
        } => dns(name, *record, *timeout_ms, *attempts, *retry_ms)
            .await
            .map(Outcome::Dns),
        Probe::Pmtu {
            target,
            size,
            timeout_ms,
        } => pmtu(target, *size, *timeout_ms).await.map(Outcome::Pmtu),
        Probe::Throughput {
            target,
            streams,
            duration_ms,
        } => throughput(target, *streams, *duration_ms)
            .await
            .map(Outcome::Throughput),
        Probe::Stream {
            target,
            interval_ms,
            duration_ms,
            recovered_after,
            quiet_end_ms,
        } => stream(
            target,
            *interval_ms,
            *duration_ms,
            *recovered_after,
            *quiet_end_ms,
        )
        .await
        .map(Outcome::Stream),
        Probe::Send {
            target,
            marker,
            count,
            interval_ms,
        } => send(target, marker, *count, *interval_ms)
            .await
            .map(|(count, error)| Outcome::Sent { count, error }),
        Probe::Sniff {
            port,
            marker,
            from,
            want,
            timeout_ms,
        } => {
            let (port, marker, from, want, timeout) = (
                *port,
                marker.clone(),
                from.clone(),
                *want,
                Duration::from_millis(*timeout_ms),
            );
            match tokio::task::spawn_blocking(move || {
                sniff(port, marker.as_deref(), &from, want, timeout)
            })
            .await
            {
                Ok(r) => r.map(Outcome::Sniff),
                Err(e) => Err(format!("sniffer thread: {e}")),
            }
        }
    };
    r.unwrap_or_else(|message| Outcome::Error { message })
}

fn addr(target: &str) -> Result<SocketAddr, String> {
    target
        .parse()
        .map_err(|_| format!("{target:?} is not an ip:port"))
}

async fn connected_udp(target: SocketAddr) -> Result<UdpSocket, String> {
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

/// A datagram of ours: magic, sequence number, padding to `size`.
fn raw_datagram(seq: u64, size: usize) -> Vec<u8> {
    let mut b = Vec::with_capacity(size.max(12));
    b.extend_from_slice(&RAW_MAGIC);
    b.extend_from_slice(&seq.to_be_bytes());
    b.resize(size.max(12), 0x5a);
    b
}

fn raw_seq(b: &[u8]) -> Option<u64> {
    if b.len() < 12 || b[..4] != RAW_MAGIC {
        return None;
    }
    let mut s = [0u8; 8];
    s.copy_from_slice(&b[4..12]);
    Some(u64::from_be_bytes(s))
}

fn datagram(format: EchoFormat, seq: u64, size: usize) -> Vec<u8> {
    match format {
        EchoFormat::Raw => raw_datagram(seq, size),
        EchoFormat::Health => ferry_gateway::health::Probe {
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
        EchoFormat::Health => ferry_gateway::health::Probe::decode(b)
            .filter(|p| p.reply)
            .map(|p| p.seq),
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

async fn echo(
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

/// Resolves `host:port` (a name through the pod's resolver), retrying
/// until it resolves; the caller bounds the time.
async fn resolve(target: &str) -> Result<SocketAddr, String> {
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

async fn tcp(target: &str, bytes: usize, timeout_ms: u64) -> Result<TcpOutcome, String> {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(timeout_ms);
    let a = tokio::time::timeout_at(deadline, resolve(target))
        .await
        .map_err(|_| format!("{target} did not resolve within {timeout_ms}ms"))??;
    let t = Instant::now();
    let mut s = tokio::time::timeout_at(deadline, TcpStream::connect(a))
        .await
        .map_err(|_| format!("connecting to {a}: no answer within {timeout_ms}ms"))?
        .map_err(|e| format!("connecting to {a}: {e}"))?;
    let connect_us = micros(t.elapsed());
    let mss = socket2::SockRef::from(&s).tcp_mss().ok();
    let _ = s.set_nodelay(true);
    let (mut r, mut w) = s.split();
    let payload: Vec<u8> = (0..bytes).map(|i| (i % 251) as u8).collect();
    let mut got = vec![0u8; bytes];
    let mut n = 0;
    let transfer = async {
        let writer = async {
            w.write_all(&[MODE_ECHO]).await?;
            w.write_all(&payload).await?;
            w.flush().await
        };
        let reader = async {
            while n < bytes {
                match r.read(&mut got[n..]).await? {
                    0 => break,
                    k => n += k,
                }
            }
            Ok::<_, std::io::Error>(())
        };
        let (wr, rd) = tokio::join!(writer, reader);
        wr.map_err(|e| format!("sending to {a}: {e}"))?;
        rd.map_err(|e| format!("reading the echo from {a}: {e}"))
    };
    let done = tokio::time::timeout_at(deadline, transfer).await;
    match done {
        Err(_) => {
            return Err(format!(
                "connected to {a}, but only {n} of {bytes} bytes came back within {timeout_ms}ms"
            ));
        }
        Ok(r) => r?,
    }
    if got[..n] != payload[..n] {
        return Err(format!("{a} echoed different bytes"));
    }
    Ok(TcpOutcome {
        address: a.to_string(),
        connect_us,
        echoed: n,
        mss,
    })
}

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

async fn dns(
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

async fn pmtu(target: &str, size: usize, timeout_ms: u64) -> Result<PmtuOutcome, String> {
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

async fn throughput(
    target: &str,
    streams: u32,
    duration_ms: u64,
) -> Result<ThroughputOutcome, String> {
    let a = addr(target)?;
    let duration = Duration::from_millis(duration_ms);
    let started = Instant::now();
    let one = |_| async move {
        let mut s = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(a))
            .await
            .map_err(|_| format!("connecting to {a}: timed out"))?
            .map_err(|e| format!("connecting to {a}: {e}"))?;
        let chunk = vec![0xa5u8; 128 * 1024];
        s.write_all(&[MODE_SINK])
            .await
            .map_err(|e| format!("sending to {a}: {e}"))?;
        let end = Instant::now() + duration;
        while Instant::now() < end {
            s.write_all(&chunk)
                .await
                .map_err(|e| format!("sending to {a}: {e}"))?;
        }
        s.shutdown()
            .await
            .map_err(|e| format!("closing the stream to {a}: {e}"))?;
        let mut count = [0u8; 8];
        tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut count))
            .await
            .map_err(|_| format!("{a} did not report its byte count"))?
            .map_err(|e| format!("reading the byte count from {a}: {e}"))?;
        Ok::<_, String>((u64::from_be_bytes(count), started.elapsed()))
    };
    let results = futures::future::join_all((0..streams.max(1)).map(one)).await;
    let mut out = ThroughputOutcome::default();
    let mut elapsed = Duration::ZERO;
    let mut first_err = None;
    for r in results {
        match r {
            Ok((bytes, e)) => {
                out.streams += 1;
                out.bytes += bytes;
                elapsed = elapsed.max(e);
            }
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    if out.streams == 0 {
        return Err(first_err.unwrap_or_else(|| "no stream ran".into()));
    }
    out.elapsed_us = micros(elapsed);
    Ok(out)
}

async fn stream(
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

async fn send(
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

fn sniff(
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
