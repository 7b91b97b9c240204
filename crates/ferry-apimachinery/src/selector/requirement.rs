//! One requirement of a label selector: its operator, validation and
//! matching.

use std::collections::BTreeMap;
use std::fmt;

use super::validate::{validate_label_key, validate_label_value};

/// How one requirement of a label selector compares a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `key=value`
    Equals,
    /// `key==value` (same meaning as `=`, kept so `Display` round-trips)
    DoubleEquals,
    /// `key!=value`: the label is absent or has another value.
    NotEquals,
    /// `key in (v1,v2)`
    In,
    /// `key notin (v1,v2)`: the label is absent or has none of the values.
    NotIn,
    /// `key`: the label is present, whatever its value.
    Exists,
    /// `!key`: the label is absent.
    DoesNotExist,
    /// `key>N`: the label's value is an integer greater than N.
    GreaterThan,
    /// `key<N`: the label's value is an integer less than N.
    LessThan,
}

/// One comma-separated term of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub(super) key: String,
    pub(super) operator: Operator,
    /// Sorted and deduplicated; exactly one value for the equality and
    /// comparison operators, none for `Exists` / `DoesNotExist`.
    pub(super) values: Vec<String>,
}

impl Requirement {
    /// Builds a requirement, validating the key, the values and that the
    /// number of values fits the operator (as `labels.NewRequirement` does).
    /// On error the returned `String` is the reason only; callers wrap it
    /// into the right [`Error`] variant with their input.
    pub fn new(
        key: impl Into<String>,
        operator: Operator,
        values: impl IntoIterator<Item = String>,
    ) -> Result<Self, String> {
        let key = key.into();
        validate_label_key(&key)?;
        let mut values: Vec<String> = values.into_iter().collect();
        values.sort();
        values.dedup();
        match operator {
            Operator::In | Operator::NotIn => {
                if values.is_empty() {
                    return Err(format!(
                        "values for key {key:?} must be non-empty for 'in' and 'notin'"
                    ));
                }
            }
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals => {
                if values.len() != 1 {
                    return Err(format!("exactly one value is required for key {key:?}"));
                }
            }
            Operator::Exists | Operator::DoesNotExist => {
                if !values.is_empty() {
                    return Err(format!(
                        "values for key {key:?} must be empty for 'exists' and 'does not exist'"
                    ));
                }
            }
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    return Err(format!(
                        "exactly one value is required for key {key:?} with '>' or '<'"
                    ));
                }
                if values[0].parse::<i64>().is_err() {
                    return Err(format!(
                        "value {:?} for key {key:?} must be an integer for '>' or '<'",
                        values[0]
                    ));
                }
            }
        }
        for value in &values {
            validate_label_value(value)?;
        }
        Ok(Requirement {
            key,
            operator,
            values,
        })
    }

    /// The label key this requirement is about.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The comparison.
    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The values, sorted.
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Whether a label set satisfies this requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let actual = labels.get(&self.key);
        let contains = |v: &String| self.values.binary_search(v).is_ok();
        match self.operator {
            Operator::Equals | Operator::DoubleEquals | Operator::In => {
                actual.is_some_and(contains)
            }
            Operator::NotEquals | Operator::NotIn => !actual.is_some_and(contains),
            Operator::Exists => actual.is_some(),
            Operator::DoesNotExist => actual.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let Some(actual) = actual.and_then(|v| v.parse::<i64>().ok()) else {
                    return false;
                };
                let Some(bound) = self.values.first().and_then(|v| v.parse::<i64>().ok()) else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    actual > bound
                } else {
                    actual < bound
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let single = self.values.first().map(String::as_str).unwrap_or("");
        match self.operator {
            Operator::Exists => write!(f, "{}", self.key),
            Operator::DoesNotExist => write!(f, "!{}", self.key),
            Operator::Equals => write!(f, "{}={single}", self.key),
            Operator::DoubleEquals => write!(f, "{}=={single}", self.key),
            Operator::NotEquals => write!(f, "{}!={single}", self.key),
            Operator::GreaterThan => write!(f, "{}>{single}", self.key),
            Operator::LessThan => write!(f, "{}<{single}", self.key),
            Operator::In => write!(f, "{} in ({})", self.key, self.values.join(",")),
            Operator::NotIn => write!(f, "{} notin ({})", self.key, self.values.join(",")),
        }
    }
}
