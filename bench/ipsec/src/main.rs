//! Runs `bench/ipsec/run.sh` (the benchmark itself is a shell script: namespaces,
//! iperf3, ping, charon and swanctl are all command-line tools). Environment variables
//! `ROUNDS`, `SECS`, `IPSEC_UP` and `WG_UP` pass through.

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/run.sh");
    match Command::new("bash").arg(script).status() {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("running {script}: {e}");
            ExitCode::FAILURE
        }
    }
}
