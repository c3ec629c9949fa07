//! A stand-in master for agent tests: a real HTTP server speaking the link
//! protocol (`/tepui/link/v1`) that the test drives as the scheduler would.
//! It records every call the agent makes and sends whatever events the test
//! asks for on the agent's stream.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::BytesMut;
use prost::Message;
use tepui_proto::link::{AgentCall, MasterEvent, agent_call, master_event};
use tepui_proto::v1::{
    AgentId, CommandInfo, ExecutorInfo, FrameworkId, FrameworkInfo, Resource, TaskId, TaskInfo,
    TaskState, TaskStatus, value,
};
use tokio::sync::mpsc;

#[derive(Default)]
struct Inner {
    /// The current agent stream, if subscribed.
    stream: Option<mpsc::UnboundedSender<MasterEvent>>,
    subscribes: Vec<AgentCall>,
    updates: Vec<agent_call::StatusUpdate>,
    exits: Vec<agent_call::ExecutorExited>,
}

#[derive(Clone)]
pub struct FakeMaster {
    inner: Arc<Mutex<Inner>>,
    pub address: String,
    notify: Arc<tokio::sync::Notify>,
}

impl FakeMaster {
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let notify = Arc::new(tokio::sync::Notify::new());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let master = FakeMaster {
            inner,
            address,
            notify,
        };
        let app = axum::Router::new()
            .route("/tepui/link/v1", post(link))
            .with_state(master.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        master
    }

    pub fn subscribes(&self) -> usize {
        self.inner.lock().unwrap().subscribes.len()
    }

    pub fn last_subscribe(&self) -> Option<AgentCall> {
        self.inner.lock().unwrap().subscribes.last().cloned()
    }

    /// Sends an event on the agent's current stream.
    pub fn send(&self, event: MasterEvent) {
        let inner = self.inner.lock().unwrap();
        let tx = inner.stream.as_ref().expect("the agent is subscribed");
        tx.send(event).unwrap();
    }

    pub fn updates(&self) -> Vec<agent_call::StatusUpdate> {
        self.inner.lock().unwrap().updates.clone()
    }

    pub fn exits(&self) -> Vec<agent_call::ExecutorExited> {
        self.inner.lock().unwrap().exits.clone()
    }

    /// Waits until `check` holds (re-checked on every agent call).
    pub async fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&Self) -> Option<T>,
    ) -> T {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(v) = check(self) {
                return v;
            }
            // Woken by every agent call, and at least every 100 ms for
            // conditions outside the master (logs, files).
            let notified = self.notify.notified();
            let nap = tokio::time::Instant::now() + Duration::from_millis(100);
            let _ = tokio::time::timeout_at(nap.min(deadline), notified).await;
            if tokio::time::Instant::now() >= deadline {
                if let Some(v) = check(self) {
                    return v;
                }
                panic!(
                    "timed out waiting for {what}; updates so far: {:?}",
                    self.states()
                );
            }
        }
    }

    /// (task, state) of every update received, in order.
    pub fn states(&self) -> Vec<(String, String)> {
        self.updates()
            .iter()
            .map(|u| {
                (
                    u.status.task_id.value.clone(),
                    TaskState::try_from(u.status.state)
                        .map(|s| s.as_str_name().to_string())
                        .unwrap_or_default(),
                )
            })
            .collect()
    }

    /// Waits for the `n`-th update (1-based) and returns it.
    pub async fn nth_update(&self, n: usize, timeout: Duration) -> agent_call::StatusUpdate {
        self.wait_for(&format!("status update #{n}"), timeout, |m| {
            m.updates().get(n - 1).cloned()
        })
        .await
    }

    pub fn acknowledge(&self, update: &agent_call::StatusUpdate) {
        self.send(MasterEvent {
            r#type: Some(master_event::Type::Acknowledge as i32),
            acknowledge: Some(master_event::Acknowledge {
                framework_id: update.framework_id.clone(),
                task_id: update.status.task_id.clone(),
                uuid: update.status.uuid.clone().unwrap(),
            }),
            ..Default::default()
        });
    }

    pub fn run_task(
        &self,
        framework: &FrameworkInfo,
        task: TaskInfo,
        executor: Option<ExecutorInfo>,
    ) {
        self.send(MasterEvent {
            r#type: Some(master_event::Type::RunTask as i32),
            run_task: Some(master_event::RunTask {
                framework: framework.clone(),
                task,
                executor,
                allocation_info: Vec::new(),
            }),
            ..Default::default()
        });
    }

    pub fn kill_task(&self, framework: &FrameworkInfo, task: &str) {
        self.send(MasterEvent {
            r#type: Some(master_event::Type::KillTask as i32),
            kill_task: Some(master_event::KillTask {
                framework_id: framework.id.clone().unwrap(),
                task_id: TaskId { value: task.into() },
                kill_policy: None,
            }),
            ..Default::default()
        });
    }
}

async fn link(State(master): State<FakeMaster>, body: Bytes) -> Response {
    let call = AgentCall::decode(body).unwrap();
    match call.r#type.and_then(|t| agent_call::Type::try_from(t).ok()) {
        Some(agent_call::Type::Subscribe) => {
            let (tx, mut rx) = mpsc::unbounded_channel::<MasterEvent>();
            let subscribed = MasterEvent {
                r#type: Some(master_event::Type::Subscribed as i32),
                subscribed: Some(master_event::Subscribed {
                    agent_id: call.agent_id.clone().unwrap_or(AgentId {
                        value: "fake-agent-S1".into(),
                    }),
                    heartbeat_interval_seconds: Some(1.0),
                    master_info: None,
                }),
                ..Default::default()
            };
            tx.send(subscribed).unwrap();
            {
                let mut inner = master.inner.lock().unwrap();
                inner.subscribes.push(call);
                inner.stream = Some(tx);
            }
            master.notify.notify_waiters();
            // A task pumps events and heartbeats into the response body.
            let (body_tx, body_rx) =
                mpsc::unbounded_channel::<Result<Bytes, std::convert::Infallible>>();
            tokio::spawn(async move {
                let mut ticker = rx_heartbeat();
                loop {
                    let event = tokio::select! {
                        e = rx.recv() => match e { Some(e) => e, None => return },
                        _ = ticker.tick() => MasterEvent {
                            r#type: Some(master_event::Type::Heartbeat as i32),
                            ..Default::default()
                        },
                    };
                    let mut buf = BytesMut::new();
                    tepui_proto::recordio::encode(&event.encode_to_vec(), &mut buf);
                    if body_tx.send(Ok(buf.freeze())).is_err() {
                        return;
                    }
                }
            });
            let body =
                Body::from_stream(futures_util::stream::unfold(body_rx, |mut rx| async move {
                    rx.recv().await.map(|item| (item, rx))
                }));
            let mut response = Response::new(body);
            response.headers_mut().insert(
                "Tepui-Link-Stream-Id",
                axum::http::HeaderValue::from_static("fake-stream"),
            );
            response
        }
        Some(agent_call::Type::StatusUpdate) => {
            master
                .inner
                .lock()
                .unwrap()
                .updates
                .push(call.status_update.unwrap());
            master.notify.notify_waiters();
            StatusCode::ACCEPTED.into_response()
        }
        Some(agent_call::Type::ExecutorExited) => {
            master
                .inner
                .lock()
                .unwrap()
                .exits
                .push(call.executor_exited.unwrap());
            master.notify.notify_waiters();
            StatusCode::ACCEPTED.into_response()
        }
        _ => StatusCode::ACCEPTED.into_response(),
    }
}

fn rx_heartbeat() -> tokio::time::Interval {
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.reset();
    ticker
}

// --- builders for the messages a scheduler sends -------------------------------

pub fn framework(name: &str, checkpoint: bool) -> FrameworkInfo {
    FrameworkInfo {
        user: "root".into(),
        name: name.into(),
        id: Some(FrameworkId {
            value: format!("{name}-fw"),
        }),
        checkpoint: Some(checkpoint),
        ..Default::default()
    }
}

pub fn scalar(name: &str, value: f64) -> Resource {
    Resource {
        name: name.into(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(value::Scalar { value }),
        ..Default::default()
    }
}

pub fn command_task(id: &str, command: &str) -> TaskInfo {
    TaskInfo {
        name: id.into(),
        task_id: TaskId { value: id.into() },
        agent_id: AgentId {
            value: "fake-agent-S1".into(),
        },
        resources: vec![scalar("cpus", 0.1), scalar("mem", 64.0)],
        command: Some(CommandInfo {
            value: Some(command.into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn state_of(status: &TaskStatus) -> TaskState {
    TaskState::try_from(status.state).unwrap()
}
