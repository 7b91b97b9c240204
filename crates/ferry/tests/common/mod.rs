//! What the binary's tests share: running `ferry` with a clean environment,
//! a kubeconfig that points nowhere, and in-process API servers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};

/// Runs `ferry ARGS` with a clean environment (no KUBECONFIG, no in-cluster
/// or pod variables, HOME = `home`, logs off).
pub fn ferry(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("POD_NAME")
        .env_remove("POD_NAMESPACE")
        .env("HOME", home)
        .env("RUST_LOG", "off")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// [`ferry`] off the async runtime's threads (the in-process API servers
/// answer it from there).
pub async fn ferry_async(home: &Path, args: &[&str]) -> Output {
    let home = home.to_path_buf();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        ferry(&home, &a)
    })
    .await
    .unwrap()
}

/// Writes `dir/dead.kubeconfig`, whose API server (127.0.0.1:1) refuses
/// every connection.
pub fn dead_kubeconfig(dir: &Path) -> PathBuf {
    let kc = dir.join("dead.kubeconfig");
    std::fs::write(
        &kc,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\ncurrent-context: x\n",
    )
    .unwrap();
    kc
}

/// A client from kubeconfig `kc`.
pub async fn client(kc: &Path) -> Client {
    let kc = Kubeconfig::read_from(kc).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

/// An in-process `ferry apiserver` on a free loopback port.
pub async fn start(dir: PathBuf) -> ferry_apiserver::RunningServer {
    ferry_apiserver::start(ferry_apiserver::Config::new(
        dir,
        "127.0.0.1:0".parse().unwrap(),
    ))
    .await
    .unwrap()
}

/// A broker: an in-process API server in `dir` with `deploy-broker` run
/// against it (namespace ferry-broker, a joiner token of its own).
pub async fn broker(dir: PathBuf) -> (ferry_apiserver::RunningServer, ferry_api::BrokerInfo) {
    let broker = start(dir.clone()).await;
    let bc = client(&broker.admin_kubeconfig).await;
    let joiner = ferry_apiserver::create_token(&dir, &ferry_apiserver::Identity::Joiner).unwrap();
    let info = ferry_ctl::install::deploy_broker(
        &bc,
        &Kubeconfig::read_from(&broker.admin_kubeconfig).unwrap(),
        &ferry_ctl::install::DeployBrokerOptions {
            namespace: "ferry-broker".into(),
            joiner_token: Some(joiner),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    (broker, info)
}
