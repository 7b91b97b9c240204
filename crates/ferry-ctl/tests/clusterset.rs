//! Integration of `ferry join` and `ferry agent`: one `ferry apiserver` as
//! the broker and up to three as member clusters, all in this process;
//! `deploy_broker` + `join` (this crate) set the clusterset up, then the real
//! agent of each member (ferry-agent) syncs it through exports, conflicts,
//! unexports, headless services, gateway endpoints, token scoping and
//! renewal, a broker restart, an agent restart and an overloaded broker.
//! It lives here, not in ferry-agent, because it needs both and ferry-ctl
//! sits above ferry-agent. (`join`'s own checks are in tests/join.rs.) Waits
//! are bounded polls, never timed assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{admin_client, clusterset_with_agents, create, eventually_within, get};
use ferry_api::{Cluster, Endpoint, ServiceExport, ServiceImport};
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

/// How long a change may take to arrive: twice `common::eventually`'s 15 s,
/// as it goes through two agents and the broker.
const SYNC_BUDGET: Duration = Duration::from_secs(30);

async fn namespace(c: &Client, name: &str) {
    create(
        Api::<Namespace>::all(c.clone()),
        json!({"metadata": {"name": name}}),
    )
    .await;
}

async fn service(c: &Client, ns: &str, name: &str, spec: Value) {
    create(
        Api::<Service>::namespaced(c.clone(), ns),
        json!({"metadata": {"name": name, "namespace": ns}, "spec": spec}),
    )
    .await;
}

async fn slice(c: &Client, ns: &str, svc: &str, name: &str, endpoints: Value) {
    let api: Api<EndpointSlice> = Api::namespaced(c.clone(), ns);
    let obj: EndpointSlice = serde_json::from_value(json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": ns, "labels": {"kubernetes.io/service-name": svc}},
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }))
    .unwrap();
    api.patch(
        name,
        &PatchParams::apply("test").force(),
        &Patch::Apply(&obj),
    )
    .await
    .unwrap();
}

async fn export(c: &Client, ns: &str, name: &str) {
    create(
        Api::<ServiceExport>::namespaced(c.clone(), ns),
        json!({
        "apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceExport",
        "metadata": {"name": name, "namespace": ns}}),
    )
    .await;
}

async fn unexport(c: &Client, ns: &str, name: &str) {
    Api::<ServiceExport>::namespaced(c.clone(), ns)
        .delete(name, &DeleteParams::default())
        .await
        .unwrap();
}

fn condition(e: &ServiceExport, type_: &str) -> Option<(String, String)> {
    e.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone()))
}

async fn export_condition(
    c: &Client,
    ns: &str,
    name: &str,
    type_: &str,
) -> Option<(String, String)> {
    let e: ServiceExport = get(c, ns, name).await?;
    condition(&e, type_)
}

async fn import_clusters(c: &Client, ns: &str, name: &str) -> Option<Vec<String>> {
    let i: ServiceImport = get(c, ns, name).await?;
    Some(
        i.status
            .map(|s| s.clusters.into_iter().map(|c| c.cluster).collect())
            .unwrap_or_default(),
    )
}

async fn slice_addresses(
    c: &Client,
    ns: &str,
    name: &str,
) -> Option<Vec<(String, bool, Option<String>)>> {
    let s: EndpointSlice = get(c, ns, name).await?;
    Some(
        s.endpoints
            .iter()
            .map(|e| {
                (
                    e.addresses[0].clone(),
                    e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(false),
                    e.hostname.clone(),
                )
            })
            .collect(),
    )
}

fn v(s: &[&str]) -> Vec<String> {
    s.iter().map(|x| x.to_string()).collect()
}

/// Namespace `web` in `a` and `b`; in `a` the ClusterSetIP Service
/// web/nginx (100.65.0.10, port 80) with one ready backend (100.64.1.5) in
/// EndpointSlice `slice_name`, exported.
async fn export_nginx_from_a(a: &Client, b: &Client, slice_name: &str) {
    nginx_ready_in_a(a, b, slice_name).await;
    export(a, "web", "nginx").await;
}

/// Namespace `web` in `a` and `b`, and in `a` Service web/nginx with one
/// ready backend (not exported yet).
async fn nginx_ready_in_a(a: &Client, b: &Client, slice_name: &str) {
    namespace(a, "web").await;
    namespace(b, "web").await;
    service(
        a,
        "web",
        "nginx",
        json!({"clusterIP": "100.65.0.10", "ports": [{"name": "http", "port": 80}]}),
    )
    .await;
    set_nginx_backend_ready(a, slice_name, true).await;
}

/// Rewrites EndpointSlice `slice_name` of web/nginx in `a`: its one backend
/// 100.64.1.5, ready or not.
async fn set_nginx_backend_ready(a: &Client, slice_name: &str, ready: bool) {
    slice(
        a,
        "web",
        "nginx",
        slice_name,
        json!([{"addresses": ["100.64.1.5"], "conditions": {"ready": ready}}]),
    )
    .await;
}

/// What a slice of a's nginx holds, on the broker or in an importer: its
/// ClusterSetIP, ready or not (as `slice_addresses` reads it).
fn nginx_of_a(ready: bool) -> Option<Vec<(String, bool, Option<String>)>> {
    Some(vec![("100.65.0.10".into(), ready, None)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exports_imports_conflicts_and_cleanup() {
    let cs = clusterset_with_agents(&["a", "b", "c"]).await;
    let (a, b, c) = (
        cs.members[0].client.clone(),
        cs.members[1].client.clone(),
        cs.members[2].client.clone(),
    );
    let broker = cs.broker.client.clone();

    // Clusters: each cluster sees the two others, labelled with their ids.
    for m in &cs.members {
        let mc = m.client.clone();
        eventually_within(SYNC_BUDGET, "remote clusters copied", || {
            let mc = mc.clone();
            async move {
                let l = Api::<Cluster>::namespaced(mc, "ferry-system")
                    .list(&ListParams::default())
                    .await
                    .unwrap();
                let mut ids: Vec<String> =
                    l.items.iter().map(|c| c.spec.cluster_id.clone()).collect();
                ids.sort();
                ids == v(&["a", "b", "c"])
                    && l.items
                        .iter()
                        .all(|c| c.labels().get("ferry.dev/cluster") == Some(&c.spec.cluster_id))
            }
        })
        .await;
    }

    // Export from a: a ClusterSetIP service with a ready backend.
    export_nginx_from_a(&a, &b, "nginx-abcde").await;

    eventually_within(SYNC_BUDGET, "broker has a's export", || async {
        get::<ServiceImport>(&broker, "ferry-broker", "nginx-web-a")
            .await
            .is_some()
            && slice_addresses(&broker, "ferry-broker", "nginx-web-a").await == nginx_of_a(true)
    })
    .await;
    let bi: ServiceImport = get(&broker, "ferry-broker", "nginx-web-a").await.unwrap();
    assert_eq!(bi.spec.ips, v(&["100.65.0.10"]));
    let bs: EndpointSlice = get(&broker, "ferry-broker", "nginx-web-a").await.unwrap();
    assert_eq!(
        bs.labels()["multicluster.kubernetes.io/service-name"],
        "nginx"
    );
    assert_eq!(
        bs.labels()["multicluster.kubernetes.io/source-cluster"],
        "a"
    );

    for (name, cl) in [("a", &a), ("b", &b)] {
        eventually_within(SYNC_BUDGET, &format!("import in {name}"), || async {
            import_clusters(cl, "web", "nginx").await == Some(v(&["a"]))
                && slice_addresses(cl, "web", "nginx-a").await == nginx_of_a(true)
        })
        .await;
    }
    assert!(
        get::<ServiceImport>(&c, "web", "nginx").await.is_none(),
        "no namespace in c"
    );
    eventually_within(SYNC_BUDGET, "a's export conditions", || async {
        export_condition(&a, "web", "nginx", "Valid").await == Some(("True".into(), "Valid".into()))
            && export_condition(&a, "web", "nginx", "Ready").await
                == Some(("True".into(), "Exported".into()))
            && export_condition(&a, "web", "nginx", "Conflict").await
                == Some(("False".into(), "NoConflicts".into()))
    })
    .await;

    // The namespace appears in c: so does the import.
    namespace(&c, "web").await;
    eventually_within(
        SYNC_BUDGET,
        "import in c once the namespace exists",
        || async { import_clusters(&c, "web", "nginx").await == Some(v(&["a"])) },
    )
    .await;

    // An endpoint change in a flows to b.
    set_nginx_backend_ready(&a, "nginx-abcde", false).await;
    eventually_within(SYNC_BUDGET, "readiness change reaches b", || async {
        slice_addresses(&b, "web", "nginx-a").await == nginx_of_a(false)
    })
    .await;

    // The same service exported by b too (compatible): both in every import.
    service(
        &b,
        "web",
        "nginx",
        json!({"clusterIP": "100.67.0.10", "ports": [{"name": "http", "port": 80}]}),
    )
    .await;
    export(&b, "web", "nginx").await;
    for cl in [&a, &b, &c] {
        eventually_within(SYNC_BUDGET, "import from a and b", || async {
            import_clusters(cl, "web", "nginx").await == Some(v(&["a", "b"]))
                && slice_addresses(cl, "web", "nginx-b").await
                    == Some(vec![("100.67.0.10".into(), false, None)])
                && slice_addresses(cl, "web", "nginx-a").await.is_some()
        })
        .await;
    }

    // Conflict: b's port "http" becomes 8080. a is older and wins.
    Api::<Service>::namespaced(b.clone(), "web")
        .patch(
            "nginx",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"ports": [{"name": "http", "port": 8080}]}})),
        )
        .await
        .unwrap();
    eventually_within(SYNC_BUDGET, "b's export conflicts", || async {
        export_condition(&b, "web", "nginx", "Conflict").await
            == Some(("True".into(), "PortConflict".into()))
    })
    .await;
    // Every export of a conflicted service reports it (KEP-1645, mcs-api
    // conformance), the older one too.
    eventually_within(SYNC_BUDGET, "a's export reports the conflict", || async {
        export_condition(&a, "web", "nginx", "Conflict").await
            == Some(("True".into(), "PortConflict".into()))
    })
    .await;
    let imp: ServiceImport = get(&c, "web", "nginx").await.unwrap();
    assert_eq!(imp.spec.ports.len(), 1);
    assert_eq!(imp.spec.ports[0].port, 80, "oldest export's port wins");

    // Invalid exports.
    service(
        &a,
        "web",
        "ext",
        json!({"type": "ExternalName", "externalName": "example.org"}),
    )
    .await;
    export(&a, "web", "ext").await;
    export(&a, "web", "ghost").await;
    eventually_within(SYNC_BUDGET, "invalid exports flagged", || async {
        export_condition(&a, "web", "ext", "Valid").await
            == Some(("False".into(), "InvalidServiceType".into()))
            && export_condition(&a, "web", "ghost", "Valid").await
                == Some(("False".into(), "NoService".into()))
    })
    .await;
    assert!(
        get::<ServiceImport>(&broker, "ferry-broker", "ext-web-a")
            .await
            .is_none()
    );

    // Headless: ready pod addresses with hostnames.
    service(
        &a,
        "web",
        "db",
        json!({"clusterIP": "None", "ports": [{"name": "http", "port": 8080}]}),
    )
    .await;
    slice(&a, "web", "db", "db-xyz", json!([
        {"addresses": ["100.64.2.1"], "conditions": {"ready": true}, "targetRef": {"kind": "Pod", "name": "db-0"}},
        {"addresses": ["100.64.2.2"], "conditions": {"ready": false}, "hostname": "db-1"},
    ])).await;
    export(&a, "web", "db").await;
    eventually_within(SYNC_BUDGET, "headless import in b", || async {
        let i: Option<ServiceImport> = get(&b, "web", "db").await;
        i.is_some_and(|i| i.spec.type_ == ferry_api::ServiceImportType::Headless)
            && slice_addresses(&b, "web", "db-a").await
                == Some(vec![("100.64.2.1".into(), true, Some("db-0".into()))])
    })
    .await;

    // Gateway endpoints: a's is published and copied; removal cleans up.
    create(Api::<Endpoint>::namespaced(a.clone(), "ferry-system"), json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "Endpoint",
        "metadata": {"name": "a-gw1", "namespace": "ferry-system", "labels": {"ferry.dev/cluster": "a"}},
        "spec": {"clusterId": "a", "hostname": "gw1", "cableDriver": "wireguard", "privateIp": "192.0.2.1", "subnets": ["100.64.0.0/16"]},
    })).await;
    eventually_within(SYNC_BUDGET, "endpoint copied to c", || async {
        get::<Endpoint>(&c, "ferry-system", "a-gw1").await.is_some()
    })
    .await;
    Api::<Endpoint>::namespaced(a.clone(), "ferry-system")
        .delete("a-gw1", &DeleteParams::default())
        .await
        .unwrap();
    eventually_within(SYNC_BUDGET, "endpoint gone everywhere", || async {
        get::<Endpoint>(&c, "ferry-system", "a-gw1").await.is_none()
            && get::<Endpoint>(&broker, "ferry-broker", "a-gw1")
                .await
                .is_none()
    })
    .await;

    // Unexport from a: only b remains; then b unexports: gone everywhere.
    unexport(&a, "web", "nginx").await;
    eventually_within(SYNC_BUDGET, "a's export removed", || async {
        get::<ServiceImport>(&broker, "ferry-broker", "nginx-web-a")
            .await
            .is_none()
            && get::<EndpointSlice>(&broker, "ferry-broker", "nginx-web-a")
                .await
                .is_none()
            && import_clusters(&c, "web", "nginx").await == Some(v(&["b"]))
            && get::<EndpointSlice>(&c, "web", "nginx-a").await.is_none()
    })
    .await;
    Api::<Service>::namespaced(b.clone(), "web")
        .delete("nginx", &DeleteParams::default())
        .await
        .unwrap();
    eventually_within(
        SYNC_BUDGET,
        "service deletion withdraws b's export",
        || async {
            get::<ServiceImport>(&broker, "ferry-broker", "nginx-web-b")
                .await
                .is_none()
                && export_condition(&b, "web", "nginx", "Valid").await
                    == Some(("False".into(), "NoService".into()))
        },
    )
    .await;
    unexport(&b, "web", "nginx").await;
    for cl in [&a, &b, &c] {
        eventually_within(SYNC_BUDGET, "import gone", || async {
            get::<ServiceImport>(cl, "web", "nginx").await.is_none()
                && get::<EndpointSlice>(cl, "web", "nginx-b").await.is_none()
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_tokens_cannot_touch_other_clusters_objects() {
    let cs = clusterset_with_agents(&["a", "b"]).await;
    let broker = cs.broker.client.clone();
    eventually_within(SYNC_BUDGET, "both clusters on the broker", || async {
        get::<Cluster>(&broker, "ferry-broker", "a").await.is_some()
            && get::<Cluster>(&broker, "ferry-broker", "b").await.is_some()
    })
    .await;
    let (cfg_a, info_a) = ferry_agent::load_config(&cs.members[0].client, "ferry-system")
        .await
        .unwrap();
    assert_eq!(cfg_a.cluster_id, "a");
    let as_a = ferry_kube::broker_client(&info_a, &info_a.token)
        .await
        .unwrap();
    let clusters: Api<Cluster> = Api::namespaced(as_a.clone(), "ferry-broker");
    let before: Cluster = get(&broker, "ferry-broker", "b").await.unwrap();

    let forbidden =
        |r: Result<_, kube::Error>| matches!(r, Err(kube::Error::Api(s)) if s.code == 403);
    let mut changed = before.clone();
    changed.spec.cluster_cidrs = vec!["10.0.0.0/8".parse().unwrap()];
    changed.metadata.managed_fields = None;
    assert!(forbidden(
        clusters
            .replace("b", &PostParams::default(), &changed)
            .await
            .map(|_| ())
    ));
    assert!(forbidden(
        clusters
            .patch(
                "b",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {"ferry.dev/cluster": "a"}}}))
            )
            .await
            .map(|_| ())
    ));
    assert!(forbidden(
        clusters
            .delete("b", &DeleteParams::default())
            .await
            .map(|_| ())
    ));
    let mut fake: Cluster = serde_json::from_value(json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "Cluster",
        "metadata": {"name": "evil", "labels": {"ferry.dev/cluster": "b"}},
        "spec": {"clusterId": "b", "clusterCidrs": [], "serviceCidrs": []}}))
    .unwrap();
    assert!(forbidden(
        clusters
            .create(&PostParams::default(), &fake)
            .await
            .map(|_| ())
    ));
    fake.metadata.labels = None;
    assert!(forbidden(
        clusters
            .create(&PostParams::default(), &fake)
            .await
            .map(|_| ())
    ));
    // Its own objects it may write.
    assert!(
        clusters
            .patch(
                "a",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"annotations": {"x": "y"}}}))
            )
            .await
            .is_ok()
    );

    let after: Cluster = get(&broker, "ferry-broker", "b").await.unwrap();
    assert_eq!(
        after.metadata.resource_version, before.metadata.resource_version,
        "nothing changed"
    );
    assert!(
        get::<Cluster>(&broker, "ferry-broker", "evil")
            .await
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn broker_restart_and_agent_restart() {
    let mut cs = clusterset_with_agents(&["a", "b"]).await;
    let (a, b) = (cs.members[0].client.clone(), cs.members[1].client.clone());
    export_nginx_from_a(&a, &b, "nginx-1").await;
    eventually_within(SYNC_BUDGET, "import in b", || async {
        slice_addresses(&b, "web", "nginx-a").await == nginx_of_a(true)
    })
    .await;

    // Broker goes away: b keeps its last view; changes in a wait.
    cs.broker.stop().await;
    set_nginx_backend_ready(&a, "nginx-1", false).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        import_clusters(&b, "web", "nginx").await,
        Some(v(&["a"])),
        "last state kept"
    );
    assert_eq!(
        slice_addresses(&b, "web", "nginx-a").await,
        nginx_of_a(true)
    );
    cs.broker.restart().await;
    eventually_within(
        SYNC_BUDGET,
        "change flows after the broker returns",
        || async { slice_addresses(&b, "web", "nginx-a").await == nginx_of_a(false) },
    )
    .await;

    // Agent restart: state survives, nothing is rewritten, new changes flow.
    let broker = admin_client(&cs.broker.kubeconfig).await;
    let rv_before = get::<ServiceImport>(&broker, "ferry-broker", "nginx-web-a")
        .await
        .unwrap()
        .metadata
        .resource_version;
    cs.stop_agent(0).await;
    set_nginx_backend_ready(&a, "nginx-1", true).await;
    cs.start_agent(0).await;
    eventually_within(
        SYNC_BUDGET,
        "change made while the agent was down flows",
        || async { slice_addresses(&b, "web", "nginx-a").await == nginx_of_a(true) },
    )
    .await;
    let rv_after = get::<ServiceImport>(&broker, "ferry-broker", "nginx-web-a")
        .await
        .unwrap()
        .metadata
        .resource_version;
    assert_eq!(
        rv_before, rv_after,
        "the unchanged export was not rewritten"
    );

    // The importing agent restarts: its unchanged import (spec and status)
    // is not rewritten either; a change after the restart still flows.
    let import_rv = || async {
        get::<ServiceImport>(&b, "web", "nginx")
            .await
            .and_then(|si| si.metadata.resource_version)
    };
    let before = import_rv().await;
    assert!(before.is_some());
    cs.stop_agent(1).await;
    cs.start_agent(1).await;
    set_nginx_backend_ready(&a, "nginx-1", false).await;
    eventually_within(
        SYNC_BUDGET,
        "change made after b's agent restarted flows",
        || async { slice_addresses(&b, "web", "nginx-a").await == nginx_of_a(false) },
    )
    .await;
    assert_eq!(
        import_rv().await,
        before,
        "the unchanged import was not rewritten"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_broker_token_is_used_and_kept_in_the_secret() {
    use ferry_agent::token::{self, Renewer, TokenFile};
    let cs = clusterset_with_agents(&["a"]).await;
    let a = cs.members[0].client.clone();
    let (_, info) = ferry_agent::load_config(&a, "ferry-system").await.unwrap();
    // ferry apiserver's tokens do not expire: nothing to renew.
    let (_, renewer) = token::broker_client(&info, "a", None).await.unwrap();
    assert!(renewer.is_none());

    // Renewal itself, as the agent does it before a Kubernetes token expires.
    let file = TokenFile::create(&info.token).unwrap();
    let path = file.path().to_path_buf();
    let from_file =
        ferry_kube::broker_client_with_token_file(&info, &path, ferry_kube::ManagedFields::Read)
            .await
            .unwrap();
    let renewer = Renewer::new(
        info.clone(),
        "a",
        file,
        Some((a.clone(), "ferry-system".into())),
    );
    assert_eq!(
        renewer.renew().await.unwrap(),
        None,
        "opaque, like its parent"
    );
    let (_, after) = ferry_agent::load_config(&a, "ferry-system").await.unwrap();
    assert_ne!(after.token, info.token, "the Secret holds the new token");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), after.token);
    // The new token is this cluster's: it reads the broker and may write
    // only its own objects.
    let renewed = ferry_kube::broker_client(&after, &after.token)
        .await
        .unwrap();
    let clusters: Api<Cluster> = Api::namespaced(renewed, "ferry-broker");
    let own = clusters.get("a").await.unwrap();
    let mut theirs = own.clone();
    theirs.metadata = kube::api::ObjectMeta {
        name: Some("z".into()),
        labels: Some([("ferry.dev/cluster".to_string(), "z".to_string())].into()),
        ..Default::default()
    };
    let denied = clusters.create(&PostParams::default(), &theirs).await;
    assert!(matches!(denied, Err(kube::Error::Api(e)) if e.code == 403));
    Api::<Cluster>::namespaced(from_file, "ferry-broker")
        .get("a")
        .await
        .unwrap();
    drop(renewer);
    assert!(!path.exists(), "the token file goes with the renewer");
}

/// A broker that refuses writes past a few in flight (429 with Retry-After,
/// as kube-apiserver past its in-flight limit or API Priority and Fairness)
/// slows the agents down but loses nothing: every export still arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_overloaded_broker_answers_429_and_every_export_still_arrives() {
    const SERVICES: usize = 120;
    let mut cs = clusterset_with_agents(&["a", "b"]).await;
    cs.broker
        .restart_with(|c| c.max_mutating_inflight = 4)
        .await;
    let (a, b) = (cs.members[0].client.clone(), cs.members[1].client.clone());
    // Everything exists before a's agent starts, so its initial sync sends
    // as many writes at once as it may.
    cs.stop_agent(0).await;
    namespace(&a, "bulk").await;
    namespace(&b, "bulk").await;
    for i in 0..SERVICES {
        let name = format!("svc-{i}");
        service(
            &a,
            "bulk",
            &name,
            json!({"clusterIP": format!("100.65.1.{}", i + 1), "ports": [{"name": "http", "port": 80}]}),
        )
        .await;
        slice(
            &a,
            "bulk",
            &name,
            &format!("{name}-1"),
            json!([{"addresses": [format!("100.64.2.{}", i + 1)], "conditions": {"ready": true}}]),
        )
        .await;
        export(&a, "bulk", &name).await;
    }
    cs.start_agent(0).await;
    let imports: Api<ServiceImport> = Api::namespaced(b.clone(), "bulk");
    eventually_within(SYNC_BUDGET, "every import in b with cluster a", || async {
        imports.list(&ListParams::default()).await.is_ok_and(|l| {
            l.items
                .iter()
                .filter(|i| {
                    i.status
                        .as_ref()
                        .is_some_and(|s| s.clusters.iter().any(|c| c.cluster == "a"))
                })
                .count()
                == SERVICES
        })
    })
    .await;
    // The test is only worth something if the broker did refuse writes.
    let req = http::Request::get("/metrics").body(Vec::new()).unwrap();
    let metrics = cs.broker.client.request_text(req).await.unwrap();
    let refused: f64 = metrics
        .lines()
        .filter(|l| l.contains("code=\"429\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(refused > 0.0, "the broker never answered 429:\n{metrics}");
    eprintln!("the broker answered 429 to {refused} writes");
    cs.stop_agents().await;
}

/// `ferry export --use-clusterset-ip` (annotation `ferry.dev/clusterset-ip:
/// "true"`) gives the service a clusterset IP in a clusterset whose default
/// is off (no `deploy-broker --enable-clusterset-ip`), as Submariner's
/// annotation does; `"false"` takes it away again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_export_that_asks_for_a_clusterset_ip_gets_one_when_the_default_is_off() {
    let cs = clusterset_with_agents(&["a", "b"]).await;
    let (a, b) = (cs.members[0].client.clone(), cs.members[1].client.clone());
    nginx_ready_in_a(&a, &b, "nginx-abcde").await;
    let ta = ferry_ctl::target::Target::connect(&cs.members[0].spec())
        .await
        .unwrap();
    let wait = Duration::from_secs(5);
    ferry_ctl::export::export(&ta, "web", "nginx", wait, Some(true))
        .await
        .unwrap();

    let ips = |c: Client| async move {
        get::<ServiceImport>(&c, "web", "nginx")
            .await
            .map(|i| i.spec.ips)
            .unwrap_or_default()
    };
    eventually_within(SYNC_BUDGET, "b's import has a clusterset IP", || async {
        ips(b.clone()).await.len() == 1
    })
    .await;
    let vip = ips(b.clone()).await.remove(0);
    assert!(
        vip.parse::<std::net::Ipv4Addr>().is_ok(),
        "an IPv4 VIP: {vip}"
    );

    ferry_ctl::export::export(&ta, "web", "nginx", wait, Some(false))
        .await
        .unwrap();
    eventually_within(SYNC_BUDGET, "opted out: no clusterset IP", || async {
        ips(b.clone()).await.is_empty()
    })
    .await;
}
