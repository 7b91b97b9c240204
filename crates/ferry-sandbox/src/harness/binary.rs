//! The `ferry` binary under test and whether a sandbox test can run.

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
