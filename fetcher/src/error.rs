//! The error a failed fetch reports. Every message that concerns a URI names
//! it and the cause, because the agent puts `to_string()` verbatim into the
//! TASK_FAILED status message.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::extract::ExtractError;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("invalid fetcher configuration: {0}")]
    Config(String),
    #[error("sandbox '{}': {cause}", .path.display())]
    Sandbox { path: PathBuf, cause: io::Error },
    #[error("fetching '{uri}': unsupported scheme '{scheme}'")]
    UnsupportedScheme { uri: String, scheme: String },
    #[error("fetching '{uri}': {reason}")]
    InvalidUri { uri: String, reason: String },
    /// The transfer itself failed (connection refused, reset, TLS, ...).
    #[error("fetching '{uri}': {cause}")]
    Transfer { uri: String, cause: String },
    #[error("fetching '{uri}': HTTP {status}")]
    HttpStatus { uri: String, status: String },
    #[error(
        "fetching '{uri}': download stalled: no data received for {timeout:?} (fetcher stall timeout)"
    )]
    Stalled { uri: String, timeout: Duration },
    /// Writing or extracting the fetched bytes failed, including the size limit
    /// and archive entries that try to escape the sandbox.
    #[error("fetching '{uri}': {cause}")]
    Extract { uri: String, cause: ExtractError },
    #[error("fetching '{uri}': {what} '{}': {cause}", .path.display())]
    Io {
        uri: String,
        what: &'static str,
        path: PathBuf,
        cause: io::Error,
    },
    #[error("fetching '{uri}': fetcher cache: {cause}")]
    Cache { uri: String, cause: io::Error },
}

impl FetchError {
    /// The URI this error is about, if any.
    pub fn uri(&self) -> Option<&str> {
        match self {
            FetchError::Config(_) | FetchError::Sandbox { .. } => None,
            FetchError::UnsupportedScheme { uri, .. }
            | FetchError::InvalidUri { uri, .. }
            | FetchError::Transfer { uri, .. }
            | FetchError::HttpStatus { uri, .. }
            | FetchError::Stalled { uri, .. }
            | FetchError::Extract { uri, .. }
            | FetchError::Io { uri, .. }
            | FetchError::Cache { uri, .. } => Some(uri),
        }
    }
}
