//! The crate's single error type.

use std::fmt;
use std::path::PathBuf;

/// Which API a client was being built for (the hint a user gets depends on
/// it: a bad broker client means a bad `broker-info.ferry`, anything else a
/// bad kubeconfig).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientFor {
    /// The kubeconfig file at this path (reading it).
    KubeconfigFile(PathBuf),
    /// `$KUBECONFIG` or `~/.kube/config` (reading it).
    DefaultKubeconfig,
    /// A kubeconfig that was read but cannot be turned into a configuration.
    Kubeconfig,
    /// The in-cluster configuration (no kubeconfig given or found).
    InCluster,
    /// A cluster whose configuration is complete.
    Cluster,
    /// The broker of `broker-info.ferry`, at this URL when it is known.
    Broker {
        /// The broker's API server URL.
        url: Option<String>,
    },
}

impl fmt::Display for ClientFor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientFor::KubeconfigFile(p) => write!(f, "{}", p.display()),
            ClientFor::DefaultKubeconfig => f.write_str("the default kubeconfig"),
            ClientFor::Kubeconfig => f.write_str("the kubeconfig"),
            ClientFor::InCluster => {
                f.write_str("this cluster (no --kubeconfig, no KUBECONFIG, not in a pod)")
            }
            ClientFor::Cluster => f.write_str("the cluster"),
            ClientFor::Broker { url: None } => f.write_str("the broker"),
            ClientFor::Broker { url: Some(u) } => write!(f, "the broker at {u}"),
        }
    }
}

/// Everything that can go wrong in `ferry-kube`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Building a client (or reading the configuration for one) failed.
    #[error("cannot build a client for {api}: {reason}")]
    Client {
        /// Which API.
        api: ClientFor,
        /// Why.
        reason: String,
    },
    /// A call to a Kubernetes API failed.
    #[error("{context}: {source}")]
    Kube {
        /// What was being done.
        context: String,
        /// The client's error.
        #[source]
        source: Box<kube::Error>,
    },
    /// A kubeconfig lacks what is needed from it (server, CA, context).
    #[error("configuration: {0}")]
    KubeconfigContents(String),
    /// A TokenRequest was answered without a token.
    #[error("configuration: the broker returned no token for {service_account}")]
    NoToken {
        /// The ServiceAccount asked for.
        service_account: String,
    },
    /// A private file could not be written.
    #[error("writing {}: {source}", path.display())]
    File {
        /// The file (or directory).
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The `/metrics` server could not listen (or stopped).
    #[error("serving /metrics on {addr}: {source}")]
    Metrics {
        /// The address asked for.
        addr: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// A [`Error::Kube`] with context.
    pub fn kube(context: impl Into<String>, source: kube::Error) -> Self {
        Error::Kube {
            context: context.into(),
            source: Box::new(source),
        }
    }

    pub(crate) fn client(api: ClientFor, reason: impl ToString) -> Self {
        Error::Client {
            api,
            reason: reason.to_string(),
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
