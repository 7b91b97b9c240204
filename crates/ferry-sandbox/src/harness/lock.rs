//! The machine-wide sandbox test lock.
//!
//! Tests that run `ferry sandbox delete --all` remove every cluster on the
//! machine, so they take [`lock`] exclusively; every test that creates
//! clusters should hold it shared for as long as its clusters live.

use std::fs::File;

use nix::fcntl::{Flock, FlockArg};

use crate::{Error, Result};

/// Takes the machine-wide sandbox test lock (`$TMPDIR/ferry-sandbox-e2e.lock`),
/// blocking until it is granted. Released on drop.
pub fn lock(exclusive: bool) -> Result<Flock<File>> {
    let path = std::env::temp_dir().join("ferry-sandbox-e2e.lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io("opening", &path, e))?;
    let arg = if exclusive {
        FlockArg::LockExclusive
    } else {
        FlockArg::LockShared
    };
    Flock::lock(f, arg).map_err(|(_, e)| Error::io("locking", &path, e.into()))
}
