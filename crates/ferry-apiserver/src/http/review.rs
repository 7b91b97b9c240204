//! `SelfSubjectReview` and `SelfSubjectAccessReview`, what `kubectl auth
//! whoami` and `kubectl auth can-i` ask: answered from ferry's identities
//! and their scoping (see [`auth`](crate::auth)). Nothing is stored.

use axum::body::Body;
use http::{Method, Response, StatusCode};
use serde_json::{Value, json};

use super::request::parse_body;
use super::response::json_value;
use crate::auth::{CLUSTER_LABEL, Identity};
use crate::error::{Error, Result};
use crate::objects::now_rfc3339;

const WHO_AM_I: &str = "/apis/authentication.k8s.io/v1/selfsubjectreviews";
const CAN_I: &str = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";

/// True for the two review paths.
pub(super) fn is_review(path: &str) -> bool {
    path == WHO_AM_I || path == CAN_I
}

/// Answers a review (a POST to one of the two paths).
pub(super) fn handle(
    identity: &Identity,
    method: &Method,
    path: &str,
    headers: &http::HeaderMap,
    body: &[u8],
) -> Result<Response<Body>> {
    if *method != Method::POST {
        return Err(Error::MethodNotAllowed);
    }
    let request = parse_body(headers, body)?;
    let answer = if path == WHO_AM_I {
        who_am_i(identity)
    } else {
        can_i(identity, &request)
    };
    Ok(json_value(StatusCode::CREATED, &answer))
}

fn groups(identity: &Identity) -> Vec<&'static str> {
    match identity {
        Identity::Admin => vec!["system:masters", "system:authenticated"],
        Identity::Cluster(_) | Identity::Joiner => vec!["system:authenticated"],
    }
}

fn who_am_i(identity: &Identity) -> Value {
    json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "SelfSubjectReview",
        "metadata": {"creationTimestamp": now_rfc3339()},
        "status": {"userInfo": {"username": identity.to_string(), "groups": groups(identity)}},
    })
}

/// Reads are open to every identity; writes as `auth::check_write` allows
/// them (a cluster's only to objects carrying its label, which the answer's
/// reason says).
fn can_i(identity: &Identity, request: &Value) -> Value {
    let spec = request.get("spec").cloned().unwrap_or_else(|| json!({}));
    let attrs = spec
        .get("resourceAttributes")
        .or_else(|| spec.get("nonResourceAttributes"));
    let field = |name: &str| {
        attrs
            .and_then(|a| a.get(name))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    let verb = field("verb");
    let resource = field("resource");
    let subresource = field("subresource");
    let read = matches!(verb, "get" | "list" | "watch");
    let (allowed, reason) = match identity {
        Identity::Admin => (true, "admin may do everything".to_string()),
        _ if read && field("group").is_empty() && resource == "secrets" => {
            (false, "only admin reads Secrets".to_string())
        }
        _ if read => (
            true,
            "every identity may read everything but Secrets".to_string(),
        ),
        _ if spec.get("nonResourceAttributes").is_some() => {
            (false, "only admin may do more than read".to_string())
        }
        Identity::Joiner
            if field("group").is_empty()
                && resource == "serviceaccounts"
                && matches!(subresource, "" | "token")
                && verb != "*" =>
        {
            (
                true,
                format!("joiner may write only ServiceAccounts labelled {CLUSTER_LABEL}"),
            )
        }
        Identity::Joiner => (
            false,
            format!("joiner may write only ServiceAccounts labelled {CLUSTER_LABEL}"),
        ),
        Identity::Cluster(id) if verb != "*" => (
            true,
            format!("cluster:{id} may write only objects labelled {CLUSTER_LABEL}={id}"),
        ),
        Identity::Cluster(_) => (false, "only admin may do every verb".to_string()),
    };
    json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "metadata": {"creationTimestamp": now_rfc3339()},
        "spec": spec,
        "status": {"allowed": allowed, "reason": reason},
    })
}
