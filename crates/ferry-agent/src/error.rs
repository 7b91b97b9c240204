//! The crate's single error type.

/// Everything that can go wrong in `ferry-agent`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A call to a Kubernetes API (the broker's or the cluster's) failed.
    #[error("{context}: {source}")]
    Kube {
        /// What was being done.
        context: String,
        /// The client's error.
        #[source]
        source: Box<kube::Error>,
    },
    /// Bad input: an invalid id, CIDR, broker info, or configuration.
    #[error(transparent)]
    Api(#[from] ferry_api::Error),
    /// The `ferry-broker` Secret is incomplete or invalid.
    #[error(transparent)]
    BrokerSecret(#[from] ferry_deploy::Error),
    /// The agent's configuration is missing or wrong.
    #[error("configuration: {0}")]
    Config(String),
    /// Building a client, a TokenRequest or the token file failed.
    #[error(transparent)]
    Plumbing(#[from] ferry_kube::Error),
}

impl Error {
    /// A [`Error::Kube`] with context.
    pub fn kube(context: impl Into<String>, source: kube::Error) -> Self {
        Error::Kube {
            context: context.into(),
            source: Box::new(source),
        }
    }

    /// The HTTP status code of an API error, if this is one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Kube { source, .. } => match source.as_ref() {
                kube::Error::Api(s) => Some(s.code),
                _ => None,
            },
            _ => None,
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
