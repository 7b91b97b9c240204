//! The checks `diagnose` knows, and how to run them.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::{Error, Result};

/// One check of `diagnose`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Check {
    /// The API server's version.
    K8sVersion,
    /// The CNI its objects show, against the one `join` recorded.
    Cni,
    /// kube-proxy's mode.
    KubeProxyMode,
    /// ferry's workloads and the active gateway.
    Deployment,
    /// CIDRs against other clusters and against real addresses.
    CidrOverlap,
    /// Traffic to every remote cluster, with the gateway's status.
    Connections,
    /// Traffic to every remote cluster from a non-gateway node's own
    /// network namespace (host-network pods, kubelet probes, a node shell).
    HostNetwork,
    /// What the gateway's NAT discovery (UDP 4490) found per remote.
    NatDiscovery,
    /// UDP to the cable port between the gateways.
    Firewall,
    /// Path MTU and full-size packets across the cables.
    Mtu,
    /// DNS answers for every ServiceImport.
    ServiceDiscovery,
}

impl Check {
    /// Every check, in the order `diagnose all` runs and prints them.
    pub const ALL: [Check; 11] = [
        Check::K8sVersion,
        Check::Cni,
        Check::KubeProxyMode,
        Check::Deployment,
        Check::CidrOverlap,
        Check::Connections,
        Check::HostNetwork,
        Check::NatDiscovery,
        Check::Firewall,
        Check::Mtu,
        Check::ServiceDiscovery,
    ];

    /// The name on the command line and in the output.
    pub fn name(&self) -> &'static str {
        match self {
            Check::K8sVersion => "k8s-version",
            Check::Cni => "cni",
            Check::KubeProxyMode => "kube-proxy-mode",
            Check::Deployment => "deployment",
            Check::CidrOverlap => "cidr-overlap",
            Check::Connections => "connections",
            Check::HostNetwork => "host-network",
            Check::NatDiscovery => "nat-discovery",
            Check::Firewall => "firewall",
            Check::Mtu => "mtu",
            Check::ServiceDiscovery => "service-discovery",
        }
    }

    /// Whether the check needs test pods.
    pub fn is_active(&self) -> bool {
        matches!(
            self,
            Check::Connections
                | Check::HostNetwork
                | Check::Firewall
                | Check::Mtu
                | Check::ServiceDiscovery
        )
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Check {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Check::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| Error::Usage(format!("unknown check {s:?}")))
    }
}

/// How to diagnose.
#[derive(Clone, Debug)]
pub struct Options {
    /// The checks to run (any order; printed in [`Check::ALL`] order).
    pub checks: Vec<Check>,
    /// How long a test pod may take to start and report.
    pub timeout: Duration,
}
