//! `ferry show`: what a cluster knows about the clusterset — connections
//! (with RTT min/avg/max), endpoints, gateways, networks, imported services
//! with per-cluster health, the broker, component versions, Globalnet's
//! blocks and global IPs — over one or
//! several clusters at once. [`gather`] reads, [`build`] turns objects into
//! rows, [`render`] prints; the last two are pure. [`topology`] draws the
//! same rows as a picture (text, dot, SVG).

pub mod build;
pub mod gather;
pub mod model;
pub mod render;
pub mod topology;

use std::fmt;
use std::str::FromStr;

pub use build::Snapshot;
pub use model::{ClusterReport, ClusterView, Report};
pub use render::{Format, render};

use crate::Error;
use crate::explain::explain_error;
use crate::target::{Target, TargetSpec};

/// One section of `show`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Section {
    /// Cables from this cluster's gateways, with RTT.
    Connections,
    /// Gateway endpoints of every cluster.
    Endpoints,
    /// This cluster's gateway nodes.
    Gateways,
    /// Every cluster's CIDRs.
    Networks,
    /// Imported services with per-cluster health, and local exports.
    Services,
    /// The broker.
    Brokers,
    /// Component images.
    Versions,
    /// Globalnet's blocks and this cluster's global IPs.
    Globalnet,
}

impl Section {
    /// Every section, in the order `show all` prints them.
    pub const ALL: [Section; 8] = [
        Section::Connections,
        Section::Endpoints,
        Section::Gateways,
        Section::Networks,
        Section::Services,
        Section::Brokers,
        Section::Versions,
        Section::Globalnet,
    ];

    /// The name on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Section::Connections => "connections",
            Section::Endpoints => "endpoints",
            Section::Gateways => "gateways",
            Section::Networks => "networks",
            Section::Services => "services",
            Section::Brokers => "brokers",
            Section::Versions => "versions",
            Section::Globalnet => "globalnet",
        }
    }
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Section {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Section::ALL
            .into_iter()
            .find(|x| x.name() == s)
            .ok_or_else(|| Error::Usage(format!("unknown section {s:?}")))
    }
}

/// Shows one cluster; a failure becomes the report's one-line `error`.
pub async fn show_cluster(spec: &TargetSpec, sections: &[Section]) -> ClusterReport {
    match Target::connect(spec).await {
        Ok(target) => show_target(spec, &target, sections).await,
        Err(e) => failed(spec, &e),
    }
}

/// The report of a cluster that could not be reached through `spec`.
pub fn failed(spec: &TargetSpec, e: &Error) -> ClusterReport {
    let x = explain_error(e);
    ClusterReport {
        source: spec.describe(),
        error: Some(x.message),
        hint: x.hint,
        ..Default::default()
    }
}

/// Shows one cluster through an already built client (the dashboard keeps
/// its clients across refreshes).
pub async fn show_target(
    spec: &TargetSpec,
    target: &Target,
    sections: &[Section],
) -> ClusterReport {
    let mut report = ClusterReport {
        source: spec.describe(),
        server: target.url.clone(),
        ..Default::default()
    };
    match gather::snapshot(target, sections).await {
        Ok(snap) => {
            report.cluster_id = Some(snap.cluster_id.clone());
            report.view = build::build(&snap, sections);
        }
        Err(e) => {
            let x = explain_error(&e);
            (report.error, report.hint) = (Some(x.message), x.hint);
        }
    }
    report
}

impl Report {
    /// Whether the report is one cluster that failed (its error says it all).
    pub fn only_failure(&self) -> bool {
        matches!(self.clusters.as_slice(), [only] if only.error.is_some())
    }
}

/// Shows every cluster of `specs`, concurrently, in order.
pub async fn show(specs: &[TargetSpec], sections: &[Section]) -> Report {
    let clusters = futures::future::join_all(specs.iter().map(|s| show_cluster(s, sections))).await;
    Report { clusters }
}

impl Report {
    /// [`Error::Partial`] when some cluster could not be shown, or that
    /// cluster's own [`Error::Cluster`] when it was the only one.
    pub fn check(&self) -> crate::Result<()> {
        let failed = self.clusters.iter().filter(|c| c.error.is_some()).count();
        if failed == 0 {
            Ok(())
        } else if let [only] = self.clusters.as_slice() {
            Err(Error::Cluster {
                message: only.error.clone().unwrap_or_default(),
                hint: only.hint.clone(),
            })
        } else {
            Err(Error::Partial {
                failed,
                total: self.clusters.len(),
            })
        }
    }
}
