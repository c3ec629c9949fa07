//! A Docker Registry v2 / OCI distribution client on reqwest: references,
//! manifest negotiation (all four manifest types), platform selection, digest
//! verification, anonymous / basic / bearer auth, retries with backoff, and
//! layer blobs streamed (with resume) to a blocking reader that verifies them
//! in the same pass as the unpack.

mod auth;
mod blob;
mod client;
pub mod manifest;
mod reference;

use std::time::Duration;

pub use auth::Credentials;
pub use blob::BlobReader;
pub use client::{RegistryClient, RegistryConfig, Repository, ResolvedImage};
pub use manifest::{ContainerConfig, Descriptor, ImageConfig, LayerCompression, Platform};
pub use reference::{DOCKER_HUB, Reference, check_digest};

/// Every message names the image, blob or URL and the cause, because the
/// agent reports it verbatim in TASK_FAILED.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("invalid image reference '{reference}': {reason}")]
    InvalidReference { reference: String, reason: String },
    #[error("registry configuration: {0}")]
    Config(String),
    #[error("authentication failed for {repository}: {reason}")]
    Unauthorized { repository: String, reason: String },
    #[error("fetching '{url}': {cause}")]
    Transfer { url: String, cause: String },
    #[error("fetching '{url}': HTTP {status} {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("fetching '{url}': no data received for {timeout:?}")]
    Stalled { url: String, timeout: Duration },
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{what}: size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error("image {reference}: {reason}")]
    Manifest { reference: String, reason: String },
    #[error("image {reference} has no manifest for {platform} (available: {available})")]
    NoPlatform {
        reference: String,
        platform: String,
        available: String,
    },
}

impl RegistryError {
    /// An authentication failure (wrong or missing credentials).
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, RegistryError::Unauthorized { .. })
    }
}
