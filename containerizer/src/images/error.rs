use std::io;
use std::path::PathBuf;

use tepui_fetcher::ExtractError;
use tepui_fetcher::registry::RegistryError;

/// Why pulling, provisioning or releasing an image failed. Messages name the
/// image or layer and the cause (they end up in TASK_FAILED).
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("pulling image '{image}': {source}")]
    Registry {
        image: String,
        #[source]
        source: RegistryError,
    },
    #[error("image '{image}': layer {digest}: {source}")]
    Unpack {
        image: String,
        digest: String,
        #[source]
        source: ExtractError,
    },
    #[error("image '{image}': layer {digest} has unsupported media type '{media_type}'")]
    MediaType {
        image: String,
        digest: String,
        media_type: String,
    },
    #[error("image store: {what} '{}': {source}", .path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("image '{image}': {reason}")]
    Config { image: String, reason: String },
    #[error("image '{image}': no command to run: {reason}")]
    Command { image: String, reason: String },
}

impl ImageError {
    pub(crate) fn io(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> ImageError {
        let path = path.into();
        move |source| ImageError::Io { what, path, source }
    }

    /// Wrong or missing registry credentials.
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, ImageError::Registry { source, .. } if source.is_unauthorized())
    }
}
