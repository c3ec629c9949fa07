//! Container images: pulling from Docker/OCI registries into a
//! content-addressed layer store, and assembling a container's rootfs from
//! the layers (overlayfs, or a copy when overlay is unavailable).
//!
//! Layout under the store root (e.g. `<agent work dir>/images`):
//! - `layers/sha256/<hex>/rootfs` + `layer.json`: one unpacked layer;
//! - `staging/`: layers being unpacked (wiped when the store opens);
//! - `images/<manifest hex>.json`: what a pull resolved (for GC and reuse).
//!
//! Mount ownership: [`ImageStore::provision`] mounts the overlay in the
//! calling process's mount namespace (the agent's; the supervisor's private
//! namespace is a slave of it, so the container sees it), and
//! [`ImageStore::release`] unmounts it and removes the container's dirs
//! through [`safe_remove`](crate::safe_remove). Nothing in the layer store
//! is ever a mount point.

mod command;
mod error;
mod layers;
mod rootfs;
mod whiteout;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use tepui_fetcher::registry::{
    ContainerConfig, Credentials, Reference, RegistryClient, RegistryConfig, RegistryError,
};

pub use command::apply_image_config;
pub use error::ImageError;
pub use rootfs::{Rootfs, RootfsBackend};

pub use layers::unpack_layer;
use layers::{LayerOrigin, LayerStore};

/// A pulled image: its layers' directories (bottom first) and the config
/// fields the containerizer uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    pub reference: String,
    /// The platform manifest's digest.
    pub manifest_digest: String,
    pub layer_digests: Vec<String>,
    /// Unpacked layer trees, bottom layer first.
    pub layers: Vec<PathBuf>,
    pub config: ContainerConfig,
}

/// Pull counters (cumulative), for the agent's metrics endpoint.
#[derive(Debug, Default)]
pub struct ImageMetrics {
    pub pulls: AtomicU64,
    pub pull_failures: AtomicU64,
    pub layers_fetched: AtomicU64,
    pub layer_cache_hits: AtomicU64,
    pub bytes_fetched: AtomicU64,
}

/// Per-layer byte counters of a pull in progress, shared with whoever
/// reports progress (the agent API, the CLI).
#[derive(Debug, Default)]
pub struct PullProgress {
    layers: std::sync::Mutex<Vec<(String, u64, Arc<AtomicU64>)>>,
}

impl PullProgress {
    fn track(&self, digest: &str, size: u64) -> Arc<AtomicU64> {
        let counter = Arc::new(AtomicU64::new(0));
        self.layers.lock().unwrap_or_else(|e| e.into_inner()).push((
            digest.to_string(),
            size,
            counter.clone(),
        ));
        counter
    }

    /// `(digest, bytes so far, total bytes)` per layer.
    pub fn snapshot(&self) -> Vec<(String, u64, u64)> {
        self.layers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(d, size, n)| (d.clone(), n.load(Ordering::Relaxed), *size))
            .collect()
    }

    pub fn totals(&self) -> (u64, u64) {
        self.snapshot()
            .iter()
            .fold((0, 0), |(a, b), (_, n, s)| (a + n, b + s))
    }
}

#[derive(Debug)]
pub struct ImageStore {
    root: PathBuf,
    client: Arc<RegistryClient>,
    layers: LayerStore,
    metrics: ImageMetrics,
    backend: RootfsBackend,
}

impl ImageStore {
    /// Opens (creating) the store at `root`, wiping unfinished pulls.
    pub fn open(
        root: impl Into<PathBuf>,
        registry: RegistryConfig,
    ) -> Result<ImageStore, ImageError> {
        let root = root.into();
        let client = RegistryClient::new(registry).map_err(|source| ImageError::Registry {
            image: String::new(),
            source,
        })?;
        let layers = LayerStore::open(&root)?;
        let images = root.join("images");
        std::fs::create_dir_all(&images).map_err(ImageError::io("creating", &images))?;
        Ok(ImageStore {
            root,
            client: Arc::new(client),
            layers,
            metrics: ImageMetrics::default(),
            backend: RootfsBackend::Overlay,
        })
    }

    /// Overlay (default, copy fallback when mounting fails) or always copy.
    pub fn with_backend(mut self, backend: RootfsBackend) -> Self {
        self.backend = backend;
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn metrics(&self) -> &ImageMetrics {
        &self.metrics
    }

    pub fn registry(&self) -> &RegistryClient {
        &self.client
    }

    pub async fn pull(
        &self,
        reference: &str,
        credentials: Option<&Credentials>,
    ) -> Result<Image, ImageError> {
        self.pull_with_progress(reference, credentials, &PullProgress::default())
            .await
    }

    /// Resolves `reference` (mirrors first for host-less references), then
    /// fetches and unpacks the missing layers, all layers in parallel.
    pub async fn pull_with_progress(
        &self,
        reference: &str,
        credentials: Option<&Credentials>,
        progress: &PullProgress,
    ) -> Result<Image, ImageError> {
        self.metrics.pulls.fetch_add(1, Ordering::Relaxed);
        let result = self.pull_inner(reference, credentials, progress).await;
        if result.is_err() {
            self.metrics.pull_failures.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    async fn pull_inner(
        &self,
        reference: &str,
        credentials: Option<&Credentials>,
        progress: &PullProgress,
    ) -> Result<Image, ImageError> {
        let registry_err = |source: RegistryError| ImageError::Registry {
            image: reference.to_string(),
            source,
        };
        let parsed = Reference::parse(reference).map_err(registry_err)?;
        let repos = self
            .client
            .repositories(&parsed, credentials)
            .map_err(registry_err)?;
        let mut resolved = None;
        let mut last_error = None;
        for repo in &repos {
            match self.client.resolve(repo, &parsed).await {
                Ok(r) => {
                    resolved = Some(r);
                    break;
                }
                Err(e) => {
                    tracing::info!(image = reference, registry = %repo.base, error = %e, "resolving image failed");
                    last_error = Some(e);
                }
            }
        }
        let resolved = match (resolved, last_error) {
            (Some(r), _) => r,
            (None, Some(e)) => return Err(registry_err(e)),
            (None, None) => {
                return Err(ImageError::Config {
                    image: reference.to_string(),
                    reason: "no registry to pull from".into(),
                });
            }
        };
        let fetches = resolved.layers.iter().map(|desc| {
            let counter = progress.track(&desc.digest, desc.size);
            self.layers
                .ensure(&self.client, &resolved.repository, desc, reference, counter)
        });
        let origins = futures_util::future::try_join_all(fetches).await?;
        for origin in origins {
            match origin {
                LayerOrigin::Cached => {
                    self.metrics
                        .layer_cache_hits
                        .fetch_add(1, Ordering::Relaxed);
                }
                LayerOrigin::Fetched { bytes } => {
                    self.metrics.layers_fetched.fetch_add(1, Ordering::Relaxed);
                    self.metrics
                        .bytes_fetched
                        .fetch_add(bytes, Ordering::Relaxed);
                }
            }
        }
        let image = Image {
            reference: reference.to_string(),
            manifest_digest: resolved.manifest_digest.clone(),
            layer_digests: resolved.layers.iter().map(|d| d.digest.clone()).collect(),
            layers: resolved
                .layers
                .iter()
                .map(|d| self.layers.layer_rootfs(&d.digest))
                .collect(),
            config: resolved.config.config.clone().unwrap_or_default(),
        };
        let record = self.root.join("images").join(format!(
            "{}.json",
            resolved.manifest_digest.trim_start_matches("sha256:")
        ));
        let json = serde_json::to_vec_pretty(&image).unwrap_or_default();
        crate::atomic::write_atomic(&record, &json).map_err(ImageError::io("writing", &record))?;
        Ok(image)
    }

    /// Assembles `image`'s rootfs under `container_dir` (which must not
    /// exist yet or be empty): `rootfs/` is the mount point, `upper/` and
    /// `work/` the overlay's writable dirs.
    pub fn provision(&self, image: &Image, container_dir: &Path) -> Result<Rootfs, ImageError> {
        rootfs::provision(&image.layers, container_dir, self.backend)
    }

    /// Unmounts a rootfs and removes its container dir.
    pub fn release(&self, rootfs: &Rootfs) -> Result<(), ImageError> {
        rootfs::release(rootfs)
    }
}
