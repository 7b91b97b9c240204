//! `ferry-gateway`: `ferry gateway` as a binary of its own, what ferry's manifests
//! run. It links only this daemon, so an idle `ferry-gateway` maps far less
//! code than the multi-call `ferry` would (issue #19: idle RSS).
#![forbid(unsafe_code)]

use std::process::ExitCode;

// mimalloc, tuned: see ferry-alloc.
#[global_allocator]
static ALLOCATOR: ferry_alloc::Allocator = ferry_alloc::Allocator;

fn main() -> ExitCode {
    ferry::daemon::main("ferry-gateway", ferry::daemon::gateway::run)
}
