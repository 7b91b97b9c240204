//! The protocol timers: every 250 ms each peer's `Tunn` decides on retransmits,
//! keepalives and rekeys; whatever it emits goes to the peer's endpoint.
//!
//! 250 ms as boringtun's own device: the shortest protocol timer is the
//! 5 s handshake retransmit, and a gateway with 30 peers woke this thread
//! ten times a second for nothing (issue #19: idle cost per cable). What
//! must be fast does not wait for it: a peer that gains an endpoint
//! handshakes at once ([`super::Device::upsert_peer`]), and data to a peer
//! without a session starts one from the data path.

use super::Inner;
use boringtun::noise::TunnResult;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the timers are looked at.
const TICK: Duration = Duration::from_millis(250);

pub(crate) async fn run(inner: Arc<Inner>) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut buf = vec![0u8; 2048];
    let mut last_reset = Instant::now();
    let mut forced: HashMap<crate::PublicKey, Instant> = HashMap::new();
    loop {
        tick.tick().await;
        let table = inner.shared.table();
        if last_reset.elapsed() >= Duration::from_secs(1) {
            last_reset = Instant::now();
            if let Some(id) = table.identity() {
                id.rate_limiter.reset_count();
            }
        }
        for peer in table.peers() {
            let Some(dst) = peer.endpoint() else {
                // Nowhere to send; still let the timers run so state expires.
                let _ = peer.tunn().update_timers(&mut buf);
                continue;
            };
            let mut tunn = peer.tunn();
            match tunn.update_timers(&mut buf) {
                TunnResult::WriteToNetwork(p) => {
                    let _ = inner.shared.udp.send(dst, p, None);
                }
                TunnResult::Err(e) => {
                    tracing::trace!(peer = %peer.public_key.short(), "timers: {e:?}");
                }
                _ => {}
            }
            // Test knob: rekey early.
            if let Some(after) = inner.rekey_after {
                let (since, _, _, _, _) = tunn.stats();
                let last = forced.get(&peer.public_key).copied();
                if since.is_some_and(|s| s >= after) && last.is_none_or(|l| l.elapsed() >= after) {
                    forced.insert(peer.public_key, Instant::now());
                    if let TunnResult::WriteToNetwork(p) =
                        tunn.format_handshake_initiation(&mut buf, true)
                    {
                        tracing::debug!(peer = %peer.public_key.short(), "early rekey");
                        let _ = inner.shared.udp.send(dst, p, None);
                    }
                }
            }
        }
    }
}
