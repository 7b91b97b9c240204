//! Processes and network namespaces: running commands (inside a namespace
//! or not), sockets made inside a namespace, finding a process by the
//! namespace it runs in, the load average.

use std::os::unix::fs::MetadataExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

/// Runs `prog args…` and returns its stdout; fails with its stderr.
pub fn run(prog: &str, args: &[&str]) -> Result<String> {
    run_with_stdin(prog, args, None)
}

/// [`run`] with `input` on stdin.
pub fn run_with_stdin(prog: &str, args: &[&str], input: Option<&str>) -> Result<String> {
    use std::io::Write;
    let mut child = Command::new(prog)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {prog}"))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .with_context(|| format!("writing to {prog}"))?;
    }
    let out = child
        .wait_with_output()
        .with_context(|| format!("waiting for {prog}"))?;
    if !out.status.success() {
        bail!(
            "{prog} {}: {}: {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `ip netns exec NS prog args…`.
pub fn ns_run(ns: &str, prog: &str, args: &[&str]) -> Result<String> {
    let mut v = vec!["netns", "exec", ns, prog];
    v.extend_from_slice(args);
    run("ip", &v)
}

/// Starts `prog args…` in namespace `ns` (`env` pairs first), output discarded.
pub fn ns_spawn(ns: &str, env: &[(&str, &str)], prog: &str, args: &[&str]) -> Result<Child> {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns, prog])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c.spawn()
        .with_context(|| format!("starting {prog} in netns {ns}"))
}

/// Runs `f` on a thread that entered network namespace `ns` (setns acts on
/// one thread); sockets made in `f` stay in `ns` wherever they are used.
pub fn in_netns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T> {
    let path = format!("/run/netns/{ns}");
    let file = std::fs::File::open(&path).with_context(|| format!("opening {path}"))?;
    let ns_name = ns.to_string();
    std::thread::spawn(move || -> Result<T> {
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
            .with_context(|| format!("entering netns {ns_name}"))?;
        f().with_context(|| format!("in netns {ns_name}"))
    })
    .join()
    .map_err(|_| anyhow!("thread in netns {ns} panicked"))?
}

/// (device, inode) of a network namespace, to compare with `/proc/PID/ns/net`.
fn netns_id(path: &str) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Processes running in network namespace `ns` whose argv matches `pred`.
pub fn pids_in_netns(ns: &str, pred: impl Fn(&[String]) -> bool) -> Vec<i32> {
    let Some(want) = netns_id(&format!("/run/netns/{ns}")) else {
        return Vec::new();
    };
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids = Vec::new();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let argv: Vec<String> = raw
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if pred(&argv) && netns_id(&format!("/proc/{pid}/ns/net")) == Some(want) {
            pids.push(pid);
        }
    }
    pids
}

/// The gateway process of node namespace `ns`, if one runs: the
/// `ferry-gateway` binary the manifests run, or `ferry gateway`.
pub fn gateway_pid(ns: &str) -> Option<i32> {
    pids_in_netns(ns, |argv| {
        let program = argv.first().and_then(|a| a.rsplit('/').next());
        program == Some("ferry-gateway")
            || (program == Some("ferry") && argv.get(1).map(String::as_str) == Some("gateway"))
    })
    .into_iter()
    .next()
}

/// Sends SIGKILL to `pid`.
pub fn kill9(pid: i32) -> Result<()> {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .with_context(|| format!("kill -9 {pid}"))
}

/// Whether link `dev` exists in namespace `ns`.
pub fn link_exists(ns: &str, dev: &str) -> bool {
    Command::new("ip")
        .args(["-n", ns, "link", "show", "dev", dev])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The IPv4 address of `dev` in namespace `ns`.
pub fn addr_of(ns: &str, dev: &str) -> Result<std::net::Ipv4Addr> {
    let out = run("ip", &["-n", ns, "-4", "-j", "addr", "show", "dev", dev])?;
    let v: serde_json::Value = serde_json::from_str(&out).context("ip -j addr")?;
    v.get(0)
        .and_then(|l| l["addr_info"].get(0))
        .and_then(|a| a["local"].as_str())
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("no IPv4 address on {dev} in netns {ns}"))
}

/// Transmitted (bytes, packets) of `dev` in namespace `ns`.
pub fn tx_counters(ns: &str, dev: &str) -> Result<(u64, u64)> {
    let out = run("ip", &["-n", ns, "-s", "-j", "link", "show", "dev", dev])?;
    let v: serde_json::Value = serde_json::from_str(&out).context("ip -s -j link")?;
    let tx = &v[0]["stats64"]["tx"];
    match (tx["bytes"].as_u64(), tx["packets"].as_u64()) {
        (Some(b), Some(p)) => Ok((b, p)),
        _ => Err(anyhow!("no tx counters for {dev} in netns {ns}")),
    }
}

/// `/proc/loadavg`'s 1, 5 and 15 minute figures.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// Polls `f` every `every` until it returns `Some` or `timeout` passes
/// (the sandbox harness's poll, with this binary's error type).
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    every: Duration,
    f: impl FnMut() -> Option<T>,
) -> Result<T> {
    Ok(ferry_sandbox::harness::wait_for(what, timeout, every, f)?)
}
