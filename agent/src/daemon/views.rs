//! Read-only views of the agent's state for the operator API and `/state`.

use std::collections::BTreeMap;
use std::sync::Arc;

use tepui_proto::v1::agent::{Response, response};
use tepui_proto::v1::{Task, TaskState};

use super::Agent;
use super::state::Queued;
use crate::status_updates::is_terminal;

impl Agent {
    /// GET_STATE: frameworks, executors and tasks (queued, launched,
    /// terminated).
    pub async fn get_state(self: &Arc<Self>) -> Response {
        let agent_id = self.agent_info().id.unwrap_or_default();
        let state = self.state.lock().await;
        let mut frameworks = Vec::new();
        let mut executors = Vec::new();
        let mut tasks = response::GetTasks::default();
        for framework in state.frameworks.values() {
            frameworks.push(response::get_frameworks::Framework {
                framework_info: framework.info.clone(),
            });
            for executor in framework.executors.values() {
                executors.push(response::get_executors::Executor {
                    executor_info: executor.info.clone(),
                });
                let queued: Vec<&str> = executor
                    .queued
                    .iter()
                    .flat_map(|q| match q {
                        Queued::Task(t) => vec![t.task_id.value.as_str()],
                        Queued::Group(g) => {
                            g.tasks.iter().map(|t| t.task_id.value.as_str()).collect()
                        }
                    })
                    .collect();
                for (id, entry) in &executor.tasks {
                    let task = Task {
                        name: entry.info.name.clone(),
                        task_id: entry.info.task_id.clone(),
                        framework_id: framework.info.id.clone().unwrap_or_default(),
                        executor_id: Some(executor.info.executor_id.clone()),
                        agent_id: agent_id.clone(),
                        state: entry.state as i32,
                        resources: entry.info.resources.clone(),
                        statuses: entry.statuses.clone(),
                        limits: entry.info.limits.clone(),
                        labels: entry.info.labels.clone(),
                        container: entry.info.container.clone(),
                        ..Default::default()
                    };
                    if queued.contains(&id.as_str()) {
                        tasks.queued_tasks.push(task);
                    } else if is_terminal(entry.state) {
                        tasks.terminated_tasks.push(task);
                    } else {
                        tasks.launched_tasks.push(task);
                    }
                }
            }
        }
        Response {
            r#type: Some(response::Type::GetState as i32),
            get_state: Some(response::GetState {
                get_tasks: Some(tasks),
                get_executors: Some(response::GetExecutors {
                    executors,
                    completed_executors: Vec::new(),
                }),
                get_frameworks: Some(response::GetFrameworks {
                    frameworks,
                    completed_frameworks: Vec::new(),
                }),
            }),
            ..Default::default()
        }
    }

    /// Top-level container id -> (framework, executor, executor name).
    pub async fn container_owners(
        self: &Arc<Self>,
    ) -> BTreeMap<String, (String, String, Option<String>)> {
        let state = self.state.lock().await;
        state
            .containers
            .iter()
            .map(|(container, (fw, ex))| {
                let name = state.executor(fw, ex).and_then(|e| e.info.name.clone());
                (container.clone(), (fw.clone(), ex.clone(), name))
            })
            .collect()
    }

    /// Counts for metrics: (running tasks, running executors, frameworks).
    pub async fn counts(self: &Arc<Self>) -> (usize, usize, usize) {
        let state = self.state.lock().await;
        let executors: usize = state.frameworks.values().map(|f| f.executors.len()).sum();
        let running = state
            .frameworks
            .values()
            .flat_map(|f| f.executors.values())
            .flat_map(|e| e.tasks.values())
            .filter(|t| t.state == TaskState::TaskRunning)
            .count();
        (running, executors, state.frameworks.len())
    }
}
