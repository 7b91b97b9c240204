//! One step of a field path ([`PathElement`]) as structured-merge-diff
//! names it: a field of a map, an item of an associative list by its keys,
//! an item of a set by its value, or (rarely) an item by index. Printed as
//! Kubernetes prints conflicting fields (`.spec.containers[name="web"]`)
//! and written as the keys of `fieldsV1` (`f:spec`, `k:{"name":"web"}`,
//! `v:"a"`, `i:0`).

use std::cmp::Ordering;
use std::fmt;

use serde_json::{Map, Value};

/// One step from a value to one of its children.
#[derive(Debug, Clone)]
pub enum PathElement {
    /// A field of a map (or struct).
    Field(String),
    /// The item of an associative list whose key fields have these values,
    /// sorted by field name.
    Key(Vec<(String, Value)>),
    /// The item of a set with this value.
    Value(Value),
    /// The item at this position of a list that has no keys.
    Index(usize),
}

impl PathElement {
    /// The `fieldsV1` key of this element.
    pub fn to_fields_v1_key(&self) -> String {
        match self {
            PathElement::Field(name) => format!("f:{name}"),
            PathElement::Key(fields) => {
                // `fields` are kept sorted by name, as `fieldsV1` writes them.
                let mut out = String::from("k:{");
                for (i, (name, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(name.clone()).to_string());
                    out.push(':');
                    out.push_str(&value.to_string());
                }
                out.push('}');
                out
            }
            PathElement::Value(value) => format!("v:{value}"),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    /// Reads a `fieldsV1` key; `None` for a kind of element this version
    /// does not know (structured-merge-diff skips those too).
    pub fn from_fields_v1_key(key: &str) -> Result<Option<Self>, String> {
        let Some((kind, rest)) = key.split_at_checked(2) else {
            return Err(format!("path element {key:?} is too short"));
        };
        match kind {
            "f:" => Ok(Some(PathElement::Field(rest.to_string()))),
            "v:" => serde_json::from_str(rest)
                .map(|v| Some(PathElement::Value(v)))
                .map_err(|e| format!("path element {key:?}: {e}")),
            "k:" => {
                let object: Map<String, Value> =
                    serde_json::from_str(rest).map_err(|e| format!("path element {key:?}: {e}"))?;
                let mut fields: Vec<(String, Value)> = object.into_iter().collect();
                fields.sort_by(|a, b| a.0.cmp(&b.0));
                Ok(Some(PathElement::Key(fields)))
            }
            "i:" => rest
                .parse()
                .map(|i| Some(PathElement::Index(i)))
                .map_err(|e| format!("path element {key:?}: {e}")),
            _ if kind.ends_with(':') => Ok(None),
            _ => Err(format!("path element {key:?} has no kind prefix")),
        }
    }

    /// The field name, when this is a field.
    pub fn field_name(&self) -> Option<&str> {
        match self {
            PathElement::Field(name) => Some(name),
            _ => None,
        }
    }

    fn rank(&self) -> u8 {
        match self {
            PathElement::Field(_) => 0,
            PathElement::Key(_) => 1,
            PathElement::Value(_) => 2,
            PathElement::Index(_) => 3,
        }
    }
}

impl PartialEq for PathElement {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for PathElement {}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Fields first (by name), then keys, values and indexes, as
/// structured-merge-diff orders them (and writes `fieldsV1`).
impl Ord for PathElement {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PathElement::Field(a), PathElement::Field(b)) => a.cmp(b),
            (PathElement::Key(a), PathElement::Key(b)) => compare_fields(a, b),
            (PathElement::Value(a), PathElement::Value(b)) => compare_values(a, b),
            (PathElement::Index(a), PathElement::Index(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

fn compare_fields(a: &[(String, Value)], b: &[(String, Value)]) -> Ordering {
    for ((an, av), (bn, bv)) in a.iter().zip(b) {
        let by_name = an.cmp(bn);
        if by_name != Ordering::Equal {
            return by_name;
        }
        let by_value = compare_values(av, bv);
        if by_value != Ordering::Equal {
            return by_value;
        }
    }
    a.len().cmp(&b.len())
}

/// A total order on JSON values: numbers (by value, so `80` equals
/// `80.0`), strings, booleans, lists, maps, then null.
pub fn compare_values(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Number(_) => 0,
            Value::String(_) => 1,
            Value::Bool(_) => 2,
            Value::Array(_) => 3,
            Value::Object(_) => 4,
            Value::Null => 5,
        }
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => {
                let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
                x.total_cmp(&y)
            }
        },
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (p, q) in x.iter().zip(y) {
                let c = compare_values(p, q);
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            let mut xs: Vec<_> = x.iter().collect();
            let mut ys: Vec<_> = y.iter().collect();
            xs.sort_by(|p, q| p.0.cmp(q.0));
            ys.sort_by(|p, q| p.0.cmp(q.0));
            for ((pk, pv), (qk, qv)) in xs.iter().zip(&ys) {
                let c = pk.cmp(qk).then_with(|| compare_values(pv, qv));
                if c != Ordering::Equal {
                    return c;
                }
            }
            xs.len().cmp(&ys.len())
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

/// Deep equality where numbers compare by value.
pub fn values_equal(a: &Value, b: &Value) -> bool {
    a == b || compare_values(a, b) == Ordering::Equal
}

/// A value as structured-merge-diff prints it in a path: strings quoted,
/// numbers and booleans bare.
fn print_value(v: &Value, out: &mut fmt::Formatter<'_>) -> fmt::Result {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                write!(out, "{k}=")?;
                print_value(v, out)?;
            }
            Ok(())
        }
        Value::Array(items) => {
            out.write_str("[")?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.write_str(",")?;
                }
                print_value(item, out)?;
            }
            out.write_str("]")
        }
        other => write!(out, "{other}"),
    }
}

impl fmt::Display for PathElement {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(name) => write!(out, ".{name}"),
            PathElement::Key(fields) => {
                out.write_str("[")?;
                for (i, (name, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.write_str(",")?;
                    }
                    write!(out, "{name}=")?;
                    print_value(value, out)?;
                }
                out.write_str("]")
            }
            PathElement::Value(value) => {
                out.write_str("[=")?;
                print_value(value, out)?;
                out.write_str("]")
            }
            PathElement::Index(i) => write!(out, "[{i}]"),
        }
    }
}

/// A path from the root, printed as Kubernetes prints it in conflicts.
pub fn path_string(path: &[PathElement]) -> String {
    path.iter().map(ToString::to_string).collect()
}
