//! `ferry export/unexport service` against an in-process broker and a
//! joined cluster running its real agent, and a joined cluster without one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{apply, clusterset};
use ferry_api::ServiceExport;
use ferry_ctl::export::{export, render_outcome, unexport};
use ferry_ctl::{Error, Target, explain_error};
use kube::Api;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn export_waits_for_the_agent_and_unexport_removes() {
    let mut cs = clusterset(&["east", "quiet"]).await;
    cs.start_agent(0).await;
    let (east, quiet) = (&cs.members[0], &cs.members[1]);
    let t = Target::connect(&east.spec()).await.unwrap();
    let c = east.client.clone();
    apply(
        &c,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "web"}}),
    )
    .await;

    // No such Service: a clear error and a hint, nothing created.
    let e = export(&t, "web", "nginx", Duration::from_secs(5), None)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::ServiceNotFound { .. }), "{e:?}");
    let x = explain_error(&e);
    assert_eq!(x.message, "service web/nginx does not exist");
    assert!(
        x.hint
            .unwrap()
            .contains("kubectl -n web expose deployment nginx")
    );
    let exports: Api<ServiceExport> = Api::namespaced(c.clone(), "web");
    assert!(exports.get_opt("nginx").await.unwrap().is_none());

    // ExternalName cannot be exported.
    apply(
        &c,
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext", "namespace": "web"},
            "spec": {"type": "ExternalName", "externalName": "example.org"}}),
    )
    .await;
    let e = export(&t, "web", "ext", Duration::from_secs(5), None)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NotExportable { .. }), "{e:?}");

    // A real Service: created, and the agent's conditions come back.
    apply(
        &c,
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "nginx", "namespace": "web"},
            "spec": {"clusterIP": "100.65.0.20", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}}),
    )
    .await;
    let o = export(&t, "web", "nginx", Duration::from_secs(15), None)
        .await
        .unwrap();
    assert!(o.created);
    assert!(o.settled(), "{:?}", o.export.status);
    o.check().unwrap();
    let text = render_outcome(&o);
    assert!(
        text.starts_with("Exported service web/nginx from cluster east\n"),
        "{text}"
    );
    assert!(text.contains("Ready       True"), "{text}");
    assert!(text.contains("nginx.web.svc.clusterset.local"), "{text}");

    // Again: the existing export is kept and reported.
    let o = export(&t, "web", "nginx", Duration::from_secs(5), None)
        .await
        .unwrap();
    assert!(!o.created);
    assert!(render_outcome(&o).starts_with("Already exported: service web/nginx"));

    // Unexport, then unexport again is a clear error.
    unexport(&t, "web", "nginx").await.unwrap();
    assert!(exports.get_opt("nginx").await.unwrap().is_none());
    let e = unexport(&t, "web", "nginx").await.unwrap_err();
    assert!(matches!(e, Error::NotExported { .. }), "{e:?}");
    assert!(
        explain_error(&e)
            .hint
            .unwrap()
            .contains("kubectl get serviceexports -A")
    );

    // Without an agent the wait ends and says so.
    let tq = Target::connect(&quiet.spec()).await.unwrap();
    let q = quiet.client.clone();
    apply(
        &q,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "web"}}),
    )
    .await;
    apply(
        &q,
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "nginx", "namespace": "web"},
            "spec": {"ports": [{"port": 80}]}}),
    )
    .await;
    let o = export(&tq, "web", "nginx", Duration::from_millis(600), None)
        .await
        .unwrap();
    assert!(!o.settled());
    assert!(o.waited >= Duration::from_millis(600));
    assert!(render_outcome(&o).contains("is it running?"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_in_a_cluster_that_never_joined() {
    let tmp = tempfile::tempdir().unwrap();
    let lone = common::Server::start(tmp.path().join("lone")).await;
    let t = Target::connect(&lone.spec()).await.unwrap();
    let e = export(&t, "default", "nginx", Duration::from_secs(1), None)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NotJoined { .. }), "{e:?}");
    assert!(explain_error(&e).hint.unwrap().contains("ferry join"));
}
