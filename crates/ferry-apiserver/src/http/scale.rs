//! The `scale` subresource of Deployments and ReplicaSets (`autoscaling/v1`
//! Scale), which `kubectl scale` reads and patches.

use axum::body::Body;
use ferry_apimachinery::field::FieldError;
use http::{Method, Response, StatusCode};
use serde_json::{Value, json};

use super::request::{Ctx, parse_body};
use super::response::json_value;
use crate::error::{Error, Result};
use crate::ops::{self, Mutation, PatchKind, WriteOptions};

/// True for resources that have a scale subresource.
pub(super) fn has_scale(def: &crate::registry::ResourceDef) -> bool {
    def.group == "apps" && matches!(def.plural.as_str(), "deployments" | "replicasets")
}

fn scale_of(object: &Value) -> Value {
    let meta = object.get("metadata").cloned().unwrap_or(Value::Null);
    let selector = object
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
            "creationTimestamp": meta.get("creationTimestamp"),
        },
        "spec": {"replicas": object.pointer("/spec/replicas").cloned().unwrap_or(json!(1))},
        "status": {
            "replicas": object.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector,
        },
    })
}

pub(super) async fn handle(
    ctx: &Ctx,
    method: Method,
    name: &str,
    body: &[u8],
    opts: WriteOptions,
) -> Result<Response<Body>> {
    let ns = ctx.path.namespace.as_deref();
    let key = ctx.def.key(ns, name);
    let current = ctx.app.store.get(&key).ok_or_else(|| Error::NotFound {
        resource: ctx.def.qualified(),
        name: name.into(),
    })?;
    let mut scale = scale_of(&current.value()?);
    match method {
        Method::GET => return Ok(json_value(StatusCode::OK, &scale)),
        Method::PUT => scale = parse_body(&ctx.headers, body)?,
        Method::PATCH => {
            let patch: Value = serde_json::from_slice(body).map_err(|e| {
                Error::BadRequest(format!("the request body could not be decoded: {e}"))
            })?;
            let content_type = ctx
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if content_type.starts_with("application/json-patch+json") {
                ferry_apimachinery::patch::json_patch(&mut scale, &patch)
                    .map_err(|e| Error::BadRequest(e.to_string()))?;
            } else {
                ferry_apimachinery::patch::merge_patch(&mut scale, &patch);
            }
        }
        _ => return Err(Error::MethodNotAllowed),
    }
    let replicas = scale
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .filter(|r| *r >= 0)
        .ok_or_else(|| {
            let given = scale
                .pointer("/spec/replicas")
                .cloned()
                .unwrap_or(Value::Null);
            Error::invalid(
                "Scale",
                name,
                FieldError::invalid("spec.replicas", given, "must be a non-negative integer"),
            )
        })?;
    let (stored, _) = ops::update(
        &ctx.app,
        &ctx.identity,
        &ctx.def,
        ns,
        name,
        Mutation::Patch(PatchKind::Merge, json!({"spec": {"replicas": replicas}})),
        WriteOptions {
            status_only: false,
            ..opts
        },
    )
    .await?;
    Ok(json_value(StatusCode::OK, &scale_of(&stored.value()?)))
}
