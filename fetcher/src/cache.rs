//! The fetcher cache: downloaded artifacts kept under `--fetcher_cache_dir`,
//! bounded by `--fetcher_cache_size` with least-recently-used eviction.
//!
//! Unlike Mesos, the cache survives agent restarts: an index (`index.json`,
//! replaced atomically) records each entry's URI, validators and last use, and
//! is reconciled with the blob files at startup. Entries are revalidated on
//! every fetch (conditional GET, or mtime/size/inode for local files), so a
//! changed artifact is never served stale. An entry that an in-flight fetch is
//! reading is pinned and never evicted.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::http::Validators;
use crate::metrics::Metrics;

const INDEX: &str = "index.json";
const INDEX_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Entry {
    pub key: String,
    pub file: String,
    pub size: u64,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// Logical clock of the last use; larger is more recent.
    pub last_used: u64,
}

impl Entry {
    pub(crate) fn validators(&self) -> Validators {
        Validators {
            etag: self.etag.clone(),
            last_modified: self.last_modified.clone(),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Index {
    version: u32,
    entries: Vec<Entry>,
}

#[derive(Default)]
struct State {
    entries: HashMap<String, Entry>,
    pins: HashMap<String, usize>,
    /// When each entry was last confirmed current (this process only).
    validated: HashMap<String, Instant>,
    clock: u64,
    total: u64,
}

pub(crate) struct Cache {
    dir: PathBuf,
    capacity: u64,
    state: Mutex<State>,
    /// One async lock per key, so concurrent fetches of a URI download once.
    key_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    metrics: Arc<Metrics>,
    tmp_counter: AtomicU64,
}

/// A pinned cache entry and an open handle on its content.
pub(crate) struct Lease {
    cache: Arc<Cache>,
    key: String,
    pub file: Option<File>,
    pub size: u64,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.cache.unpin(&self.key);
    }
}

fn blob_name(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

impl Cache {
    /// Opens (creating if needed) the cache at `dir`, reconciling the index
    /// with the files present: entries whose blob is missing or of the wrong
    /// size are dropped, and blobs no entry names are deleted.
    pub(crate) fn open(dir: &Path, capacity: u64, metrics: Arc<Metrics>) -> io::Result<Cache> {
        fs::create_dir_all(dir.join("blobs"))?;
        fs::create_dir_all(dir.join("tmp"))?;
        // Partial downloads from a previous run.
        for entry in fs::read_dir(dir.join("tmp"))? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                let _ = fs::remove_file(entry.path());
            }
        }
        let loaded: Vec<Entry> = match fs::read(dir.join(INDEX)) {
            Ok(bytes) => match serde_json::from_slice::<Index>(&bytes) {
                Ok(index) if index.version == INDEX_VERSION => index.entries,
                Ok(_) | Err(_) => {
                    tracing::warn!(dir = %dir.display(), "fetcher cache index unreadable; starting empty");
                    Vec::new()
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let mut state = State::default();
        for entry in loaded {
            let ok = fs::symlink_metadata(dir.join("blobs").join(&entry.file))
                .is_ok_and(|m| m.is_file() && m.len() == entry.size)
                && entry.file == blob_name(&entry.key);
            if ok {
                state.clock = state.clock.max(entry.last_used);
                state.total += entry.size;
                state.entries.insert(entry.key.clone(), entry);
            }
        }
        let known: std::collections::HashSet<String> =
            state.entries.values().map(|e| e.file.clone()).collect();
        for entry in fs::read_dir(dir.join("blobs"))? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type()?.is_file() && !known.contains(&name) {
                let _ = fs::remove_file(entry.path());
            }
        }
        let cache = Cache {
            dir: dir.to_path_buf(),
            capacity,
            state: Mutex::new(state),
            key_locks: Mutex::new(HashMap::new()),
            metrics,
            tmp_counter: AtomicU64::new(0),
        };
        {
            let mut state = cache.lock_state();
            cache.evict(&mut state);
            cache.save(&state)?;
        }
        Ok(cache)
    }

    fn lock_state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn size(&self) -> u64 {
        self.lock_state().total
    }

    pub(crate) fn contains(&self, key: &str) -> bool {
        self.lock_state().entries.contains_key(key)
    }

    /// Serialises fetches of one key.
    pub(crate) async fn lock_key(&self, key: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.key_locks.lock().unwrap_or_else(|p| p.into_inner());
            locks.retain(|k, l| k == key || Arc::strong_count(l) > 1);
            locks.entry(key.to_string()).or_default().clone()
        };
        lock.lock_owned().await
    }

    pub(crate) fn lookup(&self, key: &str) -> Option<Entry> {
        self.lock_state().entries.get(key).cloned()
    }

    /// Whether the entry was confirmed current after `since` — then a fetch
    /// that started at `since` (and waited for the one that confirmed it) can
    /// use it without asking the server again.
    pub(crate) fn validated_since(&self, key: &str, since: Instant) -> bool {
        self.lock_state()
            .validated
            .get(key)
            .is_some_and(|t| *t >= since)
    }

    pub(crate) fn mark_validated(&self, key: &str) {
        self.lock_state()
            .validated
            .insert(key.to_string(), Instant::now());
    }

    pub(crate) fn tmp_file(&self) -> io::Result<(PathBuf, File)> {
        let n = self.tmp_counter.fetch_add(1, Ordering::Relaxed);
        let path = self
            .dir
            .join("tmp")
            .join(format!("dl-{}-{n}", std::process::id()));
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok((path, file))
    }

    /// Pins the entry for `key` and opens its content; `None` if absent.
    pub(crate) fn pin(self: &Arc<Self>, key: &str) -> io::Result<Option<Lease>> {
        let mut state = self.lock_state();
        let Some(entry) = state.entries.get(key) else {
            return Ok(None);
        };
        let file = File::open(self.dir.join("blobs").join(&entry.file))?;
        let size = entry.size;
        state.clock += 1;
        let clock = state.clock;
        if let Some(e) = state.entries.get_mut(key) {
            e.last_used = clock;
        }
        *state.pins.entry(key.to_string()).or_default() += 1;
        self.save(&state)?;
        Ok(Some(Lease {
            cache: Arc::clone(self),
            key: key.to_string(),
            file: Some(file),
            size,
        }))
    }

    /// Moves a finished download into place (replacing an older version; open
    /// readers of that keep their inode), records it as current, pins it for
    /// the caller, then evicts as needed.
    pub(crate) fn commit(
        self: &Arc<Self>,
        key: &str,
        tmp: &Path,
        size: u64,
        validators: Validators,
    ) -> io::Result<Lease> {
        let file = blob_name(key);
        let dest = self.dir.join("blobs").join(&file);
        fs::rename(tmp, &dest)?;
        let handle = File::open(&dest)?;
        let mut state = self.lock_state();
        if let Some(old) = state.entries.remove(key) {
            state.total -= old.size;
        }
        state.clock += 1;
        let entry = Entry {
            key: key.to_string(),
            file,
            size,
            etag: validators.etag,
            last_modified: validators.last_modified,
            last_used: state.clock,
        };
        state.total += size;
        state.entries.insert(key.to_string(), entry);
        state.validated.insert(key.to_string(), Instant::now());
        *state.pins.entry(key.to_string()).or_default() += 1;
        self.evict(&mut state);
        self.save(&state)?;
        Ok(Lease {
            cache: Arc::clone(self),
            key: key.to_string(),
            file: Some(handle),
            size,
        })
    }

    fn unpin(&self, key: &str) {
        let mut state = self.lock_state();
        if let Some(n) = state.pins.get_mut(key) {
            *n -= 1;
            if *n == 0 {
                state.pins.remove(key);
            }
        }
        self.evict(&mut state);
        if let Err(e) = self.save(&state) {
            tracing::warn!(error = %e, "saving fetcher cache index");
        }
    }

    /// Drops least-recently-used unpinned entries until the cache fits. If
    /// everything left is pinned the cache stays over size until a lease ends.
    fn evict(&self, state: &mut State) {
        while state.total > self.capacity {
            let victim = state
                .entries
                .values()
                .filter(|e| !state.pins.contains_key(&e.key))
                .min_by_key(|e| e.last_used)
                .map(|e| e.key.clone());
            let Some(key) = victim else { break };
            if let Some(entry) = state.entries.remove(&key) {
                state.total -= entry.size;
                state.validated.remove(&key);
                let _ = fs::remove_file(self.dir.join("blobs").join(&entry.file));
                Metrics::add(&self.metrics.cache_evictions, 1);
                tracing::info!(uri = %key, size = entry.size, "evicted from fetcher cache");
            }
        }
    }

    /// Writes the index atomically: a crash leaves the old or the new one.
    fn save(&self, state: &State) -> io::Result<()> {
        let mut entries: Vec<Entry> = state.entries.values().cloned().collect();
        entries.sort_by_key(|e| e.last_used);
        let json = serde_json::to_vec_pretty(&Index {
            version: INDEX_VERSION,
            entries,
        })
        .map_err(io::Error::other)?;
        let tmp = self.dir.join(format!("{INDEX}.tmp"));
        let mut f = File::create(&tmp)?;
        f.write_all(&json)?;
        f.sync_all()?;
        fs::rename(&tmp, self.dir.join(INDEX))?;
        File::open(&self.dir)?.sync_all()?;
        Ok(())
    }
}
