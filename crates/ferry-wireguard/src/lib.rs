//! `ferry-wireguard` is ferry's user-space WireGuard data path: a TUN device and a UDP
//! socket driven by dedicated threads that batch packets (TUN offload through
//! `IFF_VNET_HDR` with TCP/UDP segmentation and coalescing, UDP GSO/GRO,
//! `recvmmsg`), wire-compatible with every WireGuard peer (wireguard-go, the kernel).
//!
//! It is *not* a WireGuard implementation of its own: the protocol (Noise IK handshake,
//! cookies, timers, replay window, rekeying, all cryptography) comes from boringtun's
//! `noise::Tunn`. It does not configure routes or addresses beyond the one optional
//! interface address, and it keeps no state on disk.
//!
//! The crate is split like quinn:
//! - [`proto`]: protocol glue with no I/O (keys, peers, allowed-IPs table, UAPI text
//!   format, IP header parsing);
//! - `fastpath`: the TUN and UDP loops (one thread per direction, so every flow keeps
//!   its order);
//! - `runtime`: the [`Device`] handle, timers and the UAPI control socket, run on a
//!   small tokio runtime of their own.
//!
//! ```no_run
//! # fn main() -> Result<(), ferry_wireguard::Error> {
//! let cfg: ferry_wireguard::DeviceConfig = "[Interface]\nPrivateKey = ...\n".parse()?;
//! let dev = ferry_wireguard::Device::start(cfg)?;
//! # drop(dev); Ok(()) }
//! ```

mod config;
mod error;
mod fastpath;
#[doc(hidden)]
pub mod fuzzing;
pub mod proto;
mod runtime;

pub use config::{DeviceConfig, PeerConfig, read_private_key_file};
pub use error::Error;
pub use proto::allowed_ips::IpNet;
pub use proto::key::{PresharedKey, PrivateKey, PublicKey};
pub use runtime::{Device, PeerStats};
