//! The seed's control-plane flow (issue #5) across two sandbox clusters, with
//! the real `ferry` binary and kubectl as a user would run them:
//! `ferry deploy-broker` on the first cluster, `ferry join` for both (their
//! agents and DNS then run as sandbox pods of image `ferry`), the example
//! nginx exported from the second with a ServiceExport, then
//! - on the broker, `kubectl -n ferry-broker get serviceimport` and
//!   `get endpointslice` list the second cluster's export with its ClusterIP;
//! - the first cluster has ServiceImport `nginx` in `nginx-test` (type
//!   ClusterSetIP, the exporting cluster in its status) and the MCS
//!   EndpointSlice carrying that ClusterIP, ready;
//! - the ServiceExport is Valid, Ready and without conflict;
//! - the sandbox cluster DNS answers nginx.nginx-test.svc.clusterset.local
//!   from a pod through `ferry dns` (in the exporting cluster, whose own
//!   export needs no gateway);
//! - unexporting removes it from the broker and the first cluster.
//!
//! The gateway and route-agent DaemonSets are not looked at: nothing here
//! needs packets between clusters. Root only (skipped otherwise); the
//! clusters are deleted on drop, even when an assertion fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use ferry_e2e::nginx::{EXPORT, NAMESPACE, NGINX};
use ferry_e2e::tempfile_dir::Dir;
use ferry_e2e::{Cluster, ferry, netns, usable, wait_for};
use serde_json::Value;

/// Generous: two debug-built agents, DNS and the sandbox share the machine.
const WAIT: Duration = Duration::from_secs(90);

/// The row of a `kubectl get` table whose first column is `name`.
fn row(table: &str, name: &str) -> Option<Vec<String>> {
    table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .map(|l| l.split_whitespace().map(str::to_string).collect())
}

fn json(c: &Cluster, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&c.kubectl(&all).unwrap()).unwrap()
}

/// Whether `kubectl get` of one object answers NotFound.
fn absent(c: &Cluster, args: &[&str]) -> bool {
    let out = ferry_e2e::output(
        std::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&c.kubeconfig)
            .arg("get")
            .args(args),
    );
    !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("NotFound")
}

#[test]
fn deploy_broker_join_export_import_dns_unexport() {
    if !usable() {
        return;
    }
    // Held until the clusters are gone (dropped last: declared first).
    let _lock = ferry_sandbox::harness::lock(false).unwrap();
    let tag = std::process::id() % 10_000;
    let a = ferry_e2e::create(&format!("e5a{tag}"), 2);
    let b = ferry_e2e::create(&format!("e5b{tag}"), 2);
    let dir = Dir::new(&format!("e5seed{tag}"));
    let info = dir.path().join("broker-info.ferry");
    let info = info.to_str().unwrap();

    ferry(&[
        "deploy-broker",
        "--kubeconfig",
        a.kubeconfig.to_str().unwrap(),
        "-o",
        info,
    ]);
    for c in [&a, &b] {
        ferry(&[
            "join",
            info,
            "--clusterid",
            &c.name,
            "--kubeconfig",
            c.kubeconfig.to_str().unwrap(),
            "--clustercidr",
            &c.pod_cidr,
            "--servicecidr",
            &c.service_cidr,
        ]);
    }
    // A second join changes nothing and succeeds.
    ferry(&[
        "join",
        info,
        "--clusterid",
        &b.name,
        "--kubeconfig",
        b.kubeconfig.to_str().unwrap(),
        "--clustercidr",
        &b.pod_cidr,
        "--servicecidr",
        &b.service_cidr,
    ]);

    // Both clusters on the broker, each with its CIDRs.
    wait_for(WAIT, "both Clusters on the broker", || {
        let list = json(&a, &["-n", "ferry-broker", "get", "clusters.ferry.dev"]);
        let items = list["items"].as_array().cloned().unwrap_or_default();
        let has = |c: &Cluster| {
            items.iter().any(|i| {
                i["spec"]["clusterId"] == c.name.as_str()
                    && i["spec"]["clusterCidrs"][0] == c.pod_cidr.as_str()
                    && i["spec"]["serviceCidrs"][0] == c.service_cidr.as_str()
            })
        };
        (has(&a) && has(&b)).then_some(())
    });

    a.apply(NAMESPACE).unwrap();
    b.apply(NGINX).unwrap();
    b.apply(EXPORT).unwrap();
    let cip = wait_for(WAIT, "nginx's ClusterIP in the second cluster", || {
        let ip = b.service_ip("nginx-test", "nginx").unwrap();
        (!ip.is_empty()).then_some(ip)
    });
    let exported = format!("nginx-nginx-test-{}", b.name);

    // The broker, as in the seed: NAME TYPE IP AGE.
    let si = wait_for(WAIT, "the export's ServiceImport on the broker", || {
        let table = a
            .kubectl(&["-n", "ferry-broker", "get", "serviceimport"])
            .unwrap();
        row(&table, &exported)
    });
    assert_eq!(si[1], "ClusterSetIP", "broker ServiceImport row: {si:?}");
    assert_eq!(
        si[2],
        format!("[\"{cip}\"]"),
        "broker ServiceImport row: {si:?}"
    );
    let es = wait_for(
        WAIT,
        "the export's ready EndpointSlice on the broker",
        || {
            let table = a
                .kubectl(&["-n", "ferry-broker", "get", "endpointslice"])
                .unwrap();
            row(&table, &exported).filter(|r| r.get(3) == Some(&cip))
        },
    );
    assert_eq!(es[1], "IPv4", "broker EndpointSlice row: {es:?}");
    assert_eq!(es[2], "8080", "broker EndpointSlice row: {es:?}");
    let slice = json(
        &a,
        &["-n", "ferry-broker", "get", "endpointslice", &exported],
    );
    let labels = &slice["metadata"]["labels"];
    assert_eq!(labels["multicluster.kubernetes.io/service-name"], "nginx");
    assert_eq!(
        labels["multicluster.kubernetes.io/source-cluster"],
        b.name.as_str()
    );

    // The first cluster imports it.
    let import = wait_for(WAIT, "ServiceImport nginx in the first cluster", || {
        let table = a
            .kubectl(&["-n", "nginx-test", "get", "serviceimport"])
            .unwrap();
        row(&table, "nginx")?;
        let si = json(&a, &["-n", "nginx-test", "get", "serviceimport", "nginx"]);
        (si["status"]["clusters"][0]["cluster"] == b.name.as_str()).then_some(si)
    });
    assert_eq!(import["spec"]["type"], "ClusterSetIP", "{import:#}");
    assert_eq!(import["spec"]["ports"][0]["port"], 8080, "{import:#}");
    assert_eq!(import["spec"]["ports"][0]["protocol"], "TCP", "{import:#}");
    assert_eq!(
        import["status"]["clusters"].as_array().map(Vec::len),
        Some(1),
        "{import:#}"
    );
    // ferry allocates no clusterset VIP: the import's address is each
    // exporting cluster's own ClusterIP, in its MCS EndpointSlice.
    let local_slice = format!("nginx-{}", b.name);
    wait_for(
        WAIT,
        "the imported EndpointSlice in the first cluster",
        || {
            let s = json(
                &a,
                &[
                    "-n",
                    "nginx-test",
                    "get",
                    "endpointslice",
                    "-l",
                    "multicluster.kubernetes.io/service-name=nginx",
                ],
            );
            let item = s["items"]
                .as_array()?
                .iter()
                .find(|i| i["metadata"]["name"] == local_slice.as_str())?
                .clone();
            (item["endpoints"][0]["addresses"][0] == cip.as_str()
                && item["endpoints"][0]["conditions"]["ready"] == true
                && item["metadata"]["labels"]["multicluster.kubernetes.io/source-cluster"]
                    == b.name.as_str())
            .then_some(())
        },
    );

    // The ServiceExport's conditions.
    wait_for(
        WAIT,
        "the ServiceExport to be Valid, Ready, conflict-free",
        || {
            let e = json(&b, &["-n", "nginx-test", "get", "serviceexport", "nginx"]);
            let status = |t: &str| {
                e["status"]["conditions"]
                    .as_array()?
                    .iter()
                    .find(|c| c["type"] == t)
                    .and_then(|c| c["status"].as_str().map(str::to_string))
            };
            (status("Valid").as_deref() == Some("True")
                && status("Ready").as_deref() == Some("True")
                && status("Conflict").as_deref() == Some("False"))
            .then_some(())
        },
    );

    // DNS: the sandbox cluster DNS forwards clusterset.local to ferry dns.
    let pod = b.pod("e5dig", 1).unwrap();
    let name = "nginx.nginx-test.svc.clusterset.local";
    wait_for(WAIT, "the clusterset name to resolve in a pod", || {
        let out = netns(&pod.netns, &["dig", "+short", "+time=1", "+tries=1", name]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines().any(|l| l.trim() == cip).then_some(())
    });

    // Unexport: gone from the broker and the first cluster.
    b.kubectl(&["-n", "nginx-test", "delete", "serviceexport", "nginx"])
        .unwrap();
    wait_for(
        WAIT,
        "the export to leave the broker and the first cluster",
        || {
            (absent(&a, &["-n", "ferry-broker", "serviceimport", &exported])
                && absent(&a, &["-n", "ferry-broker", "endpointslice", &exported])
                && absent(&a, &["-n", "nginx-test", "serviceimport", "nginx"])
                && absent(&a, &["-n", "nginx-test", "endpointslice", &local_slice]))
            .then_some(())
        },
    );
}
