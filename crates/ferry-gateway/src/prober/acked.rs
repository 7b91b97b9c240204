//! The acknowledged request: an extension of [`ferry_api::health_probe`]
//! that lets one side of a cable probe for both.
//!
//! A plain request proves nothing to the side that receives it about its
//! own direction; so today both gateways of a cable send requests and echo
//! each other's (four datagrams per interval through the cable, each an
//! encryption and a wake-up on both sides). An acknowledged request also
//! says how long ago, on the sender's clock, the sender last got an echo
//! from the receiver, and the round-trip time it measured then: a fresh
//! acknowledgement proves the receiver's echoes reach the sender, so the
//! receiver needs no requests of its own (two datagrams per interval).
//!
//! Kind byte 2 and the longer length make older gateways' and `ferry-ctl`'s
//! decoders ([`Probe::decode`]) ignore it, so a gateway sends it only to a
//! remote whose Endpoint says it understands it ([`BACKEND_CONFIG_KEY`]).
//! Its echo is a plain [`Probe`] reply.

use std::time::Duration;

use ferry_api::health_probe::{MAGIC, PROBE_LEN, Probe};

/// The Endpoint `backendConfig` key (value [`BACKEND_CONFIG_VALUE`]) by which
/// a gateway says it answers acknowledged requests and, when it has the
/// higher cluster id, relies on them instead of probing.
pub const BACKEND_CONFIG_KEY: &str = "healthCheckAck";
/// The value of [`BACKEND_CONFIG_KEY`].
pub const BACKEND_CONFIG_VALUE: &str = "true";

/// The kind byte of an acknowledged request (0 and 1 are [`Probe`]'s).
const KIND: u8 = 2;

/// Size of an acknowledged request on the wire.
pub const ACKED_LEN: usize = PROBE_LEN + 16;

/// A request that also reports the sender's last echo from the receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AckedRequest {
    /// Sequence number and send time, echoed back as a [`Probe`] reply.
    pub probe: Probe,
    /// How long before `probe.sent_nanos` the newest request the receiver
    /// echoed was sent (`None`: no echo yet).
    pub echo_age: Option<Duration>,
    /// The round-trip time of that echo.
    pub rtt: Option<Duration>,
}

impl AckedRequest {
    /// The wire form: a [`Probe`] request with kind 2, then the echo age and
    /// the RTT in nanoseconds (big-endian; all ones: none).
    pub fn encode(&self) -> [u8; ACKED_LEN] {
        let mut b = [0u8; ACKED_LEN];
        b[..PROBE_LEN].copy_from_slice(
            &Probe {
                reply: false,
                ..self.probe
            }
            .encode(),
        );
        b[4] = KIND;
        let nanos = |d: Option<Duration>| {
            d.map_or(u64::MAX, |d| {
                u64::try_from(d.as_nanos()).unwrap_or(u64::MAX - 1)
            })
        };
        b[PROBE_LEN..PROBE_LEN + 8].copy_from_slice(&nanos(self.echo_age).to_be_bytes());
        b[PROBE_LEN + 8..].copy_from_slice(&nanos(self.rtt).to_be_bytes());
        b
    }

    /// Parses a datagram; anything that is not exactly an acknowledged
    /// request is `None`.
    pub fn decode(b: &[u8]) -> Option<AckedRequest> {
        if b.len() != ACKED_LEN || b[..4] != MAGIC || b[4] != KIND {
            return None;
        }
        let mut plain = [0u8; PROBE_LEN];
        plain.copy_from_slice(&b[..PROBE_LEN]);
        plain[4] = 0;
        let field = |at: usize| {
            let mut v = [0u8; 8];
            v.copy_from_slice(&b[at..at + 8]);
            let n = u64::from_be_bytes(v);
            (n != u64::MAX).then(|| Duration::from_nanos(n))
        };
        Some(AckedRequest {
            probe: Probe::decode(&plain)?,
            echo_age: field(PROBE_LEN),
            rtt: field(PROBE_LEN + 8),
        })
    }
}
