#![allow(clippy::unwrap_used)]
use super::*;
use ferry_api::{CableDriver, Connection, HaStatus};

fn connection(cluster: &str, status: ConnectionStatus) -> Connection {
    Connection {
        endpoint: cluster.into(),
        cluster_id: cluster.into(),
        cable_driver: CableDriver::Wireguard,
        status,
        status_message: String::new(),
        using_ip: None,
        using_nat: false,
        latency_rtt: None,
        nat_discovery: None,
    }
}

fn status(connections: Vec<Connection>) -> GatewayStatus {
    GatewayStatus {
        ha_status: HaStatus::Active,
        connections,
        ..Default::default()
    }
}

fn text(m: &Metrics) -> String {
    ferry_kube::metrics::encode(&m.registry())
}

fn last_failover(text: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix("ferry_gateway_last_failover_duration_seconds "))
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn cable_status_is_a_state_set_and_vanished_cables_leave() {
    let m = Metrics::new();
    m.observe_status(&status(vec![connection("west", ConnectionStatus::Error)]));
    let t = text(&m);
    assert!(
        t.contains(
            r#"ferry_gateway_cable_status{remote_cluster="west",driver="wireguard",status="error"} 1"#
        ),
        "{t}"
    );
    assert!(
        t.contains(
            r#"ferry_gateway_cable_status{remote_cluster="west",driver="wireguard",status="connected"} 0"#
        ),
        "{t}"
    );
    m.observe_status(&status(vec![]));
    assert!(!text(&m).contains("remote_cluster=\"west\""));
}

#[test]
fn a_takeover_counts_and_ends_when_every_cable_is_connected() {
    let m = Metrics::new();
    m.set_active(true);
    m.set_active(true);
    m.observe_status(&status(vec![connection(
        "west",
        ConnectionStatus::Connecting,
    )]));
    let t = text(&m);
    assert!(t.contains("ferry_gateway_failovers_total 1"), "{t}");
    assert!(t.contains("ferry_gateway_lease_active 1"), "{t}");
    assert!(last_failover(&t).abs() < f64::EPSILON, "{t}");
    std::thread::sleep(Duration::from_millis(5));
    m.observe_status(&status(vec![connection(
        "west",
        ConnectionStatus::Connected,
    )]));
    let t = text(&m);
    assert!(last_failover(&t) >= 0.005, "{t}");
    m.set_active(false);
    let t = text(&m);
    assert!(
        t.contains(r#"ferry_gateway_lease_transitions_total{to="passive"} 1"#),
        "{t}"
    );
    assert!(
        t.contains(r#"ferry_gateway_lease_transitions_total{to="active"} 1"#),
        "{t}"
    );
}

#[test]
fn driver_totals_become_counter_increments() {
    let m = Metrics::new();
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
    let sample = |rx, tx, hs| CableCounters {
        remote_cluster: "west".into(),
        rx_bytes: Some(rx),
        tx_bytes: Some(tx),
        last_handshake: hs,
        rekeys: None,
    };
    m.observe_counters(&[sample(100, 50, Some(at))]);
    // The same handshake read again, microseconds off.
    m.observe_counters(&[sample(300, 70, Some(at + Duration::from_micros(3)))]);
    // A new peer starts from zero again.
    m.observe_counters(&[sample(10, 5, Some(at + Duration::from_secs(6)))]);
    let t = text(&m);
    assert!(
        t.contains(r#"ferry_gateway_cable_received_bytes_total{remote_cluster="west"} 310"#),
        "{t}"
    );
    assert!(
        t.contains(r#"ferry_gateway_cable_sent_bytes_total{remote_cluster="west"} 75"#),
        "{t}"
    );
    assert!(
        t.contains(r#"ferry_gateway_cable_handshakes_total{remote_cluster="west"} 2"#),
        "{t}"
    );
    assert!(
        t.contains(
            r#"ferry_gateway_cable_last_handshake_timestamp_seconds{remote_cluster="west"} 106.0"#
        ),
        "{t}"
    );
}

#[test]
fn ipsec_rekeys_are_counted_per_sa_and_only_for_drivers_that_count_them() {
    let m = Metrics::new();
    let sample = |ike, child| CableCounters {
        remote_cluster: "west".into(),
        rx_bytes: None,
        tx_bytes: None,
        last_handshake: None,
        rekeys: Some(SaRekeys { ike, child }),
    };
    m.observe_counters(&[sample(1, 2)]);
    m.observe_counters(&[sample(2, 5)]);
    // A new peer (the remote's gateway failed over) starts from zero again.
    m.observe_counters(&[sample(0, 1)]);
    let t = text(&m);
    assert!(
        t.contains(r#"ferry_gateway_cable_rekeys_total{remote_cluster="west",sa="ike"} 2"#),
        "{t}"
    );
    assert!(
        t.contains(r#"ferry_gateway_cable_rekeys_total{remote_cluster="west",sa="child"} 6"#),
        "{t}"
    );
    // IPsec counts no bytes here: no byte series rather than a false 0.
    assert!(
        !t.contains("ferry_gateway_cable_received_bytes_total{"),
        "{t}"
    );
}
