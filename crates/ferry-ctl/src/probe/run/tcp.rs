//! The TCP probes: an echo of N bytes, and a throughput run into the
//! server's byte sink.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::sockets::*;
use crate::probe::spec::*;
use crate::probe::{MODE_ECHO, MODE_SINK};

pub(super) async fn tcp(target: &str, bytes: usize, timeout_ms: u64) -> Result<TcpOutcome, String> {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(timeout_ms);
    let a = tokio::time::timeout_at(deadline, resolve(target))
        .await
        .map_err(|_| format!("{target} did not resolve within {timeout_ms}ms"))??;
    let t = Instant::now();
    let mut s = tokio::time::timeout_at(deadline, TcpStream::connect(a))
        .await
        .map_err(|_| format!("connecting to {a}: no answer within {timeout_ms}ms"))?
        .map_err(|e| format!("connecting to {a}: {e}"))?;
    let connect_us = micros(t.elapsed());
    let mss = socket2::SockRef::from(&s).tcp_mss().ok();
    let _ = s.set_nodelay(true);
    let (mut r, mut w) = s.split();
    let payload: Vec<u8> = (0..bytes).map(|i| (i % 251) as u8).collect();
    let mut got = vec![0u8; bytes];
    let mut n = 0;
    let transfer = async {
        let writer = async {
            w.write_all(&[MODE_ECHO]).await?;
            w.write_all(&payload).await?;
            w.flush().await
        };
        let reader = async {
            while n < bytes {
                match r.read(&mut got[n..]).await? {
                    0 => break,
                    k => n += k,
                }
            }
            Ok::<_, std::io::Error>(())
        };
        let (wr, rd) = tokio::join!(writer, reader);
        wr.map_err(|e| format!("sending to {a}: {e}"))?;
        rd.map_err(|e| format!("reading the echo from {a}: {e}"))
    };
    let done = tokio::time::timeout_at(deadline, transfer).await;
    match done {
        Err(_) => {
            return Err(format!(
                "connected to {a}, but only {n} of {bytes} bytes came back within {timeout_ms}ms"
            ));
        }
        Ok(r) => r?,
    }
    if got[..n] != payload[..n] {
        return Err(format!("{a} echoed different bytes"));
    }
    Ok(TcpOutcome {
        address: a.to_string(),
        connect_us,
        echoed: n,
        mss,
    })
}

pub(super) async fn throughput(
    target: &str,
    streams: u32,
    duration_ms: u64,
) -> Result<ThroughputOutcome, String> {
    let a = addr(target)?;
    let duration = Duration::from_millis(duration_ms);
    let started = Instant::now();
    let one = |_| async move {
        let mut s = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(a))
            .await
            .map_err(|_| format!("connecting to {a}: timed out"))?
            .map_err(|e| format!("connecting to {a}: {e}"))?;
        let chunk = vec![0xa5u8; 128 * 1024];
        s.write_all(&[MODE_SINK])
            .await
            .map_err(|e| format!("sending to {a}: {e}"))?;
        let end = Instant::now() + duration;
        while Instant::now() < end {
            s.write_all(&chunk)
                .await
                .map_err(|e| format!("sending to {a}: {e}"))?;
        }
        s.shutdown()
            .await
            .map_err(|e| format!("closing the stream to {a}: {e}"))?;
        let mut count = [0u8; 8];
        tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut count))
            .await
            .map_err(|_| format!("{a} did not report its byte count"))?
            .map_err(|e| format!("reading the byte count from {a}: {e}"))?;
        Ok::<_, String>((u64::from_be_bytes(count), started.elapsed()))
    };
    let results = futures::future::join_all((0..streams.max(1)).map(one)).await;
    let mut out = ThroughputOutcome::default();
    let mut elapsed = Duration::ZERO;
    let mut first_err = None;
    for r in results {
        match r {
            Ok((bytes, e)) => {
                out.streams += 1;
                out.bytes += bytes;
                elapsed = elapsed.max(e);
            }
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    if out.streams == 0 {
        return Err(first_err.unwrap_or_else(|| "no stream ran".into()));
    }
    out.elapsed_us = micros(elapsed);
    Ok(out)
}
