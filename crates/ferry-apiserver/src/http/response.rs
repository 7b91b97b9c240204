//! Building responses: JSON bodies and Kubernetes `Status` errors.

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

use crate::error::Error;

/// A JSON response.
pub(super) fn json_bytes(code: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut resp = Response::new(Body::from(body.into()));
    *resp.status_mut() = code;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// A JSON response from a value.
pub(super) fn json_value(code: StatusCode, value: &serde_json::Value) -> Response<Body> {
    json_bytes(code, serde_json::to_vec(value).unwrap_or_default())
}

/// A Kubernetes `Status` for an error.
pub(super) fn error_response(e: &Error) -> Response<Body> {
    let code = StatusCode::from_u16(e.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if code.is_server_error() {
        tracing::error!(error = %e, "request failed");
    }
    json_value(code, &e.to_status())
}
