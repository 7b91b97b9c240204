//! Server-side printing: `kubectl get` asks for a `meta.k8s.io/v1` Table
//! and prints our columns (CRD `additionalPrinterColumns` included).

use ferry_apimachinery::table::TablePrinter;
use http::HeaderMap;
use serde_json::{Value, json};

use crate::registry::ResourceDef;

/// True when the client asked for a Table.
pub fn wants_table(headers: &HeaderMap) -> bool {
    headers
        .get_all(http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("as=Table"))
}

/// What each row carries besides its cells (`includeObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    Metadata,
    Object,
}

impl IncludeObject {
    pub fn parse(s: Option<&str>) -> Self {
        match s {
            Some("None") => IncludeObject::None,
            Some("Object") => IncludeObject::Object,
            _ => IncludeObject::Metadata,
        }
    }
}

/// Builds the printer for a resource.
pub fn printer(def: &ResourceDef) -> TablePrinter {
    match &def.printer_columns {
        Some(cols) => TablePrinter::from_crd_columns(cols)
            .unwrap_or_else(|_| TablePrinter::for_builtin(&def.group, "")),
        None => TablePrinter::for_builtin(&def.group, &def.plural),
    }
}

fn row(printer: &TablePrinter, object: &Value, include: IncludeObject) -> Value {
    let cells = printer.row_cells(object, chrono::Utc::now());
    let mut row = json!({"cells": cells});
    match include {
        IncludeObject::None => {}
        IncludeObject::Metadata => {
            row["object"] = json!({
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": object.get("metadata").cloned().unwrap_or(Value::Null),
            });
        }
        IncludeObject::Object => row["object"] = object.clone(),
    }
    row
}

/// A Table of `objects`; `metadata` is the list metadata (resourceVersion,
/// continue). Column definitions are left out when `columns` is false (watch
/// events after the first).
pub fn table(
    def: &ResourceDef,
    objects: &[Value],
    include: IncludeObject,
    metadata: Value,
    columns: bool,
) -> Value {
    let printer = printer(def);
    let rows: Vec<Value> = objects.iter().map(|o| row(&printer, o, include)).collect();
    let column_definitions = if columns {
        printer.column_definitions()
    } else {
        json!([])
    };
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": column_definitions,
        "rows": rows,
    })
}
