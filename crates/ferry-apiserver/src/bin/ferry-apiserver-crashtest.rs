//! A bare `ferry apiserver` for the crash test (`tests/crash.rs`), which
//! must `kill -9` a real server process. It lives in this crate so that the
//! test finds it through `CARGO_BIN_EXE_ferry-apiserver-crashtest` without
//! building the `ferry` binary first.
//!
//! Usage: `ferry-apiserver-crashtest DATA_DIR` — listens on a random port
//! of 127.0.0.1, prints `ready URL` once it serves, and runs until killed.

use std::io::Write;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args_os()
        .nth(1)
        .ok_or("usage: ferry-apiserver-crashtest DATA_DIR")?;
    let config = ferry_apiserver::Config::new(dir, "127.0.0.1:0".parse()?);
    let server = ferry_apiserver::start(config).await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready {}", server.url)?;
    out.flush()?;
    drop(out);
    server.wait().await;
    Ok(())
}
