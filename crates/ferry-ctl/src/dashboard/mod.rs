//! `ferry dashboard`: the topology picture of `ferry show topology -o svg`
//! served live on a small web page, with the `show` tables (connections,
//! endpoints, gateways, services) beside it. One background task re-reads
//! the clusters every refresh interval (keeping its clients) into a
//! [`page::Frame`]; the page polls `/frame` at the same interval and swaps
//! the picture and tables in. Everything is inline (HTML, CSS, JS): no
//! build step, no external asset. [`page`] is pure; this module does the
//! I/O.

pub mod page;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::show::{self, ClusterReport, Report};
use crate::target::{Target, TargetSpec};
use crate::{Error, Result};
use page::Frame;

/// Refuses an address other hosts could reach, unless `allow_remote`: the
/// page shows the clusterset's layout and addresses without any login.
pub fn check_listen(addr: SocketAddr, allow_remote: bool) -> Result<()> {
    if addr.ip().is_loopback() || allow_remote {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "--listen {addr} is not a loopback address: the dashboard has no login and shows the clusterset's addresses; pass --allow-remote to serve it there anyway"
        )))
    }
}

/// Binds `addr`.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Dashboard {
            addr: addr.to_string(),
            source,
        })
}

/// Reads every cluster of `specs`, reusing the clients that were built
/// (a cluster that failed to connect is tried again next time).
async fn read(specs: &[TargetSpec], clients: &mut [Option<Target>]) -> Report {
    let reads = specs
        .iter()
        .zip(clients.iter_mut())
        .map(|(spec, client)| async move {
            if client.is_none() {
                match Target::connect(spec).await {
                    Ok(t) => *client = Some(t),
                    Err(e) => return show::failed(spec, &e),
                }
            }
            match client {
                Some(t) => show::show_target(spec, t, &page::SECTIONS).await,
                None => ClusterReport::default(),
            }
        });
    Report {
        clusters: futures::future::join_all(reads).await,
    }
}

/// Re-reads the clusters every `refresh` and publishes a new frame when
/// anything changed; returns when nobody can watch any more.
async fn refresh_loop(
    specs: Vec<TargetSpec>,
    refresh: Duration,
    frames: watch::Sender<Arc<Frame>>,
) {
    let mut clients: Vec<Option<Target>> = vec![None; specs.len()];
    let mut ticker = tokio::time::interval(refresh);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        // A cluster that does not answer must not freeze the page: the
        // other clusters are shown and the slow one says so.
        let report = match tokio::time::timeout(
            refresh.max(Duration::from_secs(5)),
            read(&specs, &mut clients),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => Report {
                clusters: specs
                    .iter()
                    .map(|s| ClusterReport {
                        source: s.describe(),
                        error: Some("no answer within 5s".into()),
                        ..Default::default()
                    })
                    .collect(),
            },
        };
        let previous = frames.borrow().clone();
        let mut frame = Frame::new(
            &report,
            previous.version,
            &page::clock(std::time::SystemTime::now()),
        );
        if frame.same_content(&previous) {
            frame.version = previous.version;
        }
        if frames.send(Arc::new(frame)).is_err() {
            return;
        }
    }
}

/// Serves the dashboard of `specs` on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, specs: Vec<TargetSpec>, refresh: Duration) -> Result<()> {
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let first = Frame::new(&Report::default(), 0, "starting");
    let (tx, rx) = watch::channel(Arc::new(first));
    tokio::spawn(refresh_loop(specs, refresh, tx));
    let refresh_ms = refresh.as_millis() as u64;
    let index_rx = rx.clone();
    let app = axum::Router::new()
        .route(
            "/",
            get(move || {
                let frame = index_rx.borrow().clone();
                async move { Html(page::page(&frame, refresh_ms)) }
            }),
        )
        .route(
            "/frame",
            get(move || {
                let frame = rx.borrow().clone();
                async move {
                    (
                        [
                            (header::CONTENT_TYPE, "application/json"),
                            (header::CACHE_CONTROL, "no-store"),
                        ],
                        page::frame_json(&frame),
                    )
                        .into_response()
                }
            }),
        );
    axum::serve(listener, app)
        .await
        .map_err(|source| Error::Dashboard { addr, source })
}

#[cfg(test)]
mod tests;
