use super::*;
use k8s_openapi::api::core::v1::ClientIPConfig;
use k8s_openapi::jiff::Timestamp;
use serde_json::json;

fn t(s: i64) -> Time {
    Time(Timestamp::from_second(s).unwrap())
}

fn port(name: Option<&str>, proto: &str, port: i32) -> ServicePort {
    ServicePort {
        name: name.map(str::to_string),
        protocol: proto.into(),
        app_protocol: None,
        port,
    }
}

fn export(cluster: &str, created: i64, ports: Vec<ServicePort>) -> Export {
    Export {
        cluster: cluster.into(),
        created: t(created),
        type_: ServiceImportType::ClusterSetIp,
        ports,
        session_affinity: None,
        session_affinity_config: None,
        ip_families: vec!["IPv4".into()],
        internal_traffic_policy: None,
        traffic_distribution: None,
        exported_labels: BTreeMap::new(),
        exported_annotations: BTreeMap::new(),
        clusterset_ip: None,
    }
}

#[test]
fn merge_rules() {
    let http = || port(Some("http"), "TCP", 80);
    let https = || port(Some("https"), "TCP", 443);
    struct Case {
        name: &'static str,
        exports: Vec<Export>,
        ports: Vec<ServicePort>,
        type_: ServiceImportType,
        affinity: Option<&'static str>,
        conflicts: Vec<(&'static str, Vec<&'static str>)>,
    }
    let headless = |mut e: Export| {
        e.type_ = ServiceImportType::Headless;
        e
    };
    let client_ip = |mut e: Export, timeout: Option<i32>| {
        e.session_affinity = Some("ClientIP".into());
        e.session_affinity_config = timeout.map(|s| SessionAffinityConfig {
            client_ip: Some(ClientIPConfig {
                timeout_seconds: Some(s),
            }),
        });
        e
    };
    let cases = vec![
        Case {
            name: "single export",
            exports: vec![export("a", 10, vec![http()])],
            ports: vec![http()],
            type_: ServiceImportType::ClusterSetIp,
            affinity: None,
            conflicts: vec![],
        },
        Case {
            name: "identical exports",
            exports: vec![export("a", 10, vec![http()]), export("b", 20, vec![http()])],
            ports: vec![http()],
            type_: ServiceImportType::ClusterSetIp,
            affinity: None,
            conflicts: vec![],
        },
        Case {
            name: "disjoint ports are a union, and a conflict (mcs-api conformance)",
            exports: vec![
                export("a", 10, vec![http()]),
                export("b", 20, vec![https()]),
            ],
            ports: vec![http(), https()],
            type_: ServiceImportType::ClusterSetIp,
            affinity: None,
            conflicts: vec![("b", vec![reason::PORT_CONFLICT])],
        },
        Case {
            name: "same name, other port: oldest wins, newer conflicts",
            exports: vec![
                export("b", 20, vec![port(Some("http"), "TCP", 8080)]),
                export("a", 10, vec![http()]),
            ],
            ports: vec![http()],
            type_: ServiceImportType::ClusterSetIp,
            affinity: None,
            conflicts: vec![("b", vec![reason::PORT_CONFLICT])],
        },
        Case {
            name: "same name, other protocol",
            exports: vec![
                export("a", 10, vec![http()]),
                export("b", 20, vec![port(Some("http"), "UDP", 80)]),
            ],
            ports: vec![http()],
            type_: ServiceImportType::ClusterSetIp,
            affinity: None,
            conflicts: vec![("b", vec![reason::PORT_CONFLICT])],
        },
        Case {
            name: "same protocol+port, other name",
            exports: vec![
                export("a", 10, vec![http()]),
                export("b", 20, vec![port(Some("web"), "TCP", 80)]),
            ],
            ports: vec![http()],
            type_: ServiceImportType::ClusterSetIp,
            affinity: None,
            conflicts: vec![("b", vec![reason::PORT_CONFLICT])],
        },
        Case {
            name: "same port number, other protocol, other name: union, and a conflict",
            exports: vec![
                export("a", 10, vec![port(Some("dns"), "TCP", 53)]),
                export("b", 20, vec![port(Some("dns-udp"), "UDP", 53)]),
            ],
            ports: vec![
                port(Some("dns"), "TCP", 53),
                port(Some("dns-udp"), "UDP", 53),
            ],
            type_: ServiceImportType::ClusterSetIp,
            affinity: None,
            conflicts: vec![("b", vec![reason::PORT_CONFLICT])],
        },
        Case {
            name: "type: oldest wins",
            exports: vec![
                export("a", 20, vec![http()]),
                headless(export("b", 10, vec![http()])),
            ],
            ports: vec![http()],
            type_: ServiceImportType::Headless,
            affinity: None,
            conflicts: vec![("a", vec![reason::TYPE_CONFLICT])],
        },
        Case {
            name: "session affinity: oldest wins",
            exports: vec![
                client_ip(export("a", 10, vec![http()]), None),
                export("b", 20, vec![http()]),
            ],
            ports: vec![http()],
            type_: ServiceImportType::ClusterSetIp,
            affinity: Some("ClientIP"),
            conflicts: vec![("b", vec![reason::SESSION_AFFINITY_CONFLICT])],
        },
        Case {
            name: "session affinity config differs",
            exports: vec![
                client_ip(export("a", 10, vec![http()]), Some(100)),
                client_ip(export("b", 20, vec![http()]), Some(200)),
            ],
            ports: vec![http()],
            type_: ServiceImportType::ClusterSetIp,
            affinity: Some("ClientIP"),
            conflicts: vec![("b", vec![reason::SESSION_AFFINITY_CONFIG_CONFLICT])],
        },
        Case {
            name: "several reasons at once",
            exports: vec![
                export("a", 10, vec![http()]),
                client_ip(
                    headless(export("b", 20, vec![port(Some("http"), "TCP", 81)])),
                    None,
                ),
            ],
            ports: vec![http()],
            type_: ServiceImportType::ClusterSetIp,
            affinity: None,
            conflicts: vec![(
                "b",
                vec![
                    reason::PORT_CONFLICT,
                    reason::TYPE_CONFLICT,
                    reason::SESSION_AFFINITY_CONFLICT,
                ],
            )],
        },
        Case {
            name: "same creation time: cluster id breaks the tie",
            exports: vec![
                headless(export("z", 10, vec![http()])),
                export("m", 10, vec![http()]),
            ],
            ports: vec![http()],
            type_: ServiceImportType::ClusterSetIp,
            affinity: None,
            conflicts: vec![("z", vec![reason::TYPE_CONFLICT])],
        },
        Case {
            name: "unnamed single ports with different numbers conflict",
            exports: vec![
                export("a", 10, vec![port(None, "TCP", 80)]),
                export("b", 20, vec![port(None, "TCP", 8080)]),
            ],
            ports: vec![port(None, "TCP", 80)],
            type_: ServiceImportType::ClusterSetIp,
            affinity: None,
            conflicts: vec![("b", vec![reason::PORT_CONFLICT])],
        },
    ];
    for case in cases {
        let merged = merge(&case.exports).unwrap();
        assert_eq!(merged.spec.ports, case.ports, "{}: ports", case.name);
        assert_eq!(merged.spec.type_, case.type_, "{}: type", case.name);
        assert_eq!(
            merged.spec.session_affinity.as_deref(),
            case.affinity,
            "{}: affinity",
            case.name
        );
        let want: BTreeMap<String, Vec<&'static str>> = case
            .conflicts
            .into_iter()
            .map(|(c, r)| (c.to_string(), r))
            .collect();
        assert_eq!(merged.conflicts, want, "{}: conflicts", case.name);
        let mut clusters: Vec<String> = case.exports.iter().map(|e| e.cluster.clone()).collect();
        clusters.sort();
        assert_eq!(merged.clusters, clusters, "{}: clusters", case.name);
        assert!(merged.spec.ips.is_empty());
    }
    assert_eq!(merge(&[]), None);
}

fn svc(spec: serde_json::Value) -> Service {
    serde_json::from_value(json!({"metadata": {"name": "s", "namespace": "n"}, "spec": spec}))
        .unwrap()
}

#[test]
fn service_validity() {
    let cases = vec![
        ("missing", None, Validity::NoService),
        (
            "cluster ip",
            Some(svc(json!({"type": "ClusterIP"}))),
            Validity::Valid,
        ),
        ("no type", Some(svc(json!({}))), Validity::Valid),
        (
            "headless",
            Some(svc(json!({"clusterIP": "None"}))),
            Validity::Valid,
        ),
        (
            "node port",
            Some(svc(json!({"type": "NodePort"}))),
            Validity::Valid,
        ),
        (
            "external name",
            Some(svc(
                json!({"type": "ExternalName", "externalName": "x.example"}),
            )),
            Validity::InvalidServiceType("ExternalName".into()),
        ),
    ];
    for (name, service, want) in cases {
        assert_eq!(validate_service(service.as_ref()), want, "{name}");
    }
}

#[test]
fn export_of_service() {
    let s = svc(json!({
        "clusterIP": "10.96.0.10", "sessionAffinity": "None",
        "ports": [{"name": "http", "port": 80, "targetPort": 8080}, {"name": "dns", "port": 53, "protocol": "UDP"}]
    }));
    let e = export_of("c1", t(5), &s, &ExportedMeta::default());
    assert_eq!(e.type_, ServiceImportType::ClusterSetIp);
    assert_eq!(e.session_affinity, None);
    assert_eq!(
        e.ports,
        vec![port(Some("http"), "TCP", 80), port(Some("dns"), "UDP", 53)]
    );
    let h = export_of(
        "c1",
        t(5),
        &svc(json!({"clusterIP": "None", "sessionAffinity": "ClientIP",
            "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 30}}})),
        &ExportedMeta::default(),
    );
    assert_eq!(h.type_, ServiceImportType::Headless);
    assert_eq!(h.session_affinity.as_deref(), Some("ClientIP"));
    assert!(h.session_affinity_config.is_some());
}

fn slice(endpoints: serde_json::Value) -> EndpointSlice {
    serde_json::from_value(json!({
        "metadata": {"name": "s-abc", "namespace": "n"},
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }))
    .unwrap()
}

#[test]
fn exported_endpoint_rules() {
    let cip = svc(json!({"clusterIP": "10.96.0.10", "ports": [{"name": "http", "port": 80}]}));
    let head = svc(json!({"clusterIP": "None", "ports": [{"name": "http", "port": 80}]}));
    let ready = slice(json!([
        {"addresses": ["10.0.0.1"], "conditions": {"ready": true}, "targetRef": {"kind": "Pod", "name": "web-1"}},
        {"addresses": ["10.0.0.2"], "conditions": {"ready": false}, "hostname": "web-2"},
        {"addresses": ["10.0.0.3"], "hostname": "web-3"},
    ]));
    let unready = slice(json!([{"addresses": ["10.0.0.2"], "conditions": {"ready": false}}]));

    struct Case {
        name: &'static str,
        service: Service,
        slices: Vec<EndpointSlice>,
        addresses: Vec<&'static str>,
        ready: Vec<bool>,
        hostnames: Vec<Option<&'static str>>,
        port: i32,
    }
    let cases = vec![
        Case {
            name: "clusterset ip, ready backend",
            service: cip.clone(),
            slices: vec![ready.clone()],
            addresses: vec!["10.96.0.10"],
            ready: vec![true],
            hostnames: vec![None],
            port: 80,
        },
        Case {
            name: "clusterset ip, no ready backend",
            service: cip.clone(),
            slices: vec![unready.clone()],
            addresses: vec!["10.96.0.10"],
            ready: vec![false],
            hostnames: vec![None],
            port: 80,
        },
        Case {
            name: "clusterset ip, no slices",
            service: cip.clone(),
            slices: vec![],
            addresses: vec!["10.96.0.10"],
            ready: vec![false],
            hostnames: vec![None],
            port: 80,
        },
        Case {
            name: "headless: ready endpoints with hostnames",
            service: head.clone(),
            slices: vec![ready.clone(), unready.clone()],
            addresses: vec!["10.0.0.1", "10.0.0.3"],
            ready: vec![true, true],
            hostnames: vec![Some("web-1"), Some("web-3")],
            port: 8080,
        },
    ];
    for case in cases {
        let refs: Vec<&EndpointSlice> = case.slices.iter().collect();
        let got = exported_endpoints(&case.service, &refs);
        let addrs: Vec<&str> = got
            .endpoints
            .iter()
            .map(|e| e.addresses[0].as_str())
            .collect();
        assert_eq!(addrs, case.addresses, "{}", case.name);
        let ready: Vec<bool> = got
            .endpoints
            .iter()
            .map(|e| e.conditions.as_ref().unwrap().ready.unwrap())
            .collect();
        assert_eq!(ready, case.ready, "{}", case.name);
        let hosts: Vec<Option<&str>> = got
            .endpoints
            .iter()
            .map(|e| e.hostname.as_deref())
            .collect();
        assert_eq!(hosts, case.hostnames, "{}", case.name);
        assert_eq!(got.ports[0].port, Some(case.port), "{}", case.name);
        assert_eq!(got.address_type, "IPv4");
    }
    let v6 = svc(json!({"clusterIP": "fd00::10", "clusterIPs": ["fd00::10"]}));
    assert_eq!(exported_endpoints(&v6, &[]).address_type, "IPv6");
    let unallocated = svc(json!({}));
    assert!(exported_endpoints(&unallocated, &[]).endpoints.is_empty());
}

#[test]
fn condition_rules() {
    let now = t(100);
    struct Case {
        name: &'static str,
        validity: Validity,
        readiness: Readiness,
        conflicts: Vec<&'static str>,
        want: [(&'static str, &'static str); 3],
    }
    let cases = vec![
        Case {
            name: "valid, exported",
            validity: Validity::Valid,
            readiness: Readiness::Exported,
            conflicts: vec![],
            want: [
                ("True", "Valid"),
                ("True", "Exported"),
                ("False", "NoConflicts"),
            ],
        },
        Case {
            name: "valid, pending",
            validity: Validity::Valid,
            readiness: Readiness::Pending,
            conflicts: vec![],
            want: [
                ("True", "Valid"),
                ("False", "Pending"),
                ("False", "NoConflicts"),
            ],
        },
        Case {
            name: "no service",
            validity: Validity::NoService,
            readiness: Readiness::Pending,
            conflicts: vec![],
            want: [
                ("False", "NoService"),
                ("False", "Failed"),
                ("False", "NoConflicts"),
            ],
        },
        Case {
            name: "external name",
            validity: Validity::InvalidServiceType("ExternalName".into()),
            readiness: Readiness::Pending,
            conflicts: vec![reason::PORT_CONFLICT],
            want: [
                ("False", "InvalidServiceType"),
                ("False", "Failed"),
                ("False", "NoConflicts"),
            ],
        },
        Case {
            name: "conflicts joined by commas",
            validity: Validity::Valid,
            readiness: Readiness::Exported,
            conflicts: vec![reason::PORT_CONFLICT, reason::TYPE_CONFLICT],
            want: [
                ("True", "Valid"),
                ("True", "Exported"),
                ("True", "PortConflict,TypeConflict"),
            ],
        },
    ];
    for case in cases {
        let got = export_conditions(
            &case.validity,
            case.readiness,
            &ServiceConflicts {
                reasons: case.conflicts.clone(),
                causes: String::new(),
            },
            &[],
            &now,
        );
        let types: Vec<&str> = got.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, ["Valid", "Ready", "Conflict"], "{}", case.name);
        for (c, (status, reason)) in got.iter().zip(case.want) {
            assert_eq!(
                (c.status.as_str(), c.reason.as_str()),
                (status, reason),
                "{}",
                case.name
            );
            assert_eq!(c.last_transition_time, now);
        }
    }
}

fn none() -> ServiceConflicts {
    ServiceConflicts::default()
}

#[test]
fn transition_time_kept_while_status_holds() {
    let first = export_conditions(&Validity::Valid, Readiness::Pending, &none(), &[], &t(1));
    let second = export_conditions(
        &Validity::Valid,
        Readiness::Exported,
        &none(),
        &first,
        &t(2),
    );
    assert_eq!(second[0].last_transition_time, t(1), "Valid unchanged");
    assert_eq!(second[1].last_transition_time, t(2), "Ready changed");
    assert_eq!(second[2].last_transition_time, t(1), "Conflict unchanged");
    assert!(!same_conditions(&first, &second));
    let third = export_conditions(
        &Validity::Valid,
        Readiness::Exported,
        &none(),
        &second,
        &t(3),
    );
    assert!(same_conditions(&second, &third));
    assert_eq!(second, third);
}

#[test]
fn v1beta1_settings_conflict_on_every_export_and_the_oldest_wins() {
    let http = || port(Some("http"), "TCP", 80);
    let with = |f: &dyn Fn(&mut Export)| {
        let mut e = export("b", 20, vec![http()]);
        f(&mut e);
        e
    };
    let cases: Vec<(Export, &str)> = vec![
        (
            with(&|e| e.internal_traffic_policy = Some("Local".into())),
            reason::INTERNAL_TRAFFIC_POLICY_CONFLICT,
        ),
        (
            with(&|e| e.traffic_distribution = Some("PreferClose".into())),
            reason::TRAFFIC_DISTRIBUTION_CONFLICT,
        ),
        (
            with(&|e| e.ip_families = vec!["IPv6".into()]),
            reason::IP_FAMILY_CONFLICT,
        ),
        (
            with(&|e| e.exported_labels = [("k".to_string(), "v2".to_string())].into()),
            reason::LABELS_CONFLICT,
        ),
        (
            with(&|e| e.exported_annotations = [("k".to_string(), "v2".to_string())].into()),
            reason::ANNOTATIONS_CONFLICT,
        ),
    ];
    for (newer, want) in cases {
        let mut oldest = export("a", 10, vec![http()]);
        oldest.exported_labels = [("k".to_string(), "v1".to_string())].into();
        oldest.exported_annotations = [("k".to_string(), "v1".to_string())].into();
        let mut newer = newer;
        if want != reason::LABELS_CONFLICT {
            newer.exported_labels = oldest.exported_labels.clone();
        }
        if want != reason::ANNOTATIONS_CONFLICT {
            newer.exported_annotations = oldest.exported_annotations.clone();
        }
        let m = merge(&[newer, oldest.clone()]).unwrap();
        assert_eq!(m.conflicts_of("b"), [want], "{want}");
        assert_eq!(
            m.service_conflicts(),
            [want],
            "{want}: every export reports it"
        );
        assert_eq!(
            m.labels, oldest.exported_labels,
            "{want}: the oldest's labels"
        );
        assert_eq!(m.annotations, oldest.exported_annotations);
        assert_eq!(m.spec.internal_traffic_policy, None);
        assert_eq!(m.spec.ip_families, ["IPv4"]);
    }
    // An older ferry's export says nothing of IP families: no conflict.
    let unknown = with(&|e| e.ip_families = Vec::new());
    let m = merge(&[export("a", 10, vec![http()]), unknown]).unwrap();
    assert!(m.service_conflicts().is_empty());
}

#[test]
fn the_oldest_export_decides_the_clusterset_ip() {
    let http = || port(Some("http"), "TCP", 80);
    let choosing = |choice| {
        let mut e = export("a", 10, vec![http()]);
        e.clusterset_ip = choice;
        e
    };
    for choice in [Some(false), Some(true), None] {
        let m = merge(&[choosing(choice), export("b", 20, vec![http()])]).unwrap();
        assert_eq!(m.clusterset_ip, choice, "the oldest export's {choice:?}");
    }
    let mut headless = choosing(Some(true));
    headless.type_ = ServiceImportType::Headless;
    assert_eq!(
        merge(&[headless]).unwrap().clusterset_ip,
        Some(false),
        "headless: never, whatever it asks"
    );
}

#[test]
fn only_true_or_false_is_a_clusterset_ip_choice() {
    let read = |v: &str| {
        let annotations = BTreeMap::from([("ferry.dev/clusterset-ip".to_string(), v.to_string())]);
        clusterset_ip_choice(Some(&annotations))
    };
    assert_eq!(read("true"), Some(true));
    assert_eq!(read("false"), Some(false));
    assert_eq!(read("yes"), None);
    assert_eq!(clusterset_ip_choice(None), None);
}

#[test]
fn an_import_is_pending_without_its_clusterset_ip() {
    let ready = import_ready(None, &t(1));
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "Ready")
    );
    let pending = import_ready(
        Some("the clusterset IP range 198.18.0.0/30 is exhausted"),
        &t(1),
    );
    assert_eq!(
        (pending.status.as_str(), pending.reason.as_str()),
        ("False", "Pending")
    );
    assert!(pending.message.contains("exhausted"));
}

#[test]
fn only_ipv4_services_get_a_clusterset_ip() {
    let fams = |f: &[&str]| f.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(clusterset_ip_supported(&fams(&["IPv4"])));
    // An older ferry's export lists no family: it only handled IPv4.
    assert!(clusterset_ip_supported(&[]));
    for families in [
        fams(&["IPv6"]),
        fams(&["IPv4", "IPv6"]),
        fams(&["IPv6", "IPv4"]),
    ] {
        assert!(!clusterset_ip_supported(&families), "{families:?}");
        let c = import_family_not_supported(&families, &t(1));
        assert_eq!(
            (c.type_.as_str(), c.status.as_str(), c.reason.as_str()),
            ("Ready", "False", "IPFamilyNotSupported")
        );
        assert!(c.message.contains("IPv4 services only"), "{}", c.message);
        assert!(c.message.contains(&families.join("/")), "{}", c.message);
    }
}

#[test]
fn colliding_exported_labels_name_their_keys_and_clusters() {
    let http = || port(Some("http"), "TCP", 80);
    let mut oldest = export("a", 10, vec![http()]);
    oldest.exported_labels = [("tier".to_string(), "web".to_string())].into();
    let mut newer = export("b", 20, vec![http()]);
    newer.exported_labels = [
        ("tier".to_string(), "db".to_string()),
        ("team".to_string(), "x".to_string()),
    ]
    .into();
    let mut same = export("c", 30, vec![http()]);
    same.exported_labels = oldest.exported_labels.clone();
    let m = merge(&[newer, same, oldest]).unwrap();
    let summary = m.service_conflict_summary();
    assert_eq!(summary.reasons, [reason::LABELS_CONFLICT]);
    assert_eq!(
        summary.causes,
        "exportedLabels differ on team, tier; cluster a's export is the oldest and its \
         settings are used; cluster b differs from it"
    );
    let conds = export_conditions(&Validity::Valid, Readiness::Exported, &summary, &[], &t(1));
    let conflict = &conds[2];
    assert_eq!(
        (conflict.status.as_str(), conflict.reason.as_str()),
        ("True", "LabelsConflict")
    );
    assert!(
        conflict
            .message
            .contains("exportedLabels differ on team, tier"),
        "{}",
        conflict.message
    );
    // Without conflicts there is no cause to name.
    let m = merge(&[export("a", 10, vec![http()])]).unwrap();
    assert_eq!(m.service_conflict_summary(), ServiceConflicts::default());
}
