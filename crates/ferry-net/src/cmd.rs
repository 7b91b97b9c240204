//! Running `ip`, `bridge`, `nft` and `sysctl`, in the current namespace or a
//! named one.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::{Error, Result};

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs a command with optional stdin and returns its stdout; a command that
/// cannot start or exits non-zero is an [`Error::Command`] with the command
/// line, its stderr and (when given) its stdin.
pub fn run(cmd: &mut Command, stdin: Option<&str>) -> Result<String> {
    let text = describe(cmd);
    let fail = |message: String| Error::Command {
        command: text.clone(),
        message,
    };
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| fail(e.to_string()))?;
    let mut write_err = None;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A command that exits early closes the pipe (EPIPE); its exit
        // status and stderr below say why.
        write_err = pipe.write_all(input.as_bytes()).err();
    }
    let out = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
    if out.status.success()
        && let Some(e) = write_err
    {
        return Err(fail(format!("writing stdin: {e}")));
    }
    if !out.status.success() {
        let mut message = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if message.is_empty() {
            message = format!("exited with {}", out.status);
        }
        if let Some(input) = stdin {
            message.push_str("\ninput was:\n");
            message.push_str(input);
        }
        return Err(fail(message));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `prog` in `netns` (`ip netns exec NS prog`), or plain `prog` for `None`.
fn in_netns(netns: Option<&str>, prog: &str) -> Command {
    match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, prog]);
            c
        }
        None => Command::new(prog),
    }
}

/// `ip [-n NS] ARGS…`, returning stdout.
pub fn ip(netns: Option<&str>, args: &[&str]) -> Result<String> {
    let mut c = Command::new("ip");
    if let Some(ns) = netns {
        c.args(["-n", ns]);
    }
    run(c.args(args), None)
}

/// `ip [-n NS] -batch -` with one command per line; stops at the first
/// failing line.
pub fn ip_batch(netns: Option<&str>, lines: &[String]) -> Result<()> {
    if lines.is_empty() {
        return Ok(());
    }
    let mut c = Command::new("ip");
    if let Some(ns) = netns {
        c.args(["-n", ns]);
    }
    c.args(["-batch", "-"]);
    let input = lines.join("\n") + "\n";
    run(&mut c, Some(&input)).map(|_| ())
}

/// `bridge [-n NS] ARGS…` (fdb entries), returning stdout.
pub fn bridge(netns: Option<&str>, args: &[&str]) -> Result<String> {
    let mut c = Command::new("bridge");
    if let Some(ns) = netns {
        c.args(["-n", ns]);
    }
    run(c.args(args), None)
}

/// `ip netns exec NS ARGS…` (or `ARGS…` for `None`) with optional stdin.
pub fn netns_exec(netns: Option<&str>, args: &[&str], stdin: Option<&str>) -> Result<String> {
    let Some((prog, rest)) = args.split_first() else {
        return Err(Error::Invalid("netns_exec needs a program".into()));
    };
    run(in_netns(netns, prog).args(rest), stdin)
}

/// `nft ARGS…` in the namespace, returning stdout.
pub fn nft(netns: Option<&str>, args: &[&str]) -> Result<String> {
    run(in_netns(netns, "nft").args(args), None)
}

/// Applies an nftables script with `nft -f -`: one transaction, so either all
/// of it takes effect or none.
pub fn nft_apply(netns: Option<&str>, script: &str) -> Result<()> {
    run(in_netns(netns, "nft").args(["-f", "-"]), Some(script)).map(|_| ())
}

/// Sets a sysctl (`sysctl -qw KEY=VALUE`). Keys whose interface part holds a
/// dot are written with `/` separators (`net/ipv4/conf/eth0.5/rp_filter`).
pub fn sysctl_set(netns: Option<&str>, key: &str, value: &str) -> Result<()> {
    run(
        in_netns(netns, "sysctl").args(["-qw", &format!("{key}={value}")]),
        None,
    )
    .map(|_| ())
}

/// Reads a sysctl (`sysctl -n KEY`), trimmed.
pub fn sysctl_get(netns: Option<&str>, key: &str) -> Result<String> {
    run(in_netns(netns, "sysctl").args(["-n", key]), None).map(|s| s.trim().to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn failing_command_names_itself_and_its_stderr() {
        let err = run(
            Command::new("sh").args(["-c", "echo boom >&2; exit 3"]),
            None,
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("`sh -c echo boom >&2; exit 3`"), "{text}");
        assert!(text.contains("boom"), "{text}");
        assert!(err.stderr_contains("boom"));
    }

    #[test]
    fn failing_command_with_stdin_shows_the_input() {
        let err = run(&mut Command::new("false"), Some("line one\n")).unwrap_err();
        assert!(err.to_string().contains("line one"), "{err}");
    }

    #[test]
    fn stdout_is_returned_and_stdin_is_fed() {
        assert_eq!(run(&mut Command::new("cat"), Some("abc")).unwrap(), "abc");
    }

    #[test]
    fn missing_program_is_a_command_error() {
        let err = run(&mut Command::new("/nonexistent/ferry-nope"), None).unwrap_err();
        assert!(matches!(err, Error::Command { .. }), "{err}");
    }

    #[test]
    fn netns_wraps_with_ip_netns_exec() {
        let c = in_netns(Some("ns1"), "nft");
        assert_eq!(describe(&c), "ip netns exec ns1 nft");
        assert_eq!(describe(&in_netns(None, "nft")), "nft");
    }
}
