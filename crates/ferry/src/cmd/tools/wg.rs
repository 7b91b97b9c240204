//! `ferry tools wg`: bring a ferry WireGuard device up in the current network
//! namespace from a wg-quick style file, and `genkey` / `pubkey` / `genpsk` like `wg`.

use anyhow::{Context, bail};
use ferry_wireguard::{Device, DeviceConfig, PresharedKey, PrivateKey};
use std::io::Read;
use std::path::PathBuf;
use std::process::Command;

/// `ferry tools wg ...`
#[derive(Debug, clap::Subcommand)]
pub enum Wg {
    /// Create the interface, configure it, and run until SIGINT/SIGTERM.
    Up {
        /// wg-quick style INI file (see `ferry_wireguard::DeviceConfig`).
        #[arg(long)]
        config: PathBuf,
        /// Interface name (overrides `Name =` in the file; default ferry0).
        #[arg(long)]
        name: Option<String>,
        /// Do not add routes for peers' allowed IPs.
        #[arg(long)]
        no_routes: bool,
    },
    /// Print a new private key (base64), or write it to a 0600 file.
    Genkey {
        /// Write the key to this file (mode 0600) instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Read a private key on stdin, print its public key.
    Pubkey,
    /// Print a new preshared key.
    Genpsk,
}

/// Run a `wg` tool.
pub fn run(w: Wg) -> anyhow::Result<()> {
    match w {
        Wg::Genkey { out: None } => println!("{}", PrivateKey::generate().to_base64()),
        Wg::Genkey { out: Some(p) } => {
            let key = format!("{}\n", PrivateKey::generate().to_base64());
            ferry_kube::create_private(&p, key.as_bytes())?;
        }
        Wg::Pubkey => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s)?;
            let k: PrivateKey = s.trim().parse().context("reading a private key")?;
            println!("{}", k.public_key());
        }
        Wg::Genpsk => println!("{}", PresharedKey::generate().to_base64()),
        Wg::Up {
            config,
            name,
            no_routes,
        } => up(config, name, no_routes)?,
    }
    Ok(())
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let st = Command::new("ip")
        .args(args)
        .status()
        .context("running ip")?;
    if !st.success() {
        bail!("ip {} failed", args.join(" "));
    }
    Ok(())
}

fn up(config: PathBuf, name: Option<String>, no_routes: bool) -> anyhow::Result<()> {
    let mut cfg = DeviceConfig::from_file(&config)
        .with_context(|| format!("reading {}", config.display()))?;
    if let Some(n) = name {
        cfg.name = n;
    }
    let iface = cfg.name.clone();
    let first_v4 = cfg.addresses.iter().position(|(a, _)| a.is_ipv4());
    let extra: Vec<String> = cfg
        .addresses
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != first_v4)
        .map(|(_, (a, p))| format!("{a}/{p}"))
        .collect();
    let routes: Vec<String> = cfg
        .peers
        .iter()
        .flat_map(|p| p.allowed_ips.iter())
        .filter(|n| n.prefix() > 0)
        .map(|n| n.to_string())
        .collect();
    let dev = Device::start(cfg).context("starting the device")?;
    for a in &extra {
        ip(&["address", "add", a, "dev", &iface])?;
    }
    if !no_routes {
        for r in &routes {
            // Routes only point into our own interface, never out of the host.
            ip(&["route", "replace", r, "dev", &iface])?;
        }
    }
    println!(
        "{iface} up: public key {} listening on {}",
        dev.public_key(),
        dev.listen_port()
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        anyhow::Ok(())
    })?;
    tracing::info!(iface = %iface, "shutting down");
    dev.shutdown();
    Ok(())
}
