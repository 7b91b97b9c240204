//! From what was read and what the probes measured to PASS/WARN/FAIL/SKIP
//! lines, check by check. Pure: every function takes [`Facts`] and probe
//! [`Report`]s and returns [`Line`]s, so each verdict is unit-tested.
//!
//! [`Facts`]: crate::cluster::Facts
//! [`Report`]: crate::probe::Report
//! [`Line`]: crate::check::Line

mod cni;
mod common;
mod connections;
mod firewall;
mod host_network;
mod mtu;
mod nat_discovery;
mod objects;
mod service_discovery;

pub use cni::{cni, kube_proxy_mode};
pub use common::{Client, Probed};
pub use connections::connections;
pub use firewall::{Firewall, firewall};
pub use host_network::host_network;
pub use mtu::{mtu, path_cable_mtu};
pub use nat_discovery::nat_discovery;
pub use objects::{MIN_VERSION, cidr_overlap, deployment, k8s_version};
pub use service_discovery::{
    MAX_IMPORTS, expected_answer, import_name, resolvable_imports, service_discovery,
};
