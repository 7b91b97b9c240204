//! Verdicts of `verify` on hand-made measurements, and its output.

use std::time::Duration;

use super::judge;
use super::member::service_name;
use super::*;
use crate::check::{Findings, Group, Status};
use crate::probe::spec::{DnsOutcome, EchoOutcome, StreamOutcome, TcpOutcome};
use crate::probe::{Outcome, Report, TaskReport};

fn report(results: Vec<(&str, Outcome)>) -> Report {
    Report {
        pod_ip: "100.64.1.9".into(),
        results: results
            .into_iter()
            .map(|(id, outcome)| TaskReport {
                id: id.into(),
                outcome,
            })
            .collect(),
    }
}

fn echo(sent: u32, received: u32) -> Outcome {
    Outcome::Echo(EchoOutcome {
        sent,
        received,
        rtt_us: vec![900; received as usize],
        send_error: None,
    })
}

fn tcp(echoed: usize, address: &str) -> Outcome {
    Outcome::Tcp(TcpOutcome {
        address: address.into(),
        connect_us: 1100,
        echoed,
        mss: Some(1368),
    })
}

fn west_client() -> Report {
    report(vec![
        ("udp/east", echo(5, 5)),
        ("tcp/east", tcp(64 * 1024, "100.64.1.4:7790")),
        (
            "dns/east",
            Outcome::Dns(DnsOutcome {
                server: "100.97.0.10:53".into(),
                rcode: Some("NoError".into()),
                addresses: vec!["100.96.0.12".parse().unwrap()],
                texts: Vec::new(),
                elapsed_us: 310_000,
            }),
        ),
        ("svc-ip/east", tcp(16 * 1024, "100.96.0.12:7790")),
        ("svc-name/east", tcp(16 * 1024, "100.96.0.12:7790")),
    ])
}

fn east_client() -> Report {
    report(vec![
        ("udp/west", echo(5, 0)),
        (
            "tcp/west",
            Outcome::Error {
                message: "no complete echo from 100.65.1.4:7790 within 3000ms (resolving, connecting or echoing)".into(),
            },
        ),
        (
            "dns/west",
            Outcome::Dns(DnsOutcome {
                server: "100.96.0.10:53".into(),
                rcode: Some("NXDomain".into()),
                addresses: Vec::new(),
                texts: Vec::new(),
                elapsed_us: 15_000_000,
            }),
        ),
        (
            "svc-ip/west",
            Outcome::Error {
                message: "connecting to 100.97.0.12:7790: connection refused".into(),
            },
        ),
    ])
}

#[test]
fn verdicts_both_ways() {
    let (ec, wc) = (east_client(), west_client());
    let east = View {
        id: "east",
        server: Ok(("east-node1", "100.64.1.4")),
        service: Some(Ok(("ferry-verify-r-0", "100.96.0.12"))),
        client: Some(("east-node1", Ok(&ec))),
    };
    let west = View {
        id: "west",
        server: Ok(("west-node1", "100.65.1.4")),
        service: Some(Ok(("ferry-verify-r-1", "100.97.0.12"))),
        client: Some(("west-node1", Ok(&wc))),
    };
    let mut lines = Vec::new();
    lines.extend(judge::connectivity(&east, &west));
    lines.extend(judge::connectivity(&west, &east));
    lines.extend(judge::service_discovery(&east, &west, "clusterset.local"));
    lines.extend(judge::service_discovery(&west, &east, "clusterset.local"));
    let statuses: Vec<Status> = lines.iter().map(|l| l.status).collect();
    assert_eq!(
        statuses,
        [
            Status::Fail,
            Status::Pass,
            Status::Fail,
            Status::Fail,
            Status::Pass,
            Status::Pass,
            Status::Pass
        ]
    );
    lines.push(judge::failover(
        "east",
        "west",
        "east-node1",
        "east-node0",
        Some(("east-node2".into(), Duration::from_millis(850))),
        &StreamOutcome {
            sent: 400,
            received: 362,
            longest_gap_us: 780_000,
            flowing: true,
            recovered: true,
            elapsed_us: 8_000_000,
        },
        Duration::from_secs(30),
    ));
    lines.push(Line::with(
        Part::Failover.name(),
        Status::Skip,
        "west has 1 gateway node (west-node0): failover needs two",
        "label a second node that other clusters can reach: kubectl label node NODE ferry.dev/gateway=true",
    ));
    let findings = Findings {
        groups: vec![Group {
            header: "Clusters east, west (context east; context west)".into(),
            lines,
            error: None,
            hint: None,
        }],
    };
    insta::assert_snapshot!(findings.render(None));
    assert!(findings.check().is_err());
}

#[test]
fn failover_that_never_resumes_fails() {
    let stuck = StreamOutcome {
        sent: 1500,
        received: 50,
        longest_gap_us: 29_000_000,
        flowing: false,
        recovered: false,
        elapsed_us: 32_000_000,
    };
    let l = judge::failover(
        "east",
        "west",
        "east-node1",
        "east-node0",
        None,
        &stuck,
        Duration::from_secs(30),
    );
    assert_eq!(l.status, Status::Fail);
    assert!(l.message.contains("did not resume"), "{}", l.message);
    let lagging = StreamOutcome {
        flowing: true,
        ..stuck
    };
    let l = judge::failover(
        "east",
        "west",
        "east-node1",
        "east-node0",
        None,
        &lagging,
        Duration::from_secs(30),
    );
    assert_eq!(l.status, Status::Warn);
}

#[test]
fn missing_pods_fail_with_the_reason() {
    let east = View {
        id: "east",
        server: Err("test pod x: ErrImagePull"),
        service: Some(Err("no server pod to export")),
        client: None,
    };
    let wc = west_client();
    let west = View {
        id: "west",
        server: Ok(("west-node1", "100.65.1.4")),
        service: None,
        client: Some(("west-node1", Ok(&wc))),
    };
    let l = judge::connectivity(&west, &east);
    assert_eq!(l[0].status, Status::Fail);
    assert!(l[0].message.contains("ErrImagePull"));
    let l = judge::connectivity(&east, &west);
    assert!(l[0].message.contains("has no node for a client pod"));
    let l = judge::service_discovery(&west, &east, "clusterset.local");
    assert!(l[0].message.contains("no test Service exported from east"));
    assert!(judge::service_discovery(&east, &west, "clusterset.local").is_empty());
}

#[test]
fn parts_parse() {
    for p in Part::ALL {
        assert_eq!(p.name().parse::<Part>().unwrap(), p);
    }
    assert!("dns".parse::<Part>().is_err());
    assert_eq!(service_name("abc", 1), "ferry-verify-abc-1");
}
