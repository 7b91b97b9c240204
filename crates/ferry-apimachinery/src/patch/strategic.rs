//! The strategic merge algorithm, after
//! `k8s.io/apimachinery/pkg/util/strategicpatch` (`mergeMap`, `mergeSlice`,
//! `mergePatchIntoOriginal`, `normalizeElementOrder`) with the server's
//! options (`IgnoreUnmatchedNulls`, `MergeParallelList`).
//!
//! One deliberate difference: values the patch introduces are cleaned of
//! `null`s and `$`-directives before they are stored. Kubernetes gets that
//! for free by decoding into typed structs; ferry stores JSON as it is.

use serde_json::{Map, Value};

use super::schema::{ListStrategy, list_strategy};
use crate::Error;

const PATCH_DIRECTIVE: &str = "$patch";
const RETAIN_KEYS_DIRECTIVE: &str = "$retainKeys";
const SET_ELEMENT_ORDER_PREFIX: &str = "$setElementOrder/";
const DELETE_FROM_PRIMITIVE_LIST_PREFIX: &str = "$deleteFromPrimitiveList/";

pub(super) struct Merger<'a> {
    kind: &'a str,
    /// Object keys from the root to the value being merged; list elements
    /// add no segment, matching the paths in [`super::schema`].
    path: Vec<String>,
}

impl<'a> Merger<'a> {
    pub(super) fn new(kind: &'a str) -> Self {
        Merger {
            kind,
            path: Vec::new(),
        }
    }

    fn error(&self, reason: String) -> Error {
        Error::InvalidStrategicMergePatch {
            path: self.path.join("."),
            reason,
        }
    }

    fn current_list_strategy(&self) -> Option<ListStrategy> {
        let segments: Vec<&str> = self.path.iter().map(String::as_str).collect();
        list_strategy(self.kind, &segments)
    }

    /// Runs `f` with `field` pushed onto the path.
    fn in_field<T>(&mut self, field: &str, f: impl FnOnce(&mut Self) -> T) -> T {
        self.path.push(field.to_string());
        let result = f(self);
        self.path.pop();
        result
    }

    /// `mergeMap`: merges `patch` into `original`, both JSON objects.
    pub(super) fn merge_object(
        &mut self,
        mut original: Map<String, Value>,
        mut patch: Map<String, Value>,
    ) -> Result<Map<String, Value>, Error> {
        if let Some(directive) = patch.remove(PATCH_DIRECTIVE) {
            match directive.as_str() {
                // The rest of the patch object is the new value, cleaned.
                Some("replace") => return self.merge_object(Map::new(), patch),
                Some("delete") => return Ok(Map::new()),
                // Kubernetes rejects `merge` on objects; it can only mean the
                // default, so accept it as that.
                Some("merge") => {}
                _ => return Err(self.error(format!("unknown $patch directive {directive}"))),
            }
        }

        if let Some(retain_keys) = patch.remove(RETAIN_KEYS_DIRECTIVE) {
            let retain_keys = string_list(&retain_keys).ok_or_else(|| {
                self.error(format!(
                    "$retainKeys must be a list of strings, got {retain_keys}"
                ))
            })?;
            original.retain(|key, _| retain_keys.contains(&key.as_str()));
        }

        // Split the patch into directives and plain fields. Unknown
        // `$`-keys are dropped here so they never reach storage.
        let mut element_orders = Vec::new();
        let mut primitive_deletions = Vec::new();
        let mut fields = Map::new();
        for (key, value) in patch {
            if let Some(field) = key.strip_prefix(SET_ELEMENT_ORDER_PREFIX) {
                let Value::Array(order) = value else {
                    return Err(self.error(format!("{key} must be a list, got {value}")));
                };
                element_orders.push((field.to_string(), order));
            } else if let Some(field) = key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST_PREFIX) {
                let Value::Array(deletions) = value else {
                    return Err(self.error(format!("{key} must be a list, got {value}")));
                };
                primitive_deletions.push((field.to_string(), deletions));
            } else if !key.starts_with('$') {
                fields.insert(key, value);
            }
        }

        // `mergePatchIntoOriginal`: lists with an explicit element order are
        // merged first and then put in that order.
        for (field, order) in element_orders {
            let original_list = original.remove(&field);
            let patch_list = fields.remove(&field);
            if original_list.is_none() && patch_list.is_none() {
                continue;
            }
            if patch_list.as_ref().is_some_and(Value::is_null) {
                // An explicit null deletes the list; the order is moot.
                continue;
            }
            let ordered = self.in_field(&field, |merger| -> Result<Vec<Value>, Error> {
                let strategy = merger.current_list_strategy();
                let original_items = match original_list {
                    Some(Value::Array(items)) => items,
                    _ => Vec::new(),
                };
                let merged = match patch_list {
                    Some(Value::Array(patch_items)) => {
                        merger.merge_list(original_items.clone(), patch_items, strategy)?
                    }
                    Some(other) => {
                        return Err(merger.error(format!(
                            "expected a list to go with $setElementOrder, got {other}"
                        )));
                    }
                    None => original_items.clone(),
                };
                let merge_key = merge_key_of(strategy);
                let (listed, server_only): (Vec<Value>, Vec<Value>) = merged
                    .into_iter()
                    .partition(|item| index_in(&order, item, merge_key).is_some());
                Ok(normalize_element_order(
                    listed,
                    server_only,
                    &order,
                    &original_items,
                    merge_key,
                ))
            })?;
            original.insert(field, Value::Array(ordered));
        }

        for (field, patch_value) in fields {
            if patch_value.is_null() {
                original.remove(&field);
                continue;
            }
            let original_value = original.remove(&field);
            let merged = self.in_field(&field, |merger| {
                merger.merge_value(original_value, patch_value)
            })?;
            original.insert(field, merged);
        }

        // `$deleteFromPrimitiveList/<field>`: what `kubectl apply` sends to
        // drop a value it added earlier to a merged scalar list.
        for (field, deletions) in primitive_deletions {
            if let Some(Value::Array(items)) = original.get_mut(&field) {
                items.retain(|item| !deletions.iter().any(|deleted| same_value(item, deleted)));
            }
        }

        Ok(original)
    }

    /// Merges one field's patch value into its original value (if any).
    fn merge_value(&mut self, original: Option<Value>, patch: Value) -> Result<Value, Error> {
        match (original, patch) {
            (Some(Value::Object(original)), Value::Object(patch)) => {
                Ok(Value::Object(self.merge_object(original, patch)?))
            }
            (Some(Value::Array(original)), Value::Array(patch)) => {
                let strategy = self.current_list_strategy();
                Ok(Value::Array(self.merge_list(original, patch, strategy)?))
            }
            // A new field, or one whose type changes: the patch value wins,
            // cleaned by merging it into nothing.
            (_, Value::Object(patch)) => Ok(Value::Object(self.merge_object(Map::new(), patch)?)),
            (_, Value::Array(patch)) => {
                let strategy = self.current_list_strategy();
                Ok(Value::Array(self.merge_list(
                    Vec::new(),
                    patch,
                    strategy,
                )?))
            }
            (_, scalar) => Ok(scalar),
        }
    }

    /// `mergeSliceHandler` + `mergeSlice`.
    fn merge_list(
        &mut self,
        original: Vec<Value>,
        patch: Vec<Value>,
        strategy: Option<ListStrategy>,
    ) -> Result<Vec<Value>, Error> {
        let Some(strategy) = strategy else {
            // Atomic list: the patch replaces it. Directive-only elements
            // (`{"$patch": …}`) have no meaning here and are dropped.
            let mut replaced = Vec::with_capacity(patch.len());
            for item in patch {
                match item {
                    Value::Object(fields) if fields.contains_key(PATCH_DIRECTIVE) => {}
                    Value::Object(fields) => {
                        replaced.push(Value::Object(self.merge_object(Map::new(), fields)?))
                    }
                    other => replaced.push(other),
                }
            }
            return Ok(replaced);
        };
        if original.is_empty() && patch.is_empty() {
            return Ok(original);
        }
        let (merged, patch_items, merge_key) = match strategy {
            ListStrategy::MergePrimitives => {
                if let Some(object) = patch
                    .iter()
                    .find(|item| item.is_object() || item.is_array())
                {
                    return Err(self.error(format!(
                        "expected a list of scalars, found element {object}"
                    )));
                }
                // Set union, keeping the first occurrence of each value.
                let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
                for item in original.iter().chain(patch.iter()) {
                    if !merged.iter().any(|existing| same_value(existing, item)) {
                        merged.push(item.clone());
                    }
                }
                (merged, patch, None)
            }
            ListStrategy::MergeByKey(key) => {
                let (merged, remaining_patch) =
                    self.merge_keyed_list(original.clone(), patch, key)?;
                (merged, remaining_patch, Some(key))
            }
        };
        if patch_items.is_empty() {
            return Ok(merged);
        }
        // Items named in the patch take the patch's order; the others keep
        // theirs, interleaved as Kubernetes does.
        let (in_patch, server_only): (Vec<Value>, Vec<Value>) = merged
            .into_iter()
            .partition(|item| index_in(&patch_items, item, merge_key).is_some());
        Ok(normalize_element_order(
            in_patch,
            server_only,
            &patch_items,
            &original,
            merge_key,
        ))
    }

    /// `mergeSliceWithSpecialElements` + `mergeSliceWithoutSpecialElements`:
    /// returns the merged list and the patch elements that were merged (for
    /// ordering).
    fn merge_keyed_list(
        &mut self,
        mut original: Vec<Value>,
        patch: Vec<Value>,
        merge_key: &str,
    ) -> Result<(Vec<Value>, Vec<Value>), Error> {
        let mut plain_items = Vec::with_capacity(patch.len());
        let mut replace = false;
        for item in patch {
            let Value::Object(fields) = &item else {
                return Err(self.error(format!(
                    "expected list elements to be objects merged by {merge_key:?}, found {item}"
                )));
            };
            match fields.get(PATCH_DIRECTIVE) {
                None => plain_items.push(item),
                Some(Value::String(directive)) if directive == "delete" => {
                    if fields.get(merge_key).is_none() {
                        return Err(self.error(format!(
                            "element {item} does not contain declared merge key {merge_key:?}"
                        )));
                    }
                    original.retain(|existing| !same_element(existing, &item, merge_key));
                }
                Some(Value::String(directive)) if directive == "replace" => replace = true,
                Some(Value::String(directive)) if directive == "merge" => {
                    return Err(self
                        .error("merging lists cannot yet be specified in the patch".to_string()));
                }
                Some(other) => {
                    return Err(
                        self.error(format!("unknown $patch directive {other} in list element"))
                    );
                }
            }
        }
        if replace {
            // `{"$patch": "replace"}` as an element: the other elements are
            // the whole new list.
            let mut replaced = Vec::with_capacity(plain_items.len());
            for item in plain_items {
                replaced.push(self.merge_value(None, item)?);
            }
            return Ok((replaced, Vec::new()));
        }
        for item in &plain_items {
            if item.get(merge_key).is_none() {
                return Err(self.error(format!(
                    "element {item} does not contain declared merge key {merge_key:?}"
                )));
            }
            let position = original
                .iter()
                .position(|existing| same_element(existing, item, merge_key));
            match position {
                Some(position) => {
                    let existing = std::mem::take(&mut original[position]);
                    original[position] = self.merge_value(Some(existing), item.clone())?;
                }
                None => original.push(self.merge_value(None, item.clone())?),
            }
        }
        Ok((original, plain_items))
    }
}

fn merge_key_of(strategy: Option<ListStrategy>) -> Option<&'static str> {
    match strategy {
        Some(ListStrategy::MergeByKey(key)) => Some(key),
        _ => None,
    }
}

fn string_list(value: &Value) -> Option<Vec<&str>> {
    value.as_array()?.iter().map(Value::as_str).collect()
}

/// JSON equality, except that numbers compare by value (`80` == `80.0`), so
/// merge keys such as `containerPort` match however they were written.
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// Whether list elements `a` and `b` are the same element: equal merge keys.
/// Ports (`port`, `containerPort`) are told apart by `protocol` too when both
/// name one, as server-side apply's list-map keys do: with the key alone, a
/// UDP and a TCP port of the same number (DNS on 53) merged into one
/// (kubernetes#39188).
fn same_element(a: &Value, b: &Value, merge_key: &str) -> bool {
    let key_matches = match (a.get(merge_key), b.get(merge_key)) {
        (Some(x), Some(y)) => same_value(x, y),
        _ => false,
    };
    if !key_matches {
        return false;
    }
    if matches!(merge_key, "port" | "containerPort")
        && let (Some(x), Some(y)) = (a.get("protocol"), b.get("protocol"))
    {
        return x == y;
    }
    true
}

/// Position of `item` in `list`: by merge key for lists of objects, by value
/// for lists of scalars (or when no key is declared).
fn index_in(list: &[Value], item: &Value, merge_key: Option<&str>) -> Option<usize> {
    if let Some(key) = merge_key
        && item.get(key).is_some()
    {
        return list
            .iter()
            .position(|candidate| same_element(candidate, item, key));
    }
    list.iter()
        .position(|candidate| same_value(candidate, item))
}

/// `normalizeElementOrder`: sorts the patch-named items by `patch_order`,
/// the server-only items by `server_order`, then interleaves them
/// (`mergeSortedSlice`): a server-only item goes before a patch item only
/// when both appear in `server_order` and it came first there.
fn normalize_element_order(
    mut patch_items: Vec<Value>,
    mut server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: Option<&str>,
) -> Vec<Value> {
    let position =
        |order: &[Value], item: &Value| index_in(order, item, merge_key).unwrap_or(usize::MAX);
    patch_items.sort_by_key(|item| position(patch_order, item));
    server_only.sort_by_key(|item| position(server_order, item));

    let mut result = Vec::with_capacity(patch_items.len() + server_only.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = patch_items.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => match (
                index_in(server_order, l, merge_key),
                index_in(server_order, r, merge_key),
            ) {
                (Some(li), Some(ri)) => li < ri,
                _ => false,
            },
        };
        let next = if take_left { left.next() } else { right.next() };
        result.extend(next);
    }
    result
}
