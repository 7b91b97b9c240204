//! The state every request, operation and controller shares: the store,
//! the resource registry, the tokens, the metrics and the write limits.
//!
//! It sits below everything that reads it (ops, controllers, http) and above
//! only the parts it holds; start-up (`server`) builds it.

use std::sync::Arc;

use tokio::sync::Notify;

use crate::auth::TokenStore;
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::service_ips::ServiceAllocator;
use crate::store::Store;

/// State shared by every request and background task.
#[derive(Debug)]
pub struct App {
    pub store: Store,
    pub registry: Registry,
    pub tokens: TokenStore,
    pub metrics: Metrics,
    /// Largest request body accepted (413 above).
    pub body_limit: usize,
    /// Permits for writes in flight (`Config::max_mutating_inflight`); none:
    /// no limit.
    pub mutating: Option<Arc<tokio::sync::Semaphore>>,
    /// Service cluster IPs and node ports.
    pub service_ips: ServiceAllocator,
    /// Wakes the namespace and garbage-collection controllers.
    pub controllers_wake: Notify,
}
