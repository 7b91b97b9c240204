//! The UAPI control socket, so that `wg show`, `wg set` and `wg setconf` work
//! against a ferry device.

use super::Inner;
use crate::proto::peer::lock;
use crate::proto::uapi::{format_get, parse_set};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

/// Bind the socket (replacing a stale one), mode 0600 in a 0755 directory. Bound
/// here, synchronously, so a caller knows `wg` can talk to the device once
/// `Device::start` returns.
pub(crate) fn bind(path: &Path) -> io::Result<std::os::unix::net::UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755));
    }
    let _ = std::fs::remove_file(path);
    let l = std::os::unix::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    l.set_nonblocking(true)?;
    Ok(l)
}

pub(crate) async fn serve(inner: Arc<Inner>, l: std::os::unix::net::UnixListener) {
    let l = match UnixListener::from_std(l) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("uapi socket: {e}");
            return;
        }
    };
    loop {
        match l.accept().await {
            Ok((s, _)) => {
                let inner = inner.clone();
                tokio::spawn(async move {
                    if let Err(e) = conn(inner, s).await {
                        tracing::debug!("uapi connection: {e}");
                    }
                });
            }
            Err(e) => {
                tracing::warn!("uapi accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

async fn conn(inner: Arc<Inner>, s: UnixStream) -> io::Result<()> {
    let (r, mut w) = s.into_split();
    let mut lines = BufReader::new(r).lines();
    while let Some(op) = lines.next_line().await? {
        match op.as_str() {
            "get=1" => {
                // skip to the blank line
                while let Some(l) = lines.next_line().await? {
                    if l.is_empty() {
                        break;
                    }
                }
                let answer = {
                    let ctl = lock(&inner.ctl);
                    format_get(&ctl.private_key, inner.shared.udp.port(), &ctl.states())
                };
                w.write_all(answer.as_bytes()).await?;
            }
            "set=1" => {
                let mut body = Vec::new();
                while let Some(l) = lines.next_line().await? {
                    if l.is_empty() {
                        break;
                    }
                    body.push(l);
                }
                let res = parse_set(body.iter().map(String::as_str)).and_then(|req| {
                    if req
                        .listen_port
                        .is_some_and(|p| p != inner.shared.udp.port())
                    {
                        tracing::warn!("uapi: changing listen_port at run time is not supported");
                    }
                    let mut ctl = lock(&inner.ctl);
                    ctl.apply(req)?;
                    ctl.publish(&inner.shared);
                    Ok(())
                });
                let errno = match res {
                    Ok(()) => 0,
                    Err(e) => {
                        tracing::warn!("uapi set rejected: {e}");
                        libc::EINVAL
                    }
                };
                w.write_all(format!("errno={errno}\n\n").as_bytes()).await?;
            }
            "" => continue,
            _ => {
                w.write_all(format!("errno={}\n\n", libc::EINVAL).as_bytes())
                    .await?;
                return Ok(());
            }
        }
    }
    Ok(())
}
