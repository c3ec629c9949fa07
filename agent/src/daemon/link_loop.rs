//! Staying registered with the master: subscribe (re-registering with
//! everything running), follow its event stream, resubscribe with backoff
//! when it breaks or falls silent; and forward status updates in order
//! with retries until acknowledged.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tepui_proto::link::{AgentCall, MasterEvent, agent_call, master_event};
use tepui_proto::v1::{AgentInfo, FrameworkId, Task, TaskState};

use super::Agent;
use crate::link::{LINK_PROTOCOL_VERSION, MasterLink};
use crate::status_updates::{TaskKey, is_terminal};

const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// A master silent for this many heartbeat intervals is presumed gone.
const MISSED_HEARTBEATS: u32 = 3;

impl Agent {
    /// The SUBSCRIBE call: this agent and, when re-registering, every
    /// framework, executor and task it still has.
    pub(super) async fn subscribe_call(&self) -> AgentCall {
        let info: AgentInfo = self.agent_info();
        let state = self.state.lock().await;
        let agent_id = info.id.clone();
        let mut frameworks = Vec::new();
        let mut executors = Vec::new();
        let mut tasks = Vec::new();
        for (fw, framework) in &state.frameworks {
            frameworks.push(framework.info.clone());
            for executor in framework.executors.values() {
                executors.push(executor.info.clone());
                for (task_id, entry) in &executor.tasks {
                    let key = TaskKey {
                        framework: fw.clone(),
                        task: task_id.clone(),
                    };
                    let unacked = state.updates.unacknowledged(&key);
                    let latest = state.updates.latest_state(&key).unwrap_or(entry.state);
                    tasks.push(Task {
                        name: entry.info.name.clone(),
                        task_id: entry.info.task_id.clone(),
                        framework_id: framework.info.id.clone().unwrap_or_default(),
                        executor_id: Some(executor.info.executor_id.clone()),
                        agent_id: agent_id.clone().unwrap_or_default(),
                        state: latest as i32,
                        resources: entry.info.resources.clone(),
                        status_update_state: unacked.first().map(|s| s.state),
                        status_update_uuid: unacked.first().and_then(|s| s.uuid.clone()),
                        labels: entry.info.labels.clone(),
                        container: entry.info.container.clone(),
                        kill_policy: entry.info.kill_policy,
                        limits: entry.info.limits.clone(),
                        ..Default::default()
                    });
                }
            }
        }
        // Tasks of executors that are gone but whose (terminal) updates the
        // scheduler has not acknowledged: the master must still know them,
        // or it would take them for tasks this agent never had.
        let listed: std::collections::HashSet<(String, String)> = tasks
            .iter()
            .map(|t| (t.framework_id.value.clone(), t.task_id.value.clone()))
            .collect();
        let mut completed_tasks = Vec::new();
        for (key, executor_id, latest, first) in state.updates.pending_tasks() {
            if listed.contains(&(key.framework.clone(), key.task.clone())) {
                continue;
            }
            completed_tasks.push(Task {
                name: key.task.clone(),
                task_id: first.task_id.clone(),
                framework_id: FrameworkId {
                    value: key.framework.clone(),
                },
                executor_id: executor_id.cloned(),
                agent_id: agent_id.clone().unwrap_or_default(),
                state: latest.unwrap_or(first.state()) as i32,
                status_update_state: Some(first.state),
                status_update_uuid: first.uuid.clone(),
                ..Default::default()
            });
        }
        AgentCall {
            protocol_version: Some(LINK_PROTOCOL_VERSION),
            r#type: Some(agent_call::Type::Subscribe as i32),
            agent_id,
            subscribe: Some(agent_call::Subscribe {
                agent_info: info,
                capabilities: Vec::new(),
                version: Some(env!("CARGO_PKG_VERSION").to_string()),
                checkpointed_resources: Vec::new(),
                frameworks,
                executors,
                tasks,
                completed_tasks,
                address: Some(self.advertised_address()),
            }),
            ..Default::default()
        }
    }

    /// `ip:port` others reach this agent at.
    fn advertised_address(&self) -> String {
        std::net::SocketAddr::new(self.advertised_ip(), self.config.port).to_string()
    }

    /// The IP others reach this agent at: `--ip`, or for a wildcard bind
    /// the host's first non-loopback IPv4 address.
    pub(super) fn advertised_ip(&self) -> std::net::IpAddr {
        if !self.config.ip.is_unspecified() {
            return self.config.ip;
        }
        let found = nix::ifaddrs::getifaddrs().ok().and_then(|mut addrs| {
            addrs.find_map(|a| {
                let ip = a.address?.as_sockaddr_in()?.ip();
                (!ip.is_loopback()).then_some(ip)
            })
        });
        found.map_or(std::net::IpAddr::from([127, 0, 0, 1]), std::net::IpAddr::V4)
    }

    pub(super) async fn link_loop(self: Arc<Self>, link: Arc<dyn MasterLink>) {
        let mut backoff = BACKOFF_MIN;
        loop {
            let call = self.subscribe_call().await;
            match link.subscribe(call).await {
                Ok(mut events) => {
                    let mut silence = Duration::from_secs(60);
                    loop {
                        let next = tokio::time::timeout(silence, events.next()).await;
                        match next {
                            Ok(Some(Ok(event))) => {
                                if let Some(interval) = self.handle_master_event(event).await {
                                    silence = interval * MISSED_HEARTBEATS;
                                    backoff = BACKOFF_MIN;
                                }
                            }
                            Ok(Some(Err(e))) => {
                                tracing::warn!("link to the master broke: {e}");
                                break;
                            }
                            Ok(None) => {
                                tracing::warn!("the master closed the link");
                                break;
                            }
                            Err(_) => {
                                tracing::warn!(
                                    "no word from the master for {silence:?}: resubscribing"
                                );
                                break;
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!("cannot subscribe to {}: {e}", link.describe()),
            }
            self.metrics.registered.store(false, Ordering::Relaxed);
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// Returns the heartbeat interval when the event was SUBSCRIBED.
    async fn handle_master_event(self: &Arc<Self>, event: MasterEvent) -> Option<Duration> {
        use master_event::Type;
        let kind = event.r#type.and_then(|t| Type::try_from(t).ok());
        match kind {
            Some(Type::Subscribed) => {
                let subscribed = event.subscribed?;
                if let Err(e) = self.set_agent_id(&subscribed.agent_id) {
                    tracing::error!("cannot checkpoint the agent id: {e}");
                }
                self.metrics.registered.store(true, Ordering::Relaxed);
                tracing::info!(agent_id = %subscribed.agent_id.value, "registered with the master");
                self.state.lock().await.updates.resend_all();
                self.updates_ready.notify_one();
                let interval = subscribed.heartbeat_interval_seconds.unwrap_or(15.0);
                return Some(Duration::from_secs_f64(interval.clamp(0.1, 3600.0)));
            }
            Some(Type::Heartbeat) => {}
            Some(Type::RunTask) => {
                if let Some(run) = event.run_task {
                    self.run_task(run.framework, run.task, run.executor).await;
                }
            }
            Some(Type::RunTaskGroup) => {
                if let Some(run) = event.run_task_group {
                    self.run_task_group(run.framework, run.executor, run.task_group)
                        .await;
                }
            }
            Some(Type::KillTask) => {
                if let Some(kill) = event.kill_task {
                    self.kill_task(
                        &kill.framework_id.value,
                        &kill.task_id.value,
                        kill.kill_policy,
                    )
                    .await;
                }
            }
            Some(Type::Acknowledge) => {
                if let Some(ack) = event.acknowledge {
                    self.acknowledge(&ack.framework_id.value, &ack.task_id.value, &ack.uuid)
                        .await;
                }
            }
            Some(Type::FrameworkMessage) => {
                if let Some(m) = event.framework_message {
                    self.message_to_executor(&m.framework_id.value, &m.executor_id.value, m.data)
                        .await;
                }
            }
            Some(Type::ShutdownFramework) => {
                if let Some(s) = event.shutdown_framework {
                    self.shutdown_framework(&s.framework_id.value).await;
                }
            }
            Some(Type::UpdateFramework) => {
                if let Some(u) = event.update_framework {
                    let id = u.framework_info.id.clone().map(|i| i.value);
                    let mut state = self.state.lock().await;
                    if let Some(framework) = id.and_then(|id| state.frameworks.get_mut(&id)) {
                        framework.info = u.framework_info;
                    }
                }
            }
            Some(Type::Error) => {
                let message = event.error.map(|e| e.message).unwrap_or_default();
                tracing::error!("the master refused this agent: {message}");
            }
            Some(Type::ApplyOperation) => {
                if let Some(apply) = event.apply_operation {
                    self.apply_operation(&apply.operation).await;
                }
            }
            Some(Type::Unknown) | None => {
                tracing::debug!(?kind, "master event not handled");
            }
        }
        None
    }

    /// The scheduler acknowledged an update: the next one of the task goes.
    pub async fn acknowledge(self: &Arc<Self>, fw: &str, task: &str, uuid: &[u8]) {
        let key = TaskKey {
            framework: fw.to_string(),
            task: task.to_string(),
        };
        let mut state = self.state.lock().await;
        match state.updates.acknowledge(&key, uuid) {
            Ok(Some(_next)) => self.updates_ready.notify_one(),
            Ok(None) => {}
            Err(e) => tracing::error!("cannot record the acknowledgement: {e}"),
        }
        if state.updates.is_done(&key) {
            state.updates.forget(&key);
            // A finished task of a live executor stays listed as completed
            // until the executor goes; nothing else keeps it.
            let finished_executor = state.executor_of_task(fw, task).map(|(ex, e)| {
                (
                    ex.to_string(),
                    e.tasks.values().all(|t| is_terminal(t.state)),
                )
            });
            if let Some((ex, true)) = finished_executor {
                tracing::debug!(framework = %fw, executor = %ex, "every task of the executor is done");
            }
        }
    }

    /// Sends due status updates to the master, forever.
    pub(super) async fn forward_updates(self: Arc<Self>) {
        loop {
            let (due, next) = {
                let mut state = self.state.lock().await;
                let due = if self.metrics.registered.load(Ordering::Relaxed) {
                    state.updates.due(Instant::now())
                } else {
                    Vec::new()
                };
                (due, state.updates.next_due())
            };
            if let Some(link) = &self.link {
                for update in due {
                    let state_name = TaskState::try_from(update.status.state)
                        .map(|s| s.as_str_name())
                        .unwrap_or("?");
                    tracing::debug!(task = %update.status.task_id.value, state = state_name, "forwarding status update");
                    let call = AgentCall {
                        protocol_version: Some(LINK_PROTOCOL_VERSION),
                        r#type: Some(agent_call::Type::StatusUpdate as i32),
                        agent_id: self.agent_info().id,
                        status_update: Some(agent_call::StatusUpdate {
                            framework_id: update.framework_id,
                            status: update.status,
                            executor_id: update.executor_id,
                            latest_state: update.latest_state.map(|s| s as i32),
                        }),
                        ..Default::default()
                    };
                    match link.send(call).await {
                        Ok(()) => {
                            self.metrics
                                .updates_forwarded
                                .fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => tracing::debug!("status update not delivered (will retry): {e}"),
                    }
                }
            }
            let wait = next
                .map(|t| t.saturating_duration_since(Instant::now()))
                .unwrap_or(Duration::from_secs(3600))
                .max(Duration::from_millis(10));
            let _ = tokio::time::timeout(wait, self.updates_ready.notified()).await;
        }
    }
}
