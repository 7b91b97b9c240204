use serde_json::{Value, json};

use super::*;
use crate::show::Section;
use crate::show::build::{Snapshot, build};

fn de<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).unwrap()
}

fn rtt(min: &str, avg: &str, max: &str) -> Value {
    json!({"last": avg, "min": min, "average": avg, "max": max, "stdDev": "100us"})
}

/// cluster0 with two remote clusters: cluster1 connected (NAT), cluster2 in
/// error; one active and one passive gateway, plus a labelled node that has
/// not reported; an nginx service exported by cluster0 and cluster1 (healthy
/// both) and a db service exported only by cluster2 (unreachable).
fn snapshot() -> Snapshot {
    let cluster = |id: &str, pods: &str, svcs: &str| {
        let mut spec = json!({"clusterId": id, "clusterCidrs": [pods], "serviceCidrs": [svcs]});
        // cluster2 joined before the CNI was recorded: its column says `-`.
        match id {
            "cluster0" => spec["networkPlugin"] = json!("kube-ovn"),
            "cluster1" => spec["networkPlugin"] = json!("calico"),
            _ => {}
        }
        de(
            json!({"apiVersion": "ferry.dev/v1alpha1", "kind": "Cluster",
            "metadata": {"name": id, "namespace": "ferry-system"}, "spec": spec}),
        )
    };
    let endpoint = |id: &str, host: &str, ip: &str, public: Option<&str>, subnets: &[&str]| {
        let mut spec = json!({"clusterId": id, "hostname": host, "cableDriver": "wireguard",
            "privateIp": ip, "subnets": subnets});
        if let Some(p) = public {
            spec["publicIp"] = json!(p);
        }
        de(
            json!({"apiVersion": "ferry.dev/v1alpha1", "kind": "Endpoint",
            "metadata": {"name": format!("{id}-{host}"), "namespace": "ferry-system"}, "spec": spec}),
        )
    };
    let slice = |ns: &str, svc: &str, cluster: &str, ready: &[bool]| {
        let eps: Vec<Value> = ready
            .iter()
            .enumerate()
            .map(|(i, r)| json!({"addresses": [format!("100.64.9.{i}")], "conditions": {"ready": r}}))
            .collect();
        de(
            json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": format!("{svc}-{cluster}"), "namespace": ns, "labels": {
                "multicluster.kubernetes.io/service-name": svc,
                "multicluster.kubernetes.io/source-cluster": cluster,
                "endpointslice.kubernetes.io/managed-by": "agent.ferry.dev"}},
            "addressType": "IPv4", "endpoints": eps}),
        )
    };
    Snapshot {
        cluster_id: "cluster0".into(),
        broker: Some(crate::show::model::BrokerRow {
            url: "https://198.18.0.1:6443".into(),
            namespace: "ferry-broker".into(),
            clusterset_domain: "clusterset.local".into(),
            cluster_id: "cluster0".into(),
            cable_driver: Some("wireguard".into()),
            globalnet: false,
            health_check_interval: "100ms".into(),
        }),
        clusters: vec![
            cluster("cluster1", "100.66.0.0/16", "100.67.0.0/16"),
            cluster("cluster0", "100.64.0.0/16", "100.65.0.0/16"),
            cluster("cluster2", "100.68.0.0/16", "100.69.0.0/16"),
        ],
        endpoints: vec![
            endpoint(
                "cluster1",
                "cluster1-node1",
                "198.18.1.2",
                Some("198.19.0.7"),
                &["100.66.0.0/16", "100.67.0.0/16"],
            ),
            endpoint(
                "cluster0",
                "cluster0-node1",
                "198.18.0.2",
                None,
                &["100.64.0.0/16", "100.65.0.0/16"],
            ),
            endpoint(
                "cluster2",
                "cluster2-node1",
                "198.18.2.2",
                None,
                &["100.68.0.0/16", "100.69.0.0/16"],
            ),
        ],
        gateways: vec![
            de(
                json!({"apiVersion": "ferry.dev/v1alpha1", "kind": "Gateway",
                "metadata": {"name": "cluster0-node1", "namespace": "ferry-system"},
                "spec": {"clusterId": "cluster0", "hostname": "cluster0-node1"},
                "status": {"haStatus": "active", "localEndpoint": "cluster0-cluster0-node1", "connections": [
                    {"endpoint": "cluster1-cluster1-node1", "clusterId": "cluster1", "cableDriver": "wireguard",
                     "status": "connected", "usingIp": "198.19.0.7", "usingNat": true,
                     "latencyRtt": rtt("210us", "350us", "1.02ms"),
                     "natDiscovery": {"result": "publicIp", "seenAs": "198.19.1.1:40123",
                        "srcIpNatDetected": true, "message": "public IP 198.19.0.7 answered"}},
                    {"endpoint": "cluster2-cluster2-node1", "clusterId": "cluster2", "cableDriver": "wireguard",
                     "status": "error", "statusMessage": "no health-check reply for 1.2s",
                     "latencyRtt": rtt("15ms", "42.5ms", "230ms")},
                ],
                "traffic": {"txBytes": 52_400_000, "rxBytes": 1_300_000,
                    "windowBytes": 12_000, "windowSeconds": 30}}}),
            ),
            de(
                json!({"apiVersion": "ferry.dev/v1alpha1", "kind": "Gateway",
                "metadata": {"name": "cluster0-node2", "namespace": "ferry-system"},
                "spec": {"clusterId": "cluster0", "hostname": "cluster0-node2"},
                "status": {"haStatus": "passive"}}),
            ),
        ],
        gateway_nodes: vec![
            "cluster0-node1".into(),
            "cluster0-node2".into(),
            "cluster0-node3".into(),
        ],
        deployments: vec![de(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "ferry-agent", "namespace": "ferry-system"},
            "spec": {"replicas": 1, "selector": {}, "template": {"spec": {"containers": [{"name": "agent", "image": "ferry:0.1.0"}]}}},
            "status": {"readyReplicas": 1}}))],
        daemonsets: vec![de(json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "ferry-gateway", "namespace": "ferry-system"},
            "spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "gateway", "image": "registry.local:5000/ferry@sha256:0123abcd"}]}}},
            "status": {"numberReady": 1, "desiredNumberScheduled": 2, "currentNumberScheduled": 2, "numberMisscheduled": 0}}))],
        imports: vec![
            de(
                json!({"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceImport",
                "metadata": {"name": "nginx", "namespace": "nginx-test"},
                "spec": {"type": "ClusterSetIP", "ips": ["100.65.0.10"], "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]},
                "status": {"clusters": [{"cluster": "cluster1"}, {"cluster": "cluster0"}]}}),
            ),
            de(
                json!({"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceImport",
                "metadata": {"name": "db", "namespace": "data"},
                "spec": {"type": "Headless", "ports": [{"port": 5432, "protocol": "TCP"}]},
                "status": {"clusters": [{"cluster": "cluster2"}]}}),
            ),
        ],
        exports: vec![
            de(
                json!({"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceExport",
                "metadata": {"name": "nginx", "namespace": "nginx-test"},
                "status": {"conditions": [
                    {"type": "Valid", "status": "True", "reason": "Valid", "message": "", "lastTransitionTime": "2025-01-01T00:00:00Z"},
                    {"type": "Ready", "status": "True", "reason": "Exported", "message": "", "lastTransitionTime": "2025-01-01T00:00:00Z"},
                    {"type": "Conflict", "status": "False", "reason": "NoConflicts", "message": "", "lastTransitionTime": "2025-01-01T00:00:00Z"}]}}),
            ),
            de(
                json!({"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceExport",
                "metadata": {"name": "gone", "namespace": "nginx-test"},
                "status": {"conditions": [
                    {"type": "Valid", "status": "False", "reason": "NoService", "message": "Service nginx-test/gone does not exist", "lastTransitionTime": "2025-01-01T00:00:00Z"}]}}),
            ),
        ],
        slices: vec![
            slice("nginx-test", "nginx", "cluster0", &[true]),
            slice("nginx-test", "nginx", "cluster1", &[true, false]),
            slice("data", "db", "cluster2", &[true, true]),
        ],
        ..Default::default()
    }
}

fn report(sections: &[Section]) -> Report {
    let snap = snapshot();
    Report {
        clusters: vec![
            ClusterReport {
                source: "context cluster0".into(),
                server: "https://198.18.0.1:6443".into(),
                cluster_id: Some("cluster0".into()),
                error: None,
                hint: None,
                view: build(&snap, sections),
            },
            ClusterReport {
                source: "context cluster9".into(),
                server: "https://198.18.9.1:6443".into(),
                cluster_id: None,
                error: Some(
                    "cannot reach the cluster API (context cluster9) at https://198.18.9.1:6443: connection refused"
                        .into(),
                ),
                hint: None,
                view: Default::default(),
            },
        ],
    }
}

#[test]
fn show_all_table() {
    insta::assert_snapshot!(table(&report(&Section::ALL)));
}

/// A cluster with two active gateways (active-active) that carried 3:1 of
/// the bytes in the last window, and one that has not been sampled yet.
fn active_active(windows: [u64; 2]) -> Snapshot {
    let gateway = |node: &str, traffic: Option<Value>| {
        let mut status = json!({"haStatus": "active", "localEndpoint": format!("east-{node}"),
            "connections": [{"endpoint": "west-w0", "clusterId": "west", "cableDriver": "wireguard",
                "status": "connected"}]});
        if let Some(t) = traffic {
            status["traffic"] = t;
        }
        de(
            json!({"apiVersion": "ferry.dev/v1alpha1", "kind": "Gateway",
            "metadata": {"name": node, "namespace": "ferry-system"},
            "spec": {"clusterId": "east", "hostname": node}, "status": status}),
        )
    };
    let traffic = |total: u64, window: u64| json!({"txBytes": total / 2, "rxBytes": total / 2, "windowBytes": window, "windowSeconds": 30});
    Snapshot {
        cluster_id: "east".into(),
        gateways: vec![
            gateway("e0", Some(traffic(9_000_000_000, windows[0]))),
            gateway("e1", Some(traffic(2_500_000_000, windows[1]))),
            gateway("e2", None),
        ],
        gateway_nodes: vec!["e0".into(), "e1".into(), "e2".into()],
        ..Default::default()
    }
}

fn gateways_report(snap: &Snapshot) -> Report {
    Report {
        clusters: vec![ClusterReport {
            source: "context east".into(),
            server: "https://198.18.0.1:6443".into(),
            cluster_id: Some("east".into()),
            error: None,
            hint: None,
            view: build(snap, &[Section::Gateways]),
        }],
    }
}

#[test]
fn show_gateways_active_active_table() {
    insta::assert_snapshot!(table(&gateways_report(&active_active([
        3_000_000_000,
        1_000_000_000
    ]))));
}

#[test]
fn show_gateways_active_active_json() {
    insta::assert_snapshot!(
        render(
            &gateways_report(&active_active([3_000_000_000, 1_000_000_000])),
            Format::Json
        )
        .unwrap()
    );
}

#[test]
fn gateway_shares() {
    let shares = |snap: &Snapshot| -> Vec<Option<f64>> {
        build(snap, &[Section::Gateways])
            .gateways
            .unwrap()
            .iter()
            .map(|r| r.share_percent)
            .collect()
    };
    // Active-active: by the window's bytes; not sampled yet: no share.
    assert_eq!(
        shares(&active_active([300, 100])),
        [Some(75.0), Some(25.0), None]
    );
    // No bytes in the window: nobody has a share (the table says `idle`).
    assert_eq!(shares(&active_active([0, 0])), [None, None, None]);
    // Active-passive: the active one carries it all, the passive none, the
    // node without a Gateway has no share.
    assert_eq!(shares(&snapshot()), [Some(100.0), Some(0.0), None]);
}

#[test]
fn byte_counts_read_as_units() {
    assert_eq!(human_bytes(999), "999 B");
    assert_eq!(human_bytes(1_000), "1.00 kB");
    assert_eq!(human_bytes(52_400_000), "52.4 MB");
    assert_eq!(human_bytes(9_000_000_000), "9.00 GB");
    assert_eq!(human_bytes(123_000_000_000), "123 GB");
    assert_eq!(human_bytes(u64::MAX), "18446744 TB");
}

#[test]
fn show_connections_json() {
    insta::assert_snapshot!(render(&report(&[Section::Connections]), Format::Json).unwrap());
}

#[test]
fn show_services_yaml() {
    insta::assert_snapshot!(render(&report(&[Section::Services]), Format::Yaml).unwrap());
}

#[test]
fn empty_sections_say_what_to_do() {
    let snap = Snapshot {
        cluster_id: "lonely".into(),
        ..Default::default()
    };
    let r = Report {
        clusters: vec![ClusterReport {
            source: "default kubeconfig".into(),
            server: "https://127.0.0.1:6443".into(),
            cluster_id: Some("lonely".into()),
            error: None,
            hint: None,
            view: build(
                &snap,
                &[
                    Section::Connections,
                    Section::Endpoints,
                    Section::Gateways,
                    Section::Networks,
                    Section::Services,
                    Section::Versions,
                ],
            ),
        }],
    };
    insta::assert_snapshot!(table(&r));
}

#[test]
fn service_health_rules() {
    let view = build(&snapshot(), &[Section::Services]);
    let services = view.services.unwrap();
    let nginx = services.imports.iter().find(|s| s.name == "nginx").unwrap();
    // Local: healthy with a ready endpoint, no connection needed.
    let local = &nginx.clusters[0];
    assert!(
        local.local && local.healthy && local.connection.is_none(),
        "{local:?}"
    );
    // Remote over a connected cable with one of two endpoints ready.
    let remote = &nginx.clusters[1];
    assert!(!remote.local && remote.healthy, "{remote:?}");
    assert_eq!((remote.ready_endpoints, remote.endpoints), (1, 2));
    // Remote with ready endpoints behind a cable in error: unhealthy.
    let db = services.imports.iter().find(|s| s.name == "db").unwrap();
    assert!(!db.clusters[0].healthy);
    assert!(
        db.clusters[0].reason.contains("connection error"),
        "{:?}",
        db.clusters[0]
    );
}

#[test]
fn broker_rows_never_carry_credentials() {
    let secret_token = "very-secret-token-123";
    let info = ferry_api::BrokerInfo::new(
        "https://198.18.0.1:6443",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        secret_token,
        &[7u8; 32],
    );
    let encoded = info.encode().unwrap();
    let b = |s: &str| k8s_openapi::ByteString(s.as_bytes().to_vec());
    let secret = k8s_openapi::api::core::v1::Secret {
        data: Some(
            [
                ("broker-info".to_string(), b(&encoded)),
                ("cluster-id".to_string(), b("cluster0")),
                ("cable-driver".to_string(), b("vxlan")),
            ]
            .into(),
        ),
        ..Default::default()
    };
    let row = crate::show::gather::broker_row(&secret).unwrap();
    assert_eq!(row.cable_driver.as_deref(), Some("vxlan"));
    let json = serde_json::to_string(&row).unwrap();
    assert!(!json.contains(secret_token), "{json}");
    assert!(!json.contains("CERTIFICATE"), "{json}");
    assert!(!json.contains(&info.cable_psk), "{json}");
}

#[test]
fn durations() {
    use std::time::Duration;
    assert_eq!(fmt_duration(Duration::from_micros(350)), "0.35ms");
    assert_eq!(fmt_duration(Duration::from_micros(42_500)), "42.5ms");
    assert_eq!(fmt_duration(Duration::from_millis(230)), "230ms");
    assert_eq!(fmt_duration(Duration::from_millis(12_340)), "12.3s");
}

/// cluster0 with Globalnet (block 100.120.0.0/24) next to cluster1 without:
/// its cluster egress pool, a namespace's and a pod selector's egress IPs
/// (one refused over the limit), and a service's ingress IP.
#[test]
fn show_globalnet_table() {
    let mut snap = snapshot();
    for c in snap
        .clusters
        .iter_mut()
        .filter(|c| c.spec.cluster_id == "cluster0")
    {
        c.spec.global_cidrs = vec!["100.120.0.0/24".parse().unwrap()];
    }
    snap.cluster_egress = vec![de(json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "ClusterGlobalEgressIP",
        "metadata": {"name": "cluster-egress.ferry.dev"}, "spec": {},
        "status": {"allocatedIPs": ["100.120.0.1", "100.120.0.2"],
            "conditions": [{"type": "Allocated", "status": "True", "reason": "Success",
                "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}))];
    snap.egress = vec![
        de(json!({
            "apiVersion": "ferry.dev/v1alpha1", "kind": "GlobalEgressIP",
            "metadata": {"name": "whole", "namespace": "shop"}, "spec": {"numberOfIPs": 2},
            "status": {"allocatedIPs": ["100.120.0.9", "100.120.0.10"],
                "conditions": [{"type": "Allocated", "status": "True", "reason": "Success",
                    "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}})),
        de(json!({
            "apiVersion": "ferry.dev/v1alpha1", "kind": "GlobalEgressIP",
            "metadata": {"name": "too-many", "namespace": "shop"},
            "spec": {"numberOfIPs": 25, "podSelector": {"matchLabels": {"app": "db"}}},
            "status": {"conditions": [{"type": "Allocated", "status": "False",
                "reason": "InvalidInput", "message": "numberOfIPs 25 is over the limit of 20",
                "lastTransitionTime": "2026-01-01T00:00:00Z"}]}})),
    ];
    snap.ingress = vec![de(json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "GlobalIngressIP",
        "metadata": {"name": "nginx", "namespace": "nginx-test"},
        "spec": {"target": "ClusterIPService", "serviceRef": {"name": "nginx"}},
        "status": {"allocatedIP": "100.120.0.20", "targetIP": "100.65.0.10"}}))];
    let r = Report {
        clusters: vec![ClusterReport {
            source: "context cluster0".into(),
            server: "https://198.18.0.1:6443".into(),
            cluster_id: Some("cluster0".into()),
            error: None,
            hint: None,
            view: build(&snap, &[Section::Globalnet]),
        }],
    };
    insta::assert_snapshot!(table(&r));
}
