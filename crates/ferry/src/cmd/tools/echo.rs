//! `ferry tools http-echo` and `ferry tools tcp-echo`: tiny servers for
//! tests and demos. http-echo answers every request with the pod's name
//! (`$HOSTNAME`), the request path and the peer address.

use std::net::SocketAddr;

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
}

async fn listen(port: u16) -> anyhow::Result<TcpListener> {
    let addr = SocketAddr::from(([0, 0, 0, 0], port));
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}"))
}

/// Serves HTTP/1.1 on `port`, one response per connection.
pub fn http_echo(port: u16) -> anyhow::Result<()> {
    let name = std::env::var("HOSTNAME").unwrap_or_else(|_| "ferry-http-echo".into());
    runtime()?.block_on(async move {
        let listener = listen(port).await?;
        tracing::info!(port, "http-echo listening");
        loop {
            let (mut conn, peer) = listener.accept().await.context("accept")?;
            let name = name.clone();
            tokio::spawn(async move {
                let mut buf = Vec::with_capacity(1024);
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16384 {
                    match conn.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf);
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                let body = format!("{name} {path} from {peer}\n");
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(resp.as_bytes()).await;
                let _ = conn.shutdown().await;
            });
        }
    })
}

/// Echoes every TCP connection's bytes back on `port`.
pub fn tcp_echo(port: u16) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        let listener = listen(port).await?;
        tracing::info!(port, "tcp-echo listening");
        loop {
            let (mut conn, _) = listener.accept().await.context("accept")?;
            tokio::spawn(async move {
                let (mut r, mut w) = conn.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    })
}
