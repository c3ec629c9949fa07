//! A test agent: registers resources over the link, runs nothing, but
//! answers RUN_TASK / RUN_TASK_GROUP with TASK_RUNNING and (optionally)
//! TASK_FINISHED updates carrying uuids, honours KILL_TASK and records
//! ACKNOWLEDGEs.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use prost::Message;
use tepui_proto::link::{AgentCall, MasterEvent, agent_call, master_event};
use tepui_proto::resources::parse_resources;
use tepui_proto::v1::{
    AgentId, AgentInfo, ExecutorId, FrameworkId, FrameworkInfo, Task, TaskId, TaskState, TaskStatus,
};

use super::http::{RecordStream, call, send};

#[derive(Default)]
pub struct AgentState {
    pub agent_id: Option<String>,
    pub stream_id: Option<String>,
    /// (framework, task) -> task as the agent knows it.
    pub tasks: HashMap<(String, String), Task>,
    pub frameworks: HashMap<String, FrameworkInfo>,
    pub acked: HashSet<Vec<u8>>,
    pub events: Vec<i32>,
    pub applied_operations: usize,
    pub shutdown_frameworks: Vec<String>,
    pub messages: Vec<Vec<u8>>,
}

#[derive(Clone)]
pub struct TestAgent {
    pub master: Arc<Mutex<SocketAddr>>,
    pub resources: String,
    pub hostname: String,
    /// Tasks finish right after RUNNING when true; otherwise they run until
    /// killed.
    pub finish: bool,
    pub state: Arc<Mutex<AgentState>>,
    stop: Arc<tokio::sync::Notify>,
}

impl TestAgent {
    pub async fn start(master: SocketAddr, resources: &str, finish: bool) -> TestAgent {
        let agent = TestAgent {
            master: Arc::new(Mutex::new(master)),
            resources: resources.to_string(),
            hostname: "127.0.0.1".to_string(),
            finish,
            state: Arc::default(),
            stop: Arc::default(),
        };
        agent.connect().await;
        agent
    }

    pub fn id(&self) -> String {
        self.state
            .lock()
            .unwrap()
            .agent_id
            .clone()
            .expect("agent id")
    }

    /// Subscribes (or re-subscribes with its id and tasks) and spawns the
    /// event loop.
    pub async fn connect(&self) {
        let resources = parse_resources(&self.resources, "*").expect("resources");
        let (agent_id, tasks, frameworks) = {
            let s = self.state.lock().unwrap();
            (
                s.agent_id.clone(),
                s.tasks.values().cloned().collect::<Vec<_>>(),
                s.frameworks.values().cloned().collect::<Vec<_>>(),
            )
        };
        let call_msg = AgentCall {
            protocol_version: Some(1),
            r#type: Some(agent_call::Type::Subscribe as i32),
            agent_id: agent_id.clone().map(|value| AgentId { value }),
            subscribe: Some(agent_call::Subscribe {
                agent_info: AgentInfo {
                    hostname: self.hostname.clone(),
                    port: Some(5051),
                    resources: resources.into_vec(),
                    id: agent_id.map(|value| AgentId { value }),
                    ..Default::default()
                },
                version: Some("test".into()),
                tasks,
                frameworks,
                ..Default::default()
            }),
            ..Default::default()
        };
        let addr = *self.master.lock().unwrap();
        let resp = send(
            addr,
            "POST",
            "/tepui/link/v1",
            &[("content-type", "application/x-protobuf")],
            call_msg.encode_to_vec(),
        )
        .await;
        assert_eq!(resp.status(), 200);
        let stream_id = resp
            .headers()
            .get("Tepui-Link-Stream-Id")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let mut records = RecordStream::new(resp.into_body());
        let first = records.next().await.expect("SUBSCRIBED");
        let event = MasterEvent::decode(first).unwrap();
        assert_eq!(event.r#type, Some(master_event::Type::Subscribed as i32));
        {
            let mut s = self.state.lock().unwrap();
            s.agent_id = Some(event.subscribed.unwrap().agent_id.value);
            s.stream_id = Some(stream_id);
        }
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = me.stop.notified() => break,
                    record = records.next() => {
                        let Some(record) = record else { break };
                        let event = MasterEvent::decode(record).unwrap();
                        me.handle(event).await;
                    }
                }
            }
        });
    }

    /// Drops the link (as if the agent process died).
    pub fn disconnect(&self) {
        self.stop.notify_one();
    }

    async fn handle(&self, event: MasterEvent) {
        let kind = event.r#type.unwrap_or(0);
        self.state.lock().unwrap().events.push(kind);
        match master_event::Type::try_from(kind).unwrap_or(master_event::Type::Unknown) {
            master_event::Type::RunTask => {
                let run = event.run_task.unwrap();
                let fid = run.framework.id.clone().unwrap().value;
                let executor = run.executor.as_ref().map(|e| e.executor_id.clone());
                self.start_task(fid, run.framework, run.task, executor)
                    .await;
            }
            master_event::Type::RunTaskGroup => {
                let run = event.run_task_group.unwrap();
                let fid = run.framework.id.clone().unwrap().value;
                for task in run.task_group.tasks {
                    self.start_task(
                        fid.clone(),
                        run.framework.clone(),
                        task,
                        Some(run.executor.executor_id.clone()),
                    )
                    .await;
                }
            }
            master_event::Type::KillTask => {
                let kill = event.kill_task.unwrap();
                let key = (kill.framework_id.value.clone(), kill.task_id.value.clone());
                let known = self.state.lock().unwrap().tasks.contains_key(&key);
                if known {
                    self.update(&key.0, &key.1, TaskState::TaskKilled).await;
                }
            }
            master_event::Type::Acknowledge => {
                let ack = event.acknowledge.unwrap();
                self.state.lock().unwrap().acked.insert(ack.uuid.to_vec());
            }
            master_event::Type::FrameworkMessage => {
                let m = event.framework_message.unwrap();
                self.state.lock().unwrap().messages.push(m.data.to_vec());
            }
            master_event::Type::ApplyOperation => {
                self.state.lock().unwrap().applied_operations += 1;
            }
            master_event::Type::ShutdownFramework => {
                let fid = event.shutdown_framework.unwrap().framework_id.value;
                let mut s = self.state.lock().unwrap();
                s.tasks.retain(|(f, _), _| *f != fid);
                s.shutdown_frameworks.push(fid);
            }
            _ => {}
        }
    }

    async fn start_task(
        &self,
        framework_id: String,
        framework: FrameworkInfo,
        info: tepui_proto::v1::TaskInfo,
        executor: Option<ExecutorId>,
    ) {
        let key = (framework_id.clone(), info.task_id.value.clone());
        {
            let mut s = self.state.lock().unwrap();
            s.frameworks.insert(framework_id.clone(), framework);
            let agent_id = s.agent_id.clone().unwrap();
            s.tasks.insert(
                key.clone(),
                Task {
                    name: info.name.clone(),
                    task_id: info.task_id.clone(),
                    framework_id: FrameworkId {
                        value: framework_id.clone(),
                    },
                    executor_id: executor,
                    agent_id: AgentId { value: agent_id },
                    state: TaskState::TaskStaging as i32,
                    resources: info.resources.clone(),
                    ..Default::default()
                },
            );
        }
        self.update(&key.0, &key.1, TaskState::TaskRunning).await;
        if self.finish {
            self.update(&key.0, &key.1, TaskState::TaskFinished).await;
        }
    }

    /// Sends a status update with a fresh uuid.
    pub async fn update(&self, framework_id: &str, task_id: &str, state: TaskState) {
        let (agent_id, stream_id) = {
            let mut s = self.state.lock().unwrap();
            if let Some(t) = s
                .tasks
                .get_mut(&(framework_id.to_string(), task_id.to_string()))
            {
                t.state = state as i32;
            }
            (s.agent_id.clone().unwrap(), s.stream_id.clone().unwrap())
        };
        let uuid = uuid::Uuid::new_v4().as_bytes().to_vec();
        let call_msg = AgentCall {
            protocol_version: Some(1),
            r#type: Some(agent_call::Type::StatusUpdate as i32),
            agent_id: Some(AgentId {
                value: agent_id.clone(),
            }),
            status_update: Some(agent_call::StatusUpdate {
                framework_id: FrameworkId {
                    value: framework_id.to_string(),
                },
                status: TaskStatus {
                    task_id: TaskId {
                        value: task_id.to_string(),
                    },
                    state: state as i32,
                    source: Some(tepui_proto::v1::task_status::Source::Executor as i32),
                    agent_id: Some(AgentId { value: agent_id }),
                    uuid: Some(uuid.into()),
                    timestamp: Some(0.0),
                    ..Default::default()
                },
                executor_id: None,
                latest_state: Some(state as i32),
            }),
            ..Default::default()
        };
        let addr = *self.master.lock().unwrap();
        let (status, _, body) = call(
            addr,
            "POST",
            "/tepui/link/v1",
            &[
                ("content-type", "application/x-protobuf"),
                ("Tepui-Link-Stream-Id", &stream_id),
            ],
            call_msg.encode_to_vec(),
        )
        .await;
        assert_eq!(status, 202, "{}", String::from_utf8_lossy(&body));
    }

    /// An executor's message to its scheduler.
    pub async fn send_message(&self, framework_id: &str, executor_id: &str, data: &[u8]) {
        let (agent_id, stream_id) = {
            let s = self.state.lock().unwrap();
            (s.agent_id.clone().unwrap(), s.stream_id.clone().unwrap())
        };
        let call_msg = AgentCall {
            protocol_version: Some(1),
            r#type: Some(agent_call::Type::FrameworkMessage as i32),
            agent_id: Some(AgentId { value: agent_id }),
            framework_message: Some(agent_call::FrameworkMessage {
                framework_id: FrameworkId {
                    value: framework_id.to_string(),
                },
                executor_id: ExecutorId {
                    value: executor_id.to_string(),
                },
                data: data.to_vec().into(),
            }),
            ..Default::default()
        };
        let addr = *self.master.lock().unwrap();
        let (status, _, _) = call(
            addr,
            "POST",
            "/tepui/link/v1",
            &[
                ("content-type", "application/x-protobuf"),
                ("Tepui-Link-Stream-Id", &stream_id),
            ],
            call_msg.encode_to_vec(),
        )
        .await;
        assert_eq!(status, 202);
    }

    /// EXECUTOR_EXITED, as the agent reports the end of an executor.
    pub async fn executor_exited(&self, framework_id: &str, executor_id: &str) {
        let (agent_id, stream_id) = {
            let s = self.state.lock().unwrap();
            (s.agent_id.clone().unwrap(), s.stream_id.clone().unwrap())
        };
        let call_msg = AgentCall {
            protocol_version: Some(1),
            r#type: Some(agent_call::Type::ExecutorExited as i32),
            agent_id: Some(AgentId { value: agent_id }),
            executor_exited: Some(agent_call::ExecutorExited {
                framework_id: FrameworkId {
                    value: framework_id.to_string(),
                },
                executor_id: ExecutorId {
                    value: executor_id.to_string(),
                },
                status: Some(9),
            }),
            ..Default::default()
        };
        let addr = *self.master.lock().unwrap();
        let (status, _, _) = call(
            addr,
            "POST",
            "/tepui/link/v1",
            &[
                ("content-type", "application/x-protobuf"),
                ("Tepui-Link-Stream-Id", &stream_id),
            ],
            call_msg.encode_to_vec(),
        )
        .await;
        assert_eq!(status, 202);
    }

    pub fn running_tasks(&self) -> usize {
        self.state
            .lock()
            .unwrap()
            .tasks
            .values()
            .filter(|t| t.state == TaskState::TaskRunning as i32)
            .count()
    }
}
