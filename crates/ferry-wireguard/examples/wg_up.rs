//! Bring a device up from a config file and run until SIGINT/SIGTERM: the core of
//! `ferry tools wg up`, without the rest of the ferry binary (used by
//! `bench/wireguard` so the benchmark builds only this crate).
//!
//! `cargo run --release -p ferry-wireguard --example wg_up -- --config FILE`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ferry_wireguard::{Device, DeviceConfig};
use std::path::PathBuf;

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().collect();
    let path = match args.iter().position(|a| a == "--config") {
        Some(i) => PathBuf::from(&args[i + 1]),
        None => {
            eprintln!("usage: wg_up --config FILE");
            std::process::exit(2);
        }
    };
    let cfg = DeviceConfig::from_file(&path).expect("config");
    let dev = Device::start(cfg).expect("device");
    println!(
        "{} up: public key {} port {}",
        dev.name(),
        dev.public_key(),
        dev.listen_port()
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    });
    dev.shutdown();
}
