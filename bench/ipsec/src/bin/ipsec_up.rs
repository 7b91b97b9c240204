//! Bring a ferry-ipsec device with one peer up from flags and run until SIGINT/SIGTERM,
//! printing the peer's status when it changes: the ferry side of `bench/ipsec` (a
//! binary of the bench, so it builds without ferry-ipsec's test dependencies).
//!
//! ```text
//! cargo run --release -p ferry-bench-ipsec --bin ipsec_up -- \
//!   --name fips0 --address 100.64.250.1/24 --local 198.18.250.1 --remote 198.18.250.2 \
//!   --psk-file psk --local-ts 100.64.250.1/32 --remote-ts 100.64.250.2/32 \
//!   [--ike aes256gcm16-prfsha256-x25519] [--esp aes256gcm16] [--initiate]
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ferry_ipsec::{Device, DeviceConfig, Identity, PeerConfig, Psk, Timers, TrafficSelector};
use std::net::{IpAddr, SocketAddr};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .map(|i| args[i + 1].clone())
}

fn net(s: &str) -> (IpAddr, u8) {
    let (a, p) = s.split_once('/').expect("ADDR/PREFIX");
    (a.parse().expect("address"), p.parse().expect("prefix"))
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().collect();
    let need = |n: &str| arg(&args, n).unwrap_or_else(|| panic!("{n} is required"));
    let local: IpAddr = need("--local").parse().unwrap();
    let remote: IpAddr = need("--remote").parse().unwrap();
    let ts = |n: &str| {
        let (a, p) = net(&need(n));
        vec![TrafficSelector::subnet(a, p).unwrap()]
    };
    let psk = std::fs::read(need("--psk-file")).expect("psk file");
    let (addr, prefix) = net(&need("--address"));
    let IpAddr::V4(addr) = addr else {
        panic!("IPv4 address")
    };
    let peer = PeerConfig {
        psk: Psk::new(psk.trim_ascii().to_vec()),
        local_id: Identity::ip(local),
        remote_id: Identity::ip(remote),
        local_addr: SocketAddr::new(local, 4500),
        remote_addr: SocketAddr::new(remote, 4500),
        ike_suites: vec![
            arg(&args, "--ike")
                .unwrap_or("aes256gcm16-prfsha256-x25519".into())
                .parse()
                .unwrap(),
        ],
        esp_suites: vec![
            arg(&args, "--esp")
                .unwrap_or("aes256gcm16".into())
                .parse()
                .unwrap(),
        ],
        local_ts: ts("--local-ts"),
        remote_ts: ts("--remote-ts"),
        initiate: args.iter().any(|a| a == "--initiate"),
        force_encap: true,
        timers: Timers::default(),
    };
    let dev = Device::start(DeviceConfig {
        name: need("--name"),
        mtu: ferry_ipsec::DEFAULT_MTU,
        address: Some((addr, prefix)),
        port: 4500,
        peers: vec![peer],
    })
    .expect("device");
    println!("{} up on port {}", dev.name(), dev.port());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(200));
        let mut last = None;
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = term.recv() => break,
                _ = tick.tick() => {
                    let s = dev.peers()[0].status.clone();
                    if last.as_ref() != Some(&s) {
                        println!("peer {remote}: {s:?}");
                        last = Some(s);
                    }
                }
            }
        }
    });
    dev.shutdown();
}
