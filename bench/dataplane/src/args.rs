//! Command line of the benchmark: flags, defaults and the sections to run.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

const USAGE: &str = "\
usage: ferry-bench-dataplane [--ferry PATH] [--prefix bd-NAME] [--only wireguard,vxlan,idle,failover,dns,ipsec,ipsec-failover,globalnet,mesh,active-active]
                             [--rounds 5] [--secs 5] [--pings 200] [--kills 10] [--cuts 5] [--exports 5]
                             [--interval-ms 10] [--idle-secs 30] [--clusters 16] [--keep]
`mesh` and `active-active` are not part of the default run (they need their own sandbox clusters).
Needs root, iperf3, ping, wireguard-go, wg, ip and kubectl. Prefer bench/dataplane/run.sh.";

/// Every section, in the order they run (`--only` picks some).
const SECTIONS: [&str; 10] = [
    "wireguard",
    "vxlan",
    "idle",
    "failover",
    "dns",
    "ipsec",
    "ipsec-failover",
    "globalnet",
    "mesh",
    "active-active",
];

/// The parsed command line.
pub struct Args {
    pub ferry: PathBuf,
    pub prefix: String,
    pub sections: Vec<String>,
    pub rounds: usize,
    pub secs: u32,
    pub pings: u32,
    pub kills: usize,
    pub cuts: usize,
    /// The `globalnet` section's ServiceExport → reachable global IP samples.
    pub exports: usize,
    pub interval: Duration,
    /// The `idle` section's window.
    pub idle: Duration,
    /// The `mesh` section's member clusters (one node each; the sandbox
    /// holds at most 64 clusters at once, the broker's included).
    pub clusters: usize,
    pub keep: bool,
}

impl Args {
    pub fn parse() -> Result<Args> {
        let exe = std::env::current_exe().context("locating this binary")?;
        let mut a = Args {
            ferry: exe.with_file_name("ferry"),
            prefix: format!("bd-{}", std::process::id()),
            sections: SECTIONS
                .iter()
                .filter(|s| !["mesh", "active-active"].contains(*s))
                .map(|s| s.to_string())
                .collect(),
            rounds: 5,
            secs: 5,
            pings: 200,
            kills: 10,
            cuts: 5,
            exports: 5,
            interval: Duration::from_millis(10),
            idle: Duration::from_secs(30),
            clusters: 16,
            keep: false,
        };
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            if flag == "--keep" {
                a.keep = true;
                continue;
            }
            if flag == "-h" || flag == "--help" {
                println!("{USAGE}");
                std::process::exit(0);
            }
            let v = it
                .next()
                .ok_or_else(|| anyhow!("{flag} needs a value\n{USAGE}"))?;
            let num = || v.parse::<u64>().with_context(|| format!("{flag} {v}"));
            match flag.as_str() {
                "--ferry" => a.ferry = PathBuf::from(&v),
                "--prefix" => a.prefix = v.clone(),
                "--only" => a.sections = v.split(',').map(String::from).collect(),
                "--rounds" => a.rounds = num()? as usize,
                "--secs" => a.secs = num()? as u32,
                "--pings" => a.pings = num()? as u32,
                "--kills" => a.kills = num()? as usize,
                "--cuts" => a.cuts = num()? as usize,
                "--exports" => a.exports = num()? as usize,
                "--interval-ms" => a.interval = Duration::from_millis(num()?),
                "--idle-secs" => a.idle = Duration::from_secs(num()?),
                "--clusters" => a.clusters = num()? as usize,
                _ => bail!("unknown flag {flag}\n{USAGE}"),
            }
        }
        if !a.prefix.starts_with("bd") || a.prefix.len() > 14 {
            bail!("--prefix must start with 'bd' and be at most 14 characters");
        }
        let most = ferry_sandbox::plan::MAX_CLUSTERS as usize - 1;
        if !(2..=most).contains(&a.clusters) {
            bail!(
                "--clusters must be 2..={most} (the sandbox holds {} clusters, the broker's included)",
                most + 1
            );
        }
        for s in &a.sections {
            if !SECTIONS.contains(&s.as_str()) {
                bail!("unknown section {s}\n{USAGE}");
            }
        }
        Ok(a)
    }

    /// Short host-unique tag for device names: the prefix's number mod 100000.
    pub fn tag(&self) -> String {
        let digits: String = self.prefix.chars().filter(char::is_ascii_digit).collect();
        let n: u64 = digits.parse().unwrap_or(u64::from(std::process::id()));
        (n % 100_000).to_string()
    }

    pub fn wants(&self, s: &str) -> bool {
        self.sections.iter().any(|x| x == s)
    }
}
