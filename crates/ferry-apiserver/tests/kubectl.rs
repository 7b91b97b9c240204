//! The real `kubectl` against a real `ferry apiserver`, running the seed's
//! commands (`shared/reference/seed/cluster-submariner.md`) and the verbs
//! ferry's users rely on. No mocks: the server runs in-process on its own
//! temporary data directory and a random port, and every test has its own
//! HOME so kubectl's discovery cache is never shared.
//!
//! kubectl ≥ 1.32 sends protobuf bodies for generator commands (`kubectl
//! create namespace …`), which ferry decodes for the kinds those generators
//! make (see `src/protobuf.rs`); these tests mostly send objects with
//! `apply -f` / `create -f`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use ferry_apiserver::{Config, Identity, RunningServer};

/// Longest we wait for an event that should arrive almost at once.
const EVENT_WAIT: Duration = Duration::from_secs(60);

/// A server on its own runtime and data directory, and a kubectl set up
/// for it. Shut down and removed on drop.
struct Server {
    rt: tokio::runtime::Runtime,
    server: Option<RunningServer>,
    dir: tempfile::TempDir,
    home: PathBuf,
    kubeconfig: PathBuf,
}

impl Server {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let config = Config::new(dir.path().join("data"), "127.0.0.1:0".parse().unwrap());
        let server = rt.block_on(ferry_apiserver::start(config)).unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        let kubeconfig = server.admin_kubeconfig.clone();
        Server {
            rt,
            server: Some(server),
            dir,
            home,
            kubeconfig,
        }
    }

    fn running(&self) -> &RunningServer {
        self.server.as_ref().unwrap()
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Writes a kubeconfig for the same server with another bearer token.
    fn kubeconfig_with_token(&self, name: &str, token: &str) -> PathBuf {
        let server = self.running();
        let text = ferry_apiserver::tls::kubeconfig(&server.url, &server.ca_pem, name, token);
        let path = self.dir.path().join(format!("{name}.kubeconfig"));
        std::fs::write(&path, text).unwrap();
        path
    }

    fn command(&self, kubeconfig: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new("kubectl");
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("KUBECONFIG", kubeconfig)
            .env("NO_PROXY", "127.0.0.1,localhost")
            .stdin(Stdio::null());
        cmd
    }

    fn run_as(&self, kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = self.command(kubeconfig, args);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        if stdin.is_some() {
            cmd.stdin(Stdio::piped());
        }
        let mut child = cmd.spawn().expect("kubectl runs");
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().unwrap();
            pipe.write_all(input.as_bytes()).unwrap();
        }
        child.wait_with_output().unwrap()
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        self.run_as(&self.kubeconfig, args, stdin)
    }

    /// Runs kubectl, asserts it succeeded, returns its stdout.
    fn ok(&self, args: &[&str]) -> String {
        check_ok(args, self.run(args, None))
    }

    /// Runs kubectl with `stdin`, asserts it succeeded, returns its stdout.
    fn ok_stdin(&self, args: &[&str], stdin: &str) -> String {
        check_ok(args, self.run(args, Some(stdin)))
    }

    /// `kubectl apply -f -`.
    fn apply(&self, yaml: &str) -> String {
        self.ok_stdin(&["apply", "-f", "-"], yaml)
    }

    /// Runs kubectl, asserts it failed, returns its stderr.
    fn fails(&self, args: &[&str]) -> String {
        check_fails(args, self.run(args, None))
    }

    /// Applies ferry's CRDs, the seed's namespace, ServiceImport and
    /// EndpointSlice.
    fn seed(&self) {
        let crds = ferry_api::all_crds_yaml().unwrap();
        let out = self.apply(&crds);
        assert!(
            out.contains("customresourcedefinition.apiextensions.k8s.io/serviceimports.multicluster.x-k8s.io created"),
            "{out}"
        );
        let out = self.apply(NAMESPACE);
        assert_eq!(out.trim(), "namespace/ferry-broker created");
        let out = self.apply(SERVICE_IMPORT);
        assert!(
            out.contains("serviceimport.multicluster.x-k8s.io/nginx-nginx-test-cluster1 created"),
            "{out}"
        );
        let out = self.apply(ENDPOINT_SLICE);
        assert!(
            out.contains("endpointslice.discovery.k8s.io/nginx-cluster1 created"),
            "{out}"
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            self.rt.block_on(server.shutdown());
        }
    }
}

fn check_ok(args: &[&str], out: Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "kubectl {} failed ({}):\nstdout: {stdout}\nstderr: {stderr}",
        args.join(" "),
        out.status
    );
    stdout
}

fn check_fails(args: &[&str], out: Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "kubectl {} should have failed:\nstdout: {stdout}\nstderr: {stderr}",
        args.join(" ")
    );
    stderr
}

/// The whitespace-separated cells of each line.
fn rows(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

const NAMESPACE: &str = "\
apiVersion: v1
kind: Namespace
metadata:
  name: ferry-broker
";

const SERVICE_IMPORT: &str = r#"
apiVersion: multicluster.x-k8s.io/v1alpha1
kind: ServiceImport
metadata:
  annotations:
    cluster-ip: 11.96.112.197
    origin-name: nginx
    origin-namespace: nginx-test
  labels:
    lighthouse.submariner.io/sourceCluster: cluster1
    lighthouse.submariner.io/sourceName: nginx
    lighthouse.submariner.io/sourceNamespace: nginx-test
    submariner-io/clusterID: cluster1
    submariner-io/originatingNamespace: submariner-operator
  name: nginx-nginx-test-cluster1
  namespace: ferry-broker
spec:
  ips:
  - 11.96.112.197
  ports:
  - name: http
    port: 8080
    protocol: TCP
  sessionAffinityConfig: {}
  type: ClusterSetIP
"#;

const ENDPOINT_SLICE: &str = r#"
addressType: IPv4
apiVersion: discovery.k8s.io/v1
endpoints:
- addresses:
  - 11.16.0.12
  conditions:
    ready: true
  deprecatedTopology:
    kubernetes.io/hostname: cluster1
  hostname: nginx-db695794b-6jh7d
kind: EndpointSlice
metadata:
  labels:
    endpointslice.kubernetes.io/managed-by: lighthouse-agent.submariner.io
    lighthouse.submariner.io/sourceNamespace: nginx-test
    multicluster.kubernetes.io/service-name: nginx
    multicluster.kubernetes.io/source-cluster: cluster1
    submariner-io/clusterID: cluster1
    submariner-io/originatingNamespace: nginx-test
  name: nginx-cluster1
  namespace: ferry-broker
ports:
- name: http
  port: 8080
  protocol: TCP
"#;

fn configmap(ns: &str, name: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {ns}\ndata:\n  key: {value}\n"
    )
}

#[test]
fn seed_serviceimport_and_endpointslice_print_like_kubernetes() {
    let s = Server::start();
    s.seed();

    // $ kubectl -n ferry-broker get serviceimport
    let out = s.ok(&["-n", "ferry-broker", "get", "serviceimport"]);
    let table = rows(&out);
    assert_eq!(table.len(), 2, "{out}");
    assert_eq!(table[0], ["NAME", "TYPE", "IP", "AGE"], "{out}");
    assert_eq!(
        table[1][..3],
        [
            "nginx-nginx-test-cluster1",
            "ClusterSetIP",
            r#"["11.96.112.197"]"#
        ],
        "{out}"
    );

    // $ kubectl -n ferry-broker get serviceimport -o yaml
    let out = s.ok(&["-n", "ferry-broker", "get", "serviceimport", "-o", "yaml"]);
    let list: serde_json::Value = serde_yaml_ng::from_str(&out).unwrap();
    assert_eq!(list["kind"], "List", "{out}");
    let item = &list["items"][0];
    // kubectl asks for the preferred (stored) version.
    assert_eq!(item["apiVersion"], "multicluster.x-k8s.io/v1beta1");
    assert_eq!(item["kind"], "ServiceImport");
    assert_eq!(item["metadata"]["name"], "nginx-nginx-test-cluster1");
    assert_eq!(item["metadata"]["namespace"], "ferry-broker");
    assert_eq!(item["metadata"]["generation"], 1);
    assert_eq!(
        item["metadata"]["annotations"]["cluster-ip"],
        "11.96.112.197"
    );
    assert_eq!(
        item["metadata"]["labels"]["submariner-io/clusterID"],
        "cluster1"
    );
    for field in ["uid", "resourceVersion", "creationTimestamp"] {
        assert!(item["metadata"][field].is_string(), "{field}: {out}");
    }
    assert_eq!(item["spec"]["ips"][0], "11.96.112.197");
    assert_eq!(item["spec"]["ports"][0]["port"], 8080);
    assert_eq!(item["spec"]["type"], "ClusterSetIP");

    // $ kubectl -n ferry-broker get endpointslice nginx-cluster1
    let out = s.ok(&[
        "-n",
        "ferry-broker",
        "get",
        "endpointslice",
        "nginx-cluster1",
    ]);
    let table = rows(&out);
    assert_eq!(
        table[0],
        ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"],
        "{out}"
    );
    assert_eq!(
        table[1][..4],
        ["nginx-cluster1", "IPv4", "8080", "11.16.0.12"],
        "{out}"
    );

    // $ kubectl -n ferry-broker get endpointslice nginx-cluster1 -o yaml
    let out = s.ok(&[
        "-n",
        "ferry-broker",
        "get",
        "endpointslice",
        "nginx-cluster1",
        "-o",
        "yaml",
    ]);
    let eps: serde_json::Value = serde_yaml_ng::from_str(&out).unwrap();
    assert_eq!(eps["addressType"], "IPv4");
    assert_eq!(eps["endpoints"][0]["addresses"][0], "11.16.0.12");
    assert_eq!(eps["endpoints"][0]["conditions"]["ready"], true);
    assert_eq!(eps["endpoints"][0]["hostname"], "nginx-db695794b-6jh7d");
    assert_eq!(eps["ports"][0]["name"], "http");

    // Short names and JSONPath output.
    let out = s.ok(&[
        "-n",
        "ferry-broker",
        "get",
        "svcim",
        "-o",
        "jsonpath={.items[*].spec.ips[0]}",
    ]);
    assert_eq!(out.trim(), "11.96.112.197");
    let out = s.ok(&["get", "serviceimports", "-A", "-o", "name"]);
    assert_eq!(
        out.trim(),
        "serviceimport.multicluster.x-k8s.io/nginx-nginx-test-cluster1"
    );

    // describe
    let out = s.ok(&[
        "-n",
        "ferry-broker",
        "describe",
        "serviceimport",
        "nginx-nginx-test-cluster1",
    ]);
    assert!(out.contains("nginx-nginx-test-cluster1"), "{out}");
    assert!(out.contains("ClusterSetIP"), "{out}");
    assert!(out.contains("11.96.112.197"), "{out}");
    let out = s.ok(&[
        "-n",
        "ferry-broker",
        "describe",
        "endpointslice",
        "nginx-cluster1",
    ]);
    assert!(out.contains("AddressType:  IPv4"), "{out}");
    assert!(out.contains("11.16.0.12"), "{out}");

    // A missing object is a NotFound error naming it.
    let err = s.fails(&["-n", "ferry-broker", "get", "serviceimport", "nope"]);
    assert!(
        err.contains("NotFound") && err.contains("\"nope\" not found"),
        "{err}"
    );
}

#[test]
fn api_resources_lists_builtins_and_crd_kinds() {
    let s = Server::start();
    let crds = ferry_api::all_crds_yaml().unwrap();
    s.apply(&crds);
    let out = s.ok(&["api-resources"]);
    let table = rows(&out);
    assert_eq!(
        table[0],
        ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"],
        "{out}"
    );
    let kind_of = |kind: &str| {
        table
            .iter()
            .find(|r| r.last().map(String::as_str) == Some(kind))
            .unwrap_or_else(|| panic!("no {kind} in:\n{out}"))
            .clone()
    };
    for kind in [
        "Namespace",
        "ConfigMap",
        "Secret",
        "Node",
        "EndpointSlice",
        "Lease",
        "Deployment",
        "CustomResourceDefinition",
    ] {
        kind_of(kind);
    }
    for (kind, version) in [
        ("ServiceImport", "multicluster.x-k8s.io/v1beta1"),
        ("ServiceExport", "multicluster.x-k8s.io/v1beta1"),
        ("Cluster", "ferry.dev/v1alpha1"),
        ("Endpoint", "ferry.dev/v1alpha1"),
        ("Gateway", "ferry.dev/v1alpha1"),
    ] {
        let row = kind_of(kind);
        assert!(row.contains(&version.to_string()), "{row:?}");
    }
    let out = s.ok(&[
        "api-resources",
        "--api-group=multicluster.x-k8s.io",
        "-o",
        "name",
    ]);
    let mut names: Vec<&str> = out.lines().collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "serviceexports.multicluster.x-k8s.io",
            "serviceimports.multicluster.x-k8s.io"
        ]
    );
    let out = s.ok(&["api-versions"]);
    assert!(
        out.lines().any(|l| l == "multicluster.x-k8s.io/v1alpha1"),
        "{out}"
    );
    assert!(out.lines().any(|l| l == "discovery.k8s.io/v1"), "{out}");

    // Deleting a CRD takes its resource out of discovery.
    s.ok(&["delete", "crd", "gateways.ferry.dev"]);
    let out = s.ok(&["api-resources", "--api-group=ferry.dev", "-o", "name"]);
    assert!(!out.contains("gateways"), "{out}");
    assert!(out.contains("clusters.ferry.dev"), "{out}");
}

#[test]
fn label_patch_apply_and_delete() {
    let s = Server::start();
    s.seed();

    // $ kubectl label nodes cluster0 submariner.io/gateway=true
    let out = s.apply("apiVersion: v1\nkind: Node\nmetadata:\n  name: cluster0\n");
    assert_eq!(out.trim(), "node/cluster0 created");
    let out = s.ok(&["label", "nodes", "cluster0", "submariner.io/gateway=true"]);
    assert_eq!(out.trim(), "node/cluster0 labeled");
    let out = s.ok(&[
        "get",
        "nodes",
        "-l",
        "submariner.io/gateway=true",
        "-o",
        "name",
    ]);
    assert_eq!(out.trim(), "node/cluster0");
    let err = s.fails(&["label", "nodes", "cluster0", "submariner.io/gateway=false"]);
    assert!(err.contains("already has a value"), "{err}");
    s.ok(&[
        "label",
        "--overwrite",
        "nodes",
        "cluster0",
        "submariner.io/gateway=false",
    ]);
    let out = s.ok(&[
        "get",
        "nodes",
        "-l",
        "submariner.io/gateway=true",
        "-o",
        "name",
    ]);
    assert_eq!(out.trim(), "");
    s.ok(&["label", "nodes", "cluster0", "submariner.io/gateway-"]);
    let out = s.ok(&[
        "get",
        "node",
        "cluster0",
        "-o",
        "jsonpath={.metadata.labels}",
    ]);
    assert!(!out.contains("submariner.io/gateway"), "{out}");

    // Labels on custom resources, and set-based selectors.
    let si = [
        "-n",
        "ferry-broker",
        "serviceimport",
        "nginx-nginx-test-cluster1",
    ];
    let out = s.ok(&[&["label"], &si[..], &["tier=gold"]].concat());
    assert!(out.contains("labeled"), "{out}");
    let out = s.ok(&[
        "-n",
        "ferry-broker",
        "get",
        "serviceimport",
        "-l",
        "tier in (gold,silver),submariner-io/clusterID",
        "-o",
        "name",
    ]);
    assert_eq!(
        out.trim(),
        "serviceimport.multicluster.x-k8s.io/nginx-nginx-test-cluster1"
    );

    // kubectl patch: JSON merge (the default for custom resources is
    // strategic, which kubectl refuses for CRDs, so users pass --type).
    let out = s.ok(&[
        &["patch"],
        &si[..],
        &[
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"ips":["11.96.112.198"]}}"#,
        ],
    ]
    .concat());
    assert!(out.contains("patched"), "{out}");
    let out = s.ok(&[&["get"], &si[..], &["-o", "jsonpath={.spec.ips}"]].concat());
    assert_eq!(out.trim(), r#"["11.96.112.198"]"#);
    let out = s.ok(&[
        &["get"],
        &si[..],
        &["-o", "jsonpath={.metadata.generation}"],
    ]
    .concat());
    assert_eq!(out.trim(), "2", "a spec change bumps generation");

    // JSON patch.
    let out = s.ok(&[
        &["patch"],
        &si[..],
        &[
            "--type",
            "json",
            "-p",
            r#"[{"op":"add","path":"/spec/ips/-","value":"11.96.112.199"},{"op":"replace","path":"/metadata/annotations/cluster-ip","value":"11.96.112.199"}]"#,
        ],
    ]
    .concat());
    assert!(out.contains("patched"), "{out}");
    let out = s.ok(&[&["get"], &si[..], &["-o", "jsonpath={.spec.ips}"]].concat());
    assert_eq!(out.trim(), r#"["11.96.112.198","11.96.112.199"]"#);
    // A failing JSON patch test op changes nothing.
    let err = s.fails(
        &[
            &["patch"],
            &si[..],
            &[
                "--type",
                "json",
                "-p",
                r#"[{"op":"test","path":"/spec/type","value":"Headless"}]"#,
            ],
        ]
        .concat(),
    );
    assert!(!err.is_empty());

    // Strategic merge patch (the default) on a built-in kind: endpoints
    // are a list without a merge key, so it is replaced.
    let eps = ["-n", "ferry-broker", "endpointslice", "nginx-cluster1"];
    let out = s.ok(&[
        &["patch"],
        &eps[..],
        &["-p", r#"{"endpoints":[{"addresses":["11.16.0.13"]}]}"#],
    ]
    .concat());
    assert!(out.contains("patched"), "{out}");
    let out = s.ok(&[&["get"], &eps[..]].concat());
    assert_eq!(rows(&out)[1][3], "11.16.0.13", "{out}");

    // kubectl apply of the same file again: unchanged; then with a change:
    // configured (client-side apply sends a merge patch for a CRD).
    let cm = configmap("ferry-broker", "settings", "one");
    assert_eq!(s.apply(&cm).trim(), "configmap/settings created");
    assert_eq!(s.apply(&cm).trim(), "configmap/settings unchanged");
    let changed = configmap("ferry-broker", "settings", "two");
    assert_eq!(s.apply(&changed).trim(), "configmap/settings configured");
    let out = s.ok(&[
        "-n",
        "ferry-broker",
        "get",
        "configmap",
        "settings",
        "-o",
        "jsonpath={.data.key}",
    ]);
    assert_eq!(out, "two");
    let si_changed = SERVICE_IMPORT.replace("port: 8080", "port: 8081");
    let out = s.apply(&si_changed);
    assert_eq!(
        out.trim(),
        "serviceimport.multicluster.x-k8s.io/nginx-nginx-test-cluster1 configured"
    );
    let out = s.ok(&[&["get"], &si[..], &["-o", "jsonpath={.spec.ports[0].port}"]].concat());
    assert_eq!(out.trim(), "8081");

    // Server-side apply: creates, then updates.
    let ssa = configmap("ferry-broker", "ssa", "first");
    let out = s.ok_stdin(&["apply", "--server-side", "-f", "-"], &ssa);
    assert_eq!(out.trim(), "configmap/ssa serverside-applied");
    let ssa = configmap("ferry-broker", "ssa", "second");
    let out = s.ok_stdin(&["apply", "--server-side", "-f", "-"], &ssa);
    assert_eq!(out.trim(), "configmap/ssa serverside-applied");
    let out = s.ok(&[
        "-n",
        "ferry-broker",
        "get",
        "configmap",
        "ssa",
        "-o",
        "jsonpath={.data.key}",
    ]);
    assert_eq!(out, "second");
    let out = s.ok_stdin(&["apply", "--server-side", "-f", "-"], &si_changed);
    assert!(out.contains("serverside-applied"), "{out}");

    // kubectl create -f of an existing object: AlreadyExists.
    let out = s.run(&["create", "-f", "-"], Some(&cm));
    let err = check_fails(&["create", "-f", "-"], out);
    assert!(err.contains("AlreadyExists"), "{err}");

    // kubectl delete, by name and by file.
    let out = s.ok(&[&["delete"], &si[..]].concat());
    assert_eq!(
        out.trim(),
        "serviceimport.multicluster.x-k8s.io \"nginx-nginx-test-cluster1\" deleted"
    );
    let err = s.fails(&[&["get"], &si[..]].concat());
    assert!(err.contains("NotFound"), "{err}");
    let out = s.ok_stdin(&["delete", "-f", "-"], ENDPOINT_SLICE);
    assert!(out.contains("deleted"), "{out}");
    let out = s.ok(&["-n", "ferry-broker", "get", "endpointslices", "-o", "name"]);
    assert_eq!(out.trim(), "");
    let out = s.ok(&["-n", "ferry-broker", "delete", "configmaps", "--all"]);
    assert!(
        out.contains("\"settings\" deleted") && out.contains("\"ssa\" deleted"),
        "{out}"
    );
}

/// `kubectl apply --server-side`: a re-apply changes nothing, a second
/// field manager changing an owned field gets the conflict, and
/// `--force-conflicts` takes the field over.
#[test]
fn server_side_apply_keeps_field_owners() {
    let s = Server::start();
    let ssa = ["apply", "--server-side", "-f", "-"];
    let rv = |s: &Server| {
        s.ok(&[
            "get",
            "configmap",
            "owned",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ])
    };
    let cm = configmap("default", "owned", "one");
    assert_eq!(
        s.ok_stdin(&ssa, &cm).trim(),
        "configmap/owned serverside-applied"
    );
    let first = rv(&s);
    assert_eq!(
        s.ok_stdin(&ssa, &cm).trim(),
        "configmap/owned serverside-applied"
    );
    assert_eq!(rv(&s), first, "an identical re-apply is a no-op");
    let managers = s.ok(&[
        "get",
        "configmap",
        "owned",
        "--show-managed-fields",
        "-o",
        "jsonpath={.metadata.managedFields[*].manager}/{.metadata.managedFields[*].operation}",
    ]);
    assert_eq!(managers, "kubectl/Apply");

    let changed = configmap("default", "owned", "two");
    let other = ["apply", "--server-side", "--field-manager=other", "-f", "-"];
    let err = check_fails(&other, s.run(&other, Some(&changed)));
    assert!(
        err.contains("Apply failed with 1 conflict: conflict with \"kubectl\": .data.key"),
        "{err}"
    );
    assert!(err.contains("--force-conflicts"), "{err}");
    assert_eq!(rv(&s), first);

    let forced = [
        "apply",
        "--server-side",
        "--field-manager=other",
        "--force-conflicts",
        "-f",
        "-",
    ];
    assert_eq!(
        s.ok_stdin(&forced, &changed).trim(),
        "configmap/owned serverside-applied"
    );
    let out = s.ok(&["get", "configmap", "owned", "-o", "jsonpath={.data.key}"]);
    assert_eq!(out, "two");
    let managers = s.ok(&[
        "get",
        "configmap",
        "owned",
        "--show-managed-fields",
        "-o",
        "jsonpath={.metadata.managedFields[*].manager}",
    ]);
    assert_eq!(managers, "other");

    // From client-side apply to server-side apply: what `kubectl apply`
    // applied moves to `kubectl` without a conflict.
    let csa = configmap("default", "migrated", "one");
    assert_eq!(s.apply(&csa).trim(), "configmap/migrated created");
    let moved = configmap("default", "migrated", "two");
    assert_eq!(
        s.ok_stdin(&ssa, &moved).trim(),
        "configmap/migrated serverside-applied"
    );
    let out = s.ok(&["get", "configmap", "migrated", "-o", "jsonpath={.data.key}"]);
    assert_eq!(out, "two");
}

/// A `kubectl get -w` child whose stdout lines arrive on a channel; killed
/// on drop.
struct Watcher {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Watcher {
    fn spawn(s: &Server, args: &[&str]) -> Self {
        let mut child = s
            .command(&s.kubeconfig, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Watcher { child, lines }
    }

    /// Waits (bounded) for a line matching `pred`; returns it.
    fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + EVENT_WAIT;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if pred(&line) => return line,
                Ok(line) => seen.push(line),
                Err(_) => panic!("kubectl get -w never printed {what}; it printed {seen:#?}"),
            }
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn get_watch_receives_events() {
    let s = Server::start();
    s.seed();

    let w = Watcher::spawn(
        &s,
        &[
            "-n",
            "ferry-broker",
            "get",
            "serviceimport",
            "-w",
            "--output-watch-events",
        ],
    );
    // The initial list arrives first as ADDED events...
    let line = w.wait_for("the header", |l| l.contains("EVENT") && l.contains("NAME"));
    assert_eq!(
        line.split_whitespace().collect::<Vec<_>>(),
        ["EVENT", "NAME", "TYPE", "IP", "AGE"]
    );
    w.wait_for("the existing ServiceImport", |l| {
        l.starts_with("ADDED") && l.contains("nginx-nginx-test-cluster1")
    });

    // ...then whatever is written afterwards.
    let other = SERVICE_IMPORT
        .replace("nginx-nginx-test-cluster1", "redis-cache-cluster2")
        .replace("11.96.112.197", "11.96.0.20");
    s.apply(&other);
    let line = w.wait_for("the new ServiceImport", |l| {
        l.contains("redis-cache-cluster2")
    });
    let cells: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        cells[..4],
        [
            "ADDED",
            "redis-cache-cluster2",
            "ClusterSetIP",
            r#"["11.96.0.20"]"#
        ],
        "{line}"
    );
    s.ok(&[
        "-n",
        "ferry-broker",
        "label",
        "serviceimport",
        "redis-cache-cluster2",
        "seen=yes",
    ]);
    w.wait_for("the label change", |l| {
        l.starts_with("MODIFIED") && l.contains("redis-cache-cluster2")
    });
    s.ok(&[
        "-n",
        "ferry-broker",
        "delete",
        "serviceimport",
        "redis-cache-cluster2",
    ]);
    w.wait_for("the deletion", |l| {
        l.starts_with("DELETED") && l.contains("redis-cache-cluster2")
    });

    // A plain `get -w` on a single object, as the seed's users would type it.
    let w2 = Watcher::spawn(
        &s,
        &[
            "-n",
            "ferry-broker",
            "get",
            "endpointslice",
            "nginx-cluster1",
            "-w",
        ],
    );
    w2.wait_for("the current EndpointSlice", |l| {
        l.starts_with("nginx-cluster1")
    });
    s.apply(&ENDPOINT_SLICE.replace("11.16.0.12", "11.16.0.77"));
    w2.wait_for("the new endpoint address", |l| {
        l.starts_with("nginx-cluster1") && l.contains("11.16.0.77")
    });
}

#[test]
fn cluster_token_is_forbidden_to_write_unlabelled_objects() {
    let s = Server::start();
    s.seed();
    let token = ferry_apiserver::create_token(&s.data_dir(), &Identity::Cluster("cluster1".into()))
        .unwrap();
    let kc = s.kubeconfig_with_token("cluster1", &token);
    let as_cluster = |args: &[&str], stdin: Option<&str>| s.run_as(&kc, args, stdin);

    // Reads are allowed.
    let out = check_ok(
        &["get"],
        as_cluster(&["-n", "ferry-broker", "get", "serviceimport"], None),
    );
    assert!(out.contains("nginx-nginx-test-cluster1"), "{out}");

    // Creating an object without the cluster label: 403, nothing created.
    let cm = configmap("ferry-broker", "unlabelled", "x");
    let err = check_fails(&["apply"], as_cluster(&["apply", "-f", "-"], Some(&cm)));
    assert!(
        err.contains("Forbidden") || err.contains("forbidden"),
        "{err}"
    );
    assert!(err.contains("ferry.dev/cluster=cluster1"), "{err}");
    let err = s.fails(&["-n", "ferry-broker", "get", "configmap", "unlabelled"]);
    assert!(err.contains("NotFound"), "{err}");

    // Writing somebody else's object (no label): 403, unchanged.
    let err = check_fails(
        &["label"],
        as_cluster(
            &[
                "-n",
                "ferry-broker",
                "label",
                "serviceimport",
                "nginx-nginx-test-cluster1",
                "hijacked=yes",
            ],
            None,
        ),
    );
    assert!(
        err.contains("Forbidden") || err.contains("forbidden"),
        "{err}"
    );
    let err = check_fails(
        &["delete"],
        as_cluster(
            &[
                "-n",
                "ferry-broker",
                "delete",
                "serviceimport",
                "nginx-nginx-test-cluster1",
            ],
            None,
        ),
    );
    assert!(
        err.contains("Forbidden") || err.contains("forbidden"),
        "{err}"
    );
    let out = s.ok(&[
        "-n",
        "ferry-broker",
        "get",
        "serviceimport",
        "nginx-nginx-test-cluster1",
        "-o",
        "jsonpath={.metadata.labels}",
    ]);
    assert!(!out.contains("hijacked"), "{out}");

    // Its own objects (labelled ferry.dev/cluster=cluster1) it may write...
    let own = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: mine\n  namespace: ferry-broker\n  labels:\n    ferry.dev/cluster: cluster1\ndata:\n  a: b\n";
    let out = check_ok(&["apply"], as_cluster(&["apply", "-f", "-"], Some(own)));
    assert_eq!(out.trim(), "configmap/mine created");
    let out = check_ok(
        &["label"],
        as_cluster(
            &["-n", "ferry-broker", "label", "configmap", "mine", "x=y"],
            None,
        ),
    );
    assert!(out.contains("labeled"), "{out}");
    // ...but never hand them to another cluster.
    let err = check_fails(
        &["label"],
        as_cluster(
            &[
                "-n",
                "ferry-broker",
                "label",
                "--overwrite",
                "configmap",
                "mine",
                "ferry.dev/cluster=cluster2",
            ],
            None,
        ),
    );
    assert!(
        err.contains("Forbidden") || err.contains("forbidden"),
        "{err}"
    );
    let out = s.ok(&[
        "-n",
        "ferry-broker",
        "get",
        "configmap",
        "-l",
        "ferry.dev/cluster=cluster1",
        "-o",
        "name",
    ]);
    assert_eq!(out.trim(), "configmap/mine");
    let out = check_ok(
        &["delete"],
        as_cluster(&["-n", "ferry-broker", "delete", "configmap", "mine"], None),
    );
    assert!(out.contains("deleted"), "{out}");
}

/// How kubectl reports a 401.
fn is_unauthorized(stderr: &str) -> bool {
    stderr.contains("Unauthorized")
        || stderr.contains("must be logged in")
        || stderr.contains("asked for the client to provide credentials")
}

#[test]
fn bad_token_is_unauthorized() {
    let s = Server::start();
    let kc = s.kubeconfig_with_token("intruder", "not-a-real-token");
    let args = ["get", "namespaces"];
    let err = check_fails(&args, s.run_as(&kc, &args, None));
    assert!(is_unauthorized(&err), "{err}");
    let cm = configmap("default", "x", "y");
    let args = ["apply", "-f", "-"];
    let err = check_fails(&args, s.run_as(&kc, &args, Some(&cm)));
    assert!(is_unauthorized(&err), "{err}");
    let err = s.fails(&["get", "configmap", "x"]);
    assert!(err.contains("NotFound"), "{err}");
    // The admin kubeconfig works on the same server.
    let out = s.ok(&["get", "namespaces", "-o", "name"]);
    assert!(out.lines().any(|l| l == "namespace/default"), "{out}");
}

#[test]
fn deleting_a_namespace_removes_its_contents() {
    let s = Server::start();
    s.seed();
    s.apply(&configmap("ferry-broker", "settings", "v"));
    s.apply(&configmap("default", "survivor", "v"));
    let out = s.ok(&[
        "-n",
        "ferry-broker",
        "get",
        "serviceimport,endpointslice,configmap",
        "-o",
        "name",
    ]);
    assert_eq!(out.lines().count(), 3, "{out}");

    // kubectl waits until the namespace is gone (bounded by --timeout).
    let out = s.ok(&["delete", "namespace", "ferry-broker", "--timeout=60s"]);
    assert_eq!(out.trim(), "namespace \"ferry-broker\" deleted");
    let err = s.fails(&["get", "namespace", "ferry-broker"]);
    assert!(err.contains("NotFound"), "{err}");
    for kind in ["serviceimports", "endpointslices", "configmaps"] {
        let out = s.ok(&["-n", "ferry-broker", "get", kind, "-o", "name"]);
        assert_eq!(out.trim(), "", "{kind} left behind: {out}");
    }
    let out = s.ok(&["get", "configmaps", "-A", "-o", "name"]);
    assert_eq!(out.trim(), "configmap/survivor", "{out}");

    // Recreating it gives an empty namespace.
    assert_eq!(s.apply(NAMESPACE).trim(), "namespace/ferry-broker created");
    let out = s.ok(&["-n", "ferry-broker", "get", "serviceimports", "-o", "name"]);
    assert_eq!(out.trim(), "");
}

#[test]
fn auth_whoami_and_can_i_answer_per_identity() {
    let s = Server::start();
    let out = s.ok(&[
        "auth",
        "whoami",
        "-o",
        "jsonpath={.status.userInfo.username}",
    ]);
    assert_eq!(out.trim(), "admin");
    assert_eq!(s.ok(&["auth", "can-i", "delete", "secrets"]).trim(), "yes");
    let token =
        ferry_apiserver::create_token(&s.data_dir(), &Identity::Cluster("east".into())).unwrap();
    let kc = s.kubeconfig_with_token("east", &token);
    let args = [
        "auth",
        "whoami",
        "-o",
        "jsonpath={.status.userInfo.username}",
    ];
    let out = check_ok(&args, s.run_as(&kc, &args, None));
    assert_eq!(out.trim(), "cluster:east");
    let args = ["auth", "can-i", "list", "configmaps", "-A"];
    let out = check_ok(&args, s.run_as(&kc, &args, None));
    assert_eq!(out.trim(), "yes");
    // `can-i` answers "no - <reason>" with exit code 1.
    let joiner = ferry_apiserver::create_token(&s.data_dir(), &Identity::Joiner).unwrap();
    let kc = s.kubeconfig_with_token("joiner", &joiner);
    let args = ["auth", "can-i", "create", "configmaps"];
    let out = s.run_as(&kc, &args, None);
    let answer = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        answer.starts_with("no - joiner may write only ServiceAccounts"),
        "{answer}"
    );
    assert!(!out.status.success());
}

/// `kubectl explain` reads the OpenAPI v3 schemas: built-in kinds with
/// their descriptions, CRDs from their `openAPIV3Schema`.
#[test]
fn explain_describes_builtin_and_custom_kinds() {
    let s = Server::start();
    s.apply(&ferry_api::all_crds_yaml().unwrap());
    let out = s.ok(&["explain", "deployment.spec.replicas"]);
    assert!(out.contains("GROUP:      apps"), "{out}");
    assert!(out.contains("FIELD: replicas <integer>"), "{out}");
    assert!(out.contains("Number of desired pods"), "{out}");
    let out = s.ok(&["explain", "serviceimports.spec"]);
    assert!(out.contains("KIND:       ServiceImport"), "{out}");
    assert!(out.contains("FIELD: spec <Object>"), "{out}");
    let out = s.ok(&["explain", "serviceexports"]);
    assert!(
        out.contains("Exports the Service of the same name"),
        "{out}"
    );
    let out = s.ok(&["explain", "configmap", "--recursive"]);
    assert!(out.contains("binaryData\t<map[string]string>"), "{out}");
    assert!(
        out.contains("managedFields\t<[]ManagedFieldsEntry>"),
        "{out}"
    );
    let out = s.ok(&["explain", "replicasets.spec.template.spec.containers.image"]);
    assert!(out.contains("FIELD: image <string>"), "{out}");
}
