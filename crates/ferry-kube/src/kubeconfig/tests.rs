#![allow(clippy::unwrap_used)]
use super::*;

fn kubeconfig(v: serde_json::Value) -> Kubeconfig {
    serde_json::from_value(v).unwrap()
}

#[test]
fn endpoint_of_the_current_context() {
    let kc = kubeconfig(serde_json::json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [
            {"name": "x", "cluster": {"server": "https://x", "certificate-authority-data": STANDARD.encode("X CA")}},
            {"name": "y", "cluster": {"server": "https://y", "certificate-authority-data": STANDARD.encode("Y CA")}},
        ],
        "users": [{"name": "u", "user": {"token": "t0k"}}, {"name": "v", "user": {}}],
        "contexts": [
            {"name": "cx", "context": {"cluster": "x", "user": "v"}},
            {"name": "cy", "context": {"cluster": "y", "user": "u"}},
        ],
        "current-context": "cy",
    }));
    assert_eq!(
        kubeconfig_endpoint(&kc).unwrap(),
        ApiEndpoint {
            server: "https://y".into(),
            ca_pem: "Y CA".into(),
            token: Some("t0k".into()),
        }
    );
}

#[test]
fn endpoint_needs_a_context_a_server_and_a_ca() {
    let cases = [
        (
            serde_json::json!({"apiVersion": "v1", "kind": "Config"}),
            "configuration: the kubeconfig has no context",
        ),
        (
            serde_json::json!({"apiVersion": "v1", "kind": "Config",
                "clusters": [{"name": "x", "cluster": {"server": "https://x"}}],
                "contexts": [{"name": "c", "context": {"cluster": "x", "user": "u"}}]}),
            "configuration: the kubeconfig's cluster has no certificate authority; the broker needs one",
        ),
    ];
    for (v, want) in cases {
        let e = kubeconfig_endpoint(&kubeconfig(v)).unwrap_err();
        assert_eq!(e.to_string(), want);
    }
}

#[test]
fn a_missing_file_names_it() {
    let e = read_kubeconfig(Some(Path::new("/nonexistent/kubeconfig"))).unwrap_err();
    assert!(
        matches!(&e, Error::Client { api: ClientFor::KubeconfigFile(p), .. } if p == Path::new("/nonexistent/kubeconfig")),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .starts_with("cannot build a client for /nonexistent/kubeconfig: "),
        "{e}"
    );
}
