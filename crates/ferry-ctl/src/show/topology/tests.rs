use ferry_api::{CableDriver, ConnectionStatus, HaStatus, LatencyRtt};

use super::*;
use crate::show::model::*;

fn rtt(ms: f64) -> Option<LatencyRtt> {
    let d = kube::core::Duration::from(Duration::from_secs_f64(ms / 1000.0));
    Some(LatencyRtt {
        last: d,
        min: d,
        average: d,
        max: d,
        std_dev: kube::core::Duration::from(Duration::ZERO),
    })
}

fn connection(
    gateway: &str,
    cluster: &str,
    status: ConnectionStatus,
    message: &str,
    latency: Option<LatencyRtt>,
) -> ConnectionRow {
    ConnectionRow {
        gateway: gateway.into(),
        cluster: cluster.into(),
        endpoint: format!("{cluster}-{cluster}-node0"),
        remote_ip: None,
        using_nat: false,
        nat_discovery: None,
        cable_driver: CableDriver::Wireguard,
        subnets: Vec::new(),
        status,
        status_message: message.into(),
        latency_rtt: latency,
    }
}

fn gateway(node: &str, ha: Option<HaStatus>) -> GatewayRow {
    GatewayRow {
        node: node.into(),
        ha_status: ha,
        connected: 0,
        connections: 0,
        share_percent: None,
        traffic: None,
        summary: String::new(),
    }
}

fn endpoint(cluster: &str, host: &str, local: bool) -> EndpointRow {
    EndpointRow {
        cluster: cluster.into(),
        hostname: host.into(),
        private_ip: "198.18.0.2".into(),
        public_ip: None,
        cable_driver: CableDriver::Wireguard,
        local,
    }
}

fn services(imports: usize, exports: usize) -> ServicesView {
    let import = |i: usize| ServiceRow {
        namespace: "ns".into(),
        name: format!("svc{i}"),
        type_: ferry_api::ServiceImportType::ClusterSetIp,
        ips: Vec::new(),
        ports: Vec::new(),
        clusters: Vec::new(),
    };
    let export = |i: usize| ExportRow {
        namespace: "ns".into(),
        name: format!("svc{i}"),
        valid: None,
        ready: None,
        conflict: None,
        message: String::new(),
    };
    ServicesView {
        imports: (0..imports).map(import).collect(),
        exports: (0..exports).map(export).collect(),
    }
}

fn read(id: &str, view: ClusterView) -> ClusterReport {
    ClusterReport {
        source: format!("kubeconfig /tmp/{id}.kubeconfig"),
        server: "https://198.18.0.1:6443".into(),
        cluster_id: Some(id.into()),
        error: None,
        hint: None,
        view,
    }
}

/// cluster0 (active + standby gateway) and cluster1 read, both reporting
/// their cable up; cluster0's cable to cluster2 (only known from its
/// Endpoint) is down; a fourth kubeconfig could not be read.
fn report() -> Report {
    let c0 = ClusterView {
        connections: Some(vec![
            connection(
                "c0-node0",
                "cluster1",
                ConnectionStatus::Connected,
                "",
                rtt(0.3),
            ),
            connection(
                "c0-node0",
                "cluster2",
                ConnectionStatus::Error,
                "no health-check reply for 1.2s",
                rtt(40.0),
            ),
        ]),
        endpoints: Some(vec![
            endpoint("cluster0", "c0-node0", true),
            endpoint("cluster1", "c1-node0", false),
            endpoint("cluster2", "c2-node0", false),
        ]),
        gateways: Some(vec![
            gateway("c0-node0", Some(HaStatus::Active)),
            gateway("c0-node2", Some(HaStatus::Passive)),
        ]),
        services: Some(services(2, 1)),
        ..Default::default()
    };
    let c1 = ClusterView {
        connections: Some(vec![connection(
            "c1-node0",
            "cluster0",
            ConnectionStatus::Connected,
            "",
            rtt(0.5),
        )]),
        endpoints: Some(vec![
            endpoint("cluster1", "c1-node0", true),
            endpoint("cluster0", "c0-node0", false),
        ]),
        gateways: Some(vec![gateway("c1-node0", Some(HaStatus::Active))]),
        services: Some(services(1, 2)),
        ..Default::default()
    };
    let broken = ClusterReport {
        source: "kubeconfig /tmp/gone.kubeconfig".into(),
        error: Some("the cluster API is unreachable".into()),
        ..Default::default()
    };
    Report {
        clusters: vec![read("cluster0", c0), read("cluster1", c1), broken],
    }
}

#[test]
fn both_ends_of_a_cable_make_one_cable_with_the_worst_status() {
    let t = Topology::from_report(&report());
    let ids: Vec<&str> = t.clusters.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "cluster0",
            "cluster1",
            "cluster2",
            "kubeconfig /tmp/gone.kubeconfig"
        ]
    );
    assert_eq!(t.cables.len(), 2);
    let up = &t.cables[0];
    assert_eq!((up.a.as_str(), up.b.as_str()), ("cluster0", "cluster1"));
    assert_eq!(up.ends.len(), 2);
    assert_eq!(up.health, Health::Up);
    assert_eq!(up.rtt, Some(Duration::from_micros(400)));
    assert_eq!(t.cables[1].health, Health::Down);
    // cluster2 was not read: its gateway comes from cluster0's Endpoints.
    assert!(!t.clusters[2].read);
    assert_eq!(t.clusters[2].gateways[0].role, Role::Unknown);
    assert_eq!(t.clusters[0].imported, Some(2));
}

#[test]
fn one_end_down_makes_the_cable_down() {
    let mut r = report();
    let conns = r.clusters[1].view.connections.as_mut().unwrap();
    conns[0].status = ConnectionStatus::Error;
    let t = Topology::from_report(&r);
    assert_eq!(t.cables[0].health, Health::Down);
    let svg = svg(&t);
    assert!(
        svg.contains(r##"data-a="cluster0" data-b="cluster1" data-status="down""##),
        "{svg}"
    );
}

#[test]
fn down_cables_are_red_in_svg_and_dot_and_marked_in_text() {
    let t = Topology::from_report(&report());
    let svg = svg(&t);
    assert!(
        svg.contains(r##"stroke="#d32f2f" stroke-width="5""##),
        "{svg}"
    );
    let dot = dot(&t);
    assert!(dot.contains("color=red"), "{dot}");
    let text = text(&t);
    assert!(
        text.lines()
            .any(|l| l.starts_with('✗') && l.contains("DOWN")),
        "{text}"
    );
}

#[test]
fn names_are_escaped() {
    let mut r = report();
    r.clusters[2].source = "context <a&b>".into();
    let t = Topology::from_report(&r);
    let svg = svg(&t);
    assert!(svg.contains("context &lt;a&amp;b&gt;"), "{svg}");
    assert!(!svg.contains("<a&b>"));
}

#[test]
fn topology_text() {
    insta::assert_snapshot!(text(&Topology::from_report(&report())));
}

#[test]
fn topology_dot() {
    insta::assert_snapshot!(dot(&Topology::from_report(&report())));
}

#[test]
fn topology_svg() {
    insta::assert_snapshot!(svg(&Topology::from_report(&report())));
}

#[test]
fn empty_topology() {
    let t = Topology::default();
    assert!(text(&t).contains("(none: no gateway has reported a connection)"));
    assert!(svg(&t).contains("no cluster"));
}

#[test]
fn active_active_gateways_show_their_share_in_every_format() {
    let share = |node: &str, p: f64| GatewayRow {
        share_percent: Some(p),
        ..gateway(node, Some(HaStatus::Active))
    };
    let view = ClusterView {
        gateways: Some(vec![share("c0-node0", 52.4), share("c0-node1", 47.6)]),
        ..Default::default()
    };
    let t = Topology::from_report(&Report {
        clusters: vec![read("cluster0", view)],
    });
    let shares: Vec<_> = t.clusters[0]
        .gateways
        .iter()
        .map(|g| g.share_percent)
        .collect();
    assert_eq!(shares, [Some(52.4), Some(47.6)]);
    assert!(
        text(&t).contains("gateway c0-node0 (active, 52%)"),
        "{}",
        text(&t)
    );
    assert!(
        text(&t).contains("gateway c0-node1 (active, 48%)"),
        "{}",
        text(&t)
    );
    assert!(
        svg(&t).contains("c0-node1 (active, 48%)</text>"),
        "{}",
        svg(&t)
    );
    assert!(dot(&t).contains(r#"c0-node0\nactive, 52%"#), "{}", dot(&t));
    let json = serde_json::to_value(&t).unwrap();
    assert_eq!(json["clusters"][0]["gateways"][1]["sharePercent"], 47.6);
    // Unknown shares stay out of the labels and the JSON.
    let plain = Topology::from_report(&report());
    assert!(
        text(&plain).contains("gateway c0-node0 (active)\n"),
        "{}",
        text(&plain)
    );
    assert!(
        !serde_json::to_string(&plain)
            .unwrap()
            .contains("sharePercent")
    );
}
