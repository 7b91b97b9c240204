//! Check results as `diagnose` and `verify` print them: one
//! `PASS|WARN|FAIL|SKIP` line per finding, with a `hint:` line under
//! anything that is not a pass, grouped under a header per cluster (or
//! pair of clusters), and a closing count. Pure: data in, string out.

use std::time::Duration;

use serde::Serialize;

use crate::explain::explain_error;
use crate::target::TargetSpec;
use crate::{Error, Result};

/// The verdict of one finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    /// Works.
    Pass,
    /// Works, but something deserves a look.
    Warn,
    /// Does not work (exit code 1).
    Fail,
    /// Not checked, and why.
    Skip,
}

impl Status {
    /// The word printed.
    pub fn word(&self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
            Status::Skip => "SKIP",
        }
    }
}

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Line {
    /// The check it belongs to (`connections`, `mtu`, …).
    pub check: String,
    /// Its verdict.
    pub status: Status,
    /// What was found, naming what was checked.
    pub message: String,
    /// What to do (for anything but a pass).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Line {
    /// A pass.
    pub fn pass(check: &str, message: impl Into<String>) -> Line {
        Line {
            check: check.into(),
            status: Status::Pass,
            message: message.into(),
            hint: None,
        }
    }

    /// A finding with a hint.
    pub fn with(
        check: &str,
        status: Status,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Line {
        Line {
            check: check.into(),
            status,
            message: message.into(),
            hint: Some(hint.into()),
        }
    }
}

/// The findings about one cluster (or pair), or why it could not be
/// checked at all.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    /// What the findings are about (`Cluster east (context east, https://…)`).
    pub header: String,
    /// The findings, in check order.
    pub lines: Vec<Line>,
    /// Why nothing could be checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What to do about `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Group {
    /// The group of a cluster that could not be read: `Cluster ? (…)` with
    /// why, and what to do about it.
    pub fn unreadable(spec: &TargetSpec, e: &Error) -> Group {
        let x = explain_error(e);
        Group {
            header: format!("Cluster ? ({})", spec.describe()),
            lines: Vec::new(),
            error: Some(x.message),
            hint: x.hint,
        }
    }
}

/// Every group of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Findings {
    /// The groups, in order.
    pub groups: Vec<Group>,
}

/// How many findings of each verdict.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Passes.
    pub pass: usize,
    /// Warnings.
    pub warn: usize,
    /// Failures, including groups that could not be checked at all.
    pub fail: usize,
    /// Skips.
    pub skip: usize,
}

impl Findings {
    /// Counts the verdicts.
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for g in &self.groups {
            if g.error.is_some() {
                c.fail += 1;
            }
            for l in &g.lines {
                match l.status {
                    Status::Pass => c.pass += 1,
                    Status::Warn => c.warn += 1,
                    Status::Fail => c.fail += 1,
                    Status::Skip => c.skip += 1,
                }
            }
        }
        c
    }

    /// [`Error::ChecksFailed`] when anything failed.
    pub fn check(&self) -> Result<()> {
        let c = self.counts();
        if c.fail == 0 {
            Ok(())
        } else {
            Err(Error::ChecksFailed {
                failed: c.fail,
                total: c.pass + c.warn + c.fail,
            })
        }
    }

    /// The findings as text; `elapsed` (when given) ends the summary line.
    pub fn render(&self, elapsed: Option<Duration>) -> String {
        let width = self
            .groups
            .iter()
            .flat_map(|g| &g.lines)
            .map(|l| l.check.chars().count())
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        for (i, g) in self.groups.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(&g.header);
            out.push('\n');
            if let Some(e) = &g.error {
                out.push_str(&format!("  FAIL  {e}\n"));
                if let Some(h) = &g.hint {
                    out.push_str(&format!("        hint: {h}\n"));
                }
            }
            for l in &g.lines {
                let pad = width - l.check.chars().count();
                out.push_str(&format!(
                    "  {}  {}{}   {}\n",
                    l.status.word(),
                    l.check,
                    " ".repeat(pad),
                    l.message
                ));
                if l.status != Status::Pass
                    && let Some(h) = &l.hint
                {
                    out.push_str(&format!("        hint: {h}\n"));
                }
            }
        }
        let c = self.counts();
        out.push_str(&format!(
            "\n{} passed, {} failed, {} warnings, {} skipped",
            c.pass, c.fail, c.warn, c.skip
        ));
        if let Some(d) = elapsed {
            out.push_str(&format!(" in {:.1}s", d.as_secs_f64()));
        }
        out.push('\n');
        out
    }
}
