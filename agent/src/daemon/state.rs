//! What the agent knows about frameworks, executors and tasks in memory.
//! Everything here can be rebuilt from the work dir's checkpoints plus the
//! containerizer's recovery.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tepui_proto::v1::{FrameworkInfo, TaskGroupInfo, TaskInfo, TaskState, TaskStatus, executor};
use tokio::sync::mpsc;

use crate::status_updates::StatusUpdateManager;

/// Which program runs an executor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutorKind {
    /// tepui's command executor, for a task without an ExecutorInfo.
    Command,
    /// tepui's default executor (ExecutorInfo type DEFAULT, task groups).
    Default,
    /// The framework's own program (ExecutorInfo type CUSTOM).
    Custom,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Its container runs; it has not subscribed (yet, or again after an
    /// agent restart).
    Registering,
    /// Subscribed.
    Running,
    /// Being shut down.
    Terminating,
}

/// Work waiting for the executor to subscribe.
#[derive(Debug, Clone)]
pub enum Queued {
    Task(Box<TaskInfo>),
    Group(TaskGroupInfo),
}

#[derive(Debug, Clone)]
pub struct TaskEntry {
    pub info: TaskInfo,
    pub state: TaskState,
    /// Its status updates, kept as Mesos's agent keeps `Task.statuses`
    /// (src/slave/slave.cpp, `Executor::updateTaskState`): one of the same
    /// state as the last replaces it. Operators read the task's own
    /// container id from them (`container_status`).
    pub statuses: Vec<TaskStatus>,
}

impl TaskEntry {
    pub fn new(info: TaskInfo, state: TaskState) -> Self {
        Self {
            info,
            state,
            statuses: Vec::new(),
        }
    }

    /// Records an accepted update (its `data` is dropped: it can be large
    /// and nothing reads it back).
    pub fn record(&mut self, status: &TaskStatus) {
        if self
            .statuses
            .last()
            .is_some_and(|s| s.state == status.state)
        {
            self.statuses.pop();
        }
        let mut kept = status.clone();
        kept.data = None;
        self.statuses.push(kept);
        if let Ok(state) = TaskState::try_from(status.state) {
            self.state = state;
        }
    }
}

#[derive(Debug)]
pub struct Executor {
    pub info: tepui_proto::v1::ExecutorInfo,
    pub kind: ExecutorKind,
    pub container_id: String,
    pub directory: PathBuf,
    pub phase: Phase,
    pub queued: Vec<Queued>,
    pub tasks: BTreeMap<String, TaskEntry>,
    /// The subscribed executor's event stream; `generation` tells a stale
    /// disconnect from the current one.
    pub subscriber: Option<(u64, mpsc::UnboundedSender<executor::Event>)>,
    /// Tasks asked to be killed (their terminal state is TASK_KILLED).
    pub killing: Vec<String>,
}

impl Executor {
    pub fn send(&self, event: executor::Event) -> bool {
        self.subscriber
            .as_ref()
            .is_some_and(|(_, tx)| tx.send(event).is_ok())
    }
}

#[derive(Debug)]
pub struct Framework {
    pub info: FrameworkInfo,
    pub executors: BTreeMap<String, Executor>,
    /// SHUTDOWN_FRAMEWORK came: once its last executor is gone the
    /// framework and its pending updates are dropped.
    pub shutting_down: bool,
}

impl Framework {
    pub fn checkpoint(&self) -> bool {
        self.info.checkpoint.unwrap_or(false)
    }
}

#[derive(Debug, Default)]
pub struct State {
    pub frameworks: BTreeMap<String, Framework>,
    pub updates: StatusUpdateManager,
    /// Where each top-level container of an executor lives:
    /// container id -> (framework, executor).
    pub containers: BTreeMap<String, (String, String)>,
    pub next_generation: u64,
    /// Why the agent killed a top-level container (a limitation, e.g.
    /// disk): its tasks end with this reason and message.
    pub limitations: BTreeMap<String, (tepui_proto::v1::task_status::Reason, String)>,
    /// The last disk measure of each top-level container: (used, limit).
    pub disk_usage: BTreeMap<String, (u64, u64)>,
    /// Finished executors and frameworks, for `/state` and GET_STATE.
    pub history: super::history::History,
}

impl State {
    pub fn executor(&self, fw: &str, ex: &str) -> Option<&Executor> {
        self.frameworks.get(fw)?.executors.get(ex)
    }

    pub fn executor_mut(&mut self, fw: &str, ex: &str) -> Option<&mut Executor> {
        self.frameworks.get_mut(fw)?.executors.get_mut(ex)
    }

    /// The executor whose top-level container is `container`.
    pub fn executor_of_container(&self, container: &str) -> Option<&Executor> {
        let (fw, ex) = self.containers.get(container)?;
        self.executor(fw, ex)
    }

    /// The executor running (or about to run) a task.
    pub fn executor_of_task(&self, fw: &str, task: &str) -> Option<(&str, &Executor)> {
        let framework = self.frameworks.get(fw)?;
        framework.executors.iter().find_map(|(id, e)| {
            let queued = e.queued.iter().any(|q| match q {
                Queued::Task(t) => t.task_id.value == task,
                Queued::Group(g) => g.tasks.iter().any(|t| t.task_id.value == task),
            });
            (queued || e.tasks.contains_key(task)).then_some((id.as_str(), e))
        })
    }
}

/// `run.json`: one executor run, written before its container launches.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub container_id: String,
    pub kind: ExecutorKind,
    pub directory: PathBuf,
    /// Set once the run's end was handled (its unfinished tasks got their
    /// terminal updates): a later recovery must not do it again.
    #[serde(default)]
    pub completed: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_keeps_one_status_per_state_in_a_row_without_data() {
        let status = |state: TaskState, uuid: u8| TaskStatus {
            state: state as i32,
            uuid: Some(vec![uuid].into()),
            data: Some(vec![1, 2, 3].into()),
            ..Default::default()
        };
        let mut entry = TaskEntry::new(TaskInfo::default(), TaskState::TaskStaging);
        entry.record(&status(TaskState::TaskRunning, 1));
        entry.record(&status(TaskState::TaskRunning, 2));
        entry.record(&status(TaskState::TaskFinished, 3));
        let kept: Vec<(i32, Option<u8>)> = entry
            .statuses
            .iter()
            .map(|s| (s.state, s.uuid.as_ref().map(|u| u[0])))
            .collect();
        assert_eq!(
            kept,
            [
                (TaskState::TaskRunning as i32, Some(2)),
                (TaskState::TaskFinished as i32, Some(3))
            ]
        );
        assert!(entry.statuses.iter().all(|s| s.data.is_none()));
        assert_eq!(entry.state, TaskState::TaskFinished);
    }
}
