//! Reliable status updates (Mesos's status update manager): every update
//! of a task is checkpointed before anyone is told, forwarded to the master
//! one at a time in order, and retried with exponential backoff until the
//! scheduler acknowledges it; then the next one goes. The log survives agent
//! restarts, so a restarted agent resends exactly what was not acknowledged.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tepui_proto::v1::{ExecutorId, FrameworkId, TaskState, TaskStatus};

use crate::checkpoint::{self, CheckpointError, UpdateRecord};

/// Mesos's `STATUS_UPDATE_RETRY_INTERVAL_MIN` and `_MAX`
/// (src/slave/constants.hpp): a master that is slow to forward, or a
/// scheduler slow to acknowledge, is not flooded with duplicates.
pub const RETRY_MIN: Duration = Duration::from_secs(10);
pub const RETRY_MAX: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskKey {
    pub framework: String,
    pub task: String,
}

/// One update ready to go to the master.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub framework_id: FrameworkId,
    pub executor_id: Option<ExecutorId>,
    pub status: TaskStatus,
    pub latest_state: Option<TaskState>,
}

#[derive(Debug)]
struct Stream {
    /// Where the stream is checkpointed; `None` for a stream kept in memory
    /// only (its ids cannot be a path, or its log could not be written):
    /// the master still learns the update, it just does not survive a
    /// restart.
    log: Option<PathBuf>,
    executor_id: Option<ExecutorId>,
    pending: VecDeque<TaskStatus>,
    seen: HashSet<Vec<u8>>,
    latest_state: Option<TaskState>,
    next_send: Option<Instant>,
    backoff: Duration,
}

/// What became of an update the executor (or the agent) sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// New and checkpointed; `front` when it is the one to forward now.
    New { front: bool },
    /// Its uuid was seen before (an executor retry): nothing changed.
    Duplicate,
}

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("status update for task {task}: {reason}")]
    Invalid { task: String, reason: &'static str },
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

#[derive(Debug, Default)]
pub struct StatusUpdateManager {
    streams: HashMap<TaskKey, Stream>,
}

pub fn is_terminal(state: TaskState) -> bool {
    matches!(
        state,
        TaskState::TaskFinished
            | TaskState::TaskFailed
            | TaskState::TaskKilled
            | TaskState::TaskLost
            | TaskState::TaskError
            | TaskState::TaskDropped
            | TaskState::TaskGone
            | TaskState::TaskGoneByOperator
    )
}

impl StatusUpdateManager {
    fn stream(
        &mut self,
        key: &TaskKey,
        log: Option<&Path>,
        executor_id: Option<&ExecutorId>,
    ) -> &mut Stream {
        self.streams.entry(key.clone()).or_insert_with(|| Stream {
            log: log.map(Path::to_path_buf),
            executor_id: executor_id.cloned(),
            pending: VecDeque::new(),
            seen: HashSet::new(),
            latest_state: None,
            next_send: None,
            backoff: RETRY_MIN,
        })
    }

    /// Checkpoints and queues an update (its uuid must be set).
    pub fn update(
        &mut self,
        key: &TaskKey,
        log: &Path,
        executor_id: Option<&ExecutorId>,
        status: TaskStatus,
    ) -> Result<Accepted, UpdateError> {
        self.insert(key, Some(log), executor_id, status)
    }

    /// Queues an update without checkpointing it: for an update the agent
    /// writes itself about a task whose ids cannot become a path, or whose
    /// log cannot be written (the task must still end, never hang in
    /// STAGING).
    pub fn update_unlogged(
        &mut self,
        key: &TaskKey,
        executor_id: Option<&ExecutorId>,
        status: TaskStatus,
    ) -> Result<Accepted, UpdateError> {
        self.insert(key, None, executor_id, status)
    }

    fn insert(
        &mut self,
        key: &TaskKey,
        log: Option<&Path>,
        executor_id: Option<&ExecutorId>,
        status: TaskStatus,
    ) -> Result<Accepted, UpdateError> {
        let uuid = status
            .uuid
            .as_ref()
            .filter(|u| !u.is_empty())
            .ok_or(UpdateError::Invalid {
                task: key.task.clone(),
                reason: "'status.uuid' must be set",
            })?
            .to_vec();
        let stream = self.stream(key, log, executor_id);
        if log.is_none() {
            // From now on the stream lives in memory only.
            stream.log = None;
        }
        if stream.seen.contains(&uuid) {
            return Ok(Accepted::Duplicate);
        }
        if let Some(log) = &stream.log {
            checkpoint::append_update(log, &UpdateRecord::Update(Box::new(status.clone())))?;
        }
        stream.seen.insert(uuid);
        stream.latest_state = TaskState::try_from(status.state).ok();
        stream.pending.push_back(status);
        let front = stream.pending.len() == 1;
        if front {
            stream.next_send = Some(Instant::now());
            stream.backoff = RETRY_MIN;
        }
        Ok(Accepted::New { front })
    }

    /// The scheduler acknowledged `uuid`. Returns the next update of the
    /// task to forward, if any. An ack for anything but the front is stale
    /// and ignored (Mesos does the same).
    pub fn acknowledge(
        &mut self,
        key: &TaskKey,
        uuid: &[u8],
    ) -> Result<Option<Outgoing>, UpdateError> {
        let Some(stream) = self.streams.get_mut(key) else {
            return Ok(None);
        };
        let front_matches = stream
            .pending
            .front()
            .and_then(|s| s.uuid.as_deref())
            .is_some_and(|u| u == uuid);
        if !front_matches {
            return Ok(None);
        }
        if let Some(log) = &stream.log {
            checkpoint::append_update(log, &UpdateRecord::Ack(uuid.to_vec()))?;
        }
        stream.pending.pop_front();
        stream.backoff = RETRY_MIN;
        stream.next_send = if stream.pending.is_empty() {
            None
        } else {
            Some(Instant::now())
        };
        Ok(self.front(key))
    }

    fn front(&self, key: &TaskKey) -> Option<Outgoing> {
        let stream = self.streams.get(key)?;
        let status = stream.pending.front()?.clone();
        Some(Outgoing {
            framework_id: FrameworkId {
                value: key.framework.clone(),
            },
            executor_id: stream.executor_id.clone(),
            status,
            latest_state: stream.latest_state,
        })
    }

    /// The fronts due to be (re)sent now; each gets its next retry time.
    pub fn due(&mut self, now: Instant) -> Vec<Outgoing> {
        let keys: Vec<TaskKey> = self
            .streams
            .iter()
            .filter(|(_, s)| s.next_send.is_some_and(|t| t <= now) && !s.pending.is_empty())
            .map(|(k, _)| k.clone())
            .collect();
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(outgoing) = self.front(&key) {
                out.push(outgoing);
            }
            if let Some(stream) = self.streams.get_mut(&key) {
                stream.next_send = Some(now + stream.backoff);
                stream.backoff = (stream.backoff * 2).min(RETRY_MAX);
            }
        }
        out
    }

    /// After (re)connecting to a master: every front goes again now.
    pub fn resend_all(&mut self) {
        let now = Instant::now();
        for stream in self.streams.values_mut() {
            if !stream.pending.is_empty() {
                stream.next_send = Some(now);
                stream.backoff = RETRY_MIN;
            }
        }
    }

    /// When the earliest retry is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.streams.values().filter_map(|s| s.next_send).min()
    }

    /// Replays a task's log after a restart; returns every update it holds,
    /// in order (acknowledged ones too).
    pub fn recover(
        &mut self,
        key: &TaskKey,
        log: &Path,
        executor_id: Option<&ExecutorId>,
    ) -> Result<Vec<TaskStatus>, UpdateError> {
        let records = checkpoint::read_updates(log)?;
        let stream = self.stream(key, Some(log), executor_id);
        let mut all = Vec::new();
        for record in records {
            match record {
                UpdateRecord::Update(status) => {
                    let status = *status;
                    if let Some(uuid) = status.uuid.as_ref() {
                        stream.seen.insert(uuid.to_vec());
                    }
                    stream.latest_state = TaskState::try_from(status.state).ok();
                    all.push(status.clone());
                    stream.pending.push_back(status);
                }
                UpdateRecord::Ack(uuid) => {
                    if stream.pending.front().and_then(|s| s.uuid.as_deref()) == Some(&uuid[..]) {
                        stream.pending.pop_front();
                    }
                }
            }
        }
        if !stream.pending.is_empty() {
            stream.next_send = Some(Instant::now());
        }
        Ok(all)
    }

    pub fn latest_state(&self, key: &TaskKey) -> Option<TaskState> {
        self.streams.get(key).and_then(|s| s.latest_state)
    }

    /// Updates not yet acknowledged by the scheduler.
    pub fn unacknowledged(&self, key: &TaskKey) -> Vec<TaskStatus> {
        self.streams
            .get(key)
            .map(|s| s.pending.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Whether the task's last update was terminal and acknowledged: then
    /// nothing of it needs to be kept.
    pub fn is_done(&self, key: &TaskKey) -> bool {
        self.streams
            .get(key)
            .is_some_and(|s| s.pending.is_empty() && s.latest_state.is_some_and(is_terminal))
    }

    /// Tasks with updates the scheduler has not acknowledged yet: their
    /// executor id, latest state and first pending update.
    pub fn pending_tasks(
        &self,
    ) -> impl Iterator<
        Item = (
            &TaskKey,
            Option<&ExecutorId>,
            Option<TaskState>,
            &TaskStatus,
        ),
    > {
        self.streams.iter().filter_map(|(key, s)| {
            s.pending
                .front()
                .map(|first| (key, s.executor_id.as_ref(), s.latest_state, first))
        })
    }

    pub fn forget(&mut self, key: &TaskKey) {
        self.streams.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tepui_proto::v1::TaskId;

    fn status(state: TaskState, uuid: u8) -> TaskStatus {
        TaskStatus {
            task_id: TaskId { value: "t".into() },
            state: state as i32,
            uuid: Some(vec![uuid; 16].into()),
            ..Default::default()
        }
    }

    fn key() -> TaskKey {
        TaskKey {
            framework: "fw".into(),
            task: "t".into(),
        }
    }

    #[test]
    fn an_unlogged_update_goes_out_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("x".repeat(300)).join("updates.jsonl");
        let mut m = StatusUpdateManager::default();
        // The logged update cannot be written (ENAMETOOLONG):
        // the caller falls back to memory, and the update still goes out.
        assert!(
            m.update(&key(), &log, None, status(TaskState::TaskError, 1))
                .is_err()
        );
        assert_eq!(
            m.update_unlogged(&key(), None, status(TaskState::TaskError, 1))
                .unwrap(),
            Accepted::New { front: true }
        );
        let due = m.due(Instant::now());
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].status.state, TaskState::TaskError as i32);
        assert_eq!(
            m.acknowledge(&key(), &[1; 16]).unwrap(),
            None,
            "the ack needs no log either"
        );
        assert!(m.is_done(&key()));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn updates_go_one_at_a_time_in_order_until_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("updates.jsonl");
        let mut m = StatusUpdateManager::default();
        assert_eq!(
            m.update(&key(), &log, None, status(TaskState::TaskRunning, 1))
                .unwrap(),
            Accepted::New { front: true }
        );
        assert_eq!(
            m.update(&key(), &log, None, status(TaskState::TaskFinished, 2))
                .unwrap(),
            Accepted::New { front: false }
        );
        // A retried update from the executor changes nothing.
        assert_eq!(
            m.update(&key(), &log, None, status(TaskState::TaskRunning, 1))
                .unwrap(),
            Accepted::Duplicate
        );
        let due = m.due(Instant::now());
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].status.uuid.as_deref(), Some(&[1u8; 16][..]));
        assert_eq!(due[0].latest_state, Some(TaskState::TaskFinished));
        // Not due again before the backoff.
        assert!(m.due(Instant::now()).is_empty());
        // A stale ack (not the front) is ignored.
        assert_eq!(m.acknowledge(&key(), &[2; 16]).unwrap(), None);
        let next = m.acknowledge(&key(), &[1; 16]).unwrap().unwrap();
        assert_eq!(next.status.state, TaskState::TaskFinished as i32);
        assert!(!m.is_done(&key()));
        assert_eq!(m.acknowledge(&key(), &[2; 16]).unwrap(), None);
        assert!(m.is_done(&key()));
    }

    #[test]
    fn a_restarted_agent_resends_exactly_the_unacknowledged_updates() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("updates.jsonl");
        {
            let mut m = StatusUpdateManager::default();
            m.update(&key(), &log, None, status(TaskState::TaskStarting, 1))
                .unwrap();
            m.update(&key(), &log, None, status(TaskState::TaskRunning, 2))
                .unwrap();
            m.update(&key(), &log, None, status(TaskState::TaskFinished, 3))
                .unwrap();
            m.acknowledge(&key(), &[1; 16]).unwrap();
        }
        let mut m = StatusUpdateManager::default();
        m.recover(&key(), &log, None).unwrap();
        let pending: Vec<u8> = m
            .unacknowledged(&key())
            .iter()
            .map(|s| s.uuid.as_ref().unwrap()[0])
            .collect();
        assert_eq!(pending, [2, 3]);
        let due = m.due(Instant::now());
        assert_eq!(due[0].status.uuid.as_deref(), Some(&[2u8; 16][..]));
        // The executor retrying an old update after the restart is a duplicate.
        assert_eq!(
            m.update(&key(), &log, None, status(TaskState::TaskStarting, 1))
                .unwrap(),
            Accepted::Duplicate
        );
    }

    #[test]
    fn an_update_without_uuid_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = StatusUpdateManager::default();
        let mut s = status(TaskState::TaskRunning, 1);
        s.uuid = None;
        let err = m
            .update(&key(), &dir.path().join("u"), None, s)
            .unwrap_err()
            .to_string();
        assert!(err.contains("status.uuid"), "{err}");
    }
}
