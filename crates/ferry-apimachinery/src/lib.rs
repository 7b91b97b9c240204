//! Kubernetes object machinery with no I/O: label and field selectors,
//! JSON merge / JSON / strategic-merge patches, and server-side printing
//! (Table columns, JSONPath). It is not a client and not a server.
//!
//! Everything here works on `serde_json::Value` objects exactly as they are
//! stored and served, so the API server needs no typed structs per kind.
//!
//! - [`selector`]: `LabelSelector` / `FieldSelector` parsing, matching and
//!   canonical printing, `metav1.LabelSelector` conversion.
//! - [`patch`]: RFC 7386 merge patch, RFC 6902 JSON patch and Kubernetes
//!   strategic merge patch for the built-in kinds ferry serves.
//! - [`table`]: `meta.k8s.io/v1` Table columns and cells for `kubectl get`,
//!   CRD `additionalPrinterColumns`, JSONPath and kubectl's age format.
//! - [`field`]: field errors (`details.causes` of a 422) as Kubernetes prints
//!   them.
//! - [`schema`]: CRD OpenAPI v3 schemas applied to custom objects: pruning,
//!   defaults, validation.
//! - [`managed`]: field ownership (`metadata.managedFields`) and
//!   server-side apply with structured-merge semantics.
#![forbid(unsafe_code)]

mod error;
pub mod field;
pub mod managed;
pub mod patch;
pub mod schema;
pub mod selector;
pub mod table;

pub use error::Error;
pub use field::{FieldError, FieldErrorKind};
pub use patch::{json_patch, merge_patch, strategic_merge_patch};
pub use selector::{
    FieldSelector, LabelSelector, Operator, Requirement, field_value, label_selector_from_api,
};
pub use table::{TablePrinter, human_age, jsonpath};
