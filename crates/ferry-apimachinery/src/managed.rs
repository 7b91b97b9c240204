//! Field ownership and server-side apply, following structured-merge-diff
//! (the library kube-apiserver uses) on `serde_json::Value` objects.
//!
//! Every write records who set which fields in `metadata.managedFields`:
//! one entry per manager and operation, each a [`FieldSet`] written as
//! `fieldsV1` (`f:` fields, `k:` associative-list items by their keys, `v:`
//! set items). [`update`] is an ordinary create / update / patch: the
//! writer takes every field it changed, from whoever owned it. [`apply`] is
//! server-side apply: the applied configuration is merged into the live
//! object by the type's rules (granular maps, atomic lists unless they are
//! sets or associative lists, see [`Type`]), the applier owns exactly the
//! fields of its configuration, fields it applied before and no longer
//! applies are removed unless someone else owns them, and changing a field
//! another manager owns is a [`Conflict`] unless forced (force takes the
//! field over). Values that agree are owned jointly.
//!
//! It is not a conversion layer: every manager's fields are read in the
//! resource's one served version.

mod builtin;
mod path;
mod set;
mod types;
mod walk;

use serde_json::{Map, Value, json};

pub use path::{PathElement, path_string};
pub use set::FieldSet;
pub use types::Type;
pub use walk::{Comparison, Skip, compare, field_set};

use crate::Error;

/// The kind of write that gave a manager its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    Apply,
    Update,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub manager: String,
    pub operation: Operation,
    pub api_version: String,
    /// `""` for the main resource, `"status"` for the status subresource.
    pub subresource: String,
    /// When the manager last changed something (RFC 3339).
    pub time: Option<String>,
    pub fields: FieldSet,
}

impl Entry {
    /// Whether this entry is the one `writer` keeps for `operation`: an
    /// applier has one entry whatever the version, an updater one per
    /// version, each per subresource.
    fn belongs_to(&self, writer: &Writer<'_>, operation: Operation) -> bool {
        self.manager == writer.manager
            && self.operation == operation
            && self.subresource == writer.subresource
            && (operation == Operation::Apply || self.api_version == writer.api_version)
    }

    /// The manager as Kubernetes names it in conflicts:
    /// `"kubectl" using v1`, `"ctl" with subresource "status"`.
    pub fn display_name(&self) -> String {
        let mut out = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            out.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == Operation::Update {
            out.push_str(&format!(" using {}", self.api_version));
        }
        out
    }

    fn seconds(&self) -> i64 {
        self.time
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map_or(0, |t| t.timestamp())
    }
}

/// Most `Update` entries kept; older ones are merged into one entry named
/// [`ANCIENT_CHANGES`], as Kubernetes caps them.
pub const MAX_UPDATE_MANAGERS: usize = 10;
/// The manager the oldest updates are merged into past the cap.
pub const ANCIENT_CHANGES: &str = "ancient-changes";
/// Who owns what an object held before its first apply, when nothing
/// tracked its fields until then.
pub const BEFORE_FIRST_APPLY: &str = "before-first-apply";

/// The `metadata.managedFields` of an object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManagedFields {
    entries: Vec<Entry>,
}

impl ManagedFields {
    /// Reads `metadata.managedFields` of `object` (none: empty).
    pub fn of(object: &Value) -> Result<Self, Error> {
        match object.pointer("/metadata/managedFields") {
            None | Some(Value::Null) => Ok(ManagedFields::default()),
            Some(list) => Self::from_list(list),
        }
    }

    /// Reads a `managedFields` list.
    pub fn from_list(list: &Value) -> Result<Self, Error> {
        let invalid = |reason: String| Error::InvalidManagedFields { reason };
        let Value::Array(items) = list else {
            return Err(invalid(format!("must be a list, got {list}")));
        };
        let mut entries = Vec::with_capacity(items.len());
        for item in items {
            let text = |name: &str| {
                item.get(name)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            if !item.is_object() {
                return Err(invalid(format!("an entry must be an object, got {item}")));
            }
            let fields_type = text("fieldsType");
            if !fields_type.is_empty() && fields_type != "FieldsV1" {
                return Err(invalid(format!(
                    "fieldsType {fields_type:?} is not supported (only FieldsV1)"
                )));
            }
            let fields = match item.get("fieldsV1") {
                None | Some(Value::Null) => FieldSet::new(),
                Some(v) => FieldSet::from_fields_v1(v).map_err(invalid)?,
            };
            let entry = Entry {
                manager: text("manager"),
                operation: if text("operation") == "Apply" {
                    Operation::Apply
                } else {
                    Operation::Update
                },
                api_version: text("apiVersion"),
                subresource: text("subresource"),
                time: item.get("time").and_then(Value::as_str).map(str::to_string),
                fields,
            };
            let duplicate = entries.iter().any(|e: &Entry| {
                e.manager == entry.manager
                    && e.operation == entry.operation
                    && e.subresource == entry.subresource
                    && (e.operation == Operation::Apply || e.api_version == entry.api_version)
            });
            if duplicate {
                return Err(invalid(format!(
                    "duplicate entry for manager {}",
                    entry.display_name()
                )));
            }
            entries.push(entry);
        }
        Ok(ManagedFields { entries })
    }

    /// The entries, in no particular order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// True when no manager owns anything.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The `managedFields` list, ordered as Kubernetes orders it (appliers
    /// first, then oldest first).
    pub fn to_list(&self) -> Value {
        let mut sorted: Vec<&Entry> = self.entries.iter().collect();
        sorted.sort_by(|p, q| {
            (
                p.operation,
                p.seconds(),
                &p.manager,
                &p.api_version,
                &p.subresource,
            )
                .cmp(&(
                    q.operation,
                    q.seconds(),
                    &q.manager,
                    &q.api_version,
                    &q.subresource,
                ))
        });
        Value::Array(
            sorted
                .into_iter()
                .map(|e| {
                    let mut item = Map::new();
                    item.insert("manager".into(), json!(e.manager));
                    item.insert("operation".into(), json!(e.operation.as_str()));
                    item.insert("apiVersion".into(), json!(e.api_version));
                    if let Some(time) = &e.time {
                        item.insert("time".into(), json!(time));
                    }
                    item.insert("fieldsType".into(), json!("FieldsV1"));
                    item.insert("fieldsV1".into(), e.fields.to_fields_v1());
                    if !e.subresource.is_empty() {
                        item.insert("subresource".into(), json!(e.subresource));
                    }
                    Value::Object(item)
                })
                .collect(),
        )
    }

    /// Writes these entries into `object`'s metadata (none: the field goes).
    pub fn store_in(&self, object: &mut Value) {
        let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
            return;
        };
        if self.entries.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), self.to_list());
        }
    }

    fn position(&self, writer: &Writer<'_>, operation: Operation) -> Option<usize> {
        self.entries
            .iter()
            .position(|e| e.belongs_to(writer, operation))
    }

    /// The writer's entry for `operation`, created empty if missing.
    fn entry_mut(&mut self, writer: &Writer<'_>, operation: Operation) -> &mut Entry {
        let index = match self.position(writer, operation) {
            Some(i) => i,
            None => {
                self.entries.push(Entry {
                    manager: writer.manager.to_string(),
                    operation,
                    api_version: writer.api_version.to_string(),
                    subresource: writer.subresource.to_string(),
                    time: None,
                    fields: FieldSet::new(),
                });
                self.entries.len() - 1
            }
        };
        &mut self.entries[index]
    }

    /// Drops entries that own nothing and merges the oldest updaters past
    /// [`MAX_UPDATE_MANAGERS`].
    fn tidy(&mut self) {
        self.entries.retain(|e| !e.fields.is_empty());
        let mut updaters: Vec<usize> = (0..self.entries.len())
            .filter(|&i| self.entries[i].operation == Operation::Update)
            .collect();
        if updaters.len() <= MAX_UPDATE_MANAGERS {
            return;
        }
        updaters.sort_by_key(|&i| (self.entries[i].seconds(), self.entries[i].manager.clone()));
        let excess = updaters.len() - MAX_UPDATE_MANAGERS;
        // The oldest becomes the bucket; the next `excess` join it.
        let merged: Vec<usize> = updaters[..=excess].to_vec();
        let mut bucket = self.entries[merged[0]].clone();
        bucket.manager = ANCIENT_CHANGES.into();
        bucket.subresource.clear();
        for &i in &merged[1..] {
            bucket.fields.union_with(&self.entries[i].fields);
            bucket.time = self.entries[i].time.clone();
        }
        let mut index = 0;
        self.entries.retain(|_| {
            let keep = !merged.contains(&index);
            index += 1;
            keep
        });
        match self
            .entries
            .iter_mut()
            .find(|e| e.manager == ANCIENT_CHANGES && e.operation == Operation::Update)
        {
            Some(existing) => {
                existing.fields.union_with(&bucket.fields);
                existing.time = bucket.time;
            }
            None => self.entries.push(bucket),
        }
    }
}

/// The manager of one write.
#[derive(Debug, Clone, Copy)]
pub struct Writer<'a> {
    pub manager: &'a str,
    /// The resource's `apiVersion`.
    pub api_version: &'a str,
    /// `""`, or `"status"` for the status subresource.
    pub subresource: &'a str,
    /// Now, as Kubernetes writes timestamps.
    pub now: &'a str,
}

/// Where a write may set fields, which bounds what it can own: through the
/// main resource of a kind with a status subresource, everything but
/// `status`; through `/status`, only `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Main { status_subresource: bool },
    Status,
}

/// Server-owned metadata: never owned, never compared.
const SYSTEM_METADATA: &[&str] = &[
    "managedFields",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "uid",
    "selfLink",
];

/// Fields an entry loses after every write of its manager (`apiVersion`,
/// `kind`, the object's name and the other metadata the server sets).
fn strip(fields: &mut FieldSet) {
    for top in ["apiVersion", "kind", "metadata"] {
        fields.members.remove(&PathElement::Field(top.into()));
    }
    let meta = PathElement::Field("metadata".into());
    if let Some(child) = fields.children.get_mut(&meta) {
        for name in ["name", "namespace", "clusterName"]
            .iter()
            .chain(SYSTEM_METADATA)
        {
            child.members.remove(&PathElement::Field((*name).into()));
        }
        fields.drop_empty_child(&meta);
    }
}

impl Scope {
    /// The subtrees nobody owns on a write in this scope, built once per
    /// scope: every write asks for it.
    fn excluded(self) -> &'static FieldSet {
        static MAIN: std::sync::OnceLock<FieldSet> = std::sync::OnceLock::new();
        static MAIN_WITH_STATUS: std::sync::OnceLock<FieldSet> = std::sync::OnceLock::new();
        static STATUS: std::sync::OnceLock<FieldSet> = std::sync::OnceLock::new();
        let cell = match self {
            Scope::Main {
                status_subresource: false,
            } => &MAIN,
            Scope::Main {
                status_subresource: true,
            } => &MAIN_WITH_STATUS,
            Scope::Status => &STATUS,
        };
        cell.get_or_init(|| self.build_excluded())
    }

    fn build_excluded(self) -> FieldSet {
        let mut set = FieldSet::new();
        for name in SYSTEM_METADATA {
            set.insert(&[
                PathElement::Field("metadata".into()),
                PathElement::Field((*name).into()),
            ]);
        }
        if self
            == (Scope::Main {
                status_subresource: true,
            })
        {
            set.insert(&[PathElement::Field("status".into())]);
        }
        set
    }

    fn skip(self, excluded: &'static FieldSet) -> Skip<'static> {
        Skip {
            excluded: Some(excluded),
            only: (self == Scope::Status).then_some("status"),
        }
    }
}

/// The object and its owners after an apply.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub object: Value,
    pub managed: ManagedFields,
}

/// Records an ordinary write (create, update, patch) of `new` over `live`
/// (`None`: a create): the writer takes every field it added or changed,
/// and nobody owns a field that went. An object that existed with no
/// owners at all stays untracked, as Kubernetes leaves objects made before
/// field tracking.
pub fn update(
    live: Option<&Value>,
    new: &Value,
    mut managed: ManagedFields,
    writer: &Writer<'_>,
    ty: Type<'_>,
    scope: Scope,
) -> ManagedFields {
    if live.is_some() && managed.is_empty() {
        return managed;
    }
    let empty = Value::Object(Map::new());
    let comparison = compare(
        live.unwrap_or(&empty),
        new,
        ty,
        scope.skip(scope.excluded()),
    );
    if comparison.is_same() {
        return managed;
    }
    let changed = comparison.changed();
    for entry in &mut managed.entries {
        entry.fields = entry
            .fields
            .difference(&comparison.removed)
            .difference(&changed);
    }
    let mut taken = changed;
    strip(&mut taken);
    if !taken.is_empty() {
        let entry = managed.entry_mut(writer, Operation::Update);
        entry.fields.union_with(&taken);
        entry.time = Some(writer.now.to_string());
    }
    managed.tidy();
    managed
}

/// One field another manager owns that an apply would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The manager, as [`Entry::display_name`] prints it.
    pub manager: String,
    /// The field, as Kubernetes prints it (`.spec.replicas`).
    pub field: String,
    /// The field's path.
    pub path: Vec<PathElement>,
}

/// Kubernetes' message for a failed apply.
pub fn conflicts_message(conflicts: &[Conflict]) -> String {
    if let [one] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            one.manager, one.field
        );
    }
    let mut managers: Vec<&str> = conflicts.iter().map(|c| c.manager.as_str()).collect();
    managers.sort_unstable();
    managers.dedup();
    let mut lines = Vec::new();
    for manager in managers {
        lines.push(format!("conflicts with {manager}:"));
        for c in conflicts.iter().filter(|c| c.manager == manager) {
            lines.push(format!("- {}", c.field));
        }
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

/// Server-side apply of `config` by `writer` onto `live` (`None`: the
/// object is created). Fails with [`Error::ApplyConflict`] when it would
/// change fields other managers own, unless `force`.
pub fn apply(
    live: Option<&Value>,
    config: &Value,
    mut managed: ManagedFields,
    writer: &Writer<'_>,
    force: bool,
    ty: Type<'_>,
    scope: Scope,
) -> Result<Applied, Error> {
    if config
        .pointer("/metadata/managedFields")
        .is_some_and(|v| !v.is_null())
    {
        return Err(Error::InvalidApplyConfiguration {
            path: ".metadata.managedFields".into(),
            reason: "must be nil in an apply configuration".into(),
        });
    }
    let empty = Value::Object(Map::new());
    let live_value = live.unwrap_or(&empty);
    if live.is_some() && managed.is_empty() {
        let before = Writer {
            manager: BEFORE_FIRST_APPLY,
            ..*writer
        };
        managed = update(None, live_value, managed, &before, ty, scope);
    }
    let skip = scope.skip(scope.excluded());
    if live.is_none() && managed.is_empty() {
        return apply_create(config, writer, ty, skip);
    }
    let mut object = walk::merge_live(live_value, config, ty)?.unwrap_or(empty.clone());
    let applied = field_set(config, ty, skip);
    let previous = managed.position(writer, Operation::Apply);
    let last = previous.map(|i| managed.entries[i].fields.clone());
    managed.entry_mut(writer, Operation::Apply).fields = applied.clone();
    // Only fields applied last time and not now are pruned: re-applying
    // the same fields (a controller's steady state) drops none.
    let drops_some = |last: &&FieldSet| !last.difference(&applied).is_empty();
    if let Some(last) = last.as_ref().filter(drops_some) {
        let mut owned = FieldSet::new();
        for entry in &managed.entries {
            owned.union_with(&entry.fields);
        }
        walk::prune(
            &mut object,
            ty,
            &walk::with_named_parents(last, ty),
            Some(&walk::with_named_parents(&owned, ty)),
        );
    }
    let comparison = compare(live_value, &object, ty, skip);
    let changed = comparison.changed();
    let mut conflicts = Vec::new();
    for entry in &mut managed.entries {
        if entry.belongs_to(writer, Operation::Apply) {
            continue;
        }
        let taken = entry.fields.intersection(&changed);
        for path in taken.paths() {
            conflicts.push(Conflict {
                manager: entry.display_name(),
                field: path_string(&path),
                path,
            });
        }
        entry.fields = entry
            .fields
            .difference(&taken)
            .difference(&comparison.removed);
    }
    if !force && !conflicts.is_empty() {
        return Err(Error::ApplyConflict { conflicts });
    }
    let entry = managed.entry_mut(writer, Operation::Apply);
    strip(&mut entry.fields);
    if !comparison.is_same() || last.as_ref() != Some(&entry.fields) {
        entry.time = Some(writer.now.to_string());
    }
    managed.tidy();
    Ok(Applied { object, managed })
}

/// [`apply`] of a new object nobody owns yet: the configuration (its
/// `null`s dropped) owned by the applier alone. The general path would
/// find the same: nothing to prune, no one to conflict with, every field
/// added — without comparing the object with nothing field by field.
fn apply_create(
    config: &Value,
    writer: &Writer<'_>,
    ty: Type<'_>,
    skip: Skip<'_>,
) -> Result<Applied, Error> {
    let object = walk::merge(Value::Object(Map::new()), config, ty, &mut Vec::new())?
        .unwrap_or_else(|| Value::Object(Map::new()));
    let mut fields = field_set(config, ty, skip);
    strip(&mut fields);
    let mut managed = ManagedFields::default();
    if !fields.is_empty() {
        managed.entries.push(Entry {
            manager: writer.manager.to_string(),
            operation: Operation::Apply,
            api_version: writer.api_version.to_string(),
            subresource: writer.subresource.to_string(),
            time: Some(writer.now.to_string()),
            fields,
        });
    }
    Ok(Applied { object, managed })
}

#[cfg(test)]
mod tests;
