//! What the command and default executors share: subscribe (and
//! re-subscribe after an agent restart), run each task as a nested container
//! through the operator API, report its states, kill with grace periods,
//! and exit once every task's last update is acknowledged.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tepui_proto::v1::framework_info::capability;
use tepui_proto::v1::task_status::{Reason, Source};
use tepui_proto::v1::{
    ContainerId, ContainerStatus, FrameworkInfo, HealthCheck, KillPolicy, TaskId, TaskInfo,
    TaskState, TaskStatus, agent, executor,
};
use tokio::sync::mpsc;

use super::client::{AgentClient, ExecutorEnv, ExecutorError};
use super::health::{Timing, Tracker, Verdict, check_once};
use crate::task_info::shares_cgroups;

/// Mesos's default kill grace period for tasks of the default executor.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// One command task (command executor).
    Single,
    /// A task group: when one task fails or is killed, the others are
    /// killed too (default executor).
    Group,
}

enum Input {
    Event(Box<executor::Event>),
    /// The subscription ended; `give_up` when re-subscribing failed for
    /// longer than the recovery timeout.
    Disconnected {
        give_up: bool,
    },
    Exited {
        task: String,
        result: Box<Result<agent::Response, ExecutorError>>,
    },
    KillDeadline {
        task: String,
    },
    Health {
        task: String,
        verdict: Verdict,
    },
}

struct TaskRun {
    info: TaskInfo,
    container: Option<ContainerId>,
    state: TaskState,
    killing: bool,
    grace: Duration,
    /// Set when a failing health check had it killed.
    unhealthy_kill: Option<String>,
    /// Which LAUNCH_GROUP brought it: a group's tasks live and die
    /// together, other groups of the same executor are left alone.
    group: u64,
}

/// What the subscription task needs on re-subscribing.
#[derive(Default)]
struct Unacknowledged {
    updates: BTreeMap<Vec<u8>, executor::call::Update>,
    tasks: Vec<TaskInfo>,
}

struct Runner {
    client: AgentClient,
    policy: Policy,
    own: Option<ContainerId>,
    framework: Option<FrameworkInfo>,
    tasks: BTreeMap<String, TaskRun>,
    pending: Arc<Mutex<Unacknowledged>>,
    inputs: mpsc::UnboundedSender<Input>,
    shutting_down: bool,
    /// The group the next LAUNCH_GROUP's tasks get.
    next_group: u64,
    /// Set when a task ran out of the group's shared memory: the reason
    /// and message its killed siblings end with.
    group_limitation: Option<(Reason, String)>,
}

fn is_terminal(state: TaskState) -> bool {
    crate::status_updates::is_terminal(state)
}

fn duration_of(policy: Option<&KillPolicy>) -> Option<Duration> {
    let nanos = policy?.grace_period.as_ref()?.nanoseconds;
    Some(Duration::from_nanos(u64::try_from(nanos).unwrap_or(0)))
}

/// Runs an executor until its work is done.
pub async fn run(policy: Policy) -> Result<(), ExecutorError> {
    let env = ExecutorEnv::from_env()?;
    let client = AgentClient::new(env)?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let pending = Arc::new(Mutex::new(Unacknowledged::default()));
    tokio::spawn(subscription(client.clone(), pending.clone(), tx.clone()));
    let mut runner = Runner {
        client,
        policy,
        own: None,
        framework: None,
        tasks: BTreeMap::new(),
        pending,
        inputs: tx,
        shutting_down: false,
        next_group: 0,
        group_limitation: None,
    };
    while let Some(input) = rx.recv().await {
        match input {
            Input::Event(event) => runner.on_event(*event).await,
            Input::Disconnected { give_up: true } => {
                tracing::error!("lost the agent for longer than the recovery timeout: exiting");
                return Err(ExecutorError::Agent {
                    endpoint: runner.client.env.agent_endpoint.clone(),
                    message: "unreachable past MESOS_RECOVERY_TIMEOUT".into(),
                });
            }
            Input::Disconnected { give_up: false } => {}
            Input::Exited { task, result } => runner.on_exit(&task, *result).await,
            Input::KillDeadline { task } => runner.escalate(&task).await,
            Input::Health { task, verdict } => runner.on_health(&task, verdict).await,
        }
        if runner.done() {
            tracing::info!("every task ended and was acknowledged: exiting");
            return Ok(());
        }
    }
    Ok(())
}

/// Keeps a subscription open: re-subscribes with backoff after the agent
/// goes away (a checkpointing framework's executor survives agent restarts),
/// offering every update the agent has not acknowledged.
async fn subscription(
    client: AgentClient,
    pending: Arc<Mutex<Unacknowledged>>,
    inputs: mpsc::UnboundedSender<Input>,
) {
    let mut lost_since: Option<Instant> = None;
    let mut backoff = Duration::from_millis(100);
    loop {
        let (tasks, updates) = {
            let p = pending.lock().unwrap_or_else(|e| e.into_inner());
            (p.tasks.clone(), p.updates.values().cloned().collect())
        };
        match client.subscribe(tasks, updates).await {
            Ok(mut events) => {
                lost_since = None;
                backoff = Duration::from_millis(100);
                while let Some(event) = events.next().await {
                    match event {
                        Ok(event) => {
                            if inputs.send(Input::Event(Box::new(event))).is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            tracing::warn!("subscription broke: {e}");
                            break;
                        }
                    }
                }
                tracing::warn!("disconnected from the agent");
                if !client.env.checkpoint {
                    // Mesos: without checkpointing, an executor does not
                    // outlive its agent.
                    let _ = inputs.send(Input::Disconnected { give_up: true });
                    return;
                }
                let _ = inputs.send(Input::Disconnected { give_up: false });
            }
            Err(e) => tracing::debug!("subscribe failed: {e}"),
        }
        let since = *lost_since.get_or_insert_with(Instant::now);
        if since.elapsed() > client.env.recovery_timeout {
            let _ = inputs.send(Input::Disconnected { give_up: true });
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(client.env.backoff_max);
    }
}

impl Runner {
    fn done(&self) -> bool {
        let all_ended = !self.tasks.is_empty() && self.tasks.values().all(|t| is_terminal(t.state));
        let nothing_pending = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .updates
            .is_empty();
        (all_ended || (self.shutting_down && self.tasks.values().all(|t| is_terminal(t.state))))
            && nothing_pending
    }

    async fn on_event(&mut self, event: executor::Event) {
        use executor::event::Type;
        match event.r#type.and_then(|t| Type::try_from(t).ok()) {
            Some(Type::Subscribed) => {
                if let Some(s) = event.subscribed {
                    self.own = s.container_id;
                    self.framework = Some(s.framework_info);
                }
            }
            Some(Type::Launch) => {
                if let Some(launch) = event.launch {
                    self.launch(vec![launch.task]).await;
                }
            }
            Some(Type::LaunchGroup) => {
                if let Some(group) = event.launch_group {
                    self.launch(group.task_group.tasks).await;
                }
            }
            Some(Type::Kill) => {
                if let Some(kill) = event.kill {
                    let task = kill.task_id.value;
                    let grace = duration_of(kill.kill_policy.as_ref());
                    if self.policy == Policy::Group {
                        self.kill_group(&task, grace).await;
                    } else {
                        self.kill(&task, grace).await;
                    }
                }
            }
            Some(Type::Acknowledged) => {
                if let Some(ack) = event.acknowledged {
                    let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                    p.updates.remove(&ack.uuid.to_vec());
                    p.tasks.retain(|t| t.task_id.value != ack.task_id.value);
                }
            }
            Some(Type::Shutdown) => {
                self.shutting_down = true;
                let grace = self.client.env.shutdown_grace_period;
                self.kill_all(Some(grace)).await;
            }
            Some(Type::Error) => {
                tracing::error!(
                    "the agent reported an error: {}",
                    event.error.map(|e| e.message).unwrap_or_default()
                );
            }
            Some(Type::Message) | Some(Type::Heartbeat) | Some(Type::Unknown) | None => {}
        }
    }

    async fn launch(&mut self, tasks: Vec<TaskInfo>) {
        // A task offered twice (an agent restart raced the first LAUNCH)
        // runs once.
        let tasks: Vec<TaskInfo> = tasks
            .into_iter()
            .filter(|t| !self.tasks.contains_key(&t.task_id.value))
            .collect();
        if tasks.is_empty() {
            return;
        }
        self.next_group += 1;
        let Some(own) = self.own.clone() else {
            for task in tasks {
                let id = task.task_id.value.clone();
                self.tasks.insert(id.clone(), self.new_run(task));
                self.update(
                    &id,
                    TaskState::TaskFailed,
                    Some(Reason::ExecutorRegistrationTimeout),
                    "the agent did not tell the executor its container id",
                )
                .await;
            }
            return;
        };
        for task in &tasks {
            let id = task.task_id.value.clone();
            self.tasks.insert(id, self.new_run(task.clone()));
            self.pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .tasks
                .push(task.clone());
        }
        for task in tasks {
            let id = task.task_id.value.clone();
            if self
                .tasks
                .get(&id)
                .is_some_and(|t| is_terminal(t.state) || t.killing)
            {
                continue;
            }
            let container = ContainerId {
                value: uuid::Uuid::new_v4().to_string(),
                parent: Some(Box::new(own.clone())),
            };
            // Mesos's executors send TASK_STARTING before launching
            // (`src/launcher/executor.cpp` CommandExecutor::launch,
            // `src/launcher/default_executor.cpp` DefaultExecutor::launchGroup),
            // already naming the task's container: the default executor
            // records it before `createTaskStatus`, and the Mesos CLI reads
            // it from a task's first status (`task exec`, `task attach`).
            if let Some(run) = self.tasks.get_mut(&id) {
                run.container = Some(container.clone());
            }
            self.update(&id, TaskState::TaskStarting, None, "").await;
            let call = agent::Call {
                r#type: Some(agent::call::Type::LaunchContainer as i32),
                launch_container: Some(agent::call::LaunchContainer {
                    container_id: container.clone(),
                    command: task.command.clone(),
                    resources: task.resources.clone(),
                    container: task.container.clone(),
                    limits: task.limits.clone(),
                }),
                ..Default::default()
            };
            match self.launch_container(&call).await {
                Ok(_) => {
                    // A command task works in the executor's own sandbox
                    // (the agent puts it there); a task group's tasks get
                    // Mesos's `tasks/<task id>` links.
                    if self.policy == Policy::Group {
                        self.link_task_sandbox(&id, &container.value);
                    }
                    if let Some(run) = self.tasks.get_mut(&id) {
                        run.container = Some(container.clone());
                    }
                    self.update(&id, TaskState::TaskRunning, None, "").await;
                    if let Some(check) = task.health_check.clone() {
                        self.watch_health(id.clone(), container.clone(), check);
                    }
                    self.wait_for(id, container);
                }
                Err(e) => {
                    // The agent's refusal says what failed (the image, its
                    // registry, the command); who answered adds nothing.
                    let cause = match e {
                        ExecutorError::Refused { body, .. } if !body.trim().is_empty() => {
                            body.trim().to_string()
                        }
                        e => e.to_string(),
                    };
                    self.update(
                        &id,
                        TaskState::TaskFailed,
                        Some(Reason::ContainerLaunchFailed),
                        &format!("Failed to launch the task's container: {cause}"),
                    )
                    .await;
                    if self.policy == Policy::Group {
                        self.kill_group(&id, None).await;
                    }
                }
            }
        }
    }

    /// LAUNCH_CONTAINER, retried while the agent cannot be reached (it may
    /// be restarting: a checkpointing framework's executor waits for it up
    /// to the recovery timeout, as its subscription does). Relaunching the
    /// same container id is idempotent on the agent.
    async fn launch_container(&self, call: &agent::Call) -> Result<agent::Response, ExecutorError> {
        let started = Instant::now();
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.client.operator(call, "LAUNCH_CONTAINER").await {
                Err(
                    e @ (ExecutorError::Agent { .. } | ExecutorError::Refused { status: 503, .. }),
                ) if self.client.env.checkpoint
                    && started.elapsed() < self.client.env.recovery_timeout =>
                {
                    tracing::warn!("cannot launch the task's container yet: {e}; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.client.env.backoff_max);
                }
                other => return other,
            }
        }
    }

    fn new_run(&self, task: TaskInfo) -> TaskRun {
        let grace = duration_of(task.kill_policy.as_ref()).unwrap_or(DEFAULT_GRACE);
        TaskRun {
            info: task,
            container: None,
            state: TaskState::TaskStaging,
            killing: false,
            grace,
            unhealthy_kill: None,
            group: self.next_group,
        }
    }

    /// Mesos's `tasks/<task id>` link to the task's sandbox, so operators
    /// find it by task id.
    fn link_task_sandbox(&self, task: &str, container: &str) {
        let base = std::path::Path::new(&self.client.env.sandbox);
        let tasks = base.join("tasks");
        let _ = std::fs::create_dir_all(&tasks);
        let target = std::path::Path::new("..")
            .join("containers")
            .join(container);
        let _ = std::os::unix::fs::symlink(target, tasks.join(task));
    }

    fn wait_for(&self, task: String, container: ContainerId) {
        let client = self.client.clone();
        let inputs = self.inputs.clone();
        tokio::spawn(async move {
            let call = agent::Call {
                r#type: Some(agent::call::Type::WaitContainer as i32),
                wait_container: Some(agent::call::WaitContainer {
                    container_id: container.clone(),
                }),
                ..Default::default()
            };
            // An agent restart breaks the connection, not the container:
            // only an answer from the agent ends the wait.
            let mut backoff = Duration::from_millis(100);
            let result = loop {
                match client.operator(&call, "WAIT_CONTAINER").await {
                    Err(ExecutorError::Agent { message, .. }) => {
                        tracing::debug!("waiting for the task again after: {message}");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2)
                            .min(client.env.backoff_max.max(Duration::from_millis(100)));
                    }
                    other => break other,
                }
            };
            let remove = agent::Call {
                r#type: Some(agent::call::Type::RemoveContainer as i32),
                remove_container: Some(agent::call::RemoveContainer {
                    container_id: container,
                }),
                ..Default::default()
            };
            if result.is_ok()
                && let Err(e) = client.operator(&remove, "REMOVE_CONTAINER").await
            {
                tracing::warn!("cannot remove the task's container: {e}");
            }
            let _ = inputs.send(Input::Exited {
                task,
                result: Box::new(result),
            });
        });
    }

    /// Runs the task's health check on its schedule until the task ends.
    fn watch_health(&self, task: String, container: ContainerId, check: HealthCheck) {
        let client = self.client.clone();
        let inputs = self.inputs.clone();
        tokio::spawn(async move {
            let timing = Timing::of(&check);
            let mut tracker = Tracker::new(timing, Instant::now());
            tokio::time::sleep(timing.delay).await;
            loop {
                let result = check_once(&client, &check, &container, timing.timeout).await;
                if let Some(verdict) = tracker.record(Instant::now(), result) {
                    let kill = matches!(verdict, Verdict::Kill { .. });
                    let health = Input::Health {
                        task: task.clone(),
                        verdict,
                    };
                    if inputs.send(health).is_err() || kill {
                        return;
                    }
                }
                tokio::time::sleep(timing.interval).await;
            }
        });
    }

    async fn on_health(&mut self, task: &str, verdict: Verdict) {
        let Some(run) = self.tasks.get(task) else {
            return;
        };
        if is_terminal(run.state) || run.killing {
            return;
        }
        match verdict {
            Verdict::Healthy => {
                self.update_with_health(
                    task,
                    TaskState::TaskRunning,
                    Some(Reason::TaskHealthCheckStatusUpdated),
                    "",
                    Some(true),
                )
                .await;
            }
            Verdict::Unhealthy { failures, message } => {
                self.update_with_health(
                    task,
                    TaskState::TaskRunning,
                    Some(Reason::TaskHealthCheckStatusUpdated),
                    &format!("health check failed ({failures} in a row): {message}"),
                    Some(false),
                )
                .await;
            }
            Verdict::Kill { failures, message } => {
                tracing::warn!(
                    task,
                    "health check failed {failures} times in a row: killing the task"
                );
                if let Some(run) = self.tasks.get_mut(task) {
                    run.unhealthy_kill = Some(format!(
                        "Task killed: its health check failed {failures} times in a row ({message})"
                    ));
                }
                if self.policy == Policy::Group {
                    self.kill_group(task, None).await;
                } else {
                    self.kill(task, None).await;
                }
            }
        }
    }

    async fn on_exit(&mut self, task: &str, result: Result<agent::Response, ExecutorError>) {
        let Some(run) = self.tasks.get(task) else {
            return;
        };
        let killing = run.killing;
        let (state, reason, message) = match result {
            Ok(response) => {
                let wait = response.wait_container.unwrap_or_default();
                let status = wait.exit_status.unwrap_or(0);
                if let Some(reason) = wait.reason.and_then(|r| Reason::try_from(r).ok()) {
                    (
                        wait.state
                            .and_then(|s| TaskState::try_from(s).ok())
                            .unwrap_or(TaskState::TaskFailed),
                        Some(reason),
                        wait.message.unwrap_or_default(),
                    )
                } else if let Some(why) =
                    self.tasks.get(task).and_then(|t| t.unhealthy_kill.clone())
                {
                    (
                        TaskState::TaskKilled,
                        Some(Reason::TaskHealthCheckStatusUpdated),
                        why,
                    )
                } else if killing && let Some((reason, why)) = self.group_limitation.clone() {
                    (TaskState::TaskFailed, Some(reason), why)
                } else if killing {
                    (TaskState::TaskKilled, None, "Task killed".to_string())
                } else if wait.state == Some(TaskState::TaskKilled as i32) {
                    (
                        TaskState::TaskKilled,
                        None,
                        "Task's container killed by an operator".to_string(),
                    )
                } else if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
                    (
                        TaskState::TaskFinished,
                        None,
                        "Command exited with status 0".to_string(),
                    )
                } else if libc::WIFEXITED(status) {
                    // No reason: Mesos's executors give a failed command
                    // none (`DefaultExecutor::waited`, `CommandExecutor::reaped`).
                    (
                        TaskState::TaskFailed,
                        None,
                        format!("Command exited with status {}", libc::WEXITSTATUS(status)),
                    )
                } else {
                    (
                        TaskState::TaskFailed,
                        None,
                        format!("Command terminated with signal {}", libc::WTERMSIG(status)),
                    )
                }
            }
            Err(e) => (
                TaskState::TaskFailed,
                Some(Reason::ExecutorTerminated),
                format!("Lost the task's container: {e}"),
            ),
        };
        // A task that shares the pod's cgroups ran out of the pod's
        // memory: in Mesos that limit is the executor container's, whose
        // destruction fails every task of the group with the limitation
        // (`CgroupsIsolatorProcess::watch` watches only the executor's
        // cgroup; `Slave::executorTerminated`). Its siblings end the same way.
        if self.policy == Policy::Group
            && reason == Some(Reason::ContainerLimitationMemory)
            && self.group_limitation.is_none()
            && self
                .tasks
                .get(task)
                .is_some_and(|t| shares_cgroups(&t.info))
        {
            self.group_limitation = Some((
                Reason::ContainerLimitationMemory,
                format!(
                    "{message}; the task group's shared memory limit was exceeded by task {task}"
                ),
            ));
        }
        self.update(task, state, reason, &message).await;
        if self.policy == Policy::Group && state != TaskState::TaskFinished {
            self.kill_group(task, None).await;
        }
    }

    /// The tasks of `task`'s group (src/launcher/default_executor.cpp,
    /// `DefaultExecutor::waited` and `killTask`: a failed or killed task
    /// takes down the rest of its task group, not the executor's other
    /// groups).
    async fn kill_group(&mut self, task: &str, grace: Option<Duration>) {
        let Some(group) = self.tasks.get(task).map(|t| t.group) else {
            return;
        };
        let live: Vec<String> = self
            .tasks
            .iter()
            .filter(|(_, t)| t.group == group && !is_terminal(t.state) && !t.killing)
            .map(|(id, _)| id.clone())
            .collect();
        for task in live {
            self.kill(&task, grace).await;
        }
    }

    async fn kill_all(&mut self, grace: Option<Duration>) {
        let live: Vec<String> = self
            .tasks
            .iter()
            .filter(|(_, t)| !is_terminal(t.state) && !t.killing)
            .map(|(id, _)| id.clone())
            .collect();
        for task in live {
            self.kill(&task, grace).await;
        }
    }

    /// SIGTERM now, SIGKILL after the grace period.
    async fn kill(&mut self, task: &str, grace: Option<Duration>) {
        let Some(run) = self.tasks.get_mut(task) else {
            return;
        };
        if is_terminal(run.state) || run.killing {
            return;
        }
        run.killing = true;
        let grace = grace.unwrap_or(run.grace);
        let container = run.container.clone();
        let Some(container) = container else {
            // Never started: it ends here.
            self.update(
                task,
                TaskState::TaskKilled,
                None,
                "Killed before it started",
            )
            .await;
            return;
        };
        let killing_state = self.framework.as_ref().is_some_and(|f| {
            f.capabilities
                .iter()
                .any(|c| c.r#type == Some(capability::Type::TaskKillingState as i32))
        });
        if killing_state {
            self.update(task, TaskState::TaskKilling, None, "").await;
        }
        self.signal(&container, libc::SIGTERM).await;
        let inputs = self.inputs.clone();
        let task = task.to_string();
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            let _ = inputs.send(Input::KillDeadline { task });
        });
    }

    async fn escalate(&mut self, task: &str) {
        let Some(run) = self.tasks.get(task) else {
            return;
        };
        if is_terminal(run.state) {
            return;
        }
        if let Some(container) = run.container.clone() {
            self.signal(&container, libc::SIGKILL).await;
        }
    }

    async fn signal(&self, container: &ContainerId, signal: i32) {
        let call = agent::Call {
            r#type: Some(agent::call::Type::KillContainer as i32),
            kill_container: Some(agent::call::KillContainer {
                container_id: container.clone(),
                signal: Some(signal),
            }),
            ..Default::default()
        };
        // Retried while the agent is unreachable (restarting).
        for attempt in 0..50 {
            match self.client.operator(&call, "KILL_CONTAINER").await {
                Err(ExecutorError::Agent { message, .. }) if attempt < 49 => {
                    tracing::debug!("signal not delivered yet: {message}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => {
                    tracing::warn!("cannot signal {}: {e}", container.value);
                    return;
                }
                Ok(_) => return,
            }
        }
    }

    /// Sends a status update; kept until ACKNOWLEDGED (and offered again on
    /// re-subscription if the agent went away meanwhile).
    async fn update(
        &mut self,
        task: &str,
        state: TaskState,
        reason: Option<Reason>,
        message: &str,
    ) {
        // A task killed for failing its health check says so on every later
        // update.
        let healthy = self
            .tasks
            .get(task)
            .filter(|t| t.unhealthy_kill.is_some())
            .map(|_| false);
        self.update_with_health(task, state, reason, message, healthy)
            .await;
    }

    async fn update_with_health(
        &mut self,
        task: &str,
        state: TaskState,
        reason: Option<Reason>,
        message: &str,
        healthy: Option<bool>,
    ) {
        let container = self.tasks.get(task).and_then(|t| t.container.clone());
        if let Some(run) = self.tasks.get_mut(task) {
            run.state = state;
        }
        let uuid = uuid::Uuid::new_v4().as_bytes().to_vec();
        let status = TaskStatus {
            task_id: TaskId {
                value: task.to_string(),
            },
            state: state as i32,
            message: (!message.is_empty()).then(|| message.to_string()),
            source: Some(Source::Executor as i32),
            reason: reason.map(|r| r as i32),
            executor_id: Some(self.client.env.executor_id.clone()),
            timestamp: Some(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs_f64())
                    .unwrap_or(0.0),
            ),
            uuid: Some(uuid.clone().into()),
            healthy,
            container_status: container.map(|c| ContainerStatus {
                container_id: Some(c),
                ..Default::default()
            }),
            ..Default::default()
        };
        let update = executor::call::Update { status };
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .updates
            .insert(uuid, update.clone());
        if let Err(e) = self.client.update(&update).await {
            tracing::warn!("status update not delivered yet (resent on re-subscription): {e}");
        }
        if is_terminal(state)
            && let Some(run) = self.tasks.get(task)
        {
            tracing::info!(
                task,
                state = state.as_str_name(),
                "task ended ({})",
                run.info.name
            );
        }
    }
}
