use serde_json::json;

use super::decode;

/// A minimal protobuf writer for building test bodies.
fn varint(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn bytes_field(n: u32, b: &[u8], out: &mut Vec<u8>) {
    varint(u64::from(n) << 3 | 2, out);
    varint(b.len() as u64, out);
    out.extend_from_slice(b);
}

fn int_field(n: u32, v: u64, out: &mut Vec<u8>) {
    varint(u64::from(n) << 3, out);
    varint(v, out);
}

fn map_entry(k: &str, v: &[u8]) -> Vec<u8> {
    let mut e = Vec::new();
    bytes_field(1, k.as_bytes(), &mut e);
    bytes_field(2, v, &mut e);
    e
}

fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let mut tm = Vec::new();
    bytes_field(1, api_version.as_bytes(), &mut tm);
    bytes_field(2, kind.as_bytes(), &mut tm);
    let mut out = b"k8s\0".to_vec();
    bytes_field(1, &tm, &mut out);
    bytes_field(2, raw, &mut out);
    bytes_field(3, b"", &mut out);
    bytes_field(4, b"", &mut out);
    out
}

fn meta(name: &str) -> Vec<u8> {
    let mut m = Vec::new();
    bytes_field(1, name.as_bytes(), &mut m);
    bytes_field(2, b"", &mut m);
    int_field(7, 0, &mut m);
    bytes_field(8, b"", &mut m); // zero Time, as Go emits it
    bytes_field(11, &map_entry("app", b"web"), &mut m);
    m
}

#[test]
fn namespace_and_configmap_and_secret() {
    let mut ns = Vec::new();
    bytes_field(1, &meta("team-a"), &mut ns);
    bytes_field(2, b"", &mut ns);
    let mut status = Vec::new();
    bytes_field(1, b"", &mut status);
    bytes_field(3, &status, &mut ns);
    let v = decode(&envelope("v1", "Namespace", &ns)).unwrap();
    assert_eq!(
        v,
        json!({"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": "team-a", "labels": {"app": "web"}},
               "spec": {}})
    );

    let mut cm = Vec::new();
    bytes_field(1, &meta("c"), &mut cm);
    bytes_field(2, &map_entry("k", b"v"), &mut cm);
    bytes_field(2, &map_entry("k2", b"v2"), &mut cm);
    let v = decode(&envelope("v1", "ConfigMap", &cm)).unwrap();
    assert_eq!(v["data"], json!({"k": "v", "k2": "v2"}));

    let mut secret = Vec::new();
    bytes_field(1, &meta("s"), &mut secret);
    bytes_field(2, &map_entry("pw", b"\x00\xffhi"), &mut secret);
    bytes_field(3, b"Opaque", &mut secret);
    let v = decode(&envelope("v1", "Secret", &secret)).unwrap();
    assert_eq!(v["data"]["pw"], "AP9oaQ==");
    assert_eq!(v["type"], "Opaque");
}

#[test]
fn deployment_with_containers_and_zero_replicas() {
    let mut container = Vec::new();
    bytes_field(1, b"web", &mut container);
    bytes_field(2, b"ferry", &mut container);
    bytes_field(3, b"ferry", &mut container);
    bytes_field(3, b"tools", &mut container);
    let mut port = Vec::new();
    int_field(3, 8080, &mut port);
    bytes_field(4, b"TCP", &mut port);
    bytes_field(6, &port, &mut container);
    bytes_field(8, b"", &mut container);
    int_field(16, 0, &mut container); // stdin: false, always emitted by Go
    let mut pod_spec = Vec::new();
    bytes_field(2, &container, &mut pod_spec);
    let mut template = Vec::new();
    bytes_field(1, &meta(""), &mut template);
    bytes_field(2, &pod_spec, &mut template);
    let mut selector = Vec::new();
    bytes_field(1, &map_entry("app", b"web"), &mut selector);
    let mut spec = Vec::new();
    int_field(1, 0, &mut spec);
    bytes_field(2, &selector, &mut spec);
    bytes_field(3, &template, &mut spec);
    bytes_field(4, b"", &mut spec);
    let mut d = Vec::new();
    bytes_field(1, &meta("web"), &mut d);
    bytes_field(2, &spec, &mut d);
    let v = decode(&envelope("apps/v1", "Deployment", &d)).unwrap();
    assert_eq!(v["spec"]["replicas"], 0);
    assert_eq!(v["spec"]["selector"]["matchLabels"]["app"], "web");
    let c = &v["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["command"], json!(["ferry", "tools"]));
    assert_eq!(
        c["ports"][0],
        json!({"containerPort": 8080, "protocol": "TCP"})
    );
}

#[test]
fn unknown_fields_and_garbage_are_refused_not_dropped() {
    let mut cm = Vec::new();
    bytes_field(1, &meta("c"), &mut cm);
    bytes_field(9, b"surprise", &mut cm);
    let err = decode(&envelope("v1", "ConfigMap", &cm)).unwrap_err();
    assert!(err.contains("field 9 of ConfigMap"), "{err}");
    assert!(
        decode(&envelope("v1", "Pod", b""))
            .unwrap_err()
            .contains("v1 Pod")
    );
    assert!(decode(b"garbage").is_err());
    assert!(decode(b"k8s\0\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01").is_err());
    let mut truncated = envelope("v1", "ConfigMap", &cm);
    truncated.truncate(truncated.len() / 2);
    assert!(decode(&truncated).is_err());
}
