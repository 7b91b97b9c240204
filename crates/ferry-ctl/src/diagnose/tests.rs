//! The verdicts of every check on hand-made clusters and probe reports,
//! and the rendered output (snapshots).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::evaluate::{self, Client, Firewall};
use super::tasks::{client_tasks, marker};
use super::*;
use crate::check::{Findings, Group, Status};
use crate::cluster::Facts;
use crate::probe::spec::*;
use crate::probe::{Outcome, Report, TaskReport};
use crate::show::Snapshot;

fn de<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).unwrap()
}

/// east (100.64/16, 100.96/16) joined with west; the gateway on
/// east-node0 is active and `status` towards west; nginx exported by west
/// with ClusterIP 100.97.0.11 (ready).
fn facts(status: &str, message: &str) -> Facts {
    let cluster = |id: &str, pods: &str, svcs: &str| {
        de(
            json!({"apiVersion": "ferry.dev/v1alpha1", "kind": "Cluster",
            "metadata": {"name": id, "namespace": "ferry-system"},
            "spec": {"clusterId": id, "clusterCidrs": [pods], "serviceCidrs": [svcs]}}),
        )
    };
    let endpoint = |id: &str, ip: &str, public: &str, hc: &str| {
        de(
            json!({"apiVersion": "ferry.dev/v1alpha1", "kind": "Endpoint",
            "metadata": {"name": id, "namespace": "ferry-system"},
            "spec": {"clusterId": id, "hostname": format!("{id}-node0"), "cableDriver": "wireguard",
                "privateIp": ip, "publicIp": public, "subnets": [], "healthCheckIp": hc,
                "backendConfig": {"port": "4500", "mtu": "1420", "healthCheckPort": "4801", "publicKey": "x"}}}),
        )
    };
    let node = |name: &str, gateway: bool| {
        let mut labels = json!({});
        if gateway {
            labels["ferry.dev/gateway"] = json!("true");
        }
        // The route agent's record of where the node's host traffic leaves from.
        let k = name.rsplit("node").next().unwrap_or("0");
        let annotations = json!({"ferry.dev/cni-iface-ip": format!("100.64.{k}.1")});
        de(json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": labels, "annotations": annotations},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}}))
    };
    let snapshot = Snapshot {
        cluster_id: "east".into(),
        broker: None,
        clusters: vec![
            cluster("east", "100.64.0.0/16", "100.96.0.0/16"),
            cluster("west", "100.65.0.0/16", "100.97.0.0/16"),
        ],
        endpoints: vec![
            endpoint("east", "198.18.100.10", "198.19.0.10", "100.64.0.1"),
            endpoint("west", "198.18.101.10", "198.19.1.10", "100.65.0.1"),
        ],
        gateways: vec![de(json!({"apiVersion": "ferry.dev/v1alpha1", "kind": "Gateway",
            "metadata": {"name": "east-node0", "namespace": "ferry-system"},
            "spec": {"clusterId": "east", "hostname": "east-node0"},
            "status": {"haStatus": "active", "localEndpoint": "east", "connections": [
                {"endpoint": "west", "clusterId": "west", "cableDriver": "wireguard",
                 "status": status, "statusMessage": message, "usingIp": "198.19.1.10", "usingNat": true,
                 "latencyRtt": {"last": "500us", "min": "400us", "average": "510us", "max": "2ms", "stdDev": "100us"}}]}}))],
        gateway_nodes: vec!["east-node0".into()],
        deployments: ["ferry-agent", "ferry-dns"]
            .iter()
            .map(|n| {
                de(json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": n, "namespace": "ferry-system"},
                "spec": {"replicas": 1, "selector": {}, "template": {"spec": {"containers": [{"name": "c", "image": "ferry:0.1.0"}]}}},
                "status": {"readyReplicas": 1}}))
            })
            .collect(),
        daemonsets: [("ferry-gateway", 1), ("ferry-route-agent", 2)]
            .iter()
            .map(|(n, k)| {
                de(json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
                "metadata": {"name": n, "namespace": "ferry-system"},
                "spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "c", "image": "ferry:0.1.0"}]}}},
                "status": {"numberReady": k, "desiredNumberScheduled": k, "currentNumberScheduled": k, "numberMisscheduled": 0}}))
            })
            .collect(),
        imports: vec![de(json!({"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceImport",
            "metadata": {"name": "nginx", "namespace": "nginx-test"},
            "spec": {"type": "ClusterSetIP", "ports": [{"port": 8080, "protocol": "TCP"}]}}))],
        exports: Vec::new(),
        slices: vec![de(json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "nginx-west", "namespace": "nginx-test", "labels": {
                "multicluster.kubernetes.io/service-name": "nginx",
                "multicluster.kubernetes.io/source-cluster": "west",
                "endpointslice.kubernetes.io/managed-by": "agent.ferry.dev"}},
            "addressType": "IPv4", "endpoints": [{"addresses": ["100.97.0.11"], "conditions": {"ready": true}}]}))],
        ..Default::default()
    };
    Facts {
        snapshot,
        nodes: vec![node("east-node0", true), node("east-node1", false)],
        version: Some((1, 33, "v1.33.0".into())),
        pod_ips: vec![("default/a".into(), "100.64.1.5".parse().unwrap())],
        service_ips: vec![("default/kubernetes".into(), "100.96.0.1".parse().unwrap())],
        cni: Default::default(),
        kube_proxy_mode: Some("iptables".into()),
    }
}

fn healthy() -> Facts {
    facts("connected", "")
}

fn echo(sent: u32, received: u32) -> Outcome {
    Outcome::Echo(EchoOutcome {
        sent,
        received,
        rtt_us: vec![800; received as usize],
        send_error: None,
    })
}

fn dns(rcode: Option<&str>, ips: &[&str], texts: &[&str], us: u64) -> Outcome {
    Outcome::Dns(DnsOutcome {
        server: "100.96.0.10:53".into(),
        rcode: rcode.map(String::from),
        addresses: ips.iter().map(|i| i.parse().unwrap()).collect(),
        texts: texts.iter().map(|t| t.to_string()).collect(),
        elapsed_us: us,
    })
}

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

/// What a client pod of east measures when all is well (west diagnosed
/// too, so pod-to-pod and full-size probes ran).
fn good_client() -> Report {
    report(vec![
        ("gw/west", echo(5, 5)),
        ("pod/west", echo(5, 5)),
        (
            "mtu-big/west",
            Outcome::Pmtu(PmtuOutcome {
                size: 1472,
                interface_mtu: Some(1500),
                path_mtu: Some(1420),
                verdict: PmtuVerdict::Signalled,
            }),
        ),
        ("mtu-fit/west", echo(3, 3)),
        (
            "mtu-tcp/west",
            Outcome::Tcp(TcpOutcome {
                address: "100.65.1.2:7790".into(),
                connect_us: 900,
                echoed: 262_144,
                mss: Some(1368),
            }),
        ),
        ("dns-version", dns(Some("NoError"), &[], &["1.0.0"], 1200)),
        ("dns-nx", dns(Some("NXDomain"), &[], &[], 900)),
        (
            "dns/nginx-test/nginx",
            dns(Some("NoError"), &["100.97.0.11"], &[], 1500),
        ),
    ])
}

/// What a host-network client of east measures when all is well.
fn good_host() -> Report {
    report(vec![
        ("host-gw/west", echo(5, 5)),
        ("host-pod/west", echo(5, 5)),
        (
            "host-tcp/west",
            Outcome::Tcp(TcpOutcome {
                address: "100.65.1.2:7790".into(),
                connect_us: 700,
                echoed: 65_536,
                mss: Some(1368),
            }),
        ),
    ])
}

fn statuses(lines: &[crate::check::Line]) -> Vec<Status> {
    lines.iter().map(|l| l.status).collect()
}

fn pods() -> Vec<(String, String)> {
    vec![("west".into(), "west-node1".into())]
}

#[test]
fn a_healthy_cluster_passes_everything() {
    let f = healthy();
    let r = good_client();
    let client = Client {
        node: "east-node1",
        report: Ok(&r),
    };
    let sniff = report(vec![(
        "fw-in/west",
        Outcome::Sniff(SniffOutcome {
            seen: 3,
            sources: vec!["198.19.1.10".parse().unwrap()],
        }),
    )]);
    let sender = report(vec![(
        "fw-out/east",
        Outcome::Sent {
            count: 10,
            error: None,
        },
    )]);
    let mut lines = Vec::new();
    lines.extend(evaluate::k8s_version(&f));
    lines.extend(evaluate::deployment(&f));
    lines.extend(evaluate::cidr_overlap(&f));
    lines.extend(evaluate::connections(&f, &client, &pods()));
    let host = good_host();
    lines.extend(evaluate::host_network(
        &f,
        &Client {
            node: "east-node1",
            report: Ok(&host),
        },
        &pods(),
    ));
    lines.extend(evaluate::firewall(
        &f,
        &Firewall {
            node: Some("east-node0"),
            sniffer: Ok(&sniff),
            senders: vec![("west".into(), Ok(&sender))],
            window: Duration::from_millis(1500),
        },
    ));
    lines.extend(evaluate::mtu(&f, &client, &pods(), true));
    lines.extend(evaluate::service_discovery(&f, &client));
    assert!(lines.iter().all(|l| l.status == Status::Pass), "{lines:#?}");
    let findings = Findings {
        groups: vec![
            Group {
                header: "Cluster east (context east, https://198.18.100.1:6443)".into(),
                lines,
                error: None,
                hint: None,
            },
            Group {
                header: "Cluster ? (context gone)".into(),
                lines: Vec::new(),
                error: Some("cannot reach the cluster API (context gone) at https://198.18.9.1:6443: connection refused".into()),
                hint: Some("nothing listens there: is the API server running?".into()),
            },
        ],
    };
    insta::assert_snapshot!(findings.render(None));
    assert!(findings.check().is_err(), "the unreachable cluster fails");
}

#[test]
fn a_cut_cable_fails_the_connection_by_name() {
    let f = facts("error", "no health-check reply for 1.2s");
    let r = report(vec![("gw/west", echo(5, 0))]);
    let client = Client {
        node: "east-node1",
        report: Ok(&r),
    };
    let lines = evaluate::connections(&f, &client, &[]);
    assert_eq!(statuses(&lines), [Status::Fail]);
    let l = &lines[0];
    assert!(
        l.message.starts_with("east → west: 0/5 probes"),
        "{}",
        l.message
    );
    assert!(
        l.message
            .contains("reports error (no health-check reply for 1.2s)"),
        "{}",
        l.message
    );
    assert!(
        l.hint.as_deref().unwrap_or("").contains("UDP 4500"),
        "{l:?}"
    );
    let findings = Findings {
        groups: vec![Group {
            header: "Cluster east".into(),
            lines,
            ..Default::default()
        }],
    };
    insta::assert_snapshot!(findings.render(Some(Duration::from_millis(1234))));
}

#[test]
fn traffic_failing_under_a_connected_status_still_fails() {
    // Submariner issue 2810: the status says connected, packets do not cross.
    let f = healthy();
    let r = report(vec![("gw/west", echo(5, 5)), ("pod/west", echo(5, 0))]);
    let client = Client {
        node: "east-node1",
        report: Ok(&r),
    };
    let lines = evaluate::connections(&f, &client, &pods());
    assert_eq!(statuses(&lines), [Status::Fail]);
    assert!(
        lines[0]
            .hint
            .as_deref()
            .unwrap_or("")
            .contains("route agents")
    );
    let r = report(vec![("gw/west", echo(5, 0))]);
    let client = Client {
        node: "east-node1",
        report: Ok(&r),
    };
    let lines = evaluate::connections(&f, &client, &[]);
    assert_eq!(statuses(&lines), [Status::Fail]);
    assert!(lines[0].hint.as_deref().unwrap_or("").contains("stale"));
}

#[test]
fn loss_and_status_disagreement_warn() {
    let r = report(vec![("gw/west", echo(5, 3))]);
    let client = Client {
        node: "east-node1",
        report: Ok(&r),
    };
    assert_eq!(
        statuses(&evaluate::connections(&healthy(), &client, &[])),
        [Status::Warn]
    );
    let r = report(vec![("gw/west", echo(5, 5))]);
    let client = Client {
        node: "east-node1",
        report: Ok(&r),
    };
    assert_eq!(
        statuses(&evaluate::connections(
            &facts("connecting", ""),
            &client,
            &[]
        )),
        [Status::Warn]
    );
    let client = Client {
        node: "east-node1",
        report: Err("test pod x: ErrImagePull"),
    };
    let lines = evaluate::connections(&healthy(), &client, &[]);
    assert_eq!(statuses(&lines), [Status::Fail]);
    assert!(lines[0].message.contains("ErrImagePull"));
}

#[test]
fn deployment_problems_fail() {
    let mut f = healthy();
    f.snapshot
        .deployments
        .retain(|d| d.metadata.name.as_deref() != Some("ferry-dns"));
    if let Some(st) = f.snapshot.daemonsets[1].status.as_mut() {
        st.number_ready = 1;
    }
    if let Some(st) = f.snapshot.gateways[0].status.as_mut() {
        st.ha_status = ferry_api::HaStatus::Passive;
    }
    let lines = evaluate::deployment(&f);
    let fails: Vec<&str> = lines
        .iter()
        .filter(|l| l.status == Status::Fail)
        .map(|l| l.message.as_str())
        .collect();
    assert_eq!(
        fails,
        [
            "Deployment ferry-system/ferry-dns is missing",
            "DaemonSet ferry-system/ferry-route-agent: 1/2 ready",
            "no gateway is active (1 standing by)",
        ]
    );
    if let Some(st) = f.snapshot.daemonsets[0].status.as_mut() {
        st.desired_number_scheduled = 0;
    }
    let lines = evaluate::deployment(&f);
    assert!(lines.iter().any(|l| {
        l.status == Status::Fail
            && l.message
                .contains("no node is labelled ferry.dev/gateway=true")
    }));
}

#[test]
fn a_cluster_without_cidrs_is_named() {
    let mut f = healthy();
    f.snapshot.clusters[1].spec.service_cidrs.clear();
    f.snapshot.clusters[1].spec.cluster_cidrs.clear();
    let lines = evaluate::cidr_overlap(&f);
    let line = lines
        .iter()
        .find(|l| l.message.contains("has no"))
        .expect("a line naming the cluster");
    assert_eq!(line.status, Status::Fail);
    assert_eq!(
        line.message,
        "cluster west's Cluster object has no pod and no service CIDRs: other clusters route nothing to it there"
    );
    assert!(
        line.hint.as_deref().unwrap().contains("ferry join"),
        "{line:?}"
    );
}

#[test]
fn overlapping_and_undeclared_cidrs_fail() {
    let mut f = healthy();
    f.snapshot.clusters[1].spec.service_cidrs = vec!["100.64.128.0/17".parse().unwrap()];
    f.pod_ips
        .push(("app/web-1".into(), "10.244.1.7".parse().unwrap()));
    let lines = evaluate::cidr_overlap(&f);
    let msgs: Vec<&str> = lines.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(
        msgs,
        [
            "east's pod CIDR 100.64.0.0/16 overlaps west's service CIDR 100.64.128.0/17",
            "1 pod(s) have addresses outside the declared pod CIDRs 100.64.0.0/16 (e.g. app/web-1 10.244.1.7): other clusters cannot reach them",
        ]
    );
    assert!(lines.iter().all(|l| l.status == Status::Fail));
    assert_eq!(
        statuses(&evaluate::cidr_overlap(&healthy())),
        [Status::Pass]
    );
}

#[test]
fn old_servers_fail_the_version_check() {
    let mut f = healthy();
    f.version = Some((1, 24, "v1.24.3".into()));
    assert_eq!(statuses(&evaluate::k8s_version(&f)), [Status::Fail]);
    f.version = Some((1, 27, "v1.27.0+k3s1".into()));
    assert_eq!(statuses(&evaluate::k8s_version(&f)), [Status::Pass]);
    f.version = None;
    assert_eq!(statuses(&evaluate::k8s_version(&f)), [Status::Warn]);
}

#[test]
fn cni_says_what_it_found_and_whether_the_handler_fits() {
    use ferry_api::NetworkPlugin;
    let mut f = healthy();
    let message = |f: &Facts| evaluate::cni(f)[0].message.clone();
    // Nothing recognised, nothing recorded: the generic handler.
    assert_eq!(statuses(&evaluate::cni(&f)), [Status::Pass]);
    assert!(message(&f).contains("generic handler"), "{}", message(&f));
    // kube-ovn found, and recorded at join.
    f.cni.detected = Some((
        NetworkPlugin::KubeOvn,
        vec!["100.64.0.0/16".parse().unwrap()],
    ));
    for c in &mut f.snapshot.clusters {
        if c.spec.cluster_id == "east" {
            c.spec.network_plugin = Some(NetworkPlugin::KubeOvn);
        }
    }
    assert_eq!(statuses(&evaluate::cni(&f)), [Status::Pass]);
    assert!(message(&f).contains("kube-ovn handler"), "{}", message(&f));
    // Found, but joined as another: re-join.
    f.cni.detected = Some((NetworkPlugin::Calico, vec![]));
    assert_eq!(statuses(&evaluate::cni(&f)), [Status::Warn]);
    let hint = evaluate::cni(&f)[0].hint.clone().unwrap();
    assert!(hint.contains("--cni calico"), "{hint}");
    // A CNI ferry cannot drive fails.
    f.cni.undrivable = Some(crate::install::cni::UNDRIVABLE[0]);
    assert_eq!(statuses(&evaluate::cni(&f)), [Status::Fail]);
    assert!(message(&f).contains("Cilium"));
}

#[test]
fn kube_proxy_mode_says_what_it_found() {
    let mut f = healthy();
    let line = |f: &Facts| evaluate::kube_proxy_mode(f).remove(0);
    assert!(line(&f).message.contains("iptables mode"));
    f.kube_proxy_mode = Some("kernelspace".into());
    assert_eq!(line(&f).status, Status::Warn);
    f.kube_proxy_mode = None;
    assert_eq!(line(&f).status, Status::Pass);
    assert!(line(&f).message.contains("cannot be read"));
    assert_eq!(crate::cluster::kube_proxy_mode("mode: ipvs\n"), "ipvs");
    assert_eq!(crate::cluster::kube_proxy_mode("mode: \"\"\n"), "iptables");
    assert_eq!(
        crate::cluster::kube_proxy_mode("clusterCIDR: 10.0.0.0/8\n"),
        "iptables"
    );
}

#[test]
fn mtu_black_holes_fail_and_small_pods_pass() {
    let f = healthy();
    let pmtu = |verdict, ifm| {
        Outcome::Pmtu(PmtuOutcome {
            size: 1472,
            interface_mtu: Some(ifm),
            path_mtu: Some(1500),
            verdict,
        })
    };
    let r = report(vec![("mtu-big/west", pmtu(PmtuVerdict::BlackHoled, 1500))]);
    let client = Client {
        node: "east-node1",
        report: Ok(&r),
    };
    let lines = evaluate::mtu(&f, &client, &[], true);
    assert_eq!(statuses(&lines), [Status::Fail, Status::Skip]);
    assert!(lines[0].message.contains("vanish"));
    let r = report(vec![("mtu-big/west", pmtu(PmtuVerdict::BlackHoled, 1400))]);
    let client = Client {
        node: "east-node1",
        report: Ok(&r),
    };
    assert_eq!(
        statuses(&evaluate::mtu(&f, &client, &[], true)),
        [Status::Pass, Status::Skip]
    );
    // Full-size packets that do not cross while small ones do; an
    // unclamped MSS.
    let mut r = good_client();
    r.results
        .retain(|t| t.id != "mtu-fit/west" && t.id != "mtu-tcp/west");
    r.results.push(TaskReport {
        id: "mtu-fit/west".into(),
        outcome: echo(3, 0),
    });
    r.results.push(TaskReport {
        id: "mtu-tcp/west".into(),
        outcome: Outcome::Tcp(TcpOutcome {
            address: "100.65.1.2:7790".into(),
            connect_us: 1,
            echoed: 262_144,
            mss: Some(1448),
        }),
    });
    let client = Client {
        node: "east-node1",
        report: Ok(&r),
    };
    assert_eq!(
        statuses(&evaluate::mtu(&f, &client, &pods(), true)),
        [Status::Pass, Status::Fail, Status::Warn]
    );
}

#[test]
fn wrong_slow_or_missing_answers_fail_service_discovery() {
    let f = healthy();
    let mut r = good_client();
    for t in &mut r.results {
        match t.id.as_str() {
            "dns/nginx-test/nginx" => t.outcome = dns(Some("NoError"), &["100.97.9.9"], &[], 900),
            "dns-nx" => t.outcome = dns(None, &[], &[], 2_000_000),
            _ => {}
        }
    }
    let client = Client {
        node: "east-node1",
        report: Ok(&r),
    };
    let lines = evaluate::service_discovery(&f, &client);
    assert_eq!(statuses(&lines), [Status::Pass, Status::Fail, Status::Fail]);
    assert!(
        lines[2]
            .message
            .contains("but the ServiceImport nginx-test/nginx says 100.97.0.11")
    );
    for t in &mut r.results {
        if t.id == "dns/nginx-test/nginx" {
            t.outcome = dns(Some("NXDomain"), &[], &[], 900);
        }
    }
    let client = Client {
        node: "east-node1",
        report: Ok(&r),
    };
    let lines = evaluate::service_discovery(&f, &client);
    assert!(
        lines[2].message.contains(
            "although the ServiceImport nginx-test/nginx has ready endpoints 100.97.0.11"
        )
    );
    // With the cable down, west is not eligible: NXDOMAIN is consistent.
    let down = facts("error", "no health-check reply");
    let lines = evaluate::service_discovery(&down, &client);
    assert_eq!(lines[2].status, Status::Warn, "{lines:#?}");
}

#[test]
fn firewall_verdicts() {
    let f = healthy();
    let none = report(vec![(
        "fw-in/west",
        Outcome::Sniff(SniffOutcome::default()),
    )]);
    let sender = report(vec![(
        "fw-out/east",
        Outcome::Sent {
            count: 10,
            error: None,
        },
    )]);
    let lines = evaluate::firewall(
        &f,
        &Firewall {
            node: Some("east-node0"),
            sniffer: Ok(&none),
            senders: vec![("west".into(), Ok(&sender))],
            window: Duration::from_millis(1500),
        },
    );
    assert_eq!(statuses(&lines), [Status::Fail]);
    assert!(lines[0].message.contains("west → east: UDP 4500"));
    assert!(lines[0].message.contains("is blocked: 0 of 10"));
    // Behind a NAT (found by NAT discovery) with the cable up, the dropped
    // unsolicited datagrams are what the NAT should do.
    let mut natted = with_nat_discovery(
        healthy(),
        ferry_api::NatDiscoveryResult::PublicIp,
        "public IP answered",
    );
    {
        let c = &mut natted.snapshot.gateways[0]
            .status
            .as_mut()
            .unwrap()
            .connections[0];
        let nd = c.nat_discovery.as_mut().unwrap();
        nd.src_port_nat_detected = true;
        nd.seen_as = Some("198.19.0.1:40123".parse().unwrap());
    }
    let lines = evaluate::firewall(
        &natted,
        &Firewall {
            node: Some("east-node0"),
            sniffer: Ok(&none),
            senders: vec![("west".into(), Ok(&sender))],
            window: Duration::from_millis(1500),
        },
    );
    assert_eq!(statuses(&lines), [Status::Pass], "{lines:?}");
    assert!(
        lines[0]
            .message
            .contains("behind a NAT (west sees it as 198.19.0.1:40123)"),
        "{lines:?}"
    );
    let lines = evaluate::firewall(
        &f,
        &Firewall {
            node: Some("east-node0"),
            sniffer: Ok(&none),
            senders: Vec::new(),
            window: Duration::from_millis(1500),
        },
    );
    assert_eq!(statuses(&lines), [Status::Warn]);
    let lines = evaluate::firewall(
        &f,
        &Firewall {
            node: None,
            sniffer: Err("no pod"),
            senders: Vec::new(),
            window: Duration::from_millis(1500),
        },
    );
    assert_eq!(statuses(&lines), [Status::Fail]);
}

#[test]
fn client_tasks_cover_every_remote_and_import() {
    let f = healthy();
    let servers = BTreeMap::from([("west".to_string(), "100.65.1.2".to_string())]);
    let tasks = client_tasks(&f, &Check::ALL, &servers, "run1");
    let ids: Vec<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "gw/west",
            "pod/west",
            "mtu-big/west",
            "mtu-fit/west",
            "mtu-tcp/west",
            "dns-version",
            "dns-nx",
            "dns/nginx-test/nginx"
        ]
    );
    assert!(
        matches!(&tasks[0].probe, Probe::Echo { target, format: EchoFormat::Health, .. } if target == "100.65.0.1:4801")
    );
    assert!(matches!(&tasks[3].probe, Probe::Echo { size: 1392, .. }));
    let alone = client_tasks(&f, &[Check::Connections], &BTreeMap::new(), "run1");
    assert_eq!(alone.len(), 1);
    assert_eq!(marker("r", "a", "b"), "ferry-firewall-probe r a->b");
}

fn with_nat_discovery(mut f: Facts, result: ferry_api::NatDiscoveryResult, message: &str) -> Facts {
    let c = &mut f.snapshot.gateways[0].status.as_mut().unwrap().connections[0];
    c.nat_discovery = Some(ferry_api::NatDiscovery {
        result,
        seen_as: None,
        remote_seen_from: None,
        src_ip_nat_detected: false,
        src_port_nat_detected: false,
        dst_ip_nat_detected: false,
        message: message.into(),
    });
    f
}

#[test]
fn nat_discovery_reports_what_the_gateway_found() {
    use ferry_api::NatDiscoveryResult as R;
    let f = with_nat_discovery(
        healthy(),
        R::PublicIp,
        "public IP 198.19.1.10 answered; no NAT",
    );
    let lines = evaluate::nat_discovery(&f);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].status, Status::Pass, "{lines:?}");
    assert_eq!(
        lines[0].message,
        "east → west: public IP 198.19.1.10 answered; no NAT; cable to 198.19.1.10, NAT yes"
    );

    let f = with_nat_discovery(
        facts("error", "no reply"),
        R::Unreachable,
        "no answer … UDP between the gateways is blocked",
    );
    let lines = evaluate::nat_discovery(&f);
    assert_eq!(lines[0].status, Status::Fail);
    assert!(
        lines[0]
            .hint
            .as_deref()
            .unwrap()
            .contains("--preferred-server"),
        "{lines:?}"
    );

    let f = with_nat_discovery(healthy(), R::Probing, "probing");
    assert_eq!(evaluate::nat_discovery(&f)[0].status, Status::Warn);

    // A path found, but the cable still fails: not a pass.
    let f = with_nat_discovery(
        facts("error", "no reply"),
        R::PublicIp,
        "public IP answered",
    );
    assert_eq!(evaluate::nat_discovery(&f)[0].status, Status::Fail);

    // An older gateway says nothing about NAT discovery.
    assert_eq!(evaluate::nat_discovery(&healthy())[0].status, Status::Warn);
}

#[test]
fn host_network_names_the_source_and_fails_where_only_pods_cross() {
    let f = healthy();
    let host = good_host();
    let lines = evaluate::host_network(
        &f,
        &Client {
            node: "east-node1",
            report: Ok(&host),
        },
        &pods(),
    );
    assert_eq!(statuses(&lines), [Status::Pass]);
    assert!(
        lines[0]
            .message
            .starts_with("east → west: from the host network of east-node1 (source 100.64.1.1): 5/5 probes to west's gateway answered"),
        "{}",
        lines[0].message
    );
    assert!(
        lines[0]
            .message
            .contains("a TCP connection to a pod on west-node1 carried 65536 bytes")
    );

    // Pods cross, the node's own traffic does not (Submariner's "only pods
    // on the gateway node connect"): the route agent is named.
    let lost = report(vec![
        ("host-gw/west", echo(5, 0)),
        ("host-pod/west", echo(5, 0)),
        (
            "host-tcp/west",
            Outcome::Error {
                message: "connect timed out".into(),
            },
        ),
    ]);
    let host = Client {
        node: "east-node1",
        report: Ok(&lost),
    };
    let lines = evaluate::host_network(&f, &host, &pods());
    assert_eq!(statuses(&lines), [Status::Fail]);
    let hint = lines[0].hint.clone().unwrap_or_default();
    assert!(
        hint.contains("should leave from 100.64.1.1") && hint.contains("table 7100"),
        "{hint}"
    );

    // Without the annotation the route agent found no address to use.
    let mut bare = healthy();
    for n in &mut bare.nodes {
        n.metadata.annotations = None;
    }
    let lines = evaluate::host_network(&bare, &host, &[]);
    assert_eq!(statuses(&lines), [Status::Fail]);
    assert!(
        lines[0]
            .message
            .contains("no ferry.dev/cni-iface-ip on the Node")
    );
    let hint = lines[0].hint.clone().unwrap_or_default();
    assert!(
        hint.contains("found no address inside east's pod CIDRs"),
        "{hint}"
    );

    // A partial loss warns; no pod: a failure naming the pod's error.
    let some = report(vec![("host-gw/west", echo(5, 3))]);
    let host = Client {
        node: "east-node1",
        report: Ok(&some),
    };
    assert_eq!(
        statuses(&evaluate::host_network(&f, &host, &[])),
        [Status::Warn]
    );
    let host = Client {
        node: "east-node1",
        report: Err("pod never started"),
    };
    let lines = evaluate::host_network(&f, &host, &[]);
    assert_eq!(statuses(&lines), [Status::Fail]);
    assert!(lines[0].message.contains("pod never started"));
}

#[test]
fn host_tasks_probe_gateway_pod_and_tcp() {
    let f = healthy();
    let servers = BTreeMap::from([("west".to_string(), "100.65.1.2".to_string())]);
    let tasks = super::tasks::host_tasks(&f, &servers);
    let ids: Vec<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["host-gw/west", "host-pod/west", "host-tcp/west"]);
    assert!(matches!(&tasks[2].probe, Probe::Tcp { target, .. } if target == "100.65.1.2:7790"));
    assert_eq!(super::tasks::host_tasks(&f, &BTreeMap::new()).len(), 1);
}

#[test]
fn check_names_parse() {
    for c in Check::ALL {
        assert_eq!(c.name().parse::<Check>().unwrap(), c);
    }
    assert_eq!("cni".parse::<Check>().unwrap(), Check::Cni);
    assert!("cni-plugin".parse::<Check>().is_err());
}

#[test]
fn mtu_is_not_judged_where_nothing_crosses() {
    let f = healthy();
    let r = report(vec![
        ("gw/west", echo(5, 0)),
        ("pod/west", echo(5, 0)),
        ("mtu-fit/west", echo(3, 0)),
    ]);
    let client = Client {
        node: "east-node1",
        report: Ok(&r),
    };
    let lines = evaluate::mtu(&f, &client, &pods(), true);
    assert_eq!(statuses(&lines), [Status::Skip]);
    assert!(lines[0].message.contains("not even small packets cross"));
    // Run alone, the mtu check reports it itself.
    assert_eq!(
        statuses(&evaluate::mtu(&f, &client, &pods(), false)),
        [Status::Fail]
    );
    let mtu_only = client_tasks(&f, &[Check::Mtu], &BTreeMap::new(), "run1");
    assert_eq!(
        mtu_only[0].id, "gw/west",
        "the baseline runs with the mtu check"
    );
}

#[test]
fn a_gateway_that_cannot_send_is_named() {
    let f = healthy();
    let none = report(vec![(
        "fw-in/west",
        Outcome::Sniff(SniffOutcome::default()),
    )]);
    let sender = report(vec![(
        "fw-out/east",
        Outcome::Sent {
            count: 0,
            error: Some("Network is unreachable (os error 101)".into()),
        },
    )]);
    let lines = evaluate::firewall(
        &f,
        &Firewall {
            node: Some("east-node0"),
            sniffer: Ok(&none),
            senders: vec![("west".into(), Ok(&sender))],
            window: Duration::from_millis(1500),
        },
    );
    assert_eq!(statuses(&lines), [Status::Fail]);
    assert!(
        lines[0]
            .message
            .contains("west's gateway node could not send any test datagram"),
        "{}",
        lines[0].message
    );
    assert!(lines[0].message.contains("Network is unreachable"));
}

#[test]
fn broker_namespace_imports_are_not_resolved() {
    let mut f = healthy();
    f.snapshot.imports.push(de(json!({
        "apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceImport",
        "metadata": {"name": "nginx-nginx-test-west", "namespace": "ferry-broker"},
        "spec": {"type": "ClusterSetIP", "ports": []}})));
    f.snapshot.imports.push(de(json!({
        "apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceImport",
        "metadata": {"name": "api", "namespace": "a-first"},
        "spec": {"type": "ClusterSetIP", "ports": []}})));
    let names: Vec<String> = evaluate::resolvable_imports(&f)
        .iter()
        .map(|si| evaluate::import_name(si, "clusterset.local"))
        .collect();
    assert_eq!(
        names,
        [
            "api.a-first.svc.clusterset.local",
            "nginx.nginx-test.svc.clusterset.local"
        ]
    );
    let tasks = client_tasks(&f, &[Check::ServiceDiscovery], &BTreeMap::new(), "r");
    let ids: Vec<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "dns-version",
            "dns-nx",
            "dns/a-first/api",
            "dns/nginx-test/nginx"
        ]
    );
}

#[test]
fn overlapping_cidrs_say_which_cluster_needs_globalnet() {
    let mut f = healthy();
    let same = f.snapshot.clusters[0].spec.cluster_cidrs.clone();
    f.snapshot.clusters[1].spec.cluster_cidrs = same;
    // Neither has Globalnet: both need it.
    let lines = evaluate::cidr_overlap(&f);
    assert_eq!(statuses(&lines), [Status::Fail]);
    let hint = lines[0].hint.clone().unwrap();
    assert!(
        hint.contains("run `ferry globalnet enable` in both (east, west)"),
        "{hint}"
    );
    // Only east has it: west needs it.
    f.snapshot.clusters[0].spec.global_cidrs = vec!["100.120.0.0/24".parse().unwrap()];
    let hint = evaluate::cidr_overlap(&f)[0].hint.clone().unwrap();
    assert!(
        hint.contains("west has none: run `ferry globalnet enable` in west"),
        "{hint}"
    );
    // Both have it: the overlap is fine.
    f.snapshot.clusters[1].spec.global_cidrs = vec!["100.120.1.0/24".parse().unwrap()];
    let lines = evaluate::cidr_overlap(&f);
    assert_eq!(statuses(&lines), [Status::Pass]);
    assert!(
        lines[0].message.contains("overlap west's, which is fine"),
        "{}",
        lines[0].message
    );
    // Overlapping global CIDRs are never fine.
    f.snapshot.clusters[1].spec.global_cidrs = vec!["100.120.0.128/25".parse().unwrap()];
    let lines = evaluate::cidr_overlap(&f);
    assert_eq!(
        lines[0].message,
        "east's global CIDR 100.120.0.0/24 overlaps west's global CIDR 100.120.0.128/25"
    );
    assert_eq!(lines[0].status, Status::Fail);
}
