//! The probe tasks against real sockets on the loopback: the echo server,
//! a fake gateway health checker and a fake DNS server.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, TXT};
use hickory_proto::rr::{RData, Record, RecordType};
use tokio::net::UdpSocket;

use super::run::{parse_udp, query, run_one};
use super::serve;
use super::spec::*;

/// A probe server on a loopback port free for both UDP and TCP; returns the
/// port and the tasks. A UDP port the kernel hands out may still be taken
/// for TCP (another test's connection uses it as its ephemeral source
/// port), so try fresh ports until both binds succeed.
async fn server() -> (
    u16,
    tokio::task::JoinHandle<()>,
    tokio::task::JoinHandle<()>,
) {
    for _ in 0..100 {
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = udp.local_addr().unwrap().port();
        match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            Ok(tcp) => {
                return (
                    port,
                    tokio::spawn(serve::udp_echo(udp)),
                    tokio::spawn(serve::accept(tcp)),
                );
            }
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => continue,
            Err(e) => panic!("tcp bind on {port}: {e}"),
        }
    }
    panic!("no loopback port free for both UDP and TCP in 100 tries");
}

fn echo_task(target: String, count: u32, size: usize, format: EchoFormat) -> Probe {
    Probe::Echo {
        target,
        count,
        interval_ms: 5,
        timeout_ms: 500,
        size,
        format,
    }
}

#[tokio::test]
async fn udp_echo_counts_every_reply() {
    let (port, _u, _t) = server().await;
    let Outcome::Echo(e) = run_one(&echo_task(
        format!("127.0.0.1:{port}"),
        5,
        1000,
        EchoFormat::Raw,
    ))
    .await
    else {
        panic!("not an echo outcome");
    };
    assert_eq!((e.sent, e.received), (5, 5));
    assert_eq!(e.rtt_us.len(), 5);
    assert!(e.send_error.is_none());
}

#[tokio::test]
async fn udp_echo_without_a_server_loses_everything() {
    // Bound but silent: nothing ever comes back.
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let target = silent.local_addr().unwrap().to_string();
    let Outcome::Echo(e) = run_one(&echo_task(target, 3, 64, EchoFormat::Raw)).await else {
        panic!("not an echo outcome");
    };
    assert_eq!((e.sent, e.received), (3, 0));
}

#[tokio::test]
async fn health_format_talks_to_a_gateway_health_checker() {
    // What ferry-gateway's prober does with a request: echo it as a reply.
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let target = sock.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let mut buf = [0u8; 64];
        loop {
            let (n, from) = sock.recv_from(&mut buf).await.unwrap();
            let Some(p) = ferry_api::health_probe::Probe::decode(&buf[..n]) else {
                continue;
            };
            let reply = ferry_api::health_probe::Probe { reply: true, ..p };
            sock.send_to(&reply.encode(), from).await.unwrap();
        }
    });
    let Outcome::Echo(e) = run_one(&echo_task(target, 4, 0, EchoFormat::Health)).await else {
        panic!("not an echo outcome");
    };
    assert_eq!((e.sent, e.received), (4, 4));
}

#[tokio::test]
async fn tcp_echo_returns_every_byte_and_the_mss() {
    let (port, _u, _t) = server().await;
    let Outcome::Tcp(t) = run_one(&Probe::Tcp {
        target: format!("127.0.0.1:{port}"),
        bytes: 300_000,
        timeout_ms: 5000,
    })
    .await
    else {
        panic!("not a tcp outcome");
    };
    assert_eq!(t.echoed, 300_000);
    assert!(t.mss.is_some_and(|m| m > 0));
}

#[tokio::test]
async fn tcp_to_a_closed_port_is_an_error() {
    // Bound but not listening: the port stays ours (no other test can take
    // it meanwhile) and a connection to it is refused.
    let closed = tokio::net::TcpSocket::new_v4().unwrap();
    closed.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = closed.local_addr().unwrap().port();
    let out = run_one(&Probe::Tcp {
        target: format!("127.0.0.1:{port}"),
        bytes: 10,
        timeout_ms: 1000,
    })
    .await;
    assert!(matches!(out, Outcome::Error { message } if message.contains("connecting")));
}

#[tokio::test]
async fn bad_targets_are_errors_not_panics() {
    let out = run_one(&echo_task("not-an-address".into(), 1, 10, EchoFormat::Raw)).await;
    assert!(matches!(out, Outcome::Error { message } if message.contains("ip:port")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throughput_counts_what_the_receiver_got() {
    let (port, _u, _t) = server().await;
    let Outcome::Throughput(t) = run_one(&Probe::Throughput {
        target: format!("127.0.0.1:{port}"),
        streams: 2,
        duration_ms: 300,
    })
    .await
    else {
        panic!("not a throughput outcome");
    };
    assert_eq!(t.streams, 2);
    assert!(t.bytes > 1_000_000, "{t:?}");
    assert!(t.elapsed_us >= 300_000, "{t:?}");
    assert!(t.bits_per_second() > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_sees_an_outage_and_the_recovery() {
    let (port, udp, _t) = server().await;
    let target = format!("127.0.0.1:{port}");
    let probe = Probe::Stream {
        target,
        interval_ms: 10,
        duration_ms: 5000,
        recovered_after: 5,
        quiet_end_ms: 2000,
    };
    let run = tokio::spawn(async move { run_one(&probe).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    udp.abort();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let again = UdpSocket::bind(("127.0.0.1", port)).await.unwrap();
    tokio::spawn(serve::udp_echo(again));
    let Outcome::Stream(s) = run.await.unwrap() else {
        panic!("not a stream outcome");
    };
    assert!(s.recovered, "{s:?}");
    assert!(s.flowing, "{s:?}");
    assert!(s.longest_gap_us >= 250_000, "{s:?}");
    // Well before the 5 s duration: a loaded CI box may delay the end, not
    // by seconds.
    assert!(s.elapsed_us < 4_000_000, "ends at the recovery: {s:?}");
}

/// A DNS server answering `known.` with an address and a text, anything
/// else with NXDOMAIN.
async fn fake_dns() -> SocketAddr {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 512];
        loop {
            let (n, from) = sock.recv_from(&mut buf).await.unwrap();
            let q = Message::from_vec(&buf[..n]).unwrap();
            let mut r = Message::response(q.metadata.id, q.metadata.op_code);
            r.metadata.message_type = MessageType::Response;
            let query = q.queries[0].clone();
            let name = query.name().clone();
            if name.to_ascii() == "known." {
                let data = match query.query_type() {
                    RecordType::TXT => RData::TXT(TXT::new(vec!["1.0.0".into()])),
                    _ => RData::A(A(Ipv4Addr::new(100, 64, 1, 2))),
                };
                r.answers.push(Record::from_rdata(name, 5, data));
            } else {
                r.metadata.response_code = ResponseCode::NXDomain;
            }
            r.add_query(query);
            sock.send_to(&r.to_vec().unwrap(), from).await.unwrap();
        }
    });
    addr
}

#[tokio::test]
async fn dns_answers_nxdomain_and_silence() {
    let server = fake_dns().await;
    let d = query(server, "known", DnsRecord::A, 500, 1).await.unwrap();
    assert_eq!(d.rcode.as_deref(), Some("NoError"));
    assert_eq!(d.addresses, vec![IpAddr::from([100, 64, 1, 2])]);
    let d = query(server, "known.", DnsRecord::Txt, 500, 1)
        .await
        .unwrap();
    assert_eq!(d.texts, vec!["1.0.0".to_string()]);
    let d = query(server, "other.example", DnsRecord::A, 500, 1)
        .await
        .unwrap();
    assert_eq!(d.rcode.as_deref(), Some("NXDomain"));
    assert!(d.addresses.is_empty());
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let d = query(silent.local_addr().unwrap(), "known", DnsRecord::A, 100, 2)
        .await
        .unwrap();
    assert_eq!(d.rcode, None);
    assert!(d.elapsed_us >= 200_000, "{d:?}");
}

#[tokio::test]
async fn pmtu_on_the_loopback_passes_intact() {
    let (port, _u, _t) = server().await;
    let Outcome::Pmtu(p) = run_one(&Probe::Pmtu {
        target: format!("127.0.0.1:{port}"),
        size: 1472,
        timeout_ms: 1000,
    })
    .await
    else {
        panic!("not a pmtu outcome");
    };
    assert_eq!(p.verdict, PmtuVerdict::Passed, "{p:?}");
    assert_eq!(p.size, 1472);
}

#[test]
fn udp_inside_ipv4_is_parsed() {
    let mut p = vec![0u8; 20 + 8 + 5];
    p[0] = 0x45;
    p[9] = 17;
    p[12..16].copy_from_slice(&[198, 18, 0, 7]);
    p[22..24].copy_from_slice(&4500u16.to_be_bytes());
    p[28..].copy_from_slice(b"hello");
    let (src, port, payload) = parse_udp(&p).unwrap();
    assert_eq!(src, IpAddr::from([198, 18, 0, 7]));
    assert_eq!(port, 4500);
    assert_eq!(payload, b"hello");
    // TCP, and a non-first fragment, are not UDP datagrams to look at.
    let mut tcp = p.clone();
    tcp[9] = 6;
    assert!(parse_udp(&tcp).is_none());
    let mut frag = p.clone();
    frag[7] = 1;
    assert!(parse_udp(&frag).is_none());
    assert!(parse_udp(&p[..20]).is_none());
}

#[tokio::test]
async fn sniffer_sees_marked_datagrams() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipping: a packet socket needs root");
        return;
    }
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let marker = format!("ferry-test-marker-{}", std::process::id());
    let sniff = tokio::spawn(run_one_owned(Probe::Sniff {
        port,
        marker: Some(marker.clone()),
        from: Vec::new(),
        want: 2,
        timeout_ms: 3000,
    }));
    let send = Probe::Send {
        target: format!("127.0.0.1:{port}"),
        marker,
        count: 20,
        interval_ms: 50,
    };
    let sent = run_one(&send).await;
    assert_eq!(
        sent,
        Outcome::Sent {
            count: 20,
            error: None
        }
    );
    let Outcome::Sniff(s) = sniff.await.unwrap() else {
        panic!("not a sniff outcome");
    };
    assert!(s.seen >= 2, "{s:?}");
    assert_eq!(s.sources, vec![IpAddr::from([127, 0, 0, 1])]);
}

async fn run_one_owned(p: Probe) -> Outcome {
    run_one(&p).await
}

#[test]
fn tasks_and_reports_round_trip_as_json() {
    let tasks = vec![
        Task {
            id: "gw/east".into(),
            probe: echo_task("100.64.0.1:4801".into(), 5, 0, EchoFormat::Health),
        },
        Task {
            id: "dns-version".into(),
            probe: Probe::Dns {
                name: "dns-version.clusterset.local".into(),
                record: DnsRecord::Txt,
                timeout_ms: 1000,
                attempts: 2,
                retry_ms: 0,
            },
        },
    ];
    let text = serde_json::to_string(&tasks).unwrap();
    assert!(text.contains(r#""kind":"echo""#), "{text}");
    assert!(text.contains(r#""format":"health""#), "{text}");
    assert!(text.contains(r#""record":"TXT""#), "{text}");
    let back: Vec<Task> = serde_json::from_str(&text).unwrap();
    assert_eq!(back, tasks);
    let report = Report {
        pod_ip: "100.64.1.2".into(),
        results: vec![
            TaskReport {
                id: "gw/east".into(),
                outcome: Outcome::Echo(EchoOutcome {
                    sent: 5,
                    received: 4,
                    rtt_us: vec![100, 200, 300, 400],
                    send_error: None,
                }),
            },
            TaskReport {
                id: "x".into(),
                outcome: Outcome::Error {
                    message: "boom".into(),
                },
            },
        ],
    };
    let text = serde_json::to_string(&report).unwrap();
    let back: Report = serde_json::from_str(&text).unwrap();
    assert_eq!(back, report);
    assert!(matches!(back.get("x"), Some(Outcome::Error { .. })));
    assert!(back.get("missing").is_none());
}

#[tokio::test]
async fn stream_without_an_outage_ends_when_quiet() {
    let (port, _u, _t) = server().await;
    let Outcome::Stream(s) = run_one(&Probe::Stream {
        target: format!("127.0.0.1:{port}"),
        interval_ms: 10,
        duration_ms: 5000,
        recovered_after: 5,
        quiet_end_ms: 300,
    })
    .await
    else {
        panic!("not a stream outcome");
    };
    assert!(s.flowing && !s.recovered, "{s:?}");
    assert!(
        s.elapsed_us < 4_000_000,
        "ends before the 5 s duration: {s:?}"
    );
    assert!(s.received >= 20, "{s:?}");
}
