//! The cluster's controllers, as level-triggered loops over shared
//! reflector stores: scheduler, Deployment (through ReplicaSets),
//! ReplicaSet, DaemonSet and EndpointSlices. (Service ClusterIPs are
//! allocated by the API server.) Every watch event wakes every loop; each
//! loop reconciles everything and writes only what differs, which is cheap at
//! sandbox scale and has no lost-event failure mode.
//!
//! Files by job: [`stores`] (the shared caches and the loop runner),
//! [`objects`] (reading and making objects), `controller` (the shared
//! [`Controllers`] value and its create/delete expectations), then one file
//! per loop family: `scheduler`, `workloads` (ReplicaSets, DaemonSets),
//! `deployments` (rollouts through ReplicaSets) and `services`
//! (EndpointSlices).

use std::sync::Arc;

mod controller;
mod deployments;
pub mod objects;
mod scheduler;
mod services;
pub mod stores;
mod workloads;

pub use controller::Controllers;
pub use deployments::{REVISION, TEMPLATE_HASH};
pub use objects::{map_matches, pod_ready};
pub use services::resolve_target_port;
pub use stores::{Stores, Wakers, run_loop};

impl Controllers {
    /// Spawns every loop.
    pub fn spawn(self: &Arc<Self>, wakers: &Wakers) {
        let c = self.clone();
        let w = wakers.register();
        tokio::spawn(async move { run_loop("scheduler", w, || c.schedule()).await });
        let c = self.clone();
        let w = wakers.register();
        tokio::spawn(async move { run_loop("deployment", w, || c.deployments()).await });
        let c = self.clone();
        let w = wakers.register();
        tokio::spawn(async move { run_loop("replicaset", w, || c.replicasets()).await });
        let c = self.clone();
        let w = wakers.register();
        tokio::spawn(async move { run_loop("daemonset", w, || c.daemonsets()).await });
        let c = self.clone();
        let w = wakers.register();
        tokio::spawn(async move { run_loop("endpointslice", w, || c.endpoint_slices()).await });
    }
}

#[cfg(test)]
mod tests;
