use std::fmt;

use super::*;

/// Like `anyhow::Context`: displays only its message, and chains to its cause.
#[derive(Debug)]
struct Ctx {
    msg: &'static str,
    source: Box<dyn StdError + 'static>,
}

impl fmt::Display for Ctx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.msg)
    }
}

impl StdError for Ctx {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(self.source.as_ref())
    }
}

fn ctx(msg: &'static str, e: impl StdError + 'static) -> Ctx {
    Ctx {
        msg,
        source: Box::new(e),
    }
}

fn status(code: u16, message: &str) -> kube::Error {
    kube::Error::Api(Box::new(kube::core::Status {
        code,
        message: message.into(),
        reason: "Whatever".into(),
        ..Default::default()
    }))
}

#[test]
fn missing_kubeconfig_lists_where_it_looked() {
    let e = Error::NoKubeconfig {
        tried: vec![
            "$KUBECONFIG: not set".into(),
            "/root/.kube/config: no such file".into(),
        ],
    };
    let x = explain_error(&e);
    assert_eq!(
        x.message,
        "no kubeconfig found (tried $KUBECONFIG: not set; /root/.kube/config: no such file)"
    );
    let hint = x.hint.clone().unwrap();
    assert!(
        hint.contains("--kubeconfig") && hint.contains("KUBECONFIG"),
        "{hint}"
    );
    assert_eq!(x.exit_code(), 1);
    assert_eq!(
        x.render()
            .lines()
            .map(|l| l.split(':').next().unwrap())
            .collect::<Vec<_>>(),
        ["error", "hint"]
    );
}

#[test]
fn malformed_broker_info_is_said_once_with_its_cause() {
    let err = ferry_api::BrokerInfo::decode("!!!not base64").unwrap_err();
    let e = ctx("reading broker-info.ferry", err);
    let x = explain_error(&e);
    assert!(
        x.message
            .starts_with("reading broker-info.ferry: broker info is not base64: "),
        "{}",
        x.message
    );
    assert_eq!(x.message.matches("not base64").count(), 1, "{}", x.message);
    assert!(x.hint.unwrap().contains("ferry deploy-broker"));
}

#[test]
fn join_refusals_get_their_hints() {
    let c = |id: &str, cidr: &str| {
        ferry_api::Cluster::new(
            id,
            ferry_api::ClusterSpec {
                cluster_id: id.into(),
                cluster_cidrs: vec![cidr.parse().unwrap()],
                service_cidrs: Vec::new(),
                global_cidrs: Vec::new(),
                network_plugin: None,
            },
        )
    };
    let existing = vec![c("east", "100.64.0.0/16")];
    let taken = crate::install::check_join(&existing, "east", None, &[]).unwrap_err();
    let x = explain_error(&ctx("joining", taken));
    assert!(x.message.contains("is taken"), "{}", x.message);
    assert!(x.hint.unwrap().contains("choose another --clusterid"));

    let overlap =
        crate::install::check_join(&existing, "west", None, &["100.64.1.0/24".parse().unwrap()])
            .unwrap_err();
    let x = explain_error(&overlap);
    assert!(
        x.message
            .contains("overlaps CIDR 100.64.0.0/16 of cluster \"east\""),
        "{}",
        x.message
    );
    assert!(x.hint.unwrap().contains("--clustercidr"));

    let bad_id = crate::install::check_join(&existing, "West_1", None, &[]).unwrap_err();
    assert!(explain_error(&bad_id).hint.unwrap().contains("lowercase"));

    let again = crate::install::check_join(&existing, "west", Some("north"), &[]).unwrap_err();
    let x = explain_error(&again);
    assert_eq!(
        x.message,
        "this cluster already joined the clusterset as \"north\"; it cannot join again as \"west\""
    );
    assert!(x.hint.unwrap().contains("run `ferry uninstall` first"));
}

#[test]
fn api_errors_lose_their_debug_dump() {
    let e = ferry_agent::Error::kube(
        "listing the clusters on the broker https://b:6443",
        status(401, "Unauthorized"),
    );
    let x = explain_error(&ctx("joining", e));
    assert_eq!(
        x.message,
        "joining: listing the clusters on the broker https://b:6443: Unauthorized (401)"
    );
    assert!(x.hint.unwrap().contains("wrong or expired"));

    let e = ferry_agent::Error::kube("applying Namespace ferry-system", status(403, "nope"));
    assert!(explain_error(&e).hint.unwrap().contains("cluster-admin"));
}

#[test]
fn transport_errors_name_url_and_cause() {
    let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
    let kube_err = kube::Error::Service(Box::new(io));
    let e = target::classify(
        "the broker",
        "https://198.18.0.1:6443",
        "listing".into(),
        kube_err,
    );
    let x = explain_error(&ctx("joining", e));
    assert_eq!(
        x.message,
        "joining: cannot reach the broker at https://198.18.0.1:6443: connection refused"
    );
    assert!(x.hint.unwrap().contains("is the API server running"));

    // The same error reached through ferry-agent, without our mapping.
    let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
    let e = ferry_agent::Error::kube(
        "reading the API server version",
        kube::Error::Service(Box::new(io)),
    );
    let x = explain_error(&e);
    assert_eq!(
        x.message,
        "reading the API server version: connection refused"
    );
    assert!(x.hint.unwrap().contains("is the API server running"));
}

#[test]
fn classify_maps_statuses() {
    let c = |code| {
        target::classify(
            "the cluster API (context a)",
            "https://a",
            "listing Gateways".into(),
            status(code, "m"),
        )
    };
    assert!(matches!(c(401), Error::Unauthorized { .. }));
    assert!(matches!(c(403), Error::Forbidden { .. }));
    assert!(matches!(c(500), Error::Status { code: 500, .. }));
    assert_eq!(
        c(403).to_string(),
        "the cluster API (context a) at https://a forbids listing Gateways: m"
    );
}

#[test]
fn usage_errors_exit_2() {
    let x = explain_error(&ctx("show", Error::Usage("give one or the other".into())));
    assert_eq!(x.exit_code(), 2);
    assert_eq!(x.message, "show: give one or the other");
}

#[test]
fn unknown_errors_still_print_their_chain() {
    let e = ctx("doing a thing", std::io::Error::other("disk on fire"));
    let x = explain_error(&e);
    assert_eq!(x.message, "doing a thing: disk on fire");
    assert_eq!(x.hint, None);
}

#[test]
fn broker_cleanup_combines_hints() {
    let inner = Error::Unreachable {
        what: "the broker".into(),
        url: "https://b".into(),
        cause: "connection refused".into(),
        kind: Transport::Refused,
    };
    let e = Error::BrokerCleanup {
        url: "https://b".into(),
        source: Box::new(inner),
    };
    let x = explain_error(&e);
    assert_eq!(
        x.message,
        "cannot remove this cluster's objects from the broker at https://b: cannot reach the broker at https://b: connection refused"
    );
    let h = x.hint.unwrap();
    assert!(
        h.contains("is the API server running") && h.contains("--skip-broker"),
        "{h}"
    );
}

#[test]
fn client_errors_point_at_the_right_file() {
    let broker = ferry_kube::Error::Client {
        api: ferry_kube::ClientFor::Broker {
            url: Some("https://b".into()),
        },
        reason: "bad CA".into(),
    };
    assert!(
        explain_error(&broker)
            .hint
            .unwrap()
            .contains("broker-info.ferry")
    );
    let local = ferry_kube::Error::Client {
        api: ferry_kube::ClientFor::Kubeconfig,
        reason: "no server".into(),
    };
    assert!(explain_error(&local).hint.unwrap().contains("--kubeconfig"));
    // The same, wrapped by the agent or by this crate.
    let through_agent = ferry_agent::Error::from(ferry_kube::Error::Client {
        api: ferry_kube::ClientFor::Broker { url: None },
        reason: "bad CA".into(),
    });
    let x = explain_error(&through_agent);
    assert_eq!(x.message, "cannot build a client for the broker: bad CA");
    assert!(x.hint.unwrap().contains("broker-info.ferry"));
    let through_ctl = Error::from(ferry_kube::Error::Client {
        api: ferry_kube::ClientFor::InCluster,
        reason: "no KUBERNETES_SERVICE_HOST".into(),
    });
    assert!(
        explain_error(&through_ctl)
            .hint
            .unwrap()
            .contains("--kubeconfig")
    );
}
