//! The JSONPath subset that CRD `additionalPrinterColumns` use (and that
//! `kubectl get -o jsonpath` users write most): `.a.b`, `.a[0]`, `.a[-1]`,
//! `.a[*].b`, `.a.*`, `.a['x.y']`, `.a["x"]` and filters
//! `.a[?(@.type=="Ready")].status` with `== != < <= > >=` or bare existence
//! `[?(@.x)]`. Surrounding `{…}` and a leading `$` are accepted.

use serde_json::Value;

use crate::Error;

/// A compiled JSONPath expression.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    expr: String,
    steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Index(i64),
    Wildcard,
    Filter(Filter),
}

#[derive(Debug, Clone, PartialEq)]
struct Filter {
    /// Field path below `@`.
    path: Vec<String>,
    /// `None` means "the field exists and is not null".
    comparison: Option<(Comparison, Value)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comparison {
    Equal,
    NotEqual,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

impl JsonPath {
    /// Compiles an expression; errors name the expression and the problem.
    pub fn parse(expr: &str) -> Result<Self, Error> {
        let fail = |reason: String| Error::InvalidJsonPath {
            expr: expr.to_string(),
            reason,
        };
        let mut body = expr.trim();
        if let Some(inner) = body.strip_prefix('{') {
            body = inner
                .strip_suffix('}')
                .ok_or_else(|| fail("unclosed '{'".to_string()))?
                .trim();
        }
        body = body.strip_prefix('$').unwrap_or(body);
        let steps = parse_steps(body, false).map_err(fail)?;
        Ok(JsonPath {
            expr: expr.to_string(),
            steps,
        })
    }

    /// The expression as given.
    pub fn as_str(&self) -> &str {
        &self.expr
    }

    /// Every value the expression selects, in document order. Missing keys
    /// select nothing (kubectl's `AllowMissingKeys(true)`).
    pub fn evaluate<'v>(&self, root: &'v Value) -> Vec<&'v Value> {
        let mut current = vec![root];
        for step in &self.steps {
            let mut next = Vec::new();
            for value in current {
                match step {
                    Step::Field(name) => next.extend(value.get(name.as_str())),
                    Step::Index(index) => {
                        if let Value::Array(items) = value {
                            let resolved = if *index < 0 {
                                usize::try_from(index.unsigned_abs())
                                    .ok()
                                    .and_then(|back| items.len().checked_sub(back))
                            } else {
                                usize::try_from(*index).ok()
                            };
                            next.extend(resolved.and_then(|i| items.get(i)));
                        }
                    }
                    Step::Wildcard => match value {
                        Value::Array(items) => next.extend(items.iter()),
                        Value::Object(fields) => next.extend(fields.values()),
                        _ => {}
                    },
                    Step::Filter(filter) => {
                        if let Value::Array(items) = value {
                            next.extend(items.iter().filter(|item| filter.accepts(item)));
                        }
                    }
                }
            }
            current = next;
        }
        current
    }
}

impl Filter {
    fn accepts(&self, item: &Value) -> bool {
        let mut value = item;
        for segment in &self.path {
            match value.get(segment.as_str()) {
                Some(inner) => value = inner,
                None => return false,
            }
        }
        let Some((comparison, literal)) = &self.comparison else {
            return !value.is_null();
        };
        let ordering = match (value, literal) {
            (Value::Number(a), Value::Number(b)) => a
                .as_f64()
                .zip(b.as_f64())
                .and_then(|(a, b)| a.partial_cmp(&b)),
            (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
            (a, b) if a == b => Some(std::cmp::Ordering::Equal),
            _ => None,
        };
        match comparison {
            Comparison::Equal => ordering == Some(std::cmp::Ordering::Equal),
            Comparison::NotEqual => ordering != Some(std::cmp::Ordering::Equal),
            Comparison::Less => ordering == Some(std::cmp::Ordering::Less),
            Comparison::LessOrEqual => ordering.is_some_and(|o| o != std::cmp::Ordering::Greater),
            Comparison::Greater => ordering == Some(std::cmp::Ordering::Greater),
            Comparison::GreaterOrEqual => ordering.is_some_and(|o| o != std::cmp::Ordering::Less),
        }
    }
}

/// Parses a chain of `.name`, `[...]` steps. `in_filter` forbids filters
/// and wildcards (inside `?(@...)` only plain field paths make sense).
fn parse_steps(body: &str, in_filter: bool) -> Result<Vec<Step>, String> {
    let mut steps = Vec::new();
    let mut rest = body;
    let mut first = true;
    while !rest.is_empty() {
        if let Some(after_dot) = rest.strip_prefix('.') {
            if after_dot.starts_with('.') {
                return Err("recursive descent '..' is not supported".to_string());
            }
            let end = after_dot.find(['.', '[']).unwrap_or(after_dot.len());
            let name = &after_dot[..end];
            match name {
                "" if after_dot.is_empty() && steps.is_empty() => {} // "." alone: the root
                "" => return Err("empty field name after '.'".to_string()),
                "*" if !in_filter => steps.push(Step::Wildcard),
                _ => steps.push(Step::Field(name.to_string())),
            }
            rest = &after_dot[end..];
        } else if rest.starts_with('[') {
            let end = closing_bracket(rest).ok_or_else(|| "unclosed '['".to_string())?;
            let inside = rest[1..end].trim();
            rest = &rest[end + 1..];
            steps.push(parse_bracket(inside, in_filter)?);
        } else if first {
            // A bare leading name (`metadata.name`) reads as `.metadata.name`.
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            steps.push(Step::Field(rest[..end].to_string()));
            rest = &rest[end..];
        } else {
            return Err(format!("unexpected {rest:?}"));
        }
        first = false;
    }
    Ok(steps)
}

/// Byte index of the `]` closing the `[` at the start of `s`, skipping
/// quoted strings and parentheses (filters contain both).
fn closing_bracket(s: &str) -> Option<usize> {
    let mut quote = None;
    let mut depth = 0usize;
    for (index, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), _) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '[' | '(') => depth += 1,
            (None, ')') => depth = depth.saturating_sub(1),
            (None, ']') => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(index);
                }
            }
            _ => {}
        }
    }
    None
}

fn parse_bracket(inside: &str, in_filter: bool) -> Result<Step, String> {
    if let Some(name) = unquote(inside) {
        return Ok(Step::Field(name.to_string()));
    }
    if inside == "*" && !in_filter {
        return Ok(Step::Wildcard);
    }
    if let Ok(index) = inside.parse::<i64>() {
        return Ok(Step::Index(index));
    }
    if let Some(filter) = inside.strip_prefix('?') {
        if in_filter {
            return Err("nested filters are not supported".to_string());
        }
        let filter = filter
            .trim()
            .strip_prefix('(')
            .and_then(|f| f.strip_suffix(')'))
            .ok_or_else(|| format!("filter {inside:?} must look like ?(@.field==value)"))?;
        return parse_filter(filter.trim()).map(Step::Filter);
    }
    Err(format!(
        "unsupported subscript [{inside}] (only indexes, '*', quoted names and ?() filters)"
    ))
}

fn unquote(s: &str) -> Option<&str> {
    ['\'', '"']
        .into_iter()
        .find_map(|q| s.strip_prefix(q)?.strip_suffix(q))
}

fn parse_filter(filter: &str) -> Result<Filter, String> {
    let Some(rest) = filter.strip_prefix('@') else {
        return Err(format!("filter {filter:?} must start with '@'"));
    };
    let operators = [
        ("==", Comparison::Equal),
        ("!=", Comparison::NotEqual),
        ("<=", Comparison::LessOrEqual),
        (">=", Comparison::GreaterOrEqual),
        ("<", Comparison::Less),
        (">", Comparison::Greater),
    ];
    // The operator is the first one outside quotes; field names never
    // contain these characters.
    let found = operators
        .iter()
        .filter_map(|(symbol, comparison)| rest.find(symbol).map(|at| (at, *symbol, *comparison)))
        .min_by_key(|(at, symbol, _)| (*at, std::cmp::Reverse(symbol.len())));
    let (path_text, comparison) = match found {
        Some((at, symbol, comparison)) => {
            let literal = parse_literal(rest[at + symbol.len()..].trim())?;
            (rest[..at].trim(), Some((comparison, literal)))
        }
        None => (rest.trim(), None),
    };
    let mut path = Vec::new();
    for step in parse_steps(path_text, true)? {
        match step {
            Step::Field(name) => path.push(name),
            _ => return Err(format!("filter path {path_text:?} may only name fields")),
        }
    }
    Ok(Filter { path, comparison })
}

fn parse_literal(text: &str) -> Result<Value, String> {
    if let Some(s) = unquote(text) {
        return Ok(Value::String(s.to_string()));
    }
    match text {
        "true" => return Ok(Value::Bool(true)),
        "false" => return Ok(Value::Bool(false)),
        "null" => return Ok(Value::Null),
        _ => {}
    }
    if let Ok(n) = text.parse::<i64>() {
        return Ok(Value::from(n));
    }
    if let Ok(n) = text.parse::<f64>()
        && let Some(number) = serde_json::Number::from_f64(n)
    {
        return Ok(Value::Number(number));
    }
    Err(format!("cannot understand filter value {text:?}"))
}

/// The first value `expr` selects in `obj` (what a CRD printer column
/// shows), or `None` if it selects nothing or does not parse.
pub fn jsonpath(obj: &Value, expr: &str) -> Option<Value> {
    let path = JsonPath::parse(expr).ok()?;
    path.evaluate(obj).first().map(|v| (*v).clone())
}

/// Every value `expr` selects in `obj`; empty if it does not parse.
pub fn jsonpath_all(obj: &Value, expr: &str) -> Vec<Value> {
    JsonPath::parse(expr)
        .map(|path| path.evaluate(obj).into_iter().cloned().collect())
        .unwrap_or_default()
}
