//! Generates the inputs of `bench/dns/run.sh`: the same N service names as
//! an NSD zone file, a `ferry dns --static-zone` JSON file, and a dnsperf
//! query file (every name once, shuffled deterministically, plus 10 %
//! names that do not exist).
//!
//! Usage: `ferry-bench-dns OUT_DIR [SERVICES]` (default 10000).
#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context;

fn ip(i: usize) -> String {
    format!("242.{}.{}.{}", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff)
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(
        args.next()
            .context("usage: ferry-bench-dns OUT_DIR [SERVICES]")?,
    );
    let n: usize = args
        .next()
        .map_or(Ok(10_000), |s| s.parse())
        .context("SERVICES")?;
    std::fs::create_dir_all(&out)?;

    let mut zone = String::from(
        "$ORIGIN clusterset.local.\n$TTL 5\n\
         @ IN SOA ns.dns.clusterset.local. hostmaster.clusterset.local. 1 3600 600 86400 5\n\
         @ IN NS ns.dns.clusterset.local.\n\
         dns-version IN TXT \"1.0.0\"\n",
    );
    let mut services = Vec::with_capacity(n);
    let mut names = Vec::with_capacity(n + n / 10);
    for i in 0..n {
        let (svc, ns) = (format!("svc-{i}"), format!("ns-{}", i % 100));
        writeln!(zone, "{svc}.{ns}.svc IN A {}", ip(i))?;
        services.push(serde_json::json!({
            "namespace": ns, "name": svc, "ips": [ip(i)],
            "clusters": { "local": [format!("10.{}.{}.{}", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff)] },
        }));
        names.push(format!("{svc}.{ns}.svc.clusterset.local A"));
    }
    for i in 0..n / 10 {
        names.push(format!("missing-{i}.ns-{}.svc.clusterset.local A", i % 100));
    }
    // Deterministic shuffle (xorshift), so both servers see the same order.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in (1..names.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        names.swap(i, (x % (i as u64 + 1)) as usize);
    }
    let static_zone = serde_json::json!({ "localCluster": "local", "services": services });
    std::fs::write(out.join("clusterset.local.zone"), zone)?;
    std::fs::write(
        out.join("static-zone.json"),
        serde_json::to_string(&static_zone)?,
    )?;
    std::fs::write(out.join("queries.txt"), names.join("\n") + "\n")?;
    println!("{n} services → {}", out.display());
    Ok(())
}
