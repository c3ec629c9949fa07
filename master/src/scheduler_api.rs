//! `/api/v1/scheduler`: the v1 scheduler HTTP API. SUBSCRIBE answers with a
//! RecordIO event stream carrying `Mesos-Stream-Id`; every other call needs
//! that header and a subscribed framework (403 otherwise), and is answered
//! 202 once accepted, or 400 with a message when invalid.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use tepui_proto::content::{self, RequestFormat};
use tepui_proto::v1::scheduler::call::Type as CallType;
use tepui_proto::v1::scheduler::{Call, Event, event};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::http::{CloseGuard, header_str, header_value, status, stream_response};
use crate::state::Shared;
use crate::state::frameworks::Subscription;
use tepui_proto::auth::Action;

pub const STREAM_ID: &str = "Mesos-Stream-Id";

pub async fn handle(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match serve(&shared, &caller, &headers, &body) {
        Ok(r) => r,
        Err(e) => {
            shared.lock().metrics.invalid_scheduler_calls += 1;
            e.into_response()
        }
    }
}

fn serve(
    shared: &Arc<Shared>,
    caller: &Caller,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let principal = caller.authenticated(shared.config.auth.authenticate_frameworks)?;
    let format = RequestFormat::from_headers(
        header_str(headers, content::CONTENT_TYPE),
        header_str(headers, content::MESSAGE_CONTENT_TYPE),
    )?;
    if format.is_recordio() {
        return Err(ApiError::new(
            415,
            "the scheduler API takes one message per request",
        ));
    }
    let call: Call = content::decode_message(format.message_format(), body)?;
    let kind = call
        .r#type
        .and_then(|t| CallType::try_from(t).ok())
        .filter(|t| *t != CallType::Unknown)
        .ok_or_else(|| ApiError::bad_request("expecting 'type' to be present"))?;
    if kind == CallType::Subscribe {
        return subscribe(shared, principal, headers, call);
    }
    let framework_id = call
        .framework_id
        .as_ref()
        .map(|f| f.value.clone())
        .ok_or_else(|| ApiError::bad_request("expecting 'framework_id' to be present"))?;
    let mut master = shared.lock();
    master.metrics.scheduler_calls += 1;
    {
        let Some(fw) = master.frameworks.get(&framework_id) else {
            return Err(ApiError::forbidden("framework is not subscribed"));
        };
        let Some(conn) = fw.conn.as_ref() else {
            return Err(ApiError::forbidden("framework is not subscribed"));
        };
        match header_str(headers, STREAM_ID) {
            None => {
                return Err(ApiError::forbidden(format!(
                    "all non-subscribe calls need the '{STREAM_ID}' header"
                )));
            }
            Some(id) if id != conn.stream_id => {
                return Err(ApiError::forbidden(format!(
                    "the '{STREAM_ID}' header does not match the framework's subscription"
                )));
            }
            Some(_) => {}
        }
        if shared.config.auth.authenticate_frameworks && fw.info.principal.as_deref() != principal {
            return Err(ApiError::forbidden(format!(
                "authenticated principal '{}' is not the framework's principal",
                principal.unwrap_or_default()
            )));
        }
    }
    apply(shared, master, principal, &framework_id, kind, call).map(status)
}

/// Applies a call of a subscribed framework whose caller was checked
/// (HTTP: stream id and principal; libprocess: the framework's pid), with
/// the state locked; the status to answer (202, or 200 for
/// UPDATE_FRAMEWORK, which is applied rather than queued).
pub(crate) fn apply(
    shared: &Arc<Shared>,
    mut master: std::sync::MutexGuard<'_, crate::state::Master>,
    principal: Option<&str>,
    framework_id: &str,
    kind: CallType,
    call: Call,
) -> Result<u16, ApiError> {
    let framework_id = framework_id.to_string();
    let missing = |what: &str| ApiError::bad_request(format!("expecting '{what}' to be present"));
    let mut wake = false;
    match kind {
        CallType::Teardown => master.remove_framework(&framework_id),
        CallType::Accept => {
            let mut accept = call.accept.ok_or_else(|| missing("accept"))?;
            crate::validation::check_operations(&accept.operations)
                .map_err(ApiError::bad_request)?;
            authorize_accept(shared, &mut master, &framework_id, principal, &mut accept);
            master.accept(&framework_id, accept)?;
        }
        CallType::Decline => {
            let decline = call.decline.ok_or_else(|| missing("decline"))?;
            master.decline(&framework_id, &decline.offer_ids, decline.filters.as_ref());
        }
        CallType::Revive => {
            let roles = call.revive.map(|r| r.roles).unwrap_or_default();
            check_roles(&master, &framework_id, &roles)?;
            master
                .allocator
                .revive(&framework_id, (!roles.is_empty()).then_some(&roles[..]));
            wake = true;
        }
        CallType::Suppress => {
            let roles = call.suppress.map(|r| r.roles).unwrap_or_default();
            check_roles(&master, &framework_id, &roles)?;
            master
                .allocator
                .suppress(&framework_id, (!roles.is_empty()).then_some(&roles[..]));
        }
        CallType::Kill => {
            let kill = call.kill.ok_or_else(|| missing("kill"))?;
            master.kill(&framework_id, kill);
        }
        CallType::Shutdown => {
            let shutdown = call.shutdown.ok_or_else(|| missing("shutdown"))?;
            master.shutdown_executor(&framework_id, shutdown);
        }
        CallType::Acknowledge => {
            let ack = call.acknowledge.ok_or_else(|| missing("acknowledge"))?;
            master.acknowledge(&framework_id, ack)?;
        }
        CallType::Reconcile => {
            let tasks = call.reconcile.map(|r| r.tasks).unwrap_or_default();
            master.reconcile(&framework_id, tasks);
        }
        CallType::Message => {
            let message = call.message.ok_or_else(|| missing("message"))?;
            master.message_to_executor(&framework_id, message);
        }
        CallType::Request => {
            // Mesos's allocator ignores resource requests too.
        }
        CallType::UpdateFramework => {
            let update = call
                .update_framework
                .ok_or_else(|| missing("update_framework"))?;
            master.update_framework(
                &framework_id,
                update.framework_info,
                update.suppressed_roles,
            )?;
            // Mesos answers UPDATE_FRAMEWORK with 200: it is applied, not queued.
            drop(master);
            shared.allocate_now.notify_one();
            return Ok(200);
        }
        CallType::AcceptInverseOffers | CallType::DeclineInverseOffers => {
            // No maintenance schedules, so no inverse offers to answer.
        }
        CallType::AcknowledgeOperationStatus | CallType::ReconcileOperations => {
            return Err(ApiError::bad_request(format!(
                "{} is not supported: operations are applied synchronously",
                kind.as_str_name()
            )));
        }
        CallType::Subscribe | CallType::Unknown => {}
    }
    drop(master);
    if wake {
        shared.allocate_now.notify_one();
    }
    Ok(202)
}

fn check_roles(
    master: &crate::state::Master,
    framework_id: &str,
    roles: &[String],
) -> Result<(), ApiError> {
    let mine = master
        .frameworks
        .get(framework_id)
        .map(|f| f.roles.clone())
        .unwrap_or_default();
    for role in roles {
        if !mine.contains(role) {
            return Err(ApiError::bad_request(format!(
                "role '{role}' is not one of the framework's roles"
            )));
        }
    }
    Ok(())
}

/// `run_tasks` (by the user a task runs as) and `reserve_resources` /
/// `unreserve_resources` (by role) for the operations of an ACCEPT, as
/// Mesos applies them: an unauthorized task fails with TASK_ERROR
/// (REASON_TASK_UNAUTHORIZED), a task group as a whole; an unauthorized
/// operation is dropped; the rest of the ACCEPT goes ahead.
fn authorize_accept(
    shared: &Shared,
    master: &mut crate::state::Master,
    framework_id: &str,
    principal: Option<&str>,
    accept: &mut tepui_proto::v1::scheduler::call::Accept,
) {
    use tepui_proto::v1::offer::operation::Type as OpType;
    let auth = &shared.config.auth;
    let framework_user = master
        .frameworks
        .get(framework_id)
        .map(|f| f.info.user.clone())
        .unwrap_or_default();
    let may_run = |task: &tepui_proto::v1::TaskInfo| {
        let user = task
            .command
            .as_ref()
            .and_then(|c| c.user.as_deref())
            .or_else(|| {
                task.executor
                    .as_ref()
                    .and_then(|e| e.command.as_ref())
                    .and_then(|c| c.user.as_deref())
            })
            .unwrap_or(&framework_user);
        auth.allowed(Action::RunTasks, principal, Some(user))
    };
    let mut refused = Vec::new();
    accept.operations.retain_mut(|op| {
        match op.r#type.and_then(|t| OpType::try_from(t).ok()) {
            Some(OpType::Launch) => {
                if let Some(launch) = &mut op.launch {
                    launch.task_infos.retain(|task| {
                        let ok = may_run(task);
                        if !ok {
                            refused.push(task.clone());
                        }
                        ok
                    });
                }
                true
            }
            Some(OpType::LaunchGroup) => {
                let Some(group) = &op.launch_group else {
                    return true;
                };
                let executor_user = group
                    .executor
                    .command
                    .as_ref()
                    .and_then(|c| c.user.as_deref())
                    .unwrap_or(&framework_user);
                let ok = auth.allowed(Action::RunTasks, principal, Some(executor_user))
                    && group.task_group.tasks.iter().all(&may_run);
                if !ok {
                    refused.extend(group.task_group.tasks.iter().cloned());
                }
                ok
            }
            Some(kind @ (OpType::Reserve | OpType::Unreserve)) => {
                let (action, resources) = match (&op.reserve, &op.unreserve) {
                    (Some(r), _) => (Action::ReserveResources, &r.resources),
                    (_, Some(u)) => (Action::UnreserveResources, &u.resources),
                    _ => return true,
                };
                let ok = reservation_roles(resources)
                    .iter()
                    .all(|role| auth.allowed(action, principal, Some(role)));
                if !ok {
                    tracing::info!(framework = %framework_id, ?kind, "unauthorized operation dropped");
                }
                ok
            }
            _ => true,
        }
    });
    for task in refused {
        master.task_error(
            framework_id,
            &task.agent_id.value,
            &task.task_id.value,
            tepui_proto::v1::task_status::Reason::TaskUnauthorized,
            format!(
                "Principal '{}' is not authorized to run_tasks as this user",
                principal.unwrap_or("ANY")
            ),
        );
    }
}

#[allow(deprecated)] // the legacy `role` fields.
/// The roles resources are (being) reserved for.
pub fn reservation_roles(resources: &[tepui_proto::v1::Resource]) -> Vec<String> {
    let mut roles: Vec<String> = resources
        .iter()
        .filter_map(|r| {
            r.reservations
                .last()
                .and_then(|x| x.role.clone())
                .or_else(|| r.role.clone().filter(|role| role != "*"))
        })
        .collect();
    roles.sort();
    roles.dedup();
    roles
}

#[allow(deprecated)] // the legacy `role` fields.
/// The roles a FrameworkInfo asks for (MULTI_ROLE or the legacy `role`).
pub(crate) fn requested_roles(info: &tepui_proto::v1::FrameworkInfo) -> Vec<String> {
    if !info.roles.is_empty() {
        return info.roles.clone();
    }
    vec![info.role.clone().unwrap_or_else(|| "*".to_string())]
}

/// A refused subscription as Mesos answers it: 200, one ERROR event with
/// the reason, and the end of the stream.
fn refused_subscription(format: content::ResponseFormat, reason: &str) -> Response {
    let (tx, rx) = crate::queue::channel(Some(1));
    let _ = tx.send(crate::state::frameworks::error_event(reason));
    drop(tx);
    let mut out = HeaderMap::new();
    out.insert("content-type", header_value(format.content_type));
    if let Some(m) = format.message_content_type {
        out.insert(content::MESSAGE_CONTENT_TYPE, header_value(m));
    }
    // Mesos's `Master::Http::scheduler` names every SUBSCRIBE stream.
    out.insert(STREAM_ID, header_value(&uuid::Uuid::new_v4().to_string()));
    let message_format = format.message_format;
    stream_response(
        rx,
        move |e: &Event, buf| content::encode_record(message_format, e, buf),
        None,
        CloseGuard::new(|| {}),
        out,
    )
}

fn subscribe(
    shared: &Arc<Shared>,
    principal: Option<&str>,
    headers: &HeaderMap,
    call: Call,
) -> Result<Response, ApiError> {
    let response_format = content::negotiate(
        header_str(headers, content::ACCEPT),
        header_str(headers, content::MESSAGE_ACCEPT),
        true,
    )?;
    let sub = call
        .subscribe
        .ok_or_else(|| ApiError::bad_request("expecting 'subscribe' to be present"))?;
    if let Some(id) = &call.framework_id
        && sub.framework_info.id.as_ref() != Some(id)
    {
        return Err(ApiError::bad_request(
            "'framework_id' differs from 'subscribe.framework_info.id'",
        ));
    }
    if header_str(headers, STREAM_ID).is_some() {
        return Err(ApiError::bad_request(format!(
            "SUBSCRIBE must not carry a '{STREAM_ID}' header"
        )));
    }
    let auth = &shared.config.auth;
    if auth.authenticate_frameworks && sub.framework_info.principal.as_deref() != principal {
        return Err(ApiError::forbidden(format!(
            "authenticated principal '{}' does not match principal '{}' set in FrameworkInfo",
            principal.unwrap_or_default(),
            sub.framework_info.principal.as_deref().unwrap_or_default()
        )));
    }
    for role in requested_roles(&sub.framework_info) {
        auth.authorize(Action::RegisterFrameworks, principal, Some(&role))?;
    }
    let name = sub.framework_info.name.clone();
    let subscription = shared
        .lock()
        .subscribe(sub.framework_info, sub.suppressed_roles)?;
    let (framework_id, stream_id, rx) = match subscription {
        Subscription::Accepted {
            framework_id,
            stream_id,
            events,
        } => (framework_id, stream_id, events),
        Subscription::Refused(reason) => {
            tracing::info!(framework = %name, %reason, "refusing a subscription");
            return Ok(refused_subscription(response_format, &reason));
        }
    };
    shared.allocate_now.notify_one();
    let weak = Arc::downgrade(shared);
    let (fid, sid) = (framework_id.clone(), stream_id.clone());
    let guard = CloseGuard::new(move || {
        if let Some(shared) = weak.upgrade() {
            shared.lock().framework_disconnected(&fid, &sid);
        }
    });
    let mut out = HeaderMap::new();
    out.insert("content-type", header_value(response_format.content_type));
    if let Some(m) = response_format.message_content_type {
        out.insert(content::MESSAGE_CONTENT_TYPE, header_value(m));
    }
    out.insert(STREAM_ID, header_value(&stream_id));
    let message_format = response_format.message_format;
    let heartbeat = Event {
        r#type: Some(event::Type::Heartbeat as i32),
        ..Default::default()
    };
    Ok(stream_response(
        rx,
        move |e: &Event, buf| content::encode_record(message_format, e, buf),
        Some((shared.config.scheduler_heartbeat, heartbeat)),
        guard,
        out,
    ))
}
