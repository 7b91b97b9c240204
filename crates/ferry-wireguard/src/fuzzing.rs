//! Entry points for the fuzz targets in `crates/ferry-wireguard/fuzz` (not a public
//! API): the receive path exactly as the inbound thread runs it, with the socket and
//! TUN replaced by sinks.

use crate::fastpath::Counters;
use crate::fastpath::inbound::{Inbound, Wire};
use crate::proto::key::PrivateKey;
use crate::proto::peer::{Identity, Peer, PeerConfig, PeerTable};
use boringtun::noise::TunnResult;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

struct Sink {
    counters: Counters,
}

impl Wire for Sink {
    fn send(&self, _dst: SocketAddr, _contents: &[u8]) {}
    fn name(&self) -> &str {
        "fuzz"
    }
    fn counters(&self) -> &Counters {
        &self.counters
    }
    fn write_tun(&self, batch: &mut ferry_tun::TunBatch) -> io::Result<()> {
        // The same coalescing code the real device runs, minus the write.
        batch.flush(|b| Ok(b.len()))
    }
    fn udp_gso(&self) -> bool {
        true
    }
}

/// A device with one peer whose session is already established in memory, so that
/// fuzzed data messages reach decryption and the allowed-IPs check.
pub struct Harness {
    table: PeerTable,
    sink: Sink,
    /// A valid data message from the peer (a seed for the fuzzer).
    pub sample_data: Vec<u8>,
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness {
    /// Build the harness (does one in-memory handshake).
    #[allow(clippy::expect_used)] // fuzzing support: a failed setup is a bug to see
    pub fn new() -> Self {
        let ours = PrivateKey::from_bytes([7; 32]);
        let theirs = PrivateKey::from_bytes([9; 32]);
        let mut cfg = PeerConfig::new(theirs.public_key());
        cfg.allowed_ips = vec!["100.64.2.0/24".parse().expect("valid prefix")];
        let peer = Arc::new(Peer::new(&ours, cfg, 1));
        let remote = Peer::new(&theirs, PeerConfig::new(ours.public_key()), 2);
        // remote initiates
        let mut b1 = vec![0u8; 2048];
        let mut b2 = vec![0u8; 2048];
        let mut ip = [0u8; 28];
        ip[0] = 0x45;
        ip[3] = 28;
        ip[12..16].copy_from_slice(&[100, 64, 2, 1]);
        ip[16..20].copy_from_slice(&[100, 64, 1, 1]);
        let init = match remote.tunn().encapsulate(&ip, &mut b1) {
            TunnResult::WriteToNetwork(p) => p.to_vec(),
            _ => Vec::new(),
        };
        let resp = match peer.tunn().decapsulate(None, &init, &mut b2) {
            TunnResult::WriteToNetwork(p) => p.to_vec(),
            _ => Vec::new(),
        };
        let _ = remote.tunn().decapsulate(None, &resp, &mut b1);
        let sample_data = match remote.tunn().decapsulate(None, &[], &mut b1) {
            TunnResult::WriteToNetwork(p) => p.to_vec(),
            _ => Vec::new(),
        };
        let nets = peer.config.allowed_ips.clone();
        let table = PeerTable::new(Some(Arc::new(Identity::new(&ours))), [(peer, &nets[..])]);
        Self {
            table,
            sink: Sink {
                counters: Counters::default(),
            },
            sample_data,
        }
    }

    /// Feed datagrams through the receive path: the first byte says into how many
    /// equal pieces (1 to 4) the rest is cut, each piece is one datagram.
    pub fn receive(&self, data: &[u8]) {
        let src: SocketAddr = ([198, 18, 0, 2], 51820).into();
        let mut rx = Inbound::new(&self.sink);
        let (n, rest) = match data.split_first() {
            Some((n, rest)) => (usize::from(*n % 4) + 1, rest),
            None => return,
        };
        let chunk = rest.len().div_ceil(n).max(1);
        rx.datagrams(&self.table, rest.chunks(chunk), src);
        rx.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harness_accepts_valid_and_survives_garbage() {
        let h = Harness::new();
        assert!(!h.sample_data.is_empty());
        let mut input = vec![0u8];
        input.extend_from_slice(&h.sample_data);
        h.receive(&input);
        h.receive(&[]);
        h.receive(&[3, 4, 0, 0, 0, 1, 0, 0, 0]);
        let mut trunc = vec![0u8];
        trunc.extend_from_slice(&h.sample_data[..h.sample_data.len() - 1]);
        h.receive(&trunc);
        let mut hs = vec![0u8; 149];
        hs[1] = 1;
        h.receive(&hs);
    }
}
