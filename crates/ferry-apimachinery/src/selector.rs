//! Label and field selectors, as accepted in `?labelSelector=` /
//! `?fieldSelector=` and in `metav1.LabelSelector` objects.
//!
//! The grammar and its corner cases follow `k8s.io/apimachinery/pkg/labels`
//! and `pkg/fields` so that anything kubectl or kube-rs sends parses the same
//! way here as in a real API server, and `Display` gives the same canonical
//! string (requirements sorted by key, set values sorted).

use std::collections::BTreeMap;
use std::fmt;

use crate::Error;

mod fields;
mod label_parser;
mod requirement;
mod validate;

pub use fields::*;
use label_parser::{LabelParser, lex};
pub use requirement::{Operator, Requirement};
pub use validate::{validate_label_key, validate_label_value};

/// A parsed label selector: the AND of its requirements. The empty selector
/// matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    /// Sorted by key (stable), as Kubernetes does, so `Display` is canonical.
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// Parses the string syntax: `a=b`, `a==b`, `a!=b`, `a in (x,y)`,
    /// `a notin (x)`, `a`, `!a`, `a>1`, `a<1`, comma-separated, whitespace
    /// between tokens ignored. `""` selects everything.
    pub fn parse(input: &str) -> Result<Self, Error> {
        let tokens = lex(input);
        let mut parser = LabelParser {
            tokens: &tokens,
            position: 0,
        };
        let requirements =
            parser
                .parse_selector()
                .map_err(|reason| Error::InvalidLabelSelector {
                    input: input.to_string(),
                    reason,
                })?;
        Ok(Self::from_requirements(requirements))
    }

    /// Builds a selector from already validated requirements.
    pub fn from_requirements(mut requirements: Vec<Requirement>) -> Self {
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        LabelSelector { requirements }
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Whether every requirement is satisfied by `labels`.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// True for the selector that selects everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// `Some(v)` if the selector can only match objects whose label `key` is
    /// `v` (`key=v`, `key==v` or `key in (v)`); lets callers use an index or
    /// enforce ownership without evaluating the selector.
    pub fn required_value(&self, key: &str) -> Option<&str> {
        self.requirements.iter().find_map(|r| {
            let is_equality = matches!(
                r.operator,
                Operator::Equals | Operator::DoubleEquals | Operator::In
            );
            if r.key == key && is_equality && r.values.len() == 1 {
                r.values.first().map(String::as_str)
            } else {
                None
            }
        })
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, requirement) in self.requirements.iter().enumerate() {
            if index > 0 {
                f.write_str(",")?;
            }
            write!(f, "{requirement}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for LabelSelector {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        LabelSelector::parse(s)
    }
}

/// Converts a `metav1.LabelSelector` object (`{matchLabels, matchExpressions}`)
/// into a [`LabelSelector`], as `metav1.LabelSelectorAsSelector` does.
///
/// `null` and `{}` give the empty selector (everything); Kubernetes treats a
/// nil pointer as "nothing", but the JSON we see never distinguishes an
/// absent selector from a null one, so callers that need "nothing" must
/// check for absence themselves.
pub fn label_selector_from_api(selector: &serde_json::Value) -> Result<LabelSelector, Error> {
    let fail = |reason: String| Error::InvalidApiLabelSelector {
        input: selector.to_string(),
        reason,
    };
    let object = match selector {
        serde_json::Value::Null => return Ok(LabelSelector::default()),
        serde_json::Value::Object(object) => object,
        _ => return Err(fail("must be an object".to_string())),
    };
    let mut requirements = Vec::new();
    match object.get("matchLabels") {
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::Object(match_labels)) => {
            for (key, value) in match_labels {
                let value = value
                    .as_str()
                    .ok_or_else(|| fail(format!("matchLabels[{key:?}] must be a string")))?;
                requirements.push(
                    Requirement::new(key.clone(), Operator::Equals, [value.to_string()])
                        .map_err(fail)?,
                );
            }
        }
        Some(_) => return Err(fail("matchLabels must be an object".to_string())),
    }
    match object.get("matchExpressions") {
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::Array(expressions)) => {
            for expression in expressions {
                let key = expression
                    .get("key")
                    .and_then(serde_json::Value::as_str)
                    .ok_or_else(|| fail("matchExpressions[].key must be a string".to_string()))?;
                let operator = match expression
                    .get("operator")
                    .and_then(serde_json::Value::as_str)
                {
                    Some("In") => Operator::In,
                    Some("NotIn") => Operator::NotIn,
                    Some("Exists") => Operator::Exists,
                    Some("DoesNotExist") => Operator::DoesNotExist,
                    other => {
                        return Err(fail(format!(
                            "{:?} is not a valid label selector operator for key {key:?}",
                            other.unwrap_or("")
                        )));
                    }
                };
                let values = match expression.get("values") {
                    None | Some(serde_json::Value::Null) => Vec::new(),
                    Some(serde_json::Value::Array(values)) => values
                        .iter()
                        .map(|v| {
                            v.as_str().map(str::to_string).ok_or_else(|| {
                                fail(format!("values for key {key:?} must be strings"))
                            })
                        })
                        .collect::<Result<_, _>>()?,
                    Some(_) => return Err(fail(format!("values for key {key:?} must be a list"))),
                };
                requirements.push(Requirement::new(key, operator, values).map_err(fail)?);
            }
        }
        Some(_) => return Err(fail("matchExpressions must be a list".to_string())),
    }
    Ok(LabelSelector::from_requirements(requirements))
}

#[cfg(test)]
mod tests;
