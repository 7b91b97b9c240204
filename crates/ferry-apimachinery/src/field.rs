//! Field errors as Kubernetes reports validation failures: one per field,
//! printed `path: Invalid value: "x": detail` and carried to clients as the
//! `details.causes` of a 422 `Status` (apimachinery's `field.Error`).

use std::fmt;

use serde_json::{Value, json};

/// What is wrong with a field (`field.ErrorType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldErrorKind {
    /// The value is not acceptable.
    Invalid,
    /// The value has the wrong JSON type (a number where a string belongs).
    TypeInvalid,
    /// A required field is missing.
    Required,
    /// The value is not one of an enumeration.
    NotSupported,
    /// The field may not be set (or changed).
    Forbidden,
    /// A string or list is too long.
    TooLong,
    /// A key or list entry appears twice.
    Duplicate,
}

impl FieldErrorKind {
    /// The `StatusCause.reason` clients match on.
    pub fn reason(self) -> &'static str {
        match self {
            FieldErrorKind::Invalid => "FieldValueInvalid",
            FieldErrorKind::TypeInvalid => "FieldValueTypeInvalid",
            FieldErrorKind::Required => "FieldValueRequired",
            FieldErrorKind::NotSupported => "FieldValueNotSupported",
            FieldErrorKind::Forbidden => "FieldValueForbidden",
            FieldErrorKind::TooLong => "FieldValueTooLong",
            FieldErrorKind::Duplicate => "FieldValueDuplicate",
        }
    }

    fn label(self) -> &'static str {
        match self {
            FieldErrorKind::Invalid | FieldErrorKind::TypeInvalid => "Invalid value",
            FieldErrorKind::Required => "Required value",
            FieldErrorKind::NotSupported => "Unsupported value",
            FieldErrorKind::Forbidden => "Forbidden",
            FieldErrorKind::TooLong => "Too long",
            FieldErrorKind::Duplicate => "Duplicate value",
        }
    }

    /// Kinds whose message names no value (kube prints none for them).
    fn shows_value(self) -> bool {
        !matches!(
            self,
            FieldErrorKind::Required | FieldErrorKind::Forbidden | FieldErrorKind::TooLong
        )
    }
}

/// One invalid field.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub kind: FieldErrorKind,
    /// The field's path as Kubernetes prints it: `spec.ports[0].port`,
    /// `data[my.key]`.
    pub field: String,
    /// The offending value, when there is one to show.
    pub value: Option<Value>,
    /// Why, in words (may be empty).
    pub detail: String,
}

impl FieldError {
    pub fn new(kind: FieldErrorKind, field: impl Into<String>, value: Option<Value>) -> Self {
        FieldError {
            kind,
            field: field.into(),
            value,
            detail: String::new(),
        }
    }

    /// `Invalid value` with a detail.
    pub fn invalid(field: impl Into<String>, value: Value, detail: impl Into<String>) -> Self {
        Self::new(FieldErrorKind::Invalid, field, Some(value)).with_detail(detail)
    }

    /// A value of the wrong JSON type; the detail says which was expected.
    pub fn type_invalid(field: impl Into<String>, value: Value, expected: &str) -> Self {
        Self::new(FieldErrorKind::TypeInvalid, field, Some(value))
            .with_detail(format!("must be of type {expected}"))
    }

    /// `Required value`.
    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(FieldErrorKind::Required, field, None).with_detail(detail)
    }

    /// `Unsupported value`, listing what is supported.
    pub fn not_supported(field: impl Into<String>, value: Value, supported: &[Value]) -> Self {
        let list: Vec<String> = supported.iter().map(render_value).collect();
        Self::new(FieldErrorKind::NotSupported, field, Some(value))
            .with_detail(format!("supported values: {}", list.join(", ")))
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }

    /// The message without the field path (`StatusCause.message`).
    pub fn body(&self) -> String {
        let mut out = self.kind.label().to_string();
        if self.kind.shows_value()
            && let Some(v) = &self.value
        {
            out.push_str(": ");
            out.push_str(&render_value(v));
        }
        if !self.detail.is_empty() {
            out.push_str(": ");
            out.push_str(&self.detail);
        }
        out
    }

    /// The `StatusCause` object.
    pub fn cause(&self) -> Value {
        json!({"reason": self.kind.reason(), "message": self.body(), "field": self.field})
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

/// Several field errors as one line, as Kubernetes aggregates them: the
/// error itself for one, `[a, b]` for more.
pub fn summarize(errors: &[FieldError]) -> String {
    match errors {
        [one] => one.to_string(),
        many => {
            let parts: Vec<String> = many.iter().map(ToString::to_string).collect();
            format!("[{}]", parts.join(", "))
        }
    }
}

/// A value as kube prints it in a field error: strings quoted, the rest as
/// JSON.
fn render_value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

/// Appends a map key or property name to a path: `data[a.b]` for keys that
/// are not identifiers (as kube's `Key`), `spec.replicas` for the rest.
pub fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// A map key under `path`: `data[my.key]`.
pub fn key(path: &str, key: &str) -> String {
    format!("{path}[{key}]")
}

/// A list index under `path`: `spec.ports[0]`.
pub fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_like_kubernetes() {
        let e = FieldError::type_invalid("data[k]", json!(5), "string");
        assert_eq!(
            e.to_string(),
            "data[k]: Invalid value: 5: must be of type string"
        );
        let e = FieldError::required("spec.host", "");
        assert_eq!(e.to_string(), "spec.host: Required value");
        let e = FieldError::not_supported("spec.mode", json!("x"), &[json!("a"), json!("b")]);
        assert_eq!(
            e.to_string(),
            "spec.mode: Unsupported value: \"x\": supported values: \"a\", \"b\""
        );
        assert_eq!(e.cause()["reason"], "FieldValueNotSupported");
        assert_eq!(e.cause()["field"], "spec.mode");
        let two = [
            FieldError::required("a", ""),
            FieldError::required("b", "x"),
        ];
        assert_eq!(summarize(&two), "[a: Required value, b: Required value: x]");
        assert_eq!(key("data", "a.b"), "data[a.b]");
        assert_eq!(child("", "spec"), "spec");
        assert_eq!(index("spec.ports", 2), "spec.ports[2]");
    }
}
