//! Master failover benchmark: the registry holds 40k agents; the master
//! starts on it and 40k simulated agents re-register over HTTP on the link,
//! each reporting 10 running tasks (400k tasks), 128 at a time. Timed from
//! the first SUBSCRIBE to the last SUBSCRIBED. Request bodies are encoded
//! before the clock starts (real agents do that on their own machines); the
//! client side of every connection still runs on this machine's cores.
//!
//! `cargo bench -p tepui-master --bench failover`; `TEPUI_BENCH_AGENTS`,
//! `TEPUI_BENCH_TASKS` (per agent) and `TEPUI_BENCH_CONCURRENCY` override.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use prost::Message;
use tepui_master::MasterConfig;
use tepui_master::registry::{Registry, StoredAgent};
use tepui_proto::link::{AgentCall, agent_call};
use tepui_proto::resources::parse_resources;
use tepui_proto::v1::{AgentId, AgentInfo, FrameworkId, FrameworkInfo, Task, TaskId, TaskState};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let agents = env("TEPUI_BENCH_AGENTS", 40_000);
    let tasks_per_agent = env("TEPUI_BENCH_TASKS", 10);
    let concurrency = env("TEPUI_BENCH_CONCURRENCY", 128);
    let frameworks = 100;
    let dir = tempfile::tempdir().unwrap();

    let agent_resources = parse_resources("cpus:24;mem:4096;disk:4096", "*").unwrap();
    let mut task_resources = parse_resources("cpus:0.1;mem:32", "*").unwrap();
    task_resources.allocate("*");
    let info = |i: usize| AgentInfo {
        hostname: format!("10.0.{}.{}", i / 250, i % 250),
        port: Some(5051),
        resources: agent_resources.clone().into_vec(),
        id: Some(AgentId {
            value: format!("bench-S{i}"),
        }),
        ..Default::default()
    };

    // The registry as the previous master left it.
    let start = Instant::now();
    let mut registry = Registry::open(dir.path()).unwrap();
    for i in 0..agents {
        registry.state.admitted.insert(
            format!("bench-S{i}"),
            StoredAgent {
                info: tepui_proto::json::to_value(&info(i)),
                ..Default::default()
            },
        );
    }
    registry.save();
    registry.flush();
    drop(registry);
    let registry_secs = start.elapsed().as_secs_f64();

    let framework_infos: Vec<FrameworkInfo> = (0..frameworks)
        .map(|j| FrameworkInfo {
            user: "bench".into(),
            name: format!("fw-{j}"),
            id: Some(FrameworkId {
                value: format!("bench-fw-{j}"),
            }),
            failover_timeout: Some(3600.0),
            ..Default::default()
        })
        .collect();
    let bodies: Vec<Bytes> = (0..agents)
        .map(|i| {
            let fw = &framework_infos[i % frameworks];
            let tasks = (0..tasks_per_agent)
                .map(|t| Task {
                    name: "t".into(),
                    task_id: TaskId {
                        value: format!("task-{i}-{t}"),
                    },
                    framework_id: fw.id.clone().unwrap(),
                    agent_id: AgentId {
                        value: format!("bench-S{i}"),
                    },
                    state: TaskState::TaskRunning as i32,
                    resources: task_resources.clone().into_vec(),
                    ..Default::default()
                })
                .collect();
            AgentCall {
                protocol_version: Some(1),
                r#type: Some(agent_call::Type::Subscribe as i32),
                agent_id: Some(AgentId {
                    value: format!("bench-S{i}"),
                }),
                subscribe: Some(agent_call::Subscribe {
                    agent_info: info(i),
                    version: Some("bench".into()),
                    frameworks: vec![fw.clone()],
                    tasks,
                    ..Default::default()
                }),
                ..Default::default()
            }
            .encode_to_vec()
            .into()
        })
        .collect();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let config = MasterConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            work_dir: Some(dir.path().to_path_buf()),
            allocation_interval: Duration::from_secs(1),
            ..MasterConfig::default()
        };
        let recover = Instant::now();
        let master = tepui_master::start(config).await.unwrap();
        let recover_secs = recover.elapsed().as_secs_f64();
        let addr = master.addr;
        let bodies = Arc::new(bodies);
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let concurrency = if std::env::var_os("TEPUI_BENCH_SKIP_HTTP").is_some() { 0 } else { concurrency };
        let workers: Vec<_> = (0..concurrency)
            .map(|_| {
                let bodies = bodies.clone();
                let next = next.clone();
                tokio::spawn(async move {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(body) = bodies.get(i) else { break };
                        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
                        let (mut sender, conn) =
                            hyper::client::conn::http1::handshake(TokioIo::new(stream))
                                .await
                                .unwrap();
                        tokio::spawn(async move {
                            let _ = conn.await;
                        });
                        let req = hyper::Request::post("/tepui/link/v1")
                            .header("host", "master")
                            .header("content-type", "application/x-protobuf")
                            .body(Full::new(body.clone()))
                            .unwrap();
                        let resp = sender.send_request(req).await.unwrap();
                        assert_eq!(resp.status(), 200);
                        let mut body = resp.into_body();
                        // The first chunk holds SUBSCRIBED.
                        let frame = body.frame().await.unwrap().unwrap();
                        assert!(frame.data_ref().is_some_and(|d| !d.is_empty()));
                    }
                })
            })
            .collect();
        for w in workers {
            w.await.unwrap();
        }
        let secs = started.elapsed().as_secs_f64();
        let (known, tasks) = {
            let m = master.shared.lock();
            (
                m.agents.len(),
                m.agents.values().map(|a| a.tasks.len()).sum::<usize>(),
            )
        };
        println!(
            "registry of {agents} agents written in {registry_secs:.2} s, recovered in {recover_secs:.3} s"
        );
        println!(
            "{known} agents with {tasks} tasks re-registered in {secs:.2} s ({:.0} agents/s, concurrency {concurrency})",
            agents as f64 / secs
        );
        if concurrency > 0 {
            assert_eq!(known, agents);
            assert_eq!(tasks, agents * tasks_per_agent);
        }
        master.abort();

        // The same re-registrations straight into a fresh master's state,
        // without HTTP: what the master itself spends.
        let dir2 = tempfile::tempdir().unwrap();
        std::fs::copy(
            dir.path().join("registry.json"),
            dir2.path().join("registry.json"),
        )
        .unwrap();
        let config = MasterConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            work_dir: Some(dir2.path().to_path_buf()),
            allocation_interval: Duration::from_secs(3600),
            ..MasterConfig::default()
        };
        let master = tepui_master::start(config).await.unwrap();
        let calls: Vec<AgentCall> = bodies.iter().map(|b| AgentCall::decode(b.clone()).unwrap()).collect();
        let started = Instant::now();
        let mut streams = Vec::with_capacity(agents);
        {
            let mut m = master.shared.lock();
            for c in calls {
                let id = c.agent_id.map(|a| a.value);
                streams.push(m.agent_subscribe(id, c.subscribe.unwrap()).unwrap());
            }
        }
        println!(
            "in-process (no HTTP, decoded calls): {agents} agents re-registered in {:.2} s",
            started.elapsed().as_secs_f64()
        );
        master.abort();
    });
}
