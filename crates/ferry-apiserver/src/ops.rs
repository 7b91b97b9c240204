//! Object operations with Kubernetes semantics, independent of HTTP:
//! create, update (replace, patch, apply), delete with finalizers. The HTTP
//! handlers and the built-in controllers both go through here.

use std::sync::Arc;

use ferry_apimachinery::patch;
use serde_json::{Value, json};

use crate::auth::{Identity, check_write};
use crate::error::{Error, Result};
use crate::objects::{self, meta_str};
use crate::registry::ResourceDef;
use crate::state::App;
use crate::store::{Precondition, Stored, Write, WriteOutcomeError, WriteRejection, labels_of};

/// How a PATCH body is to be applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    Json,
    Merge,
    Strategic,
    /// Server-side apply (handled as create-or-merge).
    Apply,
}

/// What an update does to the current object.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// PUT: the whole new object.
    Replace(Value),
    /// PATCH of the given kind.
    Patch(PatchKind, Value),
}

/// Options common to writes.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteOptions {
    pub dry_run: bool,
    /// Write through the `/status` subresource.
    pub status_only: bool,
}

fn map_write_error(def: &ResourceDef, name: &str, e: WriteOutcomeError) -> Error {
    let resource = def.qualified();
    let name = name.to_string();
    match e {
        WriteOutcomeError::Rejected(WriteRejection::AlreadyExists) => {
            Error::AlreadyExists { resource, name }
        }
        WriteOutcomeError::Rejected(WriteRejection::NotFound) => Error::NotFound { resource, name },
        WriteOutcomeError::Rejected(WriteRejection::Conflict) => Error::Conflict { resource, name },
        WriteOutcomeError::Storage(m) => Error::Internal(m),
    }
}

/// Fails unless namespace `ns` exists and is not being deleted.
fn check_namespace(app: &App, ns: &str) -> Result<()> {
    let Some(def) = app.registry.get("", "v1", "namespaces") else {
        return Ok(());
    };
    let Some(stored) = app.store.get(&def.key(None, ns)) else {
        return Err(Error::NotFound {
            resource: "namespaces".into(),
            name: ns.into(),
        });
    };
    // Parse only a namespace that may be terminating: this runs on every
    // create, and a live namespace's JSON never mentions the field.
    let may_terminate = stored
        .json
        .windows(b"deletionTimestamp".len())
        .any(|w| w == b"deletionTimestamp");
    if may_terminate && objects::is_terminating(&stored.value()?) {
        return Err(Error::Forbidden(format!(
            "unable to create new content in namespace {ns} because it is being terminated"
        )));
    }
    Ok(())
}

/// Resource-specific defaults and status on create.
fn defaults_on_create(def: &ResourceDef, object: &mut Value) -> Result<()> {
    let obj = object
        .as_object_mut()
        .ok_or_else(|| Error::BadRequest("the request body is not a JSON object".into()))?;
    match (def.group.as_str(), def.plural.as_str()) {
        ("", "namespaces") => {
            obj.insert("spec".into(), json!({"finalizers": ["kubernetes"]}));
            obj.insert("status".into(), json!({"phase": "Active"}));
        }
        ("", "pods") => {
            obj.insert("status".into(), json!({"phase": "Pending"}));
        }
        ("", "nodes") => {}
        ("", "secrets") => {
            obj.entry("type").or_insert_with(|| json!("Opaque"));
        }
        ("", "services") => {
            obj.remove("status");
            default_service_spec(obj);
        }
        ("apiextensions.k8s.io", "customresourcedefinitions") => {}
        _ if def.status => {
            obj.remove("status");
        }
        _ => {}
    }
    Ok(())
}

/// The defaults kube-apiserver fills into a Service spec.
fn default_service_spec(obj: &mut serde_json::Map<String, Value>) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    spec.entry("type").or_insert_with(|| json!("ClusterIP"));
    spec.entry("sessionAffinity")
        .or_insert_with(|| json!("None"));
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for port in ports.iter_mut().filter_map(Value::as_object_mut) {
            port.entry("protocol").or_insert_with(|| json!("TCP"));
            if let Some(p) = port.get("port").cloned() {
                port.entry("targetPort").or_insert(p);
            }
        }
    }
}

/// Validates a CRD and sets the status a real server would report.
fn prepare_crd(object: &mut Value) -> Result<()> {
    let name = meta_str(object, "name").to_string();
    let invalid = |message: &str| Error::Invalid {
        kind: "CustomResourceDefinition".into(),
        name: name.clone(),
        message: message.into(),
    };
    let spec = object
        .get("spec")
        .ok_or_else(|| invalid("spec: Required value"))?;
    let group = spec
        .get("group")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("spec.group: Required value"))?;
    let names = spec
        .get("names")
        .cloned()
        .ok_or_else(|| invalid("spec.names: Required value"))?;
    let plural = names
        .get("plural")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("spec.names.plural: Required value"))?;
    if names.get("kind").and_then(Value::as_str).is_none() {
        return Err(invalid("spec.names.kind: Required value"));
    }
    if name != format!("{plural}.{group}") {
        return Err(invalid(&format!(
            "metadata.name: Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"
        )));
    }
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| invalid("spec.versions: Invalid value: must have at least one version"))?;
    let stored: Vec<Value> = versions
        .iter()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .filter_map(|v| v.get("name").cloned())
        .collect();
    if stored.len() != 1 {
        return Err(invalid(
            "spec.versions: Invalid value: must have exactly one version marked as storage version",
        ));
    }
    let now = objects::now_rfc3339();
    let mut accepted = names.clone();
    if accepted.get("singular").is_none()
        && let Some(kind) = names.get("kind").and_then(Value::as_str)
    {
        accepted["singular"] = json!(kind.to_lowercase());
    }
    if accepted.get("listKind").is_none()
        && let Some(kind) = names.get("kind").and_then(Value::as_str)
    {
        accepted["listKind"] = json!(format!("{kind}List"));
    }
    object["status"] = json!({
        "acceptedNames": accepted,
        "storedVersions": stored,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
             "message": "no conflicts found", "lastTransitionTime": now},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
             "message": "the initial names have been accepted", "lastTransitionTime": now},
        ],
    });
    Ok(())
}

fn is_crd(def: &ResourceDef) -> bool {
    def.group == "apiextensions.k8s.io" && def.plural == "customresourcedefinitions"
}

/// Keeps the registry in step with a CRD write.
fn after_crd_write(app: &App, def: &ResourceDef, stored: Option<&Stored>, name: &str) {
    if !is_crd(def) {
        return;
    }
    match stored.map(Stored::value) {
        Some(Ok(crd)) => app.registry.apply_crd(&crd),
        _ => app.registry.remove_crd(name),
    }
}

/// POST: creates an object.
pub async fn create(
    app: &App,
    identity: &Identity,
    def: &ResourceDef,
    namespace: Option<&str>,
    mut object: Value,
    opts: WriteOptions,
) -> Result<Arc<Stored>> {
    let name = objects::prepare_create(def, namespace, &mut object)?;
    if def.namespaced
        && let Some(ns) = namespace
    {
        check_namespace(app, ns)?;
    }
    defaults_on_create(def, &mut object)?;
    if is_crd(def) {
        prepare_crd(&mut object)?;
    }
    check_write(
        identity,
        &def.qualified(),
        &name,
        None,
        Some(&labels_of(&object)),
    )?;
    let key = def.key(namespace, &name);
    if opts.dry_run {
        if app.store.get(&key).is_some() {
            return Err(Error::AlreadyExists {
                resource: def.qualified(),
                name,
            });
        }
        return Ok(Arc::new(dry_run_stored(&object)?));
    }
    let event = app
        .store
        .write(Write::Put {
            key,
            object,
            precondition: Precondition::Absent,
        })
        .await
        .map_err(|e| map_write_error(def, &name, e))?;
    after_crd_write(app, def, Some(&event.object), &name);
    Ok(event.object)
}

fn dry_run_stored(object: &Value) -> Result<Stored> {
    Ok(Stored {
        rev: 0,
        labels: labels_of(object),
        json: serde_json::to_vec(object)
            .map_err(|e| Error::Internal(e.to_string()))?
            .into(),
    })
}

/// The resourceVersion a client pinned in a body, if any.
fn pinned_revision(def: &ResourceDef, name: &str, body: &Value) -> Result<Option<u64>> {
    match body
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
    {
        None | Some("") => Ok(None),
        Some(rv) => rv.parse().map(Some).map_err(|_| Error::Invalid {
            kind: def.kind.clone(),
            name: name.into(),
            message: format!("metadata.resourceVersion: Invalid value: \"{rv}\": must be a number"),
        }),
    }
}

fn apply_patch(def: &ResourceDef, kind: PatchKind, target: &mut Value, body: &Value) -> Result<()> {
    match kind {
        PatchKind::Json => patch::json_patch(target, body).map_err(|e| Error::Invalid {
            kind: def.kind.clone(),
            name: meta_str(target, "name").into(),
            message: e.to_string(),
        }),
        PatchKind::Merge => {
            patch::merge_patch(target, body);
            Ok(())
        }
        PatchKind::Strategic | PatchKind::Apply if !def.custom => {
            patch::strategic_merge_patch(target, body, &def.group, &def.kind)
                .map_err(|e| Error::BadRequest(e.to_string()))
        }
        PatchKind::Strategic => Err(Error::UnsupportedMediaType(
            "strategic merge patch is not supported for custom resources; use a JSON merge patch"
                .into(),
        )),
        PatchKind::Apply => {
            patch::merge_patch(target, body);
            Ok(())
        }
    }
}

/// Most times a patch is retried when another writer got there first.
const PATCH_RETRIES: usize = 16;

/// PUT or PATCH. Server-side apply creates the object when it is missing.
pub async fn update(
    app: &App,
    identity: &Identity,
    def: &ResourceDef,
    namespace: Option<&str>,
    name: &str,
    mutation: Mutation,
    opts: WriteOptions,
) -> Result<(Arc<Stored>, bool)> {
    let key = def.key(namespace, name);
    for _ in 0..PATCH_RETRIES {
        let Some(current) = app.store.get(&key) else {
            if let Mutation::Patch(PatchKind::Apply, body) = &mutation {
                let mut object = body.clone();
                objects::metadata_mut(&mut object)?.insert("name".into(), json!(name));
                let created = create(app, identity, def, namespace, object, opts).await?;
                return Ok((created, true));
            }
            return Err(Error::NotFound {
                resource: def.qualified(),
                name: name.into(),
            });
        };
        let current_value = current.value()?;
        let (new, pinned) = match &mutation {
            Mutation::Replace(body) => (body.clone(), pinned_revision(def, name, body)?),
            Mutation::Patch(kind, body) => {
                let mut target = current_value.clone();
                apply_patch(def, *kind, &mut target, body)?;
                let pinned = if *kind == PatchKind::Json {
                    None
                } else {
                    pinned_revision(def, name, body)?
                };
                // A patch never moves resourceVersion itself.
                if let Some(meta) = target.get_mut("metadata").and_then(Value::as_object_mut) {
                    meta.insert("resourceVersion".into(), json!(current.rev.to_string()));
                }
                (target, pinned)
            }
        };
        let mut new = objects::prepare_update(def, &current_value, new, opts.status_only)?;
        if is_crd(def) && !opts.status_only {
            prepare_crd(&mut new)?;
        }
        check_write(
            identity,
            &def.qualified(),
            name,
            Some(&current.labels),
            Some(&labels_of(&new)),
        )?;
        if opts.dry_run {
            return Ok((Arc::new(dry_run_stored(&new)?), false));
        }
        let precondition = Precondition::Revision(pinned.unwrap_or(current.rev));
        let finishing = objects::is_terminating(&new) && objects::finalizers(&new).is_empty();
        let write = if finishing {
            Write::Delete {
                key: key.clone(),
                precondition,
            }
        } else {
            Write::Put {
                key: key.clone(),
                object: new,
                precondition,
            }
        };
        match app.store.write(write).await {
            Ok(event) => {
                let live = (!finishing).then_some(&*event.object);
                after_crd_write(app, def, live, name);
                return Ok((event.object, false));
            }
            Err(WriteOutcomeError::Rejected(WriteRejection::Conflict)) if pinned.is_none() => {
                continue;
            }
            Err(e) => return Err(map_write_error(def, name, e)),
        }
    }
    Err(Error::Conflict {
        resource: def.qualified(),
        name: name.into(),
    })
}

/// The fields of `DeleteOptions` we honour.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub dry_run: bool,
    pub uid: Option<String>,
    pub resource_version: Option<u64>,
}

impl DeleteOptions {
    /// Reads a `DeleteOptions` body (may be empty).
    pub fn from_body(body: &Value) -> Result<Self> {
        let pre = body.get("preconditions");
        let uid = pre
            .and_then(|p| p.get("uid"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let resource_version = match pre
            .and_then(|p| p.get("resourceVersion"))
            .and_then(Value::as_str)
        {
            None | Some("") => None,
            Some(rv) => Some(
                rv.parse()
                    .map_err(|_| Error::BadRequest(format!("invalid resourceVersion {rv:?}")))?,
            ),
        };
        let dry_run = body
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
        Ok(DeleteOptions {
            dry_run,
            uid,
            resource_version,
        })
    }
}

/// DELETE: removes an object, or marks it terminating while finalizers remain.
/// Returns the object as last seen.
pub async fn delete(
    app: &App,
    identity: &Identity,
    def: &ResourceDef,
    namespace: Option<&str>,
    name: &str,
    opts: &DeleteOptions,
) -> Result<Arc<Stored>> {
    let key = def.key(namespace, name);
    for _ in 0..PATCH_RETRIES {
        let current = app.store.get(&key).ok_or_else(|| Error::NotFound {
            resource: def.qualified(),
            name: name.into(),
        })?;
        check_write(
            identity,
            &def.qualified(),
            name,
            Some(&current.labels),
            None,
        )?;
        let value = current.value()?;
        if let Some(uid) = &opts.uid
            && uid != meta_str(&value, "uid")
        {
            return Err(Error::Precondition {
                resource: def.qualified(),
                name: name.into(),
                message: format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta_str(&value, "uid")
                ),
            });
        }
        if opts.resource_version.is_some_and(|rv| rv != current.rev) {
            return Err(Error::Conflict {
                resource: def.qualified(),
                name: name.into(),
            });
        }
        if opts.dry_run {
            return Ok(current);
        }
        let is_namespace = def.group.is_empty() && def.plural == "namespaces";
        let keep = is_namespace || !objects::finalizers(&value).is_empty();
        let write = if keep {
            if objects::is_terminating(&value) {
                return Ok(current);
            }
            let mut marked = value;
            let meta = objects::metadata_mut(&mut marked)?;
            meta.insert("deletionTimestamp".into(), json!(objects::now_rfc3339()));
            meta.insert("deletionGracePeriodSeconds".into(), json!(0));
            if is_namespace {
                marked["status"] = json!({"phase": "Terminating"});
            }
            Write::Put {
                key: key.clone(),
                object: marked,
                precondition: Precondition::Revision(current.rev),
            }
        } else {
            Write::Delete {
                key: key.clone(),
                precondition: Precondition::Revision(current.rev),
            }
        };
        match app.store.write(write).await {
            Ok(event) => {
                if !keep {
                    after_crd_write(app, def, None, name);
                }
                if is_namespace {
                    app.controllers_wake.notify_one();
                }
                return Ok(event.object);
            }
            Err(WriteOutcomeError::Rejected(WriteRejection::Conflict))
                if opts.resource_version.is_none() =>
            {
                continue;
            }
            Err(e) => return Err(map_write_error(def, name, e)),
        }
    }
    Err(Error::Conflict {
        resource: def.qualified(),
        name: name.into(),
    })
}
