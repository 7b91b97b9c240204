//! `dig` against a running server over the fixture zone (tests/fixtures/zone.json):
//! every record type and edge case, answers snapshot-tested.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{dig, start};
use ferry_dns::Policy;
use ferry_dns::model::StaticZone;

const Z: &str = "svc.clusterset.local";

/// `(snapshot name, dig arguments)`; `{}` in a name is replaced by `svc.clusterset.local`.
const CASES: &[(&str, &[&str])] = &[
    // zone apex and the version record
    ("dns_version_txt", &["dns-version.clusterset.local", "TXT"]),
    (
        "dns_version_a_nodata",
        &["dns-version.clusterset.local", "A"],
    ),
    ("apex_soa", &["clusterset.local", "SOA"]),
    ("apex_ns", &["clusterset.local", "NS"]),
    ("apex_a_nodata", &["clusterset.local", "A"]),
    // ClusterSetIP service
    ("clustersetip_a", &["web.default.{}", "A"]),
    ("clustersetip_aaaa_nodata", &["web.default.{}", "AAAA"]),
    ("clustersetip_txt_nodata", &["web.default.{}", "TXT"]),
    ("clustersetip_srv_all_ports", &["web.default.{}", "SRV"]),
    (
        "clustersetip_srv_http_tcp",
        &["_http._tcp.web.default.{}", "SRV"],
    ),
    (
        "clustersetip_srv_dns_udp",
        &["_dns._udp.web.default.{}", "SRV"],
    ),
    (
        "clustersetip_srv_wrong_proto_nxdomain",
        &["_http._udp.web.default.{}", "SRV"],
    ),
    (
        "clustersetip_srv_unknown_port_nxdomain",
        &["_nope._tcp.web.default.{}", "SRV"],
    ),
    (
        "clustersetip_proto_ent_nodata",
        &["_tcp.web.default.{}", "SRV"],
    ),
    ("clustersetip_any", &["web.default.{}", "ANY"]),
    (
        "clustersetip_case_insensitive",
        &["WEB.Default.SVC.ClusterSet.Local", "A"],
    ),
    ("dual_stack_a", &["dual.default.{}", "A"]),
    ("dual_stack_aaaa", &["dual.default.{}", "AAAA"]),
    ("v6_only_aaaa", &["v6.default.{}", "AAAA"]),
    ("v6_only_a_nodata", &["v6.default.{}", "A"]),
    // choice among clusters: no clusterset IP, local has none, lowest RTT wins
    ("remote_only_lowest_rtt", &["remote-only.default.{}", "A"]),
    (
        "remote_only_cluster_west",
        &["west.remote-only.default.{}", "A"],
    ),
    (
        "remote_only_cluster_south",
        &["south.remote-only.default.{}", "A"],
    ),
    (
        "remote_only_cluster_in_error_nxdomain",
        &["north.remote-only.default.{}", "A"],
    ),
    (
        "remote_only_unknown_cluster_nxdomain",
        &["mars.remote-only.default.{}", "A"],
    ),
    // only an erroring cluster and an unready local one: gone
    ("no_healthy_cluster_nxdomain", &["down.default.{}", "A"]),
    // headless
    ("headless_a_ready_healthy_only", &["db.data.{}", "A"]),
    ("headless_srv_n_by_m", &["db.data.{}", "SRV"]),
    ("headless_srv_one_port", &["_pg._tcp.db.data.{}", "SRV"]),
    ("headless_host_a", &["db-0.east.db.data.{}", "A"]),
    (
        "headless_host_other_cluster",
        &["db-0.west.db.data.{}", "A"],
    ),
    (
        "headless_host_aaaa_nodata",
        &["db-0.east.db.data.{}", "AAAA"],
    ),
    (
        "headless_host_unready_nxdomain",
        &["db-2.east.db.data.{}", "A"],
    ),
    (
        "headless_host_cluster_in_error_nxdomain",
        &["db-5.north.db.data.{}", "A"],
    ),
    // MCS DNS 2.4.4: no record for `<clusterid>.<svc>` of a headless
    // service (the name exists: its hosts are below it)
    ("headless_cluster_name_nodata", &["east.db.data.{}", "A"]),
    (
        "headless_cluster_name_in_error_nxdomain",
        &["north.db.data.{}", "A"],
    ),
    // 2.3.4: nor of a ClusterSetIP service (no hosts below it: gone)
    (
        "clustersetip_cluster_name_nxdomain",
        &["east.web.default.{}", "A"],
    ),
    // PTR (2.3.3, 2.4.3): ClusterSet IPs and ready headless endpoints of
    // healthy clusters; any other address is not ours
    ("ptr_clusterset_ip", &["-x", "242.1.0.10"]),
    ("ptr_clusterset_ipv6", &["-x", "fd00:242::11"]),
    ("ptr_headless_local", &["-x", "10.0.1.1"]),
    ("ptr_headless_remote", &["-x", "10.1.1.1"]),
    ("ptr_headless_unready_refused", &["-x", "10.0.1.3"]),
    ("ptr_headless_cluster_in_error_refused", &["-x", "10.3.1.1"]),
    ("ptr_unknown_refused", &["-x", "100.64.9.9"]),
    ("ptr_partial_name_refused", &["1.0.10.in-addr.arpa", "PTR"]),
    (
        "headless_no_ready_endpoint_nxdomain",
        &["empty.data.{}", "A"],
    ),
    // structure: empty non-terminals vs names that do not exist
    ("ent_svc_nodata", &["svc.clusterset.local", "A"]),
    ("ent_namespace_nodata", &["default.{}", "A"]),
    ("unknown_namespace_nxdomain", &["nowhere.{}", "A"]),
    ("unknown_service_nxdomain", &["nope.default.{}", "A"]),
    ("unknown_top_label_nxdomain", &["foo.clusterset.local", "A"]),
    ("too_deep_nxdomain", &["a.b.db-0.east.db.data.{}", "A"]),
    // outside our zones: REFUSED at once
    ("outside_zone_refused", &["example.com", "A"]),
    ("parent_of_zone_refused", &["local", "SOA"]),
    (
        "cluster_local_refused",
        &["kubernetes.default.svc.cluster.local", "A"],
    ),
    // EDNS
    (
        "edns_version_1_badvers",
        &["+edns=1", "web.default.{}", "A"],
    ),
    ("no_edns", &["+noedns", "web.default.{}", "A"]),
    // truncation: 100 endpoints do not fit in 512 bytes, nor in 1232
    (
        "big_udp_no_edns_truncated",
        &["+noedns", "+ignore", "big.data.{}", "A"],
    ),
    (
        "big_udp_edns_truncated",
        &["+ignore", "+bufsize=1232", "big.data.{}", "A"],
    ),
    (
        "big_udp_small_bufsize_truncated",
        &["+ignore", "+bufsize=512", "big.data.{}", "SRV"],
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_type_and_edge_case() {
    let s = start(&["clusterset.local"], Policy::LocalFirst).await;
    for (name, args) in CASES {
        let args: Vec<String> = args.iter().map(|a| a.replace("{}", Z)).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = dig(s.port, &args).await;
        insta::assert_snapshot!(*name, out, &args.join(" "));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_answers_in_full() {
    let s = start(&["clusterset.local"], Policy::LocalFirst).await;
    let out = dig(s.port, &["+tcp", "web.default.svc.clusterset.local", "A"]).await;
    insta::assert_snapshot!("tcp_clustersetip_a", out);
    let out = dig(s.port, &["+tcp", "nope.default.svc.clusterset.local", "A"]).await;
    insta::assert_snapshot!("tcp_nxdomain", out);
    let out = dig(s.port, &["+tcp", "example.com", "A"]).await;
    insta::assert_snapshot!("tcp_refused", out);
    // What was truncated over UDP comes whole over TCP.
    let out = dig(s.port, &["+tcp", "big.data.svc.clusterset.local", "A"]).await;
    assert!(out.contains("ANSWER: 100,"), "{out}");
    assert!(!out.contains(" tc"), "{out}");
    // And dig's own fallback from a truncated UDP answer gets the full one.
    let out = dig(s.port, &["+noedns", "big.data.svc.clusterset.local", "A"]).await;
    assert!(out.contains("ANSWER: 100,"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extra_zones_answer_the_same_names() {
    let s = start(&["clusterset.local", "mcs.example.org"], Policy::LocalFirst).await;
    let out = dig(s.port, &["web.default.svc.mcs.example.org", "A"]).await;
    insta::assert_snapshot!("extra_zone_a", out);
    let out = dig(s.port, &["nope.default.svc.mcs.example.org", "A"]).await;
    insta::assert_snapshot!("extra_zone_nxdomain_soa", out);
    let out = dig(s.port, &["_pg._tcp.db.data.svc.mcs.example.org", "SRV"]).await;
    insta::assert_snapshot!("extra_zone_srv", out);
}

fn answers(out: &str) -> Vec<String> {
    out.lines()
        .skip_while(|l| !l.starts_with(";; ANSWER SECTION"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(|l| l.split_whitespace().last().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_changes_show_in_the_very_next_answer() {
    let s = start(&["clusterset.local"], Policy::LocalFirst).await;
    let q = ["remote-only.default.svc.clusterset.local", "A"];
    assert_eq!(answers(&dig(s.port, &q).await), ["10.97.0.20"]);

    // west's connection goes to error: south (next lowest RTT) at once.
    let mut zone = StaticZone::from_json(common::FIXTURE).unwrap();
    zone.links.get_mut("west").unwrap().connected = false;
    s.answerer.set_data(zone.to_zone_data().unwrap());
    assert_eq!(answers(&dig(s.port, &q).await), ["10.98.0.20"]);
    let out = dig(
        s.port,
        &["west.remote-only.default.svc.clusterset.local", "A"],
    )
    .await;
    assert!(out.contains("status: NXDOMAIN"), "{out}");

    // north recovers with the lowest RTT: it is chosen.
    zone.links.get_mut("north").unwrap().connected = true;
    s.answerer.set_data(zone.to_zone_data().unwrap());
    assert_eq!(answers(&dig(s.port, &q).await), ["10.99.0.20"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_policy_rotates_over_healthy_clusters() {
    let s = start(&["clusterset.local"], Policy::RoundRobin).await;
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..6 {
        let out = dig(s.port, &["remote-only.default.svc.clusterset.local", "A"]).await;
        seen.extend(answers(&out));
    }
    // west and south; never north (error)
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        ["10.97.0.20", "10.98.0.20"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_queries_by_type_and_rcode() {
    let s = start(&["clusterset.local"], Policy::LocalFirst).await;
    dig(s.port, &["web.default.svc.clusterset.local", "A"]).await;
    dig(s.port, &["nope.default.svc.clusterset.local", "AAAA"]).await;
    dig(s.port, &["+tcp", "example.com", "A"]).await;
    let text = s.metrics.encode();
    for want in [
        r#"ferry_dns_queries_total{qtype="A",rcode="NOERROR",proto="udp"} 1"#,
        r#"ferry_dns_queries_total{qtype="AAAA",rcode="NXDOMAIN",proto="udp"} 1"#,
        r#"ferry_dns_queries_total{qtype="A",rcode="REFUSED",proto="tcp"} 1"#,
        "ferry_dns_query_duration_seconds_count 3",
    ] {
        assert!(text.contains(want), "missing {want} in\n{text}");
    }
}
