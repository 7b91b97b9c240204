//! Which runtime the harness's clusters run ferry's components in.
//!
//! `runc` runs them as containers of ferry's OCI image, built here from the
//! binary under test by `scripts/image.py` (as `scripts/image.sh` packs the
//! release build), so a wrong capability or a file written outside a volume
//! fails in a test as it would on a node. `local` runs the host binary in the
//! pod's namespace: faster, the fallback a run chooses with
//! `FERRY_E2E_RUNTIME=local`.
//!
//! The image is built once per binary (keyed by its SHA-256 and the
//! per-daemon binaries') into
//! `$TMPDIR/ferry-e2e-images/`, under a lock, so the test processes that
//! nextest runs in parallel share one build.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use nix::fcntl::{Flock, FlockArg};

use super::binary::repo_root;
use super::process::{output, run};
use crate::oci::Runtime;
use crate::{Error, Result};

/// The variable that chooses the runtime (`runc` or `local`) for a run.
pub const RUNTIME_VAR: &str = "FERRY_E2E_RUNTIME";

/// The test binaries (`tests/e2e/tests/NAME.rs`) proven green under runc,
/// where it is the default (runc.rs chooses runc itself). The others
/// default to `local` until a run of theirs with `FERRY_E2E_RUNTIME=runc`
/// is green (defaulting them to runc unproven could turn CI red): this
/// crate's own `tests/e2e.rs`, which tests the sandbox's local runtime, and
/// `bench/dataplane`, whose figures compare with earlier local runs.
const RUNC_BY_DEFAULT: &[&str] = &[
    "cli",
    "dashboard",
    "dataplane",
    "gather",
    "globalnet",
    "hostnet",
    "ipsec",
    "join_flags",
    "kube_ovn",
    "mcs",
    "mcs_conformance",
    "metrics",
    "nat",
    "seed",
    "seed_flow",
];

/// The runtime of this run: `$FERRY_E2E_RUNTIME`, else runc for the test
/// binaries proven under it and local for the rest.
pub fn e2e_runtime() -> Result<Runtime> {
    match std::env::var(RUNTIME_VAR) {
        Ok(name) => name
            .parse()
            .map_err(|_| Error::Invalid(format!("{RUNTIME_VAR}={name:?}: use runc or local"))),
        Err(_) if RUNC_BY_DEFAULT.contains(&test_binary().as_str()) => Ok(Runtime::Runc),
        Err(_) => Ok(Runtime::Local),
    }
}

/// This test binary's name without cargo's hash.
fn test_binary() -> String {
    let exe = std::env::current_exe().unwrap_or_default();
    binary_name(&exe.file_stem().unwrap_or_default().to_string_lossy())
}

/// `dataplane-4a699669e41b8422` → `dataplane`; a name without a hash as is.
fn binary_name(stem: &str) -> String {
    match stem.rsplit_once('-') {
        Some((name, hash)) if hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()) => {
            name.to_string()
        }
        _ => stem.to_string(),
    }
}

/// The `ferry sandbox create` arguments of [`e2e_runtime`] for clusters
/// made with `bin`: none for local, `--runtime runc --image ARCHIVE` with
/// ferry's image built from `bin` for runc.
pub fn runtime_args(bin: &Path) -> Result<Vec<String>> {
    let runtime = e2e_runtime()?;
    static SAID: std::sync::Once = std::sync::Once::new();
    SAID.call_once(|| {
        let how = match std::env::var(RUNTIME_VAR) {
            Ok(_) => format!("from {RUNTIME_VAR}"),
            Err(_) => format!("this test binary's default; {RUNTIME_VAR}=runc|local overrides it"),
        };
        eprintln!("sandbox clusters run ferry's components in runtime {runtime} ({how})");
    });
    match runtime {
        Runtime::Local => Ok(Vec::new()),
        Runtime::Runc => {
            let image = image_of(bin)?;
            Ok(vec![
                "--runtime".into(),
                "runc".into(),
                "--image".into(),
                image.display().to_string(),
            ])
        }
    }
}

/// ferry's image (`ferry:VERSION`) with `bin` as its binary: the cached
/// archive, built first when there is none. Remembered per process, as
/// hashing the binary takes a second on a loaded machine.
pub fn image_of(bin: &Path) -> Result<PathBuf> {
    static SEEN: Mutex<BTreeMap<PathBuf, PathBuf>> = Mutex::new(BTreeMap::new());
    // A test that panicked while holding it left a map that is still whole.
    let mut seen = SEEN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(archive) = seen.get(bin).filter(|a| a.exists()) {
        return Ok(archive.clone());
    }
    let archive = cached_image(bin)?;
    seen.insert(bin.to_path_buf(), archive.clone());
    Ok(archive)
}

/// The per-daemon binaries `scripts/image.py` packs from beside `ferry`
/// (what the manifests run).
const DAEMON_BINARIES: [&str; 4] = [
    "ferry-agent",
    "ferry-dns",
    "ferry-gateway",
    "ferry-route-agent",
];

/// A name for the image of `bin` and the daemon binaries beside it: a
/// rebuilt daemon alone makes a new image too.
fn image_key(bin: &Path) -> Result<String> {
    let mut key = sha256_of(bin)?[..16].to_string();
    for name in DAEMON_BINARIES {
        key.push('-');
        key.push_str(&sha256_of(&bin.with_file_name(name))?[..8]);
    }
    Ok(key)
}

fn cached_image(bin: &Path) -> Result<PathBuf> {
    let key = image_key(bin)?;
    let dir = std::env::temp_dir().join("ferry-e2e-images");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("creating", &dir, e))?;
    let archive = dir.join(format!("{key}.oci.tar"));
    let _lock = lock_file(&dir.join(format!("{key}.lock")))?;
    if archive.exists() {
        return Ok(archive);
    }
    // Not there yet: this process builds it while the others wait on the lock.
    let partial = archive.with_extension("partial");
    let version = env!("CARGO_PKG_VERSION");
    let build = output(
        Command::new("python3")
            .arg(repo_root().join("scripts/image.py"))
            .arg("--binary")
            .arg(bin)
            .args(["--tag", &format!("ferry:{version}"), "--version", version])
            .args(["--epoch", "0", "--out"])
            .arg(&partial),
    )?;
    if !build.status.success() {
        return Err(Error::Invalid(format!(
            "building ferry's image from {} (scripts/image.py; {RUNTIME_VAR}=local runs \
             without it): {}",
            bin.display(),
            String::from_utf8_lossy(&build.stderr).trim()
        )));
    }
    std::fs::rename(&partial, &archive).map_err(|e| Error::io("renaming", &partial, e))?;
    remove_stale_images(&dir);
    Ok(archive)
}

/// Removes the files of `dir` built over a week ago: every rebuilt binary
/// adds an archive (30 MB), and no test run lasts a week.
fn remove_stale_images(dir: &Path) {
    let week = std::time::Duration::from_secs(7 * 24 * 3600);
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > week));
        if stale {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The hex SHA-256 of a file (`sha256sum`: hashing a debug binary with the
/// unoptimized sha2 of a test build takes seconds).
fn sha256_of(path: &Path) -> Result<String> {
    let out = run(Command::new("sha256sum").arg(path))?;
    let hex = out.split_whitespace().next().unwrap_or_default();
    if hex.len() != 64 {
        return Err(Error::Invalid(format!(
            "sha256sum {}: {out}",
            path.display()
        )));
    }
    Ok(hex.to_string())
}

fn lock_file(path: &Path) -> Result<Flock<File>> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| Error::io("opening", path, e))?;
    Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, e)| Error::io("locking", path, e.into()))
}

#[cfg(test)]
mod tests;
