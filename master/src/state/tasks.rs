//! Tasks: ACCEPT (launching, reserving), status updates from agents and their
//! acknowledgements, KILL, RECONCILE, executors and framework messages.

use std::collections::HashSet;
use std::time::Instant;

use tepui_proto::link::{MasterEvent, agent_call, master_event};
use tepui_proto::resources::Resources;
use tepui_proto::v1::offer::operation::Type as OpType;
use tepui_proto::v1::scheduler::{Event, event};
use tepui_proto::v1::task_status::{Reason, Source};
use tepui_proto::v1::{
    AgentId, ExecutorId, FrameworkId, Task, TaskId, TaskInfo, TaskState, TaskStatus,
    master as operator, offer::Operation,
};

use super::{Master, now_secs};
use crate::error::ApiError;
use crate::validation::{self, Context};

/// Terminal tasks kept per framework for the state endpoints.
pub(super) const MAX_COMPLETED_TASKS: usize = 1000;

pub fn is_terminal(state: i32) -> bool {
    use TaskState::*;
    [
        TaskFinished,
        TaskFailed,
        TaskKilled,
        TaskError,
        TaskLost,
        TaskDropped,
        TaskGone,
        TaskGoneByOperator,
    ]
    .iter()
    .any(|s| *s as i32 == state)
}

/// A status the master makes up itself (no uuid: nothing to acknowledge).
pub fn master_status(
    task_id: &str,
    agent_id: Option<&str>,
    state: TaskState,
    reason: Reason,
    message: impl Into<String>,
) -> TaskStatus {
    TaskStatus {
        task_id: TaskId {
            value: task_id.to_string(),
        },
        state: state as i32,
        message: Some(message.into()),
        source: Some(Source::Master as i32),
        reason: Some(reason as i32),
        agent_id: agent_id.map(|a| AgentId {
            value: a.to_string(),
        }),
        timestamp: Some(now_secs()),
        ..Default::default()
    }
}

pub fn update_event(status: TaskStatus) -> Event {
    Event {
        r#type: Some(event::Type::Update as i32),
        update: Some(event::Update { status }),
        ..Default::default()
    }
}

impl Master {
    fn known_task(&self, framework_id: &str, task_id: &str) -> bool {
        self.frameworks
            .get(framework_id)
            .is_some_and(|f| f.tasks.contains_key(task_id))
    }

    /// ACCEPT: apply the operations in order to the offered resources, then
    /// return what is left with the call's filter.
    pub fn accept(
        &mut self,
        framework_id: &str,
        accept: tepui_proto::v1::scheduler::call::Accept,
    ) -> Result<(), ApiError> {
        let (agent_id, mut remaining) = match self.take_offers(framework_id, &accept.offer_ids) {
            Ok(taken) => taken,
            Err(err) => {
                // Tasks of an invalid ACCEPT are dropped (lost for old
                // frameworks), as Mesos does, and the call is still 202.
                let partition_aware = self.is_partition_aware(framework_id);
                for op in &accept.operations {
                    for task in operation_tasks(op) {
                        let state = if partition_aware {
                            TaskState::TaskDropped
                        } else {
                            TaskState::TaskLost
                        };
                        self.metrics.tasks_dropped += 1;
                        self.send_framework(
                            framework_id,
                            update_event(master_status(
                                &task.task_id.value,
                                None,
                                state,
                                Reason::InvalidOffers,
                                format!("invalid offers: {}", err.message),
                            )),
                        );
                    }
                }
                return Ok(());
            }
        };
        let role = remaining
            .iter()
            .find_map(|r| r.allocation_info.as_ref().and_then(|a| a.role.clone()));
        if self.agents.get(&agent_id).is_none_or(|a| a.conn.is_none()) {
            // The agent went away after the offer was made: nothing can run.
            let state = if self.is_partition_aware(framework_id) {
                TaskState::TaskDropped
            } else {
                TaskState::TaskLost
            };
            for op in &accept.operations {
                for task in operation_tasks(op) {
                    self.metrics.tasks_dropped += 1;
                    self.send_framework(
                        framework_id,
                        update_event(master_status(
                            &task.task_id.value,
                            Some(&agent_id),
                            state,
                            Reason::AgentDisconnected,
                            "the agent disconnected after the offer was made",
                        )),
                    );
                }
            }
            self.allocator
                .recover(framework_id, &agent_id, &remaining, None, Instant::now());
            return Ok(());
        }
        let mut seen = HashSet::new();
        for op in accept.operations {
            let Some(kind) = op.r#type.and_then(|t| OpType::try_from(t).ok()) else {
                continue;
            };
            match kind {
                OpType::Launch => {
                    for task in op.launch.map(|l| l.task_infos).unwrap_or_default() {
                        self.launch_task(
                            framework_id,
                            &agent_id,
                            task,
                            &mut remaining,
                            role.as_deref(),
                            &mut seen,
                        );
                    }
                }
                OpType::LaunchGroup => {
                    if let Some(group) = op.launch_group {
                        self.launch_group(
                            framework_id,
                            &agent_id,
                            group,
                            &mut remaining,
                            role.as_deref(),
                            &mut seen,
                        );
                    }
                }
                OpType::Reserve
                | OpType::Unreserve
                | OpType::Create
                | OpType::Destroy
                | OpType::GrowVolume
                | OpType::ShrinkVolume => {
                    if let Err(message) =
                        self.apply_operation(framework_id, &agent_id, &op, kind, &mut remaining)
                    {
                        tracing::info!(framework = %framework_id, %message, "operation dropped");
                    }
                }
                _ => {
                    tracing::info!(framework = %framework_id, ?kind, "unsupported operation dropped");
                }
            }
        }
        let filter = super::offers::refuse_duration(accept.filters.as_ref());
        if !remaining.is_empty() {
            self.allocator
                .recover(framework_id, &agent_id, &remaining, filter, Instant::now());
        }
        Ok(())
    }

    fn context_parts(&self, framework_id: &str) -> Vec<String> {
        self.frameworks
            .get(framework_id)
            .map(|f| f.roles.clone())
            .unwrap_or_default()
    }

    pub(crate) fn task_error(
        &mut self,
        framework_id: &str,
        agent_id: &str,
        task_id: &str,
        reason: Reason,
        message: String,
    ) {
        tracing::info!(framework = %framework_id, task = %task_id, %message, "task refused");
        self.metrics.tasks_error += 1;
        self.send_framework(
            framework_id,
            update_event(master_status(
                task_id,
                Some(agent_id),
                TaskState::TaskError,
                reason,
                message,
            )),
        );
    }

    fn launch_task(
        &mut self,
        framework_id: &str,
        agent_id: &str,
        task: TaskInfo,
        remaining: &mut Resources,
        role: Option<&str>,
        seen: &mut HashSet<String>,
    ) {
        let roles = self.context_parts(framework_id);
        let checked = {
            let known = |id: &str| self.known_task(framework_id, id);
            let executors = |id: &str| {
                self.agents.get(agent_id).and_then(|a| {
                    a.executors
                        .get(&(framework_id.to_string(), id.to_string()))
                        .cloned()
                })
            };
            let ctx = Context {
                framework_id,
                roles: &roles,
                agent_id,
                known_tasks: &known,
                executors: &executors,
            };
            validation::validate_task(&task, remaining, role, seen, &ctx)
        };
        let checked = match checked {
            Ok(c) => c,
            Err(message) => {
                self.task_error(
                    framework_id,
                    agent_id,
                    &task.task_id.value,
                    Reason::TaskInvalid,
                    message,
                );
                return;
            }
        };
        *remaining -= &checked.consumed;
        let Some(info) = self.frameworks.get(framework_id).map(|f| f.info.clone()) else {
            return;
        };
        let mut sent_task = task.clone();
        sent_task.resources = checked.task_resources.clone().into_vec();
        let executor = task.executor.clone().map(|mut e| {
            e.framework_id = Some(FrameworkId {
                value: framework_id.to_string(),
            });
            e
        });
        if let Some(e) = &executor {
            sent_task.executor = Some(e.clone());
            if let Some(agent) = self.agents.get_mut(agent_id) {
                agent
                    .executors
                    .entry((framework_id.to_string(), e.executor_id.value.clone()))
                    .or_insert_with(|| e.clone());
            }
        }
        self.add_task(
            framework_id,
            agent_id,
            &sent_task,
            executor.as_ref().map(|e| e.executor_id.clone()),
            &info,
        );
        self.send_agent(
            agent_id,
            MasterEvent {
                r#type: Some(master_event::Type::RunTask as i32),
                run_task: Some(master_event::RunTask {
                    framework: info,
                    task: sent_task,
                    executor,
                    allocation_info: role
                        .map(|r| tepui_proto::v1::resource::AllocationInfo {
                            role: Some(r.to_string()),
                        })
                        .into_iter()
                        .collect(),
                }),
                ..Default::default()
            },
        );
    }

    fn launch_group(
        &mut self,
        framework_id: &str,
        agent_id: &str,
        group: tepui_proto::v1::offer::operation::LaunchGroup,
        remaining: &mut Resources,
        role: Option<&str>,
        seen: &mut HashSet<String>,
    ) {
        let roles = self.context_parts(framework_id);
        let mut executor = group.executor.clone();
        executor.framework_id = Some(FrameworkId {
            value: framework_id.to_string(),
        });
        let result = {
            let known = |id: &str| self.known_task(framework_id, id);
            let executors = |id: &str| {
                self.agents.get(agent_id).and_then(|a| {
                    a.executors
                        .get(&(framework_id.to_string(), id.to_string()))
                        .cloned()
                })
            };
            let ctx = Context {
                framework_id,
                roles: &roles,
                agent_id,
                known_tasks: &known,
                executors: &executors,
            };
            validation::validate_task_group(
                &executor,
                &group.task_group.tasks,
                remaining,
                role,
                seen,
                &ctx,
            )
        };
        let (consumed, per_task) = match result {
            Ok(r) => r,
            Err(message) => {
                for task in &group.task_group.tasks {
                    self.task_error(
                        framework_id,
                        agent_id,
                        &task.task_id.value,
                        Reason::TaskGroupInvalid,
                        message.clone(),
                    );
                }
                return;
            }
        };
        *remaining -= &consumed;
        let Some(info) = self.frameworks.get(framework_id).map(|f| f.info.clone()) else {
            return;
        };
        if let Ok(r) = validation::task_resources(&executor.resources, role) {
            executor.resources = r.into_vec();
        }
        if let Some(agent) = self.agents.get_mut(agent_id) {
            agent
                .executors
                .entry((framework_id.to_string(), executor.executor_id.value.clone()))
                .or_insert_with(|| executor.clone());
        }
        let mut tasks = group.task_group.tasks.clone();
        for (task, resources) in tasks.iter_mut().zip(per_task) {
            task.resources = resources.into_vec();
            self.add_task(
                framework_id,
                agent_id,
                task,
                Some(executor.executor_id.clone()),
                &info,
            );
        }
        self.send_agent(
            agent_id,
            MasterEvent {
                r#type: Some(master_event::Type::RunTaskGroup as i32),
                run_task_group: Some(master_event::RunTaskGroup {
                    framework: info,
                    executor,
                    task_group: tepui_proto::v1::TaskGroupInfo { tasks },
                }),
                ..Default::default()
            },
        );
    }

    fn add_task(
        &mut self,
        framework_id: &str,
        agent_id: &str,
        info: &TaskInfo,
        executor_id: Option<ExecutorId>,
        framework: &tepui_proto::v1::FrameworkInfo,
    ) {
        let task = Task {
            name: info.name.clone(),
            task_id: info.task_id.clone(),
            framework_id: FrameworkId {
                value: framework_id.to_string(),
            },
            executor_id,
            agent_id: AgentId {
                value: agent_id.to_string(),
            },
            state: TaskState::TaskStaging as i32,
            resources: info.resources.clone(),
            statuses: Vec::new(),
            status_update_state: None,
            status_update_uuid: None,
            labels: info.labels.clone(),
            discovery: info.discovery.clone(),
            container: info.container.clone(),
            health_check: info.health_check.clone(),
            kill_policy: info.kill_policy,
            user: Some(framework.user.clone()),
            limits: info.limits.clone(),
        };
        self.metrics.tasks_launched += 1;
        if let Some(fw) = self.frameworks.get_mut(framework_id) {
            fw.tasks
                .insert(info.task_id.value.clone(), agent_id.to_string());
        }
        if let Some(agent) = self.agents.get_mut(agent_id) {
            agent.tasks.insert(
                (framework_id.to_string(), info.task_id.value.clone()),
                task.clone(),
            );
        }
        self.publish(operator::Event {
            r#type: Some(operator::event::Type::TaskAdded as i32),
            task_added: Some(operator::event::TaskAdded { task }),
            ..Default::default()
        });
    }

    /// RESERVE, UNRESERVE, CREATE, DESTROY, GROW_VOLUME, SHRINK_VOLUME on
    /// offered resources.
    fn apply_operation(
        &mut self,
        framework_id: &str,
        agent_id: &str,
        op: &Operation,
        kind: OpType,
        remaining: &mut Resources,
    ) -> Result<(), String> {
        let roles = self.context_parts(framework_id);
        let principal = self
            .frameworks
            .get(framework_id)
            .and_then(|f| f.info.principal.clone());
        let (from, to) = crate::operations::convert(op, kind, &roles, principal.as_deref())?;
        if !remaining.contains(&from) {
            return Err(format!(
                "operation needs {} but the offers have {}",
                validation::display(&from),
                validation::display(remaining)
            ));
        }
        *remaining -= &from;
        *remaining += to.clone();
        self.allocator
            .convert_allocated(framework_id, agent_id, &from, &to);
        if let Some(agent) = self.agents.get_mut(agent_id) {
            let mut f = from.clone();
            f.unallocate();
            let mut t = to.clone();
            t.unallocate();
            agent.total -= f;
            agent.total += t;
        }
        self.send_agent(
            agent_id,
            MasterEvent {
                r#type: Some(master_event::Type::ApplyOperation as i32),
                apply_operation: Some(master_event::ApplyOperation {
                    framework_id: FrameworkId {
                        value: framework_id.to_string(),
                    },
                    operation: op.clone(),
                    operation_id: op.id.clone(),
                }),
                ..Default::default()
            },
        );
        Ok(())
    }

    /// A status update from an agent: record it and forward it.
    pub fn status_update(&mut self, agent_id: &str, update: agent_call::StatusUpdate) {
        let framework_id = update.framework_id.value.clone();
        let mut status = update.status;
        status.agent_id.get_or_insert(AgentId {
            value: agent_id.to_string(),
        });
        let task_id = status.task_id.value.clone();
        let latest = update.latest_state.unwrap_or(status.state);
        let key = (framework_id.clone(), task_id.clone());
        let mut released: Option<Resources> = None;
        if let Some(agent) = self.agents.get_mut(agent_id)
            && let Some(task) = agent.tasks.get_mut(&key)
        {
            let was_terminal = is_terminal(task.state);
            task.state = latest;
            task.status_update_state = Some(status.state);
            task.status_update_uuid = status.uuid.clone();
            task.statuses.push(status.clone());
            if task.statuses.len() > 8 {
                task.statuses.remove(0);
            }
            if is_terminal(latest) && !was_terminal {
                released = Some(Resources::from(task.resources.clone()));
            }
        }
        if let Some(resources) = released {
            self.count_terminal(latest);
            let draining = self
                .agents
                .get(agent_id)
                .is_some_and(|a| a.gone_when_drained);
            if draining {
                // After this update reaches the framework (below).
                self.pending_drain_checks.push(agent_id.to_string());
            }
            self.allocator
                .recover(&framework_id, agent_id, &resources, None, Instant::now());
        }
        self.publish(operator::Event {
            r#type: Some(operator::event::Type::TaskUpdated as i32),
            task_updated: Some(operator::event::TaskUpdated {
                framework_id: FrameworkId {
                    value: framework_id.clone(),
                },
                status: status.clone(),
                state: latest,
            }),
            ..Default::default()
        });
        // Updates without a uuid need no acknowledgement; a terminal one
        // lets the master forget the task right away.
        if status.uuid.is_none() && is_terminal(latest) {
            self.forget_task(&framework_id, agent_id, &task_id);
        }
        self.send_framework(&framework_id, update_event(status));
        for agent in std::mem::take(&mut self.pending_drain_checks) {
            self.check_drained(&agent);
        }
    }

    fn count_terminal(&mut self, state: i32) {
        let m = &mut self.metrics;
        match TaskState::try_from(state) {
            Ok(TaskState::TaskFinished) => m.tasks_finished += 1,
            Ok(TaskState::TaskFailed) => m.tasks_failed += 1,
            Ok(TaskState::TaskKilled) => m.tasks_killed += 1,
            Ok(TaskState::TaskLost) => m.tasks_lost += 1,
            _ => {}
        }
    }

    /// Moves a terminal task to the framework's completed tasks.
    fn forget_task(&mut self, framework_id: &str, agent_id: &str, task_id: &str) {
        let key = (framework_id.to_string(), task_id.to_string());
        let task = self
            .agents
            .get_mut(agent_id)
            .and_then(|a| a.tasks.remove(&key));
        if let Some(fw) = self.frameworks.get_mut(framework_id) {
            fw.tasks.remove(task_id);
            if let Some(task) = task {
                fw.completed_tasks.push_back(task);
                while fw.completed_tasks.len() > MAX_COMPLETED_TASKS {
                    fw.completed_tasks.pop_front();
                }
            }
        }
    }

    /// ACKNOWLEDGE from a scheduler: forwarded to the agent.
    pub fn acknowledge(
        &mut self,
        framework_id: &str,
        ack: tepui_proto::v1::scheduler::call::Acknowledge,
    ) -> Result<(), ApiError> {
        if uuid::Uuid::from_slice(&ack.uuid).is_err() {
            return Err(ApiError::bad_request(
                "'uuid' is not a valid UUID (16 bytes)",
            ));
        }
        let agent_id = ack.agent_id.value.clone();
        let task_id = ack.task_id.value.clone();
        let key = (framework_id.to_string(), task_id.clone());
        let forget = self
            .agents
            .get(&agent_id)
            .and_then(|a| a.tasks.get(&key))
            .is_some_and(|t| {
                is_terminal(t.state) && t.status_update_uuid.as_deref() == Some(&ack.uuid[..])
            });
        self.send_agent(
            &agent_id,
            MasterEvent {
                r#type: Some(master_event::Type::Acknowledge as i32),
                acknowledge: Some(master_event::Acknowledge {
                    framework_id: FrameworkId {
                        value: framework_id.to_string(),
                    },
                    task_id: ack.task_id,
                    uuid: ack.uuid,
                }),
                ..Default::default()
            },
        );
        if forget {
            self.forget_task(framework_id, &agent_id, &task_id);
        }
        Ok(())
    }

    /// KILL: forwarded to the task's agent; an unknown task is answered with
    /// a status so the scheduler stops waiting.
    pub fn kill(&mut self, framework_id: &str, kill: tepui_proto::v1::scheduler::call::Kill) {
        let task_id = kill.task_id.value.clone();
        let agent = self
            .frameworks
            .get(framework_id)
            .and_then(|f| f.tasks.get(&task_id).cloned());
        match agent {
            Some(agent_id) if self.agents.get(&agent_id).is_some_and(|a| a.conn.is_some()) => {
                self.send_agent(
                    &agent_id,
                    MasterEvent {
                        r#type: Some(master_event::Type::KillTask as i32),
                        kill_task: Some(master_event::KillTask {
                            framework_id: FrameworkId {
                                value: framework_id.to_string(),
                            },
                            task_id: kill.task_id,
                            kill_policy: kill.kill_policy,
                        }),
                        ..Default::default()
                    },
                );
            }
            Some(_) => {}
            None => {
                let state = if self.is_partition_aware(framework_id) {
                    TaskState::TaskUnknown
                } else {
                    TaskState::TaskLost
                };
                self.send_framework(
                    framework_id,
                    update_event(master_status(
                        &task_id,
                        kill.agent_id.as_ref().map(|a| a.value.as_str()),
                        state,
                        Reason::Reconciliation,
                        "task is unknown to the master",
                    )),
                );
            }
        }
    }

    /// RECONCILE: the latest state of the named tasks, or of all the
    /// framework's tasks when none are named. Answers carry no uuid.
    pub fn reconcile(
        &mut self,
        framework_id: &str,
        tasks: Vec<tepui_proto::v1::scheduler::call::reconcile::Task>,
    ) {
        let mut answers = Vec::new();
        let partition_aware = self.is_partition_aware(framework_id);
        let current = |task: &Task| {
            let mut s = master_status(
                &task.task_id.value,
                Some(&task.agent_id.value),
                TaskState::try_from(task.state).unwrap_or(TaskState::TaskStaging),
                Reason::Reconciliation,
                "reconciliation",
            );
            if let Some(last) = task.statuses.last() {
                s.executor_id = last.executor_id.clone();
                s.healthy = last.healthy;
                s.labels = last.labels.clone();
                s.container_status = last.container_status.clone();
            }
            s
        };
        if tasks.is_empty() {
            for agent in self.agents.values() {
                for ((f, _), task) in &agent.tasks {
                    if f == framework_id {
                        answers.push(current(task));
                    }
                }
            }
        } else {
            for t in tasks {
                let id = t.task_id.value.clone();
                let agent = self
                    .frameworks
                    .get(framework_id)
                    .and_then(|f| f.tasks.get(&id).cloned());
                let found = agent.and_then(|a| {
                    self.agents
                        .get(&a)
                        .and_then(|ag| ag.tasks.get(&(framework_id.to_string(), id.clone())))
                });
                match found {
                    Some(task) => answers.push(current(task)),
                    None => {
                        let agent_id = t.agent_id.as_ref().map(|a| a.value.clone());
                        let unreachable = agent_id.as_ref().is_some_and(|a| {
                            self.registry.state.unreachable.contains_key(a)
                                || self.recovering_agents.contains_key(a)
                        });
                        let gone = agent_id
                            .as_ref()
                            .is_some_and(|a| self.registry.state.gone.contains_key(a));
                        let state = match (partition_aware, gone, unreachable) {
                            (false, _, _) => TaskState::TaskLost,
                            (true, true, _) => TaskState::TaskGone,
                            (true, false, true) => TaskState::TaskUnreachable,
                            (true, false, false) => TaskState::TaskUnknown,
                        };
                        answers.push(master_status(
                            &id,
                            agent_id.as_deref(),
                            state,
                            Reason::Reconciliation,
                            "reconciliation: task is unknown to the master",
                        ));
                    }
                }
            }
        }
        // In the backlog, not the capped queue: a framework with more tasks
        // than the queue holds must get every answer if it keeps reading.
        // The limit bounds what a framework that never reads can pile up by
        // reconciling again and again: answers for its own tasks replace
        // each other, so only explicit asks for unknown ids grow it.
        let Some(conn) = self
            .frameworks
            .get(framework_id)
            .and_then(|f| f.conn.as_ref())
        else {
            return;
        };
        let known = self
            .frameworks
            .get(framework_id)
            .map_or(0, |f| f.tasks.len());
        let limit = self.config.subscriber_queue + known;
        for status in answers {
            let key = status.task_id.value.clone();
            if conn
                .tx
                .send_backlog(key, update_event(status), limit)
                .is_err()
            {
                break;
            }
        }
    }

    /// MESSAGE from a scheduler to one of its executors.
    pub fn message_to_executor(
        &mut self,
        framework_id: &str,
        m: tepui_proto::v1::scheduler::call::Message,
    ) {
        self.send_agent(
            &m.agent_id.value,
            MasterEvent {
                r#type: Some(master_event::Type::FrameworkMessage as i32),
                framework_message: Some(master_event::FrameworkMessage {
                    framework_id: FrameworkId {
                        value: framework_id.to_string(),
                    },
                    executor_id: m.executor_id,
                    data: m.data,
                }),
                ..Default::default()
            },
        );
    }

    /// FRAMEWORK_MESSAGE from an executor, relayed as a MESSAGE event.
    pub fn message_from_executor(&mut self, agent_id: &str, m: agent_call::FrameworkMessage) {
        self.send_framework(
            &m.framework_id.value,
            Event {
                r#type: Some(event::Type::Message as i32),
                message: Some(event::Message {
                    agent_id: AgentId {
                        value: agent_id.to_string(),
                    },
                    executor_id: m.executor_id,
                    data: m.data,
                }),
                ..Default::default()
            },
        );
    }

    /// An executor ended: its resources return, and its tasks that are
    /// still live are lost with it.
    pub fn executor_exited(&mut self, agent_id: &str, e: agent_call::ExecutorExited) {
        let key = (e.framework_id.value.clone(), e.executor_id.value.clone());
        let Some(executor) = self
            .agents
            .get_mut(agent_id)
            .and_then(|a| a.executors.remove(&key))
        else {
            return;
        };
        let resources = Resources::from(executor.resources.clone());
        self.allocator.recover(
            &e.framework_id.value,
            agent_id,
            &resources,
            None,
            Instant::now(),
        );
        self.send_framework(
            &e.framework_id.value,
            Event {
                r#type: Some(event::Type::Failure as i32),
                failure: Some(event::Failure {
                    agent_id: Some(AgentId {
                        value: agent_id.to_string(),
                    }),
                    executor_id: Some(e.executor_id.clone()),
                    status: e.status,
                }),
                ..Default::default()
            },
        );
    }
}

fn operation_tasks(op: &Operation) -> Vec<&TaskInfo> {
    let mut out: Vec<&TaskInfo> = Vec::new();
    if let Some(l) = &op.launch {
        out.extend(l.task_infos.iter());
    }
    if let Some(g) = &op.launch_group {
        out.extend(g.task_group.tasks.iter());
    }
    out
}

impl Master {
    /// SHUTDOWN of an executor. The link has no executor shutdown, so its
    /// tasks are killed; the agent's executor exits when it has none left.
    pub fn shutdown_executor(
        &mut self,
        framework_id: &str,
        shutdown: tepui_proto::v1::scheduler::call::Shutdown,
    ) {
        let agent_id = shutdown.agent_id.value.clone();
        let tasks: Vec<String> = self
            .agents
            .get(&agent_id)
            .map(|a| {
                a.tasks
                    .iter()
                    .filter(|((f, _), t)| {
                        f == framework_id
                            && !is_terminal(t.state)
                            && t.executor_id.as_ref() == Some(&shutdown.executor_id)
                    })
                    .map(|((_, id), _)| id.clone())
                    .collect()
            })
            .unwrap_or_default();
        for task_id in tasks {
            self.send_agent(
                &agent_id,
                MasterEvent {
                    r#type: Some(master_event::Type::KillTask as i32),
                    kill_task: Some(master_event::KillTask {
                        framework_id: FrameworkId {
                            value: framework_id.to_string(),
                        },
                        task_id: TaskId { value: task_id },
                        kill_policy: None,
                    }),
                    ..Default::default()
                },
            );
        }
    }

    /// UPDATE_STATE from an agent: new totals (e.g. after an operation).
    pub fn agent_update_state(
        &mut self,
        agent_id: &str,
        update: agent_call::UpdateState,
    ) -> Result<(), ApiError> {
        if update.total_resources.is_empty() {
            return Ok(());
        }
        let total = Resources::try_from_resources(update.total_resources)
            .map_err(|e| ApiError::bad_request(format!("invalid total resources: {e}")))?;
        self.rescind_agent_offers(agent_id);
        self.allocator.update_agent_total(agent_id, total.clone());
        if let Some(a) = self.agents.get_mut(agent_id) {
            a.total = total;
        }
        Ok(())
    }
}
