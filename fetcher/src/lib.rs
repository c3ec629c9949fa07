//! tepui-fetcher owns getting bytes onto the host: artifact URIs
//! (`CommandInfo.uris`) and registry blobs over HTTP(S) or from files, the fetcher
//! cache, and extraction of archives that never writes outside its target.
//!
//! It must not know about containers, cgroups or tasks: the containerizer and the
//! agent decide what to fetch and where; this crate only fetches and unpacks.
//!
//! Entry point: [`Fetcher::fetch`] lays a task's `CommandInfo.URI`s into its
//! sandbox. [`extract`] holds the streaming, confined archive extraction that
//! container image layers will share. See `fetcher/README.md` for the safety
//! model and where behaviour deliberately differs from Mesos.

mod cache;
mod error;
pub mod extract;
mod fetch;
mod http;
mod lay;
mod local;
mod metrics;
pub mod registry;
mod stream;
pub mod uri;

pub use error::FetchError;
pub use extract::{
    ArchiveFormat, Budget, Compression, ExtractError, ExtractOptions, Ownership, SafeDir, Summary,
};
pub use fetch::{CacheStatus, FetchOptions, FetchResult, Fetcher, FetcherConfig};
pub use metrics::MetricsSnapshot;
pub use tepui_proto::v1::command_info::Uri;
