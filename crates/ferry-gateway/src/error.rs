//! The gateway's error type.

/// Everything that can stop the gateway engine or one of its steps.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Configuration is missing or invalid (flags, the ferry-broker Secret, the Node).
    #[error("configuration: {0}")]
    Config(String),
    /// A Kubernetes API call failed.
    #[error("{what}: {source}")]
    Kube {
        /// What was being done.
        what: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// Node plumbing failed (`ip`, `nft`, sysctl).
    #[error(transparent)]
    Net(#[from] ferry_net::Error),
    /// The cable device or a connection could not be set up.
    #[error("cable: {0}")]
    Cable(String),
    /// The private key file could not be read or written.
    #[error("key file {path}: {reason}")]
    KeyFile {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// A per-node annotation (public IP, UDP port) cannot be used; the
    /// gateway reports it in its Gateway status.
    #[error("{error}")]
    NodeAnnotation {
        /// The cluster this gateway belongs to (labels its Gateway).
        cluster_id: String,
        /// Which annotation and why.
        error: crate::node_settings::AnnotationError,
    },
    /// The health-check socket failed.
    #[error("health check socket: {0}")]
    HealthSocket(#[source] std::io::Error),
    /// The peer-probe socket (the gateway nodes' direct liveness probes) failed.
    #[error("peer-probe socket: {0}")]
    PeerSocket(#[source] std::io::Error),
    /// The NAT discovery socket (UDP 4490) failed.
    #[error("NAT discovery socket (UDP {port}): {source}")]
    NatDiscoverySocket {
        /// The port.
        port: u16,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// The engine's event-loop task panicked or was cancelled.
    #[error("gateway event loop: {0}")]
    EngineTask(String),
}

impl Error {
    pub(crate) fn kube(what: impl Into<String>, source: kube::Error) -> Self {
        Error::Kube {
            what: what.into(),
            source,
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
