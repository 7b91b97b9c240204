//! The engine's NAT discovery bookkeeping: one [`Discovery`] per remote
//! cluster while this gateway is active, and the remote probes that arrived
//! before the Endpoint they belong to.
//!
//! Why the probes are kept: after a failover in a remote cluster, its new
//! gateway starts probing us as soon as it wins its lease, often before its
//! new Endpoint reaches us through the broker. Its next probe comes only a
//! refresh interval later (it already has our answer), and a VXLAN cable
//! waits for the remote's probes to arrive, so dropping that first probe
//! left the cable pointing at the dead gateway for about a second.

use std::collections::BTreeMap;
use std::net::SocketAddrV4;
use std::time::Instant;

use ferry_api::EndpointSpec;
use ferry_api::nat_discovery::{Peer, Request};
use tokio::sync::{mpsc, watch};

use crate::nat_discovery::{Discovery, Outcome, Policy};
use crate::nat_prober::Outgoing;
use crate::remote::{self, Found};

/// Clusters whose latest probe is remembered (anyone can send probes
/// naming any cluster, so this is bounded).
const MAX_REMEMBERED: usize = 64;

/// NAT discovery towards every remote gateway, while this one is active.
pub(super) struct NatState {
    pub(super) policy: Policy,
    /// Remote cluster → its discovery.
    pub(super) discoveries: BTreeMap<String, Discovery>,
    /// Remote cluster → its latest probe, for a discovery started later.
    latest_inbound: BTreeMap<String, (SocketAddrV4, Request)>,
    /// What the cables were last planned with.
    pub(super) found: BTreeMap<String, Found>,
    /// This gateway as the responder names itself (None: passive, silent).
    pub(super) identity: watch::Sender<Option<Peer>>,
    outgoing: mpsc::Sender<Vec<Outgoing>>,
}

impl NatState {
    pub(super) fn new(
        identity: watch::Sender<Option<Peer>>,
        outgoing: mpsc::Sender<Vec<Outgoing>>,
    ) -> Self {
        Self {
            policy: Policy::default(),
            discoveries: BTreeMap::new(),
            latest_inbound: BTreeMap::new(),
            found: BTreeMap::new(),
            identity,
            outgoing,
        }
    }

    pub(super) fn found(&self, cluster: &str, now: Instant) -> Found {
        match self.discoveries.get(cluster) {
            Some(d) => Found {
                outcome: d.outcome(now, &self.policy),
                inbound_seen: d.inbound_seen(),
                timed_out: d.timed_out(now, &self.policy),
            },
            None => Found {
                outcome: Outcome::Probing,
                inbound_seen: false,
                timed_out: false,
            },
        }
    }

    /// A remote gateway's probe arrived: its cluster's discovery hears of
    /// it, and it is remembered for a discovery started later (its Endpoint
    /// not here yet, or about to change after a failover there), which takes
    /// it only if it came from the gateway that discovery targets. Returns
    /// whether it was taken.
    pub(super) fn on_request(
        &mut self,
        from: SocketAddrV4,
        request: Request,
        active: bool,
    ) -> bool {
        if !active {
            return false;
        }
        let cluster = request.sender.cluster_id.clone();
        if let Some(d) = self.discoveries.get_mut(&cluster) {
            d.on_request(from, &request);
        }
        if self.latest_inbound.len() >= MAX_REMEMBERED
            && !self.latest_inbound.contains_key(&cluster)
        {
            return self.discoveries.contains_key(&cluster);
        }
        self.latest_inbound.insert(cluster, (from, request));
        true
    }

    /// Starts (or restarts, when its addresses changed) discovery towards
    /// every remote Endpoint and forgets vanished ones.
    pub(super) fn track(&mut self, remotes: &BTreeMap<String, EndpointSpec>, local_cluster: &str) {
        let now = Instant::now();
        let mut seen = Vec::new();
        for (name, spec) in remotes {
            if spec.cluster_id == local_cluster {
                continue;
            }
            let Some(target) = remote::discovery_target(name, spec) else {
                continue;
            };
            seen.push(spec.cluster_id.clone());
            if self
                .discoveries
                .get(&spec.cluster_id)
                .is_some_and(|d| *d.target() == target)
            {
                continue;
            }
            let mut d = Discovery::new(target, now, crate::random_u64());
            if let Some((from, req)) = self.latest_inbound.get(&spec.cluster_id)
                && d.target().sent(*from, req)
            {
                d.on_request(*from, req);
            }
            self.discoveries.insert(spec.cluster_id.clone(), d);
        }
        self.discoveries.retain(|c, _| seen.contains(c));
        self.found.retain(|c, _| seen.contains(c));
    }

    /// Sends the probes that are due; `cable_proven` says whether a
    /// remote cluster's cable passes its health checks.
    pub(super) fn probe(&mut self, cable_proven: impl Fn(&str) -> bool) {
        let now = Instant::now();
        let mut out = Vec::new();
        for (cluster, d) in &mut self.discoveries {
            for (to, request_number) in d.due(now, &self.policy, cable_proven(cluster)) {
                out.push(Outgoing {
                    to,
                    request_number,
                    receiver: d.target().peer.clone(),
                });
            }
        }
        if !out.is_empty() && self.outgoing.try_send(out).is_err() {
            tracing::debug!("NAT discovery: probe queue full");
        }
    }

    /// Whether any verdict differs from the one the cables were planned with.
    pub(super) fn changed(&self) -> bool {
        let now = Instant::now();
        self.discoveries
            .keys()
            .any(|c| self.found.get(c) != Some(&self.found(c, now)))
    }

    pub(super) fn clear(&mut self) {
        self.discoveries.clear();
        self.latest_inbound.clear();
        self.found.clear();
        let _ = self.identity.send(None);
    }
}

#[cfg(test)]
mod tests;
