//! `/tepui/link/v1`: the agent side of the master. SUBSCRIBE opens a
//! RecordIO stream of protobuf `MasterEvent`s; other agent calls are single
//! POSTs answered 202 that must carry the stream's `Tepui-Link-Stream-Id`.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Extension, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use prost::Message;

use tepui_proto::content::{self, MessageFormat, RequestFormat};
use tepui_proto::link::agent_call::Type as CallType;
use tepui_proto::link::{AgentCall, MasterEvent, master_event};

use crate::error::ApiError;
use crate::http::{CloseGuard, header_str, header_value, status, stream_response};
use crate::state::Shared;
use crate::state::agents::LINK_PROTOCOL_VERSION;

pub const STREAM_ID: &str = "Tepui-Link-Stream-Id";

/// Largest link request from an agent that authenticated (a re-registration
/// lists every task it runs).
const AUTHENTICATED_BODY_BYTES: usize = 64 << 20;

/// The body cap matches trust: an unauthenticated caller gets the server's
/// cap like every other endpoint (`--http_max_body_size`, 8 MiB), so
/// anyone who can reach the port cannot make the master buffer 64 MiB per
/// connection; an agent that authenticated (`--authenticate_agents`) may
/// send more. The body is read incrementally and refused (413) as soon as
/// it passes the cap.
fn body_cap(shared: &Shared, caller: &crate::auth::Caller) -> usize {
    if caller.principal.is_some() {
        AUTHENTICATED_BODY_BYTES.max(shared.config.http_limits.max_body_bytes)
    } else {
        shared.config.http_limits.max_body_bytes
    }
}

pub async fn handle(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<crate::auth::Caller>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let cap = body_cap(&shared, &caller);
    let body: Bytes = match axum::body::to_bytes(body, cap).await {
        Ok(b) => b,
        Err(e) => {
            return ApiError::new(413, format!("request body over {cap} bytes: {e}"))
                .into_response();
        }
    };
    match serve(&shared, &caller, &headers, &body) {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

fn serve(
    shared: &Arc<Shared>,
    caller: &crate::auth::Caller,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let auth = &shared.config.auth;
    let principal = caller.authenticated(auth.authenticate_agents)?;
    let format = RequestFormat::from_headers(header_str(headers, content::CONTENT_TYPE), None)?;
    // Protobuf is the link's wire format; plain prost decoding skips the
    // reflective required-field pass, which dominated re-registration storms.
    let call: AgentCall = match format.message_format() {
        MessageFormat::Protobuf => AgentCall::decode(body)
            .map_err(|e| ApiError::bad_request(format!("invalid AgentCall: {e}")))?,
        MessageFormat::Json => content::decode_message(MessageFormat::Json, body)?,
    };
    let kind = call
        .r#type
        .and_then(|t| CallType::try_from(t).ok())
        .ok_or_else(|| ApiError::bad_request("expecting 'type' to be present"))?;
    if kind == CallType::Subscribe {
        auth.authorize(tepui_proto::auth::Action::RegisterAgents, principal, None)?;
        return subscribe(shared, call);
    }
    let agent_id = call
        .agent_id
        .as_ref()
        .map(|a| a.value.clone())
        .ok_or_else(|| ApiError::bad_request("expecting 'agent_id' to be present"))?;
    let mut master = shared.lock();
    let expected = master
        .agents
        .get(&agent_id)
        .and_then(|a| a.conn.as_ref())
        .map(|c| c.stream_id.clone())
        .ok_or_else(|| ApiError::forbidden("agent is not subscribed"))?;
    if header_str(headers, STREAM_ID) != Some(expected.as_str()) {
        return Err(ApiError::forbidden(format!(
            "missing or stale '{STREAM_ID}' header"
        )));
    }
    let missing = |what: &str| ApiError::bad_request(format!("expecting '{what}' to be present"));
    match kind {
        CallType::StatusUpdate => {
            let update = call.status_update.ok_or_else(|| missing("status_update"))?;
            master.status_update(&agent_id, update);
        }
        CallType::FrameworkMessage => {
            let m = call
                .framework_message
                .ok_or_else(|| missing("framework_message"))?;
            master.message_from_executor(&agent_id, m);
        }
        CallType::ExecutorExited => {
            let e = call
                .executor_exited
                .ok_or_else(|| missing("executor_exited"))?;
            master.executor_exited(&agent_id, e);
        }
        CallType::UpdateState => {
            let u = call.update_state.ok_or_else(|| missing("update_state"))?;
            master.agent_update_state(&agent_id, u)?;
        }
        CallType::Subscribe | CallType::Unknown => {
            return Err(ApiError::bad_request("unknown call type"));
        }
    }
    Ok(status(202))
}

fn subscribe(shared: &Arc<Shared>, call: AgentCall) -> Result<Response, ApiError> {
    let version = call.protocol_version.unwrap_or(LINK_PROTOCOL_VERSION);
    let (agent_id, stream_id, rx) = if version != LINK_PROTOCOL_VERSION {
        // Refused with an ERROR event naming what we speak.
        let (tx, rx) = crate::queue::channel(None);
        let _ = tx.send(Box::new(MasterEvent {
            r#type: Some(master_event::Type::Error as i32),
            error: Some(master_event::Error {
                message: format!(
                    "link protocol version {version} is not supported; this master speaks {LINK_PROTOCOL_VERSION}..={LINK_PROTOCOL_VERSION}"
                ),
            }),
            ..Default::default()
        }));
        (String::new(), String::new(), rx)
    } else {
        let sub = call
            .subscribe
            .ok_or_else(|| ApiError::bad_request("expecting 'subscribe' to be present"))?;
        let requested = call.agent_id.map(|a| a.value);
        shared.lock().agent_subscribe(requested, sub)?
    };
    shared.allocate_now.notify_one();
    let weak = Arc::downgrade(shared);
    let (aid, sid) = (agent_id.clone(), stream_id.clone());
    let guard = CloseGuard::new(move || {
        if let Some(shared) = weak.upgrade()
            && !aid.is_empty()
        {
            shared.lock().agent_disconnected(&aid, &sid);
        }
    });
    let mut headers = HeaderMap::new();
    headers.insert("content-type", header_value(content::APPLICATION_PROTOBUF));
    headers.insert(STREAM_ID, header_value(&stream_id));
    let heartbeat = Box::new(MasterEvent {
        r#type: Some(master_event::Type::Heartbeat as i32),
        ..Default::default()
    });
    Ok(stream_response(
        rx,
        |e, buf| tepui_proto::recordio::encode(&e.encode_to_vec(), buf),
        Some((shared.config.agent_ping_timeout, heartbeat)),
        guard,
        headers,
    ))
}
