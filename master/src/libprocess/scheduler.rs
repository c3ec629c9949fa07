//! The scheduler driver's messages (src/sched/sched.cpp sends them; the
//! master installs their handlers in `Master::initialize`,
//! src/master/master.cpp) as v1 scheduler calls, and the framework's v1
//! events as the messages the driver installs handlers for.

use std::sync::Arc;

use prost::Message as _;
use tepui_proto::auth::Action;
use tepui_proto::v0::{self, Upid};
use tepui_proto::v1::scheduler::call::{self, Type as CallType};
use tepui_proto::v1::scheduler::{Call, Event, event};
use tepui_proto::v1::{FrameworkId, FrameworkInfo, offer};

use super::{Peer, Refusal, Session};
use crate::state::Shared;
use crate::state::frameworks::Subscription;

/// Decodes and acts on message `name` from `from`. Registration goes on in
/// the background (the driver's pid must be reachable first); every other
/// message is applied before the 202.
pub fn receive(shared: &Arc<Shared>, from: Upid, name: &str, body: &[u8]) -> Result<(), Refusal> {
    fn decode<M: prost::Message + Default>(body: &[u8]) -> Result<M, Refusal> {
        M::decode(body).map_err(Refusal::Undecodable)
    }
    let Some(short) = name.strip_prefix(v0::PREFIX) else {
        if name == v0::SCHEDULER_CALL {
            // SUBSCRIBE is read with the v0 schema (its fields differ).
            let head: v0::SubscribeCall = decode(body)?;
            if head.r#type == Some(CallType::Subscribe as i32) {
                return subscribe_call(shared, from, head);
            }
            return scheduler_call(shared, from, decode(body)?);
        }
        return Err(Refusal::UnknownName);
    };
    let (framework_id, call) = match short {
        "RegisterFrameworkMessage" => {
            let m: v0::RegisterFrameworkMessage = decode(body)?;
            spawn_register(shared, from, m.framework, Vec::new(), Registration::New);
            return Ok(());
        }
        "ReregisterFrameworkMessage" => {
            let m: v0::ReregisterFrameworkMessage = decode(body)?;
            let how = if m.failover {
                Registration::Failover
            } else {
                Registration::Again
            };
            spawn_register(shared, from, m.framework, Vec::new(), how);
            return Ok(());
        }
        "UnregisterFrameworkMessage" => {
            let m: v0::UnregisterFrameworkMessage = decode(body)?;
            (m.framework_id, call_of(CallType::Teardown))
        }
        "DeactivateFrameworkMessage" => {
            // The driver stopped for a failover (sched.cpp, `stop(true)`,
            // `abort()`): no more offers; the failover timeout runs, as
            // `Master::deactivateFramework` and a later exit would.
            let m: v0::UnregisterFrameworkMessage = decode(body)?;
            deactivate(shared, &from, &m.framework_id.value);
            return Ok(());
        }
        "LaunchTasksMessage" => {
            let m: v0::LaunchTasksMessage = decode(body)?;
            (m.framework_id.clone(), launch(m))
        }
        "ReviveOffersMessage" => {
            let m: v0::ReviveOffersMessage = decode(body)?;
            let mut c = call_of(CallType::Revive);
            c.revive = Some(call::Revive { roles: m.roles });
            (m.framework_id, c)
        }
        "KillTaskMessage" => {
            let m: v0::KillTaskMessage = decode(body)?;
            let mut c = call_of(CallType::Kill);
            c.kill = Some(call::Kill {
                task_id: m.task_id,
                agent_id: None,
                kill_policy: m.kill_policy,
            });
            (m.framework_id, c)
        }
        "StatusUpdateAcknowledgementMessage" => {
            let m: v0::StatusUpdateAcknowledgementMessage = decode(body)?;
            let mut c = call_of(CallType::Acknowledge);
            c.acknowledge = Some(call::Acknowledge {
                agent_id: m.slave_id,
                task_id: m.task_id,
                uuid: m.uuid,
            });
            (m.framework_id, c)
        }
        "ReconcileTasksMessage" => {
            let m: v0::ReconcileTasksMessage = decode(body)?;
            let mut c = call_of(CallType::Reconcile);
            c.reconcile = Some(call::Reconcile {
                tasks: m
                    .statuses
                    .into_iter()
                    .map(|s| call::reconcile::Task {
                        task_id: s.task_id,
                        agent_id: s.agent_id,
                    })
                    .collect(),
            });
            (m.framework_id, c)
        }
        "FrameworkToExecutorMessage" => {
            let m: v0::FrameworkToExecutorMessage = decode(body)?;
            let mut c = call_of(CallType::Message);
            c.message = Some(call::Message {
                agent_id: m.slave_id,
                executor_id: m.executor_id,
                data: m.data,
            });
            (m.framework_id, c)
        }
        "ResourceRequestMessage" => {
            // Mesos's allocator ignores requests; so does tepui's.
            return Ok(());
        }
        _ => return Err(Refusal::UnknownName),
    };
    apply(shared, &from, &framework_id.value, call);
    Ok(())
}

fn call_of(kind: CallType) -> Call {
    Call {
        r#type: Some(kind as i32),
        ..Default::default()
    }
}

/// LaunchTasksMessage: an ACCEPT with one LAUNCH of its tasks, or, with no
/// tasks, a DECLINE (sched.cpp `launchTasks` on an offer with nothing to
/// launch; `Master::launchTasks` turns it into an ACCEPT likewise).
fn launch(m: v0::LaunchTasksMessage) -> Call {
    if m.tasks.is_empty() {
        let mut c = call_of(CallType::Decline);
        c.decline = Some(call::Decline {
            offer_ids: m.offer_ids,
            filters: m.filters,
        });
        return c;
    }
    let mut c = call_of(CallType::Accept);
    c.accept = Some(call::Accept {
        offer_ids: m.offer_ids,
        operations: vec![tepui_proto::v1::offer::Operation {
            r#type: Some(offer::operation::Type::Launch as i32),
            launch: Some(offer::operation::Launch {
                task_infos: m.tasks,
            }),
            ..Default::default()
        }],
        filters: m.filters,
    });
    c
}

/// Applies `call` for the framework if `from` is its registered driver
/// (`Master::getFramework` then `framework->pid != from`: dropped, as
/// Mesos drops a message from anyone else).
fn apply(shared: &Arc<Shared>, from: &Upid, framework_id: &str, call: Call) {
    let kind = call
        .r#type
        .and_then(|t| CallType::try_from(t).ok())
        .unwrap_or(CallType::Unknown);
    let mut master = shared.lock();
    master.metrics.scheduler_calls += 1;
    let registered = shared.libprocess.lock().get(framework_id).cloned();
    let Some(session) = registered.filter(|s| &s.pid == from) else {
        tracing::warn!(framework = %framework_id, %from, call = kind.as_str_name(), "dropping a libprocess call: not from the framework's registered driver");
        return;
    };
    let connected = master
        .frameworks
        .get(framework_id)
        .and_then(|f| f.conn.as_ref())
        .is_some_and(|c| c.stream_id == session.stream_id);
    if !connected {
        tracing::warn!(framework = %framework_id, %from, call = kind.as_str_name(), "dropping a libprocess call: the framework is not connected");
        return;
    }
    if kind == CallType::Teardown {
        // No "Framework removed" error back to a driver that unregistered.
        shared.libprocess.lock().remove(framework_id);
    }
    if let Err(e) = crate::scheduler_api::apply(shared, master, None, framework_id, kind, call) {
        // v0 has no answer to a call: Mesos logs and drops it too.
        tracing::warn!(framework = %framework_id, call = kind.as_str_name(), error = %e.message, "a libprocess call was refused");
    }
}

/// SUBSCRIBE over libprocess (sched.cpp `doReliableRegistration`): a
/// registration; with the framework's id, `force` fails over.
fn subscribe_call(
    shared: &Arc<Shared>,
    from: Upid,
    call: v0::SubscribeCall,
) -> Result<(), Refusal> {
    let Some(sub) = call.subscribe else {
        tracing::warn!(%from, "dropping SUBSCRIBE without 'subscribe'");
        return Ok(());
    };
    let info = sub.framework_info;
    let how = match (&info.id, sub.force.unwrap_or(false)) {
        (None, _) => Registration::New,
        (Some(_), true) => Registration::Failover,
        (Some(_), false) => Registration::Again,
    };
    spawn_register(shared, from, info, sub.suppressed_roles, how);
    Ok(())
}

/// `mesos.scheduler.Call` over libprocess: what Mesos 1.x's libmesos sends
/// for everything (sched.cpp); the same calls as over HTTP.
fn scheduler_call(shared: &Arc<Shared>, from: Upid, call: Call) -> Result<(), Refusal> {
    let kind = call
        .r#type
        .and_then(|t| CallType::try_from(t).ok())
        .unwrap_or(CallType::Unknown);
    let Some(framework_id) = call.framework_id.clone() else {
        tracing::warn!(%from, call = kind.as_str_name(), "dropping a call without 'framework_id'");
        return Ok(());
    };
    apply(shared, &from, &framework_id.value, call);
    Ok(())
}

/// How a driver (re-)registers: the answer it expects differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Registration {
    /// RegisterFrameworkMessage: FrameworkRegisteredMessage.
    New,
    /// ReregisterFrameworkMessage with `failover`: a new driver for the
    /// framework (sched.cpp: answered as a registration).
    Failover,
    /// ReregisterFrameworkMessage without `failover`: the same driver
    /// reconnecting (FrameworkReregisteredMessage).
    Again,
}

fn spawn_register(
    shared: &Arc<Shared>,
    from: Upid,
    info: FrameworkInfo,
    suppressed: Vec<String>,
    how: Registration,
) {
    let shared = shared.clone();
    tokio::spawn(async move { register(shared, from, info, suppressed, how).await });
}

/// The master's own pid, the sender of everything it sends (drivers check
/// that messages come from the leading master's pid).
fn master_pid(shared: &Shared) -> String {
    shared
        .lock()
        .info
        .pid
        .clone()
        .unwrap_or_else(|| format!("master@{}", shared.config.listen))
}

/// `Master::registerFramework` / `reregisterFramework` / `subscribe` for a
/// pid framework: checks, connects to the driver (an unreachable pid is
/// not registered), subscribes, and starts forwarding its events.
async fn register(
    shared: Arc<Shared>,
    from: Upid,
    info: FrameworkInfo,
    suppressed: Vec<String>,
    how: Registration,
) {
    let me = master_pid(&shared);
    let name = info.name.clone();
    // A retry from a driver already registered (it backs off and resends
    // until it hears back): answered again, not registered twice.
    let known = {
        let master = shared.lock();
        let sessions = shared.libprocess.lock();
        sessions
            .iter()
            .find(|(id, s)| {
                s.pid == from
                    && master
                        .frameworks
                        .get(*id)
                        .and_then(|f| f.conn.as_ref())
                        .is_some_and(|c| c.stream_id == s.stream_id)
            })
            .map(|(id, s)| (id.clone(), s.peer.clone(), master.info.clone()))
    };
    if let Some((id, peer, master_info)) = known
        && info.id.as_ref().is_none_or(|i| i.value == id)
    {
        tracing::info!(framework = %id, %from, "a registered driver registered again: answering again");
        let reply = v0::FrameworkRegisteredMessage {
            framework_id: FrameworkId { value: id },
            master_info,
        };
        let name = match how {
            Registration::Again => "FrameworkReregisteredMessage",
            _ => "FrameworkRegisteredMessage",
        };
        let _ = peer.send(
            &me,
            &format!("{}{name}", v0::PREFIX),
            &reply.encode_to_vec(),
        );
        return;
    }
    let (peer, exited) = match Peer::open(from.clone(), shared.config.subscriber_queue).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(framework = %name, %from, error = %e, "not registering a libprocess framework: its pid cannot be reached");
            return;
        }
    };
    let refuse = |reason: String| {
        tracing::info!(framework = %name, %from, %reason, "refusing a libprocess framework");
        let m = v0::FrameworkErrorMessage { message: reason };
        let _ = peer.send(
            &me,
            "mesos.internal.FrameworkErrorMessage",
            &m.encode_to_vec(),
        );
    };
    let auth = &shared.config.auth;
    if auth.authenticate_frameworks {
        // Mesos authenticates pid frameworks with CRAM-MD5 over libprocess
        // (`Master::authenticate`); tepui authenticates frameworks over
        // HTTP only, so with --authenticate_frameworks a v0 driver is
        // refused rather than let in unauthenticated.
        return refuse(
            "Framework authentication over libprocess (CRAM-MD5) is not supported by this \
             master: use the v1 scheduler HTTP API with credentials"
                .into(),
        );
    }
    for role in crate::scheduler_api::requested_roles(&info) {
        let principal = info.principal.as_deref();
        if let Err(e) = auth.authorize(Action::RegisterFrameworks, principal, Some(&role)) {
            return refuse(e.message);
        }
    }
    let outcome = {
        let mut master = shared.lock();
        match master.subscribe(info, suppressed) {
            Ok(Subscription::Accepted {
                framework_id,
                stream_id,
                events,
            }) => {
                // Recorded under the state's lock: the old driver's stream
                // sees the new session when it is told of the failover.
                shared.libprocess.lock().insert(
                    framework_id.clone(),
                    Session {
                        pid: from.clone(),
                        stream_id: stream_id.clone(),
                        peer: peer.clone(),
                    },
                );
                Ok((framework_id, stream_id, events))
            }
            Ok(Subscription::Refused(reason)) => Err(reason),
            Err(e) => Err(e.message),
        }
    };
    match outcome {
        Ok((framework_id, stream_id, events)) => {
            tracing::info!(framework = %framework_id, %from, ?how, "libprocess framework registered");
            shared.allocate_now.notify_one();
            tokio::spawn(forward(
                shared.clone(),
                framework_id,
                stream_id,
                events,
                peer,
                exited,
                how,
            ));
        }
        Err(reason) => refuse(reason),
    }
}

/// DeactivateFrameworkMessage from the framework's driver.
fn deactivate(shared: &Arc<Shared>, from: &Upid, framework_id: &str) {
    let mut master = shared.lock();
    let session = shared.libprocess.lock().get(framework_id).cloned();
    match session.filter(|s| &s.pid == from) {
        Some(s) => master.framework_disconnected(framework_id, &s.stream_id),
        None => {
            tracing::warn!(framework = %framework_id, %from, "dropping DeactivateFrameworkMessage: not from the framework's driver");
        }
    }
}

/// Sends the framework's events to its driver until the subscription ends
/// (removed, failed over, too slow) or the driver is gone; then the
/// framework is disconnected and its failover timeout runs, as for an
/// HTTP framework whose stream closed (`Master::exited`).
async fn forward(
    shared: Arc<Shared>,
    framework_id: String,
    stream_id: String,
    mut events: crate::queue::EventRx<Event>,
    peer: Peer,
    mut exited: tokio::sync::oneshot::Receiver<String>,
    how: Registration,
) {
    let me = master_pid(&shared);
    let why = loop {
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else {
                    break "the subscription ended".to_string();
                };
                let mut full = false;
                for (name, body) in translate(&shared, &framework_id, &peer.pid, how, &event) {
                    if peer.send(&me, &format!("{}{name}", v0::PREFIX), &body).is_err() {
                        full = true;
                        break;
                    }
                }
                if full {
                    break "the driver stopped reading: its queue is full".to_string();
                }
            }
            reason = &mut exited => {
                break reason.unwrap_or_else(|_| "its connection ended".to_string());
            }
        }
    };
    tracing::info!(framework = %framework_id, pid = %peer.pid, reason = %why, "libprocess framework driver gone");
    let mut master = shared.lock();
    master.framework_disconnected(&framework_id, &stream_id);
    let mut sessions = shared.libprocess.lock();
    if sessions
        .get(&framework_id)
        .is_some_and(|s| s.stream_id == stream_id)
    {
        sessions.remove(&framework_id);
    }
}

/// The v0 messages for one v1 event, as Mesos's master sends them to a pid
/// framework (each `Framework::send` of `Master` in master.cpp).
fn translate(
    shared: &Shared,
    framework_id: &str,
    driver: &Upid,
    how: Registration,
    event: &Event,
) -> Vec<(&'static str, Vec<u8>)> {
    let fid = || FrameworkId {
        value: framework_id.to_string(),
    };
    let kind = event
        .r#type
        .and_then(|t| event::Type::try_from(t).ok())
        .unwrap_or(event::Type::Unknown);
    let agent_pid = |agent_id: &str| {
        let master = shared.lock();
        master
            .agents
            .get(agent_id)
            .map(|a| crate::state::agents::agent_pid(&a.info, a.address.as_deref()))
    };
    let one = |name: &'static str, m: &dyn Fn() -> Vec<u8>| vec![(name, m())];
    match kind {
        event::Type::Subscribed => {
            let Some(s) = &event.subscribed else {
                return Vec::new();
            };
            let m = v0::FrameworkRegisteredMessage {
                framework_id: s.framework_id.clone(),
                master_info: s.master_info.clone().unwrap_or_default(),
            };
            let name = if how == Registration::Again {
                "FrameworkReregisteredMessage"
            } else {
                "FrameworkRegisteredMessage"
            };
            one(name, &|| m.encode_to_vec())
        }
        event::Type::Offers => {
            let offers = event
                .offers
                .as_ref()
                .map(|o| o.offers.clone())
                .unwrap_or_default();
            let pids = offers
                .iter()
                .map(|o| agent_pid(&o.agent_id.value).unwrap_or_default())
                .collect();
            let m = v0::ResourceOffersMessage { offers, pids };
            one("ResourceOffersMessage", &|| m.encode_to_vec())
        }
        event::Type::Rescind => {
            let Some(r) = &event.rescind else {
                return Vec::new();
            };
            let m = v0::RescindResourceOfferMessage {
                offer_id: r.offer_id.clone(),
            };
            one("RescindResourceOfferMessage", &|| m.encode_to_vec())
        }
        event::Type::Update => {
            let Some(u) = &event.update else {
                return Vec::new();
            };
            let status = u.status.clone();
            let pid = status.agent_id.as_ref().and_then(|a| agent_pid(&a.value));
            let m = v0::StatusUpdateMessage {
                update: v0::StatusUpdate {
                    framework_id: fid(),
                    executor_id: status.executor_id.clone(),
                    slave_id: status.agent_id.clone(),
                    timestamp: status.timestamp.unwrap_or_else(crate::state::now_secs),
                    uuid: status.uuid.clone(),
                    latest_state: None,
                    status,
                },
                pid,
            };
            one("StatusUpdateMessage", &|| m.encode_to_vec())
        }
        event::Type::Message => {
            let Some(msg) = &event.message else {
                return Vec::new();
            };
            let m = v0::ExecutorToFrameworkMessage {
                slave_id: msg.agent_id.clone(),
                framework_id: fid(),
                executor_id: msg.executor_id.clone(),
                data: msg.data.clone(),
            };
            one("ExecutorToFrameworkMessage", &|| m.encode_to_vec())
        }
        event::Type::Failure => {
            let Some(f) = &event.failure else {
                return Vec::new();
            };
            let slave_id = f.agent_id.clone().unwrap_or_default();
            match &f.executor_id {
                Some(executor_id) => {
                    let m = v0::ExitedExecutorMessage {
                        slave_id,
                        framework_id: fid(),
                        executor_id: executor_id.clone(),
                        status: f.status.unwrap_or(0),
                    };
                    one("ExitedExecutorMessage", &|| m.encode_to_vec())
                }
                None => {
                    let m = v0::LostSlaveMessage { slave_id };
                    one("LostSlaveMessage", &|| m.encode_to_vec())
                }
            }
        }
        event::Type::Error => {
            let message = event
                .error
                .as_ref()
                .map(|e| e.message.clone())
                .unwrap_or_default();
            // Not to a driver that unregistered, nor to the same driver
            // registering again (its new subscription replaced this one).
            let current = shared
                .libprocess
                .lock()
                .get(framework_id)
                .map(|s| s.pid.clone());
            if current.as_ref().is_none_or(|pid| pid == driver) {
                return Vec::new();
            }
            let m = v0::FrameworkErrorMessage { message };
            one("FrameworkErrorMessage", &|| m.encode_to_vec())
        }
        _ => Vec::new(),
    }
}
