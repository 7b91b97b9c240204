use super::*;

fn params() -> ClusterParams {
    ClusterParams {
        cluster_id: "cluster1".into(),
        image: "ferry:0.1.0".into(),
        namespace: labels::SYSTEM_NAMESPACE.into(),
        broker_info: "<broker-info with this cluster's token>".into(),
        cluster_cidrs: vec![
            "100.64.0.0/16".parse().unwrap(),
            "fd00:10::/64".parse().unwrap(),
        ],
        service_cidrs: vec!["100.65.0.0/16".parse().unwrap()],
        global_cidrs: Vec::new(),
        network_plugin: None,
        cable_driver: CableDriver::Wireguard,
        gateway: GatewaySettings::default(),
        components: Components::default(),
    }
}

/// The manifests without the (long, separately tested) CRDs.
fn without_crds(objects: Vec<Value>) -> Vec<Value> {
    objects
        .into_iter()
        .filter(|o| o["kind"] != "CustomResourceDefinition")
        .collect()
}

#[test]
fn cluster_manifests_snapshot() {
    let objects = cluster_manifests(&params()).unwrap();
    assert_eq!(
        objects
            .iter()
            .filter(|o| o["kind"] == "CustomResourceDefinition")
            .count(),
        ferry_api::all_crds().len()
    );
    insta::assert_snapshot!(to_yaml(&without_crds(objects)).unwrap());
}

/// Every workload's pods carry the digest of the `ferry-broker` Secret, so
/// a re-run of `join` that changes what the daemons read at start (here the
/// broker's shared settings inside broker-info) rolls all of them, and one
/// that changes nothing rolls none.
#[test]
fn a_changed_broker_secret_changes_every_pod_template() {
    let digests = |p: &ClusterParams| -> Vec<String> {
        cluster_manifests(p)
            .unwrap()
            .iter()
            .filter(|o| o["kind"] == "Deployment" || o["kind"] == "DaemonSet")
            .map(|o| {
                o["spec"]["template"]["metadata"]["annotations"][BROKER_SECRET_DIGEST]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    let before = digests(&params());
    assert_eq!(before.len(), 4, "agent, dns, gateway, route agent");
    assert!(before.iter().all(|d| d == &before[0] && d.len() == 16));
    assert_eq!(digests(&params()), before, "same inputs, same templates");
    let mut changed = params();
    changed.broker_info = "<broker-info with ClusterSet IPs switched on>".into();
    let after = digests(&changed);
    assert!(after.iter().all(|d| d != &before[0]), "{after:?}");
}

#[test]
fn broker_manifests_snapshot() {
    let objects = broker_manifests(labels::BROKER_NAMESPACE).unwrap();
    insta::assert_snapshot!(to_yaml(&without_crds(objects)).unwrap());
    insta::assert_snapshot!(
        to_yaml(&broker_cluster_identity(
            labels::BROKER_NAMESPACE,
            "cluster1"
        ))
        .unwrap()
    );
}

#[test]
fn gateway_daemonset_selects_gateway_nodes_and_image_is_configurable() {
    let mut p = params();
    p.image = "registry.example/ferry:dev".into();
    let objects = cluster_manifests(&p).unwrap();
    let gw = objects
        .iter()
        .find(|o| o["kind"] == "DaemonSet" && o["metadata"]["name"] == "ferry-gateway")
        .unwrap();
    assert_eq!(
        gw["spec"]["template"]["spec"]["nodeSelector"][labels::GATEWAY],
        "true"
    );
    for o in objects
        .iter()
        .filter(|o| o["kind"] == "Deployment" || o["kind"] == "DaemonSet")
    {
        assert_eq!(
            o["spec"]["template"]["spec"]["containers"][0]["image"],
            "registry.example/ferry:dev"
        );
    }
}

#[test]
fn deploy_dir_is_up_to_date() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
    for (name, contents) in deploy_files().unwrap() {
        let on_disk = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
        assert!(
            on_disk == contents,
            "deploy/{name} is stale: run `cargo run -p ferry-deploy --example render -- deploy`"
        );
    }
}

#[test]
fn dns_serves_53_in_its_pod_without_root() {
    let objects = cluster_manifests(&params()).unwrap();
    let deployment = objects
        .iter()
        .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == "ferry-dns")
        .unwrap();
    let pod = &deployment["spec"]["template"]["spec"];
    let dns = &pod["containers"][0];
    let args: Vec<&str> = dns["args"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a.as_str())
        .collect();
    assert_eq!(dns["command"], json!(["ferry-dns"]));
    assert_eq!(args, ["--listen", "0.0.0.0:53"]);
    let sc = &dns["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true);
    assert_ne!(sc["runAsUser"], 0);
    assert_eq!(sc["capabilities"]["add"], json!(["NET_BIND_SERVICE"]));
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(
        pod["securityContext"]["sysctls"],
        json!([{"name": "net.ipv4.ip_unprivileged_port_start", "value": "53"}])
    );
    let service = objects
        .iter()
        .find(|o| o["kind"] == "Service" && o["metadata"]["name"] == "ferry-dns")
        .unwrap();
    for port in service["spec"]["ports"].as_array().unwrap() {
        assert_eq!(
            (port["port"].as_i64(), port["targetPort"].as_i64()),
            (Some(53), Some(53))
        );
    }
}

fn gateway_args(p: &ClusterParams) -> Vec<String> {
    let objects = cluster_manifests(p).unwrap();
    let gw = objects
        .iter()
        .find(|o| o["kind"] == "DaemonSet" && o["metadata"]["name"] == "ferry-gateway")
        .unwrap();
    let container = &gw["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["command"], json!(["ferry-gateway"]));
    // No flags: no args at all.
    match &container["args"] {
        Value::Null => Vec::new(),
        args => serde_json::from_value(args.clone()).unwrap(),
    }
}

#[test]
fn gateway_settings_become_gateway_args() {
    assert!(gateway_args(&params()).is_empty());
    let mut p = params();
    p.gateway = GatewaySettings {
        nat_traversal: false,
        nat_port: Some(4501),
        force_udp_encaps: true,
        preferred_server: true,
        air_gapped: true,
        health_check: false,
        health_check_interval: Some(std::time::Duration::from_secs(2)),
        health_check_max_packet_loss: Some(3),
        ipsec_ike_lifetime: Some(std::time::Duration::from_secs(8 * 3600)),
        ipsec_child_lifetime: Some(std::time::Duration::from_millis(2500)),
        active_active: true,
    };
    assert_eq!(
        gateway_args(&p),
        [
            "--natt=false",
            "--port=4501",
            "--force-udp-encaps",
            "--preferred-server",
            "--air-gapped",
            "--health-check=false",
            "--gateway-mode=active-active",
            "--health-check-interval=2000ms",
            "--health-check-max-packet-loss-count=3",
            "--ipsec-ike-lifetime=28800000ms",
            "--ipsec-child-lifetime=2500ms",
        ]
    );
}

#[test]
fn components_choose_the_workloads() {
    let names = |c: Components| -> Vec<String> {
        let mut p = params();
        p.components = c;
        cluster_manifests(&p)
            .unwrap()
            .iter()
            .filter(|o| o["kind"] != "CustomResourceDefinition")
            .map(|o| {
                format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap(),
                    o["metadata"]["name"].as_str().unwrap()
                )
            })
            .collect()
    };
    let sd_only = names(Components::parse_list("service-discovery").unwrap());
    assert!(
        sd_only.contains(&"Deployment/ferry-dns".to_string()),
        "{sd_only:?}"
    );
    assert!(
        sd_only.contains(&"Deployment/ferry-agent".to_string()),
        "{sd_only:?}"
    );
    assert!(
        !sd_only
            .iter()
            .any(|n| n.contains("ferry-gateway") || n.contains("ferry-route-agent")),
        "{sd_only:?}"
    );
    let conn_only = names(Components::parse_list("connectivity").unwrap());
    assert!(
        conn_only.contains(&"DaemonSet/ferry-gateway".to_string()),
        "{conn_only:?}"
    );
    assert!(
        !conn_only.iter().any(|n| n.contains("ferry-dns")),
        "{conn_only:?}"
    );
}

/// Every component's pod template, by Deployment/DaemonSet name.
fn pod_templates() -> Vec<(String, Value)> {
    cluster_manifests(&params())
        .unwrap()
        .into_iter()
        .filter(|o| o["kind"] == "Deployment" || o["kind"] == "DaemonSet")
        .map(|o| {
            let name = o["metadata"]["name"].as_str().unwrap().to_string();
            (name, o["spec"]["template"]["spec"].clone())
        })
        .collect()
}

#[test]
fn security_contexts_grant_only_what_each_component_needs() {
    let pods = pod_templates();
    assert_eq!(pods.len(), 4);
    for (name, pod) in &pods {
        let host_admin = name == "ferry-gateway" || name == "ferry-route-agent";
        assert_eq!(
            pod["hostNetwork"].as_bool().unwrap_or(false),
            host_admin,
            "{name}"
        );
        let c = &pod["containers"][0];
        let sc = &c["securityContext"];
        assert_eq!(sc["readOnlyRootFilesystem"], true, "{name}");
        assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]), "{name}");
        let added = sc["capabilities"]["add"].clone();
        if host_admin {
            assert_eq!(added, json!(["NET_ADMIN", "NET_RAW"]), "{name}");
            assert_eq!(sc["runAsUser"], 0, "{name}");
        } else {
            assert_eq!(sc["runAsNonRoot"], true, "{name}");
            assert_eq!(sc["runAsUser"], NONROOT_UID, "{name}");
            assert_eq!(sc["allowPrivilegeEscalation"], false, "{name}");
            assert!(sc.get("privileged").is_none(), "{name}");
            let expected = if name == "ferry-dns" {
                json!(["NET_BIND_SERVICE"])
            } else {
                Value::Null
            };
            assert_eq!(added, expected, "{name}");
        }
        // The read-only root's writable /tmp, and requests and a memory limit.
        let tmp = json!({"name": "tmp", "mountPath": "/tmp"});
        assert!(
            c["volumeMounts"].as_array().unwrap().contains(&tmp),
            "{name}"
        );
        assert!(
            pod["volumes"]
                .as_array()
                .unwrap()
                .contains(&json!({"name": "tmp", "emptyDir": {}}))
        );
        assert!(c["resources"]["requests"]["cpu"].is_string(), "{name}");
        assert!(c["resources"]["limits"]["memory"].is_string(), "{name}");
        let container = c["name"].as_str().unwrap();
        assert_eq!(
            c["resources"],
            component_resources(container).to_value(),
            "{name}"
        );
    }
}

/// The benchmark figures behind [`component_resources`] (MB as the
/// benchmarks print them, kB / 1024), as deploy/README.md lists them:
/// the largest idle RSS of `bench/rss/run.sh`, the largest RSS or peak
/// under load (`bench/propagation` at 10k services: agent A's peak, and
/// agent B's, an importer holding what ferry dns holds; the gateway and
/// route agent have no load figure that grows with services, so idle), and
/// the idle CPU in millicores `bench/rss/run.sh` printed (debug build).
const MEASURED: [(&str, f64, f64, f64); 4] = [
    ("agent", 38.0, 102.2, 0.7),
    ("dns", 42.0, 76.0, 0.7),
    ("gateway", 68.0, 68.0, 10.3),
    ("route-agent", 41.0, 41.0, 0.7),
];

#[test]
fn requests_cover_the_idle_rss_and_limits_sit_well_above_the_loaded_rss() {
    for (name, idle, loaded, cpu) in MEASURED {
        let r = component_resources(name);
        assert!(
            f64::from(r.cpu_request_milli) >= 1.5 * cpu,
            "{name}: CPU request {}m for {cpu}m idle",
            r.cpu_request_milli
        );
        let (request, limit) = (
            f64::from(r.memory_request_mib),
            f64::from(r.memory_limit_mib),
        );
        assert!(request >= idle, "{name}: request {request} < idle {idle}");
        assert!(
            limit >= 2.5 * loaded && limit >= 3.0 * idle,
            "{name}: limit {limit} too close to {loaded} under load / {idle} idle"
        );
    }
}

#[test]
fn kubectl_kustomize_renders_the_member_cluster_install() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
    let out = std::process::Command::new("kubectl")
        .arg("kustomize")
        .arg(&dir)
        .output()
        .expect("kubectl (scripts/setup.sh notes it when missing)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let rendered: Vec<Value> = serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    let names: Vec<String> = rendered
        .iter()
        .map(|o| {
            format!(
                "{}/{}",
                o["kind"].as_str().unwrap(),
                o["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    for want in [
        "Namespace/ferry-system",
        "CustomResourceDefinition/gateways.ferry.dev",
        "Deployment/ferry-agent",
        "Deployment/ferry-dns",
        "DaemonSet/ferry-gateway",
        "DaemonSet/ferry-route-agent",
        "Secret/ferry-broker",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
    }
    let mut objects = crds().unwrap();
    objects.extend(
        cluster_manifests(&params())
            .unwrap()
            .into_iter()
            .filter(|o| o["kind"] != "CustomResourceDefinition"),
    );
    assert_eq!(rendered.len(), objects.len(), "{names:?}");
}
