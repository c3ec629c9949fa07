//! What the agent remembers of finished executors and frameworks, for
//! `/state` and the operator API's GET_STATE, GET_FRAMEWORKS,
//! GET_EXECUTORS and GET_TASKS (`completed_*`). Bounded as Mesos's agent
//! bounds it (src/slave/constants.hpp: `DEFAULT_MAX_COMPLETED_FRAMEWORKS`,
//! `..._EXECUTORS_PER_FRAMEWORK`, `MAX_COMPLETED_TASKS_PER_EXECUTOR`);
//! the oldest entry goes first. Memory only: like Mesos's, the history of
//! a previous agent run is not recovered.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;

use tepui_proto::v1::{ExecutorInfo, FrameworkInfo, Task};

use super::state::ExecutorKind;

pub const MAX_COMPLETED_FRAMEWORKS: usize = 50;
pub const MAX_COMPLETED_EXECUTORS_PER_FRAMEWORK: usize = 150;
pub const MAX_COMPLETED_TASKS_PER_EXECUTOR: usize = 200;

/// An executor that is gone, with its tasks as they ended.
#[derive(Debug, Clone)]
pub struct CompletedExecutor {
    pub info: ExecutorInfo,
    pub kind: ExecutorKind,
    pub container_id: String,
    pub directory: PathBuf,
    pub tasks: Vec<Task>,
}

/// A framework the agent no longer runs anything for.
#[derive(Debug, Clone)]
pub struct CompletedFramework {
    pub info: FrameworkInfo,
    pub executors: VecDeque<CompletedExecutor>,
}

#[derive(Debug, Default)]
pub struct History {
    /// Completed executors of frameworks the agent still knows.
    pub executors: BTreeMap<String, VecDeque<CompletedExecutor>>,
    pub frameworks: VecDeque<CompletedFramework>,
}

impl History {
    pub fn executor_done(&mut self, framework: &str, mut executor: CompletedExecutor) {
        let excess = executor
            .tasks
            .len()
            .saturating_sub(MAX_COMPLETED_TASKS_PER_EXECUTOR);
        executor.tasks.drain(..excess);
        let list = self.executors.entry(framework.to_string()).or_default();
        list.push_back(executor);
        while list.len() > MAX_COMPLETED_EXECUTORS_PER_FRAMEWORK {
            list.pop_front();
        }
    }

    /// The framework is gone from the agent: it and its completed
    /// executors become history.
    pub fn framework_done(&mut self, info: FrameworkInfo) {
        let id = info
            .id
            .as_ref()
            .map(|i| i.value.clone())
            .unwrap_or_default();
        let executors = self.executors.remove(&id).unwrap_or_default();
        self.frameworks.retain(|f| f.info.id != info.id);
        self.frameworks
            .push_back(CompletedFramework { info, executors });
        while self.frameworks.len() > MAX_COMPLETED_FRAMEWORKS {
            self.frameworks.pop_front();
        }
    }

    /// The completed executors of framework `id`, live or completed.
    pub fn executors_of(&self, id: &str) -> impl Iterator<Item = &CompletedExecutor> {
        self.executors.get(id).into_iter().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn executor(id: &str, tasks: usize) -> CompletedExecutor {
        CompletedExecutor {
            info: ExecutorInfo {
                executor_id: tepui_proto::v1::ExecutorId { value: id.into() },
                ..Default::default()
            },
            kind: ExecutorKind::Command,
            container_id: id.into(),
            directory: PathBuf::from("/x"),
            tasks: (0..tasks).map(|_| Task::default()).collect(),
        }
    }

    fn framework(id: &str) -> FrameworkInfo {
        FrameworkInfo {
            id: Some(tepui_proto::v1::FrameworkId { value: id.into() }),
            ..Default::default()
        }
    }

    #[test]
    fn bounded_as_mesos_bounds_it_oldest_first() {
        let mut h = History::default();
        for i in 0..MAX_COMPLETED_EXECUTORS_PER_FRAMEWORK + 2 {
            h.executor_done("f", executor(&format!("e{i}"), 1));
        }
        let ids: Vec<_> = h
            .executors_of("f")
            .map(|e| e.container_id.clone())
            .collect();
        assert_eq!(ids.len(), MAX_COMPLETED_EXECUTORS_PER_FRAMEWORK);
        assert_eq!(ids[0], "e2");
        h.executor_done("f", executor("big", MAX_COMPLETED_TASKS_PER_EXECUTOR + 5));
        assert_eq!(
            h.executors_of("f").last().map(|e| e.tasks.len()),
            Some(MAX_COMPLETED_TASKS_PER_EXECUTOR)
        );
        h.framework_done(framework("f"));
        assert!(h.executors.is_empty());
        assert_eq!(
            h.frameworks[0].executors.len(),
            MAX_COMPLETED_EXECUTORS_PER_FRAMEWORK
        );
        for i in 0..MAX_COMPLETED_FRAMEWORKS + 3 {
            h.framework_done(framework(&format!("g{i}")));
        }
        assert_eq!(h.frameworks.len(), MAX_COMPLETED_FRAMEWORKS);
        assert_eq!(
            h.frameworks[0].info.id.as_ref().map(|i| i.value.as_str()),
            Some("g3")
        );
    }
}
