//! The test harness of every end-to-end test and benchmark that needs
//! sandbox clusters (`tests/e2e`, this crate's `tests/e2e.rs`,
//! `bench/dataplane`): the `ferry` binary under test, commands that fail with
//! their output, polling, the machine-wide sandbox lock, and clusters and
//! pods made through the real binary and kubectl, exactly as a user would,
//! in the run's runtime (`FERRY_E2E_RUNTIME`: runc with ferry's image, or local).
//!
//! Clusters are deleted when their [`Cluster`] is dropped, even when a test
//! fails half-way (a failed create included). It is not a test framework:
//! plain functions that return the crate's [`Error`](crate::Error), naming
//! the command and its output.

mod binary;
mod cluster;
mod lock;
mod process;
mod runtime;

pub use binary::{ferry_bin, repo_root, unique, usable};
pub use cluster::{Cluster, Pod};
pub use lock::lock;
pub use process::{output, run, run_with_stdin, wait_for};
pub use runtime::{RUNTIME_VAR, e2e_runtime, image_of, runtime_args};
