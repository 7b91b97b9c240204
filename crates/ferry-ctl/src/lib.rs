//! `ferry-ctl`: the logic behind ferry's user-facing, subctl-class commands
//! — `ferry show` ([`show`]: gather, build rows, render tables/JSON/YAML),
//! `ferry export`/`unexport service` ([`export`]), `ferry deploy-broker`
//! and `ferry join` ([`install`]), `ferry uninstall` ([`uninstall`]), and
//! the active checks `ferry diagnose` ([`diagnose`]) with the temporary test
//! pods they run ([`pods`], [`probe`]), and the support bundle of `ferry
//! gather` ([`gather`]), the live topology page of `ferry dashboard`
//! ([`dashboard`]) — plus what
//! every command shares: finding kubeconfigs and contexts for one or
//! several clusters ([`target`]), what a cluster looks like to the checks
//! ([`cluster`]), PASS/FAIL lines ([`check`]), the one "wait until" loop
//! ([`poll`]), and turning any error into one clear line with a hint and an
//! exit code ([`explain`]).
//!
//! It is not the command line itself (clap lives in the `ferry` binary, which
//! stays a thin layer over this crate), nor the daemons it installs and
//! inspects (`ferry-agent`, `ferry-gateway`, …), nor Kubernetes plumbing
//! (clients, TokenRequests: `ferry-kube`).
#![forbid(unsafe_code)]

pub mod benchmark;
pub mod check;
pub mod cluster;
pub mod dashboard;
pub mod diagnose;
mod error;
pub mod explain;
pub mod export;
pub mod gather;
pub mod install;
pub mod pods;
pub mod poll;
pub mod probe;
pub mod show;
pub mod table;
pub mod target;
pub mod uninstall;
pub mod verify;

pub use error::{Error, Refusal, Result, Transport};
pub use explain::{Explained, explain, explain_error};
pub use target::{Target, TargetSpec};
