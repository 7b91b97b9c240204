//! A cluster's image store: `images/` in its state directory, one
//! directory per image manifest (`<hex>/rootfs` and `<hex>/image.json`) and
//! `refs.json` mapping each reference (`ferry:0.1.0`) to one of them.
//!
//! Importing reads an OCI image layout (`oci-layout`, `index.json`, blobs),
//! from a directory or a tar archive of one, takes every manifest the index
//! names with `org.opencontainers.image.ref.name`, and applies its layers in
//! order with `tar` (whiteouts `.wh.NAME` and `.wh..wh..opq` included).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Error, Result};

const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// What a container needs from its image's config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `KEY=VALUE` entries.
    pub env: Vec<String>,
    /// `uid[:gid]` or a user name of the image's /etc/passwd; empty: root.
    pub user: String,
    pub working_dir: String,
}

/// An unpacked image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Image {
    pub reference: String,
    /// The manifest's digest (`sha256:…`), the pod status's imageID.
    pub digest: String,
    pub config: ImageConfig,
    /// The unpacked root file system.
    pub rootfs: PathBuf,
}

fn image_err(image: &Path, reason: impl Into<String>) -> Error {
    Error::Image {
        image: image.display().to_string(),
        reason: reason.into(),
    }
}

/// `docker.io/library/ferry` → `ferry:latest`; a reference as a node's
/// runtime resolves it (registry and `library/` of Docker Hub dropped, the
/// tag `latest` when there is none; a digest is kept as given).
pub fn normalize(reference: &str) -> String {
    let r = reference.strip_prefix("docker.io/").unwrap_or(reference);
    let r = r.strip_prefix("library/").unwrap_or(r);
    let last = r.rsplit('/').next().unwrap_or(r);
    if r.contains('@') || last.contains(':') {
        r.to_string()
    } else {
        format!("{r}:latest")
    }
}

/// The store of the cluster whose state directory is `cluster_dir`.
pub fn store_dir(cluster_dir: &Path) -> PathBuf {
    cluster_dir.join("images")
}

fn refs_path(store: &Path) -> PathBuf {
    store.join("refs.json")
}

fn read_json(path: &Path) -> Result<Value> {
    let data = std::fs::read(path).map_err(|e| Error::io("reading", path, e))?;
    Ok(serde_json::from_slice(&data)?)
}

fn blob_path(layout: &Path, digest: &str) -> Option<PathBuf> {
    let (algo, hex) = digest.split_once(':')?;
    let ok = !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit());
    ok.then(|| layout.join("blobs").join(algo).join(hex))
}

fn run(cmd: &mut Command) -> Result<String> {
    let shown = format!("{cmd:?}").replace('"', "");
    let out = cmd.output().map_err(|e| Error::Command {
        command: shown.clone(),
        message: e.to_string(),
    })?;
    if !out.status.success() {
        return Err(Error::Command {
            command: shown,
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Imports every named image of `source` (an OCI layout directory or a tar
/// of one) into `store`; returns the references imported.
pub fn import(store: &Path, source: &Path) -> Result<Vec<String>> {
    std::fs::create_dir_all(store).map_err(|e| Error::io("creating", store, e))?;
    let meta = std::fs::metadata(source).map_err(|e| Error::io("reading", source, e))?;
    let unpacked;
    let layout = if meta.is_dir() {
        source.to_path_buf()
    } else {
        unpacked = store.join(".import");
        let _ = std::fs::remove_dir_all(&unpacked);
        std::fs::create_dir_all(&unpacked).map_err(|e| Error::io("creating", &unpacked, e))?;
        run(Command::new("tar")
            .arg("-xf")
            .arg(source)
            .arg("-C")
            .arg(&unpacked))?;
        unpacked.clone()
    };
    let result = import_layout(store, &layout, source);
    if layout != source {
        let _ = std::fs::remove_dir_all(&layout);
    }
    result
}

fn import_layout(store: &Path, layout: &Path, source: &Path) -> Result<Vec<String>> {
    if !layout.join("oci-layout").exists() {
        return Err(image_err(
            source,
            "not an OCI image layout (no oci-layout file); build one with scripts/image.sh",
        ));
    }
    let index = read_json(&layout.join("index.json"))?;
    let mut refs: BTreeMap<String, String> = std::fs::read(refs_path(store))
        .ok()
        .and_then(|d| serde_json::from_slice(&d).ok())
        .unwrap_or_default();
    let mut imported = Vec::new();
    for m in index["manifests"].as_array().into_iter().flatten() {
        let Some(name) = m["annotations"][REF_NAME].as_str() else {
            continue;
        };
        let digest = m["digest"].as_str().unwrap_or_default();
        let image = unpack_manifest(store, layout, source, name, digest)?;
        let hex = digest.split_once(':').map_or(digest, |(_, h)| h);
        refs.insert(normalize(name), hex.to_string());
        imported.push(image.reference);
    }
    if imported.is_empty() {
        return Err(image_err(
            source,
            format!("its index.json names no image ({REF_NAME})"),
        ));
    }
    crate::state::write_file(&refs_path(store), &serde_json::to_vec_pretty(&refs)?)?;
    Ok(imported)
}

fn unpack_manifest(
    store: &Path,
    layout: &Path,
    source: &Path,
    name: &str,
    digest: &str,
) -> Result<Image> {
    let blob = |d: &str| {
        blob_path(layout, d).ok_or_else(|| image_err(source, format!("bad digest {d:?}")))
    };
    let manifest = read_json(&blob(digest)?)?;
    if manifest["mediaType"].as_str() == Some("application/vnd.oci.image.index.v1+json") {
        return Err(image_err(
            source,
            format!("{name} is a multi-platform index; import a single-platform image"),
        ));
    }
    let config = read_json(&blob(manifest["config"]["digest"].as_str().unwrap_or(""))?)?;
    let hex = digest.split_once(':').map_or(digest, |(_, h)| h);
    let dir = store.join(hex);
    let rootfs = dir.join("rootfs");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&rootfs).map_err(|e| Error::io("creating", &rootfs, e))?;
    for layer in manifest["layers"].as_array().into_iter().flatten() {
        apply_layer(&rootfs, &blob(layer["digest"].as_str().unwrap_or(""))?)?;
    }
    make_mountpoints(&rootfs)?;
    let c = &config["config"];
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect()
    };
    let image = Image {
        reference: normalize(name),
        digest: digest.to_string(),
        config: ImageConfig {
            entrypoint: strings(&c["Entrypoint"]),
            cmd: strings(&c["Cmd"]),
            env: strings(&c["Env"]),
            user: c["User"].as_str().unwrap_or_default().to_string(),
            working_dir: c["WorkingDir"].as_str().unwrap_or_default().to_string(),
        },
        rootfs,
    };
    crate::state::write_file(&dir.join("image.json"), &serde_json::to_vec_pretty(&image)?)?;
    Ok(image)
}

/// Extracts one layer tar (compressed or not) over `rootfs`, honouring
/// its whiteouts.
fn apply_layer(rootfs: &Path, layer: &Path) -> Result<()> {
    let listing = run(Command::new("tar").arg("-tf").arg(layer))?;
    let whiteouts: Vec<&str> = listing
        .lines()
        .filter(|l| l.rsplit('/').next().is_some_and(|b| b.starts_with(".wh.")))
        .collect();
    for w in &whiteouts {
        if w.ends_with(".wh..wh..opq") {
            // An opaque directory: what lower layers put there is hidden.
            let dir = rootfs.join(w.trim_end_matches(".wh..wh..opq"));
            for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                remove_path(&e.path());
            }
        }
    }
    run(Command::new("tar")
        .args(["--numeric-owner", "--same-permissions", "-xf"])
        .arg(layer)
        .arg("-C")
        .arg(rootfs))?;
    for w in &whiteouts {
        let marker = rootfs.join(w);
        remove_path(&marker);
        if let Some(name) = w.rsplit('/').next().and_then(|b| b.strip_prefix(".wh."))
            && !name.starts_with(".wh.")
            && let Some(parent) = marker.parent()
        {
            remove_path(&parent.join(name));
        }
    }
    Ok(())
}

fn remove_path(p: &Path) {
    if p.is_dir() && !p.is_symlink() {
        let _ = std::fs::remove_dir_all(p);
    } else {
        let _ = std::fs::remove_file(p);
    }
}

/// The directories and files every container mounts over, made once here
/// so that `runc` never writes into a shared rootfs while starting.
fn make_mountpoints(rootfs: &Path) -> Result<()> {
    for d in ["proc", "sys", "dev", "etc", "tmp", "var/run/secrets"] {
        let p = rootfs.join(d);
        std::fs::create_dir_all(&p).map_err(|e| Error::io("creating", &p, e))?;
    }
    for f in ["etc/resolv.conf", "etc/hosts", "etc/hostname"] {
        let p = rootfs.join(f);
        if !p.exists() {
            std::fs::write(&p, b"").map_err(|e| Error::io("creating", &p, e))?;
        }
    }
    Ok(())
}

/// The image `reference` refers to, if the store has it.
pub fn lookup(store: &Path, reference: &str) -> Option<Image> {
    let refs: BTreeMap<String, String> =
        serde_json::from_slice(&std::fs::read(refs_path(store)).ok()?).ok()?;
    let wanted = normalize(reference);
    let hex = match wanted.split_once("@sha256:") {
        Some((_, hex)) => refs.values().find(|h| *h == hex)?,
        None => refs.get(&wanted)?,
    };
    let data = std::fs::read(store.join(hex).join("image.json")).ok()?;
    serde_json::from_slice(&data).ok()
}

/// The references the store holds, sorted (none when it has no
/// `refs.json`).
pub fn references(store: &Path) -> Vec<String> {
    std::fs::read(refs_path(store))
        .ok()
        .and_then(|data| serde_json::from_slice::<BTreeMap<String, String>>(&data).ok())
        .map(|refs| refs.into_keys().collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn references_normalize_as_a_node_resolves_them() {
        assert_eq!(normalize("ferry"), "ferry:latest");
        assert_eq!(normalize("ferry:0.1.0"), "ferry:0.1.0");
        assert_eq!(normalize("docker.io/library/ferry:0.1.0"), "ferry:0.1.0");
        assert_eq!(normalize("docker.io/ferry"), "ferry:latest");
        assert_eq!(
            normalize("localhost:5000/ferry-dev/ferry"),
            "localhost:5000/ferry-dev/ferry:latest"
        );
        assert_eq!(
            normalize("quay.io/x/ferry@sha256:ab"),
            "quay.io/x/ferry@sha256:ab"
        );
    }

    #[test]
    fn references_lists_what_refs_json_maps() {
        let store = std::env::temp_dir().join(format!("ferry-store-refs-{}", std::process::id()));
        std::fs::create_dir_all(&store).unwrap();
        assert!(references(&store).is_empty());
        std::fs::write(refs_path(&store), r#"{"x:1": "def", "ferry:0.1.0": "abc"}"#).unwrap();
        assert_eq!(references(&store), ["ferry:0.1.0", "x:1"]);
        std::fs::remove_dir_all(&store).unwrap();
    }
}
