//! The route agent's Prometheus metrics (`ferry_route_agent_*`): routes
//! and rules programmed, route changes, applies and their duration, and
//! re-points (the active gateway moved: a failover) with the time from the
//! watch event to the routes pointing at the new gateway. The daemon
//! reports into [`Metrics`]; `ferry route-agent` serves it on
//! `--metrics-addr` (`ferry_kube::metrics`).

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::apply::Changes;
use crate::plan::{Desired, Role};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabels {
    op: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RoleLabels {
    role: &'static str,
}

/// The route agent's metrics and their registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Arc<Registry>,
    routes: Gauge,
    rules: Gauge,
    role: Family<RoleLabels, Gauge>,
    route_changes: Family<OpLabels, Counter>,
    applies: Family<ResultLabels, Counter>,
    apply_duration: Histogram,
    repoints: Counter,
    repoint_duration: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn role_name(role: &Role) -> &'static str {
    match role {
        Role::NoGateway => "no_gateway",
        Role::Gateway => "gateway",
        Role::Node(_) => "node",
    }
}

impl Metrics {
    /// Registers every metric under `ferry_route_agent_`.
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("ferry_route_agent");
        let routes = Gauge::default();
        r.register(
            "programmed_routes",
            "Routes to remote clusters in the route agent's table (7100)",
            routes.clone(),
        );
        let rules = Gauge::default();
        r.register(
            "programmed_rules",
            "Policy rules the route agent keeps (priority 7100)",
            rules.clone(),
        );
        let role = Family::<RoleLabels, Gauge>::default();
        r.register(
            "role",
            "1 for this node's role (gateway, node, no_gateway), 0 for the others",
            role.clone(),
        );
        let route_changes = Family::<OpLabels, Counter>::default();
        r.register(
            "route_changes",
            "Routes replaced or deleted",
            route_changes.clone(),
        );
        let applies = Family::<ResultLabels, Counter>::default();
        r.register(
            "applies",
            "Applies of the desired data plane, by result",
            applies.clone(),
        );
        // 100 µs … ~3.3 s
        let apply_duration = Histogram::new(exponential_buckets(1e-4, 2.0, 16));
        r.register(
            "apply_duration_seconds",
            "Time of one successful apply (kernel writes)",
            apply_duration.clone(),
        );
        let repoints = Counter::default();
        r.register(
            "repoints",
            "Times the routes were re-pointed at another active gateway (failovers)",
            repoints.clone(),
        );
        let repoint_duration = Histogram::new(exponential_buckets(1e-4, 2.0, 16));
        r.register(
            "repoint_duration_seconds",
            "From the watch event that moved the gateway to the routes re-pointed",
            repoint_duration.clone(),
        );
        Metrics {
            registry: Arc::new(r),
            routes,
            rules,
            role,
            route_changes,
            applies,
            apply_duration,
            repoints,
            repoint_duration,
        }
    }

    /// The registry, for `/metrics`.
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.clone()
    }

    /// An apply of `want` succeeded with `changes`; `previous` is the role
    /// before it (`None`: the first apply) and `since_event` the time since
    /// the wake-up that led to it.
    pub fn applied(
        &self,
        want: &Desired,
        changes: &Changes,
        previous: Option<&Role>,
        since_event: Duration,
    ) {
        let n = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
        self.routes.set(n(want.routes.len()));
        self.rules.set(1);
        for role in [Role::NoGateway, Role::Gateway] {
            let name = role_name(&role);
            self.role
                .get_or_create(&RoleLabels { role: name })
                .set(i64::from(role_name(&want.role) == name));
        }
        self.role
            .get_or_create(&RoleLabels { role: "node" })
            .set(i64::from(matches!(want.role, Role::Node(_))));
        let count = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
        self.route_changes
            .get_or_create(&OpLabels { op: "replace" })
            .inc_by(count(changes.routes_replaced));
        self.route_changes
            .get_or_create(&OpLabels { op: "delete" })
            .inc_by(count(changes.routes_deleted));
        self.applies
            .get_or_create(&ResultLabels { result: "ok" })
            .inc();
        self.apply_duration.observe(changes.took.as_secs_f64());
        if let Some(prev) = previous
            && is_repoint(prev, &want.role)
        {
            self.repoints.inc();
            self.repoint_duration.observe(since_event.as_secs_f64());
        }
    }

    /// An apply failed (it is retried).
    pub fn apply_failed(&self) {
        self.applies
            .get_or_create(&ResultLabels { result: "error" })
            .inc();
    }
}

/// Whether going from `prev` to `now` moved the active gateway.
fn is_repoint(prev: &Role, now: &Role) -> bool {
    match (prev, now) {
        (Role::Node(a), Role::Node(b)) => a != b,
        (Role::Gateway, Role::Node(_)) | (Role::Node(_), Role::Gateway) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::plan::ActiveGateway;

    fn node(name: &str, last: u8) -> Role {
        Role::Node(ActiveGateway {
            hostname: name.into(),
            ip: std::net::Ipv4Addr::new(198, 18, 0, last),
        })
    }

    #[test]
    fn a_moved_gateway_is_a_repoint_and_a_first_or_same_one_is_not() {
        assert!(is_repoint(&node("a", 1), &node("b", 2)));
        assert!(is_repoint(&Role::Gateway, &node("b", 2)));
        assert!(is_repoint(&node("a", 1), &Role::Gateway));
        assert!(!is_repoint(&node("a", 1), &node("a", 1)));
        assert!(!is_repoint(&Role::NoGateway, &node("a", 1)));
    }
}
