//! The web UI's terminal: a websocket on the master
//! (`/webui/agents/<agent>/exec`) bridged to the agent's
//! LAUNCH_NESTED_CONTAINER_SESSION (the session's output, streamed back)
//! and ATTACH_CONTAINER_INPUT (keystrokes and window sizes, streamed in),
//! as `tepui exec -it` does it (agent/src/cli_session.rs).
//!
//! Browsers cannot put an `Authorization` header on a websocket, so the
//! page's first message carries it: the master authenticates it as a
//! readonly caller and forwards it with both calls, and the agent's ACLs
//! (`launch_nested_container_sessions`, `attach_containers_input`) decide,
//! exactly as for the CLI.
//!
//! Messages: page -> master: the first a JSON `{"authorization": ...,
//! "container_id": <v1 ContainerID JSON>, "rows": n, "columns": n}`, then
//! binary messages (keystrokes) and JSON `{"rows": n, "columns": n}`
//! (resize). master -> page: binary messages (terminal output), and a last
//! JSON text `{"exit": ...}` or `{"error": ...}`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use prost::Message as _;
use serde::Deserialize;
use tepui_proto::recordio;
use tepui_proto::v1::agent::{Call, ProcessIo, call, process_io};
use tepui_proto::v1::{
    CommandInfo, ContainerId, ContainerInfo, Environment, TtyInfo, container_info, environment,
    tty_info,
};
use tokio::sync::mpsc;

use crate::state::Shared;

const PROTOBUF: &str = "application/x-protobuf";
const RECORDIO: &str = "application/recordio";

#[derive(Deserialize)]
struct Hello {
    authorization: Option<String>,
    container_id: serde_json::Value,
    rows: Option<u32>,
    columns: Option<u32>,
}

#[derive(Deserialize)]
struct Resize {
    rows: u32,
    columns: u32,
}

pub async fn handle(
    State(shared): State<Arc<Shared>>,
    Path(agent): Path<String>,
    ws: WebSocketUpgrade,
) -> Response {
    ws.on_upgrade(move |socket| async move {
        let (mut tx, mut rx) = socket.split();
        let result = bridge(&shared, &agent, &mut tx, &mut rx).await;
        let last = match result {
            Ok(code) => serde_json::json!({ "exit": code }),
            Err(e) => serde_json::json!({ "error": e }),
        };
        let _ = tx.send(Message::Text(last.to_string().into())).await;
        let _ = tx.close().await;
    })
}

type WsTx = futures_util::stream::SplitSink<WebSocket, Message>;
type WsRx = futures_util::stream::SplitStream<WebSocket>;

async fn bridge(
    shared: &Arc<Shared>,
    agent: &str,
    tx: &mut WsTx,
    rx: &mut WsRx,
) -> Result<i64, String> {
    let first = tokio::time::timeout(Duration::from_secs(10), rx.next())
        .await
        .map_err(|_| "no hello from the page".to_string())?;
    let Some(Ok(Message::Text(hello))) = first else {
        return Err("expected the hello message first".into());
    };
    let hello: Hello = serde_json::from_str(&hello).map_err(|e| e.to_string())?;
    let auth = &shared.config.auth;
    if auth.authenticate_http_readonly {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        auth.authenticator
            .authenticate(hello.authorization.as_deref(), now)
            .map_err(|e| format!("401: {e}"))?;
    }
    let parent: ContainerId = tepui_proto::json::from_value(&hello.container_id)
        .map_err(|e| format!("bad container_id: {e}"))?;
    let address = crate::webui::agent_address(shared, agent).ok_or("no such agent")?;
    let id = ContainerId {
        value: uuid::Uuid::new_v4().to_string(),
        parent: Some(Box::new(parent)),
    };
    let window = match (hello.rows, hello.columns) {
        (Some(rows), Some(columns)) => Some(tty_info::WindowSize { rows, columns }),
        _ => None,
    };
    let launch = Call {
        r#type: Some(call::Type::LaunchNestedContainerSession as i32),
        launch_nested_container_session: Some(call::LaunchNestedContainerSession {
            container_id: id.clone(),
            command: Some(CommandInfo {
                shell: Some(false),
                value: Some("/bin/sh".into()),
                arguments: vec!["sh".into()],
                environment: Some(Environment {
                    variables: vec![environment::Variable {
                        name: "TERM".into(),
                        r#type: Some(environment::variable::Type::Value as i32),
                        value: Some("xterm-256color".into()),
                        secret: None,
                    }],
                }),
                ..Default::default()
            }),
            container: Some(ContainerInfo {
                r#type: container_info::Type::Mesos as i32,
                tty_info: Some(TtyInfo {
                    window_size: window,
                }),
                ..Default::default()
            }),
        }),
        ..Default::default()
    };
    let authorization = hello.authorization.clone();
    let output = post(
        &address,
        authorization.as_deref(),
        Kind::Session,
        http_body_util::Full::new(Bytes::from(launch.encode_to_vec())),
    )
    .await?;
    if !output.status().is_success() {
        let status = output.status();
        let body = output.into_body().collect().await.map(|b| b.to_bytes());
        let text = body.map(|b| String::from_utf8_lossy(&b).into_owned());
        return Err(format!("{status}: {}", text.unwrap_or_default()));
    }

    // The input side: a streaming request body fed from the page.
    let (input_tx, mut input_rx) = mpsc::channel::<Bytes>(64);
    let _ = input_tx.send(input_call(Some(id.clone()), None)).await;
    if let Some(w) = window {
        let _ = input_tx.send(window_record(w.rows, w.columns)).await;
    }
    let body = http_body_util::StreamBody::new(futures_util::stream::poll_fn(move |cx| {
        input_rx
            .poll_recv(cx)
            .map(|b| b.map(|b| Ok::<_, Infallible>(hyper::body::Frame::data(b))))
    }));
    let input_address = address.clone();
    let input = tokio::spawn(async move {
        // The agent answers when the input stream ends (or the session does).
        let _ = post(&input_address, authorization.as_deref(), Kind::Input, body).await;
    });

    let mut output = output.into_body();
    let mut decoder = recordio::Decoder::new();
    loop {
        tokio::select! {
            frame = output.frame() => {
                let Some(frame) = frame else { break };
                let frame = frame.map_err(|e| e.to_string())?;
                let Ok(chunk) = frame.into_data() else { continue };
                for record in decoder.feed(&chunk).map_err(|e| e.to_string())? {
                    let io = ProcessIo::decode(record).map_err(|e| e.to_string())?;
                    let Some(data) = io.data.and_then(|d| d.data) else { continue };
                    if tx.send(Message::Binary(data)).await.is_err() {
                        input.abort();
                        return Err("the page went away".into());
                    }
                }
            }
            message = rx.next() => {
                let record = match message {
                    Some(Ok(Message::Binary(b))) => stdin_record(&b),
                    Some(Ok(Message::Text(t))) => match serde_json::from_str::<Resize>(&t) {
                        Ok(r) => window_record(r.rows, r.columns),
                        Err(_) => continue,
                    },
                    Some(Ok(_)) => continue,
                    // The page closed: end the session's input (EOF).
                    Some(Err(_)) | None => {
                        let _ = input_tx.send(stdin_record(&[])).await;
                        break;
                    }
                };
                let _ = input_tx.send(record).await;
            }
        }
    }
    input.abort();
    Ok(wait_exit(&address, hello.authorization.as_deref(), id).await)
}

/// The session's exit status (WAIT_CONTAINER), -1 when unknown.
async fn wait_exit(address: &str, authorization: Option<&str>, id: ContainerId) -> i64 {
    let call = Call {
        r#type: Some(call::Type::WaitContainer as i32),
        wait_container: Some(call::WaitContainer { container_id: id }),
        ..Default::default()
    };
    let body = http_body_util::Full::new(Bytes::from(call.encode_to_vec()));
    let Ok(answer) = post(address, authorization, Kind::Call, body).await else {
        return -1;
    };
    let Ok(bytes) = answer.into_body().collect().await.map(|b| b.to_bytes()) else {
        return -1;
    };
    let Ok(r) = tepui_proto::v1::agent::Response::decode(bytes) else {
        return -1;
    };
    let status = r.wait_container.and_then(|w| w.exit_status).unwrap_or(0);
    if libc::WIFEXITED(status) {
        i64::from(libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        128 + i64::from(libc::WTERMSIG(status))
    } else {
        -1
    }
}

/// What a POST to the agent carries and expects back.
#[derive(Clone, Copy)]
enum Kind {
    /// One call; the answer streams RecordIO (the session's output).
    Session,
    /// A RecordIO stream of calls (ATTACH_CONTAINER_INPUT).
    Input,
    /// One call, one answer.
    Call,
}

/// POSTs to the agent's `/api/v1` over a connection of its own (sessions
/// and input streams each hold one).
async fn post<B>(
    address: &str,
    authorization: Option<&str>,
    kind: Kind,
    body: B,
) -> Result<hyper::Response<hyper::body::Incoming>, String>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(address),
    )
    .await
    .map_err(|_| "connect timed out".to_string())?
    .map_err(|e| e.to_string())?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut request = hyper::Request::post("/api/v1")
        .header("host", address)
        .header("message-accept", PROTOBUF);
    request = match kind {
        Kind::Session => request
            .header("content-type", PROTOBUF)
            .header("accept", RECORDIO),
        Kind::Input => request
            .header("content-type", RECORDIO)
            .header("message-content-type", PROTOBUF)
            .header("accept", PROTOBUF),
        Kind::Call => request
            .header("content-type", PROTOBUF)
            .header("accept", PROTOBUF),
    };
    if let Some(a) = authorization {
        request = request.header("authorization", a);
    }
    let request = request.body(body).map_err(|e| e.to_string())?;
    sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())
}

fn input_call(id: Option<ContainerId>, io: Option<ProcessIo>) -> Bytes {
    use call::attach_container_input::Type;
    let call = Call {
        r#type: Some(call::Type::AttachContainerInput as i32),
        attach_container_input: Some(call::AttachContainerInput {
            r#type: Some(if id.is_some() {
                Type::ContainerId
            } else {
                Type::ProcessIo
            } as i32),
            container_id: id,
            process_io: io,
        }),
        ..Default::default()
    };
    let mut out = BytesMut::new();
    recordio::encode(&call.encode_to_vec(), &mut out);
    out.freeze()
}

fn stdin_record(data: &[u8]) -> Bytes {
    input_call(
        None,
        Some(ProcessIo {
            r#type: Some(process_io::Type::Data as i32),
            data: Some(process_io::Data {
                r#type: Some(process_io::data::Type::Stdin as i32),
                data: Some(Bytes::copy_from_slice(data)),
            }),
            control: None,
        }),
    )
}

fn window_record(rows: u32, columns: u32) -> Bytes {
    input_call(
        None,
        Some(ProcessIo {
            r#type: Some(process_io::Type::Control as i32),
            data: None,
            control: Some(process_io::Control {
                r#type: Some(process_io::control::Type::TtyInfo as i32),
                tty_info: Some(TtyInfo {
                    window_size: Some(tty_info::WindowSize { rows, columns }),
                }),
                heartbeat: None,
            }),
        }),
    )
}
