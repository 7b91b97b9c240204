//! `ferry-ctl`: the logic behind ferry's user-facing, subctl-class commands
//! — `ferry show` ([`show`]: gather, build rows, render tables/JSON/YAML),
//! `ferry export`/`unexport service` ([`export`]), `ferry uninstall`
//! ([`uninstall`]) — plus what every command shares: finding kubeconfigs
//! and contexts for one or several clusters ([`target`]) and turning any
//! error into one clear line with a hint and an exit code ([`explain`]).
//!
//! It is not the command line itself (clap lives in the `ferry` binary, which
//! stays a thin layer over this crate), and not `join`/`deploy-broker`
//! (those are `ferry-agent`'s `install` module, reused here), nor the
//! checks that need a data plane (`diagnose`, `verify`, `benchmark`).
#![forbid(unsafe_code)]

mod error;
pub mod explain;
pub mod export;
pub mod show;
pub mod table;
pub mod target;
pub mod uninstall;

pub use error::{Error, Result, Transport};
pub use explain::{Explained, explain, explain_error};
pub use target::{Target, TargetSpec};
