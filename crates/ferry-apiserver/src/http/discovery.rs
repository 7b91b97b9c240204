//! Discovery (`/version`, `/api`, `/apis`, group/version resource lists) and
//! the OpenAPI v3 documents kubectl reads before `apply`.
//!
//! The OpenAPI documents carry no schemas: only, for each resource, path
//! items whose operations name the group-version-kind and accept the
//! `fieldValidation` parameter. That is what tells kubectl to validate on the
//! server instead of downloading schemas (see `reference/kubectl.md`).

use std::collections::BTreeMap;

use axum::body::Body;
use http::{Response, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::response::{error_response, json_value};
use crate::registry::ResourceDef;
use crate::state::App;

/// `/version`: the Kubernetes version we are compatible with.
pub fn version() -> Response<Body> {
    json_value(
        StatusCode::OK,
        &json!({
            "major": "1",
            "minor": "33",
            "gitVersion": format!("v1.33.0-ferry.{}", env!("CARGO_PKG_VERSION")),
            "gitCommit": "",
            "gitTreeState": "clean",
            "buildDate": "2026-01-01T00:00:00Z",
            "goVersion": "n/a",
            "compiler": "rustc",
            "platform": "linux/amd64",
        }),
    )
}

/// Answers discovery and OpenAPI paths; `None` for anything else.
pub fn handle(app: &App, path: &str, _query: Option<&str>) -> Option<Response<Body>> {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let value = match segs.as_slice() {
        ["api"] => json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}],
        }),
        ["api", "v1"] => resource_list(app, "", "v1")?,
        ["apis"] => group_list(app),
        ["apis", group] => {
            let versions = app.registry.groups().remove(*group)?;
            group_json(group, &versions)
        }
        ["apis", group, version] => resource_list(app, group, version)?,
        ["openapi", "v3"] => openapi_index(app),
        ["openapi", "v3", rest @ ..] => openapi_document(app, rest)?,
        ["openapi", "v2"] => return Some(not_found()),
        _ => return None,
    };
    Some(json_value(StatusCode::OK, &value))
}

fn not_found() -> Response<Body> {
    error_response(&crate::error::Error::NoSuchResource)
}

fn group_json(group: &str, versions: &[String]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": versions,
        "preferredVersion": versions.first().cloned().unwrap_or(Value::Null),
    })
}

fn group_list(app: &App) -> Value {
    let groups: Vec<Value> = app
        .registry
        .groups()
        .iter()
        .map(|(g, versions)| {
            let mut v = group_json(g, versions);
            if let Some(o) = v.as_object_mut() {
                o.remove("kind");
                o.remove("apiVersion");
            }
            v
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

fn resource_list(app: &App, group: &str, version: &str) -> Option<Value> {
    let defs = app.registry.group_version(group, version)?;
    let mut resources = Vec::new();
    for d in &defs {
        resources.push(d.api_resource());
        if d.group.is_empty() && d.plural == "serviceaccounts" {
            resources.push(json!({
                "name": "serviceaccounts/token",
                "singularName": "",
                "namespaced": true,
                "group": "authentication.k8s.io",
                "version": "v1",
                "kind": "TokenRequest",
                "verbs": ["create"],
            }));
        }
        if d.group == "apps" && d.plural == "deployments" {
            resources.push(json!({
                "name": "deployments/scale",
                "singularName": "",
                "namespaced": true,
                "group": "autoscaling",
                "version": "v1",
                "kind": "Scale",
                "verbs": ["get", "patch", "update"],
            }));
        }
        if d.status {
            resources.push(json!({
                "name": format!("{}/status", d.plural),
                "singularName": "",
                "namespaced": d.namespaced,
                "kind": d.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}

/// `api/v1`, `apis/apps/v1`, … → resources there.
fn group_versions(app: &App) -> BTreeMap<String, Vec<std::sync::Arc<ResourceDef>>> {
    let mut map: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for d in app.registry.all() {
        let gv = if d.group.is_empty() {
            format!("api/{}", d.version)
        } else {
            format!("apis/{}/{}", d.group, d.version)
        };
        map.entry(gv).or_default().push(d);
    }
    map
}

fn openapi_index(app: &App) -> Value {
    let mut paths = serde_json::Map::new();
    for (gv, defs) in group_versions(app) {
        let mut h = Sha256::new();
        for d in &defs {
            h.update(serde_json::to_vec(&d.api_resource()).unwrap_or_default());
        }
        let hash = hex::encode(&h.finalize()[..8]).to_uppercase();
        paths.insert(
            gv.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{gv}?hash={hash}")}),
        );
    }
    json!({"paths": paths})
}

fn operation(d: &ResourceDef, action: &str) -> Value {
    json!({
        "operationId": format!("{action}{}", d.kind),
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": d.group, "version": d.version, "kind": d.kind},
        "parameters": [
            {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true},
             "description": "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields"},
            {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
        ],
        "responses": {"200": {"description": "OK"}, "201": {"description": "Created"}},
    })
}

fn openapi_document(app: &App, rest: &[&str]) -> Option<Value> {
    let gv = rest.join("/");
    let defs = group_versions(app).remove(&gv)?;
    let mut paths = serde_json::Map::new();
    for d in defs {
        let base = format!("/{gv}");
        let collection = if d.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}", d.plural)
        } else {
            format!("{base}/{}", d.plural)
        };
        paths.insert(
            collection.clone(),
            json!({"get": operation(&d, "list"), "post": operation(&d, "post"),
                   "delete": operation(&d, "deletecollection")}),
        );
        paths.insert(
            format!("{collection}/{{name}}"),
            json!({"get": operation(&d, "get"), "put": operation(&d, "put"),
                   "patch": operation(&d, "patch"), "delete": operation(&d, "delete")}),
        );
        if d.status {
            paths.insert(
                format!("{collection}/{{name}}/status"),
                json!({"get": operation(&d, "get"), "put": operation(&d, "put"),
                       "patch": operation(&d, "patch")}),
            );
        }
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (ferry apiserver)", "version": "v1.33.0"},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}
