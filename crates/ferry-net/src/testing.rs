//! Helpers for root-only tests: network namespaces with unique names that are
//! deleted on drop, and swept when a crashed test process left them behind.
//!
//! Names are `PREFIX-<pid>-<n><role>`; [`sweep`] deletes only namespaces of
//! that prefix whose process is gone, so concurrent test binaries never touch
//! each other's namespaces. Nothing here touches the host namespace.
//!
//! It is the workspace's one netns test guard: this crate's tests, the
//! route agent's and ferry-wireguard's (a dev-dependency) all use it;
//! [`require_root!`](crate::require_root) opens their root-only tests.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::{Result, ip};

/// Prefix of every namespace made by [`Netns::new`].
pub const PREFIX: &str = "fnt";

/// Whether the process runs as root (the netns tests skip otherwise).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn pid_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Deletes `PREFIX-<pid>-…` namespaces whose process no longer exists.
pub fn sweep() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix(&format!("{PREFIX}-")) else {
            continue;
        };
        let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| !pid_alive(p)) {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

/// Skips a root-only test (returns from it, with a note) unless it runs as
/// root; then sweeps namespaces that dead test processes left behind.
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::testing::is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        $crate::testing::sweep();
    };
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A network namespace with `lo` up, deleted (with everything in it) on drop.
#[derive(Debug)]
pub struct Netns {
    /// Its name under /run/netns.
    pub name: String,
}

impl Netns {
    /// Creates `fnt-<pid>-<n><role>` (keep `role` short: a few letters).
    pub fn new(role: &str) -> Result<Self> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("{PREFIX}-{}-{n}{role}", std::process::id());
        ip(None, &["netns", "add", &name])?;
        let ns = Self { name };
        ip(Some(&ns.name), &["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The name as the `netns` argument of this crate's functions.
    pub fn ns(&self) -> Option<&str> {
        Some(&self.name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A unique short tag for interface names in the host namespace
/// (at most 15 bytes in all): `<pid % 0xfffff in hex><n>`.
pub fn tag() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{:x}{n}", std::process::id() % 0xfffff)
}
