//! The one error type of this crate.

use std::io;

/// Everything that can go wrong: malformed or unauthenticated input, failed
/// negotiation, bad configuration, and I/O of the runtime.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A message or packet is shorter than its headers say, or a field is invalid.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// The peer marked a payload we do not know as critical.
    #[error("unsupported critical payload type {0}")]
    UnsupportedCritical(u8),
    /// Decryption or authentication of a message or packet failed.
    #[error("integrity check failed")]
    Integrity,
    /// A packet's sequence number was seen before or is left of the replay window.
    #[error("replayed or too old sequence number {0}")]
    Replay(u64),
    /// No ESP SA with this SPI.
    #[error("unknown SPI {0:#010x}")]
    UnknownSpi(u32),
    /// The outbound sequence number space of an SA is used up (rekey first).
    #[error("sequence numbers exhausted on SPI {0:#010x}")]
    SequenceExhausted(u32),
    /// The output buffer is too small for the packet.
    #[error("buffer too small")]
    BufferTooSmall,
    /// A cryptographic operation (key generation, key agreement) failed.
    #[error("cryptographic operation failed: {0}")]
    Crypto(&'static str),
    /// The two sides have no algorithm set in common.
    #[error("no proposal chosen: the peer's {0} proposals share no algorithm set with ours")]
    NoProposalChosen(&'static str),
    /// The traffic selectors of the peer and ours do not overlap.
    #[error("traffic selectors unacceptable: the peer's subnets do not overlap ours")]
    TsUnacceptable,
    /// The peer's AUTH payload did not verify, or its identity is not the expected one.
    #[error("authentication failed: {0}")]
    AuthenticationFailed(String),
    /// The peer answered with an error notify.
    #[error("peer refused: {0}")]
    PeerRefused(String),
    /// Configuration is invalid (short PSK, unknown algorithm name, bad selector).
    #[error("invalid configuration: {0}")]
    Config(String),
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
    /// Any other I/O error (threads).
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
