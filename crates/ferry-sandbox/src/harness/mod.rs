//! The test harness of every end-to-end test and benchmark that needs
//! sandbox clusters (`tests/e2e`, this crate's `tests/e2e.rs`,
//! `bench/dataplane`): the `ferry` binary under test, commands that fail with
//! their output, polling, the machine-wide sandbox lock, and clusters and
//! pods made through the real binary and kubectl, exactly as a user would.
//!
//! Clusters are deleted when their [`Cluster`] is dropped, even when a test
//! fails half-way (a failed create included). It is not a test framework:
//! plain functions that return the crate's [`Error`](crate::Error), naming
//! the command and its output.

mod cluster;
mod lock;
mod process;

pub use cluster::{Cluster, Pod};
pub use lock::lock;
pub use process::{output, run, run_with_stdin, wait_for};

use std::path::PathBuf;
use std::process::Command;

/// The ferry binary under test: `$FERRY_BIN`, else target/debug/ferry.
pub fn ferry_bin() -> PathBuf {
    std::env::var_os("FERRY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/debug/ferry"))
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A name unique to this process, so tests may run next to a demo or another
/// test binary: `e{tag}{pid mod 100000}`.
pub fn unique(tag: &str) -> String {
    format!("e{tag}{}", std::process::id() % 100_000)
}

/// Whether a sandbox test can run (root); builds the binary once if missing
/// (`scripts/test.sh` builds it first; after changing ferry, rebuild it with
/// `cargo build -p ferry`). Panics when there is still no binary: a test
/// that silently skipped would pass.
pub fn usable() -> bool {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipping: needs root");
        return false;
    }
    static BUILT: std::sync::Once = std::sync::Once::new();
    BUILT.call_once(|| {
        if std::env::var_os("FERRY_BIN").is_none() && !ferry_bin().exists() {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let built = Command::new(cargo)
                .args(["build", "-p", "ferry"])
                .current_dir(repo_root())
                .status()
                .is_ok_and(|s| s.success());
            assert!(built, "cargo build -p ferry failed");
        }
    });
    assert!(
        ferry_bin().exists(),
        "no ferry binary at {} (cargo build -p ferry, or set FERRY_BIN)",
        ferry_bin().display()
    );
    true
}
