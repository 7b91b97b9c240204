//! Object operations with Kubernetes semantics, independent of HTTP:
//! create, update (replace, patch, apply), delete with finalizers. The HTTP
//! handlers and the built-in controllers both go through here.

use std::sync::Arc;

use ferry_apimachinery::field::{FieldError, FieldErrorKind};
use ferry_apimachinery::patch;
use serde_json::{Value, json};

use crate::admission;
use crate::auth::{Identity, check_write};
use crate::error::{Error, Result};
use crate::objects::{self, meta_str};
use crate::ownership::{self, Owners};
use crate::registry::ResourceDef;
use crate::service_ips;
use crate::state::App;
use crate::store::{Precondition, Stored, Write, WriteOutcomeError, WriteRejection, labels_of};
pub use crate::write_options::WriteOptions;

/// How a PATCH body is to be applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    Json,
    Merge,
    Strategic,
    /// Server-side apply: merged by field ownership, creates the object
    /// when it is missing (see [`ownership`](crate::ownership)).
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
    let may_terminate = stored.mentions("deletionTimestamp");
    if may_terminate && objects::is_terminating(&stored.value()?) {
        return Err(Error::Forbidden(format!(
            "unable to create new content in namespace {ns} because it is being terminated"
        )));
    }
    Ok(())
}

fn is_service(def: &ResourceDef) -> bool {
    def.group.is_empty() && def.plural == "services"
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
    object: Value,
    opts: WriteOptions,
) -> Result<Arc<Stored>> {
    let owners = Owners::Update(ownership::requested(&object));
    create_owned(app, identity, def, namespace, object, &opts, owners).await
}

/// Creates an object whose field owners are `owners`.
async fn create_owned(
    app: &App,
    identity: &Identity,
    def: &ResourceDef,
    namespace: Option<&str>,
    mut object: Value,
    opts: &WriteOptions,
    owners: Owners,
) -> Result<Arc<Stored>> {
    let name = objects::prepare_create(def, namespace, &mut object)?;
    if def.namespaced
        && let Some(ns) = namespace
    {
        check_namespace(app, ns)?;
    }
    admission::defaults_on_create(def, &mut object)?;
    if is_crd(def) {
        admission::prepare_crd(&mut object)?;
    }
    admission::admit(def, &mut object)?;
    ownership::record_create(def, opts, owners, &mut object);
    check_write(
        identity,
        &def.qualified(),
        &name,
        None,
        Some(&labels_of(&object)),
    )?;
    let key = def.key(namespace, &name);
    let target = service_ips::Target {
        key: &key,
        name: &name,
    };
    let allocated = if is_service(def) {
        Some(
            app.service_ips
                .on_create(&app.store, &target, &mut object)?,
        )
    } else {
        None
    };
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
    if let Some(allocated) = allocated {
        allocated.commit();
    }
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
        Some(rv) => rv.parse().map(Some).map_err(|_| {
            Error::invalid(
                def.kind.clone(),
                name,
                FieldError::invalid("metadata.resourceVersion", json!(rv), "must be a number"),
            )
        }),
    }
}

fn apply_patch(def: &ResourceDef, kind: PatchKind, target: &mut Value, body: &Value) -> Result<()> {
    match kind {
        PatchKind::Json => patch::json_patch(target, body).map_err(|e| {
            Error::invalid(
                def.kind.clone(),
                meta_str(target, "name"),
                FieldError::new(FieldErrorKind::Invalid, "patch", None).with_detail(e.to_string()),
            )
        }),
        PatchKind::Merge => {
            patch::merge_patch(target, body);
            Ok(())
        }
        PatchKind::Strategic if !def.custom => {
            patch::strategic_merge_patch(target, body, &def.group, &def.kind)
                .map_err(|e| Error::BadRequest(e.to_string()))
        }
        PatchKind::Strategic => Err(Error::UnsupportedMediaType(
            "strategic merge patch is not supported for custom resources; use a JSON merge patch"
                .into(),
        )),
        PatchKind::Apply => Err(Error::Internal(
            "server-side apply is merged by field ownership, not as a patch".into(),
        )),
    }
}

/// Most times a patch is retried when another writer got there first.
const PATCH_RETRIES: usize = 16;

/// PUT or PATCH. Server-side apply creates the object when it is missing.
/// A write that changes nothing (an identical re-apply, a PUT of the
/// object as stored) is not written: no new resourceVersion, no event.
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
                let mut config = body.clone();
                objects::metadata_mut(&mut config)?.insert("name".into(), json!(name));
                let applied = ownership::apply(def, &opts, None, &config)?;
                let owners = Owners::Applied(applied.managed);
                match create_owned(app, identity, def, namespace, applied.object, &opts, owners)
                    .await
                {
                    Ok(created) => return Ok((created, true)),
                    // Created meanwhile: apply to it.
                    Err(Error::AlreadyExists { .. }) => continue,
                    Err(e) => return Err(e),
                }
            }
            return Err(Error::NotFound {
                resource: def.qualified(),
                name: name.into(),
            });
        };
        let current_value = current.value()?;
        let (new, pinned, owners) = mutated(def, name, &current, &current_value, &mutation, &opts)?;
        let mut new = new;
        // Before generation is compared: a body without the defaults is
        // the same spec as the stored one with them.
        crate::defaults::apply(def, &mut new);
        let mut new = objects::prepare_update(def, &current_value, new, opts.status_only)?;
        if is_crd(def) && !opts.status_only {
            admission::prepare_crd(&mut new)?;
        }
        let target = service_ips::Target { key: &key, name };
        let allocated = if is_service(def) && !opts.status_only {
            let services = &app.service_ips;
            Some(services.on_update(&app.store, &target, &current_value, &mut new)?)
        } else {
            None
        };
        admission::admit(def, &mut new)?;
        ownership::record_update(def, &opts, &current_value, owners, &mut new);
        check_write(
            identity,
            &def.qualified(),
            name,
            Some(&current.labels),
            Some(&labels_of(&new)),
        )?;
        if pinned.is_none_or(|rev| rev == current.rev)
            && unchanged(&current, &current_value, &mut new)
        {
            return Ok((current, false));
        }
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
                if let Some(allocated) = allocated {
                    allocated.commit();
                }
                if finishing && is_service(def) {
                    app.service_ips.release(&key);
                }
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

/// The object a mutation asks for (before the metadata rules and
/// admission), the resourceVersion it pins, and who will own its fields.
fn mutated(
    def: &ResourceDef,
    name: &str,
    current: &Stored,
    current_value: &Value,
    mutation: &Mutation,
    opts: &WriteOptions,
) -> Result<(Value, Option<u64>, Owners)> {
    Ok(match mutation {
        Mutation::Replace(body) => (
            body.clone(),
            pinned_revision(def, name, body)?,
            Owners::Update(ownership::requested(body)),
        ),
        Mutation::Patch(PatchKind::Apply, body) => {
            let applied = ownership::apply(def, opts, Some(current_value), body)?;
            (
                applied.object,
                pinned_revision(def, name, body)?,
                Owners::Applied(applied.managed),
            )
        }
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
            let owners = Owners::Update(ownership::requested(&target));
            (target, pinned, owners)
        }
    })
}

/// Whether `new` is the stored object as it is (resourceVersion aside),
/// as kube-apiserver skips writes that change no byte.
fn unchanged(current: &Stored, current_value: &Value, new: &mut Value) -> bool {
    let Some(meta) = new.get_mut("metadata").and_then(Value::as_object_mut) else {
        return false;
    };
    meta.insert("resourceVersion".into(), json!(current.rev.to_string()));
    new == current_value
}

/// What happens to an object's dependents (objects whose
/// `ownerReferences` name it) when it is deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Propagation {
    /// The owner goes at once; the garbage collector deletes the dependents.
    #[default]
    Background,
    /// The owner stays (finalizer `foregroundDeletion`) until its dependents
    /// that have `blockOwnerDeletion` are gone.
    Foreground,
    /// The dependents stay, their `ownerReferences` to the owner removed
    /// (finalizer `orphan`) before the owner goes.
    Orphan,
}

/// The finalizer that holds an owner during foreground deletion.
pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";
/// The finalizer that holds an owner while its dependents are orphaned.
pub const ORPHAN_FINALIZER: &str = "orphan";

impl Propagation {
    /// `propagationPolicy` as sent (400 for anything else).
    pub fn parse(policy: &str) -> Result<Self> {
        match policy {
            "Background" => Ok(Propagation::Background),
            "Foreground" => Ok(Propagation::Foreground),
            "Orphan" => Ok(Propagation::Orphan),
            other => Err(Error::BadRequest(format!(
                "propagationPolicy: Unsupported value: {other:?}: supported values: \"Background\", \"Foreground\", \"Orphan\""
            ))),
        }
    }

    fn finalizer(self) -> Option<&'static str> {
        match self {
            Propagation::Background => None,
            Propagation::Foreground => Some(FOREGROUND_FINALIZER),
            Propagation::Orphan => Some(ORPHAN_FINALIZER),
        }
    }
}

/// The fields of `DeleteOptions` we honour.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub dry_run: bool,
    pub uid: Option<String>,
    pub resource_version: Option<u64>,
    pub propagation: Propagation,
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
        // `orphanDependents` is the deprecated spelling; a policy wins.
        let propagation = match (
            body.get("propagationPolicy").and_then(Value::as_str),
            body.get("orphanDependents").and_then(Value::as_bool),
        ) {
            (Some(policy), _) => Propagation::parse(policy)?,
            (None, Some(true)) => Propagation::Orphan,
            _ => Propagation::Background,
        };
        Ok(DeleteOptions {
            dry_run,
            uid,
            resource_version,
            propagation,
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
        // Namespaces have their own controller; their contents go with them.
        let policy_finalizer = opts.propagation.finalizer().filter(|_| !is_namespace);
        let keep =
            is_namespace || policy_finalizer.is_some() || !objects::finalizers(&value).is_empty();
        let write = if keep {
            if objects::is_terminating(&value) {
                return Ok(current);
            }
            let mut marked = value;
            let mut finalizers = objects::finalizers(&marked);
            let meta = objects::metadata_mut(&mut marked)?;
            meta.insert("deletionTimestamp".into(), json!(objects::now_rfc3339()));
            meta.insert("deletionGracePeriodSeconds".into(), json!(0));
            if let Some(f) = policy_finalizer
                && !finalizers.iter().any(|x| x == f)
            {
                finalizers.push(f.to_string());
                meta.insert("finalizers".into(), json!(finalizers));
            }
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
                    if is_service(def) {
                        app.service_ips.release(&key);
                    }
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
