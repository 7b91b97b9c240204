//! One cluster under test: what was started in it and what came back, and
//! the borrowed [`View`] of it the pure judge reads.

use crate::Error;
use crate::cluster::Facts;
use crate::explain::explain_error;
use crate::pods::ProbeRun;
use crate::probe::Report;
use crate::target::Target;

/// A readable cluster and what ran in it.
pub(super) struct Member {
    pub target: Target,
    pub facts: Facts,
    pub run: ProbeRun,
    /// The server pod: node and IP.
    pub server: std::result::Result<(String, String), String>,
    /// The exported test Service: name and ClusterIP.
    pub service: Option<std::result::Result<(String, String), String>>,
    /// The client pod: node and report.
    pub client: Option<(String, std::result::Result<Report, String>)>,
}

pub(super) fn message(e: &Error) -> String {
    explain_error(e).message
}

/// The test Service name of member `i`.
pub(super) fn service_name(run: &str, i: usize) -> String {
    format!("ferry-verify-{run}-{i}")
}

/// What [`super::judge`] needs of one member.
pub struct View<'a> {
    /// Cluster id.
    pub id: &'a str,
    /// Server pod node and IP, or why there is none.
    pub server: std::result::Result<(&'a str, &'a str), &'a str>,
    /// Exported test Service name and ClusterIP, or why there is none.
    pub service: Option<std::result::Result<(&'a str, &'a str), &'a str>>,
    /// Client node and report, or why there is none.
    pub client: Option<(&'a str, std::result::Result<&'a Report, &'a str>)>,
}

impl<'a> View<'a> {
    pub(super) fn of(m: &'a Member) -> View<'a> {
        View {
            id: m.facts.id(),
            server: match &m.server {
                Ok((n, ip)) => Ok((n.as_str(), ip.as_str())),
                Err(e) => Err(e.as_str()),
            },
            service: m.service.as_ref().map(|s| match s {
                Ok((n, ip)) => Ok((n.as_str(), ip.as_str())),
                Err(e) => Err(e.as_str()),
            }),
            client: m.client.as_ref().map(|(node, r)| {
                (
                    node.as_str(),
                    match r {
                        Ok(rep) => Ok(rep),
                        Err(e) => Err(e.as_str()),
                    },
                )
            }),
        }
    }
}
