//! `ferry-tun` is the I/O both user-space tunnels (`ferry-wireguard`,
//! `ferry-ipsec`) share: a TUN device opened with offloads (virtio-net
//! header: TSO/USO in, GRO out) and a UDP socket with GSO on send and GRO +
//! `recvmmsg` on receive (through quinn-udp).
//! On the way into the TUN, [`TunBatch`] coalesces the decrypted packets of
//! each TCP/UDP flow into GSO packets (user-space GRO) as they arrive.
//!
//! It is *not* a tunnel: no protocol, no threads, and no look at packets
//! beyond the IP/TCP/UDP headers GRO needs; the tunnels' fast paths drive
//! these handles.

mod error;
mod gro;
mod tun;
mod udp;

pub use error::Error;
pub use gro::{TunBatch, VNET_HDR_LEN};
pub use quinn_udp::RecvMeta;
pub use tun::open_tun;
pub use udp::Udp;
