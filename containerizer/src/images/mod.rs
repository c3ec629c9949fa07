//! Container images: pulling from Docker/OCI registries into a
//! content-addressed layer store, and assembling a container's rootfs from
//! the layers (overlayfs, or a copy when overlay is unavailable).
//!
//! Layout under the store root (e.g. `<agent work dir>/images`):
//! - `layers/sha256/<hex>/rootfs` + `layer.json`: one unpacked layer;
//! - `staging/`: layers being unpacked (wiped when the store opens);
//! - `images/<manifest hex>.json`: what a pull resolved (for GC and reuse);
//!   its mtime is the image's last use (every pull rewrites it);
//! - `containers/<pod>/<container>/`: a provisioned rootfs, with
//!   `image.json` naming the image and layers it mounts, which GC keeps.
//!
//! Mount ownership: [`ImageStore::prepare_pod`] makes `containers/<pod>` a
//! shared mount before the pod's supervisor starts; [`ImageStore::provision`]
//! mounts the overlay below it in the calling process's mount namespace (the
//! agent's; the supervisor's private namespace is a slave of it, and the
//! shared pod dir propagates the mount into it even where the host's `/` is
//! private), and
//! [`ImageStore::release`] unmounts it and removes the container's dirs
//! through [`safe_remove`](crate::safe_remove). Nothing in the layer store
//! is ever a mount point.

mod command;
mod error;
mod gc;
mod layers;
mod pod_mount;
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
    pub images_removed: AtomicU64,
    pub layers_removed: AtomicU64,
    pub bytes_freed: AtomicU64,
}

/// A copy of [`ImageMetrics`] (what `/metrics/snapshot` reports).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageMetricsSnapshot {
    pub pulls: u64,
    pub pull_failures: u64,
    pub layers_fetched: u64,
    pub layer_cache_hits: u64,
    pub bytes_fetched: u64,
    pub images_removed: u64,
    pub layers_removed: u64,
    pub bytes_freed: u64,
}

impl ImageMetrics {
    pub fn snapshot(&self) -> ImageMetricsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ImageMetricsSnapshot {
            pulls: get(&self.pulls),
            pull_failures: get(&self.pull_failures),
            layers_fetched: get(&self.layers_fetched),
            layer_cache_hits: get(&self.layer_cache_hits),
            bytes_fetched: get(&self.bytes_fetched),
            images_removed: get(&self.images_removed),
            layers_removed: get(&self.layers_removed),
            bytes_freed: get(&self.bytes_freed),
        }
    }
}

/// What [`ImageStore::prune`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneReport {
    pub images_removed: u64,
    pub layers_removed: u64,
    /// Unpacked bytes of the removed layers.
    pub bytes_freed: u64,
}

/// A pulled image as `tepui images ls` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageSummary {
    pub reference: String,
    pub manifest_digest: String,
    /// (digest, unpacked bytes), bottom layer first.
    pub layers: Vec<(String, u64)>,
    /// Unpacked bytes of all its layers (shared layers counted in each).
    pub bytes: u64,
    pub last_used_unix: u64,
    /// A provisioned rootfs (a container) uses it.
    pub in_use: bool,
}

/// One layer's download progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerProgress {
    pub digest: String,
    pub bytes: u64,
    pub total: u64,
}

/// How often a pull publishes progress to [`PullProgress::subscribe`]rs.
const PROGRESS_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

/// Per-layer byte counters of a pull in progress, shared with whoever
/// reports progress (the agent API, the CLI). Poll [`snapshot`](Self::snapshot)
/// or [`subscribe`](Self::subscribe) to snapshots the pull publishes every
/// 100 ms and once when it ends.
#[derive(Debug)]
pub struct PullProgress {
    layers: std::sync::Mutex<Vec<(String, u64, Arc<AtomicU64>)>>,
    updates: tokio::sync::watch::Sender<Vec<LayerProgress>>,
}

impl Default for PullProgress {
    fn default() -> Self {
        PullProgress {
            layers: std::sync::Mutex::new(Vec::new()),
            updates: tokio::sync::watch::Sender::new(Vec::new()),
        }
    }
}

impl PullProgress {
    /// Snapshots as the pull publishes them (the latest one only: a slow
    /// reader skips intermediate ones, never blocks the pull).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Vec<LayerProgress>> {
        self.updates.subscribe()
    }

    fn publish(&self) {
        let layers = self
            .snapshot()
            .into_iter()
            .map(|(digest, bytes, total)| LayerProgress {
                digest,
                bytes,
                total,
            })
            .collect();
        self.updates.send_replace(layers);
    }

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

/// Beside a provisioned rootfs: what it mounts.
const MARKER: &str = "image.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct RootfsMarker {
    reference: String,
    manifest_digest: String,
    layer_digests: Vec<String>,
}

#[derive(Debug)]
pub struct ImageStore {
    root: PathBuf,
    client: Arc<RegistryClient>,
    layers: LayerStore,
    metrics: ImageMetrics,
    backend: RootfsBackend,
    /// Pulls and provisions hold it shared, GC exclusively: GC never
    /// deletes a layer between a pull publishing it and a rootfs (and its
    /// `image.json`) naming it.
    gc_lock: Arc<tokio::sync::RwLock<()>>,
    gc_max_bytes: Option<u64>,
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
            gc_lock: Arc::new(tokio::sync::RwLock::new(())),
            gc_max_bytes: None,
        })
    }

    /// After each pull, removes least recently used images not in use until
    /// the layers fit in `max_bytes` (unpacked).
    pub fn with_gc_max_bytes(mut self, max_bytes: Option<u64>) -> Self {
        self.gc_max_bytes = max_bytes;
        self
    }

    /// Overlay (default, copy fallback when mounting fails) or always copy.
    pub fn with_backend(mut self, backend: RootfsBackend) -> Self {
        self.backend = backend;
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `containers/<pod>`: where the rootfses of a pod's containers go.
    pub fn pod_dir(&self, pod: &str) -> PathBuf {
        self.root.join("containers").join(pod)
    }

    /// Before a pod's supervisor starts: makes the pod's rootfs dir a shared
    /// mount, so rootfses provisioned later for its nested containers reach
    /// the supervisor's mount namespace (see `pod_mount`).
    pub fn prepare_pod(&self, pod: &str) -> Result<(), ImageError> {
        pod_mount::share(&self.pod_dir(pod))
    }

    /// Once a pod is gone: removes its rootfs dir and the mount made by
    /// [`prepare_pod`](Self::prepare_pod). Rootfses still mounted below
    /// (a pod cleaned up after a crash) are detached with it.
    pub fn release_pod(&self, pod: &str) -> Result<(), ImageError> {
        pod_mount::unshare_and_remove(&self.pod_dir(pod))
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
        let result = {
            let _shared = self.gc_lock.read().await;
            self.pull_counted(reference, credentials, progress).await
        };
        if result.is_ok() {
            self.size_gc(reference).await;
        }
        result
    }

    async fn pull_counted(
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

    /// Pulls `reference` and provisions its rootfs under `container_dir`
    /// with no GC in between (what the containerizer launches with).
    pub async fn pull_and_provision(
        self: &Arc<Self>,
        reference: &str,
        credentials: Option<&Credentials>,
        container_dir: &Path,
    ) -> Result<(Image, Rootfs), ImageError> {
        let result = {
            let _shared = self.gc_lock.clone().read_owned().await;
            let image = self
                .pull_counted(reference, credentials, &PullProgress::default())
                .await?;
            let store = self.clone();
            let pulled = image.clone();
            let dir = container_dir.to_path_buf();
            let rootfs = tokio::task::spawn_blocking(move || store.provision(&pulled, &dir))
                .await
                .map_err(|e| ImageError::Config {
                    image: reference.to_string(),
                    reason: format!("provisioning task: {e}"),
                })??;
            (image, rootfs)
        };
        self.size_gc(reference).await;
        Ok(result)
    }

    /// The size-based GC after a pull; failures are logged, never fail the
    /// pull.
    async fn size_gc(&self, pulled: &str) {
        let Some(max_bytes) = self.gc_max_bytes else {
            return;
        };
        let _exclusive = self.gc_lock.write().await;
        let result = self.load_view().and_then(|(view, in_use)| {
            let selection = gc::select_size(&view, max_bytes, &[pulled.to_string()], &in_use);
            self.remove_selected(&view, &selection)
        });
        match result {
            Ok(report) if report.layers_removed > 0 || report.images_removed > 0 => {
                tracing::info!(
                    images = report.images_removed,
                    layers = report.layers_removed,
                    bytes = report.bytes_freed,
                    max_bytes,
                    "image store over its size limit: removed least recently used images"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "image garbage collection failed"),
        }
    }

    /// Removes every image record whose reference is not in `excluded` and
    /// that no provisioned rootfs uses, then every layer no remaining image
    /// lists and no rootfs mounts. `in_use_layers` adds layer digests the
    /// caller knows are mounted (beyond the store's own `image.json`s).
    pub async fn prune(
        &self,
        excluded: &[String],
        in_use_layers: &[String],
    ) -> Result<PruneReport, ImageError> {
        let _exclusive = self.gc_lock.write().await;
        let (view, mut in_use) = self.load_view()?;
        in_use.layers.extend(in_use_layers.iter().cloned());
        let selection = gc::select_prune(&view, excluded, &in_use);
        self.remove_selected(&view, &selection)
    }

    /// Every pulled image with its layers' unpacked sizes, most recently
    /// used first (`tepui images ls`).
    pub async fn list(&self) -> Result<Vec<ImageSummary>, ImageError> {
        let _shared = self.gc_lock.read().await;
        let (view, in_use) = self.load_view()?;
        let sizes: std::collections::HashMap<&str, u64> =
            view.layers.iter().map(|(d, b)| (d.as_str(), *b)).collect();
        let mut images: Vec<ImageSummary> = view
            .images
            .iter()
            .map(|image| {
                let layers: Vec<(String, u64)> = image
                    .layer_digests
                    .iter()
                    .map(|d| (d.clone(), sizes.get(d.as_str()).copied().unwrap_or(0)))
                    .collect();
                ImageSummary {
                    reference: image.reference.clone(),
                    manifest_digest: image.manifest_digest.clone(),
                    bytes: layers.iter().map(|(_, b)| b).sum(),
                    layers,
                    last_used_unix: image
                        .last_used
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs()),
                    in_use: in_use.manifests.contains(&image.manifest_digest),
                }
            })
            .collect();
        images.sort_by_key(|i| std::cmp::Reverse(i.last_used_unix));
        Ok(images)
    }

    /// Image records, layers with their sizes, and what provisioned
    /// rootfses use.
    fn load_view(&self) -> Result<(gc::StoreView, gc::InUse), ImageError> {
        let mut view = gc::StoreView::default();
        let images = self.root.join("images");
        for entry in std::fs::read_dir(&images).map_err(ImageError::io("reading", &images))? {
            let entry = entry.map_err(ImageError::io("reading", &images))?;
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let (Ok(bytes), Ok(meta)) = (std::fs::read(&path), entry.metadata()) else {
                continue;
            };
            match serde_json::from_slice::<Image>(&bytes) {
                Ok(image) => view.images.push(gc::ImageEntry {
                    reference: image.reference,
                    manifest_digest: image.manifest_digest,
                    layer_digests: image.layer_digests,
                    last_used: meta.modified().unwrap_or(std::time::UNIX_EPOCH),
                }),
                Err(e) => {
                    tracing::warn!(record = %path.display(), error = %e, "unreadable image record")
                }
            }
        }
        let layers = self.root.join("layers/sha256");
        for entry in std::fs::read_dir(&layers).map_err(ImageError::io("reading", &layers))? {
            let entry = entry.map_err(ImageError::io("reading", &layers))?;
            let Some(hex) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let bytes = std::fs::read(entry.path().join("layer.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<layers::LayerRecord>(&b).ok())
                .map_or(0, |r| r.bytes);
            view.layers.push((format!("sha256:{hex}"), bytes));
        }
        let mut in_use = gc::InUse::default();
        for marker in self.rootfs_markers() {
            in_use.manifests.insert(marker.manifest_digest);
            in_use.layers.extend(marker.layer_digests);
        }
        Ok((view, in_use))
    }

    /// `containers/<pod>/<container>/image.json` of every provisioned
    /// rootfs (only those two levels are read: nothing below, where the
    /// mounts are, is walked).
    fn rootfs_markers(&self) -> Vec<RootfsMarker> {
        let mut markers = Vec::new();
        let Ok(pods) = std::fs::read_dir(self.root.join("containers")) else {
            return markers;
        };
        for pod in pods.flatten() {
            let Ok(containers) = std::fs::read_dir(pod.path()) else {
                continue;
            };
            for container in containers.flatten() {
                if let Ok(bytes) = std::fs::read(container.path().join(MARKER))
                    && let Ok(marker) = serde_json::from_slice::<RootfsMarker>(&bytes)
                {
                    markers.push(marker);
                }
            }
        }
        markers
    }

    /// Deletes the selection: records first (so a crash leaves orphan
    /// layers, which the next GC removes, never records naming missing
    /// layers), then each layer, unpublished by a rename into staging.
    fn remove_selected(
        &self,
        view: &gc::StoreView,
        selection: &gc::Selection,
    ) -> Result<PruneReport, ImageError> {
        let mut report = PruneReport::default();
        for manifest in &selection.images {
            let record = self
                .root
                .join("images")
                .join(format!("{}.json", manifest.trim_start_matches("sha256:")));
            match std::fs::remove_file(&record) {
                Ok(()) => report.images_removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(ImageError::io("removing image record", &record)(e)),
            }
        }
        for digest in &selection.layers {
            let dir = self.layers.layer_dir(digest);
            let hex = digest.trim_start_matches("sha256:");
            let doomed = self
                .layers
                .staging_name(&format!("gc-{}", &hex[..hex.len().min(16)]));
            match std::fs::rename(&dir, &doomed) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(ImageError::io("unpublishing layer", &dir)(e)),
            }
            // Layers are never mount points (the store's invariant), and
            // remove_tree refuses to cross one anyway.
            crate::safe_remove::remove_tree(&doomed)
                .map_err(ImageError::io("removing layer", &doomed))?;
            report.layers_removed += 1;
            report.bytes_freed += view
                .layers
                .iter()
                .find(|(d, _)| d == digest)
                .map_or(0, |(_, b)| *b);
        }
        self.metrics
            .images_removed
            .fetch_add(report.images_removed, Ordering::Relaxed);
        self.metrics
            .layers_removed
            .fetch_add(report.layers_removed, Ordering::Relaxed);
        self.metrics
            .bytes_freed
            .fetch_add(report.bytes_freed, Ordering::Relaxed);
        Ok(report)
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
        let fetch = futures_util::future::try_join_all(fetches);
        tokio::pin!(fetch);
        let mut tick = tokio::time::interval(PROGRESS_INTERVAL);
        let origins = loop {
            tokio::select! {
                result = &mut fetch => break result,
                _ = tick.tick() => progress.publish(),
            }
        };
        progress.publish();
        let origins = origins?;
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
    /// `image.json` beside the rootfs names the image and layers for GC;
    /// it is written before the mount so GC never misses a mounted layer.
    pub fn provision(&self, image: &Image, container_dir: &Path) -> Result<Rootfs, ImageError> {
        std::fs::create_dir_all(container_dir)
            .map_err(ImageError::io("creating", container_dir))?;
        let marker = container_dir.join(MARKER);
        let json = serde_json::to_vec_pretty(&RootfsMarker {
            reference: image.reference.clone(),
            manifest_digest: image.manifest_digest.clone(),
            layer_digests: image.layer_digests.clone(),
        })
        .unwrap_or_default();
        crate::atomic::write_atomic(&marker, &json).map_err(ImageError::io("writing", &marker))?;
        rootfs::provision(&image.layers, container_dir, self.backend)
    }

    /// Unmounts a rootfs and removes its container dir.
    pub fn release(&self, rootfs: &Rootfs) -> Result<(), ImageError> {
        rootfs::release(rootfs)
    }
}
