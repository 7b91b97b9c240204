use std::time::UNIX_EPOCH;

use super::page::*;
use super::*;
use crate::show::model::{ClusterReport, ClusterView, GatewayRow};

fn report() -> Report {
    Report {
        clusters: vec![ClusterReport {
            source: "kubeconfig /tmp/c0".into(),
            server: "https://198.18.0.1:6443".into(),
            cluster_id: Some("cluster0".into()),
            view: ClusterView {
                gateways: Some(vec![GatewayRow {
                    node: "c0-node0".into(),
                    ha_status: None,
                    connected: 0,
                    connections: 0,
                    share_percent: None,
                    traffic: None,
                    summary: "<script>".into(),
                }]),
                ..Default::default()
            },
            ..Default::default()
        }],
    }
}

#[test]
fn the_page_holds_the_picture_the_tables_and_its_refresh() {
    let f = Frame::new(&report(), 6, "01:02:03");
    assert_eq!(f.version, 7);
    let html = page(&f, 250);
    assert!(
        html.contains(r#"data-version="7" data-refresh-ms="250""#),
        "{html}"
    );
    assert!(
        html.contains(r#"<g class="cluster" data-cluster="cluster0""#),
        "{html}"
    );
    assert!(html.contains("Gateways of cluster0"), "{html}");
    // Table cells are text, never markup.
    assert!(html.contains("&lt;script&gt;"), "{html}");
    // No external asset: nothing is loaded from elsewhere.
    assert!(!html.contains("src="), "{html}");
    assert!(!html.contains("href="), "{html}");
}

#[test]
fn frames_compare_by_content_and_serialize() {
    let a = Frame::new(&report(), 0, "01:02:03");
    let b = Frame::new(&report(), 1, "01:02:04");
    assert!(a.same_content(&b));
    assert!(!a.same_content(&Frame::new(&Report::default(), 0, "x")));
    let v: serde_json::Value = serde_json::from_str(&frame_json(&a)).unwrap();
    assert_eq!(v["version"], 1);
    assert!(v["svg"].as_str().unwrap().starts_with("<svg"));
}

#[test]
fn clock_is_utc_time_of_day() {
    let t = UNIX_EPOCH + std::time::Duration::from_secs(86_400 * 3 + 3600 * 13 + 60 * 5 + 9);
    assert_eq!(clock(t), "13:05:09");
}

#[test]
fn only_loopback_unless_allowed() {
    let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
    let local6: SocketAddr = "[::1]:8080".parse().unwrap();
    let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
    assert!(check_listen(local, false).is_ok());
    assert!(check_listen(local6, false).is_ok());
    let err = check_listen(any, false).unwrap_err();
    assert!(matches!(err, Error::Usage(_)), "{err}");
    assert!(err.to_string().contains("--allow-remote"), "{err}");
    assert!(check_listen(any, true).is_ok());
}
