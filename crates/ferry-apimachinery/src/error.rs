//! The crate's single error type.

/// Everything that can go wrong in this crate. Every message names the
/// offending input so that the API server can hand it back verbatim in a
/// `Status` (400 / 422) and the user sees what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A `labelSelector` string (query parameter or `kubectl -l`) is not
    /// valid Kubernetes label-selector syntax, or a key/value in it is not a
    /// valid label key/value.
    #[error("invalid label selector {input:?}: {reason}")]
    InvalidLabelSelector {
        /// The whole selector string as given.
        input: String,
        /// What is wrong, e.g. `expected ')'`.
        reason: String,
    },

    /// A structured `metav1.LabelSelector` (`matchLabels` / `matchExpressions`)
    /// is malformed, e.g. an unknown operator or `In` without values.
    #[error("invalid label selector object {input}: {reason}")]
    InvalidApiLabelSelector {
        /// The selector object rendered as compact JSON.
        input: String,
        /// What is wrong.
        reason: String,
    },

    /// A `fieldSelector` string is malformed (no operator, bad escape).
    #[error("invalid field selector {input:?}: {reason}")]
    InvalidFieldSelector {
        /// The whole selector string as given.
        input: String,
        /// What is wrong.
        reason: String,
    },

    /// A JSON patch (RFC 6902) body is not a valid list of operations, or an
    /// operation failed (missing path, failed `test`).
    #[error("invalid JSON patch: {reason}")]
    InvalidJsonPatch {
        /// What is wrong, including the operation's path.
        reason: String,
    },

    /// A strategic merge patch is malformed: unknown `$patch` value, a list
    /// element without its merge key, a directive with the wrong type.
    #[error("invalid strategic merge patch at {path:?}: {reason}")]
    InvalidStrategicMergePatch {
        /// Dotted path of the field the problem is in (`""` = the root).
        path: String,
        /// What is wrong.
        reason: String,
    },

    /// A CRD `additionalPrinterColumns` entry is unusable (missing name or
    /// jsonPath, or a jsonPath outside the supported subset).
    #[error("invalid printer column {column:?}: {reason}")]
    InvalidPrinterColumn {
        /// The column's `name` (or its JSON if it has none).
        column: String,
        /// What is wrong.
        reason: String,
    },

    /// `metadata.managedFields` cannot be read (not a list of entries, an
    /// unknown `fieldsType`, malformed `fieldsV1`, a manager twice).
    #[error("invalid managedFields: {reason}")]
    InvalidManagedFields {
        /// What is wrong.
        reason: String,
    },

    /// A server-side apply configuration cannot be merged: two items of an
    /// associative list with the same keys, or `managedFields` set.
    #[error("{path}: {reason}")]
    InvalidApplyConfiguration {
        /// The field, as Kubernetes prints paths (`.spec.ports[port=80]`).
        path: String,
        /// What is wrong.
        reason: String,
    },

    /// Server-side apply would change fields other managers own; forcing
    /// the apply takes them over.
    #[error("{}", crate::managed::conflicts_message(conflicts))]
    ApplyConflict {
        /// One entry per field and manager.
        conflicts: Vec<crate::managed::Conflict>,
    },

    /// A JSONPath expression is outside the supported subset or malformed.
    #[error("invalid JSONPath {expr:?}: {reason}")]
    InvalidJsonPath {
        /// The expression as given.
        expr: String,
        /// What is wrong.
        reason: String,
    },
}
