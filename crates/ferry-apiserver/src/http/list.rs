//! Which objects a list returns: pages (`limit`, `continue`) that are one
//! consistent snapshot at the first page's resourceVersion, and the read
//! consistency a client asks for (`resourceVersion`,
//! `resourceVersionMatch`), with kube-apiserver's rules for combining them.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

use super::filter::Filter;
use super::request::Ctx;
use crate::error::{Error, Result};
use crate::store::Stored;

/// How long a list for a resourceVersion not yet reached waits for it
/// before 504, as kube-apiserver's watch cache does.
const FUTURE_REVISION_WAIT: Duration = Duration::from_secs(3);

/// One page: (revision of the snapshot, objects, continue token).
pub(super) type Page = (u64, Vec<(Arc<str>, Arc<Stored>)>, Option<String>);

/// Where a continue token resumes: after `start`, in the snapshot at `rev`.
#[derive(Debug, PartialEq, Eq)]
struct Continue {
    rev: Option<u64>,
    start: String,
}

/// The token: base64url JSON `{"v", "rv", "start"}`, kube's own shape.
fn encode_continue(rev: u64, key: &str) -> String {
    let token = json!({"v": "meta.k8s.io/v1", "rv": rev, "start": key});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token.to_string())
}

fn decode_continue(token: &str, prefix: &str) -> Result<Continue> {
    let bad = || Error::BadRequest(format!("invalid continue token {token:?}"));
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let parsed = match serde_json::from_str::<Value>(&text) {
        Ok(v) => Continue {
            rev: v.get("rv").and_then(Value::as_u64),
            start: v
                .get("start")
                .and_then(Value::as_str)
                .ok_or_else(bad)?
                .to_string(),
        },
        // Tokens of earlier versions held the key alone.
        Err(_) => Continue {
            rev: None,
            start: text,
        },
    };
    if !parsed.start.starts_with(prefix) {
        return Err(bad());
    }
    Ok(parsed)
}

/// The revision a list reads at.
#[derive(Debug, PartialEq, Eq)]
enum ReadAt {
    /// The newest state.
    Latest,
    /// The newest state, once the store has reached this revision.
    NotOlderThan(u64),
    /// The state at exactly this revision.
    Exact(u64),
}

fn read_at(ctx: &Ctx) -> Result<ReadAt> {
    let rv = ctx.query.get("resourceVersion").unwrap_or("");
    let matching = ctx.query.get("resourceVersionMatch").unwrap_or("");
    let continuing = !ctx.query.get("continue").unwrap_or("").is_empty();
    let bad = |m: &str| Err(Error::BadRequest(m.to_string()));
    if !matching.is_empty() && rv.is_empty() {
        return bad("resourceVersionMatch is forbidden unless resourceVersion is provided");
    }
    if !matching.is_empty() && continuing {
        return bad("resourceVersionMatch is forbidden when continue is provided");
    }
    if continuing && !matches!(rv, "" | "0") {
        return bad("specifying resource version is not allowed when using continue");
    }
    let parsed = || {
        rv.parse::<u64>()
            .map_err(|_| Error::BadRequest(format!("invalid resourceVersion {rv:?}")))
    };
    match (matching, rv) {
        ("", "") | ("", "0") | ("NotOlderThan", "0") => Ok(ReadAt::Latest),
        ("Exact", "0") => {
            bad("resourceVersionMatch \"Exact\" is forbidden for resourceVersion \"0\"")
        }
        ("Exact", _) => Ok(ReadAt::Exact(parsed()?)),
        ("" | "NotOlderThan", _) => Ok(ReadAt::NotOlderThan(parsed()?)),
        (other, _) => Err(Error::BadRequest(format!(
            "resourceVersionMatch: Unsupported value: {other:?}: supported values: \"Exact\", \"NotOlderThan\""
        ))),
    }
}

/// The page a list request asks for.
pub(super) async fn page(ctx: &Ctx, filter: &Filter) -> Result<Page> {
    let prefix = ctx.def.collection_prefix(ctx.path.namespace.as_deref());
    let limit = match ctx.query.unsigned("limit").map_err(Error::BadRequest)? {
        None | Some(0) => None,
        Some(l) => Some(usize::try_from(l).unwrap_or(usize::MAX)),
    };
    let at = read_at(ctx)?;
    let resume = match ctx.query.get("continue") {
        None | Some("") => None,
        Some(token) => Some(decode_continue(token, &prefix)?),
    };
    let after = resume.as_ref().map(|c| c.start.as_str());
    let snapshot = match (&resume, at) {
        (Some(Continue { rev: Some(rev), .. }), _) => Some(*rev),
        (_, ReadAt::Exact(rev)) => Some(rev),
        (_, ReadAt::NotOlderThan(rev)) => {
            wait_for(ctx, rev).await?;
            None
        }
        _ => None,
    };
    let store = &ctx.app.store;
    let keep = |k: &str, s: &Stored| filter.matches(k, s);
    let (rev, items, more) = match snapshot {
        Some(rev) => store.list_at(&prefix, after, limit, rev, keep).await?,
        None => store.list(&prefix, after, limit, keep),
    };
    let token = match items.last() {
        Some((last, _)) if more => Some(encode_continue(rev, last)),
        _ => None,
    };
    Ok((rev, items, token))
}

/// Waits (briefly) until the store has reached `rev`; 504 if it does not.
async fn wait_for(ctx: &Ctx, rev: u64) -> Result<()> {
    let deadline = tokio::time::Instant::now() + FUTURE_REVISION_WAIT;
    while ctx.app.store.revision() < rev {
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::TooLargeRevision {
                requested: rev,
                current: ctx.app.store.revision(),
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_carry_the_snapshot_revision() {
        let token = encode_continue(42, "/core/configmaps/ns/a");
        let parsed = decode_continue(&token, "/core/configmaps/ns/").unwrap();
        assert_eq!(
            parsed,
            Continue {
                rev: Some(42),
                start: "/core/configmaps/ns/a".into()
            }
        );
        // Another collection's token is refused.
        assert!(decode_continue(&token, "/core/secrets/").is_err());
        // A token of an earlier version (the key alone) still resumes.
        let old = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("/core/configmaps/ns/a");
        assert_eq!(decode_continue(&old, "/core/").unwrap().rev, None);
        assert!(decode_continue("%%%", "/").is_err());
    }
}
