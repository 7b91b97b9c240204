//! The three PATCH body formats the API server accepts:
//!
//! - `application/merge-patch+json`: [`merge_patch`] (RFC 7386), also what
//!   kubectl sends for custom resources;
//! - `application/json-patch+json`: [`json_patch()`] (RFC 6902);
//! - `application/strategic-merge-patch+json`: [`strategic_merge_patch`],
//!   what `kubectl apply` / `label` / `annotate` / `patch` send for built-in
//!   kinds. Lists merge by key where Kubernetes declares
//!   `patchStrategy: merge` (see [`schema`]), and the `$patch`,
//!   `$setElementOrder/…`, `$deleteFromPrimitiveList/…` and `$retainKeys`
//!   directives are honoured, following
//!   `k8s.io/apimachinery/pkg/util/strategicpatch`.

use serde_json::{Map, Value};

use crate::Error;

pub mod schema;
mod strategic;

/// Applies an RFC 7386 JSON merge patch: objects merge recursively, `null`
/// deletes a key, anything else (including arrays) replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch_fields) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(target_fields) = target {
        for (key, patch_value) in patch_fields {
            if patch_value.is_null() {
                target_fields.remove(key);
            } else {
                merge_patch(
                    target_fields.entry(key.clone()).or_insert(Value::Null),
                    patch_value,
                );
            }
        }
    }
}

/// Applies an RFC 6902 JSON patch (a list of `add` / `remove` / `replace` /
/// `move` / `copy` / `test` operations). On error `target` is unchanged.
pub fn json_patch(target: &mut Value, patch: &Value) -> Result<(), Error> {
    let operations: json_patch::Patch =
        serde_json::from_value(patch.clone()).map_err(|error| Error::InvalidJsonPatch {
            reason: format!("body is not a list of operations: {error}"),
        })?;
    // Patch a copy and keep it only on success: all-or-nothing without the
    // crate's own rollback, which panics ("unable to undo applied patches")
    // on some failed multi-operation patches (add, move of the parent, then
    // a failing op).
    let mut patched = target.clone();
    json_patch::patch_unsafe(&mut patched, &operations).map_err(|error| {
        Error::InvalidJsonPatch {
            reason: error.to_string(),
        }
    })?;
    *target = patched;
    Ok(())
}

/// Applies a Kubernetes strategic merge patch to an object of the given
/// `group` (`""` for the core group) and `kind`.
///
/// For the built-in kinds ferry serves (see [`schema::is_builtin`]) this is
/// the strategic merge of `kubectl apply`; for anything else (custom
/// resources) it falls back to [`merge_patch`]. On error `target` is
/// unchanged.
pub fn strategic_merge_patch(
    target: &mut Value,
    patch: &Value,
    group: &str,
    kind: &str,
) -> Result<(), Error> {
    if !schema::is_builtin(group, kind) {
        merge_patch(target, patch);
        return Ok(());
    }
    let Value::Object(patch_fields) = patch else {
        return Err(Error::InvalidStrategicMergePatch {
            path: String::new(),
            reason: format!("patch must be a JSON object, got {patch}"),
        });
    };
    let original = target.as_object().cloned().unwrap_or_default();
    let merged = strategic::Merger::new(kind).merge_object(original, patch_fields.clone())?;
    *target = Value::Object(merged);
    Ok(())
}

#[cfg(test)]
mod tests;
