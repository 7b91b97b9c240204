//! HTTP: TLS (HTTP/1.1 and HTTP/2), authentication, routing, metrics.

mod discovery;
mod filter;
mod list;
mod manager;
mod openapi;
mod path;
mod request;
mod resource;
mod response;
mod review;
mod scale;
mod table;
mod token;
mod watch;

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use http::{HeaderValue, Request, Response, header};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch as watch_channel;
use tokio_rustls::TlsAcceptor;

use response::error_response;

use crate::auth::Identity;
use crate::error::Error;
use crate::metrics::{RequestLabels, VerbLabels};
use crate::state::App;

/// HTTP/2 streams one connection may have open at once.
const MAX_STREAMS_PER_CONNECTION: u32 = 1000;

/// Accepts TLS connections until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Arc<App>,
    mut shutdown: watch_channel::Receiver<bool>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let router = axum::Router::new()
        .fallback(dispatch)
        .with_state(app.clone());
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(router.clone());
        // Shutting down also ends open connections (watches included), so a
        // stopped server leaves no clients attached to it.
        let mut conn_shutdown = shutdown.clone();
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
            };
            let mut builder = auto::Builder::new(TokioExecutor::new());
            // Clients that multiplex everything over one connection (client-go,
            // ferry's agent with hundreds of writes in flight) must not queue
            // behind hyper's default of 200 streams.
            builder
                .http2()
                .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION);
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
            tokio::select! {
                result = conn => {
                    if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                }
                _ = conn_shutdown.changed() => {}
            }
        });
    }
}

fn is_mutating(method: &http::Method) -> bool {
    !matches!(
        *method,
        http::Method::GET | http::Method::HEAD | http::Method::OPTIONS
    )
}

/// 429 with `Retry-After`, as kube-apiserver answers past its in-flight limit.
fn too_many_requests() -> Response<Body> {
    let mut resp = error_response(&Error::TooManyRequests);
    resp.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(crate::error::RETRY_AFTER_SECONDS),
    );
    resp
}

/// `/metrics`: OpenMetrics to a scraper that asks for it, the Prometheus
/// text format to everyone else (both parse as what they claim to be).
fn metrics(app: &App, headers: &http::HeaderMap) -> Response<Body> {
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("application/openmetrics-text"));
    let (body, content_type) = if openmetrics {
        (
            app.metrics.render_openmetrics(),
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )
    } else {
        (
            app.metrics.render_prometheus(),
            "text/plain; version=0.0.4; charset=utf-8",
        )
    };
    let mut resp = Response::new(Body::from(body));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

fn bearer(req: &Request<Body>) -> Option<&str> {
    req.headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

async fn dispatch(
    axum::extract::State(app): axum::extract::State<Arc<App>>,
    req: Request<Body>,
) -> Response<Body> {
    let started = Instant::now();
    let path = req.uri().path().to_string();
    let (verb, resource, resp) = route(&app, req).await;
    let code = resp.status().as_u16();
    app.metrics
        .requests
        .get_or_create(&RequestLabels {
            verb: verb.to_string(),
            resource,
            code,
        })
        .inc();
    let elapsed = started.elapsed();
    app.metrics
        .latency
        .get_or_create(&VerbLabels {
            verb: verb.to_string(),
        })
        .observe(elapsed.as_secs_f64());
    tracing::debug!(verb, %path, code, micros = elapsed.as_micros() as u64, "request");
    resp
}

/// Handles one request; returns (verb, resource) for metrics with the response.
pub(crate) async fn route(
    app: &Arc<App>,
    req: Request<Body>,
) -> (&'static str, String, Response<Body>) {
    let path = req.uri().path().trim_end_matches('/').to_string();
    match path.as_str() {
        "/healthz" | "/livez" | "/readyz" => {
            let mut resp = Response::new(Body::from("ok"));
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            return ("health", String::new(), resp);
        }
        "/version" => return ("get", String::new(), discovery::version()),
        _ => {}
    }
    let identity = match bearer(&req).map(|t| app.tokens.authenticate(t)) {
        Some(Ok(Some(identity))) => identity,
        Some(Err(e)) => return ("auth", String::new(), error_response(&e)),
        _ => return ("auth", String::new(), error_response(&Error::Unauthorized)),
    };
    if path == "/metrics" {
        return ("get", String::new(), metrics(app, req.headers()));
    }
    if let Some(resp) = discovery::handle(app, &path, req.uri().query()) {
        return ("get", String::new(), resp);
    }
    if review::is_review(&path) {
        let (parts, body) = req.into_parts();
        let resp = match request::read_body(app, body, &parts.headers).await {
            Ok(body) => review::handle(&identity, &parts.method, &path, &parts.headers, &body),
            Err(e) => Err(e),
        };
        return (
            "create",
            String::new(),
            resp.unwrap_or_else(|e| error_response(&e)),
        );
    }
    // Held until the write is answered.
    let _permit = match (&app.mutating, is_mutating(req.method())) {
        (Some(permits), true) => match permits.clone().try_acquire_owned() {
            Ok(p) => Some(p),
            Err(_) => return ("write", String::new(), too_many_requests()),
        },
        _ => None,
    };
    resource::handle(app.clone(), identity_arc(identity), req).await
}

fn identity_arc(identity: Identity) -> Arc<Identity> {
    Arc::new(identity)
}
