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

/// Longest label value and longest name part of a label key (DNS-1123 label).
const MAX_NAME_LEN: usize = 63;
/// Longest prefix of a label key (DNS-1123 subdomain).
const MAX_PREFIX_LEN: usize = 253;

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
    key: String,
    operator: Operator,
    /// Sorted and deduplicated; exactly one value for the equality and
    /// comparison operators, none for `Exists` / `DoesNotExist`.
    values: Vec<String>,
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

// ---------------------------------------------------------------------------
// Label selector lexer and parser (mirrors k8s.io/apimachinery/pkg/labels).

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A run of characters that are neither whitespace nor special; the
    /// keywords `in` / `notin` are told apart by the parser, because a key or
    /// value may be spelled `in` too.
    Word(String),
    Bang,
    NotEquals,
    Equals,
    DoubleEquals,
    GreaterThan,
    LessThan,
    Comma,
    OpenParen,
    CloseParen,
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Token::Word(word) => format!("'{word}'"),
            Token::Bang => "'!'".into(),
            Token::NotEquals => "'!='".into(),
            Token::Equals => "'='".into(),
            Token::DoubleEquals => "'=='".into(),
            Token::GreaterThan => "'>'".into(),
            Token::LessThan => "'<'".into(),
            Token::Comma => "','".into(),
            Token::OpenParen => "'('".into(),
            Token::CloseParen => "')'".into(),
        }
    }
}

fn is_special(c: char) -> bool {
    matches!(c, '=' | '!' | '(' | ')' | ',' | '>' | '<')
}

fn lex(input: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut rest = input;
    while let Some(c) = rest.chars().next() {
        if c.is_whitespace() {
            rest = &rest[c.len_utf8()..];
            continue;
        }
        let (token, len) = if rest.starts_with("!=") {
            (Token::NotEquals, 2)
        } else if rest.starts_with("==") {
            (Token::DoubleEquals, 2)
        } else if is_special(c) {
            let token = match c {
                '!' => Token::Bang,
                '=' => Token::Equals,
                '(' => Token::OpenParen,
                ')' => Token::CloseParen,
                ',' => Token::Comma,
                '>' => Token::GreaterThan,
                _ => Token::LessThan,
            };
            (token, 1)
        } else {
            let len = rest
                .find(|c: char| c.is_whitespace() || is_special(c))
                .unwrap_or(rest.len());
            (Token::Word(rest[..len].to_string()), len)
        };
        tokens.push(token);
        rest = &rest[len..];
    }
    tokens
}

struct LabelParser<'a> {
    tokens: &'a [Token],
    position: usize,
}

fn describe(token: Option<&Token>) -> String {
    token.map_or_else(|| "end of string".to_string(), Token::describe)
}

impl LabelParser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.position)
    }

    fn next(&mut self) -> Option<&Token> {
        let token = self.tokens.get(self.position);
        self.position += 1;
        token
    }

    fn parse_selector(&mut self) -> Result<Vec<Requirement>, String> {
        let mut requirements = Vec::new();
        if self.peek().is_none() {
            return Ok(requirements);
        }
        loop {
            requirements.push(self.parse_requirement()?);
            match self.next() {
                None => return Ok(requirements),
                Some(Token::Comma) => match self.peek() {
                    Some(Token::Word(_) | Token::Bang) => {}
                    other => {
                        return Err(format!(
                            "expected identifier after ',', found {}",
                            describe(other)
                        ));
                    }
                },
                other => {
                    return Err(format!(
                        "expected ',' or end of string, found {}",
                        describe(other)
                    ));
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, String> {
        let negated = self.peek() == Some(&Token::Bang);
        if negated {
            self.position += 1;
        }
        let key = match self.next() {
            Some(Token::Word(word)) => word.clone(),
            other => return Err(format!("expected identifier, found {}", describe(other))),
        };
        validate_label_key(&key)?;
        let at_end_of_term = matches!(self.peek(), None | Some(Token::Comma));
        if negated {
            if !at_end_of_term {
                return Err(format!(
                    "expected ',' or end of string after '!{key}', found {}",
                    describe(self.peek())
                ));
            }
            return Requirement::new(key, Operator::DoesNotExist, []);
        }
        if at_end_of_term {
            return Requirement::new(key, Operator::Exists, []);
        }
        let operator = match self.next() {
            Some(Token::Equals) => Operator::Equals,
            Some(Token::DoubleEquals) => Operator::DoubleEquals,
            Some(Token::NotEquals) => Operator::NotEquals,
            Some(Token::GreaterThan) => Operator::GreaterThan,
            Some(Token::LessThan) => Operator::LessThan,
            Some(Token::Word(word)) if word == "in" => Operator::In,
            Some(Token::Word(word)) if word == "notin" => Operator::NotIn,
            other => {
                return Err(format!(
                    "expected one of '=', '==', '!=', 'in', 'notin', '>', '<' after key {key:?}, found {}",
                    describe(other)
                ));
            }
        };
        let values = match operator {
            Operator::In | Operator::NotIn => self.parse_value_set()?,
            _ => vec![self.parse_single_value()?],
        };
        Requirement::new(key, operator, values)
    }

    /// `key=` with nothing after it means the empty value, as in Kubernetes.
    fn parse_single_value(&mut self) -> Result<String, String> {
        match self.peek() {
            None | Some(Token::Comma) => Ok(String::new()),
            Some(Token::Word(word)) => {
                let word = word.clone();
                self.position += 1;
                Ok(word)
            }
            other => Err(format!("expected a value, found {}", describe(other))),
        }
    }

    /// `( v1 , v2 )`; empty slots (`()`, `(,a)`, `(a,)`, `(a,,b)`) stand for
    /// the empty value, as in Kubernetes.
    fn parse_value_set(&mut self) -> Result<Vec<String>, String> {
        match self.next() {
            Some(Token::OpenParen) => {}
            other => return Err(format!("expected '(', found {}", describe(other))),
        }
        let mut values = Vec::new();
        let mut expecting_value = true;
        loop {
            match self.next() {
                Some(Token::CloseParen) => {
                    if expecting_value {
                        values.push(String::new());
                    }
                    return Ok(values);
                }
                Some(Token::Comma) => {
                    if expecting_value {
                        values.push(String::new());
                    }
                    expecting_value = true;
                }
                Some(Token::Word(word)) if expecting_value => {
                    values.push(word.clone());
                    expecting_value = false;
                }
                None => return Err("expected ')'".to_string()),
                Some(other) => {
                    let expected = if expecting_value {
                        "a value, ',' or ')'"
                    } else {
                        "',' or ')'"
                    };
                    return Err(format!("expected {expected}, found {}", other.describe()));
                }
            }
        }
    }
}

/// Validates a label key: an optional DNS-subdomain prefix and `/`, then a
/// name of at most 63 characters (`[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`).
pub fn validate_label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        if prefix.is_empty() {
            return Err(format!(
                "invalid label key {key:?}: prefix part must be non-empty"
            ));
        }
        if prefix.len() > MAX_PREFIX_LEN {
            return Err(format!(
                "invalid label key {key:?}: prefix part must be no more than {MAX_PREFIX_LEN} characters"
            ));
        }
        if !is_dns1123_subdomain(prefix) {
            return Err(format!(
                "invalid label key {key:?}: prefix part must be a lowercase RFC 1123 subdomain"
            ));
        }
    }
    if name.is_empty() {
        return Err(format!(
            "invalid label key {key:?}: name part must be non-empty"
        ));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "invalid label key {key:?}: name part must be no more than {MAX_NAME_LEN} characters"
        ));
    }
    if !is_qualified_name_part(name) {
        return Err(format!(
            "invalid label key {key:?}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        ));
    }
    Ok(())
}

/// Validates a label value: empty, or at most 63 characters of the same
/// alphabet as a key's name part.
pub fn validate_label_value(value: &str) -> Result<(), String> {
    if value.len() > MAX_NAME_LEN {
        return Err(format!(
            "invalid label value {value:?}: must be no more than {MAX_NAME_LEN} characters"
        ));
    }
    if !value.is_empty() && !is_qualified_name_part(value) {
        return Err(format!(
            "invalid label value {value:?}: must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        ));
    }
    Ok(())
}

fn is_qualified_name_part(s: &str) -> bool {
    let bytes = s.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    first.is_ascii_alphanumeric()
        && last.is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn is_dns1123_subdomain(s: &str) -> bool {
    s.split('.').all(|label| {
        let bytes = label.as_bytes();
        match (bytes.first(), bytes.last()) {
            (Some(first), Some(last)) => {
                (first.is_ascii_lowercase() || first.is_ascii_digit())
                    && (last.is_ascii_lowercase() || last.is_ascii_digit())
                    && bytes
                        .iter()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
            }
            _ => false,
        }
    })
}

// ---------------------------------------------------------------------------
// Field selectors (mirrors k8s.io/apimachinery/pkg/fields).

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

fn split_unescaped_commas(input: &str) -> Vec<&str> {
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
fn split_field_term(term: &str) -> Option<(&str, FieldOperator, &str)> {
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

fn unescape_field_value(raw: &str) -> Result<String, String> {
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

#[cfg(test)]
mod tests;
