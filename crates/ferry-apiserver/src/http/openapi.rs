//! The OpenAPI v3 documents: `/openapi/v3` lists one document per
//! group-version (with a content hash clients cache by), and each document
//! has the paths of its resources and, in `components.schemas`, the schema
//! of every kind there with `x-kubernetes-group-version-kind`, which is
//! what `kubectl explain` reads.
//!
//! Schemas of built-in kinds come from the k8s-openapi types (their
//! descriptions included), those of custom resources from their CRD's
//! `openAPIV3Schema`, with `apiVersion`, `kind` and `metadata` added as
//! kube-apiserver adds them. Each path's operations name the kind and take
//! the `fieldValidation` parameter, which tells `kubectl apply` to validate
//! on the server (see `reference/kubectl.md`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use k8s_openapi::api::{apps, coordination, core, discovery, rbac};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use schemars::{JsonSchema, Schema};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::registry::ResourceDef;
use crate::state::App;

/// A rendered document and the hash it is listed under.
pub(super) struct Document {
    pub body: Arc<Vec<u8>>,
    pub hash: String,
}

/// `api/v1`, `apis/apps/v1`, … → resources there.
fn group_versions(app: &App) -> BTreeMap<String, Vec<Arc<ResourceDef>>> {
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

/// `/openapi/v3`.
pub(super) fn index(app: &App) -> Value {
    let mut paths = Map::new();
    for (gv, defs) in group_versions(app) {
        let doc = document_of(&gv, &defs);
        paths.insert(
            gv.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{gv}?hash={}", doc.hash)}),
        );
    }
    json!({"paths": paths})
}

/// `/openapi/v3/<gv>`, or `None` when nothing is served there.
pub(super) fn document(app: &App, gv: &str) -> Option<Document> {
    let defs = group_versions(app).remove(gv)?;
    Some(document_of(gv, &defs))
}

/// Documents already rendered, by a digest of what they are made from
/// (the built-in ones are asked for again and again; CRDs change rarely).
fn cache() -> &'static Mutex<HashMap<String, Arc<Vec<u8>>>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Vec<u8>>>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// Most documents kept; past it the cache starts over.
const CACHE_ENTRIES: usize = 256;

fn document_of(gv: &str, defs: &[Arc<ResourceDef>]) -> Document {
    let mut digest = Sha256::new();
    digest.update(gv.as_bytes());
    for d in defs {
        digest.update(serde_json::to_vec(&d.api_resource()).unwrap_or_default());
        digest.update([u8::from(d.status), u8::from(d.namespaced)]);
        if let Some(schema) = &d.schema {
            digest.update(serde_json::to_vec(schema.as_ref()).unwrap_or_default());
        }
    }
    let key = hex::encode(digest.finalize());
    let hash = key[..16].to_uppercase();
    let mut cache = cache().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(body) = cache.get(&key) {
        return Document {
            body: body.clone(),
            hash,
        };
    }
    let body = Arc::new(serde_json::to_vec(&render(gv, defs)).unwrap_or_default());
    if cache.len() >= CACHE_ENTRIES {
        cache.clear();
    }
    cache.insert(key, body.clone());
    Document { body, hash }
}

fn render(gv: &str, defs: &[Arc<ResourceDef>]) -> Value {
    let mut generator = SchemaSettings::openapi3().into_generator();
    let mut kinds = Map::new();
    for d in defs {
        if !d.custom {
            add_builtin(&mut generator, d);
        } else if let Some((name, schema)) = custom_schema(&mut generator, d) {
            kinds.insert(name, schema);
        }
    }
    let mut schemas = generator.take_definitions(true);
    for (name, schema) in kinds {
        schemas.insert(name, schema);
    }
    for d in defs.iter().filter(|d| !d.custom) {
        if let Some(schema) = schemas
            .get_mut(&builtin_schema_name(d))
            .and_then(Value::as_object_mut)
        {
            schema.insert("x-kubernetes-group-version-kind".into(), gvk(d));
        }
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (ferry apiserver)", "version": "v1.33.0"},
        "paths": paths(gv, defs),
        "components": {"schemas": schemas},
    })
}

fn gvk(d: &ResourceDef) -> Value {
    json!([{"group": d.group, "version": d.version, "kind": d.kind}])
}

/// Names schemars gives the k8s-openapi types (`io.k8s.api.apps.v1.Deployment`).
fn builtin_schema_name(d: &ResourceDef) -> String {
    let package = match d.group.as_str() {
        "" => "core".to_string(),
        "apiextensions.k8s.io" => {
            return format!(
                "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.{}.{}",
                d.version, d.kind
            );
        }
        g => g.split('.').next().unwrap_or(g).to_string(),
    };
    format!("io.k8s.api.{package}.{}.{}", d.version, d.kind)
}

fn add<T: JsonSchema>(generator: &mut SchemaGenerator) {
    let _: Schema = generator.subschema_for::<T>();
}

/// Adds a built-in kind's schema (and what it refers to) to `generator`.
/// Its definition is then found under [`builtin_schema_name`].
fn add_builtin(generator: &mut SchemaGenerator, d: &ResourceDef) {
    match (d.group.as_str(), d.version.as_str(), d.kind.as_str()) {
        ("", "v1", "Namespace") => add::<core::v1::Namespace>(generator),
        ("", "v1", "Node") => add::<core::v1::Node>(generator),
        ("", "v1", "Pod") => add::<core::v1::Pod>(generator),
        ("", "v1", "Service") => add::<core::v1::Service>(generator),
        ("", "v1", "ConfigMap") => add::<core::v1::ConfigMap>(generator),
        ("", "v1", "Secret") => add::<core::v1::Secret>(generator),
        ("", "v1", "ServiceAccount") => add::<core::v1::ServiceAccount>(generator),
        ("", "v1", "Event") => add::<core::v1::Event>(generator),
        ("discovery.k8s.io", "v1", "EndpointSlice") => {
            add::<discovery::v1::EndpointSlice>(generator)
        }
        ("coordination.k8s.io", "v1", "Lease") => add::<coordination::v1::Lease>(generator),
        ("apps", "v1", "Deployment") => add::<apps::v1::Deployment>(generator),
        ("apps", "v1", "DaemonSet") => add::<apps::v1::DaemonSet>(generator),
        ("apps", "v1", "ReplicaSet") => add::<apps::v1::ReplicaSet>(generator),
        ("rbac.authorization.k8s.io", "v1", "Role") => add::<rbac::v1::Role>(generator),
        ("rbac.authorization.k8s.io", "v1", "RoleBinding") => {
            add::<rbac::v1::RoleBinding>(generator)
        }
        ("rbac.authorization.k8s.io", "v1", "ClusterRole") => {
            add::<rbac::v1::ClusterRole>(generator)
        }
        ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding") => {
            add::<rbac::v1::ClusterRoleBinding>(generator)
        }
        ("apiextensions.k8s.io", "v1", "CustomResourceDefinition") => {
            add::<apiextensions::v1::CustomResourceDefinition>(generator)
        }
        _ => {}
    }
}

/// The schema of a custom resource: its CRD's `openAPIV3Schema` with the
/// fields every object has, named as kube-apiserver names it
/// (`io.x-k8s.multicluster.v1alpha1.ServiceExport`).
fn custom_schema(generator: &mut SchemaGenerator, d: &ResourceDef) -> Option<(String, Value)> {
    let meta = generator.subschema_for::<ObjectMeta>();
    let mut schema =
        d.schema.as_deref().cloned().unwrap_or_else(
            || json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
        );
    let obj = schema.as_object_mut()?;
    obj.entry("type").or_insert(json!("object"));
    let properties = obj
        .entry("properties")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()?;
    properties.insert(
        "apiVersion".into(),
        json!({"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources"}),
    );
    properties.insert(
        "kind".into(),
        json!({"type": "string", "description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"}),
    );
    properties.insert(
        "metadata".into(),
        json!({"allOf": [meta.to_value()], "description": "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"}),
    );
    obj.insert("x-kubernetes-group-version-kind".into(), gvk(d));
    let reversed: Vec<&str> = d.group.split('.').rev().collect();
    Some((
        format!("{}.{}.{}", reversed.join("."), d.version, d.kind),
        schema,
    ))
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

fn paths(gv: &str, defs: &[Arc<ResourceDef>]) -> Map<String, Value> {
    let mut paths = Map::new();
    for d in defs {
        let base = format!("/{gv}");
        let collection = if d.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}", d.plural)
        } else {
            format!("{base}/{}", d.plural)
        };
        paths.insert(
            collection.clone(),
            json!({"get": operation(d, "list"), "post": operation(d, "post"),
                   "delete": operation(d, "deletecollection")}),
        );
        paths.insert(
            format!("{collection}/{{name}}"),
            json!({"get": operation(d, "get"), "put": operation(d, "put"),
                   "patch": operation(d, "patch"), "delete": operation(d, "delete")}),
        );
        if d.status {
            paths.insert(
                format!("{collection}/{{name}}/status"),
                json!({"get": operation(d, "get"), "put": operation(d, "put"),
                       "patch": operation(d, "patch")}),
            );
        }
    }
    paths
}

#[cfg(test)]
mod tests;
