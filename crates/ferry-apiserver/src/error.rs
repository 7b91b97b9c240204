//! The crate's one error type, and its mapping to a Kubernetes `Status`.

use ferry_apimachinery::field::{self, FieldError};
use serde_json::{Value, json};

/// Everything that can go wrong in the API server. Request errors carry what a
/// Kubernetes client needs to build its own error (code, reason, message,
/// details); startup errors carry their cause.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 400: the request is malformed (body, query, path).
    #[error("{0}")]
    BadRequest(String),
    /// 401: no or unknown bearer token.
    #[error("Unauthorized")]
    Unauthorized,
    /// 403: the identity may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such object or resource.
    #[error("{resource} \"{name}\" not found")]
    NotFound { resource: String, name: String },
    /// 404 for a path that names no resource at all.
    #[error("the server could not find the requested resource")]
    NoSuchResource,
    /// 405: the resource exists but not this verb.
    #[error("the server does not allow this method on the requested resource")]
    MethodNotAllowed,
    /// 409 on create: the name is taken.
    #[error("{resource} \"{name}\" already exists")]
    AlreadyExists { resource: String, name: String },
    /// 409 on update: the object changed since the client read it.
    #[error(
        "Operation cannot be fulfilled on {resource} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
    )]
    Conflict { resource: String, name: String },
    /// 409 for a failed precondition other than resourceVersion (uid, …).
    #[error("Operation cannot be fulfilled on {resource} \"{name}\": {message}")]
    Precondition {
        resource: String,
        name: String,
        message: String,
    },
    /// 409 on server-side apply: fields other managers own would change;
    /// one `FieldManagerConflict` cause (field, message) per field.
    #[error("{message}")]
    ApplyConflict {
        message: String,
        causes: Vec<(String, String)>,
    },
    /// 410: the requested resourceVersion has been compacted away.
    #[error("too old resource version: {requested} ({oldest})")]
    Expired { requested: u64, oldest: u64 },
    /// 504: a resourceVersion newer than the newest revision was asked for.
    #[error("Too large resource version: {requested}, current: {current}")]
    TooLargeRevision { requested: u64, current: u64 },
    /// 413: the body is over the configured limit.
    #[error("the request body is larger than the limit of {limit} bytes")]
    TooLarge { limit: usize },
    /// 415: a patch type the resource does not support.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// More writes in flight than `--max-mutating-requests-inflight` allows.
    #[error("too many requests, please try again later")]
    TooManyRequests,
    /// 422: the object is invalid; one cause per field (`details.causes`).
    #[error("{kind} \"{name}\" is invalid: {}", field::summarize(causes))]
    Invalid {
        kind: String,
        name: String,
        causes: Vec<FieldError>,
    },
    /// 500: a storage failure; the write was not acknowledged.
    #[error("storage: {0}")]
    Storage(#[from] rusqlite::Error),
    /// 500: anything else that is our fault.
    #[error("internal error: {0}")]
    Internal(String),
    /// Startup: reading or writing the data directory failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// Startup: certificates could not be made or loaded.
    #[error("tls: {0}")]
    Tls(String),
    /// Startup: a configuration value is unusable (which, and why).
    #[error("{0}")]
    Config(String),
}

impl Error {
    /// Wraps an I/O error with what we were doing.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// 422 for one invalid field.
    pub fn invalid(kind: impl Into<String>, name: impl Into<String>, cause: FieldError) -> Self {
        Error::Invalid {
            kind: kind.into(),
            name: name.into(),
            causes: vec![cause],
        }
    }

    /// The HTTP status code.
    pub fn code(&self) -> u16 {
        match self {
            Error::BadRequest(_) => 400,
            Error::Unauthorized => 401,
            Error::Forbidden(_) => 403,
            Error::NotFound { .. } | Error::NoSuchResource => 404,
            Error::MethodNotAllowed => 405,
            Error::AlreadyExists { .. }
            | Error::Conflict { .. }
            | Error::Precondition { .. }
            | Error::ApplyConflict { .. } => 409,
            Error::Expired { .. } => 410,
            Error::TooLarge { .. } => 413,
            Error::UnsupportedMediaType(_) => 415,
            Error::Invalid { .. } => 422,
            Error::TooManyRequests => 429,
            Error::TooLargeRevision { .. } => 504,
            Error::Storage(_)
            | Error::Internal(_)
            | Error::Io { .. }
            | Error::Tls(_)
            | Error::Config(_) => 500,
        }
    }

    /// The machine-readable `reason` of the Status.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::BadRequest(_) => "BadRequest",
            Error::Unauthorized => "Unauthorized",
            Error::Forbidden(_) => "Forbidden",
            Error::NotFound { .. } | Error::NoSuchResource => "NotFound",
            Error::MethodNotAllowed => "MethodNotAllowed",
            Error::AlreadyExists { .. } => "AlreadyExists",
            Error::Conflict { .. } | Error::Precondition { .. } | Error::ApplyConflict { .. } => {
                "Conflict"
            }
            Error::Expired { .. } => "Expired",
            Error::TooLarge { .. } => "RequestEntityTooLarge",
            Error::UnsupportedMediaType(_) => "UnsupportedMediaType",
            Error::Invalid { .. } => "Invalid",
            Error::TooManyRequests => "TooManyRequests",
            Error::TooLargeRevision { .. } => "Timeout",
            Error::Storage(_)
            | Error::Internal(_)
            | Error::Io { .. }
            | Error::Tls(_)
            | Error::Config(_) => "InternalError",
        }
    }

    /// The `meta.k8s.io/v1` `Status` object clients parse.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code(),
        });
        let details = match self {
            Error::NotFound { resource, name }
            | Error::AlreadyExists { resource, name }
            | Error::Conflict { resource, name }
            | Error::Precondition { resource, name, .. } => Some(details(resource, name)),
            Error::Invalid { kind, name, causes } => Some(json!({
                "name": name,
                "kind": kind,
                "causes": causes.iter().map(FieldError::cause).collect::<Vec<_>>(),
            })),
            Error::ApplyConflict { causes, .. } => Some(json!({
                "causes": causes.iter().map(|(field, message)| json!({
                    "reason": "FieldManagerConflict",
                    "message": message,
                    "field": field,
                })).collect::<Vec<_>>(),
            })),
            Error::TooManyRequests => Some(json!({"retryAfterSeconds": RETRY_AFTER_SECONDS})),
            // client-go recognises this cause (IsTooLargeResourceVersion).
            Error::TooLargeRevision { .. } => Some(json!({
                "causes": [{"reason": "ResourceVersionTooLarge",
                            "message": "Too large resource version"}],
                "retryAfterSeconds": 1,
            })),
            _ => None,
        };
        if let Some(details) = details {
            status["details"] = details;
        }
        status
    }
}

/// What a 429 asks the client to wait (the `Retry-After` header and the
/// Status's `details.retryAfterSeconds`), as kube-apiserver answers.
pub const RETRY_AFTER_SECONDS: u64 = 1;

/// `resource` is `plural` or `plural.group`, as Kubernetes prints it.
fn details(resource: &str, name: &str) -> Value {
    let (kind, group) = resource.split_once('.').unwrap_or((resource, ""));
    json!({"name": name, "group": group, "kind": kind})
}

/// Result with the crate's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
