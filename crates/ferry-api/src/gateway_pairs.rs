//! How the active-active gateways of two clusters pair up (issue #19).
//!
//! WireGuard routes a subnet to one peer and accepts a packet only from the
//! peer whose subnets hold its source, so each gateway holds at most one
//! cable per remote cluster: the cables between two clusters form a
//! matching of their gateways. Both sides compute it alike from the same
//! Endpoints, so the pairs agree, and the route agents send each remote
//! cluster's traffic only to the local gateways paired with one of its
//! gateways.
//!
//! Pairing by rank (the i-th Endpoint by name of each cluster) re-pairs
//! the survivors when a gateway leaves: losing gateway 0 made gateway 1
//! rank 0, so it dropped its own partner for gateway 0's, and flows that
//! never touched gateway 0 broke too. So every gateway claims a *slot* in
//! its Endpoint (`backendConfig.gatewaySlot`, the lowest one free when it
//! publishes) and keeps it: gateways of equal slots pair first, and only
//! the gateways left over (a cluster with fewer gateways, or holes after a
//! loss) pair among themselves, in slot order. A leaving gateway therefore
//! moves only its own pair; its remote partner idles (for this cluster)
//! until a gateway takes the slot again or a leftover needs it.

use std::collections::BTreeMap;

use crate::EndpointSpec;
use crate::ferry::backend_config::GATEWAY_SLOT;

/// The slot an Endpoint claims, if it claims one that parses.
pub fn claimed_slot(spec: &EndpointSpec) -> Option<usize> {
    spec.backend_config.get(GATEWAY_SLOT)?.parse().ok()
}

/// The effective slot of each of one cluster's Endpoints (by name): each
/// keeps the slot it claims unless an Endpoint with a lower name claims it
/// too (two gateways published at once); those and the ones claiming none
/// (older gateways, active-passive) take the lowest free slots, in name
/// order. Both clusters compute the same from the same Endpoints.
pub fn slots<'a>(
    cluster_id: &str,
    endpoints: impl IntoIterator<Item = (&'a String, &'a EndpointSpec)>,
) -> BTreeMap<String, usize> {
    let mine: BTreeMap<&String, Option<usize>> = endpoints
        .into_iter()
        .filter(|(_, s)| s.cluster_id == cluster_id)
        .map(|(n, s)| (n, claimed_slot(s)))
        .collect();
    let mut taken = std::collections::BTreeSet::new();
    let mut slots = BTreeMap::new();
    for (name, claim) in &mine {
        if let Some(c) = claim
            && taken.insert(*c)
        {
            slots.insert((*name).clone(), *c);
        }
    }
    for name in mine.keys() {
        if !slots.contains_key(*name) {
            let free = (0..).find(|s| !taken.contains(s)).unwrap_or_default();
            taken.insert(free);
            slots.insert((*name).clone(), free);
        }
    }
    slots
}

/// The slot Endpoint `me` of `cluster_id` should claim: its effective
/// slot if it is published, else the lowest slot no other Endpoint of the
/// cluster holds.
pub fn slot_to_claim<'a>(
    cluster_id: &str,
    me: &str,
    endpoints: impl IntoIterator<Item = (&'a String, &'a EndpointSpec)>,
) -> usize {
    let slots = slots(cluster_id, endpoints);
    if let Some(s) = slots.get(me) {
        return *s;
    }
    let held: std::collections::BTreeSet<usize> = slots.into_values().collect();
    (0..).find(|s| !held.contains(s)).unwrap_or_default()
}

/// The matching of two clusters' gateways from their effective slots
/// ([`slots`]): local Endpoint → remote Endpoint. Equal slots pair first;
/// the rest of each side pair in slot order, as far as the shorter goes.
pub fn pairs(
    local: &BTreeMap<String, usize>,
    remote: &BTreeMap<String, usize>,
) -> BTreeMap<String, String> {
    let by_slot = |m: &BTreeMap<String, usize>| -> BTreeMap<usize, String> {
        m.iter().map(|(n, s)| (*s, n.clone())).collect()
    };
    let (mut local, mut remote) = (by_slot(local), by_slot(remote));
    let mut out = BTreeMap::new();
    let equal: Vec<usize> = local
        .keys()
        .filter(|s| remote.contains_key(s))
        .copied()
        .collect();
    for s in equal {
        if let (Some(l), Some(r)) = (local.remove(&s), remote.remove(&s)) {
            out.insert(l, r);
        }
    }
    out.extend(local.into_values().zip(remote.into_values()));
    out
}

/// Every cluster's pairing with `local_cluster`: remote cluster id →
/// (local Endpoint → remote Endpoint), from all Endpoints by name.
pub fn pairs_by_cluster<'a>(
    local_cluster: &str,
    endpoints: impl IntoIterator<Item = (&'a String, &'a EndpointSpec)>,
) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut by_cluster: BTreeMap<&str, Vec<(&String, &EndpointSpec)>> = BTreeMap::new();
    for (name, spec) in endpoints {
        by_cluster
            .entry(spec.cluster_id.as_str())
            .or_default()
            .push((name, spec));
    }
    let local = by_cluster
        .get(local_cluster)
        .map(|eps| slots(local_cluster, eps.iter().copied()))
        .unwrap_or_default();
    by_cluster
        .iter()
        .filter(|(c, _)| **c != local_cluster)
        .map(|(c, eps)| {
            let remote = slots(c, eps.iter().copied());
            ((*c).to_string(), pairs(&local, &remote))
        })
        .collect()
}

#[cfg(test)]
mod tests;
