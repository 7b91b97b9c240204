//! `ferry-ipsec` is ferry's user-space IPsec data path: IKEv2 (RFC 7296) with
//! preshared keys and ESP (RFC 4303) with AES-GCM (RFC 4106) or ChaCha20-Poly1305
//! (RFC 7634), always encapsulated in UDP on the NAT-T port (RFC 3948), over a TUN
//! device. Interoperability is tested against strongSwan (`tests/strongswan.rs`).
//!
//! It is *not* a kernel IPsec (XFRM) configurator, and it implements no
//! cryptographic primitive itself: ciphers, HMAC and key agreement come from `ring`.
//! It speaks only what ferry's cables need: PSK authentication, one child SA per peer
//! covering all subnets, tunnel mode, and no plain (unencapsulated) ESP, since a user-space
//! process cannot receive IP protocol 50 without raw sockets.
//!
//! The crate is split like `ferry-wireguard`:
//! - [`proto`]: the protocol without I/O (messages, exchanges, keys, ESP packets, the
//!   replay window), driven by an explicit `now`;
//! - `fastpath`: the TUN and UDP loops with batching and offloads;
//! - `runtime`: the [`Device`] handle and the IKE control loop on a small tokio
//!   runtime of its own.

mod error;
mod fastpath;
#[doc(hidden)]
pub mod fuzzing;
pub mod proto;
mod runtime;

pub use error::Error;
pub use proto::ike::{Config as PeerConfig, Psk, Status, Timers};
pub use proto::message::Identity;
pub use proto::proposal::{EspSuite, IkeSuite};
pub use proto::ts::TrafficSelector;
pub use runtime::{DEFAULT_MTU, Device, DeviceConfig, DropCounters, NAT_T_PORT, PeerStatus};
