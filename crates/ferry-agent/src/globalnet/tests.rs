#![allow(clippy::unwrap_used)]
use super::*;
use ferry_api::ClusterGlobalEgressIPSpec;

fn block() -> Block {
    Block::new("100.120.1.0/24".parse().unwrap()).unwrap()
}

fn export(name: &str, ip: Option<&str>, annotated: Option<&str>) -> ExportFacts {
    ExportFacts {
        ns: "web".into(),
        name: name.into(),
        annotated: annotated.map(String::from),
        cluster_ip: ip.map(|i| i.parse().unwrap()),
        pods: vec![],
        headless: false,
        annotated_pods: None,
    }
}

fn egress(ips: &[&str], spec: ClusterGlobalEgressIPSpec) -> ClusterGlobalEgressIP {
    let mut e = ClusterGlobalEgressIP::new(CLUSTER_EGRESS_NAME, spec);
    e.status = Some(GlobalEgressIPStatus {
        conditions: vec![],
        allocated_ips: ips.iter().map(|s| s.to_string()).collect(),
    });
    e
}

fn ingress(name: &str, ip: &str) -> GlobalIngressIP {
    let mut g = GlobalIngressIP::new(
        name,
        GlobalIngressIPSpec {
            target: ferry_api::globalnet::TargetType::ClusterIpService,
            service_ref: None,
            pod_ref: None,
        },
    );
    g.metadata.namespace = Some("web".into());
    g.metadata.labels = Some([(APP_MANAGED_BY.into(), APP_MANAGED_BY_FERRY.into())].into());
    g.status = Some(GlobalIngressIPStatus {
        allocated_ip: ip.into(),
        ..Default::default()
    });
    g
}

#[test]
fn a_fresh_cluster_gets_its_egress_object_and_ingress_objects() {
    let obs = Observed {
        exports: vec![
            export("nginx", Some("100.96.0.10"), None),
            export("db", None, None),
        ],
        ..Default::default()
    };
    let actions = plan(&block(), &obs);
    assert_eq!(
        actions,
        vec![
            Action::CreateClusterEgress,
            Action::CreateIngress {
                ns: "web".into(),
                name: "nginx".into()
            }
        ]
    );
}

#[test]
fn egress_gets_eight_contiguous_ips_and_ingress_the_next_free_one() {
    let obs = Observed {
        exports: vec![export("nginx", Some("100.96.0.10"), None)],
        egress: vec![egress(&[], Default::default())],
        ingress: vec![ingress("nginx", "")],
        namespaced: vec![],
    };
    let actions = plan(&block(), &obs);
    let Action::EgressStatus { status, .. } = &actions[0] else {
        panic!("{actions:?}")
    };
    assert_eq!(status.allocated_ips.first().unwrap(), "100.120.1.2");
    assert_eq!(status.allocated_ips.len(), 8);
    let Action::IngressStatus { status, .. } = &actions[1] else {
        panic!("{actions:?}")
    };
    assert_eq!(
        (status.allocated_ip.as_str(), status.target_ip.as_str()),
        ("100.120.1.10", "100.96.0.10")
    );
    assert_eq!(
        actions[2],
        Action::AnnotateExport {
            ns: "web".into(),
            name: "nginx".into(),
            ip: Some("100.120.1.10".into())
        }
    );
}

#[test]
fn held_addresses_stay_and_a_duplicate_is_moved() {
    let obs = Observed {
        exports: vec![
            export("a", Some("100.96.0.10"), Some("100.120.1.20")),
            export("b", Some("100.96.0.11"), Some("100.120.1.20")),
        ],
        egress: vec![egress(
            &["100.120.1.2"],
            ClusterGlobalEgressIPSpec {
                num_global_ips: Some(1),
                ..Default::default()
            },
        )],
        ingress: vec![ingress("a", "100.120.1.20"), ingress("b", "100.120.1.20")],
        namespaced: vec![],
    };
    let actions = plan(&block(), &obs);
    // a keeps .20; b, which holds it too, gets the first free address.
    let moved: Vec<_> = actions
        .iter()
        .filter_map(|a| match a {
            Action::IngressStatus { name, status, .. } => {
                Some((name.as_str(), status.allocated_ip.as_str()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(moved, vec![("a", "100.120.1.20"), ("b", "100.120.1.3")]);
}

#[test]
fn too_many_ips_are_refused_in_the_status_with_the_numbers() {
    let obs = Observed {
        egress: vec![egress(
            &[],
            ClusterGlobalEgressIPSpec {
                number_of_ips: Some(25),
                ..Default::default()
            },
        )],
        ..Default::default()
    };
    let actions = plan(&block(), &obs);
    let Action::EgressStatus { status, .. } = &actions[0] else {
        panic!("{actions:?}")
    };
    assert!(status.allocated_ips.is_empty());
    assert_eq!(
        status.conditions[0].message,
        "numberOfIPs 25 is over the limit of 20"
    );
}

#[test]
fn an_ingress_ip_whose_export_is_gone_is_deleted() {
    let obs = Observed {
        egress: vec![egress(&[], Default::default())],
        ingress: vec![ingress("old", "100.120.1.40")],
        ..Default::default()
    };
    assert!(plan(&block(), &obs).contains(&Action::DeleteIngress {
        ns: "web".into(),
        name: "old".into()
    }));
}

fn namespaced(name: &str, spec: ferry_api::GlobalEgressIPSpec, ips: &[&str]) -> GlobalEgressIP {
    let mut e = GlobalEgressIP::new(name, spec);
    e.metadata.namespace = Some("web".into());
    e.status = Some(GlobalEgressIPStatus {
        conditions: vec![],
        allocated_ips: ips.iter().map(|s| s.to_string()).collect(),
    });
    e
}

fn namespaced_status(actions: &[Action]) -> Vec<(String, GlobalEgressIPStatus)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::NamespacedEgressStatus { name, status, .. } => {
                Some((name.clone(), status.clone()))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_namespace_egress_object_gets_its_own_ips_after_the_clusters() {
    let cluster: Vec<String> = (2..10).map(|i| format!("100.120.1.{i}")).collect();
    let cluster: Vec<&str> = cluster.iter().map(String::as_str).collect();
    let obs = Observed {
        egress: vec![egress(&cluster, Default::default())],
        namespaced: vec![
            namespaced(
                "two",
                ferry_api::GlobalEgressIPSpec {
                    number_of_ips: Some(2),
                    ..Default::default()
                },
                &[],
            ),
            namespaced("default-one", Default::default(), &[]),
        ],
        ..Default::default()
    };
    let got = namespaced_status(&plan(&block(), &obs));
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].1.allocated_ips, ["100.120.1.10", "100.120.1.11"]);
    assert_eq!(got[1].1.allocated_ips, ["100.120.1.12"]);
}

#[test]
fn a_namespace_egress_object_keeps_its_ips_and_refuses_bad_input() {
    let selector = serde_json::from_value(serde_json::json!({
        "matchExpressions": [{"key": "app", "operator": "Bogus"}]
    }))
    .unwrap();
    let obs = Observed {
        namespaced: vec![
            namespaced("kept", Default::default(), &["100.120.1.200"]),
            namespaced(
                "over",
                ferry_api::GlobalEgressIPSpec {
                    num_global_ips: Some(21),
                    ..Default::default()
                },
                &[],
            ),
            namespaced(
                "bad-selector",
                ferry_api::GlobalEgressIPSpec {
                    pod_selector: Some(selector),
                    ..Default::default()
                },
                &[],
            ),
        ],
        ..Default::default()
    };
    let got = namespaced_status(&plan(&block(), &obs));
    let by_name: BTreeMap<_, _> = got.into_iter().collect();
    assert_eq!(by_name["kept"].allocated_ips, ["100.120.1.200"]);
    assert_eq!(
        by_name["over"].conditions[0].message,
        "numberOfIPs 21 is over the limit of 20"
    );
    assert!(by_name["bad-selector"].allocated_ips.is_empty());
    assert!(
        by_name["bad-selector"].conditions[0]
            .message
            .starts_with("podSelector: "),
        "{:?}",
        by_name["bad-selector"].conditions
    );
}

#[test]
fn a_headless_services_pods_get_one_ingress_ip_each_and_the_export_maps_them() {
    let mut x = export("db", None, None);
    x.headless = true;
    x.pods = vec![
        ("db-0".into(), "100.90.1.5".parse().unwrap()),
        ("db-1".into(), "100.90.2.7".parse().unwrap()),
    ];
    let obs = Observed {
        exports: vec![x.clone()],
        egress: vec![egress(
            &["100.120.1.2"],
            ClusterGlobalEgressIPSpec {
                number_of_ips: Some(1),
                num_global_ips: None,
            },
        )],
        ..Default::default()
    };
    let actions = plan(&block(), &obs);
    assert!(actions.contains(&Action::CreatePodIngress {
        ns: "web".into(),
        name: "pod-db-0".into(),
        pod: "db-0".into()
    }));
    assert!(actions.contains(&Action::CreatePodIngress {
        ns: "web".into(),
        name: "pod-db-1".into(),
        pod: "db-1".into()
    }));
    // Once the objects exist, each gets an address translated to its pod,
    // and the export maps pod IP -> global IP.
    let obs = Observed {
        ingress: vec![ingress("pod-db-0", ""), ingress("pod-db-1", "")],
        ..obs
    };
    let actions = plan(&block(), &obs);
    let targets: Vec<(String, String)> = actions
        .iter()
        .filter_map(|a| match a {
            Action::IngressStatus { status, .. } => {
                Some((status.allocated_ip.clone(), status.target_ip.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        targets,
        [
            ("100.120.1.3".to_string(), "100.90.1.5".to_string()),
            ("100.120.1.4".to_string(), "100.90.2.7".to_string())
        ]
    );
    assert!(actions.contains(&Action::AnnotatePods {
        ns: "web".into(),
        name: "db".into(),
        ips: Some(r#"{"100.90.1.5":"100.120.1.3","100.90.2.7":"100.120.1.4"}"#.into())
    }));
    // A pod that is gone loses its object.
    let mut gone = x;
    gone.pods.truncate(1);
    let obs = Observed {
        exports: vec![gone],
        ..obs
    };
    assert!(plan(&block(), &obs).contains(&Action::DeleteIngress {
        ns: "web".into(),
        name: "pod-db-1".into()
    }));
}

#[test]
fn a_pod_without_a_global_ip_is_left_out_of_the_exported_slice() {
    let ep = |ip: &str| SliceEndpoint {
        addresses: vec![ip.into()],
        ..Default::default()
    };
    let map: BTreeMap<String, String> = [("100.90.1.5".into(), "100.120.1.3".into())].into();
    let out = with_global_pod_ips(vec![ep("100.90.1.5"), ep("100.90.2.7")], &map);
    assert_eq!(out, vec![ep("100.120.1.3")]);
}
