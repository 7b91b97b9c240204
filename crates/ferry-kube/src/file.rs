//! Files only their owner may read: tokens, kubeconfigs, keys.
//!
//! The mode is set when the file is created, never changed afterwards, so
//! there is no moment at which others could read it.

use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::{Error, Result};

const FILE_MODE: u32 = 0o600;
const DIR_MODE: u32 = 0o700;

fn error(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::File {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates `path` (mode 0600) holding `contents`, synced to disk; fails if
/// it exists (a key must never be overwritten by another).
pub fn create_private(path: &Path, contents: &[u8]) -> Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
        .map_err(error(path))?;
    f.write_all(contents)
        .and_then(|()| f.sync_all())
        .map_err(error(path))
}

/// Writes `contents` into `path` (mode 0600), replacing it whole: the new
/// contents go to a fresh sibling file that is renamed over `path`, so a
/// reader sees the old or the new contents, never a mix, and a file that
/// existed with a wider mode ends up 0600 too. A path that is not a regular
/// file (a symlink, `/dev/stdout`, a FIFO) is written through instead, as a
/// shell redirection would: renaming over it would replace the link or the
/// device node itself.
pub fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    if std::fs::symlink_metadata(path).is_ok_and(|m| !m.file_type().is_file()) {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(FILE_MODE)
            .open(path)
            .map_err(error(path))?;
        return f.write_all(contents).map_err(error(path));
    }
    let tmp = sibling(path);
    let _ = std::fs::remove_file(&tmp); // left over from a crash
    // Errors name the file asked for, not the temporary one.
    create_private(&tmp, contents).map_err(|e| match e {
        Error::File { source, .. } => error(path)(source),
        e => e,
    })?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        error(path)(e)
    })
}

/// Creates directory `path` (mode 0700); its parent must exist.
pub fn create_private_dir(path: &Path) -> Result<()> {
    DirBuilder::new()
        .mode(DIR_MODE)
        .create(path)
        .map_err(error(path))
}

/// `dir/.name.new` for `dir/name`.
fn sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.new"))
}

#[cfg(test)]
mod tests;
