//! What `verify` runs: its parts and options.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::{Error, Result};

/// One part of `verify`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Part {
    /// Pod to pod, both ways.
    Connectivity,
    /// A remote Service by ClusterIP and by clusterset name.
    ServiceDiscovery,
    /// Restart of the active gateway under traffic.
    Failover,
}

impl Part {
    /// Every part, in the order they run.
    pub const ALL: [Part; 3] = [Part::Connectivity, Part::ServiceDiscovery, Part::Failover];

    /// The name on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Part::Connectivity => "connectivity",
            Part::ServiceDiscovery => "service-discovery",
            Part::Failover => "failover",
        }
    }
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Part {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Part::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                Error::Usage(format!(
                    "unknown part {s:?} (connectivity, service-discovery, failover)"
                ))
            })
    }
}

/// How to verify.
#[derive(Clone, Debug)]
pub struct Options {
    /// The parts to run.
    pub parts: Vec<Part>,
    /// How long a test pod may take to start and report, and an export to
    /// show up in the other clusters.
    pub timeout: Duration,
    /// How long traffic may take to resume after a gateway restart.
    pub failover_budget: Duration,
}
