//! The user-facing commands through the built binary: errors a user can
//! cause print one `error:` line and one `hint:` line and exit 1 (2 for
//! usage errors); `show`, `export`/`unexport`, `uninstall` and `completion`
//! against in-process API servers (a broker and member clusters joined for
//! real).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{broker, client, dead_kubeconfig, ferry, ferry_async, start};

use std::path::{Path, PathBuf};
use std::process::Output;

use ferry_api::BrokerInfo;
use ferry_ctl::install::{self, JoinOptions};
use kube::Client;

/// The `error:` and `hint:` lines of a failed run, checking there is
/// exactly one of each on stderr and the exit code.
fn failure(out: &Output, code: i32) -> (String, String) {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "stderr: {stderr}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    let hints: Vec<&str> = stderr.lines().filter(|l| l.starts_with("hint: ")).collect();
    assert_eq!((errors.len(), hints.len()), (1, 1), "stderr: {stderr}");
    (
        errors[0].trim_start_matches("error: ").to_string(),
        hints[0].trim_start_matches("hint: ").to_string(),
    )
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn missing_kubeconfig_says_where_it_looked() {
    let home = tempfile::tempdir().unwrap();
    for args in [
        &["show", "connections"][..],
        &["export", "service", "nginx", "-n", "web"],
        &["uninstall", "--yes"],
    ] {
        let (error, hint) = failure(&ferry(home.path(), args), 1);
        assert!(error.starts_with("no kubeconfig found (tried "), "{error}");
        assert!(error.contains("$KUBECONFIG: not set"), "{error}");
        assert!(
            error.contains(&format!(
                "{}/.kube/config: no such file",
                home.path().display()
            )),
            "{error}"
        );
        assert!(error.contains("in-cluster"), "{error}");
        assert!(
            hint.contains("--kubeconfig") && hint.contains("KUBECONFIG"),
            "{hint}"
        );
    }
    let (error, hint) = failure(
        &ferry(home.path(), &["show", "--kubeconfig", "/no/such/file"]),
        1,
    );
    assert_eq!(error, "kubeconfig /no/such/file does not exist");
    assert!(hint.contains("check the path"), "{hint}");
}

#[test]
fn unreachable_api_names_url_and_cause() {
    let home = tempfile::tempdir().unwrap();
    let kc = dead_kubeconfig(home.path());
    let kc = kc.to_str().unwrap();
    let (error, hint) = failure(
        &ferry(home.path(), &["show", "versions", "--kubeconfig", kc]),
        1,
    );
    assert_eq!(
        error,
        format!(
            "cannot reach the cluster API (kubeconfig {kc}) at https://127.0.0.1:1: connection refused"
        )
    );
    assert!(hint.contains("is the API server running"), "{hint}");
    let (error, _) = failure(
        &ferry(
            home.path(),
            &["unexport", "service", "a", "--kubeconfig", kc],
        ),
        1,
    );
    assert!(
        error.contains("at https://127.0.0.1:1: connection refused"),
        "{error}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let home = tempfile::tempdir().unwrap();
    let out = ferry(home.path(), &["show", "bogus"]);
    assert_eq!(out.status.code(), Some(2));
    let out = ferry(home.path(), &["export", "service"]);
    assert_eq!(out.status.code(), Some(2));
    let (error, _) = failure(
        &ferry(
            home.path(),
            &["show", "--kubeconfig", "a,b", "--context", "x,y"],
        ),
        2,
    );
    assert!(error.contains("not both"), "{error}");
    let out = ferry(home.path(), &["export", "service", "x", "--wait", "soon"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn malformed_broker_info() {
    let home = tempfile::tempdir().unwrap();
    let bad = home.path().join("broker-info.ferry");
    std::fs::write(&bad, "this is not base64!").unwrap();
    let (error, hint) = failure(
        &ferry(
            home.path(),
            &["join", bad.to_str().unwrap(), "--clusterid", "east"],
        ),
        1,
    );
    assert!(
        error.starts_with(&format!(
            "reading {}: broker info is not base64",
            bad.display()
        )),
        "{error}"
    );
    assert!(hint.contains("ferry deploy-broker"), "{hint}");
    let (error, hint) = failure(
        &ferry(
            home.path(),
            &["join", "/no/broker-info.ferry", "--clusterid", "east"],
        ),
        1,
    );
    assert!(
        error.starts_with("reading /no/broker-info.ferry: "),
        "{error}"
    );
    assert!(hint.contains("path"), "{hint}");
}

#[test]
fn completion_scripts_and_help() {
    let home = tempfile::tempdir().unwrap();
    let bash = stdout(&ferry(home.path(), &["completion", "bash"]));
    assert!(
        bash.contains("_ferry()") && bash.contains("complete -F _ferry"),
        "{bash}"
    );
    for word in [
        "show",
        "export",
        "unexport",
        "uninstall",
        "connections",
        "--kubeconfig",
    ] {
        assert!(bash.contains(word), "bash completion lacks {word}");
    }
    let zsh = stdout(&ferry(home.path(), &["completion", "zsh"]));
    assert!(zsh.starts_with("#compdef ferry"), "{zsh}");
    for (cmd, want) in [
        ("show", "--kubeconfig east.kubeconfig,west.kubeconfig"),
        ("uninstall", "ferry uninstall --yes --crds"),
        ("completion", "source <(ferry completion bash)"),
        ("join", "--clusterid east"),
        ("deploy-broker", "--embedded --data-dir ./broker"),
    ] {
        let help = stdout(&ferry(home.path(), &[cmd, "--help"]));
        assert!(
            help.contains("Example") && help.contains(want),
            "{cmd}: {help}"
        );
    }
    // The long text of each command is its --help, not just the summary.
    let help = stdout(&ferry(home.path(), &["show", "--help"]));
    assert!(
        help.contains("RTT min/avg/max") && help.contains("exit code"),
        "{help}"
    );
    let help = stdout(&ferry(home.path(), &["uninstall", "--help"]));
    assert!(
        help.contains("--skip-broker") && help.contains("routes, rules"),
        "{help}"
    );
    let help = stdout(&ferry(home.path(), &["export", "service", "--help"]));
    assert!(
        help.contains("[default: 5s]") && help.contains("Valid"),
        "{help}"
    );
}

struct Env {
    tmp: tempfile::TempDir,
    _servers: Vec<ferry_apiserver::RunningServer>,
    info_path: PathBuf,
    info: BrokerInfo,
    /// (admin kubeconfig, client) of each cluster; the first two joined
    /// as east and west, the last not joined.
    clusters: Vec<(PathBuf, Client)>,
}

fn join_options(id: &str, cidrs: (&str, &str)) -> JoinOptions {
    JoinOptions {
        cluster_id: id.into(),
        cluster_cidrs: vec![cidrs.0.parse().unwrap()],
        service_cidrs: vec![cidrs.1.parse().unwrap()],
        cable_driver: None,
        gateway_node: None,
        image: "ferry:test".into(),
        gateway: Default::default(),
        globalnet: None,
        network_plugin: None,
    }
}

/// A broker, east and west joined, and a third cluster that has not joined.
async fn env() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let (broker, info) = broker(tmp.path().join("broker")).await;
    let info_path = tmp.path().join("broker-info.ferry");
    std::fs::write(&info_path, info.encode().unwrap()).unwrap();
    let mut servers = vec![broker];
    let mut clusters = Vec::new();
    for (id, cidrs) in [
        ("east", Some(("100.64.0.0/16", "100.65.0.0/16"))),
        ("west", Some(("100.66.0.0/16", "100.67.0.0/16"))),
        ("new", None),
    ] {
        let s = start(tmp.path().join(id)).await;
        let c = client(&s.admin_kubeconfig).await;
        if let Some(cidrs) = cidrs {
            install::join(&c, &info, &join_options(id, cidrs))
                .await
                .unwrap();
        }
        clusters.push((s.admin_kubeconfig.clone(), c));
        servers.push(s);
    }
    Env {
        tmp,
        _servers: servers,
        info_path,
        info,
        clusters,
    }
}

async fn apply(c: &Client, v: serde_json::Value) {
    install::apply_value(c, &v).await.unwrap();
}

/// A copy of `kubeconfig` whose token is `token`.
fn with_token(dir: &Path, name: &str, kubeconfig: &Path, token: &str) -> PathBuf {
    let text = std::fs::read_to_string(kubeconfig).unwrap();
    let out: String = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("token:") {
                format!("    token: {token}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let path = dir.join(name);
    std::fs::write(&path, out).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commands_against_real_clusters() {
    let env = env().await;
    let home = env.tmp.path();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let (east_kc, east) = (s(&env.clusters[0].0), env.clusters[0].1.clone());
    let west_kc = s(&env.clusters[1].0);
    let new_kc = s(&env.clusters[2].0);
    let info = s(&env.info_path);

    // show: both clusters, one section each, the broker without secrets.
    let out = ferry_async(
        home,
        &[
            "show",
            "brokers",
            "--kubeconfig",
            &format!("{east_kc},{west_kc}"),
        ],
    )
    .await;
    let text = stdout(&out);
    assert!(
        text.contains(&format!("Cluster east (kubeconfig {east_kc}, ")),
        "{text}"
    );
    assert!(text.contains("Broker of west"), "{text}");
    assert!(text.contains(&env.info.api_server_url), "{text}");
    assert!(!text.contains(&env.info.token), "{text}");
    let out = ferry_async(
        home,
        &["show", "all", "--kubeconfig", &east_kc, "-o", "json"],
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["clusters"][0]["clusterId"], "east");
    assert_eq!(v["clusters"][0]["versions"][0]["component"], "ferry-agent");
    let out = ferry_async(
        home,
        &["show", "networks", "--kubeconfig", &east_kc, "-o", "yaml"],
    )
    .await;
    assert!(stdout(&out).contains("clusterId: east"));

    // show topology: both clusters in every format (no gateway yet, so no
    // cable); the picture formats only with `topology`.
    let both = format!("{east_kc},{west_kc}");
    let text = stdout(&ferry_async(home, &["show", "topology", "--kubeconfig", &both]).await);
    assert!(
        text.starts_with("Topology: 2 clusters, 0 cables\n"),
        "{text}"
    );
    assert!(
        text.contains("Cluster west   imports 0 · exports 0"),
        "{text}"
    );
    let svg = stdout(
        &ferry_async(
            home,
            &["show", "topology", "--kubeconfig", &both, "-o", "svg"],
        )
        .await,
    );
    assert!(
        svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
        "{svg}"
    );
    assert!(
        svg.contains(r#"data-cluster="east""#) && svg.contains(r#"data-cluster="west""#),
        "{svg}"
    );
    let dot = stdout(
        &ferry_async(
            home,
            &["show", "topology", "--kubeconfig", &both, "-o", "dot"],
        )
        .await,
    );
    assert!(dot.starts_with("graph ferry {"), "{dot}");
    failure(
        &ferry_async(
            home,
            &["show", "connections", "--kubeconfig", &east_kc, "-o", "svg"],
        )
        .await,
        2,
    );

    // dashboard: the page serves both clusters; a non-loopback address is
    // refused without --allow-remote.
    let (_, hint) = failure(
        &ferry_async(
            home,
            &[
                "dashboard",
                "--listen",
                "0.0.0.0:0",
                "--kubeconfig",
                &east_kc,
            ],
        )
        .await,
        2,
    );
    assert!(hint.contains("--help"), "{hint}");
    let page = dashboard_page(home, &both).await;
    assert!(
        page.contains(r#"data-cluster="east""#) && page.contains(r#"data-cluster="west""#),
        "{page}"
    );
    assert!(page.contains("Gateways of west"), "{page}");

    // One of two clusters unreachable: the other is shown, exit 1.
    let dead = home.join("dead.kubeconfig");
    let dead_url = "https://127.0.0.1:1";
    let text = std::fs::read_to_string(&east_kc).unwrap();
    let server_line = text
        .lines()
        .find(|l| l.trim_start().starts_with("server:"))
        .unwrap();
    std::fs::write(
        &dead,
        text.replace(server_line, &format!("    server: {dead_url}")),
    )
    .unwrap();
    let out = ferry_async(
        home,
        &[
            "show",
            "networks",
            "--kubeconfig",
            &format!("{},{east_kc}", s(&dead)),
        ],
    )
    .await;
    let (error, _) = failure(&out, 1);
    assert_eq!(error, "1 of 2 clusters could not be shown");
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text.lines().filter(|l| l.starts_with("✗ ")).count(),
        1,
        "{text}"
    );
    assert!(
        text.contains("connection refused") && text.contains("Networks of east"),
        "{text}"
    );

    // A cluster that never joined.
    let (error, hint) = failure(
        &ferry_async(home, &["show", "--kubeconfig", &new_kc]).await,
        1,
    );
    assert!(
        error.starts_with("ferry is not installed in kubeconfig"),
        "{error}"
    );
    assert!(hint.contains("ferry join"), "{hint}");

    // A bad token: 401.
    let bad = with_token(home, "bad.kubeconfig", &env.clusters[0].0, "not-a-token");
    let (error, hint) = failure(
        &ferry_async(home, &["show", "versions", "--kubeconfig", &s(&bad)]).await,
        1,
    );
    assert!(
        error.ends_with("rejected the credentials (401 Unauthorized)"),
        "{error}"
    );
    assert!(
        error.contains(&format!("kubeconfig {}", bad.display())),
        "{error}"
    );
    assert!(hint.contains("wrong or expired"), "{hint}");

    // export / unexport.
    apply(
        &east,
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "web"}}),
    )
    .await;
    let (error, hint) = failure(
        &ferry_async(
            home,
            &[
                "export",
                "service",
                "nginx",
                "-n",
                "web",
                "--kubeconfig",
                &east_kc,
            ],
        )
        .await,
        1,
    );
    assert_eq!(error, "service web/nginx does not exist");
    assert!(
        hint.contains("kubectl -n web expose deployment nginx"),
        "{hint}"
    );
    apply(
        &east,
        serde_json::json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "nginx", "namespace": "web"},
            "spec": {"ports": [{"name": "http", "port": 80}]}}),
    )
    .await;
    // No agent runs here: the export is made, the wait ends and says so.
    let out = ferry_async(
        home,
        &[
            "export",
            "service",
            "nginx",
            "-n",
            "web",
            "--wait",
            "300ms",
            "--kubeconfig",
            &east_kc,
        ],
    )
    .await;
    let text = stdout(&out);
    assert!(
        text.starts_with("Exported service web/nginx from cluster east"),
        "{text}"
    );
    assert!(text.contains("is it running?"), "{text}");
    let out = ferry_async(
        home,
        &[
            "unexport",
            "service",
            "nginx",
            "-n",
            "web",
            "--kubeconfig",
            &east_kc,
        ],
    )
    .await;
    assert!(stdout(&out).starts_with("Unexported service web/nginx"));
    let (error, hint) = failure(
        &ferry_async(
            home,
            &[
                "unexport",
                "service",
                "nginx",
                "-n",
                "web",
                "--kubeconfig",
                &east_kc,
            ],
        )
        .await,
        1,
    );
    assert!(
        error.starts_with("service web/nginx is not exported"),
        "{error}"
    );
    assert!(hint.contains("kubectl get serviceexports -A"), "{hint}");

    // Forbidden: a token scoped to one cluster id may not write unlabelled objects.
    let scoped = ferry_apiserver::create_token(
        &env.tmp.path().join("east"),
        &ferry_apiserver::Identity::Cluster("east".into()),
    )
    .unwrap();
    let scoped = with_token(home, "scoped.kubeconfig", &env.clusters[0].0, &scoped);
    let (error, hint) = failure(
        &ferry_async(
            home,
            &[
                "export",
                "service",
                "nginx",
                "-n",
                "web",
                "--kubeconfig",
                &s(&scoped),
            ],
        )
        .await,
        1,
    );
    assert!(
        error.contains("forbids creating ServiceExport web/nginx"),
        "{error}"
    );
    assert!(hint.contains("cluster-admin"), "{hint}");

    // join: the id is taken / the CIDRs overlap / the broker is unreachable.
    // `ferry join` of cluster `id` into broker `info` from new_kc's
    // cluster, which must fail with exit code 1: its error and hint.
    let join_fails = |info: &str, id: &str, extra: &[&str]| {
        let mut args = vec!["join", info, "--clusterid", id, "--kubeconfig", &new_kc];
        args.extend_from_slice(extra);
        let args: Vec<String> = args.into_iter().map(String::from).collect();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            failure(&ferry_async(home, &args).await, 1)
        }
    };
    let (error, hint) = join_fails(
        &info,
        "east",
        &[
            "--clustercidr",
            "100.90.0.0/16",
            "--servicecidr",
            "100.91.0.0/16",
        ],
    )
    .await;
    assert!(error.contains("cluster id \"east\" is taken"), "{error}");
    assert!(hint.contains("choose another --clusterid"), "{hint}");
    let (error, hint) = join_fails(
        &info,
        "north",
        &[
            "--clustercidr",
            "100.66.128.0/17",
            "--servicecidr",
            "100.91.0.0/16",
        ],
    )
    .await;
    assert!(
        error.contains("CIDR 100.66.128.0/17 of cluster \"north\" overlaps CIDR 100.66.0.0/16 of cluster \"west\""),
        "{error}"
    );
    assert!(hint.contains("--clustercidr"), "{hint}");
    let mut unreachable = env.info.clone();
    unreachable.api_server_url = dead_url.into();
    let dead_info = home.join("dead-broker-info.ferry");
    std::fs::write(&dead_info, unreachable.encode().unwrap()).unwrap();
    let (error, hint) = join_fails(&s(&dead_info), "north", &[]).await;
    assert_eq!(
        error,
        format!("cannot reach the broker at {dead_url}: connection refused")
    );
    assert!(hint.contains("apiServerUrl in broker-info.ferry"), "{hint}");
    let mut bad_token = env.info.clone();
    bad_token.token = "stolen-and-revoked".into();
    let bad_info = home.join("bad-broker-info.ferry");
    std::fs::write(&bad_info, bad_token.encode().unwrap()).unwrap();
    let (error, _) = join_fails(&s(&bad_info), "north", &[]).await;
    assert_eq!(
        error,
        format!(
            "the broker at {} rejected the credentials (401 Unauthorized)",
            env.info.api_server_url
        )
    );

    // uninstall: needs --yes without a terminal (usage error), then works,
    // then finds nothing.
    let (error, _) = failure(
        &ferry_async(home, &["uninstall", "--kubeconfig", &west_kc]).await,
        2,
    );
    assert!(error.contains("--yes"), "{error}");
    let out = ferry_async(
        home,
        &[
            "uninstall",
            "--yes",
            "--kubeconfig",
            &west_kc,
            "--timeout",
            "5s",
        ],
    )
    .await;
    assert!(
        stdout(&out).starts_with("Removed ferry from cluster west"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let progress = String::from_utf8_lossy(&out.stderr);
    assert!(
        progress.contains("removed 2 DaemonSets (ferry-gateway, ferry-route-agent)"),
        "{progress}"
    );
    assert!(
        progress.contains("Cluster west from the broker"),
        "{progress}"
    );
    let out = ferry_async(home, &["uninstall", "--yes", "--kubeconfig", &west_kc]).await;
    assert!(
        stdout(&out).starts_with("Nothing to remove"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Starts `ferry dashboard` on a free port and returns its page once it
/// shows a cluster.
async fn dashboard_page(home: &Path, kubeconfigs: &str) -> String {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["dashboard", "--listen", "127.0.0.1:0", "--refresh", "200ms"])
        .args(["--kubeconfig", kubeconfigs])
        .env("HOME", home)
        .env("RUST_LOG", "off")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let page = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_string();
        let start = std::time::Instant::now();
        loop {
            let mut s = std::net::TcpStream::connect(&addr).unwrap();
            s.write_all(format!("GET / HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
                .unwrap();
            let mut page = String::new();
            s.read_to_string(&mut page).unwrap();
            if page.contains("data-cluster=") || start.elapsed().as_secs() > 20 {
                return page;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    })
    .await
    .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    page
}
