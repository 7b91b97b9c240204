//! The Required cases of the mcs-api conformance suite
//! (kubernetes-sigs/mcs-api `conformance/`), and some Optional ones,
//! re-expressed in our own words against two sandbox clusters joined
//! through a broker with ClusterSet IPs on. Each case runs on its own
//! service in namespace `conf`; a failing case does not stop the others:
//! the test prints one line per case (`PASS`/`FAIL`) and fails if any did.
//!
//! Root only (skipped otherwise); the clusters are deleted on drop.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use ferry_e2e::{Broker, Cluster, Clusterset, Pod, netns, usable, wait_for};
use serde_json::Value;

const NS: &str = "conf";
const WAIT: Duration = Duration::from_secs(60);

const HELLO: &str = "apiVersion: v1
kind: Namespace
metadata:
  name: conf
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: hello
  namespace: conf
spec:
  replicas: 1
  selector:
    matchLabels:
      app: hello
  template:
    metadata:
      labels:
        app: hello
    spec:
      containers:
        - name: http-echo
          image: ferry
          args: [\"tools\", \"http-echo\", \"--port\", \"8080\"]
          readinessProbe:
            tcpSocket:
              port: 8080
            periodSeconds: 1
";

/// A Service `name` in `conf` selecting the hello pods; `spec` is extra
/// spec lines (two-space indented under `spec:`), `ports` its port lines.
fn service(c: &Cluster, name: &str, spec: &str, ports: &[(&str, &str, u16)]) {
    let mut yaml = format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: {NS}\n  \
         labels:\n    local-label: \"true\"\n  annotations:\n    local-annotation: \"true\"\n\
         spec:\n  selector:\n    app: hello\n{spec}  ports:\n"
    );
    for (pname, proto, port) in ports {
        yaml += &format!(
            "    - name: {pname}\n      protocol: {proto}\n      port: {port}\n      targetPort: 8080\n"
        );
    }
    c.apply(&yaml).unwrap();
}

const HTTP: &[(&str, &str, u16)] = &[("http", "TCP", 8080)];

/// Exports `name` from `c` (v1beta1), with `spec` lines under `spec:`.
fn export(c: &Cluster, name: &str, spec: &str) {
    c.apply(&format!(
        "apiVersion: multicluster.x-k8s.io/v1beta1\nkind: ServiceExport\nmetadata:\n  \
         name: {name}\n  namespace: {NS}\nspec:\n{spec}"
    ))
    .unwrap();
}

fn unexport(c: &Cluster, name: &str) {
    c.kubectl(&["-n", NS, "delete", "serviceexport", name])
        .unwrap();
}

fn get(c: &Cluster, kind: &str, name: &str) -> Option<Value> {
    let out = c
        .kubectl(&["-n", NS, "get", kind, name, "-o", "json"])
        .ok()?;
    serde_json::from_str(&out).ok()
}

/// The import of `name` in `c` once `check` holds for it.
fn import_where(c: &Cluster, name: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    wait_for(
        WAIT,
        &format!("{}: ServiceImport {name} {what}", c.name),
        || get(c, "serviceimport", name).filter(|si| check(si)),
    )
}

fn import(c: &Cluster, name: &str) -> Value {
    import_where(c, name, "exists", |_| true)
}

fn no_import(c: &Cluster, name: &str) {
    wait_for(
        WAIT,
        &format!("{}: no ServiceImport {name}", c.name),
        || get(c, "serviceimport", name).is_none().then_some(()),
    );
}

/// The status of condition `type_` on `c`'s export of `name`, once it is `want`.
fn export_condition(c: &Cluster, name: &str, type_: &str, want: &str) {
    wait_for(
        WAIT,
        &format!("{}: ServiceExport {name} {type_}={want}", c.name),
        || {
            let se = get(c, "serviceexport", name)?;
            se["status"]["conditions"]
                .as_array()?
                .iter()
                .any(|k| k["type"] == type_ && k["status"] == want)
                .then_some(())
        },
    );
}

fn clusters_of(si: &Value) -> Vec<String> {
    si["status"]["clusters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["cluster"].as_str().map(str::to_string))
        .collect()
}

/// (name, protocol, port) of the import's ports, sorted.
fn ports_of(si: &Value) -> Vec<(String, String, u64)> {
    let mut p: Vec<_> = si["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or("").to_string(),
                p["protocol"].as_str().unwrap_or("TCP").to_string(),
                p["port"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    p.sort();
    p
}

fn want_ports(ports: &[(&str, &str, u16)]) -> Vec<(String, String, u64)> {
    let mut p: Vec<_> = ports
        .iter()
        .map(|(n, pr, po)| (n.to_string(), pr.to_string(), u64::from(*po)))
        .collect();
    p.sort();
    p
}

/// The answer section of `dig +short name` from `pod`.
fn dig(pod: &Pod, name: &str, qtype: &str) -> String {
    let out = netns(
        &pod.netns,
        &["dig", "+short", "+time=1", "+tries=1", "-t", qtype, name],
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

struct Ctx<'a> {
    c0: &'a Cluster,
    c1: &'a Cluster,
    /// A client pod in each cluster.
    pods: [Pod; 2],
}

impl Ctx<'_> {
    fn both(&self) -> [&Cluster; 2] {
        [self.c0, self.c1]
    }
}

/// Required: a ServiceImport exists as long as one cluster exports.
fn import_lives_while_any_cluster_exports(t: &Ctx<'_>) {
    let n = "r-lifetime";
    for c in t.both() {
        service(c, n, "", HTTP);
    }
    export(t.c0, n, "");
    import(t.c0, n);
    export(t.c1, n, "");
    import_where(t.c0, n, "from both clusters", |si| {
        clusters_of(si).len() == 2
    });
    unexport(t.c0, n);
    let si = import_where(t.c0, n, "from the second cluster only", |si| {
        clusters_of(si) == [t.c1.name.clone()]
    });
    assert_eq!(si["spec"]["type"], "ClusterSetIP");
    unexport(t.c1, n);
    no_import(t.c0, n);
}

/// Required: a ClusterIP export is imported as ClusterSetIP in every
/// cluster (the exporting one too); unexporting removes it everywhere.
fn clusterip_export_is_imported_everywhere(t: &Ctx<'_>) {
    let n = "r-clusterip";
    service(t.c0, n, "", HTTP);
    export(t.c0, n, "");
    export_condition(t.c0, n, "Valid", "True");
    for c in t.both() {
        assert_eq!(import(c, n)["spec"]["type"], "ClusterSetIP", "{}", c.name);
    }
    unexport(t.c0, n);
    for c in t.both() {
        no_import(c, n);
    }
}

/// The service of the spec-field cases, exported from cluster 0; its
/// import in cluster 1 once it carries a clusterset IP.
fn spec_fields_import(t: &Ctx<'_>) -> Value {
    let n = "r-fields";
    if get(t.c0, "serviceexport", n).is_none() {
        service(
            t.c0,
            n,
            "  sessionAffinity: ClientIP\n  sessionAffinityConfig:\n    clientIP:\n      \
             timeoutSeconds: 300\n  internalTrafficPolicy: Cluster\n  trafficDistribution: PreferClose\n",
            &[("http", "TCP", 8080), ("dns", "UDP", 53)],
        );
        export(t.c0, n, "");
    }
    import_where(t.c1, n, "with a clusterset IP", |si| {
        si["spec"]["ips"][0].is_string()
    })
}

/// Required: session affinity and its config as the service's.
fn import_has_the_session_affinity(t: &Ctx<'_>) {
    let si = spec_fields_import(t);
    assert_eq!(si["spec"]["sessionAffinity"], "ClientIP", "{si}");
    assert_eq!(
        si["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"], 300,
        "{si}"
    );
}

/// Required: internalTrafficPolicy as the service's.
fn import_has_the_internal_traffic_policy(t: &Ctx<'_>) {
    let si = spec_fields_import(t);
    assert_eq!(si["spec"]["internalTrafficPolicy"], "Cluster", "{si}");
}

/// Required: trafficDistribution as the service's.
fn import_has_the_traffic_distribution(t: &Ctx<'_>) {
    let si = spec_fields_import(t);
    assert_eq!(si["spec"]["trafficDistribution"], "PreferClose", "{si}");
}

/// Required: one valid IP per IP family, in the families' order.
fn import_has_one_ip_per_family(t: &Ctx<'_>) {
    let si = spec_fields_import(t);
    let ips = si["spec"]["ips"].as_array().unwrap();
    let families = si["spec"]["ipFamilies"].as_array().unwrap();
    assert!(!ips.is_empty(), "{si}");
    assert_eq!(ips.len(), families.len(), "{si}");
    for (ip, family) in ips.iter().zip(families) {
        let ip: std::net::IpAddr = ip.as_str().unwrap().parse().unwrap();
        let want = if ip.is_ipv4() { "IPv4" } else { "IPv6" };
        assert_eq!(family, want, "{si}");
    }
}

/// Required: the ports as the service's.
fn import_has_the_ports(t: &Ctx<'_>) {
    let si = spec_fields_import(t);
    assert_eq!(
        ports_of(&si),
        want_ports(&[("http", "TCP", 8080), ("dns", "UDP", 53)]),
        "{si}"
    );
}

/// Exports `n` from cluster 0, then (once imported) from cluster 1.
fn export_in_order(t: &Ctx<'_>, n: &str) {
    export(t.c0, n, "");
    import(t.c0, n);
    export(t.c1, n, "");
}

/// Required: ports of two clusters are merged (their union), and both
/// exports report the conflict.
fn ports_of_two_clusters_are_merged(t: &Ctx<'_>) {
    let n = "r-union";
    service(t.c0, n, "", HTTP);
    service(t.c1, n, "", &[("http", "TCP", 8080), ("stcp", "SCTP", 142)]);
    export_in_order(t, n);
    for c in t.both() {
        export_condition(c, n, "Conflict", "True");
    }
    import_where(t.c0, n, "with the union of the ports", |si| {
        ports_of(si) == want_ports(&[("http", "TCP", 8080), ("stcp", "SCTP", 142)])
    });
}

/// Required: a port conflict resolves to the oldest export's port, and
/// both exports report it.
fn conflicting_ports_resolve_to_the_oldest(t: &Ctx<'_>) {
    let n = "r-portconflict";
    service(t.c0, n, "", HTTP);
    service(t.c1, n, "", &[("http", "TCP", 8081)]);
    export_in_order(t, n);
    for c in t.both() {
        export_condition(c, n, "Conflict", "True");
    }
    let si = import(t.c1, n);
    assert_eq!(ports_of(&si), want_ports(HTTP), "{si}");
}

/// Required: a headless export is imported as Headless everywhere, with
/// no IP (for 5 s), and unexporting removes it.
fn headless_export_is_imported_without_ips(t: &Ctx<'_>) {
    let n = "r-headless";
    service(t.c0, n, "  clusterIP: None\n", HTTP);
    export(t.c0, n, "");
    for c in t.both() {
        assert_eq!(import(c, n)["spec"]["type"], "Headless", "{}", c.name);
    }
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        let si = import(t.c1, n);
        assert!(
            si["spec"]["ips"].as_array().is_none_or(|a| a.is_empty()),
            "{si}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    unexport(t.c0, n);
    for c in t.both() {
        no_import(c, n);
    }
}

/// Required: an ExternalName export is not valid and imports nothing.
fn externalname_export_is_invalid(t: &Ctx<'_>) {
    let n = "r-externalname";
    t.c0.apply(&format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {n}\n  namespace: {NS}\n\
         spec:\n  type: ExternalName\n  externalName: example.com\n"
    ))
    .unwrap();
    export(t.c0, n, "");
    export_condition(t.c0, n, "Valid", "False");
    std::thread::sleep(Duration::from_secs(3));
    assert!(get(t.c0, "serviceimport", n).is_none(), "imported");
}

/// Required: a headless/ClusterIP conflict resolves to the oldest export's
/// type, and both exports report it.
fn type_conflict_resolves_to_the_oldest(t: &Ctx<'_>) {
    let n = "r-typeconflict";
    service(t.c0, n, "", HTTP);
    service(t.c1, n, "  clusterIP: None\n", HTTP);
    export_in_order(t, n);
    for c in t.both() {
        export_condition(c, n, "Conflict", "True");
    }
    for c in t.both() {
        assert_eq!(import(c, n)["spec"]["type"], "ClusterSetIP", "{}", c.name);
    }
}

/// Required: a service that is not exported cannot be reached by its
/// clusterset name from any cluster.
fn unexported_service_is_unreachable(t: &Ctx<'_>) {
    let n = "r-private";
    service(t.c1, n, "", HTTP);
    let name = format!("{n}.{NS}.svc.clusterset.local");
    for pod in &t.pods {
        for _ in 0..5 {
            let out = netns(
                &pod.netns,
                &[
                    "curl",
                    "-s",
                    "--max-time",
                    "1",
                    &format!("http://{name}:8080/"),
                ],
            );
            let body = String::from_utf8_lossy(&out.stdout);
            assert!(!body.contains("hello-"), "{} reached it: {body}", pod.name);
        }
    }
}

/// Optional: only the export's `exportedLabels`/`exportedAnnotations`
/// reach the import, never the service's own.
fn only_exported_metadata_is_imported(t: &Ctx<'_>) {
    let n = "o-meta";
    service(t.c0, n, "", HTTP);
    export(
        t.c0,
        n,
        "  exportedLabels:\n    dummy-label: \"true\"\n  exportedAnnotations:\n    dummy-annotation: \"true\"\n",
    );
    let si = import_where(t.c1, n, "with the exported label", |si| {
        si["metadata"]["labels"]["dummy-label"] == "true"
    });
    assert_eq!(
        si["metadata"]["annotations"]["dummy-annotation"], "true",
        "{si}"
    );
    assert!(
        si["metadata"]["labels"].get("local-label").is_none(),
        "{si}"
    );
    assert!(
        si["metadata"]["annotations"]
            .get("local-annotation")
            .is_none(),
        "{si}"
    );
}

/// Optional: conflicting exported labels resolve to the oldest export's,
/// and both exports report it.
fn conflicting_metadata_resolves_to_the_oldest(t: &Ctx<'_>) {
    let n = "o-metaconflict";
    for c in t.both() {
        service(c, n, "", HTTP);
    }
    export(t.c0, n, "  exportedLabels:\n    dummy-label: \"true\"\n");
    import(t.c0, n);
    export(t.c1, n, "  exportedLabels:\n    dummy-label2: \"true\"\n");
    for c in t.both() {
        export_condition(c, n, "Conflict", "True");
    }
    let si = import(t.c0, n);
    assert_eq!(si["metadata"]["labels"]["dummy-label"], "true", "{si}");
    assert!(
        si["metadata"]["labels"].get("dummy-label2").is_none(),
        "{si}"
    );
}

/// Optional: MCS EndpointSlices with the MCS labels, not managed by the
/// Kubernetes controller, removed on unexport.
fn mcs_endpoint_slices_follow_the_export(t: &Ctx<'_>) {
    let n = "o-slices";
    service(t.c0, n, "", HTTP);
    export(t.c0, n, "");
    let selector = format!("multicluster.kubernetes.io/service-name={n}");
    for c in t.both() {
        let slices = wait_for(WAIT, &format!("{}: MCS slices of {n}", c.name), || {
            let out = c
                .kubectl(&[
                    "-n",
                    NS,
                    "get",
                    "endpointslices",
                    "-l",
                    &selector,
                    "-o",
                    "json",
                ])
                .ok()?;
            let v: Value = serde_json::from_str(&out).ok()?;
            let items: Vec<Value> = v["items"]
                .as_array()?
                .iter()
                .filter(|s| {
                    s["metadata"]["labels"]["multicluster.kubernetes.io/source-cluster"].is_string()
                })
                .cloned()
                .collect();
            (!items.is_empty()).then_some(items)
        });
        for s in &slices {
            let managed = &s["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"];
            assert!(managed.is_string(), "{s}");
            assert_ne!(managed, "endpointslice-controller.k8s.io", "{s}");
        }
    }
    unexport(t.c0, n);
    for c in t.both() {
        wait_for(WAIT, &format!("{}: no MCS slices of {n}", c.name), || {
            let out = c
                .kubectl(&[
                    "-n",
                    NS,
                    "get",
                    "endpointslices",
                    "-l",
                    &selector,
                    "-o",
                    "name",
                ])
                .ok()?;
            out.trim().is_empty().then_some(())
        });
    }
}

/// Optional: `<svc>.<ns>.svc.clusterset.local` resolves to the clusterset
/// IP in each cluster, and an HTTP request by that name is answered.
fn clusterset_name_resolves_to_the_clusterset_ip(t: &Ctx<'_>) {
    let n = "o-dns";
    service(t.c1, n, "", HTTP);
    export(t.c1, n, "");
    let name = format!("{n}.{NS}.svc.clusterset.local");
    for (c, pod) in t.both().into_iter().zip(&t.pods) {
        let si = import_where(c, n, "with a clusterset IP", |si| {
            si["spec"]["ips"][0].is_string()
        });
        let ip = si["spec"]["ips"][0].as_str().unwrap().to_string();
        wait_for(WAIT, &format!("{}: {name} → {ip}", c.name), || {
            (dig(pod, &name, "A") == ip).then_some(())
        });
        wait_for(WAIT, &format!("{}: HTTP to {name}", c.name), || {
            let out = netns(
                &pod.netns,
                &[
                    "curl",
                    "-s",
                    "--max-time",
                    "1",
                    &format!("http://{name}:8080/"),
                ],
            );
            String::from_utf8_lossy(&out.stdout)
                .starts_with("hello-")
                .then_some(())
        });
    }
}

/// The full `dig` answer (status line included) for `name` from `pod`.
fn dig_full(pod: &Pod, name: &str, qtype: &str) -> String {
    let out = netns(
        &pod.netns,
        &["dig", "+time=1", "+tries=1", "-t", qtype, name],
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Optional (DNS 2.3.2, 2.3.4): a ClusterSetIP service's named ports have
/// SRV records pointing at its clusterset name; it has no per-cluster name.
fn clusterset_srv_and_no_cluster_name(t: &Ctx<'_>) {
    let n = "o-srv";
    service(t.c1, n, "", &[("http", "TCP", 8080), ("dns", "UDP", 53)]);
    export(t.c1, n, "");
    let name = format!("{n}.{NS}.svc.clusterset.local");
    for (c, pod) in t.both().into_iter().zip(&t.pods) {
        import_where(c, n, "with a clusterset IP", |si| {
            si["spec"]["ips"][0].is_string()
        });
        wait_for(WAIT, &format!("{}: SRV of {n}", c.name), || {
            (dig(pod, &format!("_http._tcp.{name}"), "SRV") == format!("0 100 8080 {name}."))
                .then_some(())
        });
        assert_eq!(
            dig(pod, &format!("_dns._udp.{name}"), "SRV"),
            format!("0 100 53 {name}.")
        );
        let mut all: Vec<String> = dig(pod, &name, "SRV").lines().map(str::to_string).collect();
        all.sort();
        assert_eq!(
            all,
            [format!("0 100 53 {name}."), format!("0 100 8080 {name}.")]
        );
        for id in [&t.c0.name, &t.c1.name] {
            let out = dig_full(pod, &format!("{id}.{name}"), "A");
            assert!(out.contains("status: NXDOMAIN"), "{id}.{name}: {out}");
        }
    }
}

/// A pod `host` of the headless StatefulSet-like set `n` in `c`: its
/// `hostname`/`subdomain` as a StatefulSet sets them; its address.
fn stateful_pod(c: &Cluster, n: &str, host: &str) -> String {
    c.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {host}\n  namespace: {NS}\n  \
         labels:\n    app: {n}\nspec:\n  hostname: {host}\n  subdomain: {n}\n  containers:\n    \
         - name: http-echo\n      image: ferry\n      args: [\"tools\", \"http-echo\", \"--port\", \"8080\"]\n"
    ))
    .unwrap();
    wait_for(WAIT, &format!("{}: pod {host} has an IP", c.name), || {
        let pod = get(c, "pod", host)?;
        pod["status"]["podIP"].as_str().map(str::to_string)
    })
}

/// Optional (DNS 2.4.1, 2.4.2, 2.4.4): a headless service exported from
/// both clusters answers every ready pod, each at
/// `<hostname>.<clusterid>.<svc>`, SRV records N×M pointing at those
/// names, and no record at `<clusterid>.<svc>`.
fn headless_hostnames_srv_and_no_cluster_record(t: &Ctx<'_>) {
    let n = "o-hl";
    let mut ips = Vec::new();
    for c in t.both() {
        ips.push(stateful_pod(c, n, "web-0"));
        c.apply(&format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: {n}\n  namespace: {NS}\n\
             spec:\n  clusterIP: None\n  selector:\n    app: {n}\n  ports:\n    \
             - name: http\n      protocol: TCP\n      port: 8080\n"
        ))
        .unwrap();
    }
    export_in_order(t, n);
    let name = format!("{n}.{NS}.svc.clusterset.local");
    let mut want_all = ips.clone();
    want_all.sort();
    for pod in &t.pods {
        wait_for(WAIT, &format!("{}: {name} → both pods", pod.name), || {
            let mut got: Vec<String> = dig(pod, &name, "A").lines().map(str::to_string).collect();
            got.sort();
            (got == want_all).then_some(())
        });
        let mut srv: Vec<String> = dig(pod, &format!("_http._tcp.{name}"), "SRV")
            .lines()
            .map(str::to_string)
            .collect();
        srv.sort();
        let mut want_srv: Vec<String> = t
            .both()
            .iter()
            .map(|c| format!("0 100 8080 web-0.{}.{name}.", c.name))
            .collect();
        want_srv.sort();
        assert_eq!(srv, want_srv, "SRV from {}", pod.name);
        for (c, ip) in t.both().iter().zip(&ips) {
            assert_eq!(dig(pod, &format!("web-0.{}.{name}", c.name), "A"), *ip);
            let out = dig_full(pod, &format!("{}.{name}", c.name), "A");
            assert!(out.contains("status: NOERROR"), "{}.{name}: {out}", c.name);
            assert!(out.contains("ANSWER: 0,"), "{}.{name}: {out}", c.name);
        }
    }
}

type Case = (&'static str, &'static str, fn(&Ctx<'_>));

const CASES: &[Case] = &[
    (
        "Required",
        "import lives while any cluster exports",
        import_lives_while_any_cluster_exports,
    ),
    (
        "Required",
        "ClusterIP export imported as ClusterSetIP everywhere, unexport removes it",
        clusterip_export_is_imported_everywhere,
    ),
    (
        "Required",
        "import has the service's session affinity (and config)",
        import_has_the_session_affinity,
    ),
    (
        "Required",
        "import has the service's internalTrafficPolicy",
        import_has_the_internal_traffic_policy,
    ),
    (
        "Required",
        "import has the service's trafficDistribution",
        import_has_the_traffic_distribution,
    ),
    (
        "Required",
        "import has one IP per IP family",
        import_has_one_ip_per_family,
    ),
    (
        "Required",
        "import has the service's ports",
        import_has_the_ports,
    ),
    (
        "Required",
        "ports of two clusters merged, Conflict on both",
        ports_of_two_clusters_are_merged,
    ),
    (
        "Required",
        "conflicting port resolves to the oldest, Conflict on both",
        conflicting_ports_resolve_to_the_oldest,
    ),
    (
        "Required",
        "headless export imported as Headless everywhere, no IPs",
        headless_export_is_imported_without_ips,
    ),
    (
        "Required",
        "ExternalName export Valid=False, no import",
        externalname_export_is_invalid,
    ),
    (
        "Required",
        "headlessness conflict resolves to the oldest, Conflict on both",
        type_conflict_resolves_to_the_oldest,
    ),
    (
        "Required",
        "unexported service unreachable by clusterset name",
        unexported_service_is_unreachable,
    ),
    (
        "Optional",
        "only exported labels/annotations on the import",
        only_exported_metadata_is_imported,
    ),
    (
        "Optional",
        "conflicting exported labels resolve to the oldest, Conflict on both",
        conflicting_metadata_resolves_to_the_oldest,
    ),
    (
        "Optional",
        "MCS EndpointSlices with MCS labels, removed on unexport",
        mcs_endpoint_slices_follow_the_export,
    ),
    (
        "Optional",
        "clusterset name resolves to the clusterset IP and answers",
        clusterset_name_resolves_to_the_clusterset_ip,
    ),
    (
        "Optional",
        "SRV records of a ClusterSetIP service, no <clusterid>.<svc> name",
        clusterset_srv_and_no_cluster_name,
    ),
    (
        "Optional",
        "headless: every pod, <hostname>.<clusterid>.<svc>, SRV N×M, no <clusterid>.<svc> record",
        headless_hostnames_srv_and_no_cluster_record,
    ),
];

#[test]
fn mcs_api_conformance_cases() {
    if !usable() {
        return;
    }
    let tag = format!("e17c{}", std::process::id() % 1000);
    let cs = Clusterset::with_broker_args(
        &tag,
        &[1, 1],
        &[&[0], &[0]],
        "wireguard",
        Broker::FirstCluster,
        &["--enable-clusterset-ip"],
    );
    let (c0, c1) = (&cs.clusters[0], &cs.clusters[1]);
    for c in [c0, c1] {
        c.apply(HELLO).unwrap();
    }
    let pods = [
        c0.pod("conf-client", 0).unwrap(),
        c1.pod("conf-client", 0).unwrap(),
    ];
    let t = Ctx { c0, c1, pods };
    let mut failed = Vec::new();
    for (level, name, case) in CASES {
        let ok = catch_unwind(AssertUnwindSafe(|| case(&t))).is_ok();
        eprintln!("{} | {level} | {name}", if ok { "PASS" } else { "FAIL" });
        if !ok {
            failed.push(*name);
        }
    }
    assert!(failed.is_empty(), "failed cases: {failed:?}");
}
