//! The content-addressed layer store: `<root>/layers/sha256/<hex>/rootfs` is
//! one unpacked layer (an overlay lower dir), shared by every image that
//! lists the blob. A layer is unpacked into `<root>/staging/<unique>/` and
//! renamed into place only after its digest verified, so a crash mid-pull
//! leaves nothing half-visible (staging is wiped when the store opens).
//! Concurrent pulls of one layer take a per-digest lock: one downloads, the
//! others find it in place.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tepui_fetcher::extract::AbsolutePaths;
use tepui_fetcher::registry::{
    BlobReader, Descriptor, LayerCompression, RegistryClient, Repository, check_digest,
};
use tepui_fetcher::{Budget, Compression, ExtractOptions, Ownership, SafeDir};

use super::ImageError;
use super::whiteout::Whiteouts;
use crate::safe_remove::remove_tree;

/// What `layer.json` beside a layer's rootfs records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LayerRecord {
    pub digest: String,
    pub media_type: String,
    pub compressed_size: u64,
    pub entries: u64,
    pub bytes: u64,
}

#[derive(Debug)]
pub(crate) struct LayerStore {
    root: PathBuf,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    staging_seq: AtomicU64,
}

/// Whether a layer came from the registry or was already in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LayerOrigin {
    Fetched { bytes: u64 },
    Cached,
}

impl LayerStore {
    pub(crate) fn open(root: &Path) -> Result<LayerStore, ImageError> {
        let staging = root.join("staging");
        // Leftovers of a crashed pull: never visible, now removed. Nothing
        // is ever mounted under the store, and remove_tree checks.
        remove_tree(&staging).map_err(ImageError::io("removing stale staging dir", &staging))?;
        for dir in [root.join("layers/sha256"), staging] {
            std::fs::create_dir_all(&dir).map_err(ImageError::io("creating", &dir))?;
        }
        Ok(LayerStore {
            root: root.to_path_buf(),
            locks: Mutex::new(HashMap::new()),
            staging_seq: AtomicU64::new(0),
        })
    }

    pub(crate) fn layer_dir(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.root.join("layers/sha256").join(hex)
    }

    /// A fresh name in staging (unique within this process's store).
    pub(crate) fn staging_name(&self, what: &str) -> PathBuf {
        self.root.join("staging").join(format!(
            "{what}-{}-{}",
            std::process::id(),
            self.staging_seq.fetch_add(1, Ordering::Relaxed)
        ))
    }

    /// The unpacked tree (what overlay mounts as a lower dir).
    pub(crate) fn layer_rootfs(&self, digest: &str) -> PathBuf {
        self.layer_dir(digest).join("rootfs")
    }

    fn lock_for(&self, digest: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        locks
            .entry(digest.to_string())
            .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(())))
            .clone()
    }

    /// Held while a layer is deleted so no pull publishes or reuses it
    /// meanwhile.
    pub(crate) async fn lock(&self, digest: &str) -> tokio::sync::OwnedMutexGuard<()> {
        self.lock_for(digest).lock_owned().await
    }

    /// Makes sure the layer `desc` is in the store, downloading and unpacking
    /// it (streamed, verified in the same pass) when it is not.
    pub(crate) async fn ensure(
        &self,
        client: &Arc<RegistryClient>,
        repo: &Repository,
        desc: &Descriptor,
        image: &str,
        progress: Arc<AtomicU64>,
    ) -> Result<LayerOrigin, ImageError> {
        check_digest(&desc.digest).map_err(|reason| ImageError::Config {
            image: image.to_string(),
            reason,
        })?;
        let compression = LayerCompression::from_media_type(&desc.media_type).ok_or_else(|| {
            ImageError::MediaType {
                image: image.to_string(),
                digest: desc.digest.clone(),
                media_type: desc.media_type.clone(),
            }
        })?;
        let _guard = self.lock(&desc.digest).await;
        let final_dir = self.layer_dir(&desc.digest);
        if final_dir.join("layer.json").exists() {
            progress.store(desc.size, Ordering::Relaxed);
            return Ok(LayerOrigin::Cached);
        }
        let hex = desc.digest.trim_start_matches("sha256:");
        let staging = self.root.join("staging").join(format!(
            "{}-{}-{}",
            &hex[..16],
            std::process::id(),
            self.staging_seq.fetch_add(1, Ordering::Relaxed)
        ));
        let staging_rootfs = staging.join("rootfs");
        std::fs::create_dir_all(&staging_rootfs)
            .map_err(ImageError::io("creating", &staging_rootfs))?;
        // Aborts the download if this future is dropped (a cancelled pull):
        // the extractor then fails on the closed channel and cleans up.
        let (reader, download) = client.open_blob(repo, desc, progress);
        let mut download = AbortOnDrop(download);
        let rootfs = staging_rootfs.clone();
        let staging_dir = staging.clone();
        let unpack = tokio::task::spawn_blocking(move || {
            let result = unpack(reader, compression, &rootfs);
            // Also reached when the pull was cancelled and nobody awaits us.
            if result.is_err() {
                let _ = remove_tree(&staging_dir);
            }
            result
        });
        let unpacked = unpack.await.map_err(|e| ImageError::Config {
            image: image.to_string(),
            reason: format!("layer {} unpack task: {e}", desc.digest),
        })?;
        let downloaded = match (&mut download.0).await {
            Ok(r) => r,
            Err(e) => Err(tepui_fetcher::registry::RegistryError::Transfer {
                url: desc.digest.clone(),
                cause: e.to_string(),
            }),
        };
        let result = match (downloaded, unpacked) {
            (Err(source), _) => Err(ImageError::Registry {
                image: image.to_string(),
                source,
            }),
            (Ok(_), Err(UnpackError::Extract(source))) => Err(ImageError::Unpack {
                image: image.to_string(),
                digest: desc.digest.clone(),
                source,
            }),
            (Ok(_), Err(UnpackError::Verify(source))) => Err(ImageError::Registry {
                image: image.to_string(),
                source,
            }),
            (Ok(_), Ok(summary)) => Ok(summary),
        };
        let summary = match result {
            Ok(s) => s,
            Err(e) => {
                if let Err(cleanup) = remove_tree(&staging) {
                    tracing::warn!(dir = %staging.display(), error = %cleanup, "removing failed layer staging dir");
                }
                return Err(e);
            }
        };
        let record = LayerRecord {
            digest: desc.digest.clone(),
            media_type: desc.media_type.clone(),
            compressed_size: desc.size,
            entries: summary.entries,
            bytes: summary.bytes,
        };
        let json = serde_json::to_vec_pretty(&record).unwrap_or_default();
        let meta = staging.join("layer.json");
        std::fs::write(&meta, json).map_err(ImageError::io("writing", &meta))?;
        // The publish step: one rename, atomic on the store's filesystem.
        std::fs::rename(&staging, &final_dir)
            .map_err(ImageError::io("publishing layer", &final_dir))?;
        Ok(LayerOrigin::Fetched { bytes: desc.size })
    }
}

struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub(crate) enum UnpackError {
    Extract(tepui_fetcher::ExtractError),
    Verify(tepui_fetcher::registry::RegistryError),
}

/// Unpacks one layer stream, then verifies the blob's size and digest from
/// the same bytes.
pub(crate) fn unpack(
    mut reader: BlobReader,
    compression: LayerCompression,
    rootfs: &Path,
) -> Result<tepui_fetcher::Summary, UnpackError> {
    let summary = unpack_layer(&mut reader, compression, rootfs).map_err(UnpackError::Extract)?;
    reader.finish().map_err(UnpackError::Verify)?;
    Ok(summary)
}

/// Unpacks a layer tar into `rootfs` as root would (owners, every mode bit,
/// devices, xattrs, mtimes), turning OCI whiteouts into overlay ones. An
/// entry that would land outside `rootfs` (`..`, an absolute path, a
/// symlink or hard link escape) fails the whole layer: registries serve
/// layers anyone may have built, and a layer that aims outside its
/// directory is hostile, not sloppy. (Absolute symlink *targets* are fine:
/// they are never followed while extracting.)
pub fn unpack_layer<R: std::io::Read>(
    reader: R,
    compression: LayerCompression,
    rootfs: &Path,
) -> Result<tepui_fetcher::Summary, tepui_fetcher::ExtractError> {
    let dir = SafeDir::open(rootfs).map_err(|cause| tepui_fetcher::ExtractError::Write {
        path: rootfs.display().to_string(),
        cause,
    })?;
    let budget = Budget::unlimited();
    let mut hook = Whiteouts;
    let mut opts = ExtractOptions::new(&budget);
    opts.ownership = Ownership::FromArchive;
    opts.absolute_paths = AbsolutePaths::Reject;
    opts.xattrs = true;
    opts.max_entries = 50_000_000;
    opts.hook = Some(&mut hook);
    let compression = match compression {
        LayerCompression::None => Compression::None,
        LayerCompression::Gzip => Compression::Gzip,
        LayerCompression::Zstd => Compression::Zstd,
    };
    tepui_fetcher::extract::extract_tar(reader, compression, &dir, &mut opts)
}
