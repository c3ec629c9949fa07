//! The operator API's container I/O calls: LAUNCH_NESTED_CONTAINER_SESSION
//! (a debug container whose output streams back on the same connection and
//! which dies with it), ATTACH_CONTAINER_INPUT (a RecordIO request body fed
//! to a session's stdin or terminal) and ATTACH_CONTAINER_OUTPUT (any number
//! of attachers; for containers without a session, their live log output).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use futures_util::StreamExt;
use tepui_containerizer::ContainerPath;
use tepui_containerizer::spec::{ContainerKind, LaunchSpec, WindowSize};
use tepui_proto::content::{self, RequestFormat, ResponseFormat, encode_record};
use tepui_proto::recordio;
use tepui_proto::v1::agent::{Call, ProcessIo, call, process_io};
use tepui_proto::v1::{CommandInfo, ContainerId, ContainerInfo, DurationInfo};
use tokio::sync::mpsc;

use super::auth::Caller;
use super::operator_api::{container_path, containerizer_error};
use super::{error, header_str, stream_headers};
use crate::daemon::Agent;
use crate::daemon::sessions::{AttachError, Chunk, Input, Stream};
use crate::log_tail::LogTail;

/// Heartbeats on output streams keep idle sessions alive through proxies.
const HEARTBEAT: Duration = Duration::from_secs(30);
/// A terminated session container stays (so WAIT_CONTAINER answers) this
/// long before the agent removes it.
const KEEP_ENDED_SESSION: Duration = Duration::from_secs(300);
/// Longest ATTACH_CONTAINER_INPUT record.
const MAX_INPUT_RECORD: usize = 1 << 20;

/// LAUNCH_NESTED_CONTAINER_SESSION.
pub async fn launch_session(
    agent: &Arc<Agent>,
    format: ResponseFormat,
    id: ContainerId,
    command: Option<CommandInfo>,
    container: Option<ContainerInfo>,
) -> Response {
    let path = match container_path(&id) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Some(parent) = path.parent() else {
        return error(
            400,
            "a session container must be nested: 'container_id.parent' is required",
        );
    };
    let Some(parent_spec) = agent.containerizer.launch_spec(&parent) else {
        return error(404, format!("Container {parent} not found"));
    };
    let command = command.unwrap_or_default();
    if command.value.is_none() {
        return error(400, "'command.value' is required");
    }
    let mut spec = match LaunchSpec::from_mesos(
        &id,
        ContainerKind::Debug,
        &command,
        container.as_ref(),
        &parent_spec.sandbox_dir,
    ) {
        Ok(spec) => spec,
        Err(e) => return error(400, format!("Invalid container: {e}")),
    };
    // Like `docker exec`: the parent's environment and user unless the
    // call says otherwise.
    spec.env = parent_spec.env.clone();
    spec.env.extend(parent_spec.environment.iter().cloned());
    if spec.user.is_none() {
        spec.user = parent_spec.user.clone();
    }
    let (_, ends) = match agent.containerizer.launch_session(spec).await {
        Ok(launched) => launched,
        Err(e) => return containerizer_error(e),
    };
    tracing::info!(container = %path, "session launched");
    let primary = agent.sessions.start(path.clone(), ends);
    let guard = SessionGuard {
        agent: agent.clone(),
        container: path.clone(),
        ended: false,
    };
    let waiter = {
        let agent = agent.clone();
        let path = path.clone();
        async move {
            let _ = agent.containerizer.wait(&path).await;
        }
    };
    output_response(format, primary, Some((guard, Box::pin(waiter))), agent)
}

/// A task container launched with a terminal (`ContainerInfo.tty_info`,
/// from either built-in executor's LAUNCH_CONTAINER). In Mesos the I/O
/// switchboard holds the terminal (src/slave/containerizer/mesos/io/
/// switchboard.cpp, `IOSwitchboardServerProcess`): everything the task
/// writes goes to its `stdout` log (a terminal has one stream) and
/// ATTACH_CONTAINER_INPUT / OUTPUT reach the terminal while it runs. Here
/// the agent holds it as a session that no connection owns: the task lives
/// until it ends or is killed, as any task. (The terminal does not survive
/// an agent restart, unlike Mesos's switchboard process.)
pub async fn launch_tty_task(
    agent: &Arc<Agent>,
    path: ContainerPath,
    spec: LaunchSpec,
) -> Response {
    let log = spec.sandbox_dir.join("stdout");
    // Run to the end even if the caller hangs up, as other launches do.
    let launcher = agent.clone();
    let launched =
        tokio::spawn(async move { launcher.containerizer.launch_session(spec).await }).await;
    let ends = match launched {
        Ok(Ok((_, ends))) => ends,
        Ok(Err(e)) => {
            tracing::warn!(container = %path, "launch failed: {e}");
            return containerizer_error(e);
        }
        Err(e) => return error(500, format!("the launch failed: {e}")),
    };
    tracing::info!(container = %path, "task launched with a terminal");
    let mut output = agent.sessions.start_with(path.clone(), ends, false);
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let mut file = match tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .await
        {
            Ok(f) => Some(f),
            Err(e) => {
                tracing::warn!(container = %path, "cannot open {}: {e}", log.display());
                None
            }
        };
        while let Some(chunk) = output.recv().await {
            if let Some(f) = file.as_mut()
                && let Err(e) = f.write_all(&chunk.data).await
            {
                tracing::warn!(container = %path, "cannot write {}: {e}", log.display());
                file = None;
            }
        }
    });
    StatusCode::OK.into_response()
}

/// Ends a session with its connection: kills the container if it still
/// runs, and removes it a while after it ended.
struct SessionGuard {
    agent: Arc<Agent>,
    container: ContainerPath,
    /// The container ended while the connection was still there.
    ended: bool,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        let agent = self.agent.clone();
        let id = self.container.clone();
        let ended = self.ended;
        tokio::spawn(async move {
            if !ended && agent.containerizer.kill(&id, Duration::ZERO).await.is_ok() {
                tracing::info!(container = %id, "session connection closed: container killed");
            }
            let _ = agent.containerizer.wait(&id).await;
            tokio::time::sleep(KEEP_ENDED_SESSION).await;
            let _ = agent.containerizer.remove(&id).await;
        });
    }
}

type Waiter = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// A RecordIO stream of ProcessIO records from `output`, heartbeats in
/// between. With a session, the stream lasts until the container has also
/// terminated (its output may close first), and dropping it ends the
/// session.
fn output_response(
    format: ResponseFormat,
    output: mpsc::Receiver<Chunk>,
    session: Option<(SessionGuard, Waiter)>,
    agent: &Arc<Agent>,
) -> Response {
    let shutdown = agent.shutdown.clone();
    let mut ticker = tokio::time::interval(HEARTBEAT);
    ticker.reset();
    let (guard, waiter) = match session {
        Some((guard, waiter)) => (Some(guard), Some(waiter)),
        None => (None, None),
    };
    let stream = futures_util::stream::unfold(
        (Some(output), ticker, waiter, guard),
        move |(mut output, mut ticker, mut waiter, mut guard)| {
            let shutdown = shutdown.clone();
            async move {
                let message = loop {
                    match output.as_mut() {
                        Some(rx) => {
                            tokio::select! {
                                _ = shutdown.cancelled() => return None,
                                chunk = rx.recv() => match chunk {
                                    Some(chunk) => break data_record(&chunk),
                                    None => output = None,
                                },
                                _ = ticker.tick() => break heartbeat_record(),
                            }
                        }
                        None => {
                            let w = waiter.as_mut()?;
                            tokio::select! {
                                _ = shutdown.cancelled() => return None,
                                _ = w => {
                                    if let Some(g) = guard.as_mut() {
                                        g.ended = true;
                                    }
                                    return None;
                                }
                                _ = ticker.tick() => break heartbeat_record(),
                            }
                        }
                    }
                };
                let mut record = BytesMut::new();
                encode_record(format.message_format, &message, &mut record);
                Some((
                    Ok::<_, std::convert::Infallible>(record.freeze()),
                    (output, ticker, waiter, guard),
                ))
            }
        },
    );
    let mut response = Response::new(Body::from_stream(stream));
    stream_headers(format, &mut response);
    response
}

fn data_record(chunk: &Chunk) -> ProcessIo {
    let kind = match chunk.stream {
        Stream::Stdout => process_io::data::Type::Stdout,
        Stream::Stderr => process_io::data::Type::Stderr,
    };
    ProcessIo {
        r#type: Some(process_io::Type::Data as i32),
        data: Some(process_io::Data {
            r#type: Some(kind as i32),
            data: Some(chunk.data.clone()),
        }),
        control: None,
    }
}

fn heartbeat_record() -> ProcessIo {
    ProcessIo {
        r#type: Some(process_io::Type::Control as i32),
        data: None,
        control: Some(process_io::Control {
            r#type: Some(process_io::control::Type::Heartbeat as i32),
            tty_info: None,
            heartbeat: Some(process_io::control::Heartbeat {
                interval: Some(DurationInfo {
                    nanoseconds: i64::try_from(HEARTBEAT.as_nanos()).unwrap_or(i64::MAX),
                }),
            }),
        }),
    }
}

/// ATTACH_CONTAINER_OUTPUT: a session's output from now on, or for any
/// other container its live stdout/stderr log output (Mesos refuses those).
pub async fn attach_output(
    agent: &Arc<Agent>,
    format: ResponseFormat,
    id: ContainerId,
) -> Response {
    let path = match container_path(&id) {
        Ok(p) => p,
        Err(r) => return r,
    };
    if let Some(session) = agent.sessions.get(&path) {
        return output_response(format, session.attach_output(), None, agent);
    }
    // A terminated container's stream ends at once: its wait below
    // returns immediately.
    let (Some(spec), true) = (
        agent.containerizer.launch_spec(&path),
        agent.containerizer.knows(&path).await,
    ) else {
        return error(404, format!("Container {path} not found"));
    };
    let (tx, rx) = mpsc::channel(64);
    let agent_for_tail = agent.clone();
    tokio::spawn(async move {
        let mut tails = [
            (
                Stream::Stdout,
                LogTail::at_end(spec.sandbox_dir.join("stdout")),
            ),
            (
                Stream::Stderr,
                LogTail::at_end(spec.sandbox_dir.join("stderr")),
            ),
        ];
        let mut ended = Box::pin(async {
            let _ = agent_for_tail.containerizer.wait(&path).await;
        });
        let mut done = false;
        loop {
            if !done {
                tokio::select! {
                    _ = &mut ended => done = true,
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                    _ = tx.closed() => return,
                }
            }
            let mut any = false;
            for (stream, tail) in tails.iter_mut() {
                while let Some(data) = tail.read_new() {
                    any = true;
                    let chunk = Chunk {
                        stream: *stream,
                        data,
                    };
                    if tx.send(chunk).await.is_err() {
                        return;
                    }
                }
            }
            // After the end, one more pass catches what the last write left.
            if done && !any {
                return;
            }
        }
    });
    output_response(format, rx, None, agent)
}

/// ATTACH_CONTAINER_INPUT: the request body is a RecordIO stream of agent
/// Calls; the first names the container, the rest carry ProcessIO.
pub async fn attach_input(
    agent: Arc<Agent>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let format = match RequestFormat::from_headers(
        header_str(&headers, "content-type"),
        header_str(&headers, "message-content-type"),
    ) {
        Ok(f) => f.message_format(),
        Err(e) => return error(e.status(), e.to_string()),
    };
    let mut decoder = recordio::Decoder::with_max_record_size(MAX_INPUT_RECORD);
    let mut body = body.into_data_stream();
    let mut claim = None;
    let mut index = 0usize;
    loop {
        let chunk = match body.next().await {
            Some(Ok(chunk)) => chunk,
            Some(Err(e)) => {
                // The client went away: the session keeps running.
                tracing::debug!("ATTACH_CONTAINER_INPUT connection dropped: {e}");
                return StatusCode::OK.into_response();
            }
            None => break,
        };
        let records = match decoder.feed(&chunk) {
            Ok(records) => records,
            Err(e) => return error(400, format!("Malformed RecordIO: {e}")),
        };
        for record in records {
            index += 1;
            let call = match content::decode_message::<Call>(format, &record) {
                Ok(call) => call,
                Err(e) => {
                    return error(
                        400,
                        format!("Record {index}: cannot parse it as a Call: {e}"),
                    );
                }
            };
            // The first record names the container: authorize it like any
            // other call (attach_containers_input, executor tokens).
            if claim.is_none()
                && let Err(response) = super::auth::authorize_call(&agent, &caller, &call).await
            {
                return response;
            }
            match input_step(&agent, call, &mut claim).await {
                Ok(true) => {}
                Ok(false) => return StatusCode::OK.into_response(),
                Err(response) => return response,
            }
        }
    }
    if let Err(e) = decoder.finish() {
        return error(
            400,
            format!("Malformed RecordIO: the stream ended inside a record: {e}"),
        );
    }
    if claim.is_none() {
        return error(
            400,
            "Expecting an ATTACH_CONTAINER_INPUT record of type CONTAINER_ID first",
        );
    }
    StatusCode::OK.into_response()
}

/// One input record. `Ok(false)` when the session no longer takes input.
async fn input_step(
    agent: &Arc<Agent>,
    call: Call,
    claim: &mut Option<crate::daemon::sessions::InputClaim>,
) -> Result<bool, Response> {
    use call::attach_container_input::Type as InputType;
    let is_attach = call.r#type == Some(call::Type::AttachContainerInput as i32);
    let Some(input) = call.attach_container_input.filter(|_| is_attach) else {
        return Err(error(
            400,
            "Expecting 'type' ATTACH_CONTAINER_INPUT with 'attach_container_input'",
        ));
    };
    let kind = input.r#type.and_then(|t| InputType::try_from(t).ok());
    match (kind, claim.as_ref()) {
        (Some(InputType::ContainerId), None) => {
            let Some(id) = input.container_id else {
                return Err(error(
                    400,
                    "Expecting 'attach_container_input.container_id'",
                ));
            };
            let path = container_path(&id)?;
            let Some(session) = agent.sessions.get(&path) else {
                return Err(match agent.containerizer.launch_spec(&path) {
                    Some(_) => error(400, AttachError::NoSession(path).to_string()),
                    None => error(404, format!("Container {path} not found")),
                });
            };
            match session.attach_input() {
                Ok(c) => *claim = Some(c),
                Err(e @ AttachError::InputTaken(_)) => return Err(error(409, e.to_string())),
                Err(e) => return Err(error(400, e.to_string())),
            }
            Ok(true)
        }
        (Some(InputType::ContainerId), Some(_)) => Err(error(
            400,
            "Only the first record may be of type CONTAINER_ID",
        )),
        (Some(InputType::ProcessIo), Some(c)) => {
            let Some(io) = input.process_io else {
                return Err(error(400, "Expecting 'attach_container_input.process_io'"));
            };
            match process_input(io)? {
                Some(message) => Ok(c.send(message).await),
                None => Ok(true),
            }
        }
        (Some(InputType::ProcessIo), None) => Err(error(
            400,
            "Expecting an ATTACH_CONTAINER_INPUT record of type CONTAINER_ID first",
        )),
        _ => Err(error(400, "Expecting 'attach_container_input.type'")),
    }
}

/// A ProcessIO record as session input; `None` for a heartbeat.
fn process_input(io: ProcessIo) -> Result<Option<Input>, Response> {
    use process_io::Type;
    match io.r#type.and_then(|t| Type::try_from(t).ok()) {
        Some(Type::Data) => {
            let data = io
                .data
                .ok_or_else(|| error(400, "Expecting 'process_io.data'"))?;
            if data.r#type != Some(process_io::data::Type::Stdin as i32) {
                return Err(error(400, "Input DATA must be of type STDIN"));
            }
            let bytes = data.data.unwrap_or_default();
            Ok(Some(if bytes.is_empty() {
                Input::Eof
            } else {
                Input::Data(bytes)
            }))
        }
        Some(Type::Control) => {
            let control = io
                .control
                .ok_or_else(|| error(400, "Expecting 'process_io.control'"))?;
            use process_io::control::Type as Control;
            match control.r#type.and_then(|t| Control::try_from(t).ok()) {
                Some(Control::Heartbeat) => Ok(None),
                Some(Control::TtyInfo) => {
                    let size = control
                        .tty_info
                        .and_then(|t| t.window_size)
                        .ok_or_else(|| error(400, "Expecting 'control.tty_info.window_size'"))?;
                    Ok(Some(Input::Resize(WindowSize {
                        rows: size.rows,
                        columns: size.columns,
                    })))
                }
                _ => Err(error(400, "Expecting 'control.type' TTY_INFO or HEARTBEAT")),
            }
        }
        _ => Err(error(400, "Expecting 'process_io.type' DATA or CONTROL")),
    }
}
