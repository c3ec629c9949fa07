//! Read-only views of the agent's state for the operator API and `/state`.

use std::collections::BTreeMap;
use std::sync::Arc;

use tepui_proto::v1::agent::{Response, response};
use tepui_proto::v1::{AgentId, ExecutorInfo, FrameworkInfo, Task, TaskState};

use super::Agent;
use super::history::CompletedExecutor;
use super::state::{Executor, ExecutorKind, Queued, TaskEntry};
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
                    let task = model_task(&agent_id, &framework.info, &executor.info, entry);
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
        // History (src/slave/http.cpp, `Http::_getState` and friends):
        // completed executors' tasks are `completed_tasks`; a framework
        // with no executor left is a completed one, as Mesos's agent
        // removes it (`Slave::removeFramework`).
        let mut completed_executors = Vec::new();
        let mut completed_frameworks = Vec::new();
        let history = &state.history;
        let done = history.frameworks.iter().flat_map(|f| f.executors.iter());
        let live = state.frameworks.values().flat_map(|f| {
            let id = f.info.id.as_ref().map(|i| i.value.as_str()).unwrap_or("");
            history.executors_of(id)
        });
        for executor in done.chain(live) {
            {
                completed_executors.push(response::get_executors::Executor {
                    executor_info: executor.info.clone(),
                });
                tasks.completed_tasks.extend(executor.tasks.iter().cloned());
            }
        }
        for f in &history.frameworks {
            completed_frameworks.push(response::get_frameworks::Framework {
                framework_info: f.info.clone(),
            });
        }
        let (idle, busy): (Vec<_>, Vec<_>) =
            frameworks
                .into_iter()
                .partition(|f: &response::get_frameworks::Framework| {
                    let id = f
                        .framework_info
                        .id
                        .as_ref()
                        .map(|i| i.value.as_str())
                        .unwrap_or("");
                    state
                        .frameworks
                        .get(id)
                        .is_some_and(|f| f.executors.is_empty())
                });
        completed_frameworks.extend(idle);
        Response {
            r#type: Some(response::Type::GetState as i32),
            get_state: Some(response::GetState {
                get_tasks: Some(tasks),
                get_executors: Some(response::GetExecutors {
                    executors,
                    completed_executors,
                }),
                get_frameworks: Some(response::GetFrameworks {
                    frameworks: busy,
                    completed_frameworks,
                }),
            }),
            ..Default::default()
        }
    }

    /// Where each executor, live or completed, ran and how, keyed by
    /// (framework, executor): what `/state` writes beside the v1 model
    /// (src/slave/http.cpp, `ExecutorWriter`). A live executor's
    /// `resources` are its own plus its live tasks' (`allocatedResources`).
    pub async fn executor_details(self: &Arc<Self>) -> BTreeMap<(String, String), ExecutorDetails> {
        let state = self.state.lock().await;
        let mut out = BTreeMap::new();
        let key = |info: &ExecutorInfo| {
            (
                info.framework_id
                    .as_ref()
                    .map(|f| f.value.clone())
                    .unwrap_or_default(),
                info.executor_id.value.clone(),
            )
        };
        let history = &state.history;
        let gone = history
            .frameworks
            .iter()
            .flat_map(|f| f.executors.iter())
            .chain(history.executors.values().flatten());
        for e in gone {
            out.insert(
                key(&e.info),
                ExecutorDetails {
                    kind: e.kind,
                    container_id: e.container_id.clone(),
                    directory: e.directory.clone(),
                    allocated: e.info.resources.clone(),
                },
            );
        }
        for f in state.frameworks.values() {
            for e in f.executors.values() {
                let mut allocated = e.info.resources.clone();
                for t in e.tasks.values().filter(|t| !is_terminal(t.state)) {
                    allocated.extend(t.info.resources.iter().cloned());
                }
                out.insert(
                    key(&e.info),
                    ExecutorDetails {
                        kind: e.kind,
                        container_id: e.container_id.clone(),
                        directory: e.directory.clone(),
                        allocated,
                    },
                );
            }
        }
        out
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

    /// Live counts for Mesos's agent gauges (docs/monitoring.md):
    /// tasks by state, executors by phase, active frameworks.
    pub async fn gauges(self: &Arc<Self>) -> Gauges {
        let state = self.state.lock().await;
        let mut g = Gauges::default();
        for f in state.frameworks.values() {
            if !f.executors.is_empty() {
                g.frameworks += 1;
            }
            for e in f.executors.values() {
                *g.executors.entry(e.phase as u8).or_default() += 1;
                g.allocated.extend(e.info.resources.iter().cloned());
                for t in e.tasks.values() {
                    *g.tasks.entry(t.state as i32).or_default() += 1;
                    if !is_terminal(t.state) {
                        g.allocated.extend(t.info.resources.iter().cloned());
                    }
                }
            }
        }
        g
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

/// See [`Agent::gauges`].
#[derive(Debug, Default)]
pub struct Gauges {
    /// By `TaskState` value.
    pub tasks: BTreeMap<i32, usize>,
    /// By `Phase as u8`.
    pub executors: BTreeMap<u8, usize>,
    pub frameworks: usize,
    /// What live executors and their live tasks hold.
    pub allocated: Vec<tepui_proto::v1::Resource>,
}

impl Gauges {
    pub fn tasks_in(&self, state: TaskState) -> f64 {
        self.tasks.get(&(state as i32)).copied().unwrap_or(0) as f64
    }

    pub fn executors_in(&self, phase: super::state::Phase) -> f64 {
        self.executors.get(&(phase as u8)).copied().unwrap_or(0) as f64
    }
}

/// See [`Agent::executor_details`].
#[derive(Debug, Clone)]
pub struct ExecutorDetails {
    pub kind: ExecutorKind,
    pub container_id: String,
    pub directory: std::path::PathBuf,
    pub allocated: Vec<tepui_proto::v1::Resource>,
}

/// A task as Mesos's agent models it (`protobuf::createTask` plus the
/// statuses it kept), for GET_TASKS and `/state`.
pub(super) fn model_task(
    agent_id: &AgentId,
    framework: &FrameworkInfo,
    executor: &ExecutorInfo,
    entry: &TaskEntry,
) -> Task {
    Task {
        name: entry.info.name.clone(),
        task_id: entry.info.task_id.clone(),
        framework_id: framework.id.clone().unwrap_or_default(),
        executor_id: Some(executor.executor_id.clone()),
        agent_id: agent_id.clone(),
        state: entry.state as i32,
        resources: entry.info.resources.clone(),
        statuses: entry.statuses.clone(),
        status_update_state: entry.statuses.last().map(|s| s.state),
        status_update_uuid: entry.statuses.last().and_then(|s| s.uuid.clone()),
        limits: entry.info.limits.clone(),
        labels: entry.info.labels.clone(),
        discovery: entry.info.discovery.clone(),
        container: entry.info.container.clone(),
        health_check: entry.info.health_check.clone(),
        kill_policy: entry.info.kill_policy,
        user: entry.info.command.as_ref().and_then(|c| c.user.clone()),
    }
}

/// An executor leaving the agent, as its history keeps it.
pub(super) fn completed_executor(
    agent_id: &AgentId,
    framework: &FrameworkInfo,
    executor: Executor,
) -> CompletedExecutor {
    let tasks = executor
        .tasks
        .values()
        .map(|entry| model_task(agent_id, framework, &executor.info, entry))
        .collect();
    CompletedExecutor {
        info: executor.info,
        kind: executor.kind,
        container_id: executor.container_id,
        directory: executor.directory,
        tasks,
    }
}

/// A CNI attachment as Mesos's `NetworkInfo` (`NetworkCniIsolatorProcess::
/// status` in isolators/network/cni/cni.cpp).
pub(crate) fn cni_network_info(
    network: &tepui_containerizer::cni::Attached,
) -> tepui_proto::v1::NetworkInfo {
    use tepui_proto::v1::{Label, Labels, NetworkInfo, network_info};
    NetworkInfo {
        name: Some(network.name.clone()),
        ip_addresses: network
            .addresses
            .iter()
            .map(|a| network_info::IpAddress {
                protocol: Some(if a.ip.is_ipv4() {
                    network_info::Protocol::IPv4 as i32
                } else {
                    network_info::Protocol::IPv6 as i32
                }),
                ip_address: Some(a.ip.to_string()),
            })
            .collect(),
        labels: (!network.labels.is_empty()).then(|| Labels {
            labels: network
                .labels
                .iter()
                .map(|(k, v)| Label {
                    key: k.clone(),
                    value: Some(v.clone()),
                })
                .collect(),
        }),
        port_mappings: network
            .port_mappings
            .iter()
            .map(|p| network_info::PortMapping {
                host_port: p.host_port,
                container_port: p.container_port,
                protocol: p.protocol.clone(),
            })
            .collect(),
        ..Default::default()
    }
}
