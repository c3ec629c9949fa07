//! Failures: a master killed and restarted on its registry (agents
//! re-register with their tasks, frameworks re-subscribe, RECONCILE reports
//! every task), frameworks past their failover timeout, unreachable agents,
//! and the operator's agent controls.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::MasterProcess;
use common::agent::TestAgent;
use common::scheduler::{Format, Scheduler, framework};
use tepui_proto::v1::scheduler::{Call, call};
use tepui_proto::v1::{FrameworkId, Offer, TaskState};

async fn launch_n(s: &mut Scheduler, offer: &Offer, ids: &[&str]) {
    let tasks = ids
        .iter()
        .map(|id| {
            let mut r = tepui_proto::resources::parse_resources("cpus:0.5;mem:64", "*").unwrap();
            // A framework without MULTI_ROLE sees no allocation info and
            // sends none: the master completes it from the offer.
            if let Some(role) = offer
                .allocation_info
                .as_ref()
                .and_then(|a| a.role.as_deref())
            {
                r.allocate(role);
            }
            tepui_proto::v1::TaskInfo {
                name: id.to_string(),
                task_id: tepui_proto::v1::TaskId {
                    value: id.to_string(),
                },
                agent_id: offer.agent_id.clone(),
                resources: r.into_vec(),
                command: Some(tepui_proto::v1::CommandInfo {
                    value: Some("sleep 1000".into()),
                    ..Default::default()
                }),
                ..Default::default()
            }
        })
        .collect();
    s.ok(Call {
        r#type: Some(call::Type::Accept as i32),
        accept: Some(call::Accept {
            offer_ids: vec![offer.id.clone()],
            operations: vec![tepui_proto::v1::offer::Operation {
                r#type: Some(tepui_proto::v1::offer::operation::Type::Launch as i32),
                launch: Some(tepui_proto::v1::offer::operation::Launch { task_infos: tasks }),
                ..Default::default()
            }],
            filters: None,
        }),
        ..Default::default()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_restart_agents_reregister_and_reconcile_reports_every_task() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config();
    config.work_dir = Some(dir.path().to_path_buf());
    let first = MasterProcess::start(config.clone());
    let addr = first.addr;
    let agent = TestAgent::start(addr, "cpus:4;mem:1024", false).await;
    let mut info = framework("survivor", &["*"]);
    info.failover_timeout = Some(60.0);
    let mut s = Scheduler::subscribe(addr, Format::Json, info.clone()).await;
    let offers = s.offers(5).await;
    launch_n(&mut s, &offers[0], &["a", "b"]).await;
    s.await_state("a", TaskState::TaskRunning, 5).await;
    s.await_state("b", TaskState::TaskRunning, 5).await;
    let framework_id = s.framework_id.clone();
    let (status, _, _) = common::http::call(
        addr,
        "POST",
        "/api/v1",
        &[("content-type", "application/json")],
        br#"{"type": "UPDATE_WEIGHTS", "update_weights": {"weight_infos": [{"role": "heavy", "weight": 3.0}]}}"#.to_vec(),
    )
    .await;
    assert_eq!(status, 200);
    // Let a registry write happen (once per allocation interval).
    tokio::time::sleep(Duration::from_millis(150)).await;

    first.kill();
    drop(s);
    // Same address, same registry.
    config.listen = addr;
    let second = MasterProcess::start(config);
    // Before the agent is back, its tasks are unreachable, not unknown.
    info.id = Some(FrameworkId {
        value: framework_id.clone(),
    });
    agent.connect().await;
    let mut s = Scheduler::subscribe(second.addr, Format::Protobuf, info).await;
    assert_eq!(s.framework_id, framework_id);
    s.ok(Call {
        r#type: Some(call::Type::Reconcile as i32),
        reconcile: Some(call::Reconcile { tasks: vec![] }),
        ..Default::default()
    })
    .await;
    let mut seen = Vec::new();
    for _ in 0..2 {
        let u = s.update(5).await;
        assert_eq!(u.state, TaskState::TaskRunning as i32);
        assert!(u.uuid.is_none());
        seen.push(u.task_id.value);
    }
    seen.sort();
    assert_eq!(seen, ["a", "b"]);
    // Weights live in the registry.
    let (_, _, body) = common::http::call(
        second.addr,
        "POST",
        "/api/v1",
        &[
            ("content-type", "application/json"),
            ("accept", "application/json"),
        ],
        br#"{"type": "GET_WEIGHTS"}"#.to_vec(),
    )
    .await;
    let weights: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(weights["get_weights"]["weight_infos"][0]["role"], "heavy");
    assert_eq!(weights["get_weights"]["weight_infos"][0]["weight"], 3.0);
    // The adopted tasks still hold their resources.
    let state = common::http::get_json(second.addr, "/master/state").await;
    assert_eq!(state["slaves"][0]["used_resources"]["cpus"], 1.0);
    assert_eq!(state["frameworks"][0]["tasks"].as_array().unwrap().len(), 2);
    second.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framework_past_its_failover_timeout_has_its_tasks_killed() {
    let master = common::master().await;
    let agent = TestAgent::start(master.addr, "cpus:4;mem:1024", false).await;
    let mut info = framework("brief", &["*"]);
    info.failover_timeout = Some(1.0);
    let mut s = Scheduler::subscribe(master.addr, Format::Json, info.clone()).await;
    let offers = s.offers(5).await;
    launch_n(&mut s, &offers[0], &["x"]).await;
    s.await_state("x", TaskState::TaskRunning, 5).await;
    let id = s.framework_id.clone();
    drop(s);
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
    info.id = Some(FrameworkId { value: id });
    let refused = Scheduler::try_subscribe(master.addr, Format::Json, info).await;
    // Mesos's Master::subscribe refuses on the stream: 200, ERROR, close.
    assert_eq!(
        refused.err(),
        Some((200, "Framework has been removed".to_string()))
    );
    master.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framework_back_within_its_failover_timeout_keeps_its_tasks() {
    let master = common::master().await;
    let agent = TestAgent::start(master.addr, "cpus:4;mem:1024", false).await;
    let mut info = framework("patient", &["*"]);
    info.failover_timeout = Some(30.0);
    let mut s = Scheduler::subscribe(master.addr, Format::Json, info.clone()).await;
    let offers = s.offers(5).await;
    launch_n(&mut s, &offers[0], &["y"]).await;
    s.await_state("y", TaskState::TaskRunning, 5).await;
    info.id = Some(s.id());
    drop(s);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut s = Scheduler::subscribe(master.addr, Format::Json, info).await;
    s.ok(Call {
        r#type: Some(call::Type::Reconcile as i32),
        reconcile: Some(call::Reconcile { tasks: vec![] }),
        ..Default::default()
    })
    .await;
    assert_eq!(s.update(5).await.state, TaskState::TaskRunning as i32);
    assert_eq!(agent.running_tasks(), 1);
    master.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_agent_tasks_are_unreachable_or_lost() {
    let mut config = common::config();
    config.agent_ping_timeout = Duration::from_millis(200);
    config.max_agent_ping_timeouts = 2;
    let master = common::master_with(config).await;
    let agent = TestAgent::start(master.addr, "cpus:4;mem:1024", false).await;
    let mut aware =
        Scheduler::subscribe(master.addr, Format::Json, framework("aware", &["*"])).await;
    let offers = aware.offers(5).await;
    launch_n(&mut aware, &offers[0], &["p"]).await;
    aware.await_state("p", TaskState::TaskRunning, 5).await;
    let mut old = framework("old", &["*"]);
    old.capabilities.clear();
    old.roles.clear();
    let mut legacy = Scheduler::subscribe(master.addr, Format::Json, old).await;
    let offers = legacy.offers(5).await;
    // Mesos's Master::offer: no allocation info for a framework without
    // MULTI_ROLE (MESOS-8237), on the offer or its resources; every offer
    // names the agent's URL.
    assert!(offers[0].allocation_info.is_none());
    assert!(
        offers[0]
            .resources
            .iter()
            .all(|r| r.allocation_info.is_none())
    );
    let url = offers[0].url.as_ref().expect("offer url");
    assert_eq!(
        (url.scheme.as_str(), url.path.as_deref()),
        ("http", Some("/slave(1)"))
    );
    launch_n(&mut legacy, &offers[0], &["q"]).await;
    legacy.await_state("q", TaskState::TaskRunning, 5).await;
    agent.disconnect();
    let u = aware.update(5).await;
    assert_eq!(
        (u.task_id.value.as_str(), u.state),
        ("p", TaskState::TaskUnreachable as i32)
    );
    let u = legacy.update(5).await;
    assert_eq!(
        (u.task_id.value.as_str(), u.state),
        ("q", TaskState::TaskLost as i32)
    );
    let state = common::http::get_json(master.addr, "/master/state").await;
    assert_eq!(state["unreachable_slaves"], 1);
    master.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_deactivates_drains_and_marks_agents_gone() {
    let master = common::master().await;
    let agent = TestAgent::start(master.addr, "cpus:4;mem:1024", false).await;
    let op = async |body: serde_json::Value| {
        common::http::call(
            master.addr,
            "POST",
            "/api/v1",
            &[("content-type", "application/json")],
            body.to_string().into_bytes(),
        )
        .await
        .0
    };
    let id = agent.id();
    assert_eq!(op(serde_json::json!({"type": "DEACTIVATE_AGENT", "deactivate_agent": {"agent_id": {"value": id}}})).await, 200);
    let mut s = Scheduler::subscribe(master.addr, Format::Json, framework("f", &["*"])).await;
    assert!(s.no_offers(400).await);
    assert_eq!(op(serde_json::json!({"type": "REACTIVATE_AGENT", "reactivate_agent": {"agent_id": {"value": id}}})).await, 200);
    let offers = s.offers(5).await;
    launch_n(&mut s, &offers[0], &["d"]).await;
    s.await_state("d", TaskState::TaskRunning, 5).await;
    assert_eq!(
        op(serde_json::json!({"type": "DRAIN_AGENT", "drain_agent": {"agent_id": {"value": id}}}))
            .await,
        200
    );
    s.await_state("d", TaskState::TaskKilled, 5).await;
    assert_eq!(op(serde_json::json!({"type": "MARK_AGENT_GONE", "mark_agent_gone": {"agent_id": {"value": id}}})).await, 200);
    let slaves = common::http::get_json(master.addr, "/slaves").await;
    assert_eq!(slaves["slaves"].as_array().unwrap().len(), 0);
    let version = common::http::get_json(master.addr, "/version").await;
    assert!(
        version["version"]
            .as_str()
            .unwrap()
            .split('.')
            .all(|p| p.parse::<u32>().is_ok())
    );
    master.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_an_agent_no_longer_reports_are_gone() {
    let master = common::master().await;
    let agent = TestAgent::start(master.addr, "cpus:4;mem:1024", false).await;
    let mut s = Scheduler::subscribe(master.addr, Format::Json, framework("f", &["*"])).await;
    let offers = s.offers(5).await;
    launch_n(&mut s, &offers[0], &["kept", "lost"]).await;
    s.await_state("kept", TaskState::TaskRunning, 5).await;
    s.await_state("lost", TaskState::TaskRunning, 5).await;
    // The agent restarts and comes back without one of them.
    agent.disconnect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    agent
        .state
        .lock()
        .unwrap()
        .tasks
        .retain(|(_, t), _| t != "lost");
    agent.connect().await;
    let u = s.update(5).await;
    assert_eq!(
        (u.task_id.value.as_str(), u.state),
        ("lost", TaskState::TaskGone as i32)
    );
    master.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_with_mark_gone_removes_the_agent_once_its_tasks_end() {
    let master = common::master().await;
    let agent = TestAgent::start(master.addr, "cpus:4;mem:1024", false).await;
    let mut s = Scheduler::subscribe(master.addr, Format::Json, framework("f", &["*"])).await;
    let offers = s.offers(5).await;
    launch_n(&mut s, &offers[0], &["z"]).await;
    s.await_state("z", TaskState::TaskRunning, 5).await;
    let body = serde_json::json!({"type": "DRAIN_AGENT", "drain_agent": {
        "agent_id": {"value": agent.id()}, "mark_gone": true}});
    let (status, _, _) = common::http::call(
        master.addr,
        "POST",
        "/api/v1",
        &[("content-type", "application/json")],
        body.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, 200);
    s.await_state("z", TaskState::TaskKilled, 5).await;
    common::eventually(5, async || {
        let slaves = common::http::get_json(master.addr, "/slaves").await;
        slaves["slaves"]
            .as_array()
            .unwrap()
            .is_empty()
            .then_some(())
    })
    .await;
    master.abort();
}
