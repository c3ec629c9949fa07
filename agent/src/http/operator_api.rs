//! `POST /api/v1`: the agent operator API. Executors use its container calls
//! (the default and command executors launch their tasks as nested
//! containers through it); operators and tools use the rest.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tepui_containerizer::spec::{ContainerKind, LaunchSpec, Limit, ResourceRequest};
use tepui_containerizer::supervisor::protocol::Termination;
use tepui_containerizer::{ContainerPath, ContainerizerError};
use tepui_proto::v1::agent::{Call, Response as AgentResponse, call, response};
use tepui_proto::v1::task_status::Reason;
use tepui_proto::v1::{
    CommandInfo, ContainerId, ContainerInfo, ContainerStatus, ExecutorId, FrameworkId, Resource,
    TaskState, VersionInfo, value,
};

use super::auth::Caller;
use super::{accepted_format, debug_api, decode_call, error, message_response};
use crate::daemon::Agent;
use crate::daemon::state::ExecutorKind;
use crate::paths::{nested_sandbox, valid_component};

/// The Mesos API level tepui implements; clients compare it to decide what
/// they may call.
pub const MESOS_VERSION: &str = "1.11.0";

/// `POST /api/v1`: a RecordIO request body is ATTACH_CONTAINER_INPUT's
/// stream; anything else is one Call.
pub async fn dispatch(
    State(agent): State<Arc<Agent>>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let streaming = super::header_str(&headers, "content-type")
        .is_some_and(|t| t.trim().starts_with("application/recordio"));
    if streaming {
        return super::io_api::attach_input(agent, caller, headers, body).await;
    }
    // One message: the server's body cap (`http_limits.max_body_bytes`);
    // the RecordIO input stream above caps each record instead.
    match axum::body::to_bytes(body, agent.config.http_limits.max_body_bytes).await {
        Ok(bytes) => handle(State(agent), Extension(caller), headers, bytes).await,
        Err(e) => error(413, format!("Cannot read the request body: {e}")),
    }
}

pub async fn handle(
    State(agent): State<Arc<Agent>>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (call, _) = match decode_call::<Call>(&headers, &body) {
        Ok(decoded) => decoded,
        Err(response) => return response,
    };
    if let Err(response) = super::auth::authorize_call(&agent, &caller, &call).await {
        return response;
    }
    use call::Type;
    let kind = call.r#type.and_then(|t| Type::try_from(t).ok());
    let streams = matches!(
        kind,
        Some(Type::LaunchNestedContainerSession | Type::AttachContainerOutput)
    );
    let format = match accepted_format(&headers, streams) {
        Ok(f) => f,
        Err(response) => return response,
    };
    let viewer = match kind {
        Some(Type::GetState | Type::GetTasks | Type::GetFrameworks | Type::GetExecutors) => {
            Some(agent.viewer(&caller).await)
        }
        _ => None,
    };
    let answer = |mut response: AgentResponse| {
        if let Some(viewer) = &viewer {
            viewer.filter(&mut response);
        }
        message_response(format, &response)
    };
    #[allow(deprecated)]
    match kind {
        Some(Type::GetHealth) => answer(AgentResponse {
            r#type: Some(response::Type::GetHealth as i32),
            get_health: Some(response::GetHealth { healthy: true }),
            ..Default::default()
        }),
        Some(Type::GetVersion) => answer(AgentResponse {
            r#type: Some(response::Type::GetVersion as i32),
            get_version: Some(response::GetVersion {
                version_info: version_info(),
            }),
            ..Default::default()
        }),
        Some(Type::GetFlags) => answer(AgentResponse {
            r#type: Some(response::Type::GetFlags as i32),
            get_flags: Some(response::GetFlags {
                flags: agent
                    .config
                    .flags
                    .iter()
                    .map(|(name, value)| tepui_proto::v1::Flag {
                        name: name.clone(),
                        value: Some(value.clone()),
                    })
                    .collect(),
            }),
            ..Default::default()
        }),
        Some(Type::GetAgent) => answer(AgentResponse {
            r#type: Some(response::Type::GetAgent as i32),
            get_agent: Some(response::GetAgent {
                agent_info: Some(agent.agent_info()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        Some(Type::GetState) => answer(agent.get_state().await),
        Some(Type::GetTasks) => {
            let state = agent.get_state().await;
            answer(AgentResponse {
                r#type: Some(response::Type::GetTasks as i32),
                get_tasks: state.get_state.and_then(|s| s.get_tasks),
                ..Default::default()
            })
        }
        Some(Type::GetContainers) => answer(get_containers(&agent, call.get_containers).await),
        Some(Type::LaunchContainer) => match call.launch_container {
            Some(c) => {
                launch(
                    &agent,
                    c.container_id,
                    c.command,
                    c.container,
                    c.resources,
                    c.limits,
                )
                .await
            }
            None => error(400, "Expecting 'launch_container' to be present"),
        },
        Some(Type::LaunchNestedContainer) => match call.launch_nested_container {
            Some(c) => {
                launch(
                    &agent,
                    c.container_id,
                    c.command,
                    c.container,
                    Vec::new(),
                    Default::default(),
                )
                .await
            }
            None => error(400, "Expecting 'launch_nested_container' to be present"),
        },
        Some(Type::WaitContainer) => match call.wait_container {
            Some(c) => wait(&agent, format, c.container_id, false).await,
            None => error(400, "Expecting 'wait_container' to be present"),
        },
        Some(Type::WaitNestedContainer) => match call.wait_nested_container {
            Some(c) => wait(&agent, format, c.container_id, true).await,
            None => error(400, "Expecting 'wait_nested_container' to be present"),
        },
        Some(Type::KillContainer) => match call.kill_container {
            Some(c) => kill(&agent, "kill_container", c.container_id, c.signal).await,
            None => error(400, "Expecting 'kill_container' to be present"),
        },
        Some(Type::KillNestedContainer) => match call.kill_nested_container {
            Some(c) => kill(&agent, "kill_nested_container", c.container_id, c.signal).await,
            None => error(400, "Expecting 'kill_nested_container' to be present"),
        },
        Some(Type::RemoveContainer) => match call.remove_container {
            Some(c) => remove(&agent, c.container_id).await,
            None => error(400, "Expecting 'remove_container' to be present"),
        },
        Some(Type::RemoveNestedContainer) => match call.remove_nested_container {
            Some(c) => remove(&agent, c.container_id).await,
            None => error(400, "Expecting 'remove_nested_container' to be present"),
        },
        Some(Type::LaunchNestedContainerSession) => match call.launch_nested_container_session {
            Some(c) => {
                super::io_api::launch_session(
                    &agent,
                    format,
                    c.container_id,
                    c.command,
                    c.container,
                )
                .await
            }
            None => error(
                400,
                "Expecting 'launch_nested_container_session' to be present",
            ),
        },
        Some(Type::AttachContainerOutput) => match call.attach_container_output {
            Some(c) => super::io_api::attach_output(&agent, format, c.container_id).await,
            None => error(400, "Expecting 'attach_container_output' to be present"),
        },
        Some(Type::AttachContainerInput) => error(
            415,
            "ATTACH_CONTAINER_INPUT takes a streaming request: Content-Type application/recordio",
        ),
        Some(Type::UpdateContainer) => match call.update_container {
            Some(c) => update(&agent, c).await,
            None => error(400, "Expecting 'update_container' to be present"),
        },
        Some(Type::PruneImages) => super::images_api::prune_images(&agent, call.prune_images).await,
        Some(Type::GetFrameworks) => answer(debug_api::get_frameworks(&agent).await),
        Some(Type::GetExecutors) => answer(debug_api::get_executors(&agent).await),
        Some(Type::GetMetrics) => answer(debug_api::get_metrics(&agent).await),
        Some(Type::GetLoggingLevel) => answer(debug_api::get_logging_level()),
        // tepui's agent has no resource providers, and so no operations
        // on their resources: the lists Mesos's agent gives without them
        // (src/slave/http.cpp, `Http::getOperations`,
        // `Http::getResourceProviders`) are empty.
        Some(Type::GetOperations) => answer(tepui_proto::v1::agent::Response {
            r#type: Some(tepui_proto::v1::agent::response::Type::GetOperations as i32),
            get_operations: Some(Default::default()),
            ..Default::default()
        }),
        Some(Type::GetResourceProviders) => answer(tepui_proto::v1::agent::Response {
            r#type: Some(tepui_proto::v1::agent::response::Type::GetResourceProviders as i32),
            get_resource_providers: Some(Default::default()),
            ..Default::default()
        }),
        // tepui runs no local resource providers (Mesos's CSI storage
        // providers need `--resource_provider_config_dir`): the config
        // calls answer as a Mesos agent without that flag does
        // (src/resource_provider/daemon.cpp, `LocalResourceProviderDaemonProcess::add`
        // / `update` / `remove`: "Missing required flag"), after the same
        // presence check; marking an unknown provider gone is a no-op
        // (`Slave::markResourceProviderGone` on a provider with no
        // resources).
        Some(
            kind @ (Type::AddResourceProviderConfig
            | Type::UpdateResourceProviderConfig
            | Type::RemoveResourceProviderConfig),
        ) => {
            let (present, field) = match kind {
                Type::AddResourceProviderConfig => (
                    call.add_resource_provider_config.is_some(),
                    "add_resource_provider_config",
                ),
                Type::UpdateResourceProviderConfig => (
                    call.update_resource_provider_config.is_some(),
                    "update_resource_provider_config",
                ),
                _ => (
                    call.remove_resource_provider_config.is_some(),
                    "remove_resource_provider_config",
                ),
            };
            if present {
                error(500, "Missing required flag --resource_provider_config_dir")
            } else {
                error(400, format!("Expecting '{field}' to be present"))
            }
        }
        Some(Type::MarkResourceProviderGone) => match call.mark_resource_provider_gone {
            Some(_) => StatusCode::OK.into_response(),
            None => error(400, "Expecting 'mark_resource_provider_gone' to be present"),
        },
        Some(Type::SetLoggingLevel) => match call.set_logging_level {
            Some(c) => {
                debug_api::set_logging_level(&c);
                StatusCode::OK.into_response()
            }
            None => error(400, "Expecting 'set_logging_level' to be present"),
        },
        Some(Type::ListFiles) => match call.list_files {
            Some(c) => debug_api::list_files(&agent, c.path)
                .await
                .map_or_else(|r| r, answer),
            None => error(400, "Expecting 'list_files' to be present"),
        },
        Some(Type::ReadFile) => match call.read_file {
            Some(c) => debug_api::read_file(&agent, c)
                .await
                .map_or_else(|r| r, answer),
            None => error(400, "Expecting 'read_file' to be present"),
        },
        Some(Type::Unknown) | None => error(400, "Expecting 'type' to be present"),
    }
}

pub fn version_info() -> VersionInfo {
    VersionInfo {
        version: MESOS_VERSION.to_string(),
        build_user: Some("tepui".to_string()),
        git_tag: Some(format!("tepui-{}", env!("CARGO_PKG_VERSION"))),
        ..Default::default()
    }
}

pub(super) fn container_path(id: &ContainerId) -> Result<ContainerPath, Response> {
    let path = ContainerPath::from_container_id(id).map_err(|e| error(400, e.to_string()))?;
    if let Some(bad) = path.parts().iter().find(|p| !valid_component(p)) {
        return Err(error(400, format!("invalid container id '{bad}'")));
    }
    Ok(path)
}

pub(super) fn containerizer_error(e: ContainerizerError) -> Response {
    match e {
        ContainerizerError::Unknown(id) => error(404, format!("Container {id} not found")),
        ContainerizerError::AlreadyExists(_) => StatusCode::ACCEPTED.into_response(),
        e @ (ContainerizerError::Spec { .. }
        | ContainerizerError::Limits { .. }
        | ContainerizerError::MissingRootfs { .. }
        | ContainerizerError::ShareCgroupsMismatch { .. }
        | ContainerizerError::ParentNotRunning { .. }
        | ContainerizerError::Image { .. }
        | ContainerizerError::Launch { .. }) => error(400, e.to_string()),
        e => error(500, e.to_string()),
    }
}

/// A container's resources and limits are finite and non-negative (Mesos's
/// `validateInputScalarValue`) and no more than the agent has in all
/// (`mem: 1e308` is a mistake, not a request): a 400 naming the field.
fn check_quantities(
    agent: &Agent,
    resources: &[Resource],
    limits: &std::collections::BTreeMap<String, value::Scalar>,
) -> Result<(), String> {
    let total = agent.agent_info().resources;
    let has = |name: &str| -> Option<f64> {
        let mut sum = None;
        for r in total.iter().filter(|r| r.name == name) {
            *sum.get_or_insert(0.0) += r.scalar.as_ref().map_or(0.0, |s| s.value);
        }
        sum
    };
    let named = resources
        .iter()
        .filter_map(|r| {
            r.scalar
                .as_ref()
                .map(|s| ("resources", r.name.as_str(), s.value))
        })
        .chain(limits.iter().map(|(n, s)| ("limits", n.as_str(), s.value)));
    for (field, name, value) in named {
        // Mesos: an infinite limit means "no limit".
        if field == "limits" && value == f64::INFINITY {
            continue;
        }
        if !value.is_finite() || value < 0.0 {
            return Err(format!(
                "'{field}' {name}: {value} must be a finite, non-negative number"
            ));
        }
        // A limit may be above the request (burst), but not above the host.
        if let Some(have) = has(name)
            && value > have
        {
            return Err(format!(
                "'{field}' {name}: {value} is more than this agent has ({have})"
            ));
        }
    }
    Ok(())
}

async fn launch(
    agent: &Arc<Agent>,
    id: ContainerId,
    command: Option<CommandInfo>,
    container: Option<ContainerInfo>,
    resources: Vec<Resource>,
    limits: std::collections::BTreeMap<String, value::Scalar>,
) -> Response {
    if let Err(message) = check_quantities(agent, &resources, &limits) {
        return error(400, message);
    }
    let path = match container_path(&id) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let (kind, sandbox, own_sandbox) = match path.parent() {
        Some(parent) => match agent.containerizer.launch_spec(&parent) {
            Some(spec) if runs_a_command_task(agent, &parent).await => {
                (ContainerKind::Task, spec.sandbox_dir.clone(), false)
            }
            Some(spec) => (
                ContainerKind::Task,
                nested_sandbox(&spec.sandbox_dir, path.leaf()),
                true,
            ),
            None => return error(400, format!("Unknown parent container {parent}")),
        },
        None => {
            if resources.is_empty() {
                return error(
                    400,
                    "a standalone container (no 'container_id.parent') needs 'resources'",
                );
            }
            (
                ContainerKind::Standalone,
                agent.work.standalone_sandbox(path.leaf()),
                true,
            )
        }
    };
    let command = command.unwrap_or_default();
    let mut spec = match LaunchSpec::from_mesos(&id, kind, &command, container.as_ref(), &sandbox) {
        Ok(spec) => spec,
        Err(e) => return error(400, format!("Invalid container: {e}")),
    };
    spec.resources = match ResourceRequest::from_mesos(&resources, &limits) {
        Ok(r) => r,
        Err(e) => return error(400, format!("Invalid resources: {e}")),
    };
    // A nested container without a user runs as its parent (Mesos's
    // http.cpp `_launchContainer`); none runs as anyone with
    // `--no-switch_user`.
    let inherited = path
        .parent()
        .and_then(|parent| agent.containerizer.launch_spec(&parent))
        .and_then(|parent| parent.user);
    spec.user = match agent.run_user(spec.user.take().or(inherited), "") {
        Ok(user) => user,
        Err(message) => return error(400, message),
    };
    spec.env
        .push(("MESOS_CONTAINER_ID".to_string(), path.leaf().to_string()));
    // A task's persistent volumes, at their container path in its sandbox
    // (a command task's is its executor's): the executors launch tasks
    // here with the task's resources.
    match crate::daemon::volumes::mounts(agent.work.root(), &resources, spec.user.as_deref()) {
        Ok(volumes) => spec.volumes.extend(volumes),
        Err(e) => return error(400, format!("Invalid persistent volume: {e}")),
    }
    if agent.containerizer.knows(&path).await {
        return StatusCode::ACCEPTED.into_response();
    }
    // A nested container with its own sandbox gets it as its user's; a
    // command task shares (and keeps) its executor's.
    if own_sandbox {
        let prepared = crate::daemon::sandbox::prepare(&sandbox, spec.user.as_deref());
        let passable = match (&prepared, path.parent()) {
            (Ok(()), Some(_)) => sandbox
                .parent()
                .and_then(|containers| containers.parent())
                .map_or(Ok(()), |parent| {
                    crate::daemon::sandbox::let_through(parent, spec.user.as_deref())
                }),
            _ => Ok(()),
        };
        if let Err(message) = prepared.and(passable) {
            return error(400, message);
        }
    }
    if let Err(message) = agent
        .fetch_uris(&command.uris, &sandbox, spec.user.as_deref())
        .await
    {
        return error(400, message);
    }
    if spec.tty.is_some() && !path.is_top_level() {
        return super::io_api::launch_tty_task(agent, path, spec).await;
    }
    // Run to the end even if the caller hangs up (an executor killed by a
    // TEARDOWN mid-pull): a launch dropped half-way would leave its image
    // rootfs mounted with nobody to release it; finished, it either fails
    // (and releases it) or yields a container its pod's removal cleans up.
    let launcher = agent.clone();
    let launched = tokio::spawn(async move { launcher.containerizer.launch(spec).await }).await;
    match launched {
        Ok(Ok(_)) => StatusCode::OK.into_response(),
        Ok(Err(e)) => {
            // The caller (an executor) reports it to the scheduler; the
            // operator reading the agent's log sees it too.
            tracing::warn!(container = %path, "launch failed: {e}");
            containerizer_error(e)
        }
        Err(e) => error(500, format!("the launch failed: {e}")),
    }
}

/// Whether `parent` is the container of a built-in command executor. Its
/// task then works in the executor's own sandbox and writes to the
/// executor's `stdout`/`stderr`, where Mesos's command executor, which runs
/// the task as its child, leaves them (`src/launcher/executor.cpp`,
/// `CommandExecutor::launch`): the URIs fetched for the task, its output and
/// its files are where every Mesos tool looks for a command task's.
async fn runs_a_command_task(agent: &Arc<Agent>, parent: &ContainerPath) -> bool {
    parent.is_top_level()
        && agent
            .state
            .lock()
            .await
            .executor_of_container(parent.leaf())
            .is_some_and(|e| e.kind == ExecutorKind::Command)
}

/// UPDATE_CONTAINER (a tepui extension): live requests and limits.
async fn update(agent: &Arc<Agent>, c: call::UpdateContainer) -> Response {
    let path = match container_path(&c.container_id) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let resources = match ResourceRequest::from_mesos(&c.resources, &c.limits) {
        Ok(r) => r,
        Err(e) => return error(400, format!("Invalid resources: {e}")),
    };
    match agent.containerizer.update(&path, resources).await {
        Ok(_) => StatusCode::OK.into_response(),
        // Below current use, or a value the kernel refuses: nothing changed.
        Err(e @ ContainerizerError::Cgroup { .. }) => error(409, e.to_string()),
        Err(e) => containerizer_error(e),
    }
}

/// The message of an OOM kill, in the words of Mesos's memory isolator
/// (`MemorySubsystemProcess::oom` in
/// src/slave/containerizer/mesos/isolators/cgroups/subsystems/memory.cpp:
/// "Memory limit exceeded: Requested: ..MB Maximum Used: ..MB"), naming the
/// container. `requested` is the container's own memory limit (its request
/// when it has no limit); with `share_cgroups` the pod's limit applied.
pub fn oom_message(t: &Termination, requested: Option<&ResourceRequest>) -> String {
    const MB: u64 = 1 << 20;
    let limit = requested.and_then(|r| match r.mem_limit_mb {
        Some(Limit::Finite(mb)) => Some(format!("{}MB", mb.round() as u64)),
        Some(Limit::Unlimited) => Some("unlimited".to_string()),
        None => r.mem_mb.map(|mb| format!("{}MB", mb.round() as u64)),
    });
    let peak = t
        .peak_memory_bytes
        .map(|b| format!("{}MB", b.div_ceil(MB)))
        .unwrap_or_else(|| "unknown".to_string());
    format!(
        "Memory limit exceeded: Requested: {} Maximum Used: {peak} (container {} was OOM-killed)",
        limit.unwrap_or_else(|| "unknown".to_string()),
        t.container
    )
}

/// Mesos's WAIT_CONTAINER answer for a termination; `requested` is the
/// container's resource request (for the OOM message).
pub fn wait_answer(
    t: &Termination,
    requested: Option<&ResourceRequest>,
) -> (i32, Option<TaskState>, Option<Reason>, Option<String>) {
    if t.oom_killed {
        return (
            t.status,
            Some(TaskState::TaskFailed),
            Some(Reason::ContainerLimitationMemory),
            Some(oom_message(t, requested)),
        );
    }
    // An operator's KILL (`tepui kill`): executors report the task killed,
    // not failed by a signal.
    if t.killed_by_request {
        return (
            t.status,
            Some(TaskState::TaskKilled),
            None,
            t.message.clone(),
        );
    }
    (t.status, None, None, t.message.clone())
}

#[allow(deprecated)] // WAIT_NESTED_CONTAINER: existing executors still call it.
async fn wait(
    agent: &Arc<Agent>,
    format: tepui_proto::content::ResponseFormat,
    id: ContainerId,
    nested: bool,
) -> Response {
    let path = match container_path(&id) {
        Ok(p) => p,
        Err(r) => return r,
    };
    match agent.containerizer.wait(&path).await {
        Ok(t) => {
            let requested = agent.containerizer.launch_spec(&path).map(|s| s.resources);
            let (exit_status, state, reason, message) = wait_answer(&t, requested.as_ref());
            let mut response = AgentResponse::default();
            if nested {
                response.r#type = Some(response::Type::WaitNestedContainer as i32);
                response.wait_nested_container = Some(response::WaitNestedContainer {
                    exit_status: Some(exit_status),
                    state: state.map(|s| s as i32),
                    reason: reason.map(|r| r as i32),
                    message,
                    ..Default::default()
                });
            } else {
                response.r#type = Some(response::Type::WaitContainer as i32);
                response.wait_container = Some(response::WaitContainer {
                    exit_status: Some(exit_status),
                    state: state.map(|s| s as i32),
                    reason: reason.map(|r| r as i32),
                    message,
                    ..Default::default()
                });
            }
            message_response(format, &response)
        }
        Err(e) => containerizer_error(e),
    }
}

async fn kill(agent: &Arc<Agent>, call: &str, id: ContainerId, signal: Option<i32>) -> Response {
    let signal = signal.unwrap_or(libc::SIGKILL);
    // A number kill(2) refuses (EINVAL) is the caller's mistake: a 400
    // naming the field, not the 500 of a failed kill.
    if !(1..=libc::SIGRTMAX()).contains(&signal) {
        return error(
            400,
            format!(
                "'{call}.signal' {signal} is not a signal number (1..={})",
                libc::SIGRTMAX()
            ),
        );
    }
    let path = match container_path(&id) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let result = if signal == libc::SIGKILL {
        agent.containerizer.kill(&path, Duration::ZERO).await
    } else {
        agent.containerizer.signal(&path, signal).await
    };
    match result {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => containerizer_error(e),
    }
}

async fn remove(agent: &Arc<Agent>, id: ContainerId) -> Response {
    let path = match container_path(&id) {
        Ok(p) => p,
        Err(r) => return r,
    };
    match agent.containerizer.remove(&path).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => containerizer_error(e),
    }
}

async fn get_containers(agent: &Arc<Agent>, options: Option<call::GetContainers>) -> AgentResponse {
    let options = options.unwrap_or_default();
    let show_nested = options.show_nested.unwrap_or(false);
    let show_standalone = options.show_standalone.unwrap_or(false);
    let owners = agent.container_owners().await;
    let mut containers = Vec::new();
    for state in agent.containerizer.list().await {
        if state.termination.is_some() {
            continue;
        }
        let id = &state.container;
        if id.is_nested() && !show_nested {
            continue;
        }
        let owner = owners.get(id.pod());
        if owner.is_none() && !show_standalone {
            continue;
        }
        let mut statistics = agent.containerizer.stats(id).await.ok();
        if let Some(s) = statistics.as_mut() {
            agent.add_disk_statistics(id, s).await;
        }
        containers.push(response::get_containers::Container {
            framework_id: owner.map(|(fw, _, _)| FrameworkId { value: fw.clone() }),
            executor_id: owner.map(|(_, ex, _)| ExecutorId { value: ex.clone() }),
            executor_name: owner.and_then(|(_, _, name)| name.clone()),
            container_id: id.to_container_id(),
            container_status: Some(ContainerStatus {
                container_id: Some(id.to_container_id()),
                executor_pid: state.pid.and_then(|p| u32::try_from(p).ok()),
                ..Default::default()
            }),
            resource_statistics: statistics,
        });
    }
    AgentResponse {
        r#type: Some(response::Type::GetContainers as i32),
        get_containers: Some(response::GetContainers { containers }),
        ..Default::default()
    }
}
