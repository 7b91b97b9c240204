//! Pods as real containers: the `runc` runtime of a sandbox cluster
//! (`ferry sandbox create --runtime runc --image ARCHIVE`).
//!
//! [`store`] imports OCI images (an archive such as `scripts/image.sh`
//! builds, or an image layout directory) into the cluster's state directory
//! and unpacks their root file systems; [`spec`] turns a pod's container
//! into an OCI runtime spec (the image's rootfs, read-only when the pod says
//! so; the pod's network namespace; command/args/env; user and group;
//! capabilities as containerd grants them; volumes as bind mounts; cgroup
//! limits); [`runc`] runs it with `runc run`, in the foreground so that the
//! runner supervises it like a local process.
//!
//! It is not a general container engine: no pulling from registries (a
//! container whose image is not in the store runs as a local process, as
//! in the default `local` runtime), no seccomp or AppArmor profiles, no
//! user namespaces; of the volume types only emptyDir and hostPath (kept
//! under the sandbox's per-node directory, never the host's own path).

pub mod runc;
pub mod spec;
pub mod store;

use serde::{Deserialize, Serialize};

/// How a sandbox cluster runs its pods' containers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Runtime {
    /// Host processes in the pod's network namespace (`ip netns exec`);
    /// ferry's image runs the local `ferry` binary. Fast; no isolation.
    #[default]
    Local,
    /// Containers of the images in the cluster's store run under `runc`;
    /// other containers run as in `local`.
    Runc,
}

impl Runtime {
    /// The name `--runtime` takes.
    pub fn as_str(&self) -> &'static str {
        match self {
            Runtime::Local => "local",
            Runtime::Runc => "runc",
        }
    }

    /// Whether this is the default (kept out of `cluster.json`).
    pub fn is_local(&self) -> bool {
        *self == Runtime::Local
    }
}

impl std::str::FromStr for Runtime {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Runtime> {
        match s {
            "local" => Ok(Runtime::Local),
            "runc" => Ok(Runtime::Runc),
            _ => Err(crate::Error::Invalid(format!(
                "unknown runtime {s:?}: use local or runc"
            ))),
        }
    }
}

impl std::fmt::Display for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
