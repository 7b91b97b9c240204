//! The write options of a request that concern field ownership: the field
//! manager (`?fieldManager=`, else the first token of the User-Agent, as
//! kube-apiserver names updaters) and `?force=`, checked as
//! `PatchOptions` are checked (422: an apply must name its manager, only
//! an apply may force, a manager is at most 128 printable bytes).

use ferry_apimachinery::field::{FieldError, FieldErrorKind};
use http::header;
use serde_json::json;

use super::request::Ctx;
use crate::error::{Error, Result};

/// Longest field manager name Kubernetes accepts.
const MAX_MANAGER_BYTES: usize = 128;

/// The field manager and `force` of a write; `apply` when it is a
/// server-side apply, `patch` when it is any PATCH.
pub(super) fn field_manager(ctx: &Ctx, patch: bool, apply: bool) -> Result<(Option<String>, bool)> {
    let given = ctx.query.get("fieldManager").filter(|m| !m.is_empty());
    let force_given = ctx.query.get("force").is_some();
    let mut causes = Vec::new();
    if apply && given.is_none() {
        causes.push(FieldError::required(
            "fieldManager",
            "is required for apply patch",
        ));
    }
    if patch && !apply && force_given {
        causes.push(
            FieldError::new(FieldErrorKind::Forbidden, "force", None)
                .with_detail("may not be specified for non-apply patch"),
        );
    }
    if let Some(manager) = given {
        if manager.len() > MAX_MANAGER_BYTES {
            causes.push(
                FieldError::new(FieldErrorKind::TooLong, "fieldManager", None)
                    .with_detail(format!("may not be more than {MAX_MANAGER_BYTES} bytes")),
            );
        } else if manager.chars().any(char::is_control) {
            causes.push(FieldError::invalid(
                "fieldManager",
                json!(manager),
                "must only contain printable characters",
            ));
        }
    }
    if !causes.is_empty() {
        return Err(Error::Invalid {
            kind: "PatchOptions.meta.k8s.io".into(),
            name: String::new(),
            causes,
        });
    }
    let manager = match given {
        Some(m) => Some(m.to_string()),
        None => user_agent_manager(&ctx.headers),
    };
    Ok((manager, apply && ctx.query.flag("force")))
}

/// The User-Agent up to its first `/`, printable characters only, cut at
/// 128 bytes (`kubectl/v1.33.0 (linux/amd64)…` → `kubectl`).
fn user_agent_manager(headers: &http::HeaderMap) -> Option<String> {
    let agent = headers.get(header::USER_AGENT)?.to_str().ok()?;
    let first = agent.split('/').next().unwrap_or("");
    let mut out = String::new();
    for c in first.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > MAX_MANAGER_BYTES {
            break;
        }
        out.push(c);
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agents_name_managers_by_their_first_token() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(user_agent_manager(&headers), None);
        headers.insert(
            header::USER_AGENT,
            "kubectl/v1.33.0 (linux/amd64) kubernetes/abc"
                .parse()
                .unwrap(),
        );
        assert_eq!(user_agent_manager(&headers).as_deref(), Some("kubectl"));
        headers.insert(
            header::USER_AGENT,
            "OpenAPI-Generator/32.0.1/python".parse().unwrap(),
        );
        assert_eq!(
            user_agent_manager(&headers).as_deref(),
            Some("OpenAPI-Generator")
        );
        headers.insert(header::USER_AGENT, "x".repeat(300).parse().unwrap());
        assert_eq!(user_agent_manager(&headers).map(|m| m.len()), Some(128));
    }
}
