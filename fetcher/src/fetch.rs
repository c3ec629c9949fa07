//! Orchestration: one call fetches a task's URIs into its sandbox following
//! the Mesos fetcher's rules.
//!
//! Per URI: the file is named after the URI's basename or `output_file` (which
//! may include subdirectories); `executable` means mode 0755 and no
//! extraction; otherwise, when `extract` is set (the default) and the name has
//! an archive suffix, it is extracted into the sandbox root. As in Mesos the
//! downloaded archive is kept next to what it extracted, except when it came
//! through the cache (then only the extracted files appear). `cache` only has
//! an effect when a cache directory is configured.
//!
//! Each URI is first materialised in a private staging directory inside the
//! sandbox and moved into place only once complete, so a failed URI leaves
//! nothing of itself behind.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tepui_proto::v1::command_info::Uri;
use tokio::sync::mpsc;

use crate::cache::{Cache, Lease};
use crate::error::FetchError;
use crate::extract::{ArchiveFormat, Budget, ExtractError, Ownership, SafeDir, Summary};
use crate::http::{self, PumpError, Start, Validators};
use crate::lay::{self, Plan, Produced, consume_cached, consume_direct, copy_all};
use crate::metrics::{Metrics, MetricsSnapshot};
use crate::stream::{CHANNEL_DEPTH, ChannelReader, TeeReader};
use crate::uri::{self, Source};

/// Agent flags that shape fetching.
#[derive(Debug, Clone)]
pub struct FetcherConfig {
    /// `--fetcher_cache_dir`; without it `cache=true` URIs are fetched directly.
    pub cache_dir: Option<PathBuf>,
    /// `--fetcher_cache_size`.
    pub cache_size_bytes: u64,
    /// `--fetcher_stall_timeout`: abort a transfer that receives nothing for
    /// this long.
    pub stall_timeout: Duration,
    /// Every byte one `fetch` call writes (downloads, copies, extracted
    /// contents) counts against this; past it the fetch fails.
    pub max_size_bytes: u64,
    /// PEM bundle of extra trusted CAs for `https://`.
    pub ca_bundle: Option<PathBuf>,
    /// `--frameworks_home`, for relative URIs.
    pub frameworks_home: Option<PathBuf>,
    /// How often a long download reports progress in the sandbox's stderr.
    pub progress_interval: Duration,
}

impl Default for FetcherConfig {
    fn default() -> Self {
        FetcherConfig {
            cache_dir: None,
            // Mesos' defaults.
            cache_size_bytes: 2 << 30,
            stall_timeout: Duration::from_secs(60),
            max_size_bytes: 16 << 30,
            ca_bundle: None,
            frameworks_home: None,
            progress_interval: Duration::from_secs(5),
        }
    }
}

/// Per-call options.
#[derive(Default)]
pub struct FetchOptions<'a> {
    /// The task's user: everything created in the sandbox is chowned to it
    /// (and set-id bits are dropped).
    pub user: Option<(u32, u32)>,
    /// The sandbox's stderr, for progress and one result line per URI.
    pub log: Option<&'a mut (dyn Write + Send)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    Hit,
    Miss,
    /// Not fetched through the cache (`cache=false` or no cache directory).
    NotCached,
}

impl std::fmt::Display for CacheStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CacheStatus::Hit => "cache hit",
            CacheStatus::Miss => "cache miss",
            CacheStatus::NotCached => "not cached",
        })
    }
}

/// What fetching one URI did.
#[derive(Debug, Clone)]
pub struct FetchResult {
    pub uri: String,
    /// Size of the artifact as fetched (downloaded, copied, or read from the
    /// cache).
    pub bytes: u64,
    pub duration: Duration,
    pub cache: CacheStatus,
    /// The artifact file kept in the sandbox, if any.
    pub file: Option<PathBuf>,
    /// What extraction produced, if the artifact was extracted.
    pub extracted: Option<Summary>,
    /// Top-level sandbox paths this URI created or replaced.
    pub paths: Vec<PathBuf>,
}

/// Fetches artifacts; cheap to clone (clones share the HTTP client, the cache
/// and the metrics).
#[derive(Clone)]
pub struct Fetcher {
    inner: Arc<Inner>,
}

struct Inner {
    config: FetcherConfig,
    client: reqwest::Client,
    cache: Option<Arc<Cache>>,
    metrics: Arc<Metrics>,
    staging_counter: AtomicU64,
}

struct StagingCleanup<'a> {
    sandbox: &'a SafeDir,
    name: OsString,
}

impl Drop for StagingCleanup<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.sandbox.remove(&self.name) {
            tracing::warn!(error = %e, "removing fetcher staging directory");
        }
    }
}

fn log_line(log: &mut Option<&mut (dyn Write + Send)>, line: &str) {
    if let Some(w) = log.as_deref_mut() {
        // The sandbox's stderr is best effort; a full disk must not turn into
        // a fetch failure of its own.
        let _ = writeln!(w, "{line}");
        let _ = w.flush();
    }
}

/// A local file's identity for cache validation: it changed if any moved.
fn local_validator(path: &Path, uri: &str) -> Result<Validators, FetchError> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).map_err(|cause| FetchError::Io {
        uri: uri.to_string(),
        what: "reading",
        path: path.to_path_buf(),
        cause,
    })?;
    Ok(Validators {
        etag: Some(format!(
            "local:{}:{}:{}:{}",
            meta.dev(),
            meta.ino(),
            meta.size(),
            meta.mtime() as i128 * 1_000_000_000 + i128::from(meta.mtime_nsec())
        )),
        last_modified: None,
    })
}

fn open_local(path: &Path, uri: &str, user: Option<(u32, u32)>) -> Result<File, FetchError> {
    crate::local::open_as(path, user).map_err(|cause| FetchError::Io {
        uri: uri.to_string(),
        what: "reading",
        path: path.to_path_buf(),
        cause,
    })
}

impl Fetcher {
    /// Builds the HTTP client and opens (and reconciles) the cache.
    pub fn new(config: FetcherConfig) -> Result<Fetcher, FetchError> {
        if config.stall_timeout.is_zero() || config.progress_interval.is_zero() {
            return Err(FetchError::Config(
                "stall timeout and progress interval must be positive".into(),
            ));
        }
        let client = http::build_client(config.ca_bundle.as_deref(), config.stall_timeout)?;
        let metrics = Arc::new(Metrics::default());
        let cache = match &config.cache_dir {
            Some(dir) => Some(Arc::new(
                Cache::open(dir, config.cache_size_bytes, Arc::clone(&metrics)).map_err(|e| {
                    FetchError::Config(format!("opening fetcher cache '{}': {e}", dir.display()))
                })?,
            )),
            None => None,
        };
        Ok(Fetcher {
            inner: Arc::new(Inner {
                config,
                client,
                cache,
                metrics,
                staging_counter: AtomicU64::new(0),
            }),
        })
    }

    pub fn metrics(&self) -> MetricsSnapshot {
        let cache_size = self.inner.cache.as_ref().map_or(0, |c| c.size());
        self.inner.metrics.snapshot(cache_size)
    }

    /// Whether the cache currently holds `uri` (for tests and introspection).
    pub fn is_cached(&self, uri: &str) -> bool {
        self.inner
            .cache
            .as_ref()
            .is_some_and(|c| c.contains(uri.trim_start()))
    }

    /// Fetches `uris` in order into `sandbox`, stopping at the first failure
    /// (whose message names the URI and the cause). The sandbox must be a real
    /// directory, not a symlink.
    pub async fn fetch(
        &self,
        uris: &[Uri],
        sandbox: &Path,
        mut opts: FetchOptions<'_>,
    ) -> Result<Vec<FetchResult>, FetchError> {
        let sandbox_dir = SafeDir::open(sandbox).map_err(|cause| FetchError::Sandbox {
            path: sandbox.to_path_buf(),
            cause,
        })?;
        let budget = Arc::new(Budget::new(self.inner.config.max_size_bytes));
        let ownership = opts
            .user
            .map_or(Ownership::Current, |(uid, gid)| Ownership::Fixed {
                uid,
                gid,
            });
        let mut results = Vec::with_capacity(uris.len());
        for uri in uris {
            Metrics::add(&self.inner.metrics.fetches, 1);
            let value = uri.value.trim_start().to_string();
            log_line(&mut opts.log, &format!("tepui-fetcher: fetching '{value}'"));
            match self
                .fetch_one(uri, &sandbox_dir, &budget, ownership, &mut opts.log)
                .await
            {
                Ok(result) => {
                    log_line(&mut opts.log, &result_line(&result, sandbox));
                    tracing::info!(uri = %value, bytes = result.bytes, cache = %result.cache, "fetched");
                    results.push(result);
                }
                Err(e) => {
                    Metrics::add(&self.inner.metrics.failures, 1);
                    log_line(&mut opts.log, &format!("tepui-fetcher: failed: {e}"));
                    tracing::warn!(uri = %value, error = %e, "fetch failed");
                    return Err(e);
                }
            }
        }
        Ok(results)
    }

    async fn fetch_one(
        &self,
        uri: &Uri,
        sandbox: &SafeDir,
        budget: &Arc<Budget>,
        ownership: Ownership,
        log: &mut Option<&mut (dyn Write + Send)>,
    ) -> Result<FetchResult, FetchError> {
        let started = Instant::now();
        let value = uri.value.trim_start().to_string();
        let source = uri::resolve(&value, self.inner.config.frameworks_home.as_deref())?;
        let name = match uri.output_file.as_deref() {
            Some(of) if !of.is_empty() => uri::output_components(&value, of)?,
            _ => vec![uri::basename(&value, &source)?],
        };
        let executable = uri.executable();
        let file_name = name.last().map(String::as_str).unwrap_or("");
        let format = if executable || !uri.extract() {
            None
        } else {
            ArchiveFormat::detect(file_name)
        };
        let plan = Plan {
            uri: value.clone(),
            name,
            format,
            executable,
            ownership,
        };

        let (staging_name, staging) = self.create_staging(sandbox, &value)?;
        let staging = Arc::new(staging);
        // Removes the staging directory however this function ends, including
        // when the caller drops the future mid-fetch.
        let _cleanup = StagingCleanup {
            sandbox,
            name: staging_name,
        };

        let outcome = match (&self.inner.cache, uri.cache()) {
            (Some(cache), true) => {
                self.through_cache(cache, &source, &plan, &staging, budget, log)
                    .await
            }
            _ => self
                .direct(&source, &plan, &staging, budget, log)
                .await
                .map(|(p, b)| (p, b, CacheStatus::NotCached)),
        };
        let moved = match &outcome {
            Ok(_) => staging.merge_into(sandbox).map_err(|cause| FetchError::Io {
                uri: value.clone(),
                what: "moving fetched files into",
                path: sandbox.path().to_path_buf(),
                cause,
            }),
            Err(_) => Ok(()),
        };
        let (produced, bytes, cache) = outcome?;
        moved?;

        if let Some(s) = &produced.extracted {
            Metrics::add(&self.inner.metrics.bytes_extracted, s.bytes);
        }
        let root = sandbox.path();
        let file = produced
            .file
            .as_ref()
            .map(|comps| comps.iter().fold(root.to_path_buf(), |p, c| p.join(c)));
        let mut paths: Vec<PathBuf> = Vec::new();
        if let Some(first) = produced.file.as_ref().and_then(|c| c.first()) {
            paths.push(root.join(first));
        }
        if let Some(s) = &produced.extracted {
            for top in &s.top_level {
                let p = root.join(top);
                if !paths.contains(&p) {
                    paths.push(p);
                }
            }
        }
        Ok(FetchResult {
            uri: value,
            bytes,
            duration: started.elapsed(),
            cache,
            file,
            extracted: produced.extracted,
            paths,
        })
    }

    /// A fresh private directory in the sandbox. A name left over from a
    /// crashed agent that had the same pid is skipped, not reused.
    fn create_staging(
        &self,
        sandbox: &SafeDir,
        uri: &str,
    ) -> Result<(OsString, SafeDir), FetchError> {
        let mut attempts = 0;
        loop {
            let n = self.inner.staging_counter.fetch_add(1, Ordering::Relaxed);
            let name = OsString::from(format!(".tepui-fetch.{}.{n}", std::process::id()));
            match sandbox.create_subdir(&name, 0o700) {
                Ok(dir) => return Ok((name, dir)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 100 => {
                    attempts += 1
                }
                Err(cause) => {
                    return Err(FetchError::Io {
                        uri: uri.to_string(),
                        what: "creating staging directory in",
                        path: sandbox.path().to_path_buf(),
                        cause,
                    });
                }
            }
        }
    }

    /// Fetches straight from the source into staging.
    async fn direct(
        &self,
        source: &Source,
        plan: &Plan,
        staging: &Arc<SafeDir>,
        budget: &Arc<Budget>,
        log: &mut Option<&mut (dyn Write + Send)>,
    ) -> Result<(Produced, u64), FetchError> {
        match source {
            Source::Local(path) => {
                let file = open_local(path, &plan.uri, plan.user())?;
                let (staging, budget, plan2) =
                    (Arc::clone(staging), Arc::clone(budget), plan.clone());
                let produced = tokio::task::spawn_blocking(move || {
                    let mut counted = TeeReader::new(file, None, String::new(), &budget);
                    let produced = consume_direct(&mut counted, &staging, &plan2, &budget)?;
                    Ok((produced, counted.bytes))
                })
                .await
                .map_err(|e| plan.extract_err(ExtractError::Read(io::Error::other(e))))?
                .map_err(|e| plan.extract_err(e))?;
                Metrics::add(&self.inner.metrics.bytes_fetched, produced.1);
                Ok(produced)
            }
            Source::Http(url) => {
                let start = http::start(
                    &self.inner.client,
                    url,
                    &plan.uri,
                    None,
                    self.inner.config.stall_timeout,
                )
                .await?;
                let Start::Body(http::Body {
                    response, length, ..
                }) = start
                else {
                    return Err(FetchError::Transfer {
                        uri: plan.uri.clone(),
                        cause: "unexpected 304 Not Modified".into(),
                    });
                };
                self.check_length(plan, length, budget)?;
                let (staging, budget2, plan2) =
                    (Arc::clone(staging), Arc::clone(budget), plan.clone());
                let (produced, bytes) = self
                    .transfer(response, plan, log, move |reader| {
                        consume_direct(reader, &staging, &plan2, &budget2)
                    })
                    .await?;
                Ok((produced, bytes))
            }
        }
    }

    fn check_length(
        &self,
        plan: &Plan,
        length: Option<u64>,
        budget: &Budget,
    ) -> Result<(), FetchError> {
        match length {
            Some(len) if budget.used().saturating_add(len) > budget.limit() => Err(plan
                .extract_err(ExtractError::SizeLimit {
                    limit: budget.limit(),
                })),
            _ => Ok(()),
        }
    }

    /// Streams an HTTP body into a blocking consumer, reporting progress while
    /// it runs. The download's own failure (stall, reset) wins over the
    /// consumer's, which is only its echo; a consumer failure (bad archive,
    /// size limit) stops the download.
    async fn transfer<T: Send + 'static>(
        &self,
        response: reqwest::Response,
        plan: &Plan,
        log: &mut Option<&mut (dyn Write + Send)>,
        consume: impl FnOnce(&mut dyn Read) -> Result<T, ExtractError> + Send + 'static,
    ) -> Result<(T, u64), FetchError> {
        let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
        let progress = Arc::new(AtomicU64::new(0));
        let consumer = tokio::task::spawn_blocking(move || {
            let mut reader = ChannelReader::new(rx);
            consume(&mut reader)
        });
        let stall = self.inner.config.stall_timeout;
        let pump = http::pump(response, tx, &plan.uri, stall, Arc::clone(&progress));
        let both = async { tokio::join!(pump, consumer) };
        tokio::pin!(both);
        let mut ticker = tokio::time::interval(self.inner.config.progress_interval);
        ticker.tick().await;
        let (pumped, consumed) = loop {
            tokio::select! {
                r = &mut both => break r,
                _ = ticker.tick() => log_line(log, &format!(
                    "tepui-fetcher: '{}': {} bytes so far",
                    plan.uri,
                    progress.load(Ordering::Relaxed)
                )),
            }
        };
        let consumed =
            consumed.map_err(|e| plan.extract_err(ExtractError::Read(io::Error::other(e))))?;
        let bytes = match pumped {
            Err(PumpError::Fetch(e)) => return Err(e),
            Err(PumpError::ConsumerGone) => progress.load(Ordering::Relaxed),
            Ok(n) => n,
        };
        let value = consumed.map_err(|e| plan.extract_err(e))?;
        Metrics::add(&self.inner.metrics.bytes_fetched, bytes);
        Ok((value, bytes))
    }

    /// Makes sure the cache holds a current copy (downloading once however
    /// many fetches ask at the same time), then lays it down from the cache.
    async fn through_cache(
        &self,
        cache: &Arc<Cache>,
        source: &Source,
        plan: &Plan,
        staging: &Arc<SafeDir>,
        budget: &Arc<Budget>,
        log: &mut Option<&mut (dyn Write + Send)>,
    ) -> Result<(Produced, u64, CacheStatus), FetchError> {
        let key = plan.uri.clone();
        let asked = Instant::now();
        let cache_err = |cause: io::Error| FetchError::Cache {
            uri: plan.uri.clone(),
            cause,
        };
        if let Source::Local(path) = source {
            // A cached copy must not reach a user who may not read the source.
            drop(open_local(path, &plan.uri, plan.user())?);
        }
        let guard = cache.lock_key(&key).await;
        let mut status = CacheStatus::Hit;
        let mut lease: Option<Lease> = None;
        let mut laid: Option<(Produced, u64)> = None;
        if let Some(entry) = cache.lookup(&key) {
            let current = if cache.validated_since(&key, asked) {
                true
            } else {
                match source {
                    Source::Local(path) => {
                        Some(entry.validators()) == Some(local_validator(path, &plan.uri)?)
                    }
                    Source::Http(url) if !entry.validators().is_empty() => {
                        let v = entry.validators();
                        match http::start(
                            &self.inner.client,
                            url,
                            &plan.uri,
                            Some(&v),
                            self.inner.config.stall_timeout,
                        )
                        .await?
                        {
                            Start::NotModified => true,
                            Start::Body(body) => {
                                // Changed: this response is the new content.
                                laid = Some(
                                    self.fill_and_lay(cache, plan, staging, budget, log, body)
                                        .await?,
                                );
                                status = CacheStatus::Miss;
                                false
                            }
                        }
                    }
                    // Nothing to revalidate with: only a fresh download is safe.
                    Source::Http(_) => false,
                }
            };
            if current {
                cache.mark_validated(&key);
                lease = cache.pin(&key).map_err(cache_err)?;
            }
        }
        let lease = match (lease, laid.is_some()) {
            (Some(l), _) => Some(l),
            (None, true) => None,
            (None, false) => {
                status = CacheStatus::Miss;
                match source {
                    Source::Local(path) => {
                        let validators = local_validator(path, &plan.uri)?;
                        let file = open_local(path, &plan.uri, plan.user())?;
                        let (tmp_path, tmp) = cache.tmp_file().map_err(cache_err)?;
                        let budget2 = Arc::clone(budget);
                        let shown = tmp_path.display().to_string();
                        let size = tokio::task::spawn_blocking(move || {
                            let mut tmp = tmp;
                            let mut file = file;
                            let n = copy_all(&mut file, &mut tmp, &budget2, &shown)?;
                            Ok::<_, ExtractError>(n)
                        })
                        .await
                        .map_err(|e| plan.extract_err(ExtractError::Read(io::Error::other(e))))?;
                        let size = match size {
                            Ok(n) => n,
                            Err(e) => {
                                let _ = std::fs::remove_file(&tmp_path);
                                return Err(plan.extract_err(e));
                            }
                        };
                        Metrics::add(&self.inner.metrics.bytes_fetched, size);
                        Some(
                            cache
                                .commit(&key, &tmp_path, size, validators)
                                .map_err(cache_err)?,
                        )
                    }
                    Source::Http(url) => {
                        let start = http::start(
                            &self.inner.client,
                            url,
                            &plan.uri,
                            None,
                            self.inner.config.stall_timeout,
                        )
                        .await?;
                        let Start::Body(body) = start else {
                            return Err(FetchError::Transfer {
                                uri: plan.uri.clone(),
                                cause: "unexpected 304 Not Modified".into(),
                            });
                        };
                        laid = Some(
                            self.fill_and_lay(cache, plan, staging, budget, log, body)
                                .await?,
                        );
                        None
                    }
                }
            }
        };
        drop(guard);
        match status {
            CacheStatus::Hit => Metrics::add(&self.inner.metrics.cache_hits, 1),
            _ => Metrics::add(&self.inner.metrics.cache_misses, 1),
        }
        let Some(mut lease) = lease else {
            let (produced, size) =
                laid.ok_or_else(|| cache_err(io::Error::other("cache entry vanished")))?;
            return Ok((produced, size, status));
        };
        let size = lease.size;
        let blob = lease
            .file
            .take()
            .ok_or_else(|| cache_err(io::Error::other("cache entry has no file")))?;
        let (staging, budget2, plan2) = (Arc::clone(staging), Arc::clone(budget), plan.clone());
        let produced =
            tokio::task::spawn_blocking(move || consume_cached(blob, &staging, &plan2, &budget2))
                .await
                .map_err(|e| plan.extract_err(ExtractError::Read(io::Error::other(e))))?
                .map_err(|e| plan.extract_err(e))?;
        drop(lease);
        Ok((produced, size, status))
    }

    /// Downloads into a new cache blob while laying the URI down from the
    /// same bytes, then records the blob as the current entry. A transfer or
    /// an archive that fails leaves the cache as it was.
    async fn fill_and_lay(
        &self,
        cache: &Arc<Cache>,
        plan: &Plan,
        staging: &Arc<SafeDir>,
        budget: &Arc<Budget>,
        log: &mut Option<&mut (dyn Write + Send)>,
        body: http::Body,
    ) -> Result<(Produced, u64), FetchError> {
        self.check_length(plan, body.length, budget)?;
        let cache_err = |cause: io::Error| FetchError::Cache {
            uri: plan.uri.clone(),
            cause,
        };
        let (tmp_path, tmp) = cache.tmp_file().map_err(cache_err)?;
        let shown = tmp_path.display().to_string();
        let (staging, budget2, plan2) = (Arc::clone(staging), Arc::clone(budget), plan.clone());
        let result = self
            .transfer(body.response, plan, log, move |reader| {
                lay::fill_and_lay(reader, tmp, &shown, &staging, &plan2, &budget2)
            })
            .await;
        match result {
            Ok(((produced, size), _)) => {
                let lease = cache
                    .commit(&plan.uri, &tmp_path, size, body.validators)
                    .map_err(cache_err)?;
                drop(lease);
                Ok((produced, size))
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp_path);
                Err(e)
            }
        }
    }
}

fn result_line(r: &FetchResult, sandbox: &Path) -> String {
    let what = match (&r.extracted, &r.file) {
        (Some(s), _) => format!(
            "extracted {} entries ({} bytes) into {}",
            s.entries,
            s.bytes,
            sandbox.display()
        ),
        (None, Some(f))
            if f.metadata().is_ok_and(|m| {
                std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0
            }) =>
        {
            format!("{} (executable)", f.display())
        }
        (None, Some(f)) => f.display().to_string(),
        (None, None) => sandbox.display().to_string(),
    };
    format!(
        "tepui-fetcher: fetched '{}' ({} bytes, {:.2} s, {}) -> {}",
        r.uri,
        r.bytes,
        r.duration.as_secs_f64(),
        r.cache,
        what
    )
}
