//! `ferry-bench-apiserver`: benchmarks of `ferry apiserver` against etcd 3.4
//! measured in the same run, on the same disk (issue #2, point 5).
//!
//! It starts both servers as child processes with data directories under one
//! parent directory, then measures, printing figures as it goes and a summary
//! table with the targets at the end:
//!
//! 1. durable creates/s with 1 and 16 concurrent clients, alternating ferry
//!    and etcd for several rounds (medians and the ratio ferry/etcd);
//! 2. watch delivery latency with 100 watchers (p50/p99 over all deliveries);
//! 3. full-list latency of a namespace with 10k objects (and, for reference,
//!    an etcd range get of the same 10k values);
//! 4. VmRSS of the ferry process holding 100k small ConfigMaps.
//!
//! These are benchmarks, not tests: the exit status is 0 even when a target
//! is missed, and non-zero only when the run itself fails. Run it through
//! `bench/apiserver/run.sh`, which builds everything in release mode.

mod access;
mod bench;
mod clients;
mod procs;
mod stats;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;

use bench::{Endpoints, Target};
use procs::{FerryServer, Servers};
use stats::{median, ms, percentile};

/// Benchmarks `ferry apiserver` against etcd 3.4 on the same disk.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// A shorter run (~2 minutes): fewer rounds, shorter windows, fewer
    /// watch events and timed lists. Explicit flags still win.
    #[arg(long)]
    quick: bool,
    /// The ferry binary (release build).
    #[arg(long, default_value = "target/release/ferry")]
    ferry_bin: PathBuf,
    /// The etcd 3.4 binary (Debian package etcd-server).
    #[arg(long, default_value = "etcd")]
    etcd_bin: PathBuf,
    /// Parent directory for both servers' data directories (same disk).
    #[arg(long, default_value = "/tmp")]
    dir: PathBuf,
    /// Allow a RAM-backed --dir (tmpfs): durable-write figures then mean little.
    #[arg(long)]
    allow_tmpfs: bool,
    /// Rounds of the create benchmark (ferry and etcd alternate in each).
    #[arg(long)]
    rounds: Option<usize>,
    /// Length of each timed create window, in seconds.
    #[arg(long)]
    window_secs: Option<f64>,
    /// Size of the ConfigMap data value (the same JSON document is the etcd value).
    #[arg(long, default_value_t = 256)]
    value_bytes: usize,
    /// Concurrent watch streams, each on its own connection.
    #[arg(long, default_value_t = 100)]
    watchers: usize,
    /// Objects the watch writer creates.
    #[arg(long)]
    watch_writes: Option<usize>,
    /// Writes per second during the watch benchmark.
    #[arg(long, default_value_t = 50.0)]
    watch_rate: f64,
    /// Objects in the namespace that is listed.
    #[arg(long, default_value_t = 10_000)]
    list_objects: usize,
    /// Timed full lists (median reported).
    #[arg(long)]
    list_runs: Option<usize>,
    /// ConfigMaps held by the fresh ferry whose RSS is read.
    #[arg(long)]
    rss_objects: Option<usize>,
    /// Concurrent clients used to fill namespaces.
    #[arg(long, default_value_t = 32)]
    fill_workers: usize,
}

/// The effective settings after --quick and explicit flags.
#[derive(Debug)]
struct Plan {
    rounds: usize,
    window: Duration,
    watch_writes: usize,
    list_runs: usize,
    rss_objects: usize,
}

impl Args {
    fn plan(&self) -> Result<Plan> {
        let q = self.quick;
        let plan = Plan {
            rounds: self.rounds.unwrap_or(if q { 3 } else { 5 }),
            window: Duration::from_secs_f64(self.window_secs.unwrap_or(if q { 2.0 } else { 5.0 })),
            watch_writes: self.watch_writes.unwrap_or(if q { 200 } else { 1000 }),
            list_runs: self.list_runs.unwrap_or(if q { 5 } else { 20 }),
            rss_objects: self.rss_objects.unwrap_or(100_000),
        };
        if plan.rounds == 0 || plan.list_runs == 0 || plan.watch_writes == 0 {
            bail!("--rounds, --list-runs and --watch-writes must be at least 1");
        }
        if !(self.watch_rate > 0.0 && self.watch_rate <= 10_000.0) {
            bail!("--watch-rate must be in (0, 10000]");
        }
        if self.watchers == 0 || self.fill_workers == 0 {
            bail!("--watchers and --fill-workers must be at least 1");
        }
        Ok(plan)
    }
}

/// One line of the summary table.
struct Row {
    what: String,
    ferry: String,
    etcd: String,
    ratio: String,
    target: String,
    verdict: &'static str,
}

fn row(what: impl Into<String>, ferry: impl Into<String>) -> Row {
    Row {
        what: what.into(),
        ferry: ferry.into(),
        etcd: "-".into(),
        ratio: "-".into(),
        target: "-".into(),
        verdict: "-",
    }
}

fn verdict(pass: bool) -> &'static str {
    if pass { "PASS" } else { "FAIL" }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    let command = std::env::var("FERRY_BENCH_COMMAND")
        .unwrap_or_else(|_| std::env::args().collect::<Vec<_>>().join(" "));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing a SIGTERM handler")?;
    // On a signal the run future is dropped, which kills both servers and
    // removes their data directories (see procs::Servers).
    tokio::select! {
        r = run(&args, &command) => r,
        _ = tokio::signal::ctrl_c() => bail!("interrupted (SIGINT); servers stopped, data removed"),
        _ = term.recv() => bail!("terminated (SIGTERM); servers stopped, data removed"),
    }
}

async fn run(args: &Args, command: &str) -> Result<()> {
    let plan = args.plan()?;
    let (fs, ram) = procs::filesystem(&args.dir)?;
    if ram && !args.allow_tmpfs {
        bail!(
            "{} is on {fs} (RAM): durable-write figures would be meaningless; pass --dir on a disk or --allow-tmpfs",
            args.dir.display()
        );
    }
    let etcd_version = std::process::Command::new(&args.etcd_bin)
        .arg("--version")
        .output()
        .with_context(|| format!("running {} --version", args.etcd_bin.display()))?;
    let etcd_version = String::from_utf8_lossy(&etcd_version.stdout)
        .lines()
        .next()
        .unwrap_or("etcd: unknown version")
        .to_string();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("ferry apiserver benchmarks against {etcd_version}");
    println!(
        "  data under {} ({fs}), {cores} cores, value {} bytes, plan {plan:?}",
        args.dir.display(),
        args.value_bytes
    );

    let mut servers = Servers::start(&args.dir, &args.ferry_bin, &args.etcd_bin).await?;
    println!(
        "  ferry pid {} at {} (data {}), etcd pid {} at {} (data {})",
        servers.ferry.proc.pid(),
        servers.ferry.access.url,
        servers.ferry.dir.display(),
        servers.etcd.pid(),
        servers.etcd_url,
        servers.etcd_dir.display()
    );
    let result = measure(args, &plan, &servers, command).await;
    if result.is_err() {
        // Name a crashed server rather than only the client-side symptom.
        servers.ferry.proc.ensure_running()?;
        servers.etcd.ensure_running()?;
    }
    result
}

async fn measure(args: &Args, plan: &Plan, servers: &Servers, command: &str) -> Result<()> {
    let ep = Endpoints {
        ferry: servers.ferry.access.clone(),
        etcd_url: servers.etcd_url.clone(),
    };
    let value = clients::value_of_len(args.value_bytes);
    let admin = clients::Ferry::new(&ep.ferry)?;
    admin.create_namespace("bench").await?;
    let mut rows = Vec::new();

    // 1. Durable creates.
    println!(
        "\n== durable creates: {} rounds x {:.1} s windows, one connection per client \
         (ferry: HTTPS, HTTP/2 by ALPN; etcd: HTTP/1.1 JSON gateway /v3/kv/put)",
        plan.rounds,
        plan.window.as_secs_f64()
    );
    for clients in [1usize, 16] {
        let mut rates: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
        let mut p99s: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
        for round in 0..plan.rounds {
            let order = if round % 2 == 0 {
                [Target::Ferry, Target::Etcd]
            } else {
                [Target::Etcd, Target::Ferry]
            };
            for target in order {
                let tag = format!("c{clients}-r{round}");
                let r = bench::creates(&ep, target, "bench", clients, plan.window, &tag, &value)
                    .await
                    .with_context(|| {
                        format!("creates on {} with {clients} clients", target.name())
                    })?;
                let i = usize::from(target == Target::Etcd);
                rates[i].push(r.per_sec());
                p99s[i].push(ms(percentile(&r.latencies, 99.0)));
                println!(
                    "  round {}/{} {:5} c={clients:<2}: {:8.0} creates/s  (n={}, p50 {:.2} ms, p99 {:.2} ms)",
                    round + 1,
                    plan.rounds,
                    target.name(),
                    r.per_sec(),
                    r.ops,
                    ms(percentile(&r.latencies, 50.0)),
                    ms(percentile(&r.latencies, 99.0)),
                );
            }
        }
        let (f, e) = (median(&rates[0]), median(&rates[1]));
        let ratio = f / e.max(1e-9);
        println!(
            "  c={clients}: median ferry {f:.0}/s, etcd {e:.0}/s, ratio ferry/etcd {ratio:.2}x \
             (median p99: ferry {:.2} ms, etcd {:.2} ms)",
            median(&p99s[0]),
            median(&p99s[1])
        );
        let mut r = row(
            format!("durable creates/s, {clients} client(s)"),
            format!("{f:.0}"),
        );
        r.etcd = format!("{e:.0}");
        r.ratio = format!("{ratio:.2}x");
        if clients == 16 {
            r.target = ">= 1.00x etcd".into();
            r.verdict = verdict(ratio >= 1.0);
        }
        rows.push(r);
    }

    // 2. Watch delivery.
    println!(
        "\n== watch delivery: {} watchers (one connection each), {} creates at {}/s",
        args.watchers, plan.watch_writes, args.watch_rate
    );
    let w = bench::watch(
        &ep,
        "bench-watch",
        args.watchers,
        plan.watch_writes,
        args.watch_rate,
        &value,
    )
    .await
    .context("watch benchmark")?;
    let expected = w.watchers * w.writes;
    let (s50, s99, smax) = (
        percentile(&w.from_send, 50.0),
        percentile(&w.from_send, 99.0),
        percentile(&w.from_send, 100.0),
    );
    let (a50, a99) = (percentile(&w.from_ack, 50.0), percentile(&w.from_ack, 99.0));
    println!(
        "  deliveries {}/{expected}; from just before sending the write (includes its fsync): \
         p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        w.delivered,
        ms(s50),
        ms(s99),
        ms(smax)
    );
    println!(
        "  after the write's response (0 = the event came first): p50 {:.2} ms, p99 {:.2} ms; \
         write latency p50 {:.2} ms, p99 {:.2} ms",
        ms(a50),
        ms(a99),
        ms(percentile(&w.write_latency, 50.0)),
        ms(percentile(&w.write_latency, 99.0)),
    );
    let complete = w.delivered == expected;
    let mut r = row(
        format!("watch p50 / p99, {} watchers, from send", w.watchers),
        format!("{:.2} / {:.2} ms", ms(s50), ms(s99)),
    );
    r.target = "p99 <= 10 ms, all delivered".into();
    r.verdict = verdict(complete && s99 <= Duration::from_millis(10));
    rows.push(r);
    rows.push(row(
        "watch p50 / p99, after the write's response",
        format!("{:.2} / {:.2} ms", ms(a50), ms(a99)),
    ));

    // 3. List latency.
    println!(
        "\n== list: {} objects in one namespace, {} timed full lists (JSON)",
        args.list_objects, plan.list_runs
    );
    admin.create_namespace("bench-list").await?;
    let took = bench::fill(
        &ep,
        Target::Ferry,
        "bench-list",
        "item",
        0..args.list_objects,
        args.fill_workers,
        &value,
    )
    .await
    .context("filling ferry for the list benchmark")?;
    println!(
        "  filled ferry in {:.1} s ({:.0}/s with {} clients)",
        took.as_secs_f64(),
        args.list_objects as f64 / took.as_secs_f64(),
        args.fill_workers
    );
    let took = bench::fill(
        &ep,
        Target::Etcd,
        "bench-list",
        "item",
        0..args.list_objects,
        args.fill_workers,
        &value,
    )
    .await
    .context("filling etcd for the list benchmark")?;
    println!(
        "  filled etcd in {:.1} s ({:.0}/s with {} clients)",
        took.as_secs_f64(),
        args.list_objects as f64 / took.as_secs_f64(),
        args.fill_workers
    );
    let (ftimes, body) = bench::time_reads(plan.list_runs, || admin.list_configmaps("bench-list"))
        .await
        .context("timing ferry lists")?;
    let (items, _) = clients::parse_list(&body)?;
    anyhow::ensure!(
        items == args.list_objects,
        "ferry listed {items} objects, wanted {}",
        args.list_objects
    );
    let list_bytes = body.len();
    let etcd = clients::Etcd::new(&ep.etcd_url)?;
    let (etimes, body) = bench::time_reads(plan.list_runs, || {
        etcd.range_prefix("/registry/configmaps/bench-list/")
    })
    .await
    .context("timing etcd ranges")?;
    let kvs = clients::parse_range_count(&body)?;
    anyhow::ensure!(
        kvs == args.list_objects,
        "etcd returned {kvs} keys, wanted {}",
        args.list_objects
    );
    let fl = median(&ftimes.iter().map(|d| ms(*d)).collect::<Vec<_>>());
    let el = median(&etimes.iter().map(|d| ms(*d)).collect::<Vec<_>>());
    println!(
        "  ferry list: median {fl:.1} ms ({} KiB); etcd range: median {el:.1} ms ({} KiB, base64 values)",
        list_bytes / 1024,
        body.len() / 1024
    );
    let mut r = row(
        format!("list {} objects (median)", args.list_objects),
        format!("{fl:.1} ms"),
    );
    r.etcd = format!("{el:.1} ms (range)");
    r.ratio = format!("{:.2}x time", fl / el.max(1e-9));
    rows.push(r);

    // 4. RSS, on a fresh ferry holding exactly the requested objects.
    println!(
        "\n== RSS: a fresh ferry apiserver (same disk) filled with {} ConfigMaps by {} clients",
        plan.rss_objects, args.fill_workers
    );
    let fresh = FerryServer::start(servers.parent.path(), &args.ferry_bin, "ferry-rss").await?;
    let pid = fresh.proc.pid();
    let (rss0, _) = procs::rss_kib(pid)?;
    let fresh_ep = Endpoints {
        ferry: fresh.access.clone(),
        etcd_url: ep.etcd_url.clone(),
    };
    clients::Ferry::new(&fresh.access)?
        .create_namespace("bench-rss")
        .await?;
    let took = bench::fill(
        &fresh_ep,
        Target::Ferry,
        "bench-rss",
        "obj",
        0..plan.rss_objects,
        args.fill_workers,
        &value,
    )
    .await
    .context("filling ferry for the RSS benchmark")?;
    // Let background work settle (connection teardown, housekeeping).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (rss, hwm) = procs::rss_kib(pid)?;
    let rss_mb = rss as f64 / 1024.0;
    let db_mb = procs::dir_bytes(&fresh.dir) as f64 / (1024.0 * 1024.0);
    println!(
        "  filled in {:.1} s ({:.0}/s); VmRSS {rss_mb:.1} MB (peak {:.1} MB, {:.1} MB before the fill, \
         {:.0} bytes/object); data dir {db_mb:.0} MB",
        took.as_secs_f64(),
        plan.rss_objects as f64 / took.as_secs_f64(),
        hwm as f64 / 1024.0,
        rss0 as f64 / 1024.0,
        (rss.saturating_sub(rss0) * 1024) as f64 / plan.rss_objects.max(1) as f64,
    );
    drop(fresh);
    let mut r = row(
        format!("ferry RSS at {} objects", plan.rss_objects),
        format!("{rss_mb:.1} MB"),
    );
    r.target = "<= 300 MB at 100k".into();
    r.verdict = if plan.rss_objects >= 100_000 {
        verdict(rss_mb <= 300.0)
    } else {
        "n/a (<100k)"
    };
    rows.push(r);

    print_summary(&rows, command);
    Ok(())
}

fn print_summary(rows: &[Row], command: &str) {
    let head = Row {
        what: "figure".into(),
        ferry: "ferry".into(),
        etcd: "etcd".into(),
        ratio: "ratio".into(),
        target: "target".into(),
        verdict: "result",
    };
    let all: Vec<&Row> = std::iter::once(&head).chain(rows).collect();
    let w = |f: fn(&Row) -> usize| all.iter().map(|r| f(r)).max().unwrap_or(0);
    let (w0, w1, w2, w3, w4) = (
        w(|r| r.what.len()),
        w(|r| r.ferry.len()),
        w(|r| r.etcd.len()),
        w(|r| r.ratio.len()),
        w(|r| r.target.len()),
    );
    println!("\n== summary");
    for (i, r) in all.iter().enumerate() {
        println!(
            "  {:<w0$} | {:>w1$} | {:>w2$} | {:>w3$} | {:<w4$} | {}",
            r.what, r.ferry, r.etcd, r.ratio, r.target, r.verdict
        );
        if i == 0 {
            println!("  {}", "-".repeat(w0 + w1 + w2 + w3 + w4 + 6 + 3 * 5));
        }
    }
    println!("\ncommand: {command}");
}
