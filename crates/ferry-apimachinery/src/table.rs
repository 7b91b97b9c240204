//! Server-side printing for `kubectl get`: when kubectl asks for
//! `application/json;as=Table;v=v1;g=meta.k8s.io`, the server answers with a
//! `meta.k8s.io/v1` `Table` whose columns and cells come from here.
//!
//! Built-in resources mirror the printers of
//! `k8s.io/kubernetes/pkg/printers/internalversion` (always computed "wide":
//! kubectl hides priority-1 columns unless `-o wide`). Custom resources use
//! their CRD version's `additionalPrinterColumns`, as the apiextensions
//! server's table convertor does.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::Error;

mod builtin;
mod jsonpath;

pub use jsonpath::{JsonPath, jsonpath, jsonpath_all};

/// `metav1.ObjectMeta` descriptions, as Kubernetes sends them.
const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const CREATION_TIMESTAMP_DESCRIPTION: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// One `meta.k8s.io/v1` `TableColumnDefinition`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnDefinition {
    /// Header text; kubectl upper-cases it.
    pub name: String,
    /// OpenAPI type: `string`, `integer`, `number`, `boolean`, `date`.
    pub column_type: String,
    /// OpenAPI format; `name` marks the object-name column.
    pub format: String,
    /// Human-readable description.
    pub description: String,
    /// 0 = always shown; higher = only with `-o wide`.
    pub priority: i64,
}

impl ColumnDefinition {
    fn new(name: &str, column_type: &str, priority: i64, description: &str) -> Self {
        ColumnDefinition {
            name: name.to_string(),
            column_type: column_type.to_string(),
            format: String::new(),
            description: description.to_string(),
            priority,
        }
    }

    fn name_column() -> Self {
        ColumnDefinition {
            format: "name".to_string(),
            ..Self::new("Name", "string", 0, NAME_DESCRIPTION)
        }
    }

    fn age_column() -> Self {
        Self::new("Age", "string", 0, CREATION_TIMESTAMP_DESCRIPTION)
    }

    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.column_type,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }
}

/// Which row function a printer uses.
#[derive(Debug, Clone)]
enum Rows {
    Builtin(builtin::Printer),
    /// One compiled JSONPath per declared column (after Name).
    CustomResource(Vec<JsonPath>),
}

/// Columns and row cells for one resource.
#[derive(Debug, Clone)]
pub struct TablePrinter {
    columns: Vec<ColumnDefinition>,
    rows: Rows,
}

impl TablePrinter {
    /// The printer for a built-in resource (`resource` is the plural, e.g.
    /// `pods`; `group` is `""` for the core group). Resources without a
    /// dedicated printer get `Name`, `Age`.
    pub fn for_builtin(group: &str, resource: &str) -> Self {
        let printer = builtin::Printer::for_resource(group, resource);
        TablePrinter {
            columns: printer.columns(),
            rows: Rows::Builtin(printer),
        }
    }

    /// The printer for a custom resource version, from its
    /// `additionalPrinterColumns` (`{name, type, format?, description?,
    /// priority?, jsonPath}`). An empty list means the default `Age` column,
    /// as the apiextensions server serves it.
    pub fn from_crd_columns(columns: &[Value]) -> Result<Self, Error> {
        let mut definitions = vec![ColumnDefinition::name_column()];
        let mut paths = Vec::new();
        if columns.is_empty() {
            definitions.push(ColumnDefinition::new(
                "Age",
                "date",
                0,
                CREATION_TIMESTAMP_DESCRIPTION,
            ));
            paths.push(JsonPath::parse(".metadata.creationTimestamp")?);
        }
        for column in columns {
            let text = |field: &str| column.get(field).and_then(Value::as_str);
            let name = text("name").filter(|n| !n.is_empty()).ok_or_else(|| {
                Error::InvalidPrinterColumn {
                    column: column.to_string(),
                    reason: "name must be a non-empty string".to_string(),
                }
            })?;
            let fail = |reason: String| Error::InvalidPrinterColumn {
                column: name.to_string(),
                reason,
            };
            let expr =
                text("jsonPath").ok_or_else(|| fail("jsonPath must be a string".to_string()))?;
            let path = JsonPath::parse(expr).map_err(|error| fail(error.to_string()))?;
            let column_type = text("type").unwrap_or("string");
            if !matches!(
                column_type,
                "string" | "integer" | "number" | "boolean" | "date"
            ) {
                return Err(fail(format!(
                    "type {column_type:?} is not one of string, integer, number, boolean, date"
                )));
            }
            let description = match text("description") {
                Some(description) if !description.is_empty() => description.to_string(),
                _ => format!("Custom resource definition column (in JSONPath format): {expr}"),
            };
            let priority = match column.get("priority") {
                None | Some(Value::Null) => 0,
                Some(value) => value
                    .as_i64()
                    .ok_or_else(|| fail(format!("priority must be an integer, got {value}")))?,
            };
            definitions.push(ColumnDefinition {
                name: name.to_string(),
                column_type: column_type.to_string(),
                format: text("format").unwrap_or("").to_string(),
                description,
                priority,
            });
            paths.push(path);
        }
        Ok(TablePrinter {
            columns: definitions,
            rows: Rows::CustomResource(paths),
        })
    }

    /// The columns as typed values.
    pub fn columns(&self) -> &[ColumnDefinition] {
        &self.columns
    }

    /// The `columnDefinitions` array of the Table.
    pub fn column_definitions(&self) -> Value {
        Value::Array(self.columns.iter().map(ColumnDefinition::to_json).collect())
    }

    /// The cells of one object's row, one per column, as of `now` (ages).
    pub fn row_cells(&self, obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
        match &self.rows {
            Rows::Builtin(printer) => printer.cells(obj, now),
            Rows::CustomResource(paths) => {
                let mut cells = Vec::with_capacity(paths.len() + 1);
                cells.push(json!(builtin::name(obj)));
                for (path, column) in paths.iter().zip(self.columns.iter().skip(1)) {
                    let value = path.evaluate(obj).first().copied();
                    cells.push(custom_resource_cell(&column.column_type, value, now));
                }
                cells
            }
        }
    }

    /// A whole `TableRow`: `{"cells": […], "object": …}` with the object as
    /// `PartialObjectMetadata` (kubectl's default `includeObject=Metadata`;
    /// it reads the namespace and labels from there).
    pub fn row(&self, obj: &Value, now: DateTime<Utc>) -> Value {
        json!({"cells": self.row_cells(obj, now), "object": partial_object_metadata(obj)})
    }
}

/// `meta.k8s.io/v1` `PartialObjectMetadata` for an object.
pub fn partial_object_metadata(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

/// `cellForJSONValue` of the apiextensions table convertor, plus its
/// special case for `string` columns, which are printed as kubectl's
/// JSONPath prints (objects and arrays as compact JSON).
fn custom_resource_cell(column_type: &str, value: Option<&Value>, now: DateTime<Utc>) -> Value {
    let Some(value) = value else {
        return Value::Null;
    };
    match (column_type, value) {
        (_, Value::Null) => Value::Null,
        ("string", Value::String(s)) => Value::String(s.clone()),
        ("string", other) => Value::String(other.to_string()),
        ("integer", Value::Number(n)) => match n.as_i64() {
            Some(i) => json!(i),
            // Go converts float64 to int64 by truncation.
            None => n.as_f64().map_or(Value::Null, |f| json!(f.trunc() as i64)),
        },
        ("number", Value::Number(n)) => n.as_f64().map_or(Value::Null, |f| json!(f)),
        ("boolean", Value::Bool(b)) => json!(b),
        ("date", Value::String(s)) => match DateTime::parse_from_rfc3339(s) {
            Ok(time) => json!(human_age(time.with_timezone(&Utc), now)),
            Err(_) => json!("<invalid>"),
        },
        _ => Value::Null,
    }
}

/// kubectl's `duration.HumanDuration` of `now - created`: `"45s"`,
/// `"2m30s"`, `"15m"`, `"5h10m"`, `"20h"`, `"3d4h"`, `"30d"`, `"2y45d"`,
/// `"9y"`. Up to a second in the future reads as `"0s"` (clock skew); more
/// than that is `"<invalid>"`.
pub fn human_age(created: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let elapsed = now.signed_duration_since(created);
    let seconds = elapsed.num_seconds();
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    if seconds < 0 {
        return "0s".to_string();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let days = (hours / 24) % 365;
        return if days == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{days}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

#[cfg(test)]
mod tests;
