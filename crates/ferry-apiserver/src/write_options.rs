//! The options every write carries (dry run, subresource, field manager,
//! force), shared by the operations and the field-ownership bookkeeping.

/// Options common to writes.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    pub dry_run: bool,
    /// Write through the `/status` subresource.
    pub status_only: bool,
    /// The field manager the write is recorded under (`?fieldManager=`, or
    /// the client's User-Agent); `None`: "unknown".
    pub field_manager: Option<String>,
    /// A server-side apply takes over fields other managers own instead of
    /// failing with a conflict.
    pub force: bool,
}

impl WriteOptions {
    /// The options of the server's own writes (namespace set-up, garbage
    /// collection), recorded under the manager `ferry-apiserver`.
    pub fn system() -> Self {
        WriteOptions {
            field_manager: Some("ferry-apiserver".into()),
            ..WriteOptions::default()
        }
    }
}
