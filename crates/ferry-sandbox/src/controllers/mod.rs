//! The cluster's controllers, as level-triggered loops over shared
//! reflector stores: scheduler, Deployment, DaemonSet, Service ClusterIP
//! allocation and EndpointSlices. Every watch event wakes every loop; each
//! loop reconciles everything and writes only what differs, which is cheap at
//! sandbox scale and has no lost-event failure mode.
//!
//! Files by job: [`stores`] (the shared caches and the loop runner),
//! [`objects`] (reading and making objects), `controller` (the shared
//! [`Controllers`] value and its create/delete expectations), then one file
//! per loop family: `scheduler`, `workloads` (Deployments, DaemonSets) and
//! `services` (ClusterIPs, EndpointSlices).

use std::sync::Arc;

mod controller;
pub mod objects;
mod scheduler;
mod services;
pub mod stores;
mod workloads;

pub use controller::Controllers;
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
        tokio::spawn(async move { run_loop("daemonset", w, || c.daemonsets()).await });
        let c = self.clone();
        let w = wakers.register();
        tokio::spawn(async move { run_loop("service", w, || c.cluster_ips()).await });
        let c = self.clone();
        let w = wakers.register();
        tokio::spawn(async move { run_loop("endpointslice", w, || c.endpoint_slices()).await });
    }
}

#[cfg(test)]
mod tests;
