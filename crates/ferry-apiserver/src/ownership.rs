//! Field ownership on every write: the `metadata.managedFields` a create,
//! update, patch or server-side apply leaves on the object, computed with
//! [`ferry_apimachinery::managed`] from the resource's type (built-in tables
//! or the CRD version's schema) and the writer's field manager.
//!
//! Ordinary writes record what they changed (operation `Update`); an apply
//! merges its configuration, may fail with a 409 naming the fields other
//! managers own, and records exactly what it applied (operation `Apply`).

use ferry_apimachinery::managed::{self, Applied, ManagedFields, Scope, Type, Writer};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::objects;
use crate::registry::ResourceDef;
use crate::write_options::WriteOptions;

/// The manager of writes that name none (no `fieldManager`, no
/// User-Agent), as Kubernetes calls it.
const UNKNOWN_MANAGER: &str = "unknown";

/// Who owns the fields of an object after a write.
#[derive(Debug, Clone)]
pub enum Owners {
    /// An ordinary write: recorded from these entries (those the request
    /// sent, when it sent any), or the stored object's.
    Update(Option<ManagedFields>),
    /// A server-side apply, already worked out.
    Applied(ManagedFields),
}

fn type_of(def: &ResourceDef) -> Type<'_> {
    Type::of_resource(&def.group, &def.kind, def.schema.as_deref())
}

fn scope(def: &ResourceDef, opts: &WriteOptions) -> Scope {
    if opts.status_only {
        Scope::Status
    } else {
        Scope::Main {
            status_subresource: def.status,
        }
    }
}

/// Runs `f` with the writer of this request.
fn with_writer<T>(def: &ResourceDef, opts: &WriteOptions, f: impl FnOnce(&Writer<'_>) -> T) -> T {
    let api_version = def.api_version();
    let now = objects::now_rfc3339();
    let writer = Writer {
        manager: opts.field_manager.as_deref().unwrap_or(UNKNOWN_MANAGER),
        api_version: &api_version,
        subresource: if opts.status_only { "status" } else { "" },
        now: &now,
    };
    f(&writer)
}

/// The entries a request's object carries, when it carries readable ones:
/// a client may replace `managedFields` (a list with one empty entry
/// clears them); an empty list or an unreadable one leaves them as stored.
pub fn requested(object: &Value) -> Option<ManagedFields> {
    ManagedFields::of(object).ok().filter(|m| !m.is_empty())
}

/// Server-side apply of `config` over `live` (`None`: a create).
///
/// `kubectl apply --server-side` (manager `kubectl`) moves objects from
/// client-side apply as Kubernetes does: conflicts only on fields whose
/// live values are those of the `last-applied-configuration` annotation
/// are taken over, and an annotation that is there is kept up to date.
pub fn apply(
    def: &ResourceDef,
    opts: &WriteOptions,
    live: Option<&Value>,
    config: &Value,
) -> Result<Applied> {
    let stored = live
        .map(|l| ManagedFields::of(l).unwrap_or_default())
        .unwrap_or_default();
    let run = |force: bool| {
        with_writer(def, opts, |writer| {
            managed::apply(
                live,
                config,
                stored.clone(),
                writer,
                force,
                type_of(def),
                scope(def, opts),
            )
        })
    };
    let kubectl = opts.field_manager.as_deref() == Some(KUBECTL_MANAGER);
    let mut applied = match run(opts.force) {
        Err(ferry_apimachinery::Error::ApplyConflict { conflicts })
            if kubectl && live.is_some_and(|l| all_last_applied(def, l, &conflicts)) =>
        {
            run(true)
        }
        other => other,
    }
    .map_err(|e| apply_error(def, config, e))?;
    if kubectl && live.is_some_and(|l| last_applied(l).is_some()) {
        set_last_applied(&mut applied.object, config);
    }
    Ok(applied)
}

/// The manager `kubectl apply --server-side` uses.
const KUBECTL_MANAGER: &str = "kubectl";
/// Where client-side `kubectl apply` keeps what it applied.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

fn last_applied(object: &Value) -> Option<&str> {
    object
        .pointer("/metadata/annotations")?
        .get(LAST_APPLIED)?
        .as_str()
        .filter(|s| !s.is_empty())
}

/// Whether every conflicting field was applied client-side with the value
/// it still has.
fn all_last_applied(def: &ResourceDef, live: &Value, conflicts: &[managed::Conflict]) -> bool {
    let Some(applied) = last_applied(live).and_then(|s| serde_json::from_str::<Value>(s).ok())
    else {
        return false;
    };
    let ty = type_of(def);
    let fields = managed::field_set(&applied, ty, managed::Skip::NONE);
    let moved = managed::compare(&applied, live, ty, managed::Skip::NONE).modified;
    let allowed = fields.difference(&moved);
    conflicts.iter().all(|c| allowed.has(&c.path))
}

/// The annotation as `kubectl` writes it: the configuration, without the
/// annotation itself.
fn set_last_applied(object: &mut Value, config: &Value) {
    let mut copy = config.clone();
    if let Some(annotations) = copy
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        annotations.remove(LAST_APPLIED);
        if annotations.is_empty()
            && let Some(meta) = copy.get_mut("metadata").and_then(Value::as_object_mut)
        {
            meta.remove("annotations");
        }
    }
    let Ok(text) = serde_json::to_string(&copy) else {
        return;
    };
    if let Some(annotations) = object
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        annotations.insert(LAST_APPLIED.into(), Value::String(text));
    }
}

fn apply_error(def: &ResourceDef, config: &Value, e: ferry_apimachinery::Error) -> Error {
    match e {
        ferry_apimachinery::Error::ApplyConflict { conflicts } => Error::ApplyConflict {
            message: managed::conflicts_message(&conflicts),
            causes: conflicts
                .into_iter()
                .map(|c| (c.field, format!("conflict with {}", c.manager)))
                .collect(),
        },
        ferry_apimachinery::Error::InvalidApplyConfiguration { .. } => Error::BadRequest(format!(
            "failed to apply {} {:?}: {e}",
            def.kind,
            objects::meta_str(config, "name")
        )),
        other => Error::BadRequest(other.to_string()),
    }
}

/// Sets the `managedFields` of an object about to be created.
pub fn record_create(def: &ResourceDef, opts: &WriteOptions, owners: Owners, object: &mut Value) {
    let managed = match owners {
        Owners::Applied(managed) => managed,
        Owners::Update(requested) => with_writer(def, opts, |writer| {
            managed::update(
                None,
                object,
                requested.unwrap_or_default(),
                writer,
                type_of(def),
                scope(def, opts),
            )
        }),
    };
    managed.store_in(object);
}

/// Sets the `managedFields` of `new`, about to replace `live`.
pub fn record_update(
    def: &ResourceDef,
    opts: &WriteOptions,
    live: &Value,
    owners: Owners,
    new: &mut Value,
) {
    let managed = match owners {
        Owners::Applied(managed) => managed,
        Owners::Update(requested) => {
            // Through a subresource only the stored entries count.
            let base = match requested.filter(|_| !opts.status_only) {
                Some(requested) => requested,
                None => ManagedFields::of(live).unwrap_or_default(),
            };
            with_writer(def, opts, |writer| {
                managed::update(
                    Some(live),
                    new,
                    base,
                    writer,
                    type_of(def),
                    scope(def, opts),
                )
            })
        }
    };
    managed.store_in(new);
}
