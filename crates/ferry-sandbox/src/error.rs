//! The crate's one error type.

use std::path::PathBuf;

impl From<ferry_net::Error> for Error {
    fn from(e: ferry_net::Error) -> Self {
        match e {
            ferry_net::Error::Command { command, message }
            | ferry_net::Error::Parse { command, message } => Error::Command { command, message },
            other => Error::Invalid(other.to_string()),
        }
    }
}

/// Everything that can go wrong in the sandbox.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A command (`ip`, `nft`, …) failed.
    #[error("`{command}` failed: {message}")]
    Command { command: String, message: String },
    /// A file or directory could not be read or written.
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Bad input from the user (names, CIDRs, node counts).
    #[error("{0}")]
    Invalid(String),
    /// No such cluster, node or pod.
    #[error("{0}")]
    NotFound(String),
    /// The cluster's API server could not be started.
    #[error("starting the API server: {0}")]
    Apiserver(#[from] ferry_apiserver::Error),
    /// A Kubernetes API call failed.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// Reading a kubeconfig failed.
    #[error("kubeconfig: {0}")]
    Kubeconfig(#[from] kube::config::KubeconfigError),
    /// (De)serialising state failed.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// An OCI image that cannot be imported.
    #[error("image {image}: {reason}")]
    Image { image: String, reason: String },
    /// A container the runc runtime refuses to create, as a node's runtime
    /// would (CreateContainerConfigError).
    #[error("container {container}: {reason}")]
    ContainerConfig { container: String, reason: String },
    /// Something did not happen in time.
    #[error("timed out: {0}")]
    Timeout(String),
}

impl Error {
    /// An I/O error about `path`.
    pub fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            what,
            path: path.into(),
            source,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
