//! The one error type of this crate.

use std::io;

/// Opening the TUN device or the UDP socket failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
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
}
