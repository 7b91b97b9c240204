//! What several checks share: the client pod, probe lookups and number
//! formatting.

use std::time::Duration;

use crate::check::{Line, Status};
use crate::cluster::Facts;
use crate::probe::spec::EchoOutcome;
use crate::probe::{Outcome, Report};
use crate::show::render::fmt_duration;

/// A probe pod's report, or why there is none.
pub type Probed<'a> = Result<&'a Report, &'a str>;

pub(super) fn us(v: u64) -> String {
    fmt_duration(Duration::from_micros(v))
}

/// ` (rtt avg …)`, or nothing when no echo came back.
pub(super) fn avg_rtt(e: &EchoOutcome) -> String {
    if e.rtt_us.is_empty() {
        return String::new();
    }
    format!(
        " (rtt avg {})",
        us(e.rtt_us.iter().sum::<u64>() / e.rtt_us.len() as u64)
    )
}

pub(super) fn list<T: ToString>(v: &[T]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

pub(super) fn echo<'a>(r: &'a Report, id: &str) -> Result<&'a EchoOutcome, String> {
    match r.get(id) {
        Some(Outcome::Echo(e)) => Ok(e),
        Some(Outcome::Error { message }) => Err(message.clone()),
        Some(other) => Err(format!("unexpected outcome {other:?}")),
        None => Err("the probe pod did not run this probe".into()),
    }
}

/// Where the client pod ran, for messages.
pub struct Client<'a> {
    /// Its node.
    pub node: &'a str,
    /// Its report.
    pub report: Probed<'a>,
}

/// The clusters `f` knows besides itself; without any, the SKIP line of
/// check `name`, which then has nothing to judge.
pub(super) fn remotes_or_skip(f: &Facts, name: &str) -> Result<Vec<String>, Vec<Line>> {
    let remotes = f.remote_ids();
    if remotes.is_empty() {
        return Err(vec![Line::with(
            name,
            Status::Skip,
            format!("{} knows no other cluster", f.id()),
            "join another cluster to the same broker (`ferry join`)",
        )]);
    }
    Ok(remotes)
}
