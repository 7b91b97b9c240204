//! The probe server (`ferry tools probe serve`): on one port, a UDP echo
//! (every datagram back as is) and a TCP service whose first byte picks
//! the mode — [`MODE_ECHO`] echoes the rest, [`MODE_SINK`] counts bytes
//! until the peer closes its side and answers with the count (8 bytes,
//! big-endian).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use super::{MODE_ECHO, MODE_SINK};

/// Serves on `port` (all addresses) until `max` passes, so a server
/// whose CLI died does not run forever. Fails only when it cannot listen.
pub async fn serve(port: u16, max: Duration) -> std::io::Result<()> {
    let (udp, tcp) = bind(port).await?;
    tracing::info!(port, "probe server listening (UDP echo, TCP echo/sink)");
    let udp_task = tokio::spawn(udp_echo(udp));
    let tcp_task = tokio::spawn(accept(tcp));
    tokio::time::sleep(max).await;
    udp_task.abort();
    tcp_task.abort();
    Ok(())
}

/// The UDP and TCP sockets of the server.
pub async fn bind(port: u16) -> std::io::Result<(UdpSocket, TcpListener)> {
    let any = SocketAddr::from(([0, 0, 0, 0], port));
    let udp = UdpSocket::bind(any).await?;
    let tcp = TcpListener::bind(any).await?;
    Ok((udp, tcp))
}

/// Echoes every datagram to its sender.
pub async fn udp_echo(sock: UdpSocket) {
    let mut buf = vec![0u8; 65536];
    loop {
        match sock.recv_from(&mut buf).await {
            Ok((n, from)) => {
                let _ = sock.send_to(&buf[..n], from).await;
            }
            Err(e) => {
                // ICMP errors of earlier replies land here: not fatal.
                tracing::trace!("udp echo: {e}");
            }
        }
    }
}

/// Serves every TCP connection.
pub async fn accept(listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((conn, _)) => {
                tokio::spawn(async move {
                    if let Err(e) = connection(conn).await {
                        tracing::debug!("probe connection: {e}");
                    }
                });
            }
            Err(e) => {
                tracing::warn!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn connection(mut conn: TcpStream) -> std::io::Result<()> {
    let _ = conn.set_nodelay(true);
    let mut mode = [0u8; 1];
    conn.read_exact(&mut mode).await?;
    match mode[0] {
        MODE_ECHO => {
            let (mut r, mut w) = conn.split();
            tokio::io::copy(&mut r, &mut w).await?;
            w.shutdown().await
        }
        MODE_SINK => {
            let mut buf = vec![0u8; 256 * 1024];
            let mut total = 0u64;
            loop {
                match conn.read(&mut buf).await? {
                    0 => break,
                    n => total += n as u64,
                }
            }
            conn.write_all(&total.to_be_bytes()).await?;
            conn.shutdown().await
        }
        _ => Ok(()),
    }
}
