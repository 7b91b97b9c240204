//! The client-compatibility suite: official non-Rust clients against a
//! real `ferry apiserver` (issue 21). `scripts/setup.sh` installs the
//! Python `kubernetes` client in two versions (32.0.1, which sends
//! `watch=True`, and 37.0.2) under `$FERRY_CLIENT_COMPAT_DIR` (default
//! `~/.cache/ferry/client-compat`); each runs `clients/python_compat.py`.
//!
//! Without those installs the test says so and passes, unless
//! `FERRY_REQUIRE_CLIENT_COMPAT=1` (set by `scripts/test.sh`, so CI runs it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

const PYTHON_CLIENTS: &[&str] = &["32.0.1", "37.0.2"];

fn compat_dir() -> PathBuf {
    std::env::var_os("FERRY_CLIENT_COMPAT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_default();
            PathBuf::from(home).join(".cache/ferry/client-compat")
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_clients_see_kubernetes_behaviour() {
    let required = std::env::var("FERRY_REQUIRE_CLIENT_COMPAT").as_deref() == Ok("1");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients/python_compat.py");
    for version in PYTHON_CLIENTS {
        let python = compat_dir()
            .join(format!("python-kubernetes-{version}"))
            .join("bin/python");
        if !python.exists() {
            assert!(
                !required,
                "{} is missing: run scripts/setup.sh",
                python.display()
            );
            eprintln!(
                "skipping the Python client {version}: {} is missing (scripts/setup.sh installs it)",
                python.display()
            );
            continue;
        }
        // A fresh server per client version: the script creates fixed names.
        let dir = tempfile::tempdir().unwrap();
        let config = ferry_apiserver::Config::new(dir.path(), "127.0.0.1:0".parse().unwrap());
        let running = ferry_apiserver::start(config).await.unwrap();
        let kubeconfig = running.admin_kubeconfig.clone();
        let script = script.clone();
        let out = tokio::task::spawn_blocking(move || {
            Command::new(&python)
                .arg(&script)
                .arg(&kubeconfig)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        running.shutdown().await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "Python kubernetes {version}:\n{stdout}\n{stderr}"
        );
        eprintln!("Python kubernetes {version}:\n{stdout}");
    }
}
