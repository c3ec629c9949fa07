//! Archive extraction that never writes outside its target directory.
//!
//! Shared by task artifacts and (later) container image layers, so it streams:
//! a tar is read entry by entry from any `Read`, decompressed on the fly, and
//! nothing is buffered whole. The guarantees, whatever the archive contains:
//! - entries with `..` components are rejected; absolute paths are rejected or
//!   stripped per [`AbsolutePaths`];
//! - paths are resolved beneath the target one component at a time without
//!   following symlinks, so a symlink entry (created verbatim, pointing
//!   anywhere) can never be written through by a later entry;
//! - hard-link targets must name an entry inside the target;
//! - every byte written is charged to a [`Budget`], which stops decompression
//!   bombs.

mod entries;
mod gz;
pub(crate) mod safe;
mod tar;
mod zip;

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

pub(crate) use self::entries::copy_charged as entries_copy;
pub use self::gz::extract_gz;
pub use self::safe::{Ownership, SafeDir};
pub use self::tar::extract_tar;
pub use self::zip::extract_zip;

/// Why an extraction (or a write into the sandbox) failed.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("archive entry '{0}' escapes the target directory")]
    Escapes(String),
    #[error("archive entry '{0}' has an absolute path")]
    Absolute(String),
    #[error("archive entry '{entry}' goes through symlink '{symlink}'")]
    ThroughSymlink { entry: String, symlink: String },
    #[error("archive entry '{entry}': hard link target '{target}' escapes the target directory")]
    LinkEscapes { entry: String, target: String },
    #[error("size limit of {limit} bytes exceeded")]
    SizeLimit { limit: u64 },
    #[error("archive has more than {limit} entries")]
    TooManyEntries { limit: u64 },
    #[error("reading archive: {0}")]
    Read(io::Error),
    #[error("archive entry '{entry}': {cause}")]
    Entry { entry: String, cause: io::Error },
    #[error("writing '{path}': {cause}")]
    Write { path: String, cause: io::Error },
}

/// What to do with an archive entry whose path starts with `/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AbsolutePaths {
    /// Fail the extraction (the default for artifacts).
    #[default]
    Reject,
    /// Strip leading slashes and extract beneath the target, as GNU tar and
    /// container runtimes do.
    Strip,
}

/// The compression wrapped around a tar stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Bzip2,
    Xz,
    Zstd,
}

/// An archive format recognised from an artifact's file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    Tar(Compression),
    /// A single gzip-compressed file (`x.gz` becomes `x`).
    Gz,
    Zip,
}

impl ArchiveFormat {
    /// Recognises exactly the suffixes the Mesos fetcher extracts (matched
    /// case-sensitively, as Mesos does).
    pub fn detect(file_name: &str) -> Option<ArchiveFormat> {
        const TABLE: &[(&str, ArchiveFormat)] = &[
            (".tar", ArchiveFormat::Tar(Compression::None)),
            (".tar.gz", ArchiveFormat::Tar(Compression::Gzip)),
            (".tgz", ArchiveFormat::Tar(Compression::Gzip)),
            (".tar.bz2", ArchiveFormat::Tar(Compression::Bzip2)),
            (".tbz2", ArchiveFormat::Tar(Compression::Bzip2)),
            (".tar.xz", ArchiveFormat::Tar(Compression::Xz)),
            (".txz", ArchiveFormat::Tar(Compression::Xz)),
            (".zip", ArchiveFormat::Zip),
        ];
        TABLE
            .iter()
            .find(|(suffix, _)| file_name.ends_with(suffix))
            .map(|(_, f)| *f)
            .or_else(|| file_name.ends_with(".gz").then_some(ArchiveFormat::Gz))
    }
}

/// A byte allowance shared by everything one fetch writes (downloads and
/// extracted contents), safe to charge from several threads.
#[derive(Debug)]
pub struct Budget {
    limit: u64,
    used: AtomicU64,
}

impl Budget {
    pub fn new(limit: u64) -> Budget {
        Budget {
            limit,
            used: AtomicU64::new(0),
        }
    }

    pub fn unlimited() -> Budget {
        Budget::new(u64::MAX)
    }

    /// Records `n` more bytes, failing once the total passes the limit.
    pub fn charge(&self, n: u64) -> Result<(), ExtractError> {
        let before = self.used.fetch_add(n, Ordering::Relaxed);
        if before.saturating_add(n) > self.limit {
            return Err(ExtractError::SizeLimit { limit: self.limit });
        }
        Ok(())
    }

    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }
}

/// What a hook decides for one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryAction {
    Extract,
    Skip,
}

/// Sees every entry before it is created. Image layers will implement OCI
/// whiteouts here (delete the named sibling through the [`SafeDir`], then skip
/// the marker); artifacts use no hook.
pub trait EntryHook {
    /// `path` is the entry's normalised path relative to the target.
    fn on_entry(&mut self, target: &SafeDir, path: &std::path::Path) -> io::Result<EntryAction>;
}

/// How to extract.
pub struct ExtractOptions<'a> {
    pub budget: &'a Budget,
    pub max_entries: u64,
    pub ownership: Ownership,
    pub absolute_paths: AbsolutePaths,
    /// Restore modification times from the archive.
    pub preserve_mtime: bool,
    /// Restore extended attributes (PAX `SCHILY.xattr.*` records). Off for
    /// artifacts; image layers turn it on.
    pub xattrs: bool,
    pub hook: Option<&'a mut dyn EntryHook>,
}

impl<'a> ExtractOptions<'a> {
    pub fn new(budget: &'a Budget) -> ExtractOptions<'a> {
        ExtractOptions {
            budget,
            max_entries: 1_000_000,
            ownership: Ownership::Current,
            absolute_paths: AbsolutePaths::Reject,
            preserve_mtime: true,
            xattrs: false,
            hook: None,
        }
    }
}

/// Unwraps an [`ExtractError`] smuggled through a `Read` (the size limit hit by
/// a tee, say) so it is reported as itself rather than as a read failure.
pub(crate) fn read_error(e: io::Error) -> ExtractError {
    if e.get_ref().is_some_and(|inner| inner.is::<ExtractError>()) {
        if let Some(inner) = e.into_inner() {
            if let Ok(ours) = inner.downcast::<ExtractError>() {
                return *ours;
            }
            return ExtractError::Read(io::Error::other("unreadable error"));
        }
        return ExtractError::Read(io::Error::other("unreadable error"));
    }
    ExtractError::Read(e)
}

/// What an extraction produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Entries created (files, directories, links, ...).
    pub entries: u64,
    /// Bytes of file contents written.
    pub bytes: u64,
    /// Distinct first path components created beneath the target.
    pub top_level: BTreeSet<OsString>,
}
