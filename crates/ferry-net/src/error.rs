//! The crate's error type.

use std::net::IpAddr;

/// Everything that can go wrong in ferry's plumbing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A command could not be started or exited non-zero.
    #[error("`{command}` failed: {message}")]
    Command {
        /// The command line, as it would be typed.
        command: String,
        /// Its stderr (and the stdin it was given, if any), or why it could not run.
        message: String,
    },
    /// A command succeeded but printed something we could not understand.
    #[error("`{command}` printed unexpected output: {message}")]
    Parse {
        /// The command line.
        command: String,
        /// What was wrong with the output.
        message: String,
    },
    /// No interface in the namespace holds this address.
    #[error("no interface holds {0}")]
    NoInterface(IpAddr),
    /// An argument no command would accept (e.g. an IPv6 gateway for an IPv4 route).
    #[error("invalid argument: {0}")]
    Invalid(String),
}

impl Error {
    /// Whether this is a failed command whose stderr contains `needle`
    /// (e.g. `"does not exist"`, `"No such file"`).
    pub fn stderr_contains(&self, needle: &str) -> bool {
        matches!(self, Error::Command { message, .. } if message.contains(needle))
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
