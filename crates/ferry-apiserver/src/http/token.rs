//! `POST …/serviceaccounts/NAME/token` (TokenRequest): how `ferry join` gets
//! a cluster-scoped token from a broker running on `ferry apiserver`.
//!
//! The ServiceAccount must carry `ferry.dev/cluster=<id>`; the token minted
//! stands for `cluster:<id>`. `admin` and `joiner` may ask, and `cluster:<id>`
//! for its own ServiceAccount (as its Role allows on Kubernetes, where the
//! agent renews its expiring token so). A ServiceAccount labelled
//! `ferry.dev/joiner=true` instead (the broker's `ferry-joiner`) yields a
//! `joiner` token, and only `admin` may ask for one: that is how `ferry
//! deploy-broker --kubeconfig` mints the credential of `broker-info.ferry`
//! without handing out its own. Tokens do not expire; revoke one by
//! deleting its row (see `ferry apiserver token`).

use axum::body::Body;
use http::{Response, StatusCode};
use serde_json::{Value, json};

use super::request::{Ctx, parse_body};
use super::response::json_value;
use std::collections::BTreeMap;

use crate::auth::{CLUSTER_LABEL, Identity, JOINER_LABEL};
use crate::error::{Error, Result};
use crate::objects::is_dns_label;

pub(super) fn create(ctx: &Ctx, name: &str, body: &[u8]) -> Result<Response<Body>> {
    let key = ctx.def.key(ctx.path.namespace.as_deref(), name);
    let sa = ctx.app.store.get(&key).ok_or_else(|| Error::NotFound {
        resource: "serviceaccounts".into(),
        name: name.into(),
    })?;
    let identity = minted_identity(&ctx.identity, name, &sa.labels)?;
    let request: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        parse_body(&ctx.headers, body)?
    };
    let token = ctx.app.tokens.create(&identity)?;
    let spec = request.get("spec").cloned().unwrap_or_else(|| json!({}));
    Ok(json_value(
        StatusCode::CREATED,
        &json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "metadata": {"name": name, "namespace": ctx.path.namespace},
            "spec": spec,
            "status": {"token": token, "expirationTimestamp": "2126-01-01T00:00:00Z"},
        }),
    ))
}

/// Which identity a token of ServiceAccount `name` (with `labels`) stands
/// for, if `requester` may have one.
fn minted_identity(
    requester: &Identity,
    name: &str,
    labels: &BTreeMap<String, String>,
) -> Result<Identity> {
    let forbidden = || {
        Error::Forbidden(format!(
            "serviceaccounts \"{name}\" is forbidden: User \"{requester}\" cannot create resource \"serviceaccounts/token\""
        ))
    };
    if labels.get(JOINER_LABEL).map(String::as_str) == Some("true") {
        return match requester {
            Identity::Admin => Ok(Identity::Joiner),
            _ => Err(forbidden()),
        };
    }
    let cluster = labels.get(CLUSTER_LABEL).cloned().unwrap_or_default();
    if let Identity::Cluster(own) = requester
        && *own != cluster
    {
        return Err(forbidden());
    }
    if !is_dns_label(&cluster) {
        return Err(Error::Forbidden(format!(
            "ferry apiserver issues tokens only for cluster identities and the joiner: serviceaccount \"{name}\" needs the label {CLUSTER_LABEL}=<cluster id> (or {JOINER_LABEL}=true)"
        )));
    }
    Ok(Identity::Cluster(cluster))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn only_admin_gets_joiner_tokens_and_clusters_only_their_own() {
        let joiner_sa = labels(&[(JOINER_LABEL, "true")]);
        let east_sa = labels(&[(CLUSTER_LABEL, "east")]);
        let east = Identity::Cluster("east".into());
        assert_eq!(
            minted_identity(&Identity::Admin, "ferry-joiner", &joiner_sa).unwrap(),
            Identity::Joiner
        );
        for not_admin in [Identity::Joiner, east.clone()] {
            assert!(matches!(
                minted_identity(&not_admin, "ferry-joiner", &joiner_sa),
                Err(Error::Forbidden(_))
            ));
        }
        for requester in [Identity::Admin, Identity::Joiner, east.clone()] {
            assert_eq!(
                minted_identity(&requester, "cluster-east", &east_sa).unwrap(),
                east
            );
        }
        assert!(
            minted_identity(&Identity::Cluster("west".into()), "cluster-east", &east_sa).is_err()
        );
        assert!(minted_identity(&Identity::Admin, "plain", &labels(&[])).is_err());
    }
}
