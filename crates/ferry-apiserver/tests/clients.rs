//! The client-compatibility suite: official non-Rust clients against a
//! real `ferry apiserver` (issue 21). `scripts/setup.sh` installs the
//! Python `kubernetes` client in two versions (32.0.1, which sends
//! `watch=True`, and 37.0.2) and `@kubernetes/client-node` 1.4.0 under
//! `$FERRY_CLIENT_COMPAT_DIR` (default `~/.cache/ferry/client-compat`); each
//! runs its script in `clients/`.
//!
//! Without those installs the test says so and passes, unless
//! `FERRY_REQUIRE_CLIENT_COMPAT=1` (set by `scripts/test.sh`, so CI runs it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

const PYTHON_CLIENTS: &[&str] = &["32.0.1", "37.0.2"];
const NODE_CLIENT: &str = "1.4.0";

fn compat_dir() -> PathBuf {
    std::env::var_os("FERRY_CLIENT_COMPAT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_default();
            PathBuf::from(home).join(".cache/ferry/client-compat")
        })
}

/// Runs `program args… KUBECONFIG` against a fresh server (the scripts
/// create fixed names); panics with its output if it fails.
async fn run_against_server(what: &str, mut command: Command) {
    let dir = tempfile::tempdir().unwrap();
    let config = ferry_apiserver::Config::new(dir.path(), "127.0.0.1:0".parse().unwrap());
    let running = ferry_apiserver::start(config).await.unwrap();
    command.arg(&running.admin_kubeconfig);
    let out = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    running.shutdown().await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{what}:\n{stdout}\n{stderr}");
    eprintln!("{what}:\n{stdout}");
}

/// True when `path` exists; otherwise says what is skipped (or fails when
/// the suite is required).
fn installed(path: &Path, what: &str) -> bool {
    if path.exists() {
        return true;
    }
    let required = std::env::var("FERRY_REQUIRE_CLIENT_COMPAT").as_deref() == Ok("1");
    assert!(
        !required,
        "{} is missing: run scripts/setup.sh",
        path.display()
    );
    eprintln!(
        "skipping {what}: {} is missing (scripts/setup.sh installs it)",
        path.display()
    );
    false
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_clients_see_kubernetes_behaviour() {
    for version in PYTHON_CLIENTS {
        let python = compat_dir()
            .join(format!("python-kubernetes-{version}"))
            .join("bin/python");
        let what = format!("Python kubernetes {version}");
        if !installed(&python, &what) {
            continue;
        }
        let mut command = Command::new(&python);
        command.arg(script("python_compat.py"));
        run_against_server(&what, command).await;
    }
}

/// OpenAPI schemas, Service address allocation, defaults, ReplicaSets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_clients_see_the_api_surface() {
    for version in PYTHON_CLIENTS {
        let python = compat_dir()
            .join(format!("python-kubernetes-{version}"))
            .join("bin/python");
        let what = format!("Python kubernetes {version} (API surface)");
        if !installed(&python, &what) {
            continue;
        }
        let mut command = Command::new(&python);
        command.arg(script("python_api_surface.py"));
        run_against_server(&what, command).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn javascript_client_sees_the_api_surface() {
    let modules = compat_dir()
        .join(format!("node-client-{NODE_CLIENT}"))
        .join("node_modules");
    let what = format!("@kubernetes/client-node {NODE_CLIENT} (API surface)");
    if !installed(&modules.join("@kubernetes/client-node"), &what) {
        return;
    }
    let mut command = Command::new("node");
    command
        .env("NODE_PATH", &modules)
        .arg(script("node_api_surface.mjs"));
    run_against_server(&what, command).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn javascript_client_sees_kubernetes_behaviour() {
    let modules = compat_dir()
        .join(format!("node-client-{NODE_CLIENT}"))
        .join("node_modules");
    let what = format!("@kubernetes/client-node {NODE_CLIENT}");
    if !installed(&modules.join("@kubernetes/client-node"), &what) {
        return;
    }
    let mut command = Command::new("node");
    command
        .env("NODE_PATH", &modules)
        .arg(script("node_compat.mjs"));
    run_against_server(&what, command).await;
}
