//! Protocol glue without any I/O: keys, peers and their boringtun `Tunn`, the
//! allowed-IPs routing table, the UAPI text format and IP header parsing.
//! Everything here is testable without root, sockets or devices.

pub mod allowed_ips;
pub mod key;
pub mod packet;
pub mod peer;
pub mod uapi;
