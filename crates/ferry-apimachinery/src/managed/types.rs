//! What the merge and ownership rules need to know about each place in an
//! object ([`Type`]): whether a map is granular or atomic, whether a map's
//! keys are declared fields, and whether a list is atomic, a set, or an
//! associative list with key fields. Read from the built-in tables
//! ([`super::builtin`]) or a CRD's OpenAPI v3 schema (`x-kubernetes-map-type`,
//! `x-kubernetes-list-type`, `x-kubernetes-list-map-keys`); anything
//! undeclared is "deduced" as structured-merge-diff does: maps granular,
//! lists atomic.

use serde_json::Value;

use super::builtin::{self, Ty};

/// The type at one place of an object.
#[derive(Debug, Clone, Copy)]
pub enum Type<'s> {
    /// A built-in kind's type.
    Builtin(&'static Ty),
    /// The root of a custom object: `metadata` is `ObjectMeta`, the rest
    /// follows the CRD version's schema (if it has one).
    CustomRoot(Option<&'s Value>),
    /// A node of a CRD's OpenAPI v3 schema.
    OpenApi(&'s Value),
    /// Nothing declared.
    Deduced,
}

/// How a list merges and is owned.
#[derive(Debug, Clone, Copy)]
pub enum ListType<'s> {
    /// Replaced and owned as a whole.
    Atomic,
    /// Scalars, owned one by one (`v:` elements).
    Set,
    /// Objects, owned one by one by their key fields (`k:` elements).
    Map(Keys<'s>),
}

/// The key fields of an associative list.
#[derive(Debug, Clone, Copy)]
pub enum Keys<'s> {
    Builtin(&'static [&'static str]),
    OpenApi(&'s [Value]),
}

impl<'s> Keys<'s> {
    /// The key field names, in declaration order.
    pub fn names(self) -> impl Iterator<Item = &'s str> {
        let (builtin, openapi): (&[&str], &[Value]) = match self {
            Keys::Builtin(names) => (names, &[]),
            Keys::OpenApi(values) => (&[], values),
        };
        builtin
            .iter()
            .copied()
            .chain(openapi.iter().filter_map(Value::as_str))
    }
}

impl<'s> Type<'s> {
    /// The type of objects of a resource: the built-in tables when
    /// `(group, kind)` is one of them, else the CRD version's schema.
    pub fn of_resource(group: &str, kind: &str, schema: Option<&'s Value>) -> Type<'s> {
        match builtin::root(group, kind) {
            Some(ty) => Type::Builtin(ty),
            None => Type::CustomRoot(schema),
        }
    }

    /// Whether a map or list here is owned and replaced as a whole.
    pub fn is_atomic(self) -> bool {
        match self {
            Type::Builtin(ty) => matches!(ty, Ty::Atomic),
            Type::OpenApi(schema) => {
                str_field(schema, "x-kubernetes-map-type") == Some("atomic")
                    || str_field(schema, "x-kubernetes-list-type") == Some("atomic")
            }
            Type::CustomRoot(_) | Type::Deduced => false,
        }
    }

    /// The type of field `name` of a map here, and whether it is a declared
    /// (named) field rather than a key of a map of values.
    pub fn field(self, name: &str) -> (Type<'s>, bool) {
        match self {
            Type::Builtin(ty) => match ty.field(name) {
                Some((ty, named)) => (Type::Builtin(ty), named),
                None => (Type::Deduced, false),
            },
            Type::CustomRoot(schema) => match name {
                "metadata" => (Type::Builtin(&builtin::OBJECT_META), true),
                "apiVersion" | "kind" => (Type::Builtin(&builtin::PLAIN), true),
                _ => match schema {
                    Some(schema) => Type::OpenApi(schema).field(name),
                    None => (Type::Deduced, false),
                },
            },
            Type::OpenApi(schema) => {
                if let Some(sub) = schema.get("properties").and_then(|p| p.get(name)) {
                    return (Type::OpenApi(sub), true);
                }
                match schema.get("additionalProperties") {
                    Some(sub) if sub.is_object() => (Type::OpenApi(sub), false),
                    _ => (Type::Deduced, false),
                }
            }
            Type::Deduced => (Type::Deduced, false),
        }
    }

    /// How a list here merges.
    pub fn list_type(self) -> ListType<'s> {
        match self {
            Type::Builtin(Ty::Set) => ListType::Set,
            Type::Builtin(Ty::ListMap { keys, .. }) => ListType::Map(Keys::Builtin(keys)),
            Type::OpenApi(schema) => match str_field(schema, "x-kubernetes-list-type") {
                Some("set") => ListType::Set,
                Some("map") => {
                    let keys = schema
                        .get("x-kubernetes-list-map-keys")
                        .and_then(Value::as_array)
                        .map(Vec::as_slice)
                        .unwrap_or(&[]);
                    ListType::Map(Keys::OpenApi(keys))
                }
                _ => ListType::Atomic,
            },
            _ => ListType::Atomic,
        }
    }

    /// The type of the items of a list here.
    pub fn element(self) -> Type<'s> {
        match self {
            Type::Builtin(Ty::ListMap { item, .. }) => Type::Builtin(item),
            Type::Builtin(_) => Type::Builtin(&builtin::PLAIN),
            Type::OpenApi(schema) => match schema.get("items") {
                Some(items) => Type::OpenApi(items),
                None => Type::Deduced,
            },
            Type::CustomRoot(_) | Type::Deduced => Type::Deduced,
        }
    }

    /// The default of key field `key` of an associative list's items, used
    /// when an item leaves it out (a port's `protocol` is `TCP`).
    pub fn key_default(self, key: &str) -> Option<Value> {
        match self {
            Type::Builtin(Ty::ListMap { defaults, .. }) => defaults
                .iter()
                .find(|(name, _)| *name == key)
                .map(|(_, value)| Value::String((*value).to_string())),
            Type::OpenApi(schema) => schema
                .get("items")
                .and_then(|items| items.get("properties"))
                .and_then(|p| p.get(key))
                .and_then(|p| p.get("default"))
                .cloned(),
            _ => None,
        }
    }
}

fn str_field<'a>(schema: &'a Value, name: &str) -> Option<&'a str> {
    schema.get(name).and_then(Value::as_str)
}
