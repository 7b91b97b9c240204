//! The structured-merge walks over JSON objects, each by the [`Type`] of
//! every place it visits: the set of fields a value sets
//! ([`field_set`]), what changed between two values ([`compare`]), an
//! applied configuration merged into a live object ([`merge`]), and
//! fields removed from an object ([`prune`]).

use serde_json::{Map, Value};

use super::path::{PathElement, values_equal};
use super::set::FieldSet;
use super::types::{ListType, Type};
use crate::Error;

/// The path element of a list item: its keys, or its value for a set.
fn item_element(item: &Value, list: ListType<'_>, ty: Type<'_>, index: usize) -> PathElement {
    match (list, item) {
        (ListType::Map(keys), Value::Object(fields)) => {
            let mut key: Vec<(String, Value)> = keys
                .names()
                .filter_map(|name| {
                    let value = fields.get(name).cloned().or_else(|| ty.key_default(name))?;
                    Some((name.to_string(), value))
                })
                .collect();
            key.sort_by(|a, b| a.0.cmp(&b.0));
            PathElement::Key(key)
        }
        (ListType::Set, _) => PathElement::Value(item.clone()),
        _ => PathElement::Index(index),
    }
}

/// The items of a granular list by path element, in order; the second
/// and later items with the same element are flagged as duplicates.
fn index_items<'v>(
    items: &'v [Value],
    list: ListType<'_>,
    ty: Type<'_>,
) -> Vec<(PathElement, &'v Value, bool)> {
    let mut out: Vec<(PathElement, &Value, bool)> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let element = item_element(item, list, ty, i);
        let duplicate = out.iter().any(|(seen, _, _)| *seen == element);
        out.push((element, item, duplicate));
    }
    out
}

fn is_empty_container(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// Paths a walk skips (a subtree nobody owns on this write).
#[derive(Debug, Clone, Copy)]
pub struct Skip<'a> {
    /// Members are skipped with everything below them.
    pub excluded: Option<&'a FieldSet>,
    /// At the root, only this field is walked (the `/status` subresource).
    pub only: Option<&'a str>,
}

impl<'a> Skip<'a> {
    pub const NONE: Skip<'static> = Skip {
        excluded: None,
        only: None,
    };

    /// Whether `element` is skipped here, else the rule below it.
    fn below(self, element: &PathElement) -> Option<Skip<'a>> {
        if let (Some(only), Some(name)) = (self.only, element.field_name())
            && only != name
        {
            return None;
        }
        if self.excluded.is_some_and(|e| e.has_member(element)) {
            return None;
        }
        Some(Skip {
            excluded: self.excluded.and_then(|e| e.child(element)),
            only: None,
        })
    }
}

/// The fields `value` sets (structured-merge-diff's `ToFieldSet`): every
/// leaf, every atomic map or list as one, every item of a set or
/// associative list, and every key of a map of values.
pub fn field_set(value: &Value, ty: Type<'_>, skip: Skip<'_>) -> FieldSet {
    let mut set = FieldSet::new();
    fill_field_set(value, ty, skip, &mut set);
    set
}

/// Adds to `node` (the set at `value`'s place) the paths below `value`.
fn fill_field_set(value: &Value, ty: Type<'_>, skip: Skip<'_>, node: &mut FieldSet) {
    match value {
        Value::Object(map) if !ty.is_atomic() => {
            for (key, child) in map {
                let element = PathElement::Field(key.clone());
                let Some(below) = skip.below(&element) else {
                    continue;
                };
                let (child_ty, named) = ty.field(key);
                fill_field_set(child, child_ty, below, node.child_mut(&element));
                node.drop_empty_child(&element);
                let leaf = !matches!(child, Value::Object(_) | Value::Array(_))
                    || child.as_object().is_some_and(Map::is_empty)
                    || child_ty.is_atomic()
                    || (child.is_array() && !granular_list(child_ty));
                if leaf || !named {
                    node.members.insert(element);
                }
            }
        }
        Value::Array(items) if granular_list(ty) => {
            let list = ty.list_type();
            let item_ty = ty.element();
            for (element, item, duplicate) in index_items(items, list, ty) {
                if !duplicate {
                    fill_field_set(item, item_ty, Skip::NONE, node.child_mut(&element));
                    node.drop_empty_child(&element);
                }
                node.members.insert(element);
            }
        }
        _ => {}
    }
}

fn granular_list(ty: Type<'_>) -> bool {
    !ty.is_atomic() && !matches!(ty.list_type(), ListType::Atomic)
}

/// What changed from one value to another (structured-merge-diff's
/// `Compare`): fields added, removed and modified. A subtree that appears
/// or goes counts with every path in it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Comparison {
    pub added: FieldSet,
    pub removed: FieldSet,
    pub modified: FieldSet,
}

impl Comparison {
    /// Nothing changed.
    pub fn is_same(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.modified.is_empty()
    }

    /// Added and modified paths: what a writer takes.
    pub fn changed(&self) -> FieldSet {
        self.added.union(&self.modified)
    }
}

/// Compares `old` (absent: an empty object) with `new`.
pub fn compare(old: &Value, new: &Value, ty: Type<'_>, skip: Skip<'_>) -> Comparison {
    let mut out = Comparison::default();
    let mut path = Vec::new();
    compare_at(Some(old), Some(new), ty, skip, &mut path, &mut out);
    out
}

fn compare_at(
    old: Option<&Value>,
    new: Option<&Value>,
    ty: Type<'_>,
    skip: Skip<'_>,
    path: &mut Vec<PathElement>,
    out: &mut Comparison,
) {
    if let (Some(a), Some(b)) = (old, new)
        && a == b
    {
        return;
    }
    let descended = match (old, new) {
        (a, b) if is_granular_map(a, b, ty) => {
            compare_maps(old, new, ty, skip, path, out);
            true
        }
        (a, b) if is_granular_list(a, b, ty) => {
            compare_lists(old, new, ty, path, out);
            true
        }
        _ => false,
    };
    if path.is_empty() {
        return;
    }
    match (old, new, descended) {
        (None, Some(_), _) => out.added.insert(path),
        (Some(_), None, _) => out.removed.insert(path),
        (Some(a), Some(b), false) if !values_equal(a, b) => out.modified.insert(path),
        _ => {}
    }
}

/// Both sides (those present) are non-empty granular maps.
fn is_granular_map(a: Option<&Value>, b: Option<&Value>, ty: Type<'_>) -> bool {
    let shape_ok = |v: Option<&Value>| v.is_none_or(Value::is_object);
    let any_items = [a, b]
        .into_iter()
        .flatten()
        .any(|v| v.as_object().is_some_and(|m| !m.is_empty()));
    !ty.is_atomic() && shape_ok(a) && shape_ok(b) && any_items
}

fn is_granular_list(a: Option<&Value>, b: Option<&Value>, ty: Type<'_>) -> bool {
    let shape_ok = |v: Option<&Value>| v.is_none_or(Value::is_array);
    let any_items = [a, b]
        .into_iter()
        .flatten()
        .any(|v| v.as_array().is_some_and(|l| !l.is_empty()));
    granular_list(ty) && shape_ok(a) && shape_ok(b) && any_items
}

fn compare_maps(
    old: Option<&Value>,
    new: Option<&Value>,
    ty: Type<'_>,
    skip: Skip<'_>,
    path: &mut Vec<PathElement>,
    out: &mut Comparison,
) {
    let empty = Map::new();
    let a = old.and_then(Value::as_object).unwrap_or(&empty);
    let b = new.and_then(Value::as_object).unwrap_or(&empty);
    let keys = a.keys().chain(b.keys().filter(|k| !a.contains_key(*k)));
    for key in keys {
        let element = PathElement::Field(key.clone());
        let Some(below) = skip.below(&element) else {
            continue;
        };
        path.push(element);
        compare_at(a.get(key), b.get(key), ty.field(key).0, below, path, out);
        path.pop();
    }
}

fn compare_lists(
    old: Option<&Value>,
    new: Option<&Value>,
    ty: Type<'_>,
    path: &mut Vec<PathElement>,
    out: &mut Comparison,
) {
    let list = ty.list_type();
    let item_ty = ty.element();
    let a = index_items(
        old.and_then(Value::as_array).map_or(&[], Vec::as_slice),
        list,
        ty,
    );
    let b = index_items(
        new.and_then(Value::as_array).map_or(&[], Vec::as_slice),
        list,
        ty,
    );
    let group = |items: &[(PathElement, &Value, bool)], element: &PathElement| -> Vec<Value> {
        items
            .iter()
            .filter(|(e, _, _)| e == element)
            .map(|(_, v, _)| (*v).clone())
            .collect()
    };
    let elements = a
        .iter()
        .chain(
            b.iter()
                .filter(|(e, _, _)| !a.iter().any(|(x, _, _)| x == e)),
        )
        .filter(|(_, _, duplicate)| !duplicate)
        .map(|(e, _, _)| e.clone())
        .collect::<Vec<_>>();
    for element in elements {
        let (l, r) = (group(&a, &element), group(&b, &element));
        path.push(element);
        match (l.len(), r.len()) {
            (0..=1, 0..=1) => compare_at(l.first(), r.first(), item_ty, Skip::NONE, path, out),
            // Duplicates on both sides compare as one atomic value.
            (_, 2..) if l.len() >= 2 => {
                if l.len() != r.len() || l.iter().zip(&r).any(|(x, y)| !values_equal(x, y)) {
                    out.modified.insert(path);
                }
            }
            (2.., _) => {
                if let Some(first) = r.first() {
                    compare_at(None, Some(first), item_ty, Skip::NONE, path, out);
                }
                out.removed.insert(path);
            }
            _ => {
                if let Some(first) = l.first() {
                    compare_at(Some(first), None, item_ty, Skip::NONE, path, out);
                }
                out.added.insert(path);
            }
        }
        path.pop();
    }
}

/// [`merge`] of a configuration into a whole live object, leaving out the
/// live `metadata.managedFields`: an apply replaces them with the entries
/// it works out, so copying the old ones (the largest part of most
/// objects' metadata) is wasted work on every apply. The live object is
/// copied once, and the configuration merged into that copy in place.
pub fn merge_live(live: &Value, config: &Value, ty: Type<'_>) -> Result<Option<Value>, Error> {
    let trimmed = match live {
        Value::Object(live_map) => Value::Object(
            live_map
                .iter()
                .map(|(key, value)| {
                    let value = match (key.as_str(), value) {
                        ("metadata", Value::Object(meta)) => Value::Object(
                            meta.iter()
                                .filter(|(k, _)| *k != "managedFields")
                                .map(|(k, v)| (k.clone(), v.clone()))
                                .collect(),
                        ),
                        _ => value.clone(),
                    };
                    (key.clone(), value)
                })
                .collect(),
        ),
        other => other.clone(),
    };
    merge(trimmed, config, ty, &mut Vec::new())
}

/// Merges an applied configuration into a live value (structured-merge-
/// diff's `Merge`): the configuration wins field by field in granular maps
/// and item by item in sets and associative lists; atomic values and
/// scalars are replaced. `null` in the configuration removes the field.
/// The live value is taken, and changed in place where the configuration
/// reaches into it.
pub fn merge(
    live: Value,
    config: &Value,
    ty: Type<'_>,
    path: &mut Vec<PathElement>,
) -> Result<Option<Value>, Error> {
    match (live, config) {
        (Value::Object(mut out), Value::Object(c)) if !ty.is_atomic() => {
            for (key, value) in c {
                path.push(PathElement::Field(key.clone()));
                let child_ty = ty.field(key).0;
                match out.get_mut(key) {
                    Some(slot) => {
                        let live_value = std::mem::take(slot);
                        match merge(live_value, value, child_ty, path)? {
                            Some(v) => *slot = v,
                            None => {
                                out.remove(key);
                            }
                        }
                    }
                    None => {
                        if let Some(v) = merge_new(value, child_ty, path)? {
                            out.insert(key.clone(), v);
                        }
                    }
                }
                path.pop();
            }
            Ok(Some(Value::Object(out)))
        }
        (Value::Array(l), Value::Array(c)) if granular_list(ty) => {
            merge_lists(&l, c, ty, path).map(|items| Some(Value::Array(items)))
        }
        _ => merge_new(config, ty, path),
    }
}

/// A configuration value where the live object has none: itself, checked
/// for duplicate list keys and cleaned of `null`s.
fn merge_new(
    config: &Value,
    ty: Type<'_>,
    path: &mut Vec<PathElement>,
) -> Result<Option<Value>, Error> {
    match config {
        Value::Null => Ok(None),
        Value::Object(c) if !ty.is_atomic() => {
            let mut out = Map::new();
            for (key, value) in c {
                path.push(PathElement::Field(key.clone()));
                let merged = merge_new(value, ty.field(key).0, path)?;
                path.pop();
                if let Some(v) = merged {
                    out.insert(key.clone(), v);
                }
            }
            Ok(Some(Value::Object(out)))
        }
        Value::Array(items) if granular_list(ty) => {
            merge_lists(&[], items, ty, path).map(|items| Some(Value::Array(items)))
        }
        other => Ok(Some(other.clone())),
    }
}

/// Merges list items by element, in structured-merge-diff's order: the
/// configuration's items in its order, live-only items kept where they
/// were relative to them.
fn merge_lists(
    live: &[Value],
    config: &[Value],
    ty: Type<'_>,
    path: &mut Vec<PathElement>,
) -> Result<Vec<Value>, Error> {
    let list = ty.list_type();
    let item_ty = ty.element();
    let l = index_items(live, list, ty);
    let r = index_items(config, list, ty);
    if let Some((element, _, _)) = r.iter().find(|(_, _, duplicate)| *duplicate) {
        path.push(element.clone());
        let at = super::path::path_string(path);
        path.pop();
        return Err(Error::InvalidApplyConfiguration {
            path: at,
            reason: "duplicate entries for key".into(),
        });
    }
    let in_config = |e: &PathElement| r.iter().any(|(x, _, _)| x == e);
    let live_item = |e: &PathElement| -> Option<&Value> {
        let mut matching = l.iter().filter(|(x, _, _)| x == e);
        let first = matching.next()?;
        // Duplicated live items are replaced by the configuration's.
        matching.next().is_none().then_some(first.1)
    };
    let merge_item = |element: &PathElement,
                      config_item: &Value,
                      path: &mut Vec<PathElement>|
     -> Result<Option<Value>, Error> {
        path.push(element.clone());
        let merged = match live_item(element) {
            Some(live_value) => merge(live_value.clone(), config_item, item_ty, path),
            None => merge_new(config_item, item_ty, path),
        };
        path.pop();
        merged
    };
    // The order of shared items is the configuration's.
    let mut shared = r
        .iter()
        .filter(|(e, _, _)| l.iter().any(|(x, _, _)| x == e))
        .map(|(e, _, _)| e.clone())
        .collect::<std::collections::VecDeque<_>>();
    let mut out = Vec::with_capacity(l.len().max(r.len()));
    let mut done: Vec<PathElement> = Vec::new();
    let (mut li, mut ri) = (0, 0);
    while li < l.len() || ri < r.len() {
        if li < l.len() && ri < r.len() {
            let element = &l[li].0;
            if *element == r[ri].0 {
                done.push(element.clone());
                out.extend(merge_item(element, r[ri].1, path)?);
                li += 1;
                ri += 1;
                shared.pop_front();
                continue;
            }
            if in_config(element) && shared.front().is_some_and(|next| next != element) {
                li += 1;
                continue;
            }
        }
        if li < l.len() {
            let element = &l[li].0;
            if !in_config(element) {
                out.push(l[li].1.clone());
                li += 1;
                continue;
            } else if done.contains(element) {
                li += 1;
            }
        }
        if ri < r.len() {
            let element = &r[ri].0;
            done.push(element.clone());
            out.extend(merge_item(element, r[ri].1, path)?);
            ri += 1;
            if shared.front().is_some_and(|next| next == element) {
                shared.pop_front();
            }
        }
    }
    Ok(out)
}

/// Removes from `value` every path that is a member of `remove` (with
/// everything below it) unless it is a member of `keep`. A map or list
/// left empty by removals goes too.
pub fn prune(value: &mut Value, ty: Type<'_>, remove: &FieldSet, keep: Option<&FieldSet>) {
    let empty = FieldSet::new();
    let keep = keep.unwrap_or(&empty);
    match value {
        Value::Object(map) if !ty.is_atomic() => {
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                let element = PathElement::Field(key.clone());
                if remove.has_member(&element) && !keep.has_member(&element) {
                    map.remove(&key);
                } else if let (Some(below), Some(child)) =
                    (remove.child(&element), map.get_mut(&key))
                {
                    let was_empty = is_empty_container(child);
                    prune(child, ty.field(&key).0, below, keep.child(&element));
                    if !was_empty && is_empty_container(child) {
                        map.remove(&key);
                    }
                }
            }
        }
        Value::Array(items) if granular_list(ty) => {
            let list = ty.list_type();
            let item_ty = ty.element();
            let elements: Vec<PathElement> = index_items(items, list, ty)
                .into_iter()
                .map(|(e, _, _)| e)
                .collect();
            let mut kept = Vec::with_capacity(items.len());
            for (element, mut item) in elements.into_iter().zip(items.drain(..)) {
                if remove.has_member(&element) && !keep.has_member(&element) {
                    continue;
                }
                if let Some(below) = remove.child(&element) {
                    prune(&mut item, item_ty, below, keep.child(&element));
                }
                kept.push(item);
            }
            *items = kept;
        }
        _ => {}
    }
}

/// `set` with every declared field that has owned paths below it made a
/// member too (structured-merge-diff's `EnsureNamedFieldsAreMembers`): who
/// owns `spec.replicas` also holds on to `spec`.
pub fn with_named_parents(set: &FieldSet, ty: Type<'_>) -> FieldSet {
    let mut out = FieldSet {
        members: set.members.clone(),
        children: Default::default(),
    };
    for (element, child) in &set.children {
        let child_ty = match element {
            PathElement::Field(name) => {
                let (child_ty, named) = ty.field(name);
                if named {
                    out.members.insert(element.clone());
                }
                child_ty
            }
            _ => ty.element(),
        };
        out.children
            .insert(element.clone(), with_named_parents(child, child_ty));
    }
    out
}
