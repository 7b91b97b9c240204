//! Commands that fail with their output, and polling.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::{Error, Result};

/// `prog arg…`, as a shell would show it.
fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs a command and returns its output, whatever its status.
pub fn output(cmd: &mut Command) -> Result<Output> {
    cmd.stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Command {
            command: describe(cmd),
            message: e.to_string(),
        })
}

/// Runs a command that must succeed; returns its stdout.
pub fn run(cmd: &mut Command) -> Result<String> {
    run_with_stdin(cmd, None)
}

/// [`run`] with `input` on stdin.
pub fn run_with_stdin(cmd: &mut Command, input: Option<&str>) -> Result<String> {
    use std::io::Write;
    let failed = |cmd: &Command, message: String| Error::Command {
        command: describe(cmd),
        message,
    };
    let mut child = cmd
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(cmd, e.to_string()))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| failed(cmd, format!("writing stdin: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| failed(cmd, e.to_string()))?;
    if !out.status.success() {
        return Err(failed(
            cmd,
            format!(
                "{}\nstdout: {}\nstderr: {}",
                out.status,
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Polls `f` every `every` until it returns `Some`, or fails after `timeout`
/// naming `what`.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            return Err(Error::Timeout(format!("{what} (after {timeout:?})")));
        }
        std::thread::sleep(every);
    }
}
