//! `/metrics` for every daemon: one small HTTP server that renders a
//! daemon's `prometheus-client` registry as OpenMetrics text on each scrape.
//! The metrics themselves live in each daemon's own `metrics` module.

use std::net::SocketAddr;
use std::sync::Arc;

use prometheus_client::registry::Registry;

use crate::{Error, Result};

/// The content type of what [`serve`] answers.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Renders the exposition a scrape gets (called once per scrape).
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// `registry` as OpenMetrics text.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, registry);
    out
}

/// A [`Render`] of a registry shared with the daemon that updates it.
pub fn render_registry(registry: Arc<Registry>) -> Render {
    Arc::new(move || encode(&registry))
}

/// Serves `GET /metrics` on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, render: Render) -> Result<()> {
    use axum::routing::get;
    let addr = listener.local_addr().ok();
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let render = render.clone();
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)],
                    render(),
                )
            }
        }),
    );
    axum::serve(listener, app)
        .await
        .map_err(|source| Error::Metrics {
            addr: addr.map(|a| a.to_string()).unwrap_or_default(),
            source,
        })
}

/// Binds `addr` (`HOST:PORT`; empty: metrics off) and serves [`serve`] on
/// it in a task; returns the bound address, or `None` when off. A bind
/// failure is an error: a daemon asked for metrics must not run without.
pub async fn spawn(addr: &str, render: Render) -> Result<Option<SocketAddr>> {
    if addr.is_empty() {
        return Ok(None);
    }
    let io = |source| Error::Metrics {
        addr: addr.to_string(),
        source,
    };
    let parsed: SocketAddr = addr.parse().map_err(|e: std::net::AddrParseError| {
        io(std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
    })?;
    let listener = tokio::net::TcpListener::bind(parsed).await.map_err(io)?;
    let bound = listener.local_addr().map_err(io)?;
    tracing::info!(addr = %bound, "metrics on /metrics");
    tokio::spawn(async move {
        if let Err(error) = serve(listener, render).await {
            tracing::error!(%error, "metrics server");
        }
    });
    Ok(Some(bound))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use prometheus_client::metrics::counter::Counter;

    #[tokio::test]
    async fn serves_the_registry_as_openmetrics() {
        let mut registry = Registry::with_prefix("ferry_test");
        let c: Counter = Counter::default();
        registry.register("things", "Things seen", c.clone());
        c.inc();
        let addr = spawn("127.0.0.1:0", render_registry(Arc::new(registry)))
            .await
            .unwrap()
            .unwrap();
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).await.unwrap();
        assert!(text.contains(OPENMETRICS_CONTENT_TYPE), "{text}");
        assert!(text.contains("ferry_test_things_total 1"), "{text}");
        assert!(text.trim_end().ends_with("# EOF"), "{text}");
    }

    #[tokio::test]
    async fn an_empty_address_turns_metrics_off_and_a_bad_one_is_refused() {
        let render: Render = Arc::new(String::new);
        assert!(spawn("", render.clone()).await.unwrap().is_none());
        assert!(matches!(
            spawn("not-an-address", render).await,
            Err(Error::Metrics { .. })
        ));
    }
}
