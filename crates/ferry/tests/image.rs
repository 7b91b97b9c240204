//! `scripts/image.py` (what `scripts/image.sh` runs): two builds from one
//! binary give one digest and byte-identical archives, and the image holds
//! exactly ferry, the node programs it runs, their libraries and two /etc
//! files — no shell, no package manager. Uses the test build of `ferry`
//! (the release build is what `image.sh` packs; the packing is the same).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .and_then(Path::parent)
        .unwrap()
}

/// Builds the archive into `out`; returns the manifest digest it printed.
fn build(out: &Path) -> String {
    let run = Command::new("python3")
        .arg(repo_root().join("scripts/image.py"))
        .args(["--binary", env!("CARGO_BIN_EXE_ferry")])
        .args(["--tag", "ferry:0.1.0", "--version", "0.1.0"])
        .args(["--epoch", "1700000000", "--out"])
        .arg(out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "image.py: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    String::from_utf8(run.stdout).unwrap().trim().to_string()
}

fn tar(args: &[&str], dir: &Path) -> String {
    let out = Command::new("tar")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "tar {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn digest_path(digest: &str) -> String {
    format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"))
}

#[test]
fn image_is_reproducible_and_holds_only_what_ferry_needs() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.tar"), dir.path().join("b.tar"));
    let digest = build(&a);
    assert_eq!(build(&b), digest, "a second build gave another digest");
    assert!(
        std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
        "the two archives differ"
    );

    // The layer named by the manifest the index names.
    let x = dir.path().join("x");
    std::fs::create_dir(&x).unwrap();
    tar(&["-xf", a.to_str().unwrap()], &x);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(x.join("index.json")).unwrap()).unwrap();
    let m = &index["manifests"][0];
    assert_eq!(m["digest"], digest.as_str());
    assert_eq!(
        m["annotations"]["org.opencontainers.image.ref.name"],
        "ferry:0.1.0"
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(x.join(digest_path(&digest))).unwrap()).unwrap();
    let config: serde_json::Value = serde_json::from_slice(
        &std::fs::read(x.join(digest_path(manifest["config"]["digest"].as_str().unwrap())))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(config["config"]["Entrypoint"][0], "/usr/bin/ferry");
    assert_eq!(
        config["config"]["User"], "65532:65532",
        "non-root by default"
    );
    let layer = digest_path(manifest["layers"][0]["digest"].as_str().unwrap());

    let listing = tar(&["-tvzf", &layer], &x);
    let files: BTreeSet<String> = listing
        .lines()
        .filter(|l| l.starts_with('-'))
        .map(|l| l.split_whitespace().last().unwrap().to_string())
        .collect();
    for needed in [
        "usr/bin/ferry",
        "usr/sbin/ip",
        "usr/sbin/bridge",
        "usr/sbin/nft",
        "usr/sbin/sysctl",
        "etc/passwd",
        "etc/group",
        "lib64/ld-linux-x86-64.so.2",
        "lib/x86_64-linux-gnu/libc.so.6",
    ] {
        assert!(files.contains(needed), "{needed} missing from:\n{listing}");
    }
    let others: Vec<&String> = files
        .iter()
        .filter(|f| !(f.starts_with("usr/") || f.starts_with("etc/")))
        .filter(|f| !f.contains(".so"))
        .collect();
    assert!(others.is_empty(), "unexpected files: {others:?}");
    for absent in ["bin/sh", "usr/bin/sh", "usr/bin/dpkg", "usr/bin/apt"] {
        assert!(!files.contains(absent), "{absent} is in the image");
    }
    assert!(
        listing
            .lines()
            .all(|l| l.contains("0/0") && l.contains("2023-11-14")),
        "owners and times are not normalised:\n{listing}"
    );
}
