//! Agent restart: rebuild frameworks, executors, tasks and unacknowledged
//! updates from the work dir, match them with the containers the
//! containerizer finds, and end what did not survive.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tepui_containerizer::spec::ContainerKind;
use tepui_containerizer::{ContainerPath, RecoveredContainer};
use tepui_proto::v1::task_status::Reason;
use tepui_proto::v1::{
    ExecutorId, ExecutorInfo, FrameworkInfo, TaskGroupInfo, TaskInfo, TaskState,
};

use super::state::{Executor, ExecutorKind, Framework, Phase, Queued, RunRecord, TaskEntry};
use super::tasks::ExecutorRecord;
use super::{Agent, AgentError};
use crate::checkpoint;
use crate::config::RecoverMode;
use crate::status_updates::{TaskKey, is_terminal};

fn dirs(path: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

impl Agent {
    pub(super) async fn recover(self: &Arc<Self>) -> Result<(), AgentError> {
        let found = self.containerizer.recover().await?;
        let mut containers: BTreeMap<String, RecoveredContainer> = found
            .into_iter()
            .filter(|c| c.container.is_top_level())
            .map(|c| (c.container.pod().to_string(), c))
            .collect();
        let cleanup = self.config.recover == RecoverMode::Cleanup;
        let strict = self.config.strict;
        // Unreadable state: with --strict (the default) recovery stops and
        // says what; without it, that piece is skipped with a warning.
        let tolerate = |result: Result<(), String>| -> Result<bool, AgentError> {
            match result {
                Ok(()) => Ok(true),
                Err(message) if strict => Err(AgentError::Config(format!(
                    "recovery: {message} (start with --strict=false to skip unreadable state)"
                ))),
                Err(message) => {
                    tracing::warn!("recovery: skipping {message}");
                    Ok(false)
                }
            }
        };
        let mut to_watch = Vec::new();
        let mut to_remove = Vec::new();
        let mut to_collect = Vec::new();
        {
            let mut state = self.state.lock().await;
            for fw in dirs(&self.work.frameworks_meta()) {
                let info =
                    match checkpoint::read_message::<FrameworkInfo>(&self.work.framework_file(&fw))
                    {
                        Ok(Some(info)) => info,
                        Ok(None) => continue,
                        Err(e) => {
                            tolerate(Err(e.to_string()))?;
                            continue;
                        }
                    };
                state.frameworks.insert(
                    fw.clone(),
                    Framework {
                        info,
                        executors: Default::default(),
                        shutting_down: false,
                    },
                );
                for ex in dirs(&self.work.framework_meta(&fw).join("executors")) {
                    let record = match checkpoint::read_json::<ExecutorRecord>(
                        &self.work.executor_file(&fw, &ex),
                    ) {
                        Ok(Some(record)) => record,
                        Ok(None) => continue,
                        Err(e) => {
                            tolerate(Err(e.to_string()))?;
                            continue;
                        }
                    };
                    let info: ExecutorInfo = match tepui_proto::json::from_value(&record.info) {
                        Ok(info) => info,
                        Err(e) => {
                            tolerate(Err(format!("executor {ex}: checkpoint unreadable: {e}")))?;
                            continue;
                        }
                    };
                    for run in dirs(&self.work.executor_meta(&fw, &ex).join("runs")) {
                        let run_record = match checkpoint::read_json::<RunRecord>(
                            &self.work.run_file(&fw, &ex, &run),
                        ) {
                            Ok(Some(record)) => record,
                            Ok(None) => continue,
                            Err(e) => {
                                tolerate(Err(e.to_string()))?;
                                continue;
                            }
                        };
                        let mut tasks = BTreeMap::new();
                        for task in dirs(&self.work.run_meta(&fw, &ex, &run).join("tasks")) {
                            let key = TaskKey {
                                framework: fw.clone(),
                                task: task.clone(),
                            };
                            let executor_id = ExecutorId { value: ex.clone() };
                            let recovered = state.updates.recover(
                                &key,
                                &self.work.task_updates(&fw, &ex, &run, &task),
                                Some(&executor_id),
                            );
                            let history = match recovered {
                                Ok(history) => history,
                                Err(e) => {
                                    tolerate(Err(e.to_string()))?;
                                    continue;
                                }
                            };
                            let info = match checkpoint::read_message::<TaskInfo>(
                                &self.work.task_file(&fw, &ex, &run, &task),
                            ) {
                                Ok(info) => info,
                                Err(e) => {
                                    tolerate(Err(e.to_string()))?;
                                    None
                                }
                            };
                            if let Some(info) = info {
                                let task_state = state
                                    .updates
                                    .latest_state(&key)
                                    .unwrap_or(TaskState::TaskStaging);
                                let mut entry = TaskEntry::new(info, task_state);
                                for status in &history {
                                    entry.record(status);
                                }
                                entry.state = task_state;
                                tasks.insert(task.clone(), entry);
                            }
                        }
                        if run_record.completed {
                            // Its end was handled before; only its tasks'
                            // unacknowledged updates (recovered above) and
                            // its garbage collection matter.
                            containers.remove(&run);
                            to_collect.push((fw.clone(), ex.clone(), run.clone()));
                            continue;
                        }
                        let live = containers
                            .remove(&run)
                            .filter(|c| c.termination.is_none() && c.pid.is_some());
                        let unfinished = tasks.values().any(|t| !is_terminal(t.state));
                        // Tasks that never reported anything may never have
                        // reached the executor: they are offered again when it
                        // re-subscribes (it says which ones it already has).
                        let never_started: Vec<TaskInfo> = tasks
                            .iter()
                            .filter(|(id, t)| {
                                t.state == TaskState::TaskStaging
                                    && state
                                        .updates
                                        .latest_state(&TaskKey {
                                            framework: fw.clone(),
                                            task: (*id).clone(),
                                        })
                                        .is_none()
                            })
                            .map(|(_, t)| t.info.clone())
                            .collect();
                        let queued = if never_started.is_empty() {
                            Vec::new()
                        } else if run_record.kind == ExecutorKind::Default {
                            vec![Queued::Group(TaskGroupInfo {
                                tasks: never_started.clone(),
                            })]
                        } else {
                            never_started
                                .iter()
                                .cloned()
                                .map(|t| Queued::Task(Box::new(t)))
                                .collect()
                        };
                        let executor = Executor {
                            info: info.clone(),
                            kind: run_record.kind,
                            container_id: run.clone(),
                            directory: run_record.directory.clone(),
                            phase: Phase::Registering,
                            queued,
                            tasks,
                            subscriber: None,
                            killing: Vec::new(),
                        };
                        if let Some(framework) = state.frameworks.get_mut(&fw) {
                            framework.executors.insert(ex.clone(), executor);
                        }
                        state
                            .containers
                            .insert(run.clone(), (fw.clone(), ex.clone()));
                        match live {
                            Some(_) if !cleanup => {
                                tracing::info!(framework = %fw, executor = %ex, container = %run, "recovered a running executor; waiting for it to re-subscribe");
                                to_watch.push((fw.clone(), ex.clone(), run.clone()));
                            }
                            live => {
                                let message = if live.is_some() {
                                    "Executor destroyed: the agent recovered with --recover=cleanup"
                                } else {
                                    "Executor terminated while the agent was down"
                                };
                                for task in &never_started {
                                    self.agent_update_locked(
                                        &mut state,
                                        &fw,
                                        &ex,
                                        Some(&run),
                                        &task.task_id.value,
                                        TaskState::TaskLost,
                                        Reason::AgentRestarted,
                                        "The agent restarted before the task started",
                                    );
                                }
                                if unfinished {
                                    self.fail_executor_tasks(
                                        &mut state,
                                        &fw,
                                        &ex,
                                        TaskState::TaskFailed,
                                        Reason::ExecutorTerminated,
                                        message,
                                    );
                                }
                                self.forget_executor(&mut state, &fw, &ex);
                                state.containers.remove(&run);
                                self.mark_run_completed(&fw, &ex, &run);
                                to_collect.push((fw.clone(), ex.clone(), run.clone()));
                                to_remove.push((run.clone(), live.is_some()));
                            }
                        }
                    }
                }
            }
        }
        // Containers no checkpoint explains: destroyed, except standalone
        // ones (the operator API owns those).
        for (id, container) in containers {
            let standalone = container
                .spec
                .as_ref()
                .is_some_and(|s| s.kind == ContainerKind::Standalone);
            if !standalone {
                tracing::warn!(container = %id, "unknown container found at recovery: destroying it");
                to_remove.push((id, container.termination.is_none()));
            }
        }
        for (container, running) in to_remove {
            let Ok(id) = ContainerPath::new(vec![container.clone()]) else {
                continue;
            };
            let result = if running {
                self.containerizer
                    .destroy(&id, Duration::ZERO)
                    .await
                    .map(|_| ())
            } else {
                self.containerizer.remove(&id).await
            };
            match result {
                Ok(()) | Err(tepui_containerizer::ContainerizerError::Unknown(_)) => {}
                Err(e) => tracing::warn!(container = %container, "cleanup at recovery: {e}"),
            }
        }
        for (fw, ex, container) in to_collect {
            self.schedule_gc(&fw, &ex, &container);
        }
        for (fw, ex, container) in to_watch {
            crate::http::libprocess::reconnect(self, &fw, &ex, &container);
            self.watch_executor(fw.clone(), ex.clone(), container.clone());
            self.reregistration_timer(fw, ex, container);
        }
        self.updates_ready.notify_one();
        Ok(())
    }
}
