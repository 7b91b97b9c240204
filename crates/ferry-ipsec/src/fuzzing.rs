//! Entry points for the fuzz targets in `crates/ferry-ipsec/fuzz` (not a public API):
//! the ESP receive path exactly as the inbound thread runs it (with the TUN and the
//! control channel replaced by sinks), and IKE input to an established session.

use crate::fastpath::inbound::{Inbound, Sink};
use crate::fastpath::{Counters, IkeDatagram, InboundEntry, SaTable};
use crate::proto::crypto::AeadKey;
use crate::proto::esp::{ESP_OVERHEAD, EspInbound, EspOutbound};
use crate::proto::ike::{Config, Psk, Session, Timers};
use crate::proto::message::Identity;
use crate::proto::proposal::Encr;
use crate::proto::ts::TrafficSelector;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

struct Null {
    counters: Counters,
}

impl Sink for Null {
    fn counters(&self) -> &Counters {
        &self.counters
    }
    fn ike(&self, _d: IkeDatagram) -> bool {
        true
    }
    fn write_tun(&self, batch: &mut ferry_tun::TunBatch) -> io::Result<()> {
        // The same coalescing code the real device runs, minus the write.
        batch.flush(|b| Ok(b.len()))
    }
    fn udp_gso(&self) -> bool {
        true
    }
    fn name(&self) -> &str {
        "fuzz"
    }
}

const A: ([u8; 4], u16) = ([198, 18, 0, 1], 4500);
const B: ([u8; 4], u16) = ([198, 18, 0, 2], 4500);

/// The ESP receive path with one inbound SA, and a valid packet for it.
pub struct EspHarness {
    table: SaTable,
    sink: Null,
    /// A valid ESP datagram for the SA (a seed for the fuzzer).
    pub sample: Vec<u8>,
}

impl Default for EspHarness {
    fn default() -> Self {
        Self::new()
    }
}

impl EspHarness {
    /// Build the harness.
    #[allow(clippy::expect_used)] // fuzzing support: a failed setup is a bug to see
    pub fn new() -> Self {
        let km = [7u8; 36];
        let key = || AeadKey::new(Encr::AesGcm256, &km).expect("key");
        let out = EspOutbound::new(0x1000, key(), false);
        let mut ip = [0u8; 28];
        ip[0] = 0x45;
        ip[3] = 28;
        ip[9] = 17;
        ip[12..16].copy_from_slice(&[100, 64, 2, 1]);
        ip[16..20].copy_from_slice(&[100, 64, 1, 1]);
        let mut sample = vec![0u8; ip.len() + ESP_OVERHEAD];
        let n = out.seal(&ip, 4, &mut sample).expect("seal");
        sample.truncate(n);
        let mut table = SaTable::default();
        let ts = TrafficSelector::subnet([100, 64, 2, 0].into(), 24).expect("selector");
        table.inbound.insert(
            0x1000,
            InboundEntry {
                sa: Arc::new(EspInbound::new(0x1000, key(), false)),
                remote_ts: vec![ts],
            },
        );
        Self {
            table,
            sink: Null {
                counters: Counters::default(),
            },
            sample,
        }
    }

    /// Feed datagrams through the receive path: the first byte says into how many
    /// equal pieces (1 to 4) the rest is cut, each piece is one datagram.
    pub fn receive(&self, data: &[u8]) {
        let mut rx = Inbound::new(&self.sink);
        let (n, rest) = match data.split_first() {
            Some((n, rest)) => (usize::from(*n % 4) + 1, rest),
            None => return,
        };
        let mut rest = rest.to_vec();
        let chunk = rest.len().div_ceil(n).max(1);
        for d in rest.chunks_mut(chunk) {
            rx.datagram(&self.table, d, SocketAddr::from(B));
        }
        rx.flush();
    }
}

/// Two sessions with IKE and child SAs up; fuzzed input goes to the responder.
pub struct IkeHarness {
    responder: Mutex<Session>,
    /// Valid messages seen while establishing (seeds for the fuzzer).
    pub samples: Vec<Vec<u8>>,
}

fn config(local: ([u8; 4], u16), remote: ([u8; 4], u16), initiate: bool) -> Config {
    let (l, r) = (SocketAddr::from(local), SocketAddr::from(remote));
    let ts = |o: u8| {
        vec![TrafficSelector::subnet([100, 64, o, 0].into(), 24).unwrap_or_else(|_| unreachable!())]
    };
    Config {
        psk: Psk::new(vec![1u8; 32]),
        local_id: Identity::ip(l.ip()),
        remote_id: Identity::ip(r.ip()),
        local_addr: l,
        remote_addr: r,
        ike_suites: vec![
            "aes256gcm16-prfsha256-x25519"
                .parse()
                .unwrap_or_else(|_| unreachable!()),
        ],
        esp_suites: vec!["aes256gcm16".parse().unwrap_or_else(|_| unreachable!())],
        local_ts: ts(if initiate { 1 } else { 2 }),
        remote_ts: ts(if initiate { 2 } else { 1 }),
        initiate,
        force_encap: true,
        timers: Timers::default(),
    }
}

impl Default for IkeHarness {
    fn default() -> Self {
        Self::new()
    }
}

impl IkeHarness {
    /// Establish the pair in memory.
    #[allow(clippy::expect_used)] // fuzzing support: a failed setup is a bug to see
    pub fn new() -> Self {
        let now = Instant::now();
        let mut a = Session::new(config(A, B, true), now).expect("config");
        let mut b = Session::new(config(B, A, false), now).expect("config");
        let mut samples = Vec::new();
        for _ in 0..4 {
            a.poll(now);
            for t in a.take_transmits().into_iter().filter(|t| t.bytes.len() > 4) {
                samples.push(t.bytes[4..].to_vec());
                let _ = b.handle(now, SocketAddr::from(A), &t.bytes[4..]);
            }
            for t in b.take_transmits().into_iter().filter(|t| t.bytes.len() > 4) {
                let _ = a.handle(now, SocketAddr::from(B), &t.bytes[4..]);
            }
        }
        Self {
            responder: Mutex::new(b),
            samples,
        }
    }

    /// Give `data` to the responder as an IKE message, and let it run its timers.
    /// The first byte steers the fuzzer past the cheapest checks: bit 0 sets the
    /// header's length to the message's, bit 1 puts the established IKE SA's SPIs in.
    pub fn receive(&self, data: &[u8]) {
        let Some((mode, rest)) = data.split_first() else {
            return;
        };
        let mut msg = rest.to_vec();
        if mode & 2 != 0
            && msg.len() >= 16
            && let Some(auth) = self.samples.get(1).filter(|a| a.len() >= 16)
        {
            msg[..16].copy_from_slice(&auth[..16]);
        }
        if mode & 1 != 0 && msg.len() >= 28 {
            let len = msg.len() as u32;
            msg[24..28].copy_from_slice(&len.to_be_bytes());
        }
        let mut s = crate::proto::lock(&self.responder);
        let now = Instant::now();
        let _ = s.handle(now, SocketAddr::from(A), &msg);
        s.poll(now);
        let _ = s.take_transmits();
        let _ = crate::proto::message::parse(&msg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harnesses_accept_valid_input_and_survive_garbage() {
        let h = EspHarness::new();
        let mut input = vec![0u8];
        input.extend_from_slice(&h.sample);
        h.receive(&input);
        assert_eq!(
            h.sink
                .counters
                .rx_refused
                .load(std::sync::atomic::Ordering::Relaxed),
            0
        );
        h.receive(&input); // a replay
        assert_eq!(
            h.sink
                .counters
                .rx_refused
                .load(std::sync::atomic::Ordering::Relaxed),
            1
        );
        h.receive(&[]);
        h.receive(&[3, 0, 0, 0, 0, 1, 0, 0, 0]);
        h.receive(&input[..input.len() - 1]);

        let i = IkeHarness::new();
        assert!(i.samples.len() >= 2);
        for s in &i.samples {
            for mode in 0..4u8 {
                let mut input = vec![mode];
                input.extend_from_slice(s);
                i.receive(&input);
                i.receive(&input[..input.len() / 2]);
            }
        }
        assert_eq!(
            crate::proto::lock(&i.responder).status(),
            &crate::Status::Established
        );
    }
}
