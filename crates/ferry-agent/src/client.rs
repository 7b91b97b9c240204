//! Kubernetes clients that speak HTTP/2 when the server offers it.
//!
//! kube-rs's default client negotiates HTTP/1.1 only, so every request in
//! flight holds a TCP (and TLS) connection of its own: an agent with 64
//! writes in flight keeps 64 connections busy and pays a system call, a TLS
//! record and a wake-up per request on each side. client-go — and so every
//! controller written against Kubernetes — multiplexes all its requests and
//! watches over one HTTP/2 connection per API server; these clients do the
//! same (ALPN `h2`, falling back to HTTP/1.1 for servers that do not offer
//! it). The tower stack around the connection is kube-rs's own: base URI,
//! authentication (token files re-read as kube-rs does), extra headers.
//!
//! Used by `ferry agent` (both APIs) and for broker clients. The gateway,
//! route agent and CLI keep kube-rs's HTTP/1.1 client: they send a few
//! requests at a time, and the gateway's 100 ms lease renewals keep a
//! connection of their own.

use std::time::Duration;

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use kube::client::ConfigExt;
use kube::{Client, Config};

/// How often an idle HTTP/2 connection is pinged, and how long an answer
/// may take before the connection counts as dead (all its watches then
/// reconnect): a broker that vanished without a FIN is noticed within
/// ~40 s, as with client-go's default health check.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a client could not be built (the caller names the API it was for).
pub type BuildError = Box<dyn std::error::Error + Send + Sync>;

/// A [`Client`] for `config` whose connections use HTTP/2 when the server
/// agrees to it in the TLS handshake (plain `http://` URLs stay HTTP/1.1).
/// Proxy settings in the kubeconfig are not supported here: such configs get
/// kube-rs's own HTTP/1.1 client.
pub fn http2_client(config: Config) -> Result<Client, BuildError> {
    if config.proxy_url.is_some() {
        return Ok(Client::try_from(config)?);
    }
    // ALPN (`h2`, `http/1.1`) is set by the connector builder below.
    let tls = config.rustls_client_config()?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(config.connect_timeout);
    http.set_nodelay(true);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_all_versions()
        .wrap_connector(http);
    let connections = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .timer(TokioTimer::new())
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .http2_keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .http2_keep_alive_while_idle(true)
        .http2_adaptive_window(true)
        .build(https);
    let service = tower::ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .map_err(BuildError::from)
        .service(connections);
    Ok(Client::new(service, config.default_namespace))
}
