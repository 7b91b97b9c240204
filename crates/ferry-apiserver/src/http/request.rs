//! What every verb reads from a request: the context ([`Ctx`]), the body
//! (size-limited) and its decoding by Content-Type (JSON, YAML, the protobuf
//! kubectl's create generators send).

use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;
use http::header;
use http_body_util::BodyExt;
use serde_json::Value;

use super::path::{Query, ResourcePath};
use crate::auth::Identity;
use crate::error::{Error, Result};
use crate::registry::ResourceDef;
use crate::state::App;

/// Everything a verb needs about its request.
pub(super) struct Ctx {
    pub app: Arc<App>,
    pub identity: Arc<Identity>,
    pub def: Arc<ResourceDef>,
    pub path: ResourcePath,
    pub query: Query,
    pub headers: http::HeaderMap,
}

/// Reads a request body, refusing (413) one larger than the configured limit.
pub(super) async fn read_body(
    app: &App,
    mut body: Body,
    headers: &http::HeaderMap,
) -> Result<Bytes> {
    let limit = app.body_limit;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    // Past the limit we still drain (up to a cap) instead of hanging up, so
    // that HTTP/2 clients read our 413 rather than a reset stream.
    let drain_cap = limit.saturating_mul(4).max(16 * 1024 * 1024);
    if declared.is_some_and(|n| n > drain_cap) {
        return Err(Error::TooLarge { limit });
    }
    let mut out = Vec::with_capacity(declared.unwrap_or(0).min(limit));
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| Error::BadRequest(format!("reading the request body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            seen += data.len();
            if seen <= limit {
                out.extend_from_slice(&data);
            } else if seen > drain_cap {
                break;
            }
        }
    }
    if seen > limit {
        return Err(Error::TooLarge { limit });
    }
    Ok(Bytes::from(out))
}

/// Parses a JSON (or YAML, or protobuf) body.
pub(super) fn parse_body(headers: &http::HeaderMap, body: &[u8]) -> Result<Value> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::BadRequest("the request body is empty".into()));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.contains("protobuf") {
        return crate::protobuf::decode(body).map_err(|e| {
            Error::UnsupportedMediaType(format!(
                "{e}; send JSON or YAML instead (e.g. `kubectl apply -f`)"
            ))
        });
    }
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    // No Content-Type reads as JSON, kube-apiserver's first media type.
    if !matches!(
        media.as_str(),
        "" | "application/json" | "application/yaml" | "application/x-yaml" | "text/yaml"
    ) {
        return Err(Error::UnsupportedMediaType(format!(
            "the body of the request was in an unknown format ({media}) - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf"
        )));
    }
    let parsed = if content_type.contains("yaml") {
        yaml_or_json(body)
    } else {
        serde_json::from_slice::<Value>(body).map_err(|e| e.to_string())
    };
    parsed.map_err(|e| Error::BadRequest(format!("the request body could not be decoded: {e}")))
}

/// Decodes a YAML body. Clients (kube-rs, client-go) send server-side apply
/// as `application/apply-patch+yaml` with a JSON document: parsed as JSON
/// first, which is many times cheaper than the YAML parser and gives the same
/// value for any JSON document.
pub(super) fn yaml_or_json(body: &[u8]) -> std::result::Result<Value, String> {
    let looks_json = body
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{');
    if looks_json && let Ok(v) = serde_json::from_slice::<Value>(body) {
        return Ok(v);
    }
    serde_yaml_ng::from_slice::<Value>(body).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::yaml_or_json;

    #[test]
    fn apply_bodies_in_json_and_yaml_decode_alike() {
        let want = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "labels": {"x": "1"}}, "data": {"k": "v: w"}});
        let as_json = serde_json::to_vec(&want).unwrap();
        let as_yaml = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels:\n    x: \"1\"\ndata:\n  k: \"v: w\"\n";
        assert_eq!(yaml_or_json(&as_json).unwrap(), want);
        assert_eq!(yaml_or_json(as_yaml).unwrap(), want);
        // A flow mapping that is YAML but not JSON still decodes.
        assert_eq!(yaml_or_json(b"{a: 1}").unwrap(), json!({"a": 1}));
        assert!(yaml_or_json(b"a: [").is_err());
    }
}
