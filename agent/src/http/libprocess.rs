//! The agent's libprocess endpoint: executors built on libmesos's
//! `MesosExecutorDriver` (and its re-implementations) find the agent
//! through `MESOS_SLAVE_PID` and POST protobuf messages to
//! `/slave(1)/<message name>` with a `Libprocess-From` naming their own
//! pid; the agent answers with POSTs to that pid. Everything is translated
//! to and from the executor HTTP API's calls and events, so one executor
//! state machine serves both (src/slave/slave.cpp installs the same
//! handlers in `Slave::initialize`: `registerExecutor`, `statusUpdate`,
//! `executorMessage`, and `schedulerMessage` for a scheduler's
//! FrameworkToExecutorMessage sent straight to the agent).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use prost::Message as _;
use tepui_proto::libprocess_peer::Peer;
use tepui_proto::v0::{self, Upid};
use tepui_proto::v1::executor::{self, call, event};
use tepui_proto::v1::{AgentId, ExecutorId, FrameworkId, FrameworkInfo};

use super::auth::Caller;
use crate::daemon::Agent;
use crate::peer::Origin;

/// Messages queued for one executor at most; one that stops reading is
/// disconnected.
const EXECUTOR_QUEUE: usize = 1024;

/// The executors registered over libprocess: (framework, executor) ->
/// their pid and the subscription of the agent's state they hold.
#[derive(Default)]
pub struct Executors {
    inner: std::sync::Mutex<HashMap<(String, String), (Upid, u64)>>,
}

impl Executors {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), (Upid, u64)>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Who sent a libprocess message (3rdparty/libprocess/src/process.cpp,
/// `parse()`): `Libprocess-From`, else `User-Agent: libprocess/<pid>`.
fn sender(headers: &HeaderMap) -> Option<Result<Upid, String>> {
    let from = headers
        .get("libprocess-from")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| {
            headers
                .get_all("user-agent")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(|ua| ua.strip_prefix("libprocess/").map(str::to_string))
        })?;
    Some(from.parse())
}

/// Whether the caller may speak for executor `ex` of framework `fw`: the
/// rules of the executor HTTP API, without tokens (libprocess carries
/// none): a process in a pod only for that pod's executor; with executor
/// authentication on, nobody else.
async fn may_speak_for(agent: &Agent, caller: &Caller, fw: &str, ex: &str) -> Result<(), String> {
    if caller.confinement() == super::auth::Confinement::Remote {
        return Err("a caller on another host may not speak for an executor of this agent".into());
    }
    match &caller.origin {
        Origin::Unidentified => Err("the calling process could not be identified".into()),
        Origin::Pod { pod, .. } => {
            let owner = super::tenancy::pod_owner(agent, pod).await;
            if owner.is_some_and(|(f, e)| f == fw && e == ex) {
                Ok(())
            } else {
                Err(format!(
                    "a process in container '{pod}' may not speak for executor '{ex}' of framework '{fw}'"
                ))
            }
        }
        _ if agent.executor_auth_required() => {
            Err("executor authentication is on and a libprocess executor carries no token".into())
        }
        _ => Ok(()),
    }
}

/// `POST /slave(1)/<name>`: 202 once taken, 404 for a name the agent does
/// not handle, 400 for a sender or body that does not parse, 403 for a
/// caller that may not speak for the executor it names.
pub async fn handle(
    State(agent): State<Arc<Agent>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let from = match sender(&headers) {
        None => return StatusCode::NOT_FOUND.into_response(),
        Some(Err(reason)) => {
            tracing::warn!(%name, %reason, "dropping a libprocess message whose sender cannot be parsed");
            return (StatusCode::BAD_REQUEST, reason).into_response();
        }
        Some(Ok(from)) => from,
    };
    match receive(&agent, &caller, from, &name, &body).await {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err((code, reason)) => {
            tracing::warn!(%name, %reason, "refusing a libprocess message");
            (code, reason).into_response()
        }
    }
}

type Refused = (StatusCode, String);

fn undecodable(name: &str, e: prost::DecodeError) -> Refused {
    (
        StatusCode::BAD_REQUEST,
        format!("cannot decode {name}: {e}"),
    )
}

async fn receive(
    agent: &Arc<Agent>,
    caller: &Caller,
    from: Upid,
    name: &str,
    body: &[u8],
) -> Result<(), Refused> {
    let short = name
        .strip_prefix(v0::PREFIX)
        .ok_or((StatusCode::NOT_FOUND, format!("no message '{name}'")))?;
    let forbidden = |e: String| (StatusCode::FORBIDDEN, e);
    match short {
        "RegisterExecutorMessage" => {
            let m = v0::RegisterExecutorMessage::decode(body).map_err(|e| undecodable(name, e))?;
            let (fw, ex) = (m.framework_id.value.clone(), m.executor_id.value.clone());
            may_speak_for(agent, caller, &fw, &ex)
                .await
                .map_err(forbidden)?;
            let subscribe = executor_call(
                &m.framework_id,
                &m.executor_id,
                executor::call::Type::Subscribe,
            );
            spawn_register(agent, from, subscribe, false);
        }
        "ReregisterExecutorMessage" => {
            // After an agent restart (slave.cpp `reregisterExecutor`): the
            // tasks it runs and the updates it never saw acknowledged.
            let m =
                v0::ReregisterExecutorMessage::decode(body).map_err(|e| undecodable(name, e))?;
            let (fw, ex) = (m.framework_id.value.clone(), m.executor_id.value.clone());
            may_speak_for(agent, caller, &fw, &ex)
                .await
                .map_err(forbidden)?;
            let mut subscribe = executor_call(
                &m.framework_id,
                &m.executor_id,
                executor::call::Type::Subscribe,
            );
            subscribe.subscribe = Some(call::Subscribe {
                unacknowledged_tasks: m.tasks,
                unacknowledged_updates: m
                    .updates
                    .into_iter()
                    .map(|u| call::Update {
                        status: status_of(u),
                    })
                    .collect(),
            });
            spawn_register(agent, from, subscribe, true);
        }
        "StatusUpdateMessage" => {
            let m = v0::StatusUpdateMessage::decode(body).map_err(|e| undecodable(name, e))?;
            let update = m.update;
            let fw = update.framework_id.clone();
            let ex = update.executor_id.clone().unwrap_or_default();
            registered_sender(agent, caller, &from, &fw.value, &ex.value).await?;
            let mut c = executor_call(&fw, &ex, executor::call::Type::Update);
            c.update = Some(call::Update {
                status: status_of(update),
            });
            agent
                .executor_update(&c)
                .await
                .map_err(|e| (StatusCode::BAD_REQUEST, e.message))?;
        }
        "ExecutorToFrameworkMessage" => {
            let m =
                v0::ExecutorToFrameworkMessage::decode(body).map_err(|e| undecodable(name, e))?;
            registered_sender(
                agent,
                caller,
                &from,
                &m.framework_id.value,
                &m.executor_id.value,
            )
            .await?;
            let mut c = executor_call(
                &m.framework_id,
                &m.executor_id,
                executor::call::Type::Message,
            );
            c.message = Some(call::Message { data: m.data });
            agent
                .executor_message(&c)
                .await
                .map_err(|e| (StatusCode::BAD_REQUEST, e.message))?;
        }
        "FrameworkToExecutorMessage" => {
            // From a scheduler driver that cached this agent's pid from an
            // offer (`Slave::schedulerMessage`).
            let m =
                v0::FrameworkToExecutorMessage::decode(body).map_err(|e| undecodable(name, e))?;
            if matches!(caller.origin, Origin::Pod { .. } | Origin::Unidentified) {
                // A task is no scheduler: only its own executor's messages.
                may_speak_for(agent, caller, &m.framework_id.value, &m.executor_id.value)
                    .await
                    .map_err(forbidden)?;
            }
            agent
                .message_to_executor(&m.framework_id.value, &m.executor_id.value, m.data)
                .await;
        }
        _ => return Err((StatusCode::NOT_FOUND, format!("no message '{name}'"))),
    }
    Ok(())
}

/// The caller is the executor that registered from `from`.
async fn registered_sender(
    agent: &Agent,
    caller: &Caller,
    from: &Upid,
    fw: &str,
    ex: &str,
) -> Result<(), Refused> {
    may_speak_for(agent, caller, fw, ex)
        .await
        .map_err(|e| (StatusCode::FORBIDDEN, e))?;
    let registered = agent
        .v0_executors
        .lock()
        .get(&(fw.to_string(), ex.to_string()))
        .map(|(pid, _)| pid == from);
    match registered {
        Some(true) => Ok(()),
        _ => Err((
            StatusCode::FORBIDDEN,
            format!("{from} is not the registered driver of executor '{ex}' of framework '{fw}'"),
        )),
    }
}

/// A v0 StatusUpdate as the v1 UPDATE's status: the update's uuid is the
/// status's (what the ack will carry back).
fn status_of(update: v0::StatusUpdate) -> tepui_proto::v1::TaskStatus {
    let mut status = update.status;
    if let Some(uuid) = update.uuid.filter(|u| !u.is_empty()) {
        status.uuid = Some(uuid);
    }
    if status.timestamp.is_none() {
        status.timestamp = Some(update.timestamp);
    }
    status
}

fn executor_call(fw: &FrameworkId, ex: &ExecutorId, kind: executor::call::Type) -> executor::Call {
    executor::Call {
        framework_id: fw.clone(),
        executor_id: ex.clone(),
        r#type: Some(kind as i32),
        ..Default::default()
    }
}

fn spawn_register(agent: &Arc<Agent>, from: Upid, subscribe: executor::Call, again: bool) {
    let agent = agent.clone();
    tokio::spawn(async move { register(agent, from, subscribe, again).await });
}

/// The agent's own pid, the sender of what it sends.
fn agent_pid(agent: &Agent) -> String {
    format!("slave(1)@{}", agent.endpoint())
}

/// Connects to the executor's pid (an unreachable one is not
/// registered), subscribes it, and forwards its events.
async fn register(agent: Arc<Agent>, from: Upid, subscribe: executor::Call, again: bool) {
    let fw = subscribe.framework_id.value.clone();
    let ex = subscribe.executor_id.value.clone();
    let (peer, exited) = match Peer::open(from.clone(), EXECUTOR_QUEUE).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(framework = %fw, executor = %ex, %from, error = %e, "not registering a libprocess executor: its pid cannot be reached");
            return;
        }
    };
    let (generation, events) = match agent.executor_subscribe(&subscribe).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(framework = %fw, executor = %ex, %from, error = %e.message, "refusing a libprocess executor");
            let m = v0::ShutdownExecutorMessage {
                executor_id: Some(subscribe.executor_id.clone()),
                framework_id: Some(subscribe.framework_id.clone()),
            };
            let _ = peer.send(
                &agent_pid(&agent),
                "mesos.internal.ShutdownExecutorMessage",
                &m.encode_to_vec(),
            );
            return;
        }
    };
    agent
        .v0_executors
        .lock()
        .insert((fw.clone(), ex.clone()), (from.clone(), generation));
    checkpoint_pid(&agent, &fw, &ex, &from).await;
    tracing::info!(framework = %fw, executor = %ex, %from, "libprocess executor registered");
    forward(agent, fw, ex, generation, events, peer, exited, again).await;
}

/// Sends the executor's events to its driver until the subscription ends
/// or the driver is gone; then the executor is disconnected, as when an
/// HTTP executor's stream closes (slave.cpp `Slave::exited`).
#[allow(clippy::too_many_arguments)]
async fn forward(
    agent: Arc<Agent>,
    fw: String,
    ex: String,
    generation: u64,
    mut events: tokio::sync::mpsc::UnboundedReceiver<executor::Event>,
    peer: Peer,
    mut exited: tokio::sync::oneshot::Receiver<String>,
    again: bool,
) {
    let me = agent_pid(&agent);
    let mut framework_info = FrameworkInfo::default();
    let mut agent_id = AgentId {
        value: agent.agent_id(),
    };
    let fid = FrameworkId { value: fw.clone() };
    let eid = ExecutorId { value: ex.clone() };
    let why = loop {
        let event = tokio::select! {
            _ = agent.shutdown.cancelled() => break "the agent stops".to_string(),
            reason = &mut exited => break reason.unwrap_or_else(|_| "its connection ended".into()),
            event = events.recv() => match event {
                Some(e) => e,
                None => break "the subscription ended".to_string(),
            },
        };
        let kind = event
            .r#type
            .and_then(|t| event::Type::try_from(t).ok())
            .unwrap_or(event::Type::Unknown);
        let message: Option<(&str, Vec<u8>)> = match kind {
            event::Type::Subscribed => event.subscribed.map(|s| {
                framework_info = s.framework_info.clone();
                if let Some(id) = &s.agent_info.id {
                    agent_id = id.clone();
                }
                if again {
                    let m = v0::ExecutorReregisteredMessage {
                        slave_id: agent_id.clone(),
                        slave_info: s.agent_info,
                    };
                    ("ExecutorReregisteredMessage", m.encode_to_vec())
                } else {
                    let m = v0::ExecutorRegisteredMessage {
                        executor_info: s.executor_info,
                        framework_id: fid.clone(),
                        framework_info: s.framework_info,
                        slave_id: agent_id.clone(),
                        slave_info: s.agent_info,
                    };
                    ("ExecutorRegisteredMessage", m.encode_to_vec())
                }
            }),
            event::Type::Launch => event.launch.map(|l| {
                let m = v0::RunTaskMessage {
                    framework_id: Some(fid.clone()),
                    framework: framework_info.clone(),
                    task: l.task,
                    pid: None,
                };
                ("RunTaskMessage", m.encode_to_vec())
            }),
            event::Type::Kill => event.kill.map(|k| {
                let m = v0::KillTaskMessage {
                    framework_id: fid.clone(),
                    task_id: k.task_id,
                    kill_policy: k.kill_policy,
                };
                ("KillTaskMessage", m.encode_to_vec())
            }),
            event::Type::Acknowledged => event.acknowledged.map(|a| {
                let m = v0::StatusUpdateAcknowledgementMessage {
                    slave_id: agent_id.clone(),
                    framework_id: fid.clone(),
                    task_id: a.task_id,
                    uuid: a.uuid,
                };
                ("StatusUpdateAcknowledgementMessage", m.encode_to_vec())
            }),
            event::Type::Message => event.message.map(|msg| {
                let m = v0::FrameworkToExecutorMessage {
                    slave_id: agent_id.clone(),
                    framework_id: fid.clone(),
                    executor_id: eid.clone(),
                    data: msg.data,
                };
                ("FrameworkToExecutorMessage", m.encode_to_vec())
            }),
            event::Type::Shutdown => {
                let m = v0::ShutdownExecutorMessage {
                    executor_id: Some(eid.clone()),
                    framework_id: Some(fid.clone()),
                };
                Some(("ShutdownExecutorMessage", m.encode_to_vec()))
            }
            event::Type::Error => event.error.map(|e| {
                let m = v0::FrameworkErrorMessage { message: e.message };
                ("FrameworkErrorMessage", m.encode_to_vec())
            }),
            event::Type::LaunchGroup => {
                tracing::warn!(framework = %fw, executor = %ex, "a task group cannot run on a libprocess executor: dropped");
                None
            }
            _ => None,
        };
        if let Some((name, body)) = message
            && peer
                .send(&me, &format!("{}{name}", v0::PREFIX), &body)
                .is_err()
        {
            break "the executor stopped reading: its queue is full".to_string();
        }
    };
    tracing::info!(framework = %fw, executor = %ex, pid = %peer.pid, reason = %why, "libprocess executor gone");
    agent.executor_disconnected(&fw, &ex, generation).await;
    let mut registered = agent.v0_executors.lock();
    if registered
        .get(&(fw.clone(), ex.clone()))
        .is_some_and(|(_, g)| *g == generation)
    {
        registered.remove(&(fw, ex));
    }
}

/// Where an executor's libprocess pid is checkpointed, as Mesos keeps it
/// (src/slave/paths.cpp, `getLibprocessPidPath`: `runs/<container>/pids/
/// libprocess.pid`), so that a restarted agent can ask it to re-register.
fn pid_file(agent: &Agent, fw: &str, ex: &str, container: &str) -> std::path::PathBuf {
    agent
        .work
        .run_meta(fw, ex, container)
        .join("pids")
        .join("libprocess.pid")
}

async fn checkpoint_pid(agent: &Agent, fw: &str, ex: &str, pid: &Upid) {
    let container = {
        let state = agent.state.lock().await;
        state.executor(fw, ex).map(|e| e.container_id.clone())
    };
    let Some(container) = container else { return };
    let file = pid_file(agent, fw, ex, &container);
    let written = match file.parent() {
        Some(dir) => match tokio::fs::create_dir_all(dir).await {
            Ok(()) => tokio::fs::write(&file, pid.to_string()).await,
            Err(e) => Err(e),
        },
        None => Ok(()),
    };
    if let Err(e) = written {
        tracing::warn!(framework = %fw, executor = %ex, error = %e, "cannot checkpoint the executor's pid: it will not be asked to re-register after an agent restart");
    }
}

/// After an agent restart, a recovered executor that registered over
/// libprocess is told to re-register (slave.cpp, `Slave::_recover`:
/// `ReconnectExecutorMessage` to each checkpointed pid); it answers with
/// ReregisterExecutorMessage. HTTP executors reconnect by themselves.
pub(crate) fn reconnect(agent: &Arc<Agent>, fw: &str, ex: &str, container: &str) {
    let Ok(text) = std::fs::read_to_string(pid_file(agent, fw, ex, container)) else {
        return;
    };
    let pid: Upid = match text.parse() {
        Ok(pid) => pid,
        Err(e) => {
            tracing::warn!(framework = %fw, executor = %ex, error = %e, "unreadable checkpointed executor pid");
            return;
        }
    };
    let agent = agent.clone();
    let (fw, ex) = (fw.to_string(), ex.to_string());
    tokio::spawn(async move {
        match Peer::open(pid.clone(), 1).await {
            Ok((peer, _exited)) => {
                let m = v0::ReconnectExecutorMessage {
                    slave_id: AgentId {
                        value: agent.agent_id(),
                    },
                };
                let _ = peer.send(
                    &agent_pid(&agent),
                    "mesos.internal.ReconnectExecutorMessage",
                    &m.encode_to_vec(),
                );
                tracing::info!(framework = %fw, executor = %ex, %pid, "asked a libprocess executor to re-register");
            }
            Err(e) => {
                tracing::warn!(framework = %fw, executor = %ex, %pid, error = %e, "cannot reach a recovered libprocess executor");
            }
        }
    });
}
