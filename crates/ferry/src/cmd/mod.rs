//! One module per subcommand; the daemons' and the error reporting live in
//! the library (shared with the per-daemon binaries).

pub use ferry::daemon::{agent, dns, gateway, route_agent};
pub use ferry::{errors, init_tracing};

pub mod apiserver;
pub mod benchmark;
pub mod completion;
pub mod crds;
pub mod dashboard;
pub mod demo;
pub mod deploy_broker;
pub mod diagnose;
pub mod export;
pub mod gather;
pub mod globalnet;
pub mod join;
pub mod progress;
pub mod recover_broker_info;
pub mod sandbox;
pub mod show;
pub mod targets;
pub mod tools;
pub mod uninstall;
pub mod verify;
