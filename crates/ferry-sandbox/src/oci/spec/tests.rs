#![allow(clippy::unwrap_used)]
use super::*;
use crate::oci::store::ImageConfig;

fn image(user: &str) -> Image {
    Image {
        reference: "ferry:0.1.0".into(),
        digest: "sha256:ab".into(),
        config: ImageConfig {
            entrypoint: vec!["/usr/bin/ferry".into()],
            cmd: vec!["--help".into()],
            env: vec!["PATH=/usr/sbin:/usr/bin".into()],
            user: user.into(),
            working_dir: "/".into(),
        },
        rootfs: "/images/ab/rootfs".into(),
    }
}

const PASSWD: &str =
    "root:x:0:0:root:/root:/usr/sbin/nologin\nferry:x:65532:65532::/:/usr/sbin/nologin\n";
const GROUP: &str = "root:x:0:\nferry:x:65532:\n";

fn pod(spec: Value) -> (Pod, Container) {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": spec,
    }))
    .unwrap();
    let c = pod.spec.as_ref().unwrap().containers[0].clone();
    (pod, c)
}

#[test]
fn command_and_args_replace_entrypoint_and_cmd_as_kubernetes_does() {
    let img = image("");
    let (_, c) = pod(json!({"containers": [{"name": "a"}]}));
    assert_eq!(argv(&c, &img).unwrap(), ["/usr/bin/ferry", "--help"]);
    let (_, c) = pod(json!({"containers": [{"name": "a", "args": ["agent"]}]}));
    assert_eq!(argv(&c, &img).unwrap(), ["/usr/bin/ferry", "agent"]);
    let (_, c) = pod(json!({"containers": [{"name": "a", "command": ["ferry"]}]}));
    assert_eq!(argv(&c, &img).unwrap(), ["ferry"]);
    let mut empty = image("");
    empty.config.entrypoint.clear();
    empty.config.cmd.clear();
    let (_, c) = pod(json!({"containers": [{"name": "a"}]}));
    assert!(matches!(
        argv(&c, &empty),
        Err(Error::ContainerConfig { .. })
    ));
}

#[test]
fn user_comes_from_the_security_context_over_the_image() {
    let (p, c) = pod(json!({"containers": [{"name": "a"}]}));
    let s = security(&p, &c, &image("65532:65532"), PASSWD, GROUP).unwrap();
    assert_eq!((s.uid, s.gid), (65532, 65532));
    let s = security(&p, &c, &image("ferry"), PASSWD, GROUP).unwrap();
    assert_eq!((s.uid, s.gid), (65532, 65532));
    let (p, c) = pod(json!({
        "securityContext": {"runAsUser": 1000, "supplementalGroups": [5], "fsGroup": 7},
        "containers": [{"name": "a", "securityContext": {"runAsUser": 0}}],
    }));
    let s = security(&p, &c, &image("65532:65532"), PASSWD, GROUP).unwrap();
    assert_eq!(
        (s.uid, s.gid, s.additional_gids.clone()),
        (0, 0, vec![5, 7])
    );
    let (p, c) = pod(json!({
        "containers": [{"name": "a", "securityContext": {"runAsNonRoot": true}}],
    }));
    let err = security(&p, &c, &image(""), PASSWD, GROUP).unwrap_err();
    assert!(err.to_string().contains("runAsNonRoot"), "{err}");
    assert!(security(&p, &c, &image("nobody"), PASSWD, GROUP).is_err());
}

#[test]
fn capabilities_are_containerds_defaults_plus_add_minus_drop() {
    let (p, c) = pod(json!({"containers": [{"name": "a"}]}));
    let s = security(&p, &c, &image(""), PASSWD, GROUP).unwrap();
    assert_eq!(s.capabilities.len(), DEFAULT_CAPABILITIES.len());
    assert!(!s.capabilities.contains(&"CAP_NET_ADMIN".to_string()));
    let (p, c) = pod(json!({"containers": [{"name": "a", "securityContext": {
        "capabilities": {"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]},
        "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false,
    }}]}));
    let s = security(&p, &c, &image(""), PASSWD, GROUP).unwrap();
    assert_eq!(s.capabilities, ["CAP_NET_ADMIN", "CAP_NET_RAW"]);
    assert!(s.read_only_root && s.no_new_privileges && !s.privileged);
    let (p, c) = pod(json!({"containers": [{"name": "a", "securityContext": {
        "capabilities": {"drop": ["NET_RAW"]}}}]}));
    let s = security(&p, &c, &image(""), PASSWD, GROUP).unwrap();
    assert!(!s.capabilities.contains(&"CAP_NET_RAW".to_string()));
    assert!(s.capabilities.contains(&"CAP_CHOWN".to_string()));
    let (p, c) = pod(json!({"containers": [{"name": "a", "securityContext": {
        "privileged": true, "capabilities": {"drop": ["ALL"]}}}]}));
    let s = security(&p, &c, &image(""), PASSWD, GROUP).unwrap();
    assert_eq!(s.capabilities.len(), ALL_CAPABILITIES.len());
}

#[test]
fn quantities_and_limits_become_cgroup_settings() {
    assert_eq!(quantity("250m"), Some(0.25));
    assert_eq!(quantity("64Mi"), Some(64.0 * 1024.0 * 1024.0));
    assert_eq!(quantity("2"), Some(2.0));
    assert_eq!(quantity("1G"), Some(1e9));
    assert_eq!(quantity("x"), None);
    let (_, c) = pod(json!({"containers": [{"name": "a", "resources": {
        "requests": {"cpu": "100m", "memory": "32Mi"},
        "limits": {"cpu": "500m", "memory": "64Mi"}}}]}));
    let r = resources(&c);
    assert_eq!(r["cpu"]["shares"], 102);
    assert_eq!(r["cpu"]["quota"], 50_000);
    assert_eq!(r["memory"]["limit"], 64 * 1024 * 1024);
    let (_, c) = pod(json!({"containers": [{"name": "a"}]}));
    assert!(resources(&c).get("memory").is_none());
}

#[test]
fn the_spec_isolates_unless_privileged() {
    let inputs = Inputs {
        argv: vec!["ferry".into(), "dns".into()],
        env: vec!["PATH=/usr/bin".into()],
        cwd: "/".into(),
        rootfs: "/images/ab/rootfs".into(),
        netns_path: "/run/netns/fsb1-p3".into(),
        hostname: Some("dns-1".into()),
        mounts: vec![Mount {
            source: "/state/volumes/u/tmp".into(),
            destination: "/tmp".into(),
            read_only: false,
        }],
        cgroups_path: "/ferry-sandbox/c/id".into(),
        resources: json!({"devices": [{"allow": false, "access": "rwm"}]}),
    };
    let (p, c) = pod(json!({
        "securityContext": {"sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "53"}]},
        "containers": [{"name": "a", "securityContext": {"readOnlyRootFilesystem": true}}],
    }));
    let sec = security(&p, &c, &image("65532:65532"), PASSWD, GROUP).unwrap();
    let spec = render(&inputs, &sec);
    assert_eq!(spec["root"]["readonly"], true);
    assert_eq!(spec["hostname"], "dns-1");
    assert_eq!(spec["process"]["user"]["uid"], 65532);
    assert_eq!(
        spec["linux"]["sysctl"]["net.ipv4.ip_unprivileged_port_start"],
        "53"
    );
    let ns = spec["linux"]["namespaces"].as_array().unwrap();
    assert!(ns.contains(&json!({"type": "network", "path": "/run/netns/fsb1-p3"})));
    assert!(ns.contains(&json!({"type": "uts"})));
    assert!(
        spec["linux"]["readonlyPaths"]
            .as_array()
            .unwrap()
            .contains(&json!("/proc/sys"))
    );
    let mounts = spec["mounts"].as_array().unwrap();
    assert!(
        mounts
            .iter()
            .any(|m| m["destination"] == "/tmp" && m["type"] == "bind")
    );
    assert!(!mounts.iter().any(|m| m["destination"] == "/dev/net/tun"));

    let (p, c) =
        pod(json!({"containers": [{"name": "a", "securityContext": {"privileged": true}}]}));
    let sec = security(&p, &c, &image(""), PASSWD, GROUP).unwrap();
    let host = Inputs {
        hostname: None,
        ..inputs
    };
    let spec = render(&host, &sec);
    assert!(spec.get("hostname").is_none());
    assert!(spec["linux"].get("readonlyPaths").is_none());
    assert_eq!(spec["linux"]["resources"]["devices"][0]["allow"], true);
    let mounts = spec["mounts"].as_array().unwrap();
    assert!(mounts.iter().any(|m| m["destination"] == "/dev/net/tun"));
}
