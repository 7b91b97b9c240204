//! The resource verbs: get, list, watch, create, update, patch, delete,
//! deletecollection, and the `/status` subresource.

use std::sync::Arc;

use axum::body::Body;
use http::{Method, Request, Response, StatusCode, header};
use serde_json::{Value, json};

use super::filter::Filter;
use super::path::{Query, ResourcePath};
use super::request::{Ctx, parse_body, read_body, yaml_or_json};
use super::response::{error_response, json_bytes, json_value};
use super::table::{self, IncludeObject};
use super::{list, manager, scale, token, watch};
use crate::auth::{self, Identity};
use crate::error::{Error, Result};
use crate::objects;
use crate::ops::{self, DeleteOptions, Mutation, PatchKind, Propagation, WriteOptions};
use crate::registry::ResourceDef;
use crate::state::App;
use crate::store::Stored;

pub(super) async fn handle(
    app: Arc<App>,
    identity: Arc<Identity>,
    req: Request<Body>,
) -> (&'static str, String, Response<Body>) {
    let Some(path) = ResourcePath::parse(req.uri().path()) else {
        return (
            "unknown",
            String::new(),
            error_response(&Error::NoSuchResource),
        );
    };
    let Some(def) = app.registry.get(&path.group, &path.version, &path.plural) else {
        return (
            "unknown",
            String::new(),
            error_response(&Error::NoSuchResource),
        );
    };
    let resource = def.qualified();
    let verb = verb_of(req.method(), &path, &Query::parse(req.uri().query()));
    let result = run(app, identity, def, path, req).await;
    let resp = result.unwrap_or_else(|e| error_response(&e));
    (verb, resource, resp)
}

fn verb_of(method: &Method, path: &ResourcePath, query: &Query) -> &'static str {
    match (method.as_str(), path.name.is_some()) {
        ("GET", true) => "get",
        ("GET", false) if query.flag("watch") => "watch",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "unknown",
    }
}

async fn run(
    app: Arc<App>,
    identity: Arc<Identity>,
    def: Arc<ResourceDef>,
    path: ResourcePath,
    req: Request<Body>,
) -> Result<Response<Body>> {
    if path.namespace.is_some() && !def.namespaced {
        return Err(Error::NoSuchResource);
    }
    let status_only = match path.subresource.as_deref() {
        None => false,
        Some("status") if def.status => true,
        Some("token") if def.group.is_empty() && def.plural == "serviceaccounts" => false,
        Some("scale") if scale::has_scale(&def) => false,
        Some(_) => return Err(Error::NoSuchResource),
    };
    if req.method() == Method::GET {
        crate::auth::check_read(&identity, &def.group, &def.plural)?;
    }
    let scale = path.subresource.as_deref() == Some("scale");
    let token_request = path.subresource.as_deref() == Some("token");
    let query = Query::parse(req.uri().query());
    let method = req.method().clone();
    let headers = req.headers().clone();
    let body = read_body(&app, req.into_body(), &headers).await?;
    let ctx = Ctx {
        app,
        identity,
        def,
        path,
        query,
        headers,
    };
    let apply = method == Method::PATCH && patch_kind(&ctx.headers).ok() == Some(PatchKind::Apply);
    let (field_manager, force) = manager::field_manager(&ctx, method == Method::PATCH, apply)?;
    let opts = WriteOptions {
        dry_run: ctx.query.dry_run().map_err(Error::BadRequest)?,
        status_only,
        field_manager,
        force,
    };
    let name = ctx.path.name.clone();
    match (method, name) {
        (Method::POST, Some(name)) if token_request => token::create(&ctx, &name, &body),
        _ if token_request => Err(Error::MethodNotAllowed),
        (method, Some(name)) if scale => scale::handle(&ctx, method, &name, &body, opts).await,
        (Method::GET, Some(name)) => get(&ctx, &name),
        (Method::GET, None) if ctx.query.flag("watch") => watch::serve(ctx).await,
        (Method::GET, None) => list(&ctx).await,
        (Method::POST, None) if !status_only => create(&ctx, &body, opts).await,
        (Method::PUT, Some(name)) => update(&ctx, &name, &body, opts).await,
        (Method::PATCH, Some(name)) => patch(&ctx, &name, &body, opts).await,
        (Method::DELETE, Some(name)) if !status_only => delete(&ctx, &name, &body).await,
        (Method::DELETE, None) => delete_collection(&ctx, &body).await,
        _ => Err(Error::MethodNotAllowed),
    }
}

fn object_response(def: &ResourceDef, code: StatusCode, stored: &Stored) -> Response<Body> {
    json_bytes(code, objects::served_json(def, &stored.json))
}

fn not_found(ctx: &Ctx, name: &str) -> Error {
    Error::NotFound {
        resource: ctx.def.qualified(),
        name: name.into(),
    }
}

fn get(ctx: &Ctx, name: &str) -> Result<Response<Body>> {
    let key = ctx.def.key(ctx.path.namespace.as_deref(), name);
    let stored = ctx
        .app
        .store
        .get(&key)
        .ok_or_else(|| not_found(ctx, name))?;
    if table::wants_table(&ctx.headers) {
        let include = IncludeObject::parse(ctx.query.get("includeObject"));
        let t = table::table(
            &ctx.def,
            &[stored.value()?],
            include,
            json!({"resourceVersion": stored.rev.to_string()}),
            true,
        );
        return Ok(json_value(StatusCode::OK, &t));
    }
    Ok(object_response(&ctx.def, StatusCode::OK, &stored))
}

async fn list(ctx: &Ctx) -> Result<Response<Body>> {
    let filter = Filter::from_query(&ctx.query, &ctx.def)?;
    let (rev, items, token) = list::page(ctx, &filter).await?;
    let mut metadata = json!({"resourceVersion": rev.to_string()});
    if let Some(token) = token {
        metadata["continue"] = json!(token);
    }
    if table::wants_table(&ctx.headers) {
        let include = IncludeObject::parse(ctx.query.get("includeObject"));
        let objects: Vec<Value> = items
            .iter()
            .map(|(_, s)| s.value())
            .collect::<Result<_>>()?;
        let t = table::table(&ctx.def, &objects, include, metadata, true);
        return Ok(json_value(StatusCode::OK, &t));
    }
    // Objects are stored serialized: splice them into the list unparsed.
    let head = json!({
        "kind": format!("{}List", ctx.def.kind),
        "apiVersion": ctx.def.api_version(),
        "metadata": metadata,
    });
    let head = serde_json::to_vec(&head).map_err(|e| Error::Internal(e.to_string()))?;
    let items: Vec<bytes::Bytes> = items
        .iter()
        .map(|(_, s)| objects::served_json(&ctx.def, &s.json))
        .collect();
    let size: usize = items.iter().map(|j| j.len() + 1).sum();
    let mut out = Vec::with_capacity(head.len() + size + 16);
    out.extend_from_slice(&head[..head.len() - 1]);
    out.extend_from_slice(b",\"items\":[");
    for (i, json) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(json);
    }
    out.extend_from_slice(b"]}");
    Ok(json_bytes(StatusCode::OK, out))
}

async fn create(ctx: &Ctx, body: &[u8], opts: WriteOptions) -> Result<Response<Body>> {
    let object = parse_body(&ctx.headers, body)?;
    let stored = ops::create(
        &ctx.app,
        &ctx.identity,
        &ctx.def,
        ctx.path.namespace.as_deref(),
        object,
        opts,
    )
    .await?;
    Ok(object_response(&ctx.def, StatusCode::CREATED, &stored))
}

async fn update(ctx: &Ctx, name: &str, body: &[u8], opts: WriteOptions) -> Result<Response<Body>> {
    let object = parse_body(&ctx.headers, body)?;
    mutate(ctx, name, Mutation::Replace(object), opts).await
}

/// PUT and PATCH: 200 with the object, 201 when server-side apply created it.
async fn mutate(
    ctx: &Ctx,
    name: &str,
    mutation: Mutation,
    opts: WriteOptions,
) -> Result<Response<Body>> {
    let (stored, created) = ops::update(
        &ctx.app,
        &ctx.identity,
        &ctx.def,
        ctx.path.namespace.as_deref(),
        name,
        mutation,
        opts,
    )
    .await?;
    let code = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(object_response(&ctx.def, code, &stored))
}

fn patch_kind(headers: &http::HeaderMap) -> Result<PatchKind> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = ct.split(';').next().unwrap_or("").trim();
    match media {
        "application/json-patch+json" => Ok(PatchKind::Json),
        "application/merge-patch+json" => Ok(PatchKind::Merge),
        "application/strategic-merge-patch+json" => Ok(PatchKind::Strategic),
        "application/apply-patch+yaml" | "application/apply-patch+json" => Ok(PatchKind::Apply),
        other => Err(Error::UnsupportedMediaType(format!(
            "the body of the request was in an unknown format ({other:?}) - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml"
        ))),
    }
}

async fn patch(ctx: &Ctx, name: &str, body: &[u8], opts: WriteOptions) -> Result<Response<Body>> {
    let kind = patch_kind(&ctx.headers)?;
    // Apply bodies are YAML (a JSON document is valid YAML).
    let value = if kind == PatchKind::Apply {
        yaml_or_json(body)
            .map_err(|e| Error::BadRequest(format!("the request body could not be decoded: {e}")))?
    } else {
        serde_json::from_slice::<Value>(body)
            .map_err(|e| Error::BadRequest(format!("the request body could not be decoded: {e}")))?
    };
    mutate(ctx, name, Mutation::Patch(kind, value), opts).await
}

fn delete_options(ctx: &Ctx, body: &[u8]) -> Result<DeleteOptions> {
    let mut opts = if body.iter().all(u8::is_ascii_whitespace) {
        DeleteOptions::default()
    } else {
        DeleteOptions::from_body(&parse_body(&ctx.headers, body)?)?
    };
    if ctx.query.dry_run().map_err(Error::BadRequest)? {
        opts.dry_run = true;
    }
    // Query parameters, as `kubectl delete --cascade=…` and the Python
    // client's `propagation_policy=` send them, win over the body.
    if let Some(policy) = ctx.query.get("propagationPolicy") {
        opts.propagation = Propagation::parse(policy)?;
    } else if ctx.query.get("orphanDependents").is_some() {
        opts.propagation = if ctx.query.flag("orphanDependents") {
            Propagation::Orphan
        } else {
            Propagation::Background
        };
    }
    Ok(opts)
}

async fn delete(ctx: &Ctx, name: &str, body: &[u8]) -> Result<Response<Body>> {
    let opts = delete_options(ctx, body)?;
    let stored = ops::delete(
        &ctx.app,
        &ctx.identity,
        &ctx.def,
        ctx.path.namespace.as_deref(),
        name,
        &opts,
    )
    .await?;
    Ok(object_response(&ctx.def, StatusCode::OK, &stored))
}

async fn delete_collection(ctx: &Ctx, body: &[u8]) -> Result<Response<Body>> {
    let opts = delete_options(ctx, body)?;
    let filter = Filter::from_query(&ctx.query, &ctx.def)?;
    let prefix = ctx.def.collection_prefix(ctx.path.namespace.as_deref());
    let (rev, items, _) = ctx
        .app
        .store
        .list(&prefix, None, None, |k, s| filter.matches(k, s));
    // A scoped identity deletes all of the selection or nothing.
    for (_, stored) in &items {
        let name = stored
            .value()
            .ok()
            .map(|v| objects::meta_str(&v, "name").to_string())
            .unwrap_or_default();
        auth::check_write(
            &ctx.identity,
            &ctx.def.qualified(),
            &name,
            Some(&stored.labels),
            None,
        )?;
    }
    let mut deleted = Vec::new();
    for (_, stored) in items {
        let value = stored.value()?;
        let name = objects::meta_str(&value, "name").to_string();
        let ns = objects::meta_str(&value, "namespace").to_string();
        let ns = (!ns.is_empty()).then_some(ns);
        match ops::delete(
            &ctx.app,
            &ctx.identity,
            &ctx.def,
            ns.as_deref(),
            &name,
            &opts,
        )
        .await
        {
            Ok(s) => deleted.push(s.value()?),
            Err(Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(json_value(
        StatusCode::OK,
        &json!({
            "kind": format!("{}List", ctx.def.kind),
            "apiVersion": ctx.def.api_version(),
            "metadata": {"resourceVersion": rev.to_string()},
            "items": deleted,
        }),
    ))
}
