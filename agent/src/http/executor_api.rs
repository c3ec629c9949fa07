//! `POST /api/v1/executor`: Mesos's executor HTTP API. SUBSCRIBE answers
//! 200 with a RecordIO stream of events (heartbeats included) that lives as
//! long as the connection; UPDATE and MESSAGE answer 202.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use tepui_proto::content::{ResponseFormat, encode_record};
use tepui_proto::v1::executor;
use tokio::sync::mpsc;

use super::auth::Caller;
use super::{accepted_format, decode_call, error, stream_headers};
use crate::daemon::Agent;
use crate::peer::Origin;

pub async fn handle(
    State(agent): State<Arc<Agent>>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (call, _) = match decode_call::<executor::Call>(&headers, &body) {
        Ok(decoded) => decoded,
        Err(response) => return response,
    };
    let untied = caller.origin == Origin::Unidentified
        || caller.confinement() == super::auth::Confinement::Remote;
    if untied
        && caller
            .principal
            .as_ref()
            .and_then(|p| p.executor())
            .is_none_or(|me| {
                me.framework_id != call.framework_id.value
                    || me.executor_id != call.executor_id.value
            })
    {
        // Gone before it could be identified (a task sending and resetting
        // at once), or on another host (executors run on this one): only
        // its executor's token can speak for an executor.
        return error(
            403,
            "the calling process could not be identified as this executor (gone, or on another host): an executor call needs its executor's token or a live connection from its own container",
        );
    }
    if let Origin::Pod { pod, .. } = &caller.origin {
        // A process in a pod speaks only for the executor whose pod it is,
        // token or not (a token of another executor is refused too).
        let own_pod = super::tenancy::pod_owner(&agent, pod)
            .await
            .is_some_and(|(fw, ex)| fw == call.framework_id.value && ex == call.executor_id.value);
        let token_ok = caller.principal.as_ref().is_none_or(|p| {
            p.executor().is_none_or(|me| {
                me.framework_id == call.framework_id.value
                    && me.executor_id == call.executor_id.value
            })
        });
        if !own_pod || !token_ok {
            return error(
                403,
                format!(
                    "a process in container '{pod}' may not speak for executor '{}' of framework '{}'",
                    call.executor_id.value, call.framework_id.value
                ),
            );
        }
    } else if agent.executor_auth_required() {
        // Only the executor's own token speaks for it.
        let me = caller.principal.as_ref().and_then(|p| p.executor());
        let own = me.is_some_and(|me| {
            me.framework_id == call.framework_id.value && me.executor_id == call.executor_id.value
        });
        if !own {
            return error(
                403,
                format!(
                    "the token does not belong to executor '{}' of framework '{}'",
                    call.executor_id.value, call.framework_id.value
                ),
            );
        }
    }
    use executor::call::Type;
    let kind = call.r#type.and_then(|t| Type::try_from(t).ok());
    match kind {
        Some(Type::Subscribe) => {
            let format = match accepted_format(&headers, true) {
                Ok(f) => f,
                Err(response) => return response,
            };
            match agent.executor_subscribe(&call).await {
                Ok((generation, events)) => subscription(agent, call, generation, events, format),
                Err(e) => error(e.status, e.message),
            }
        }
        Some(Type::Update) => match agent.executor_update(&call).await {
            Ok(()) => StatusCode::ACCEPTED.into_response(),
            Err(e) => error(e.status, e.message),
        },
        Some(Type::Message) => match agent.executor_message(&call).await {
            Ok(()) => StatusCode::ACCEPTED.into_response(),
            Err(e) => error(e.status, e.message),
        },
        Some(Type::Heartbeat) => StatusCode::ACCEPTED.into_response(),
        Some(Type::Unknown) | None => error(400, "Expecting 'type' to be present"),
    }
}

/// Tells the agent when the subscriber's connection goes away (the body
/// stream is dropped with it).
struct Disconnect {
    agent: Arc<Agent>,
    fw: String,
    ex: String,
    generation: u64,
}

impl Drop for Disconnect {
    fn drop(&mut self) {
        let agent = self.agent.clone();
        let (fw, ex, generation) = (
            std::mem::take(&mut self.fw),
            std::mem::take(&mut self.ex),
            self.generation,
        );
        tokio::spawn(async move { agent.executor_disconnected(&fw, &ex, generation).await });
    }
}

fn subscription(
    agent: Arc<Agent>,
    call: executor::Call,
    generation: u64,
    events: mpsc::UnboundedReceiver<executor::Event>,
    format: ResponseFormat,
) -> Response {
    let heartbeat = agent.config.heartbeat_interval;
    let shutdown = agent.shutdown.clone();
    let guard = Disconnect {
        agent,
        fw: call.framework_id.value.clone(),
        ex: call.executor_id.value.clone(),
        generation,
    };
    let mut ticker = tokio::time::interval(heartbeat);
    ticker.reset();
    let stream = futures_util::stream::unfold(
        (events, ticker, guard),
        move |(mut events, mut ticker, guard)| {
            let shutdown = shutdown.clone();
            async move {
                let event = tokio::select! {
                    _ = shutdown.cancelled() => return None,
                    event = events.recv() => event?,
                    _ = ticker.tick() => executor::Event {
                        r#type: Some(executor::event::Type::Heartbeat as i32),
                        ..Default::default()
                    },
                };
                let mut record = BytesMut::new();
                encode_record(format.message_format, &event, &mut record);
                Some((
                    Ok::<_, std::convert::Infallible>(record.freeze()),
                    (events, ticker, guard),
                ))
            }
        },
    );
    let mut response = Response::new(Body::from_stream(stream));
    stream_headers(format, &mut response);
    response
}
