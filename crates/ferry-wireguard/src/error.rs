//! The one error type of this crate.

use std::io;

/// Everything that can go wrong when configuring or running a device.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A key was not 32 bytes of base64 (or hex, in UAPI).
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// The configuration text or a value in it is malformed.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A peer that was referred to does not exist.
    #[error("no such peer: {0}")]
    NoSuchPeer(String),
    /// Creating or configuring the TUN device failed.
    #[error("tun device {name}: {source}")]
    Tun {
        /// Interface name.
        name: String,
        /// Underlying error.
        source: io::Error,
    },
    /// Binding or configuring the UDP socket failed.
    #[error("udp socket: {0}")]
    Udp(io::Error),
    /// Any other I/O error (control socket, threads).
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl From<ferry_tun::Error> for Error {
    fn from(e: ferry_tun::Error) -> Self {
        match e {
            ferry_tun::Error::Tun { name, source } => Error::Tun { name, source },
            ferry_tun::Error::Udp(e) => Error::Udp(e),
        }
    }
}
