//! Garbage collection of finished executor runs (Mesos's `--gc_delay`): a
//! run's sandbox and checkpoints are removed `gc_delay` after it completed,
//! once every update of its tasks was acknowledged. The schedule is rebuilt
//! at recovery from the run records' modification times, so a restart
//! neither forgets a run nor removes one early.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::Agent;
use crate::status_updates::TaskKey;

/// While a run still has unacknowledged updates, look again this often.
const RETRY: Duration = Duration::from_secs(60);

impl Agent {
    /// Schedules the removal of a completed run, `gc_delay` after
    /// `completed_at` (its run record's last write).
    pub(super) fn schedule_gc(self: &Arc<Self>, fw: &str, ex: &str, container: &str) {
        let run_file = self.work.run_file(fw, ex, container);
        let completed_at = std::fs::metadata(&run_file)
            .and_then(|m| m.modified())
            .unwrap_or_else(|_| SystemTime::now());
        let due = completed_at + self.config.gc_delay;
        let wait = due
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        let agent = self.clone();
        let (fw, ex, container) = (fw.to_string(), ex.to_string(), container.to_string());
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            loop {
                if agent.collect_run(&fw, &ex, &container).await {
                    return;
                }
                tokio::time::sleep(RETRY).await;
            }
        });
    }

    /// Removes the run if nothing of it is still needed; false to retry.
    async fn collect_run(self: &Arc<Self>, fw: &str, ex: &str, container: &str) -> bool {
        let meta = self.work.run_meta(fw, ex, container);
        let tasks: Vec<String> = std::fs::read_dir(meta.join("tasks"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        let sandbox = {
            let mut state = self.state.lock().await;
            let pending = tasks.iter().any(|task| {
                let key = TaskKey {
                    framework: fw.to_string(),
                    task: task.clone(),
                };
                !state.updates.unacknowledged(&key).is_empty()
            });
            if pending {
                return false;
            }
            for task in &tasks {
                state.updates.forget(&TaskKey {
                    framework: fw.to_string(),
                    task: task.clone(),
                });
            }
            let agent_id = self.agent_id();
            self.work.executor_sandbox(&agent_id, fw, ex, container)
        };
        let executor_meta = self.work.executor_meta(fw, ex);
        let removed = tokio::task::spawn_blocking(move || remove_run(sandbox, meta, executor_meta))
            .await
            .unwrap_or(false);
        if removed {
            tracing::info!(framework = %fw, executor = %ex, container = %container, "garbage-collected a finished run");
        }
        true
    }
}

/// Sandbox and checkpoints of the run; the executor's checkpoint dir too
/// once it has no run left. Never crosses a mount (safe_remove refuses).
fn remove_run(sandbox: PathBuf, meta: PathBuf, executor_meta: PathBuf) -> bool {
    let mut ok = true;
    for dir in [&sandbox, &meta] {
        if let Err(e) = tepui_containerizer::safe_remove::remove_tree(dir) {
            tracing::warn!(dir = %dir.display(), "not garbage-collected: {e}");
            ok = false;
        }
    }
    let runs_left = std::fs::read_dir(executor_meta.join("runs"))
        .map(|mut d| d.next().is_some())
        .unwrap_or(false);
    if ok && !runs_left {
        let _ = tepui_containerizer::safe_remove::remove_tree(&executor_meta);
    }
    ok
}
