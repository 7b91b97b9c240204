//! The value every loop shares: the API client, the caches, the cluster's
//! plan, and the names created or deleted but not yet in the caches.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::Client;

use super::stores::Stores;
use crate::plan::Plan;

/// Names created or deleted but not yet seen so in the cache: the usual
/// "expectations", so a lagging cache does not cause double creates.
#[derive(Default)]
pub(super) struct Expectations {
    pub(super) created: HashMap<String, Instant>,
    pub(super) deleted: HashMap<String, Instant>,
}

impl Expectations {
    /// Reconciles the expectation sets against the cache's names and
    /// returns the effective set of live names.
    pub(super) fn effective(&mut self, seen: HashSet<String>) -> HashSet<String> {
        let ttl = Duration::from_secs(10);
        self.created
            .retain(|n, t| !seen.contains(n) && t.elapsed() < ttl);
        self.deleted
            .retain(|n, t| seen.contains(n) && t.elapsed() < ttl);
        seen.into_iter()
            .filter(|n| !self.deleted.contains_key(n))
            .chain(self.created.keys().cloned())
            .collect()
    }
}

/// The controllers of one cluster.
pub struct Controllers {
    pub client: Client,
    pub stores: Stores,
    pub plan: Plan,
    expectations: Mutex<HashMap<String, Expectations>>,
}

impl Controllers {
    pub fn new(client: Client, stores: Stores, plan: Plan) -> Arc<Self> {
        Arc::new(Controllers {
            client,
            stores,
            plan,
            expectations: Mutex::new(HashMap::new()),
        })
    }

    pub(super) fn live_names(&self, key: &str, seen: HashSet<String>) -> HashSet<String> {
        let mut all = match self.expectations.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        all.entry(key.to_string()).or_default().effective(seen)
    }

    pub(super) fn expect(&self, key: &str, name: &str, created: bool) {
        let mut all = match self.expectations.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let e = all.entry(key.to_string()).or_default();
        let map = if created {
            &mut e.created
        } else {
            &mut e.deleted
        };
        map.insert(name.to_string(), Instant::now());
    }
}
