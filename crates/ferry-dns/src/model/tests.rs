use super::*;

fn ep(ip: &str, ready: bool) -> EndpointAddr {
    EndpointAddr::new(ip.parse().unwrap(), None, ready)
}

fn svc(clusters: &[(&str, bool)]) -> Service {
    let mut s = Service::default();
    for (i, (c, ready)) in clusters.iter().enumerate() {
        s.clusters.insert(
            c.to_string(),
            vec![ep(&format!("10.0.0.{}", i + 1), *ready)],
        );
    }
    s
}

fn data(local: &str, links: &[(&str, bool, Option<u64>)]) -> ZoneData {
    let mut d = ZoneData {
        local_cluster: Some(local.to_string()),
        ..Default::default()
    };
    for (c, connected, rtt) in links {
        d.links.insert(
            c.to_string(),
            Link {
                connected: *connected,
                rtt: rtt.map(Duration::from_millis),
            },
        );
    }
    d
}

fn choices(d: &ZoneData, s: &Service, p: Policy, n: u64) -> Vec<String> {
    (0..n)
        .map(|t| d.choose(s, p, t).unwrap_or("-").to_string())
        .collect()
}

#[test]
fn local_first_prefers_ready_local() {
    let d = data("a", &[("b", true, Some(1)), ("c", true, Some(2))]);
    let s = svc(&[("a", true), ("b", true), ("c", true)]);
    assert_eq!(choices(&d, &s, Policy::LocalFirst, 3), ["a", "a", "a"]);
}

#[test]
fn unready_local_is_skipped() {
    let d = data("a", &[("b", true, Some(10)), ("c", true, Some(50))]);
    let s = svc(&[("a", false), ("b", true), ("c", true)]);
    assert_eq!(choices(&d, &s, Policy::LocalFirst, 3), ["b", "b", "b"]);
}

#[test]
fn local_without_endpoints_is_skipped() {
    let d = data("a", &[("b", true, Some(10))]);
    let s = svc(&[("b", true)]);
    assert_eq!(d.choose(&s, Policy::LocalFirst, 0), Some("b"));
}

#[test]
fn disconnected_or_erroring_clusters_are_never_chosen() {
    let d = data(
        "a",
        &[
            ("b", false, Some(1)),
            ("c", true, Some(30)),
            ("d", false, None),
        ],
    );
    let s = svc(&[("b", true), ("c", true), ("d", true)]);
    for p in [
        Policy::LocalFirst,
        Policy::RoundRobin,
        Policy::LowestLatency,
    ] {
        assert_eq!(choices(&d, &s, p, 4), ["c", "c", "c", "c"], "{p}");
    }
}

#[test]
fn remote_without_link_is_not_eligible() {
    let d = data("a", &[]);
    let s = svc(&[("b", true)]);
    assert_eq!(d.choose(&s, Policy::RoundRobin, 0), None);
}

#[test]
fn nothing_eligible_gives_none() {
    let d = data("a", &[("b", true, Some(1))]);
    let s = svc(&[("a", false), ("b", false)]);
    for p in [
        Policy::LocalFirst,
        Policy::RoundRobin,
        Policy::LowestLatency,
    ] {
        assert_eq!(d.choose(&s, p, 0), None);
    }
}

#[test]
fn lowest_latency_band_round_robins() {
    // best 10 ms → band up to 12 ms: b and c share, d (20 ms) is out.
    let d = data(
        "a",
        &[
            ("b", true, Some(10)),
            ("c", true, Some(12)),
            ("d", true, Some(20)),
        ],
    );
    let s = svc(&[("b", true), ("c", true), ("d", true)]);
    assert_eq!(choices(&d, &s, Policy::LocalFirst, 4), ["b", "c", "b", "c"]);
    assert_eq!(
        choices(&d, &s, Policy::LowestLatency, 4),
        ["b", "c", "b", "c"]
    );
}

#[test]
fn band_has_a_one_millisecond_floor() {
    let d = data(
        "a",
        &[
            ("b", true, Some(0)),
            ("c", true, Some(1)),
            ("d", true, Some(2)),
        ],
    );
    let s = svc(&[("b", true), ("c", true), ("d", true)]);
    assert_eq!(choices(&d, &s, Policy::LocalFirst, 3), ["b", "c", "b"]);
}

#[test]
fn unmeasured_rtt_ranks_last() {
    let d = data("a", &[("b", true, None), ("c", true, Some(40))]);
    let s = svc(&[("b", true), ("c", true)]);
    assert_eq!(choices(&d, &s, Policy::LocalFirst, 2), ["c", "c"]);
    // with no measurement at all, everybody shares
    let d = data("a", &[("b", true, None), ("c", true, None)]);
    assert_eq!(choices(&d, &s, Policy::LocalFirst, 2), ["b", "c"]);
}

#[test]
fn lowest_latency_counts_local_as_zero() {
    let d = data("a", &[("b", true, Some(0)), ("c", true, Some(5))]);
    let s = svc(&[("a", true), ("b", true), ("c", true)]);
    assert_eq!(
        choices(&d, &s, Policy::LowestLatency, 4),
        ["a", "b", "a", "b"]
    );
}

#[test]
fn round_robin_covers_every_eligible_cluster() {
    let d = data("a", &[("b", true, Some(100)), ("c", true, Some(1))]);
    let s = svc(&[("a", true), ("b", true), ("c", true)]);
    assert_eq!(
        choices(&d, &s, Policy::RoundRobin, 6),
        ["a", "c", "b", "a", "c", "b"]
    );
}

#[test]
fn policy_parses_and_prints() {
    for p in ["local-first", "round-robin", "lowest-latency"] {
        assert_eq!(p.parse::<Policy>().unwrap().to_string(), p);
    }
    assert!("fastest".parse::<Policy>().is_err());
}

#[test]
fn dashed_names() {
    assert_eq!(dashed("10.1.2.3".parse().unwrap()), "10-1-2-3");
    assert_eq!(dashed("fd00::1".parse().unwrap()), "fd00--1");
}
