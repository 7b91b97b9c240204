//! Field selectors (mirrors `k8s.io/apimachinery/pkg/fields`).

use std::fmt;

use crate::Error;

/// How a field selector term compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldOperator {
    /// `field=value`
    Equals,
    /// `field==value`
    DoubleEquals,
    /// `field!=value`
    NotEquals,
}

/// One comma-separated term of a field selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    /// Dotted field path, e.g. `metadata.name`.
    pub field: String,
    /// The comparison.
    pub operator: FieldOperator,
    /// The unescaped value.
    pub value: String,
}

/// A parsed field selector: the AND of its terms. Empty selects everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// Parses `field=value`, `field==value`, `field!=value`, comma-separated.
    /// In values, `\\`, `\,` and `\=` escape those characters; any other
    /// backslash sequence, or an unescaped `,` / `=` in a value, is an error.
    pub fn parse(input: &str) -> Result<Self, Error> {
        let fail = |reason: String| Error::InvalidFieldSelector {
            input: input.to_string(),
            reason,
        };
        let mut requirements = Vec::new();
        for term in split_unescaped_commas(input) {
            if term.is_empty() {
                continue;
            }
            let (field, operator, raw_value) =
                split_field_term(term).ok_or_else(|| fail(format!("can't understand {term:?}")))?;
            let field = field.trim();
            if field.is_empty() {
                return Err(fail(format!("missing field name in {term:?}")));
            }
            // Field paths are dotted identifiers (`metadata.name`,
            // `spec.nodeName`); anything else, such as the `!` of a spaced-out
            // `! =`, is a typo that would not print back as it parsed.
            if !field
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'))
            {
                return Err(fail(format!("invalid field name {field:?} in {term:?}")));
            }
            let value = unescape_field_value(raw_value).map_err(fail)?;
            requirements.push(FieldRequirement {
                field: field.to_string(),
                operator,
                value,
            });
        }
        Ok(FieldSelector { requirements })
    }

    /// True for the selector that selects everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The terms in input order.
    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.requirements
    }

    /// The field paths used, in input order (the server checks them against
    /// the fields it supports for the resource).
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.requirements.iter().map(|r| r.field.as_str())
    }

    /// `Some(v)` if the selector requires `field` to equal `v`.
    pub fn required_value(&self, field: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.field == field && r.operator != FieldOperator::NotEquals)
            .map(|r| r.value.as_str())
    }

    /// Whether an object matches; `get(field)` returns the object's value for
    /// a field path, and a missing field compares as `""` (as in Kubernetes,
    /// where field sets always contain every supported field).
    pub fn matches_with(&self, get: impl Fn(&str) -> Option<String>) -> bool {
        self.requirements.iter().all(|r| {
            let actual = get(&r.field).unwrap_or_default();
            match r.operator {
                FieldOperator::Equals | FieldOperator::DoubleEquals => actual == r.value,
                FieldOperator::NotEquals => actual != r.value,
            }
        })
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, r) in self.requirements.iter().enumerate() {
            if index > 0 {
                f.write_str(",")?;
            }
            let operator = match r.operator {
                FieldOperator::Equals => "=",
                FieldOperator::DoubleEquals => "==",
                FieldOperator::NotEquals => "!=",
            };
            write!(f, "{}{operator}{}", r.field, escape_field_value(&r.value))?;
        }
        Ok(())
    }
}

/// Escapes `\`, `,` and `=` in a field selector value.
pub fn escape_field_value(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | ',' | '=') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

pub(super) fn split_unescaped_commas(input: &str) -> Vec<&str> {
    let mut terms = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (index, c) in input.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' {
            terms.push(&input[start..index]);
            start = index + 1;
        }
    }
    terms.push(&input[start..]);
    terms
}

/// Finds the first operator, trying `!=` and `==` before `=` at each
/// position, exactly like `fields.splitTerm`.
pub(super) fn split_field_term(term: &str) -> Option<(&str, FieldOperator, &str)> {
    for (index, _) in term.char_indices() {
        let rest = &term[index..];
        for (symbol, operator) in [
            ("!=", FieldOperator::NotEquals),
            ("==", FieldOperator::DoubleEquals),
            ("=", FieldOperator::Equals),
        ] {
            if let Some(value) = rest.strip_prefix(symbol) {
                return Some((&term[..index], operator, value));
            }
        }
    }
    None
}

pub(super) fn unescape_field_value(raw: &str) -> Result<String, String> {
    let mut value = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(escaped @ ('\\' | ',' | '=')) => value.push(escaped),
                Some(other) => {
                    return Err(format!(
                        "invalid escape sequence '\\{other}' in value {raw:?}"
                    ));
                }
                None => return Err(format!("invalid trailing backslash in value {raw:?}")),
            },
            ',' | '=' => return Err(format!("unescaped '{c}' in value {raw:?}")),
            _ => value.push(c),
        }
    }
    Ok(value)
}

/// The value of a dotted field path (`spec.nodeName`, `involvedObject.uid`)
/// in a JSON object, as field selectors compare it: strings as they are,
/// numbers and booleans in their JSON spelling. `None` for a missing field,
/// `null`, or an object/array (field selectors only work on scalars).
pub fn field_value(obj: &serde_json::Value, path: &str) -> Option<String> {
    let mut current = obj;
    for segment in path.split('.') {
        current = current.as_object()?.get(segment)?;
    }
    match current {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}
