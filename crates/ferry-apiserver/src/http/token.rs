//! `POST …/serviceaccounts/NAME/token` (TokenRequest): how `ferry join` gets
//! a cluster-scoped token from a broker running on `ferry apiserver`.
//!
//! The ServiceAccount must carry `ferry.dev/cluster=<id>`; the token minted
//! stands for `cluster:<id>`. `admin` and `joiner` may ask, and `cluster:<id>`
//! for its own ServiceAccount (as its Role allows on Kubernetes, where the
//! agent renews its expiring token so). Tokens do not expire; revoke one by
//! deleting its row (see `ferry apiserver token`).

use axum::body::Body;
use http::{Response, StatusCode};
use serde_json::{Value, json};

use super::request::{Ctx, parse_body};
use super::response::json_value;
use crate::auth::{CLUSTER_LABEL, Identity};
use crate::error::{Error, Result};
use crate::objects::is_dns_label;

pub(super) fn create(ctx: &Ctx, name: &str, body: &[u8]) -> Result<Response<Body>> {
    let forbidden = || {
        Error::Forbidden(format!(
            "serviceaccounts \"{name}\" is forbidden: User \"{}\" cannot create resource \"serviceaccounts/token\"",
            ctx.identity
        ))
    };
    let key = ctx.def.key(ctx.path.namespace.as_deref(), name);
    let sa = ctx.app.store.get(&key).ok_or_else(|| Error::NotFound {
        resource: "serviceaccounts".into(),
        name: name.into(),
    })?;
    let cluster = sa.labels.get(CLUSTER_LABEL).cloned().unwrap_or_default();
    if let Identity::Cluster(own) = &*ctx.identity
        && *own != cluster
    {
        return Err(forbidden());
    }
    if !is_dns_label(&cluster) {
        return Err(Error::Forbidden(format!(
            "ferry apiserver issues tokens only for cluster identities: serviceaccount \"{name}\" needs the label {CLUSTER_LABEL}=<cluster id>"
        )));
    }
    let request: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        parse_body(&ctx.headers, body)?
    };
    let token = ctx.app.tokens.create(&Identity::Cluster(cluster))?;
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
