//! Liveness among the active-active gateways of one cluster, without I/O:
//! whom each gateway probes and what it does with the verdicts.
//!
//! Every active-active gateway carries traffic, so one that dies without a
//! graceful stop (kill -9, node gone) keeps blackholing its flows until
//! its Endpoint goes: the route agents keep it as a next hop and its remote
//! partners keep their cable to it. So each gateway probes every other
//! gateway of its cluster directly (the peer probes of [`crate::peer`], on
//! the node network, to the private IP of each one's Endpoint) and withdraws
//! the Endpoint of one it judges down; the route agents then drop its next
//! hop and the remote clusters their cable to it. No API write at steady
//! state: the probes are UDP, and a withdrawal is one delete per failure
//! (two survivors racing both delete; the second finds it gone).
//!
//! A gateway that finds its own Endpoint withdrawn while alive (a
//! partition, or it was descheduled past the detection time) publishes it
//! again. That cannot flap: a peer reports a verdict only when it changes,
//! a re-published Endpoint is a new target that starts from
//! [`Verdict::Unknown`], and only a gateway that answered since can be
//! judged down again by the detection time.
//!
//! A gateway that never answers at all (killed right after publishing its
//! Endpoint, before anyone heard it) is judged down once its Endpoint has
//! stood [`crate::peer_prober::NEVER_ANSWERED_GRACE`] without an answer.
//! Each prober does that once per peer name until the peer answers, so a
//! live gateway whose probes are blocked is withdrawn once, re-publishes,
//! and stays (with a warning naming it in the prober's log).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use ferry_api::EndpointSpec;
use ferry_api::gateway_pairs::{claimed_slot, slots};

use crate::peer::Verdict;

/// The other gateways of `cluster_id` to probe: their Endpoint's name →
/// its private IP at the peer-probe `port` (the same on every gateway of a
/// cluster: one `ferry join` sets it).
pub fn peer_targets(
    cluster_id: &str,
    me: &str,
    endpoints: &BTreeMap<String, EndpointSpec>,
    port: u16,
) -> BTreeMap<String, SocketAddr> {
    endpoints
        .iter()
        .filter(|(n, s)| s.cluster_id == cluster_id && n.as_str() != me)
        .filter(|(_, s)| matches!(s.private_ip, IpAddr::V4(_)))
        .map(|(n, s)| (n.clone(), SocketAddr::new(s.private_ip, port)))
        .collect()
}

/// Whether a verdict on peer `name` means withdrawing its Endpoint: it is
/// down and still one of the peers (an Endpoint already gone, or replaced
/// at another address, is left alone).
pub fn should_withdraw(
    name: &str,
    addr: SocketAddr,
    verdict: Verdict,
    peers: &BTreeMap<String, SocketAddr>,
) -> bool {
    verdict == Verdict::Down && peers.get(name) == Some(&addr)
}

/// Why this gateway must publish its Endpoint again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Republish {
    /// It was there and is gone while this gateway runs: a peer withdrew it.
    Withdrawn,
    /// Another gateway claims the same slot under a lower name (both
    /// published at once): claim the slot this one effectively holds.
    SlotClash {
        claimed: Option<usize>,
        holds: usize,
    },
}

/// Compares this gateway's Endpoint `me` before and after a change of the
/// Endpoints; `None`: nothing to do.
pub fn check_own_endpoint(
    cluster_id: &str,
    me: &str,
    before: &BTreeMap<String, EndpointSpec>,
    after: &BTreeMap<String, EndpointSpec>,
) -> Option<Republish> {
    let Some(mine) = after.get(me) else {
        return before.contains_key(me).then_some(Republish::Withdrawn);
    };
    let holds = *slots(cluster_id, after).get(me)?;
    let claimed = claimed_slot(mine);
    (claimed != Some(holds)).then_some(Republish::SlotClash { claimed, holds })
}

#[cfg(test)]
mod tests;
