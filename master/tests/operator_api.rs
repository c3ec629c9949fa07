//! The operator API (`/api/v1`, JSON and protobuf, SUBSCRIBE events), the v0
//! endpoints tools read, and the remaining scheduler calls: MESSAGE both
//! ways, TEARDOWN, UPDATE_FRAMEWORK, offer timeouts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::agent::TestAgent;
use common::http::{RecordStream, call, get_json, send};
use common::scheduler::{Format, Scheduler, framework};
use prost::Message;
use tepui_proto::v1::master::{Response, event, response};
use tepui_proto::v1::scheduler::{Call, call as scall, event as sevent};
use tepui_proto::v1::{Offer, TaskState};

async fn launch(s: &mut Scheduler, offer: &Offer, id: &str) {
    let mut r = tepui_proto::resources::parse_resources("cpus:1;mem:64", "*").unwrap();
    r.allocate(
        offer
            .allocation_info
            .as_ref()
            .unwrap()
            .role
            .as_deref()
            .unwrap(),
    );
    s.ok(Call {
        r#type: Some(scall::Type::Accept as i32),
        accept: Some(scall::Accept {
            offer_ids: vec![offer.id.clone()],
            operations: vec![tepui_proto::v1::offer::Operation {
                r#type: Some(tepui_proto::v1::offer::operation::Type::Launch as i32),
                launch: Some(tepui_proto::v1::offer::operation::Launch {
                    task_infos: vec![tepui_proto::v1::TaskInfo {
                        name: id.into(),
                        task_id: tepui_proto::v1::TaskId { value: id.into() },
                        agent_id: offer.agent_id.clone(),
                        resources: r.into_vec(),
                        executor: Some(tepui_proto::v1::ExecutorInfo {
                            r#type: Some(tepui_proto::v1::executor_info::Type::Custom as i32),
                            executor_id: tepui_proto::v1::ExecutorId {
                                value: "exec".into(),
                            },
                            command: Some(tepui_proto::v1::CommandInfo {
                                value: Some("./executor".into()),
                                ..Default::default()
                            }),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }],
                }),
                ..Default::default()
            }],
            filters: Some(tepui_proto::v1::Filters {
                refuse_seconds: Some(0.0),
            }),
        }),
        ..Default::default()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_subscribe_streams_state_and_events() {
    let master = common::master().await;
    let resp = send(
        master.addr,
        "POST",
        "/api/v1",
        &[
            ("content-type", "application/json"),
            ("accept", "application/json"),
        ],
        br#"{"type": "SUBSCRIBE"}"#.to_vec(),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let mut events = RecordStream::new(resp.into_body());
    let mut next = async || -> tepui_proto::v1::master::Event {
        loop {
            let r = tokio::time::timeout(Duration::from_secs(5), events.next())
                .await
                .unwrap()
                .unwrap();
            let e: tepui_proto::v1::master::Event = tepui_proto::json::from_slice(&r).unwrap();
            if e.r#type != Some(event::Type::Heartbeat as i32) {
                return e;
            }
        }
    };
    assert_eq!(next().await.r#type, Some(event::Type::Subscribed as i32));
    let _agent = TestAgent::start(master.addr, "cpus:2;mem:512", true).await;
    assert_eq!(next().await.r#type, Some(event::Type::AgentAdded as i32));
    let mut s = Scheduler::subscribe(master.addr, Format::Json, framework("f", &["*"])).await;
    assert_eq!(
        next().await.r#type,
        Some(event::Type::FrameworkAdded as i32)
    );
    let offers = s.offers(5).await;
    launch(&mut s, &offers[0], "t").await;
    assert_eq!(next().await.r#type, Some(event::Type::TaskAdded as i32));
    let updated = next().await;
    assert_eq!(updated.r#type, Some(event::Type::TaskUpdated as i32));
    assert_eq!(
        updated.task_updated.unwrap().state,
        TaskState::TaskRunning as i32
    );
    master.abort();
}

async fn get(addr: std::net::SocketAddr, kind: &str) -> Response {
    let (status, headers, body) = call(
        addr,
        "POST",
        "/api/v1",
        &[
            ("content-type", "application/json"),
            ("accept", "application/x-protobuf"),
        ],
        format!(r#"{{"type": "{kind}"}}"#).into_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{kind}: {}", String::from_utf8_lossy(&body));
    assert_eq!(headers["content-type"], "application/x-protobuf");
    Response::decode(&body[..]).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_calls_and_v0_endpoints_describe_the_cluster() {
    let master = common::master().await;
    let agent = TestAgent::start(master.addr, "cpus:2;mem:512;ports:[31000-32000]", false).await;
    let mut s = Scheduler::subscribe(master.addr, Format::Json, framework("f", &["web"])).await;
    let offers = s.offers(5).await;
    launch(&mut s, &offers[0], "t1").await;
    s.await_state("t1", TaskState::TaskRunning, 5).await;

    assert!(
        get(master.addr, "GET_HEALTH")
            .await
            .get_health
            .unwrap()
            .healthy
    );
    let version = get(master.addr, "GET_VERSION").await.get_version.unwrap();
    assert_eq!(version.version_info.version, "1.11.0");
    let state = get(master.addr, "GET_STATE").await.get_state.unwrap();
    assert_eq!(state.get_tasks.unwrap().tasks.len(), 1);
    assert_eq!(state.get_agents.unwrap().agents.len(), 1);
    assert_eq!(state.get_frameworks.unwrap().frameworks.len(), 1);
    assert_eq!(state.get_executors.unwrap().executors.len(), 1);
    let agents = get(master.addr, "GET_AGENTS").await.get_agents.unwrap();
    assert_eq!(
        agents.agents[0].pid.as_deref(),
        Some("slave(1)@127.0.0.1:5051")
    );
    let roles = get(master.addr, "GET_ROLES").await.get_roles.unwrap();
    assert!(roles.roles.iter().any(|r| r.name == "web"));
    let master_info = get(master.addr, "GET_MASTER").await.get_master.unwrap();
    assert!(master_info.master_info.is_some());
    let metrics = get(master.addr, "GET_METRICS").await.get_metrics.unwrap();
    assert!(
        metrics
            .metrics
            .iter()
            .any(|m| m.name == "master/tasks_running" && m.value == Some(1.0))
    );
    for kind in [
        "GET_FLAGS",
        "GET_WEIGHTS",
        "GET_FRAMEWORKS",
        "GET_EXECUTORS",
        "GET_TASKS",
        "GET_QUOTA",
    ] {
        let r = get(master.addr, kind).await;
        assert_eq!(
            r.r#type
                .and_then(|t| response::Type::try_from(t).ok())
                .map(|t| t.as_str_name()),
            Some(kind)
        );
    }

    let v = get_json(master.addr, "/version").await;
    assert_eq!(v["version"], "1.11.0");
    for path in ["/state", "/master/state"] {
        let st = get_json(master.addr, path).await;
        assert_eq!(st["slaves"][0]["id"], agent.id());
        assert_eq!(st["slaves"][0]["resources"]["ports"], "[31000-32000]");
        assert_eq!(st["frameworks"][0]["tasks"][0]["state"], "TASK_RUNNING");
        assert_eq!(st["frameworks"][0]["roles"][0], "web");
    }
    let summary = get_json(master.addr, "/state-summary").await;
    assert_eq!(summary["slaves"].as_array().unwrap().len(), 1);
    let tasks = get_json(
        master.addr,
        &format!("/tasks?framework_id={}", s.framework_id),
    )
    .await;
    assert_eq!(tasks["tasks"][0]["id"], "t1");
    let none = get_json(master.addr, "/tasks?framework_id=other").await;
    assert_eq!(none["tasks"].as_array().unwrap().len(), 0);
    let slaves = get_json(master.addr, "/slaves").await;
    assert_eq!(slaves["slaves"][0]["pid"], "slave(1)@127.0.0.1:5051");
    let fws = get_json(master.addr, "/frameworks").await;
    assert_eq!(fws["frameworks"][0]["name"], "f");
    let roles = get_json(master.addr, "/roles").await;
    assert!(
        roles["roles"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "web")
    );
    let snapshot = get_json(master.addr, "/metrics/snapshot").await;
    assert_eq!(snapshot["master/tasks_running"], 1.0);
    assert_eq!(snapshot["master/slaves_active"], 1.0);
    let (status, _, body) = call(master.addr, "GET", "/metrics", &[], vec![]).await;
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("mesos_master_tasks_running 1"));
    let (status, headers, _) = call(master.addr, "GET", "/redirect", &[], vec![]).await;
    assert_eq!(status, 307);
    assert!(headers["location"].to_str().unwrap().starts_with("//"));
    master.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_teardown_update_framework_and_offer_timeout() {
    let mut config = common::config();
    config.offer_timeout = Some(Duration::from_millis(300));
    let master = common::master_with(config).await;
    let agent = TestAgent::start(master.addr, "cpus:4;mem:1024", false).await;
    let mut s = Scheduler::subscribe(master.addr, Format::Protobuf, framework("m", &["a"])).await;
    let offers = s.offers(5).await;
    launch(&mut s, &offers[0], "t").await;
    s.await_state("t", TaskState::TaskRunning, 5).await;

    // Scheduler -> executor.
    s.ok(Call {
        r#type: Some(scall::Type::Message as i32),
        message: Some(scall::Message {
            agent_id: offers[0].agent_id.clone(),
            executor_id: tepui_proto::v1::ExecutorId {
                value: "exec".into(),
            },
            data: b"ping".to_vec().into(),
        }),
        ..Default::default()
    })
    .await;
    common::eventually(5, async || {
        agent
            .state
            .lock()
            .unwrap()
            .messages
            .contains(&b"ping".to_vec())
            .then_some(())
    })
    .await;
    // Executor -> scheduler.
    agent.send_message(&s.framework_id, "exec", b"pong").await;
    let m = s.expect(sevent::Type::Message, 5).await.message.unwrap();
    assert_eq!(
        (&m.data[..], m.executor_id.value.as_str()),
        (&b"pong"[..], "exec")
    );

    // Offers nobody answers are rescinded after --offer_timeout.
    let offer = s.offers(5).await;
    loop {
        let rescind = s.expect(sevent::Type::Rescind, 5).await.rescind.unwrap();
        if rescind.offer_id == offer[0].id {
            break;
        }
    }

    // UPDATE_FRAMEWORK moves the framework to role b: 200, offers for b.
    let mut info = framework("m", &["b"]);
    info.id = Some(s.id());
    let (status, body) = s
        .send(Call {
            r#type: Some(scall::Type::UpdateFramework as i32),
            update_framework: Some(scall::UpdateFramework {
                framework_info: info,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await;
    assert_eq!(status, 200, "{body}");
    // Offers for `a` already in flight are rescinded; the next are for `b`.
    let role = |o: &Offer| o.allocation_info.as_ref().unwrap().role.clone().unwrap();
    loop {
        let offers = s.offers(5).await;
        if offers.iter().all(|o| role(o) == "b") {
            break;
        }
        assert!(offers.iter().all(|o| role(o) == "a"));
    }

    // TEARDOWN shuts the framework down on its agents.
    s.simple(scall::Type::Teardown).await;
    let id = s.framework_id.clone();
    common::eventually(5, async || {
        agent
            .state
            .lock()
            .unwrap()
            .shutdown_frameworks
            .contains(&id)
            .then_some(())
    })
    .await;
    master.abort();
}

/// cpus and mem offered on one agent, summed over the offers.
fn offered(offers: &[Offer]) -> (f64, f64) {
    let mut total = (0.0, 0.0);
    for r in offers.iter().flat_map(|o| &o.resources) {
        let v = r.scalar.as_ref().map_or(0.0, |s| s.value);
        match r.name.as_str() {
            "cpus" => total.0 += v,
            "mem" => total.1 += v,
            _ => {}
        }
    }
    total
}

// Mesos's `Master::removeFramework` recovers live tasks' resources
// (`removeTask`) and every executor's (`removeExecutor`) before the framework
// leaves the allocator: a TEARDOWN with a task and its executor still running
// must give the agent's whole total back, and the executor's later exit must
// not give it back twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teardown_with_a_running_executor_returns_all_its_resources() {
    let master = common::master().await;
    let agent = TestAgent::start(master.addr, "cpus:4;mem:1024", false).await;
    for round in 0..3 {
        let mut s = Scheduler::subscribe(master.addr, Format::Json, framework("t", &["a"])).await;
        let offers = s.offers(5).await;
        assert_eq!(offered(&offers), (4.0, 1024.0), "round {round}");
        let offer = &offers[0];
        let mut task_res = tepui_proto::resources::parse_resources("cpus:1;mem:64", "*").unwrap();
        task_res.allocate("a");
        let mut exec_res = tepui_proto::resources::parse_resources("cpus:0.5;mem:96", "*").unwrap();
        exec_res.allocate("a");
        s.ok(Call {
            r#type: Some(scall::Type::Accept as i32),
            accept: Some(scall::Accept {
                offer_ids: vec![offer.id.clone()],
                operations: vec![tepui_proto::v1::offer::Operation {
                    r#type: Some(tepui_proto::v1::offer::operation::Type::Launch as i32),
                    launch: Some(tepui_proto::v1::offer::operation::Launch {
                        task_infos: vec![tepui_proto::v1::TaskInfo {
                            name: "t".into(),
                            task_id: tepui_proto::v1::TaskId { value: "t".into() },
                            agent_id: offer.agent_id.clone(),
                            resources: task_res.into_vec(),
                            executor: Some(tepui_proto::v1::ExecutorInfo {
                                r#type: Some(tepui_proto::v1::executor_info::Type::Custom as i32),
                                executor_id: tepui_proto::v1::ExecutorId {
                                    value: "exec".into(),
                                },
                                command: Some(tepui_proto::v1::CommandInfo {
                                    value: Some("./executor".into()),
                                    ..Default::default()
                                }),
                                resources: exec_res.into_vec(),
                                ..Default::default()
                            }),
                            ..Default::default()
                        }],
                    }),
                    ..Default::default()
                }],
                filters: Some(tepui_proto::v1::Filters {
                    refuse_seconds: Some(0.0),
                }),
            }),
            ..Default::default()
        })
        .await;
        s.await_state("t", TaskState::TaskRunning, 5).await;
        let used = get_json(master.addr, "/master/state").await;
        let agent_used = &used["slaves"][0]["used_resources"];
        assert_eq!(agent_used["cpus"].as_f64(), Some(1.5), "{agent_used}");
        assert_eq!(agent_used["mem"].as_f64(), Some(160.0), "{agent_used}");

        s.simple(scall::Type::Teardown).await;
        let id = s.framework_id.clone();
        common::eventually(5, async || {
            agent
                .state
                .lock()
                .unwrap()
                .shutdown_frameworks
                .contains(&id)
                .then_some(())
        })
        .await;
        // The agent's late reports of what it tore down change nothing.
        agent.update(&id, "t", TaskState::TaskKilled).await;
        agent.executor_exited(&id, "exec").await;
        let state = get_json(master.addr, "/master/state").await;
        let agent_used = &state["slaves"][0]["used_resources"];
        assert_eq!(
            agent_used["cpus"].as_f64().unwrap_or(0.0),
            0.0,
            "{agent_used}"
        );
        assert_eq!(
            agent_used["mem"].as_f64().unwrap_or(0.0),
            0.0,
            "{agent_used}"
        );
    }
    let mut s = Scheduler::subscribe(master.addr, Format::Json, framework("last", &["a"])).await;
    assert_eq!(offered(&s.offers(5).await), (4.0, 1024.0));
    master.abort();
}

// A TEARDOWN while the agent is away cannot reach it; when it re-registers
// with the framework's task, the master does not take the task back and
// tells the agent to shut the framework down (Mesos's
// `Master::_reregisterSlave` / `__reregisterSlave`), so the agent's whole
// total is offered again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teardown_while_the_agent_is_away_reaches_it_when_it_returns() {
    let master = common::master().await;
    let agent = TestAgent::start(master.addr, "cpus:4;mem:1024", false).await;
    let mut s = Scheduler::subscribe(master.addr, Format::Json, framework("away", &["a"])).await;
    let offers = s.offers(5).await;
    launch(&mut s, &offers[0], "t").await;
    s.await_state("t", TaskState::TaskRunning, 5).await;
    agent.disconnect();
    common::eventually(10, async || {
        let state = get_json(master.addr, "/master/state").await;
        (state["slaves"][0]["active"] == false).then_some(())
    })
    .await;
    s.simple(scall::Type::Teardown).await;
    let id = s.framework_id.clone();
    assert!(
        !agent
            .state
            .lock()
            .unwrap()
            .shutdown_frameworks
            .contains(&id)
    );

    agent.connect().await;
    common::eventually(5, async || {
        agent
            .state
            .lock()
            .unwrap()
            .shutdown_frameworks
            .contains(&id)
            .then_some(())
    })
    .await;
    let state = get_json(master.addr, "/master/state").await;
    let used = &state["slaves"][0]["used_resources"];
    assert_eq!(used["cpus"].as_f64().unwrap_or(0.0), 0.0, "{used}");
    let mut next = Scheduler::subscribe(master.addr, Format::Json, framework("next", &["a"])).await;
    assert_eq!(offered(&next.offers(5).await), (4.0, 1024.0));
    master.abort();
}
