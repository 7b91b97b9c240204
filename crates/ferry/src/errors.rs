//! How every command ends: errors a user can cause become one `error:` line
//! and a `hint:` line (see `ferry_ctl::explain`), exit code 2 for usage
//! errors (clap's own included) and 1 for failures. Output to a closed pipe
//! (`ferry show | head`) is not an error.

use std::io::Write;
use std::process::ExitCode;

/// Prints `err` for a user and returns the exit code.
pub fn report(err: &anyhow::Error) -> ExitCode {
    let explained = ferry_ctl::explain(err.chain());
    let _ = std::io::stderr().write_all(explained.render().as_bytes());
    ExitCode::from(explained.exit_code())
}

/// Writes `text` to stdout; a reader that went away is fine.
pub fn print(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// A `5s`, `500ms`, `1m30s` or plain-seconds duration.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(std::time::Duration::from_secs(secs));
    }
    s.parse::<kube::core::Duration>()
        .map_err(|e| format!("{s:?} is not a duration like 5s or 500ms: {e}"))
        .and_then(|d| {
            if d.is_negative() {
                Err(format!("{s:?} must not be negative"))
            } else {
                Ok(std::time::Duration::from(d))
            }
        })
}
