//! Discovery (`/version`, `/api`, `/apis`, group/version resource lists);
//! the OpenAPI documents at `/openapi/v3` are `openapi`'s.

use axum::body::Body;
use http::{Response, StatusCode};
use serde_json::{Value, json};

use super::response::{error_response, json_bytes, json_value};
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
        ["openapi", "v3"] => super::openapi::index(app),
        ["openapi", "v3", rest @ ..] => {
            let doc = super::openapi::document(app, &rest.join("/"))?;
            return Some(json_bytes(StatusCode::OK, doc.body.to_vec()));
        }
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
        if super::scale::has_scale(d) {
            resources.push(json!({
                "name": format!("{}/scale", d.plural),
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
