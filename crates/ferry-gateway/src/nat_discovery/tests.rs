use super::*;

fn peer(c: &str) -> Peer {
    Peer {
        cluster_id: c.into(),
        endpoint: c.into(),
    }
}

fn target() -> Target {
    Target {
        peer: peer("west"),
        private_ip: "198.18.101.10".parse().unwrap(),
        public_ip: Some("198.19.1.1".parse().unwrap()),
        port: 4490,
    }
}

fn sa(s: &str) -> SocketAddrV4 {
    s.parse().unwrap()
}

fn response(n: u64, kind: ResponseType, seen: &str) -> Response {
    Response {
        request_number: n,
        response: kind,
        sender: peer("west"),
        receiver: peer("east"),
        src_ip_nat_detected: kind == ResponseType::NatDetected,
        src_port_nat_detected: false,
        dst_ip_nat_detected: false,
        received_src: sa(seen),
    }
}

fn request_from_west(src: &str) -> Request {
    Request {
        request_number: 1,
        sender: peer("west"),
        receiver: peer("east"),
        using_src: sa(src),
        using_dst: sa("198.19.0.10:4490"),
    }
}

const P: Policy = Policy {
    interval: Duration::from_millis(200),
    settle: Duration::from_secs(1),
    refresh: Duration::from_secs(1),
    proven_refresh: Duration::from_secs(10),
    inbound_grace: Duration::from_millis(600),
    timeout: Duration::from_secs(3),
};

fn ms(t0: Instant, n: u64) -> Instant {
    t0 + Duration::from_millis(n)
}

#[test]
fn probes_both_addresses_then_retries_at_the_interval() {
    let t0 = Instant::now();
    let mut d = Discovery::new(target(), t0, 100);
    let first = d.due(t0, &P, false);
    assert_eq!(
        first,
        vec![
            (sa("198.18.101.10:4490"), 100),
            (sa("198.19.1.1:4490"), 101)
        ]
    );
    assert!(
        d.due(ms(t0, 100), &P, false).is_empty(),
        "not before the interval"
    );
    assert_eq!(d.due(ms(t0, 200), &P, false).len(), 2);
    assert_eq!(d.outcome(ms(t0, 200), &P), Outcome::Probing);
}

#[test]
fn a_public_answer_selects_the_public_ip_with_the_nat_it_reports() {
    let t0 = Instant::now();
    let mut d = Discovery::new(target(), t0, 100);
    d.due(t0, &P, false);
    let r = response(101, ResponseType::NatDetected, "198.19.0.1:40123");
    assert!(d.on_response(ms(t0, 2), sa("198.19.1.1:4490"), &r));
    assert_eq!(
        d.outcome(ms(t0, 2), &P),
        Outcome::Reach {
            via: Via::Public,
            ip: "198.19.1.1".parse().unwrap(),
            nat: true,
            seen_as: sa("198.19.0.1:40123"),
        }
    );
    // The private address is still tried until the answer settles…
    assert_eq!(
        d.due(ms(t0, 200), &P, false),
        vec![(sa("198.18.101.10:4490"), 102)]
    );
    // …then only the chosen one, at the refresh rate.
    assert_eq!(
        d.due(ms(t0, 1100), &P, false),
        vec![(sa("198.19.1.1:4490"), 103)]
    );
    assert!(d.due(ms(t0, 1300), &P, false).is_empty());
    assert_eq!(
        d.due(ms(t0, 2100), &P, false),
        vec![(sa("198.19.1.1:4490"), 104)]
    );
    let report = d.report(ms(t0, 1300), &P);
    assert_eq!(report.result, NatDiscoveryResult::PublicIp);
    assert_eq!(report.seen_as, Some("198.19.0.1:40123".parse().unwrap()));
    assert!(
        report.message.contains("NAT on the way"),
        "{}",
        report.message
    );
    assert!(report.src_ip_nat_detected && !report.dst_ip_nat_detected);
}

#[test]
fn a_cable_proven_by_health_checks_is_refreshed_ten_times_less_often() {
    let t0 = Instant::now();
    let mut d = Discovery::new(target(), t0, 100);
    d.due(t0, &P, false);
    let r = response(101, ResponseType::Ok, "198.19.0.10:4490");
    assert!(d.on_response(ms(t0, 2), sa("198.18.101.10:4490"), &r));
    // Settled on the private address; the cable then passes its checks.
    assert_eq!(d.due(ms(t0, 1100), &P, true), vec![]);
    assert!(d.due(ms(t0, 5000), &P, true).is_empty());
    assert_eq!(
        d.due(ms(t0, 10_000), &P, true),
        vec![(sa("198.18.101.10:4490"), 102)]
    );
    // The cable fails: back to the plain refresh at once.
    assert!(d.due(ms(t0, 10_500), &P, false).is_empty());
    assert_eq!(
        d.due(ms(t0, 11_000), &P, false),
        vec![(sa("198.18.101.10:4490"), 103)]
    );
}

#[test]
fn the_private_ip_wins_when_it_answers_too() {
    let t0 = Instant::now();
    let mut d = Discovery::new(target(), t0, 100);
    d.due(t0, &P, false);
    d.on_response(
        ms(t0, 1),
        sa("198.19.1.1:4490"),
        &response(101, ResponseType::Ok, "198.19.0.10:4490"),
    );
    d.on_response(
        ms(t0, 3),
        sa("198.18.101.10:4490"),
        &response(100, ResponseType::Ok, "198.18.100.10:4490"),
    );
    assert!(matches!(
        d.outcome(ms(t0, 3), &P),
        Outcome::Reach {
            via: Via::Private,
            nat: false,
            ..
        }
    ));
}

#[test]
fn answers_from_elsewhere_or_from_an_earlier_run_do_not_count() {
    let t0 = Instant::now();
    let mut d = Discovery::new(target(), t0, 100);
    d.due(t0, &P, false);
    let ok = response(100, ResponseType::Ok, "198.18.100.10:4490");
    // A private IP answering from another address (Submariner filters it).
    assert!(!d.on_response(t0, sa("198.19.9.9:4490"), &ok));
    // A request number this run never sent.
    let stale = response(7, ResponseType::Ok, "198.18.100.10:4490");
    assert!(!d.on_response(t0, sa("198.18.101.10:4490"), &stale));
    // Another cluster's gateway.
    let mut other = ok.clone();
    other.sender = peer("north");
    assert!(!d.on_response(t0, sa("198.18.101.10:4490"), &other));
    // A gateway that is not the Endpoint probed.
    let refused = response(100, ResponseType::UnknownDstEndpoint, "198.18.100.10:4490");
    assert!(!d.on_response(t0, sa("198.18.101.10:4490"), &refused));
    assert_eq!(d.outcome(ms(t0, 10), &P), Outcome::Probing);
    let report = d.report(ms(t0, 3000), &P);
    assert!(
        report.message.contains("UnknownDstEndpoint"),
        "{}",
        report.message
    );
}

#[test]
fn only_inbound_probes_mean_the_remote_is_behind_nat() {
    let t0 = Instant::now();
    let mut d = Discovery::new(target(), t0, 100);
    d.due(t0, &P, false);
    d.on_request(
        sa("198.19.1.1:51000"),
        &request_from_west("198.18.101.10:4490"),
    );
    assert!(d.inbound_seen());
    assert_eq!(d.outcome(ms(t0, 100), &P), Outcome::Probing, "grace first");
    assert_eq!(
        d.outcome(ms(t0, 600), &P),
        Outcome::InboundOnly {
            from: sa("198.19.1.1:51000"),
            nat: true,
        }
    );
    let report = d.report(ms(t0, 600), &P);
    assert_eq!(report.result, NatDiscoveryResult::InboundOnly);
    assert_eq!(
        report.remote_seen_from,
        Some("198.19.1.1:51000".parse().unwrap())
    );
    // Probes from another cluster say nothing about this one.
    let mut d2 = Discovery::new(target(), t0, 100);
    let mut req = request_from_west("198.18.101.10:4490");
    req.sender = peer("north");
    d2.on_request(sa("198.19.1.1:51000"), &req);
    assert!(!d2.inbound_seen());
}

#[test]
fn nothing_either_way_is_unreachable_after_the_timeout_and_probing_goes_on() {
    let t0 = Instant::now();
    let mut d = Discovery::new(target(), t0, 100);
    d.due(t0, &P, false);
    assert_eq!(d.outcome(ms(t0, 2999), &P), Outcome::Probing);
    assert_eq!(d.outcome(ms(t0, 3000), &P), Outcome::Unreachable);
    assert!(d.timed_out(ms(t0, 3000), &P));
    let report = d.report(ms(t0, 3000), &P);
    assert_eq!(report.result, NatDiscoveryResult::Unreachable);
    assert!(
        report
            .message
            .contains("UDP between the gateways is blocked"),
        "{}",
        report.message
    );
    // Still probed (slowly), so a path that opens later is found.
    d.due(ms(t0, 2900), &P, false);
    assert!(d.due(ms(t0, 3100), &P, false).is_empty());
    assert_eq!(d.due(ms(t0, 3900), &P, false).len(), 2);
    // And an answer at any time turns the verdict.
    d.on_response(
        ms(t0, 4000),
        sa("198.19.1.1:4490"),
        &response(101, ResponseType::Ok, "198.19.0.10:4490"),
    );
    assert!(matches!(
        d.outcome(ms(t0, 4000), &P),
        Outcome::Reach { nat: false, .. }
    ));
}

#[test]
fn one_address_is_probed_once_when_public_equals_private() {
    let t0 = Instant::now();
    let mut t = target();
    t.public_ip = Some(t.private_ip);
    let mut d = Discovery::new(t, t0, 0);
    assert_eq!(d.due(t0, &P, false).len(), 1);
    let mut t = target();
    t.public_ip = None;
    let mut d = Discovery::new(t, t0, 0);
    assert_eq!(d.due(t0, &P, false).len(), 1);
}

#[test]
fn request_numbers_wrap_without_losing_answers() {
    let t0 = Instant::now();
    let mut d = Discovery::new(target(), t0, u64::MAX);
    let sent = d.due(t0, &P, false);
    assert_eq!(sent[1].1, 0, "wrapped");
    assert!(d.on_response(
        t0,
        sa("198.19.1.1:4490"),
        &response(0, ResponseType::Ok, "198.19.0.10:4490")
    ));
}
