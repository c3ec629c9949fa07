//! Tasks and the executors that run them: RUN_TASK / RUN_TASK_GROUP from
//! the master start an executor container (or hand the work to a running
//! executor), KILL_TASK and SHUTDOWN_FRAMEWORK stop them, and the end of an
//! executor's container ends whatever it left unfinished with updates the
//! agent writes itself.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tepui_containerizer::spec::{ContainerKind, LaunchSpec, ResourceRequest};
use tepui_containerizer::supervisor::protocol::Termination;
use tepui_containerizer::{ContainerPath, ContainerizerError};
use tepui_proto::v1::task_status::{Reason, Source};
use tepui_proto::v1::{
    CommandInfo, ContainerId, ExecutorId, ExecutorInfo, FrameworkId, FrameworkInfo, KillPolicy,
    Resource, TaskGroupInfo, TaskId, TaskInfo, TaskState, TaskStatus, executor, executor_info,
};

use super::Agent;
use super::state::{Executor, ExecutorKind, Framework, Phase, Queued, RunRecord, State, TaskEntry};
use crate::checkpoint;
use crate::paths::valid_component;
use crate::status_updates::{Accepted, TaskKey, UpdateError, is_terminal};

/// What the command executor itself is given on top of its task.
const COMMAND_EXECUTOR_CPUS: f64 = 0.1;
const COMMAND_EXECUTOR_MEM_MB: f64 = 32.0;

pub fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn new_uuid() -> Vec<u8> {
    uuid::Uuid::new_v4().as_bytes().to_vec()
}

#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct ExecutorRecord {
    pub kind: ExecutorKind,
    pub info: serde_json::Value,
}

impl Agent {
    /// RUN_TASK: a task with its own executor (`executor`) or a command task.
    pub async fn run_task(
        self: &Arc<Self>,
        framework: FrameworkInfo,
        task: TaskInfo,
        executor: Option<ExecutorInfo>,
    ) {
        let (info, kind) = match executor {
            Some(e) => {
                let kind = if e.r#type == Some(executor_info::Type::Default as i32) {
                    ExecutorKind::Default
                } else {
                    ExecutorKind::Custom
                };
                (e, kind)
            }
            None => (
                self.command_executor_info(&framework, &task),
                ExecutorKind::Command,
            ),
        };
        self.submit(
            framework,
            info,
            kind,
            vec![task.clone()],
            Queued::Task(Box::new(task)),
        )
        .await;
    }

    /// RUN_TASK_GROUP: a pod under the default executor.
    pub async fn run_task_group(
        self: &Arc<Self>,
        framework: FrameworkInfo,
        executor: ExecutorInfo,
        group: TaskGroupInfo,
    ) {
        let tasks = group.tasks.clone();
        self.submit(
            framework,
            executor,
            ExecutorKind::Default,
            tasks,
            Queued::Group(group),
        )
        .await;
    }

    /// The ExecutorInfo Mesos builds for a command task.
    fn command_executor_info(&self, framework: &FrameworkInfo, task: &TaskInfo) -> ExecutorInfo {
        let command = task
            .command
            .as_ref()
            .and_then(|c| c.value.clone())
            .unwrap_or_default();
        let role = task
            .resources
            .first()
            .and_then(|r| r.allocation_info.clone());
        let scalar = |name: &str, value: f64| Resource {
            name: name.to_string(),
            r#type: tepui_proto::v1::value::Type::Scalar as i32,
            scalar: Some(tepui_proto::v1::value::Scalar { value }),
            allocation_info: role.clone(),
            ..Default::default()
        };
        ExecutorInfo {
            r#type: Some(executor_info::Type::Custom as i32),
            executor_id: ExecutorId {
                value: task.task_id.value.clone(),
            },
            framework_id: framework.id.clone(),
            command: Some(CommandInfo {
                value: Some(self.config.tepui_binary.to_string_lossy().into_owned()),
                arguments: vec!["tepui".into(), "executor".into(), "command".into()],
                shell: Some(false),
                // Mesos's command executor runs as its task's user
                // (slave.cpp, getExecutorInfo).
                user: task.command.as_ref().and_then(|c| c.user.clone()),
                ..Default::default()
            }),
            name: Some(format!(
                "Command Executor (Task: {}) (Command: sh -c '{}')",
                task.task_id.value,
                command.chars().take(64).collect::<String>()
            )),
            #[allow(deprecated)] // Mesos still fills it for command executors.
            source: Some(task.task_id.value.clone()),
            resources: vec![
                scalar("cpus", COMMAND_EXECUTOR_CPUS),
                scalar("mem", COMMAND_EXECUTOR_MEM_MB),
            ],
            ..Default::default()
        }
    }

    async fn submit(
        self: &Arc<Self>,
        framework: FrameworkInfo,
        info: ExecutorInfo,
        kind: ExecutorKind,
        tasks: Vec<TaskInfo>,
        work: Queued,
    ) {
        let Some(fw) = framework.id.as_ref().map(|i| i.value.clone()) else {
            tracing::warn!("RUN_TASK without a framework id: dropped");
            return;
        };
        let ex = info.executor_id.value.clone();
        // The master validated these (`tepui_proto::ids`); checked again
        // before anything touches the disk, with the field named.
        // Task ids first: a command task's executor id is its task id.
        let bad = tasks
            .iter()
            .map(|t| ("task_id", &t.task_id.value))
            .chain([("framework_id", &fw), ("executor_id", &ex)])
            .find_map(|(field, id)| tepui_proto::ids::check(field, id).err());
        if let Some(bad) = bad {
            let mut state = self.state.lock().await;
            for task in &tasks {
                self.agent_update_locked(
                    &mut state,
                    &fw,
                    &ex,
                    None,
                    &task.task_id.value,
                    TaskState::TaskError,
                    Reason::TaskInvalid,
                    &bad,
                );
            }
            return;
        }
        self.metrics
            .tasks_launched
            .fetch_add(tasks.len() as u64, Ordering::Relaxed);

        let mut state = self.state.lock().await;
        let framework_entry = state
            .frameworks
            .entry(fw.clone())
            .or_insert_with(|| Framework {
                info: framework.clone(),
                executors: Default::default(),
                shutting_down: false,
            });
        framework_entry.info = framework.clone();
        if let Err(e) = checkpoint::write_message(&self.work.framework_file(&fw), &framework) {
            tracing::error!("{e}");
        }

        if let Some(executor) = state.executor_mut(&fw, &ex) {
            // A running executor takes the work at once; one still starting
            // gets it when it subscribes.
            let container = executor.container_id.clone();
            for task in &tasks {
                executor.tasks.insert(
                    task.task_id.value.clone(),
                    TaskEntry::new(task.clone(), TaskState::TaskStaging),
                );
            }
            let event = launch_event(&work);
            if executor.phase == Phase::Running && executor.send(event) {
            } else {
                executor.queued.push(work);
            }
            for task in &tasks {
                // Logged; the running executor has the task already.
                let _ = self.checkpoint_task(&fw, &ex, &container, task);
            }
            drop(state);
            self.size_executor_pod(&fw, &ex).await;
            return;
        }

        let container_id = uuid::Uuid::new_v4().to_string();
        let agent_id = self.agent_id();
        let directory = self
            .work
            .executor_sandbox(&agent_id, &fw, &ex, &container_id);
        let record = ExecutorRecord {
            kind,
            info: tepui_proto::json::to_value(&info),
        };
        // A run the agent cannot checkpoint is not launched: its tasks end
        // TASK_FAILED with the reason (Mesos aborts the agent instead).
        let mut not_checkpointed =
            checkpoint::write_json(&self.work.executor_file(&fw, &ex), &record)
                .and_then(|()| {
                    checkpoint::write_json(
                        &self.work.run_file(&fw, &ex, &container_id),
                        &RunRecord {
                            container_id: container_id.clone(),
                            kind,
                            directory: directory.clone(),
                            completed: false,
                        },
                    )
                })
                .err()
                .map(|e| format!("cannot checkpoint the executor: {e}"));
        let mut executor = Executor {
            info: info.clone(),
            kind,
            container_id: container_id.clone(),
            directory: directory.clone(),
            phase: Phase::Registering,
            queued: vec![work],
            tasks: Default::default(),
            subscriber: None,
            killing: Vec::new(),
        };
        for task in &tasks {
            executor.tasks.insert(
                task.task_id.value.clone(),
                TaskEntry::new(task.clone(), TaskState::TaskStaging),
            );
            if let Err(e) = self.checkpoint_task(&fw, &ex, &container_id, task) {
                not_checkpointed.get_or_insert(e);
            }
        }
        if let Some(framework) = state.frameworks.get_mut(&fw) {
            framework.executors.insert(ex.clone(), executor);
        }
        state
            .containers
            .insert(container_id.clone(), (fw.clone(), ex.clone()));
        drop(state);

        let spec = match not_checkpointed {
            Some(message) => Err(message),
            None => self
                .executor_launch_spec(&framework, &info, kind, &container_id, &directory)
                .and_then(|spec| self.with_networks(spec, &info, kind, &tasks))
                .and_then(|spec| self.with_volumes(spec, &info, &tasks)),
        };
        let agent = self.clone();
        tokio::spawn(async move {
            agent.launch_executor(fw, ex, container_id, spec).await;
        });
    }

    fn checkpoint_task(
        &self,
        fw: &str,
        ex: &str,
        container: &str,
        task: &TaskInfo,
    ) -> Result<(), String> {
        checkpoint::write_message(
            &self.work.task_file(fw, ex, container, &task.task_id.value),
            task,
        )
        .map_err(|e| {
            tracing::error!("{e}");
            format!("cannot checkpoint task {}: {e}", task.task_id.value)
        })
    }

    /// The executor's container: the executor's command on the host
    /// filesystem with Mesos's executor environment.
    fn executor_launch_spec(
        &self,
        framework: &FrameworkInfo,
        info: &ExecutorInfo,
        kind: ExecutorKind,
        container_id: &str,
        directory: &std::path::Path,
    ) -> Result<(LaunchSpec, Vec<tepui_fetcher::Uri>), String> {
        let id = ContainerPath::new(vec![container_id.to_string()]).map_err(|e| e.to_string())?;
        let command_info = match kind {
            ExecutorKind::Default => CommandInfo {
                value: Some(self.config.tepui_binary.to_string_lossy().into_owned()),
                arguments: vec!["tepui".into(), "executor".into(), "default".into()],
                shell: Some(false),
                ..Default::default()
            },
            _ => info
                .command
                .clone()
                .ok_or_else(|| "the executor has no command".to_string())?,
        };
        let container = match kind {
            ExecutorKind::Custom => info.container.as_ref(),
            _ => None,
        };
        let container_path_id = ContainerId {
            value: container_id.to_string(),
            parent: None,
        };
        let mut spec = LaunchSpec::from_mesos(
            &container_path_id,
            ContainerKind::Executor,
            &command_info,
            container,
            directory,
        )
        .map_err(|e| e.to_string())?;
        debug_assert_eq!(spec.container_id, id);
        spec.user = self.run_user(spec.user.take(), &framework.user)?;
        let limits = Default::default();
        spec.resources =
            ResourceRequest::from_mesos(&info.resources, &limits).map_err(|e| e.to_string())?;
        let fw = framework
            .id
            .as_ref()
            .map(|i| i.value.clone())
            .unwrap_or_default();
        let sandbox = directory.to_string_lossy().into_owned();
        let checkpoint = framework.checkpoint.unwrap_or(false);
        let fw_id = fw.clone();
        let mut env = vec![
            ("MESOS_FRAMEWORK_ID".to_string(), fw),
            (
                "MESOS_EXECUTOR_ID".to_string(),
                info.executor_id.value.clone(),
            ),
            ("MESOS_DIRECTORY".to_string(), sandbox.clone()),
            ("MESOS_SANDBOX".to_string(), sandbox),
            ("MESOS_AGENT_ENDPOINT".to_string(), self.endpoint()),
            // What libmesos's executor driver registers with
            // (src/slave/slave.cpp, `executorEnvironment`): the agent's pid.
            (
                "MESOS_SLAVE_PID".to_string(),
                format!("slave(1)@{}", self.endpoint()),
            ),
            ("MESOS_SLAVE_ID".to_string(), self.agent_id()),
            ("MESOS_AGENT_ID".to_string(), self.agent_id()),
            (
                "MESOS_CHECKPOINT".to_string(),
                if checkpoint { "1" } else { "0" }.to_string(),
            ),
            (
                "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD".to_string(),
                tepui_proto::duration::format_duration(self.config.executor_shutdown_grace_period),
            ),
            ("MESOS_HTTP_COMMAND_EXECUTOR".to_string(), "1".to_string()),
        ];
        // Executors reach us over https with SSL on (Mesos hands its
        // LIBPROCESS_SSL_* environment on to executors).
        env.extend(self.config.tls.to_env());
        if let Some(key) = &self.executor_key {
            let claims = [
                (tepui_proto::auth::CLAIM_FRAMEWORK_ID, fw_id.clone()),
                (
                    tepui_proto::auth::CLAIM_EXECUTOR_ID,
                    info.executor_id.value.clone(),
                ),
                (
                    tepui_proto::auth::CLAIM_CONTAINER_ID,
                    container_id.to_string(),
                ),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
            env.push((
                tepui_proto::auth::EXECUTOR_TOKEN_ENV.to_string(),
                tepui_proto::auth::jwt::sign(&claims, None, key),
            ));
        }
        if checkpoint {
            env.push(("MESOS_RECOVERY_TIMEOUT".to_string(), "15mins".to_string()));
            env.push((
                "MESOS_SUBSCRIPTION_BACKOFF_MAX".to_string(),
                "2secs".to_string(),
            ));
        }
        if let Ok(filter) = std::env::var("RUST_LOG") {
            env.push(("RUST_LOG".to_string(), filter));
        }
        spec.env = env;
        Ok((spec, command_info.uris.clone()))
    }

    /// The persistent volumes of the executor's and its first tasks'
    /// resources, bind-mounted in its sandbox (Mesos mounts a container's
    /// volumes as its resources grow, `filesystem/linux` `update`; tepui
    /// only at the container's launch).
    fn with_volumes(
        &self,
        (mut spec, uris): (LaunchSpec, Vec<tepui_fetcher::Uri>),
        info: &ExecutorInfo,
        tasks: &[TaskInfo],
    ) -> Result<(LaunchSpec, Vec<tepui_fetcher::Uri>), String> {
        let resources: Vec<_> = info
            .resources
            .iter()
            .chain(tasks.iter().flat_map(|t| t.resources.iter()))
            .cloned()
            .collect();
        let volumes = super::volumes::mounts(self.work.root(), &resources, spec.user.as_deref())?;
        spec.volumes.extend(volumes);
        Ok((spec, uris))
    }

    /// The pod's CNI networks: the executor's `ContainerInfo.network_infos`
    /// (the default executor's pod), or a command task's own (Mesos copies
    /// a command task's ContainerInfo onto its executor, `getExecutorInfo`
    /// in src/slave/slave.cpp); a custom executor's came with its
    /// ContainerInfo already. The executor then reaches the agent at an
    /// address routable from the pod's namespace, not loopback.
    fn with_networks(
        &self,
        (mut spec, uris): (LaunchSpec, Vec<tepui_fetcher::Uri>),
        info: &ExecutorInfo,
        kind: ExecutorKind,
        tasks: &[TaskInfo],
    ) -> Result<(LaunchSpec, Vec<tepui_fetcher::Uri>), String> {
        let container = match kind {
            ExecutorKind::Custom => None,
            ExecutorKind::Default => info.container.as_ref(),
            ExecutorKind::Command => tasks.first().and_then(|t| t.container.as_ref()),
        };
        if let Some(container) = container {
            spec.networks =
                tepui_containerizer::spec::NetworkRequest::from_mesos(&container.network_infos);
            if !spec.networks.is_empty() && spec.hostname.is_none() {
                spec.hostname = container.hostname.clone();
            }
        }
        if spec.networks.is_empty() {
            return Ok((spec, uris));
        }
        let ip = if self.config.ip.is_unspecified() {
            self.advertised_ip()
        } else {
            self.config.ip
        };
        if ip.is_loopback() {
            return Err(format!(
                "the executor of a pod on CNI network '{}' cannot reach the agent at {ip} (loopback): run the agent with --ip 0.0.0.0 or a host address",
                spec.networks[0].name
            ));
        }
        let endpoint = std::net::SocketAddr::new(ip, self.config.port).to_string();
        for (name, value) in spec.env.iter_mut() {
            if name == "MESOS_AGENT_ENDPOINT" {
                *value = endpoint.clone();
            }
        }
        Ok((spec, uris))
    }

    async fn launch_executor(
        self: &Arc<Self>,
        fw: String,
        ex: String,
        container_id: String,
        spec: Result<(LaunchSpec, Vec<tepui_fetcher::Uri>), String>,
    ) {
        let result = match spec {
            Ok((spec, uris)) => {
                let prepared =
                    match super::sandbox::prepare(&spec.sandbox_dir, spec.user.as_deref()) {
                        Ok(()) => {
                            self.assign_disk_project(&fw, &ex, &container_id, &spec.sandbox_dir)
                                .await
                        }
                        Err(message) => Err(message),
                    };
                match match prepared {
                    Ok(()) => {
                        self.fetch_uris(&uris, &spec.sandbox_dir, spec.user.as_deref())
                            .await
                    }
                    Err(message) => Err(message),
                } {
                    Ok(()) => self
                        .containerizer
                        .launch(spec)
                        .await
                        .map_err(|e| e.to_string()),
                    Err(message) => Err(message),
                }
            }
            Err(message) => Err(message),
        };
        match result {
            Ok(launched) => {
                self.metrics
                    .executors_launched
                    .fetch_add(1, Ordering::Relaxed);
                tracing::info!(framework = %fw, executor = %ex, container = %container_id, pid = launched.pid, "executor launched");
                // Before the executor can subscribe and get its tasks.
                self.size_executor_pod(&fw, &ex).await;
                self.watch_executor(fw.clone(), ex.clone(), container_id.clone());
                // SHUTDOWN_FRAMEWORK (a TEARDOWN) may have come while the
                // URIs were fetched or the container was being created: its
                // kill found no container then, so this one goes now; the
                // watcher above reaps it and reports EXECUTOR_EXITED.
                // (Mesos's `Slave::executorLaunched` destroys a container
                // whose executor is already TERMINATING the same way.)
                let unwanted = {
                    let state = self.state.lock().await;
                    state.executor(&fw, &ex).is_none_or(|e| {
                        e.container_id != container_id || e.phase == Phase::Terminating
                    })
                };
                if unwanted {
                    tracing::info!(framework = %fw, executor = %ex, container = %container_id, "executor shut down while it launched: destroying it");
                    if let Ok(id) = ContainerPath::new(vec![container_id]) {
                        let _ = self.containerizer.kill(&id, Duration::ZERO).await;
                    }
                    return;
                }
                self.registration_timer(
                    fw,
                    ex,
                    container_id,
                    self.config.executor_registration_timeout,
                );
            }
            Err(message) => {
                tracing::warn!(framework = %fw, executor = %ex, why = %message, "executor launch failed");
                if let Some(xfs) = &self.xfs {
                    xfs.release(&container_id);
                }
                let mut state = self.state.lock().await;
                self.fail_executor_tasks(
                    &mut state,
                    &fw,
                    &ex,
                    TaskState::TaskFailed,
                    Reason::ContainerLaunchFailed,
                    &format!("Failed to launch container: {message}"),
                );
                self.forget_executor(&mut state, &fw, &ex);
                state.containers.remove(&container_id);
                self.finish_framework_shutdown(&mut state, &fw);
            }
        }
    }

    /// Waits for the executor's container to end, then cleans up after it.
    pub(super) fn watch_executor(self: &Arc<Self>, fw: String, ex: String, container_id: String) {
        let agent = self.clone();
        tokio::spawn(async move {
            let Ok(id) = ContainerPath::new(vec![container_id.clone()]) else {
                return;
            };
            let termination = agent.containerizer.wait(&id).await;
            agent
                .executor_terminated(&fw, &ex, &container_id, termination)
                .await;
        });
    }

    /// An executor that has not subscribed within `timeout` is destroyed.
    pub(super) fn registration_timer(
        self: &Arc<Self>,
        fw: String,
        ex: String,
        container_id: String,
        timeout: Duration,
    ) {
        let agent = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            // A stopping agent disconnected its executors itself; they
            // outlive it (see `reregistration_timer`).
            if agent.shutdown.is_cancelled() {
                return;
            }
            let registering = {
                let state = agent.state.lock().await;
                state.executor(&fw, &ex).is_some_and(|e| {
                    e.container_id == container_id && e.phase == Phase::Registering
                })
            };
            if registering {
                tracing::warn!(framework = %fw, executor = %ex, "executor did not subscribe within {timeout:?}: destroying it");
                {
                    let mut state = agent.state.lock().await;
                    agent.fail_executor_tasks(
                        &mut state,
                        &fw,
                        &ex,
                        TaskState::TaskFailed,
                        Reason::ExecutorRegistrationTimeout,
                        &format!(
                            "Executor did not register within {}",
                            tepui_proto::duration::format_duration(timeout)
                        ),
                    );
                    if let Some(e) = state.executor_mut(&fw, &ex) {
                        e.phase = Phase::Terminating;
                    }
                }
                if let Ok(id) = ContainerPath::new(vec![container_id]) {
                    let _ = agent.containerizer.kill(&id, Duration::ZERO).await;
                }
            }
        });
    }

    async fn executor_terminated(
        self: &Arc<Self>,
        fw: &str,
        ex: &str,
        container_id: &str,
        termination: Result<Termination, ContainerizerError>,
    ) {
        let (reason, message) = match &termination {
            Ok(t) if t.oom_killed => (
                Reason::ContainerLimitationMemory,
                crate::http::operator_api::oom_message(
                    t,
                    self.containerizer
                        .launch_spec(&t.container)
                        .map(|s| s.resources)
                        .as_ref(),
                ),
            ),
            Ok(t) => (
                Reason::ExecutorTerminated,
                match (t.exit_code, t.signal) {
                    (Some(code), _) => format!("Executor exited with status {code}"),
                    (_, Some(signal)) => format!("Executor terminated by signal {signal}"),
                    _ => t
                        .message
                        .clone()
                        .unwrap_or_else(|| "Executor terminated".into()),
                },
            ),
            Err(e) => (Reason::ExecutorTerminated, format!("Executor lost: {e}")),
        };
        // A container the agent killed for a limitation (disk) ends its
        // tasks with that reason, as Mesos's `Slave::executorTerminated`
        // does with the isolator's limitation.
        let limitation = {
            let mut state = self.state.lock().await;
            state.disk_usage.remove(container_id);
            state.limitations.remove(container_id)
        };
        if let Some(xfs) = &self.xfs {
            xfs.release(container_id);
        }
        let (reason, message) = limitation.unwrap_or((reason, message));
        tracing::info!(framework = %fw, executor = %ex, container = %container_id, why = %message, "executor terminated");
        let status = termination.as_ref().map(|t| t.status).ok();
        {
            let mut state = self.state.lock().await;
            let current = state
                .executor(fw, ex)
                .is_some_and(|e| e.container_id == container_id);
            if current {
                self.fail_executor_tasks(
                    &mut state,
                    fw,
                    ex,
                    TaskState::TaskFailed,
                    reason,
                    &message,
                );
                self.forget_executor(&mut state, fw, ex);
                self.finish_framework_shutdown(&mut state, fw);
            }
            self.mark_run_completed(fw, ex, container_id);
            self.schedule_gc(fw, ex, container_id);
            state.containers.remove(container_id);
        }
        if let Ok(id) = ContainerPath::new(vec![container_id.to_string()])
            && let Err(e) = self.containerizer.remove(&id).await
        {
            tracing::warn!(container = %container_id, "{e}");
        }
        if let Some(link) = &self.link {
            let call = tepui_proto::link::AgentCall {
                protocol_version: Some(crate::link::LINK_PROTOCOL_VERSION),
                r#type: Some(tepui_proto::link::agent_call::Type::ExecutorExited as i32),
                agent_id: self.agent_info().id,
                executor_exited: Some(tepui_proto::link::agent_call::ExecutorExited {
                    framework_id: FrameworkId {
                        value: fw.to_string(),
                    },
                    executor_id: ExecutorId {
                        value: ex.to_string(),
                    },
                    status,
                }),
                ..Default::default()
            };
            if let Err(e) = link.send(call).await {
                tracing::debug!("EXECUTOR_EXITED not delivered: {e}");
            }
        }
    }

    /// Records that a run's end was handled, so recovery leaves it alone.
    pub(super) fn mark_run_completed(&self, fw: &str, ex: &str, container: &str) {
        let path = self.work.run_file(fw, ex, container);
        match checkpoint::read_json::<RunRecord>(&path) {
            Ok(Some(mut record)) => {
                record.completed = true;
                if let Err(e) = checkpoint::write_json(&path, &record) {
                    tracing::error!("{e}");
                }
            }
            Ok(None) => {}
            Err(e) => tracing::error!("{e}"),
        }
    }

    /// Ends every unfinished task of an executor with an agent update:
    /// TASK_KILLED for those being killed, `state` for the rest.
    pub(super) fn fail_executor_tasks(
        &self,
        state: &mut State,
        fw: &str,
        ex: &str,
        task_state: TaskState,
        reason: Reason,
        message: &str,
    ) {
        let Some(executor) = state.executor(fw, ex) else {
            return;
        };
        let container = executor.container_id.clone();
        let unfinished: Vec<(String, bool)> = executor
            .tasks
            .iter()
            .filter(|(_, t)| !is_terminal(t.state))
            .map(|(id, _)| (id.clone(), executor.killing.contains(id)))
            .collect();
        for (task, killed) in unfinished {
            let (s, r) = if killed {
                (TaskState::TaskKilled, Reason::ExecutorTerminated)
            } else {
                (task_state, reason)
            };
            self.agent_update_locked(state, fw, ex, Some(&container), &task, s, r, message);
        }
    }

    /// A framework shut down (torn down at the master) whose last executor
    /// is gone is forgotten with its unacknowledged updates: the master
    /// dropped its tasks, so nobody would ever acknowledge them and they
    /// would be retried forever. Mesos's `Slave::removeFramework` does the
    /// same (`taskStatusUpdateManager->cleanup`).
    pub(super) fn finish_framework_shutdown(&self, state: &mut State, fw: &str) {
        let done = state
            .frameworks
            .get(fw)
            .is_some_and(|f| f.shutting_down && f.executors.is_empty());
        if !done {
            return;
        }
        if let Some(framework) = state.frameworks.remove(fw) {
            state.history.framework_done(framework.info);
        }
        let keys: Vec<TaskKey> = state
            .updates
            .pending_tasks()
            .filter(|(key, ..)| key.framework == fw)
            .map(|(key, ..)| key.clone())
            .collect();
        for key in &keys {
            state.updates.forget(key);
        }
        tracing::info!(framework = %fw, dropped_updates = keys.len(), "framework shut down");
    }

    /// Drops the executor from memory; its tasks' update streams live on
    /// until acknowledged.
    pub(super) fn forget_executor(&self, state: &mut State, fw: &str, ex: &str) {
        let agent_id = self.agent_info().id.unwrap_or_default();
        let Some(framework) = state.frameworks.get_mut(fw) else {
            return;
        };
        if let Some(executor) = framework.executors.remove(ex) {
            self.metrics
                .executors_terminated
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let done = super::views::completed_executor(&agent_id, &framework.info, executor);
            state.history.executor_done(fw, done);
        }
    }

    /// A status update written by the agent itself (the executor cannot).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn agent_update_locked(
        &self,
        state: &mut State,
        fw: &str,
        ex: &str,
        container: Option<&str>,
        task: &str,
        task_state: TaskState,
        reason: Reason,
        message: &str,
    ) {
        let status = TaskStatus {
            task_id: TaskId {
                value: task.to_string(),
            },
            state: task_state as i32,
            message: Some(message.to_string()),
            source: Some(Source::Agent as i32),
            reason: Some(reason as i32),
            agent_id: self.agent_info().id,
            executor_id: Some(ExecutorId {
                value: ex.to_string(),
            }),
            timestamp: Some(now_secs()),
            uuid: Some(new_uuid().into()),
            ..Default::default()
        };
        let container = container
            .map(str::to_string)
            .or_else(|| state.executor(fw, ex).map(|e| e.container_id.clone()))
            .unwrap_or_else(|| "unknown".to_string());
        let key = TaskKey {
            framework: fw.to_string(),
            task: task.to_string(),
        };
        let executor_id = ExecutorId {
            value: ex.to_string(),
        };
        let kept = status.clone();
        // Ids that cannot be a path never reach the disk (`../..` would
        // write outside the work dir); an update whose log cannot be written
        // (ENAMETOOLONG, ENOSPC...) still goes to the master, from memory:
        // a task must end, never hang in STAGING with its resources held.
        let pathable = [fw, ex, container.as_str(), task]
            .into_iter()
            .all(valid_component);
        let result = if pathable {
            let log = self.work.task_updates(fw, ex, &container, task);
            match state
                .updates
                .update(&key, &log, Some(&executor_id), status.clone())
            {
                Err(UpdateError::Checkpoint(e)) => {
                    tracing::error!(
                        "cannot checkpoint the agent's update for {task}: {e}; keeping it in memory"
                    );
                    state
                        .updates
                        .update_unlogged(&key, Some(&executor_id), status)
                }
                other => other,
            }
        } else {
            state
                .updates
                .update_unlogged(&key, Some(&executor_id), status)
        };
        let recorded = match result {
            Ok(Accepted::New { .. }) => {
                self.updates_ready.notify_one();
                true
            }
            Ok(Accepted::Duplicate) => false,
            Err(e) => {
                tracing::error!("cannot record the agent's update for {task}: {e}");
                false
            }
        };
        if let Some(entry) = state
            .executor_mut(fw, ex)
            .and_then(|e| e.tasks.get_mut(task))
        {
            let before = entry.state;
            if recorded {
                entry.record(&kept);
            }
            entry.state = task_state;
            self.metrics.task_moved(before, task_state);
        }
    }

    /// KILL_TASK.
    pub async fn kill_task(self: &Arc<Self>, fw: &str, task: &str, policy: Option<KillPolicy>) {
        let mut state = self.state.lock().await;
        let Some((ex, executor)) = state
            .executor_of_task(fw, task)
            .map(|(ex, e)| (ex.to_string(), e.phase))
        else {
            tracing::warn!(framework = %fw, task, "KILL_TASK for an unknown task");
            return;
        };
        let Some(executor_entry) = state.executor_mut(fw, &ex) else {
            return;
        };
        // Not handed to the executor yet: it never starts.
        let mut dropped = false;
        executor_entry.queued.retain_mut(|q| match q {
            Queued::Task(t) if t.task_id.value == task => {
                dropped = true;
                false
            }
            Queued::Group(g) if g.tasks.iter().any(|t| t.task_id.value == task) => {
                dropped = true;
                false
            }
            _ => true,
        });
        if dropped {
            let group: Vec<String> = executor_entry
                .tasks
                .iter()
                .filter(|(_, t)| !is_terminal(t.state))
                .map(|(id, _)| id.clone())
                .collect();
            let container = executor_entry.container_id.clone();
            for t in group.iter().filter(|t| *t == task) {
                self.agent_update_locked(
                    &mut state,
                    fw,
                    &ex,
                    Some(&container),
                    t,
                    TaskState::TaskKilled,
                    Reason::TaskKilledDuringLaunch,
                    "Killed before the executor started it",
                );
            }
            return;
        }
        if !executor_entry.killing.iter().any(|t| t == task) {
            executor_entry.killing.push(task.to_string());
        }
        let event = executor::Event {
            r#type: Some(executor::event::Type::Kill as i32),
            kill: Some(executor::event::Kill {
                task_id: TaskId {
                    value: task.to_string(),
                },
                kill_policy: policy,
            }),
            ..Default::default()
        };
        if !(executor == Phase::Running && executor_entry.send(event)) {
            tracing::info!(framework = %fw, task, "executor not subscribed; the kill is delivered when it is");
        }
    }

    /// SHUTDOWN_FRAMEWORK: every executor of the framework is asked to shut
    /// down and destroyed after the grace period.
    pub async fn shutdown_framework(self: &Arc<Self>, fw: &str) {
        let containers: Vec<String> = {
            let mut state = self.state.lock().await;
            let Some(framework) = state.frameworks.get_mut(fw) else {
                return;
            };
            framework.shutting_down = true;
            if framework.executors.is_empty() {
                self.finish_framework_shutdown(&mut state, fw);
                return;
            }
            let Some(framework) = state.frameworks.get_mut(fw) else {
                return;
            };
            framework
                .executors
                .values_mut()
                .map(|e| {
                    e.phase = Phase::Terminating;
                    e.send(executor::Event {
                        r#type: Some(executor::event::Type::Shutdown as i32),
                        ..Default::default()
                    });
                    e.container_id.clone()
                })
                .collect()
        };
        let grace = self.config.executor_shutdown_grace_period;
        for container in containers {
            if let Ok(id) = ContainerPath::new(vec![container]) {
                let _ = self.containerizer.kill(&id, grace).await;
            }
        }
    }
}

fn launch_event(work: &Queued) -> executor::Event {
    match work {
        Queued::Task(task) => executor::Event {
            r#type: Some(executor::event::Type::Launch as i32),
            launch: Some(executor::event::Launch {
                task: (**task).clone(),
            }),
            ..Default::default()
        },
        Queued::Group(group) => executor::Event {
            r#type: Some(executor::event::Type::LaunchGroup as i32),
            launch_group: Some(executor::event::LaunchGroup {
                task_group: group.clone(),
            }),
            ..Default::default()
        },
    }
}

pub(super) fn queued_event(work: &Queued) -> executor::Event {
    launch_event(work)
}

impl Agent {
    /// The user a container runs as, by Mesos's rules (slave.cpp,
    /// `Framework::launchExecutor` and `Slave::_run`): its own
    /// `command.user`, else the framework's user; with `--no-switch_user`
    /// the agent's own user. A user this host does not know fails the
    /// launch with a message naming it.
    pub(crate) fn run_user(
        &self,
        own: Option<String>,
        framework_user: &str,
    ) -> Result<Option<String>, String> {
        if !self.config.switch_user {
            return Ok(None);
        }
        let user = own
            .filter(|u| !u.is_empty())
            .or_else(|| (!framework_user.is_empty()).then(|| framework_user.to_string()));
        match user {
            Some(user) if !user_exists(&user) => Err(format!(
                "Failed to launch: the user '{user}' does not exist on this agent"
            )),
            user => Ok(user),
        }
    }
}

/// Whether the host knows `user`.
fn user_exists(user: &str) -> bool {
    let db = tepui_containerizer::spec::UserDb::Files {
        passwd: "/etc/passwd".into(),
        group: "/etc/group".into(),
    };
    tepui_containerizer::spec::resolve_user(user, &db).is_ok()
}
