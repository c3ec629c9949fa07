//! Disk enforcement like Mesos's `disk/du` isolator
//! (src/slave/containerizer/mesos/isolators/posix/disk.cpp,
//! `PosixDiskIsolatorProcess::_collect`): every
//! `--container_disk_watch_interval` each executor's sandbox, and the
//! writable layers of its pod's image rootfses, are measured as `du` would
//! (allocated blocks, links not followed, one filesystem: volumes and image
//! mounts below it are not the task's sandbox), against the
//! `disk` its executor and live tasks were given. With
//! `--enforce_container_disk_quota` a pod over its quota is killed and its
//! tasks end TASK_FAILED with REASON_CONTAINER_LIMITATION_DISK and
//! "Disk usage (X) exceeds quota (Y)". The last measure is reported in the
//! executor container's statistics (`disk_used_bytes`, `disk_limit_bytes`).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tepui_containerizer::ContainerPath;
use tepui_proto::v1::task_status::Reason;

use super::Agent;

/// Bytes the way Mesos's `stringify(Bytes)` prints them (stout/bytes.hpp):
/// the largest unit that is at most the value, truncated.
pub fn mesos_bytes(bytes: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (1 << 40, "TB"),
        (1 << 30, "GB"),
        (1 << 20, "MB"),
        (1 << 10, "KB"),
    ];
    for (size, unit) in UNITS {
        if bytes >= size {
            return format!("{}{unit}", bytes / size);
        }
    }
    format!("{bytes}B")
}

/// `du -s` of `dir`: allocated bytes of everything below it on its own
/// filesystem, hard links counted once.
pub fn usage(dir: &Path) -> u64 {
    let Ok(top) = std::fs::symlink_metadata(dir) else {
        return 0;
    };
    let device = top.dev();
    let mut seen = std::collections::HashSet::new();
    let mut total = top.blocks() * 512;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            if meta.dev() != device {
                continue;
            }
            if meta.nlink() > 1 && !meta.is_dir() && !seen.insert(meta.ino()) {
                continue;
            }
            total += meta.blocks() * 512;
            if meta.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    total
}

/// The `disk` of a pod: its executor's and its live tasks'.
pub(super) fn pod_disk_limit(e: &super::state::Executor) -> u64 {
    let tasks = e.tasks.values().map(|t| &t.info.resources);
    std::iter::once(&e.info.resources)
        .chain(tasks)
        .flatten()
        .filter(|r| r.name == "disk")
        .filter_map(|r| r.scalar.as_ref())
        .map(|s| (s.value.max(0.0) * 1024.0 * 1024.0) as u64)
        .sum()
}

/// One executor to measure.
struct Watched {
    container: String,
    directory: PathBuf,
    limit: u64,
}

impl Agent {
    /// Starts the watch when `--enforce_container_disk_quota` is on or
    /// `--isolation` names `disk/du`.
    pub(super) fn start_disk_watch(self: &Arc<Self>) {
        let enforce = self.config.enforce_container_disk_quota;
        if !enforce && self.xfs.is_none() && !isolation_has(&self.config.isolation, "disk/du") {
            return;
        }
        // disk/xfs enforces through the kernel (ENFORCING_PASSIVE: a write
        // past the quota fails): the watch only reads usage then.
        let enforce = enforce && self.xfs.is_none();
        let agent = Arc::clone(self);
        let interval = self
            .config
            .container_disk_watch_interval
            .max(Duration::from_millis(100));
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            loop {
                tokio::select! {
                    _ = agent.shutdown.cancelled() => return,
                    _ = ticker.tick() => agent.check_disk(enforce).await,
                }
            }
        });
    }

    async fn check_disk(self: &Arc<Self>, enforce: bool) {
        let watched: Vec<Watched> = {
            let state = self.state.lock().await;
            state
                .frameworks
                .values()
                .flat_map(|f| f.executors.values())
                .map(|e| Watched {
                    container: e.container_id.clone(),
                    directory: e.directory.clone(),
                    limit: pod_disk_limit(e),
                })
                .collect()
        };
        for w in watched {
            if let Some(xfs) = &self.xfs {
                // disk/xfs: the quota follows the pod's disk as tasks come
                // and go; the kernel counts, nothing is walked.
                if let Err(e) = xfs.update(&w.container, w.limit) {
                    tracing::warn!(container = %w.container, "disk/xfs: {e}");
                }
                if let Some(used) = xfs.used(&w.container) {
                    self.state
                        .lock()
                        .await
                        .disk_usage
                        .insert(w.container.clone(), (used, w.limit));
                    continue;
                }
            }
            let dir = w.directory.clone();
            // What its image containers wrote into their rootfs (the
            // overlays' writable layers) counts too, as Mesos's `disk/du`
            // counts a container's ephemeral volumes. The mounted rootfses
            // themselves are other filesystems and are skipped by `usage`.
            let images = self.containerizer.pod_image_dir(&w.container);
            let used = tokio::task::spawn_blocking(move || {
                usage(&dir) + images.as_deref().map_or(0, usage)
            })
            .await
            .unwrap_or(0);
            {
                let mut state = self.state.lock().await;
                state
                    .disk_usage
                    .insert(w.container.clone(), (used, w.limit));
                if !enforce
                    || w.limit == 0
                    || used <= w.limit
                    || state.limitations.contains_key(&w.container)
                {
                    continue;
                }
                let message = format!(
                    "Disk usage ({}) exceeds quota ({})",
                    mesos_bytes(used),
                    mesos_bytes(w.limit)
                );
                tracing::warn!(container = %w.container, used, limit = w.limit, "{message}: killing the container");
                state.limitations.insert(
                    w.container.clone(),
                    (Reason::ContainerLimitationDisk, message),
                );
            }
            if let Ok(id) = ContainerPath::new(vec![w.container]) {
                let _ = self.containerizer.kill(&id, Duration::ZERO).await;
            }
        }
    }

    /// disk/xfs: a new sandbox's project, before anything is fetched into
    /// it (`XfsDiskIsolatorProcess::prepare` runs before the fetcher).
    pub(super) async fn assign_disk_project(
        &self,
        fw: &str,
        ex: &str,
        container: &str,
        dir: &Path,
    ) -> Result<(), String> {
        let Some(xfs) = &self.xfs else {
            return Ok(());
        };
        let limit = {
            let state = self.state.lock().await;
            state.executor(fw, ex).map_or(0, pod_disk_limit)
        };
        xfs.assign(container, dir, limit)
            .map(|_| ())
            .map_err(|e| format!("disk/xfs: {e}"))
    }

    /// disk/xfs after a restart: live sandboxes keep their project ids,
    /// sandboxes of runs that ended while the agent was away give theirs
    /// back.
    pub(super) async fn recover_disk_projects(&self) {
        let Some(xfs) = &self.xfs else {
            return;
        };
        let live: Vec<(String, PathBuf, u64)> = {
            let state = self.state.lock().await;
            state
                .frameworks
                .values()
                .flat_map(|f| f.executors.values())
                .map(|e| {
                    (
                        e.container_id.clone(),
                        e.directory.clone(),
                        pod_disk_limit(e),
                    )
                })
                .collect()
        };
        let mut ended = Vec::new();
        let slaves = self.work.root().join("slaves");
        for agent in read_dirs(&slaves) {
            for fw in read_dirs(&agent.join("frameworks")) {
                for ex in read_dirs(&fw.join("executors")) {
                    for run in read_dirs(&ex.join("runs")) {
                        if !live.iter().any(|(_, dir, _)| *dir == run) {
                            ended.push(run);
                        }
                    }
                }
            }
        }
        xfs.recover(&live, &ended);
    }

    /// Adds the last disk measure to a top-level container's statistics.
    pub async fn add_disk_statistics(
        &self,
        container: &ContainerPath,
        stats: &mut tepui_proto::v1::ResourceStatistics,
    ) {
        if container.is_nested() {
            return;
        }
        if let Some((used, limit)) = self.state.lock().await.disk_usage.get(container.pod()) {
            stats.disk_used_bytes = Some(*used);
            if *limit > 0 {
                stats.disk_limit_bytes = Some(*limit);
            }
        }
    }
}

/// `--isolation` names `isolator`.
pub(super) fn isolation_has(isolation: &str, isolator: &str) -> bool {
    isolation.split(',').any(|i| i.trim() == isolator)
}

/// Directories (not symlinks such as `latest`) right below `dir`.
fn read_dirs(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_print_like_mesos() {
        assert_eq!(mesos_bytes(512), "512B");
        assert_eq!(mesos_bytes(32 << 20), "32MB");
        assert_eq!(mesos_bytes((200 << 20) + 5), "200MB");
        assert_eq!(mesos_bytes(3 << 30), "3GB");
        assert_eq!(mesos_bytes(2048), "2KB");
    }

    #[test]
    fn usage_counts_allocated_bytes_and_hard_links_once() {
        let dir = tempfile::tempdir().unwrap();
        let empty = usage(dir.path());
        std::fs::write(dir.path().join("a"), vec![1u8; 1 << 20]).unwrap();
        std::fs::hard_link(dir.path().join("a"), dir.path().join("b")).unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::fs::write(dir.path().join("d/c"), vec![1u8; 1 << 20]).unwrap();
        let used = usage(dir.path()) - empty;
        assert!((2 << 20..(2 << 20) + 64 * 1024).contains(&used), "{used}");
    }
}
