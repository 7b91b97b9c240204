//! Kubernetes clients: from a kubeconfig or the in-cluster configuration,
//! and for the broker described by `broker-info.ferry`.
//!
//! Two kinds. kube-rs's default client negotiates HTTP/1.1 only, so every
//! request in flight holds a TCP (and TLS) connection of its own: an agent
//! with 64 writes in flight keeps 64 connections busy and pays a system
//! call, a TLS record and a wake-up per request on each side. client-go —
//! and so every controller written against Kubernetes — multiplexes all its
//! requests and watches over one HTTP/2 connection per API server; the
//! multiplexed clients here do the same (ALPN `h2`, falling back to HTTP/1.1
//! for servers that do not offer it). The tower stack around the connection
//! is kube-rs's own: base URI, authentication (token files re-read as
//! kube-rs does), extra headers.
//!
//! Who uses which: `ferry agent` (both APIs) and every broker client are
//! multiplexed. The gateway, route agent, DNS server and CLI keep kube-rs's
//! HTTP/1.1 client: they send a few requests at a time, and the gateway's
//! 100 ms lease renewals keep a connection of their own.

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ferry_api::BrokerInfo;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use kube::client::ConfigExt;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::{Value, json};

use crate::kubeconfig::read_kubeconfig;
use crate::{ClientFor, Error, Result};

mod managed_fields;

/// Whether a client's callers read `metadata.managedFields` of the objects
/// it returns. The agent does not, and skips them (module `managed_fields`);
/// anything that shows or copies whole objects (the CLI, `ferry gather`)
/// reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManagedFields {
    Read,
    Skip,
}

/// How often an idle HTTP/2 connection is pinged, and how long an answer
/// may take before the connection counts as dead (all its watches then
/// reconnect): a broker that vanished without a FIN is noticed within
/// ~40 s, as with client-go's default health check.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// The configuration from a kubeconfig file (see [`read_kubeconfig`]); with
/// no path, kube-rs's inference: `$KUBECONFIG`, `~/.kube/config`, then the
/// in-cluster configuration.
pub async fn config_from_kubeconfig(path: Option<&Path>) -> Result<Config> {
    match path {
        Some(_) => {
            let kc = read_kubeconfig(path)?;
            Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .map_err(|e| Error::client(ClientFor::Kubeconfig, e))
        }
        None => Config::infer()
            .await
            .map_err(|e| Error::client(ClientFor::InCluster, e)),
    }
}

/// A client from a kubeconfig (see [`config_from_kubeconfig`]). kube-rs's
/// own HTTP/1.1 client: each request in flight has a connection of its own,
/// which suits the gateway's 100 ms lease renewals and the other light users.
pub async fn client_from_kubeconfig(path: Option<&Path>) -> Result<Client> {
    let config = config_from_kubeconfig(path).await?;
    Client::try_from(config).map_err(|e| Error::client(ClientFor::Cluster, e))
}

/// Like [`client_from_kubeconfig`], but all requests share one HTTP/2
/// connection: for `ferry agent`, which keeps hundreds of writes in flight.
pub async fn multiplexed_client_from_kubeconfig(
    path: Option<&Path>,
    fields: ManagedFields,
) -> Result<Client> {
    let config = config_from_kubeconfig(path).await?;
    multiplexed_client(config, ClientFor::Cluster, fields)
}

/// A client for the broker described by `info`, authenticating with `token`.
pub async fn broker_client(info: &BrokerInfo, token: &str) -> Result<Client> {
    broker_client_reading(info, token, ManagedFields::Read).await
}

/// [`broker_client`], for callers that read `managedFields` or not.
pub async fn broker_client_reading(
    info: &BrokerInfo,
    token: &str,
    fields: ManagedFields,
) -> Result<Client> {
    broker_client_as(info, json!({"token": token}), fields).await
}

/// A client for the broker described by `info` whose token is (re-)read from
/// `path` (kube-rs re-reads it at least once a minute).
pub async fn broker_client_with_token_file(
    info: &BrokerInfo,
    path: &Path,
    fields: ManagedFields,
) -> Result<Client> {
    broker_client_as(info, json!({"tokenFile": path}), fields).await
}

async fn broker_client_as(info: &BrokerInfo, user: Value, fields: ManagedFields) -> Result<Client> {
    let kc: Kubeconfig = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "broker", "cluster": {
            "server": info.api_server_url,
            "certificate-authority-data": STANDARD.encode(info.ca_bundle.as_bytes()),
        }}],
        "users": [{"name": "broker", "user": user}],
        "contexts": [{"name": "broker", "context": {"cluster": "broker", "user": "broker"}}],
        "current-context": "broker",
    }))
    .map_err(|e| Error::client(ClientFor::Broker { url: None }, e))?;
    let broker = || ClientFor::Broker {
        url: Some(info.api_server_url.clone()),
    };
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(|e| Error::client(broker(), e))?;
    multiplexed_client(config, broker(), fields)
}

/// A [`Client`] for `config` whose connections use HTTP/2 when the server
/// agrees to it in the TLS handshake (plain `http://` URLs stay HTTP/1.1).
/// Proxy settings in the kubeconfig are not supported here: such configs get
/// kube-rs's own HTTP/1.1 client. `api` names the API in errors.
pub fn multiplexed_client(config: Config, api: ClientFor, fields: ManagedFields) -> Result<Client> {
    http2_client(config, fields).map_err(|e| Error::client(api, e))
}

type BuildError = Box<dyn std::error::Error + Send + Sync>;

fn http2_client(config: Config, fields: ManagedFields) -> Result<Client, BuildError> {
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
    let stack = tower::ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .map_err(BuildError::from);
    Ok(match fields {
        ManagedFields::Read => Client::new(stack.service(connections), config.default_namespace),
        ManagedFields::Skip => Client::new(
            stack
                .layer(managed_fields::WithoutManagedFieldsLayer)
                .service(connections),
            config.default_namespace,
        ),
    })
}

#[cfg(test)]
mod tests;
