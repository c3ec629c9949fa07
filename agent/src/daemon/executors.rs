//! The agent's half of the executor API: SUBSCRIBE hands the executor its
//! queued work, UPDATE goes through the status update manager (checkpointed
//! before the executor gets ACKNOWLEDGED), MESSAGE goes to the scheduler.

use std::sync::Arc;
use std::time::Duration;

use tepui_containerizer::ContainerPath;
use tepui_proto::v1::task_status::Source;
use tepui_proto::v1::{
    AgentId, ContainerId, NetworkInfo, TaskId, TaskState, TaskStatus, executor, network_info,
};
use tokio::sync::mpsc;

use super::Agent;
use super::state::{Phase, Queued};
use super::tasks::queued_event;
use crate::status_updates::{Accepted, TaskKey, is_terminal};

/// Why an executor call is refused; `status` is the HTTP status.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ExecutorApiError {
    pub status: u16,
    pub message: String,
}

fn bad(message: impl Into<String>) -> ExecutorApiError {
    ExecutorApiError {
        status: 400,
        message: message.into(),
    }
}

impl Agent {
    /// SUBSCRIBE: the returned channel carries SUBSCRIBED, the queued
    /// LAUNCH/LAUNCH_GROUP events, and everything after.
    pub async fn executor_subscribe(
        self: &Arc<Self>,
        call: &executor::Call,
    ) -> Result<(u64, mpsc::UnboundedReceiver<executor::Event>), ExecutorApiError> {
        let fw = call.framework_id.value.clone();
        let ex = call.executor_id.value.clone();
        let agent_info = self.agent_info();
        let mut state = self.state.lock().await;
        state.next_generation += 1;
        let generation = state.next_generation;
        let framework_info = state
            .frameworks
            .get(&fw)
            .map(|f| f.info.clone())
            .ok_or_else(|| bad(format!("framework '{fw}' is not known on this agent")))?;
        let executor = state.executor_mut(&fw, &ex).ok_or_else(|| {
            bad(format!(
                "executor '{ex}' of framework '{fw}' is not known on this agent"
            ))
        })?;
        if executor.phase == Phase::Terminating {
            return Err(bad(format!("executor '{ex}' is being shut down")));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let subscribed = executor::Event {
            r#type: Some(executor::event::Type::Subscribed as i32),
            subscribed: Some(executor::event::Subscribed {
                executor_info: executor.info.clone(),
                framework_info,
                agent_info,
                container_id: Some(ContainerId {
                    value: executor.container_id.clone(),
                    parent: None,
                }),
            }),
            ..Default::default()
        };
        let _ = tx.send(subscribed);
        // After an agent restart the executor says which tasks it already
        // has; only the others are (re)sent.
        let known: std::collections::HashSet<&str> = call
            .subscribe
            .as_ref()
            .map(|s| {
                s.unacknowledged_tasks
                    .iter()
                    .map(|t| t.task_id.value.as_str())
                    .collect()
            })
            .unwrap_or_default();
        for mut work in executor.queued.drain(..) {
            match &mut work {
                Queued::Task(t) if known.contains(t.task_id.value.as_str()) => continue,
                Queued::Group(g) => {
                    g.tasks
                        .retain(|t| !known.contains(t.task_id.value.as_str()));
                    if g.tasks.is_empty() {
                        continue;
                    }
                }
                _ => {}
            }
            let _ = tx.send(queued_event(&work));
        }
        // Kills that arrived while it was away.
        for task in &executor.killing {
            let _ = tx.send(executor::Event {
                r#type: Some(executor::event::Type::Kill as i32),
                kill: Some(executor::event::Kill {
                    task_id: TaskId {
                        value: task.clone(),
                    },
                    kill_policy: None,
                }),
                ..Default::default()
            });
        }
        executor.phase = Phase::Running;
        executor.subscriber = Some((generation, tx));
        tracing::info!(framework = %fw, executor = %ex, "executor subscribed");
        drop(state);

        // What the executor sent but never saw acknowledged (it lost the
        // agent in between) is offered again; duplicates are dropped.
        if let Some(subscribe) = &call.subscribe {
            for update in &subscribe.unacknowledged_updates {
                let resend = executor::Call {
                    executor_id: call.executor_id.clone(),
                    framework_id: call.framework_id.clone(),
                    r#type: Some(executor::call::Type::Update as i32),
                    update: Some(update.clone()),
                    ..Default::default()
                };
                if let Err(e) = self.executor_update(&resend).await {
                    tracing::warn!("unacknowledged update from {ex} refused: {e}");
                }
            }
        }
        Ok((generation, rx))
    }

    /// The executor's connection closed.
    pub async fn executor_disconnected(self: &Arc<Self>, fw: &str, ex: &str, generation: u64) {
        let mut state = self.state.lock().await;
        let Some(executor) = state.executor_mut(fw, ex) else {
            return;
        };
        if executor
            .subscriber
            .as_ref()
            .is_some_and(|(g, _)| *g == generation)
        {
            executor.subscriber = None;
            if executor.phase == Phase::Running {
                executor.phase = Phase::Registering;
            }
            tracing::info!(framework = %fw, executor = %ex, "executor disconnected");
        }
    }

    /// UPDATE.
    pub async fn executor_update(
        self: &Arc<Self>,
        call: &executor::Call,
    ) -> Result<(), ExecutorApiError> {
        let update = call
            .update
            .as_ref()
            .ok_or_else(|| bad("an UPDATE call needs 'update'"))?;
        let mut status = update.status.clone();
        let fw = call.framework_id.value.clone();
        let ex = call.executor_id.value.clone();
        let task = status.task_id.value.clone();
        let uuid = status
            .uuid
            .clone()
            .filter(|u| !u.is_empty())
            .ok_or_else(|| bad("'update.status.uuid' must be set"))?;
        if status.state == TaskState::TaskStaging as i32 {
            return Err(bad("an executor cannot send TASK_STAGING"));
        }
        status.source = Some(Source::Executor as i32);
        status.executor_id = Some(call.executor_id.clone());
        status.agent_id = self.agent_info().id.or(Some(AgentId {
            value: self.agent_id(),
        }));
        if status.timestamp.is_none() {
            status.timestamp = Some(super::tasks::now_secs());
        }
        let executor_container = {
            let state = self.state.lock().await;
            state.executor(&fw, &ex).map(|e| e.container_id.clone())
        };
        if let Some(container) = executor_container {
            self.fill_container_status(&mut status, &container).await;
        }
        let mut state = self.state.lock().await;
        let executor = state.executor(&fw, &ex).ok_or_else(|| {
            bad(format!(
                "executor '{ex}' of framework '{fw}' is not known on this agent"
            ))
        })?;
        if !executor.tasks.contains_key(&task) {
            return Err(bad(format!(
                "task '{task}' does not belong to executor '{ex}'"
            )));
        }
        let container = executor.container_id.clone();
        // The agent killed the pod for a limitation: what the executor
        // saw of it (a task killed by a signal) is that limitation.
        let terminal = matches!(
            TaskState::try_from(status.state),
            Ok(TaskState::TaskFailed | TaskState::TaskKilled | TaskState::TaskFinished)
        );
        if terminal && let Some((reason, message)) = state.limitations.get(&container) {
            status.state = TaskState::TaskFailed as i32;
            status.reason = Some(*reason as i32);
            status.message = Some(message.clone());
        }
        let log = self.work.task_updates(&fw, &ex, &container, &task);
        let key = TaskKey {
            framework: fw.clone(),
            task: task.clone(),
        };
        let new_state = TaskState::try_from(status.state).unwrap_or(TaskState::TaskLost);
        let kept = status.clone();
        let accepted = state
            .updates
            .update(&key, &log, Some(&call.executor_id), status)
            .map_err(|e| ExecutorApiError {
                status: 500,
                message: e.to_string(),
            })?;
        let mut ended = false;
        if let Accepted::New { .. } = accepted {
            if let Some(entry) = state
                .executor_mut(&fw, &ex)
                .and_then(|e| e.tasks.get_mut(&task))
            {
                let before = entry.state;
                entry.record(&kept);
                // `record` has moved `entry.state` already: compare with
                // the state before this update.
                ended = is_terminal(new_state) && !is_terminal(before);
                entry.state = new_state;
                self.metrics.task_moved(before, new_state);
            }
            self.metrics
                .valid_status_updates
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.updates_ready.notify_one();
        }
        // Checkpointed: the executor may forget it.
        if let Some(executor) = state.executor(&fw, &ex) {
            executor.send(executor::Event {
                r#type: Some(executor::event::Type::Acknowledged as i32),
                acknowledged: Some(executor::event::Acknowledged {
                    task_id: TaskId { value: task },
                    uuid,
                }),
                ..Default::default()
            });
        }
        drop(state);
        if ended {
            // The ended task's share of the pod is given back.
            self.size_executor_pod(&fw, &ex).await;
        }
        Ok(())
    }

    /// What Mesos's `Slave::statusUpdate` / `_statusUpdate` add to an
    /// executor's update (src/slave/slave.cpp): the status of the container
    /// the executor named (a nested one for a task-group task) or else of
    /// the executor's own container: its id, its init pid, and the agent's
    /// IP as its network when it has none of its own.
    async fn fill_container_status(&self, status: &mut TaskStatus, executor_container: &str) {
        let named = status
            .container_status
            .as_ref()
            .and_then(|c| c.container_id.as_ref())
            .and_then(|id| ContainerPath::from_container_id(id).ok())
            .filter(|path| path.pod() == executor_container);
        let path = match named {
            Some(path) => path,
            None => match ContainerPath::new(vec![executor_container.to_string()]) {
                Ok(path) => path,
                Err(_) => return,
            },
        };
        let pid = self.containerizer.pid(&path).await;
        let cs = status.container_status.get_or_insert_with(Default::default);
        cs.container_id = Some(path.to_container_id());
        if cs.executor_pid.is_none() {
            cs.executor_pid = pid.and_then(|p| u32::try_from(p).ok());
        }
        let networks = self.containerizer.pod_networks(executor_container);
        if !networks.is_empty() {
            // The pod's own addresses, as Mesos's CNI isolator reports them
            // (`NetworkCniIsolatorProcess::status`): one NetworkInfo per
            // network, its name, addresses, labels and port mappings.
            cs.network_infos = networks
                .iter()
                .map(super::views::cni_network_info)
                .collect();
        } else if cs.network_infos.is_empty() {
            cs.network_infos.push(NetworkInfo {
                ip_addresses: vec![network_info::IpAddress {
                    ip_address: Some(self.advertised_ip().to_string()),
                    ..Default::default()
                }],
                ..Default::default()
            });
        }
    }

    /// MESSAGE: to the scheduler, through the master.
    pub async fn executor_message(
        self: &Arc<Self>,
        call: &executor::Call,
    ) -> Result<(), ExecutorApiError> {
        let message = call
            .message
            .as_ref()
            .ok_or_else(|| bad("a MESSAGE call needs 'message'"))?;
        let Some(link) = &self.link else {
            return Ok(());
        };
        let out = tepui_proto::link::AgentCall {
            protocol_version: Some(crate::link::LINK_PROTOCOL_VERSION),
            r#type: Some(tepui_proto::link::agent_call::Type::FrameworkMessage as i32),
            agent_id: self.agent_info().id,
            framework_message: Some(tepui_proto::link::agent_call::FrameworkMessage {
                framework_id: call.framework_id.clone(),
                executor_id: call.executor_id.clone(),
                data: message.data.clone(),
            }),
            ..Default::default()
        };
        link.send(out).await.map_err(|e| ExecutorApiError {
            status: 503,
            message: e.to_string(),
        })
    }

    /// A FRAMEWORK_MESSAGE from the scheduler to an executor.
    pub async fn message_to_executor(self: &Arc<Self>, fw: &str, ex: &str, data: bytes::Bytes) {
        let state = self.state.lock().await;
        let delivered = state.executor(fw, ex).is_some_and(|e| {
            e.send(executor::Event {
                r#type: Some(executor::event::Type::Message as i32),
                message: Some(executor::event::Message { data }),
                ..Default::default()
            })
        });
        if !delivered {
            tracing::warn!(framework = %fw, executor = %ex, "framework message dropped: executor not subscribed");
        }
    }

    /// Re-registration deadline after an agent restart: executors found
    /// running must subscribe again within it.
    pub(super) fn reregistration_timer(
        self: &Arc<Self>,
        fw: String,
        ex: String,
        container: String,
    ) {
        let agent = self.clone();
        let timeout = self
            .config
            .executor_reregistration_timeout
            .max(Duration::from_millis(100));
        tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            // A stopping agent ends every executor's stream itself: that is
            // no missed re-subscription, and its pods outlive it by design
            // (`systemctl stop` soon after a restart destroyed them).
            if agent.shutdown.is_cancelled() {
                return;
            }
            let stale = {
                let state = agent.state.lock().await;
                state.executor(&fw, &ex).is_some_and(|e| {
                    e.container_id == container
                        && e.phase == Phase::Registering
                        && e.subscriber.is_none()
                })
            };
            if stale {
                tracing::warn!(framework = %fw, executor = %ex, "executor did not re-subscribe within {timeout:?}: destroying it");
                if let Ok(id) = ContainerPath::new(vec![container]) {
                    let _ = agent.containerizer.kill(&id, Duration::ZERO).await;
                }
            }
        });
    }
}
