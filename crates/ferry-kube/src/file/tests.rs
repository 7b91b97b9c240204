#![allow(clippy::unwrap_used)]
use std::os::unix::fs::PermissionsExt;

use super::*;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn created_files_are_private_and_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key");
    create_private(&path, b"one").unwrap();
    assert_eq!(mode(&path), 0o600);
    let e = create_private(&path, b"two").unwrap_err();
    assert!(
        matches!(&e, Error::File { source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists),
        "{e}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), b"one");
}

#[test]
fn written_files_are_replaced_whole_and_made_private() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    write_private(&path, b"one").unwrap();
    assert_eq!(mode(&path), 0o600);
    // A file others could read becomes private when replaced.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    write_private(&path, b"two").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"two");
    assert_eq!(mode(&path), 0o600);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["token"], "no temporary file left behind");
}

#[test]
fn private_dirs() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("d");
    create_private_dir(&sub).unwrap();
    assert_eq!(mode(&sub), 0o700);
    assert!(create_private_dir(&sub).is_err(), "exists already");
    let e = write_private(&dir.path().join("missing/f"), b"x").unwrap_err();
    assert!(e.to_string().starts_with("writing "), "{e}");
}

#[test]
fn links_are_written_through_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("target");
    std::fs::write(&target, b"old").unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    write_private(&link, b"new").unwrap();
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read(&target).unwrap(), b"new");
}
