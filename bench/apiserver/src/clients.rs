//! Minimal HTTP clients for the two servers: ferry's Kubernetes API over
//! HTTPS (HTTP/2 by ALPN) and etcd's v3 JSON gRPC-gateway over plain HTTP/1.1.
//!
//! Each `Ferry` or `Etcd` value owns its own connection pool, so a benchmark
//! client that builds its own value gets its own connection.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use reqwest::{Response, StatusCode, header};
use serde::Deserialize;

use crate::access::FerryAccess;

/// Longest any single non-watch request may take before the run fails.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A ConfigMap whose `data.value` is `value`, as ferry receives it and as
/// etcd stores it (the same bytes go to both servers).
pub fn configmap(name: &str, value: &str) -> Vec<u8> {
    format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}"}},"data":{{"value":"{value}"}}}}"#
    )
    .into_bytes()
}

/// A printable value of exactly `len` bytes.
pub fn value_of_len(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|i| char::from(ALPHABET[(i * 7 + i / 36) % ALPHABET.len()]))
        .collect()
}

/// A client of `ferry apiserver` with its own connection.
#[derive(Debug, Clone)]
pub struct Ferry {
    http: reqwest::Client,
    url: String,
}

impl Ferry {
    pub fn new(access: &FerryAccess) -> Result<Self> {
        let ca = reqwest::Certificate::from_pem(&access.ca_pem).context("parsing ferry's CA")?;
        let mut headers = header::HeaderMap::new();
        let auth = header::HeaderValue::from_str(&format!("Bearer {}", access.token))
            .context("the admin token is not a valid header value")?;
        headers.insert(header::AUTHORIZATION, auth);
        let http = reqwest::Client::builder()
            .add_root_certificate(ca)
            .tls_built_in_root_certs(false)
            .default_headers(headers)
            .tcp_nodelay(true)
            .no_proxy()
            .build()
            .context("building the ferry HTTP client")?;
        Ok(Ferry {
            http,
            url: access.url.clone(),
        })
    }

    pub async fn healthy(&self) -> bool {
        match self
            .http
            .get(format!("{}/healthz", self.url))
            .timeout(Duration::from_secs(2))
            .send()
            .await
        {
            Ok(r) => r.status().is_success(),
            Err(_) => false,
        }
    }

    pub async fn create_namespace(&self, name: &str) -> Result<()> {
        let body =
            format!(r#"{{"apiVersion":"v1","kind":"Namespace","metadata":{{"name":"{name}"}}}}"#);
        let resp = self
            .http
            .post(format!("{}/api/v1/namespaces", self.url))
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .with_context(|| format!("creating namespace {name}"))?;
        expect_status(resp, StatusCode::CREATED, "creating a namespace").await
    }

    /// Creates a ConfigMap from its JSON; succeeds only on 201 Created.
    pub async fn create_configmap(&self, namespace: &str, body: Vec<u8>) -> Result<()> {
        let resp = self
            .http
            .post(format!(
                "{}/api/v1/namespaces/{namespace}/configmaps",
                self.url
            ))
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .context("POSTing a ConfigMap to ferry")?;
        expect_status(resp, StatusCode::CREATED, "creating a ConfigMap").await
    }

    /// The full JSON list of the ConfigMaps in `namespace`, as received.
    pub async fn list_configmaps(&self, namespace: &str) -> Result<Bytes> {
        let resp = self
            .http
            .get(format!(
                "{}/api/v1/namespaces/{namespace}/configmaps",
                self.url
            ))
            .header(header::ACCEPT, "application/json")
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .context("listing ConfigMaps")?;
        ensure_ok(&resp, "listing ConfigMaps")?;
        resp.bytes().await.context("reading a ConfigMap list")
    }

    /// Opens a watch on the ConfigMaps of `namespace` after revision `rv`.
    pub async fn watch_configmaps(&self, namespace: &str, rv: u64, secs: u64) -> Result<Response> {
        let resp = self
            .http
            .get(format!(
                "{}/api/v1/namespaces/{namespace}/configmaps?watch=true&resourceVersion={rv}&timeoutSeconds={secs}",
                self.url
            ))
            .send()
            .await
            .context("opening a watch")?;
        ensure_ok(&resp, "opening a watch")?;
        Ok(resp)
    }
}

/// Reads `items` and `metadata.resourceVersion` of a list.
pub fn parse_list(body: &[u8]) -> Result<(usize, u64)> {
    #[derive(Deserialize)]
    struct List {
        metadata: ListMeta,
        items: Vec<serde::de::IgnoredAny>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct ListMeta {
        resource_version: String,
    }
    let list: List = serde_json::from_slice(body).context("parsing a list")?;
    let rv = list
        .metadata
        .resource_version
        .parse()
        .context("parsing the list's resourceVersion")?;
    Ok((list.items.len(), rv))
}

/// A client of etcd's JSON gateway with its own connection.
#[derive(Debug, Clone)]
pub struct Etcd {
    http: reqwest::Client,
    url: String,
}

impl Etcd {
    pub fn new(url: &str) -> Result<Self> {
        let http = reqwest::Client::builder()
            .http1_only()
            .tcp_nodelay(true)
            .no_proxy()
            .build()
            .context("building the etcd HTTP client")?;
        Ok(Etcd {
            http,
            url: url.to_string(),
        })
    }

    pub async fn healthy(&self) -> bool {
        match self
            .http
            .get(format!("{}/health", self.url))
            .timeout(Duration::from_secs(2))
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => r
                .text()
                .await
                .is_ok_and(|t| t.contains("\"health\":\"true\"")),
            _ => false,
        }
    }

    /// Puts `value` at `key` (durable: etcd fsyncs its WAL before replying).
    pub async fn put(&self, key: &str, value: &[u8]) -> Result<()> {
        let body = format!(
            r#"{{"key":"{}","value":"{}"}}"#,
            B64.encode(key),
            B64.encode(value)
        );
        let resp = self
            .http
            .post(format!("{}/v3/kv/put", self.url))
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .context("putting a key into etcd")?;
        expect_status(resp, StatusCode::OK, "etcd put").await
    }

    /// Every key under `prefix` with its value, as received.
    pub async fn range_prefix(&self, prefix: &str) -> Result<Bytes> {
        let mut end = prefix.as_bytes().to_vec();
        // The range end of a prefix: its last byte plus one ('/' + 1 = '0').
        let last = end.last_mut().context("empty prefix")?;
        *last += 1;
        let body = format!(
            r#"{{"key":"{}","range_end":"{}"}}"#,
            B64.encode(prefix),
            B64.encode(&end)
        );
        let resp = self
            .http
            .post(format!("{}/v3/kv/range", self.url))
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .context("range get from etcd")?;
        ensure_ok(&resp, "etcd range")?;
        resp.bytes().await.context("reading an etcd range")
    }
}

/// Number of key-values in an etcd range response.
pub fn parse_range_count(body: &[u8]) -> Result<usize> {
    #[derive(Deserialize)]
    struct Range {
        #[serde(default)]
        kvs: Vec<serde::de::IgnoredAny>,
    }
    let r: Range = serde_json::from_slice(body).context("parsing an etcd range response")?;
    Ok(r.kvs.len())
}

fn ensure_ok(resp: &Response, what: &str) -> Result<()> {
    ensure!(resp.status().is_success(), "{what}: HTTP {}", resp.status());
    Ok(())
}

async fn expect_status(resp: Response, want: StatusCode, what: &str) -> Result<()> {
    let status = resp.status();
    // Read the body either way so the connection can be reused.
    let body = resp
        .bytes()
        .await
        .with_context(|| format!("{what}: reading the response"))?;
    if status != want {
        bail!(
            "{what}: HTTP {status}, wanted {want}: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        );
    }
    Ok(())
}
