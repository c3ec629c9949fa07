//! The scheduler API end to end over real HTTP: JSON and protobuf clients,
//! offers, LAUNCH / LAUNCH_GROUP, updates and acknowledgements, KILL,
//! RECONCILE, and the 202/400/403 rules.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::agent::TestAgent;
use common::scheduler::{Format, Scheduler, framework};
use tepui_proto::v1::scheduler::{Call, call, event};
use tepui_proto::v1::{TaskState, task_status::Reason};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../proto/tests/fixtures");

/// The documented "Running Workloads" ACCEPT body with our ids in it.
fn documented_accept(name: &str, framework_id: &str, offer_id: &str, agent_id: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(format!("{FIXTURES}/{name}")).unwrap();
    text.replace("12220-3440-12532-2345", framework_id)
        .replace("12220-3440-12532-O12", offer_id)
        .replace("83J792-S8FH-W397K-2861-S01", agent_id)
        .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_scheduler_runs_the_documented_task_group() {
    let master = common::master().await;
    let agent = TestAgent::start(master.addr, "cpus:4;mem:8192;disk:8192", true).await;
    let mut s = Scheduler::subscribe(master.addr, Format::Json, framework("json", &["*"])).await;
    assert_eq!(s.heartbeat_interval, 1.0);
    let offers = s.offers(5).await;
    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0].agent_id.value, agent.id());
    assert_eq!(
        offers[0].allocation_info.as_ref().unwrap().role.as_deref(),
        Some("*")
    );
    let body = documented_accept(
        "accept_launch_group.json",
        &s.framework_id,
        &offers[0].id.value,
        &agent.id(),
    );
    let (status, text) = s.send_raw(body, Some(&s.stream_id.clone())).await;
    assert_eq!(status, 202, "{text}");
    let running = s
        .await_state("task-000001", TaskState::TaskRunning, 5)
        .await;
    assert!(running.uuid.is_some());
    let finished = s
        .await_state("task-000001", TaskState::TaskFinished, 5)
        .await;
    let uuid = finished.uuid.unwrap().to_vec();
    common::eventually(5, async || {
        agent
            .state
            .lock()
            .unwrap()
            .acked
            .contains(&uuid)
            .then_some(())
    })
    .await;
    // HEARTBEATs keep coming.
    let hb = tokio::time::timeout(std::time::Duration::from_secs(3), async {
        loop {
            let e = s.events.recv().await.unwrap();
            if e.r#type == Some(event::Type::Heartbeat as i32) {
                return;
            }
        }
    })
    .await;
    assert!(hb.is_ok());
    master.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documented_launch_with_share_cgroups_false_is_refused() {
    let master = common::master().await;
    let agent = TestAgent::start(master.addr, "cpus:4;mem:8192;disk:8192", true).await;
    let mut s = Scheduler::subscribe(master.addr, Format::Json, framework("json", &["*"])).await;
    let offers = s.offers(5).await;
    let body = documented_accept(
        "accept_launch.json",
        &s.framework_id,
        &offers[0].id.value,
        &agent.id(),
    );
    let (status, text) = s.send_raw(body, Some(&s.stream_id.clone())).await;
    assert_eq!(status, 202, "{text}");
    let update = s.update(5).await;
    assert_eq!(update.state, TaskState::TaskError as i32);
    assert_eq!(update.reason, Some(Reason::TaskInvalid as i32));
    assert!(update.uuid.is_none());
    let message = update.message.unwrap();
    assert!(
        message.contains("share_cgroups") && message.contains("LAUNCH_GROUP"),
        "{message}"
    );
    // The offer's resources went back to the pool.
    let again = s.offers(10).await;
    assert_eq!(again[0].agent_id.value, agent.id());
    master.abort();
}

fn launch(offer: &tepui_proto::v1::Offer, task_id: &str, resources: &str) -> Call {
    let mut r = tepui_proto::resources::parse_resources(resources, "*").unwrap();
    r.allocate(
        offer
            .allocation_info
            .as_ref()
            .unwrap()
            .role
            .as_deref()
            .unwrap(),
    );
    Call {
        r#type: Some(call::Type::Accept as i32),
        accept: Some(call::Accept {
            offer_ids: vec![offer.id.clone()],
            operations: vec![tepui_proto::v1::offer::Operation {
                r#type: Some(tepui_proto::v1::offer::operation::Type::Launch as i32),
                launch: Some(tepui_proto::v1::offer::operation::Launch {
                    task_infos: vec![tepui_proto::v1::TaskInfo {
                        name: task_id.into(),
                        task_id: tepui_proto::v1::TaskId {
                            value: task_id.into(),
                        },
                        agent_id: offer.agent_id.clone(),
                        resources: r.into_vec(),
                        command: Some(tepui_proto::v1::CommandInfo {
                            value: Some("sleep 1000".into()),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }],
                }),
                ..Default::default()
            }],
            filters: None,
        }),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protobuf_scheduler_launches_kills_and_reconciles() {
    let master = common::master().await;
    let _agent = TestAgent::start(master.addr, "cpus:4;mem:4096", false).await;
    let mut s =
        Scheduler::subscribe(master.addr, Format::Protobuf, framework("pb", &["web"])).await;
    let offers = s.offers(5).await;
    s.ok(launch(&offers[0], "t1", "cpus:1;mem:128")).await;
    s.await_state("t1", TaskState::TaskRunning, 5).await;

    // Explicit reconciliation: no uuid, REASON_RECONCILIATION.
    s.ok(Call {
        r#type: Some(call::Type::Reconcile as i32),
        reconcile: Some(call::Reconcile {
            tasks: vec![
                call::reconcile::Task {
                    task_id: tepui_proto::v1::TaskId { value: "t1".into() },
                    agent_id: None,
                },
                call::reconcile::Task {
                    task_id: tepui_proto::v1::TaskId {
                        value: "nope".into(),
                    },
                    agent_id: None,
                },
            ],
        }),
        ..Default::default()
    })
    .await;
    let a = s.update(5).await;
    let b = s.update(5).await;
    assert_eq!(
        (a.task_id.value.as_str(), a.state),
        ("t1", TaskState::TaskRunning as i32)
    );
    assert_eq!(b.state, TaskState::TaskUnknown as i32);
    for u in [&a, &b] {
        assert!(u.uuid.is_none());
        assert_eq!(u.reason, Some(Reason::Reconciliation as i32));
    }
    // Implicit reconciliation reports every task.
    s.ok(Call {
        r#type: Some(call::Type::Reconcile as i32),
        reconcile: Some(call::Reconcile { tasks: vec![] }),
        ..Default::default()
    })
    .await;
    let c = s.update(5).await;
    assert_eq!(c.task_id.value, "t1");

    s.ok(Call {
        r#type: Some(call::Type::Kill as i32),
        kill: Some(call::Kill {
            task_id: tepui_proto::v1::TaskId { value: "t1".into() },
            agent_id: None,
            kill_policy: None,
        }),
        ..Default::default()
    })
    .await;
    s.await_state("t1", TaskState::TaskKilled, 5).await;
    master.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_are_refused_with_400_and_403() {
    let master = common::master().await;
    let s = Scheduler::subscribe(master.addr, Format::Json, framework("rules", &["*"])).await;
    let revive = Call {
        framework_id: Some(s.id()),
        r#type: Some(call::Type::Revive as i32),
        ..Default::default()
    };
    let body = tepui_proto::json::to_vec(&revive);
    // No stream id, a wrong one: 403.
    assert_eq!(s.send_raw(body.clone(), None).await.0, 403);
    assert_eq!(s.send_raw(body.clone(), Some("bogus")).await.0, 403);
    // Unknown framework: 403.
    let mut other = revive.clone();
    other.framework_id = Some(tepui_proto::v1::FrameworkId { value: "x".into() });
    assert_eq!(
        s.send_raw(tepui_proto::json::to_vec(&other), Some(&s.stream_id))
            .await
            .0,
        403
    );
    // Malformed: 400 with a message.
    let (status, text) = s
        .send_raw(b"{\"type\": 7}".to_vec(), Some(&s.stream_id))
        .await;
    assert_eq!(status, 400);
    assert!(!text.is_empty());
    let (status, text) = s
        .send(Call {
            r#type: Some(call::Type::Accept as i32),
            ..Default::default()
        })
        .await;
    assert_eq!(
        (status, text.as_str()),
        (400, "expecting 'accept' to be present")
    );
    // Accepted: 202.
    assert_eq!(s.send_raw(body, Some(&s.stream_id)).await.0, 202);
    // Wrong media type: 415.
    let (status, _, _) = common::http::call(
        master.addr,
        "POST",
        "/api/v1/scheduler",
        &[("content-type", "text/plain")],
        b"x".to_vec(),
    )
    .await;
    assert_eq!(status, 415);
    master.abort();
}

/// Mesos scopes KILL, RECONCILE and updates to the calling framework: a
/// framework cannot kill, reconcile or see another framework's task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_framework_cannot_kill_or_see_another_frameworks_task() {
    let master = common::master().await;
    let _agent = TestAgent::start(master.addr, "cpus:4;mem:4096", false).await;
    let mut a = Scheduler::subscribe(master.addr, Format::Protobuf, framework("a", &["web"])).await;
    let offers = a.offers(5).await;
    a.ok(launch(&offers[0], "secret", "cpus:1;mem:128")).await;
    a.await_state("secret", TaskState::TaskRunning, 5).await;

    let mut b = Scheduler::subscribe(master.addr, Format::Protobuf, framework("b", &["db"])).await;
    let kill = |task: &str| Call {
        r#type: Some(call::Type::Kill as i32),
        kill: Some(call::Kill {
            task_id: tepui_proto::v1::TaskId { value: task.into() },
            agent_id: None,
            kill_policy: None,
        }),
        ..Default::default()
    };
    b.ok(kill("secret")).await;
    // B hears its KILL went nowhere; the task is not killed.
    let u = b.update(5).await;
    assert_eq!(u.task_id.value, "secret");
    assert_ne!(u.state, TaskState::TaskKilled as i32);
    assert_ne!(u.state, TaskState::TaskRunning as i32);
    // Explicit reconciliation: unknown to B.
    b.ok(Call {
        r#type: Some(call::Type::Reconcile as i32),
        reconcile: Some(call::Reconcile {
            tasks: vec![call::reconcile::Task {
                task_id: tepui_proto::v1::TaskId {
                    value: "secret".into(),
                },
                agent_id: None,
            }],
        }),
        ..Default::default()
    })
    .await;
    let u = b.update(5).await;
    assert_eq!(u.state, TaskState::TaskUnknown as i32);
    // Implicit reconciliation: B has no tasks, so hears nothing.
    b.ok(Call {
        r#type: Some(call::Type::Reconcile as i32),
        reconcile: Some(call::Reconcile { tasks: vec![] }),
        ..Default::default()
    })
    .await;
    let heard = tokio::time::timeout(std::time::Duration::from_millis(800), b.update(5)).await;
    assert!(heard.is_err(), "B saw an update: {heard:?}");

    // A's task still runs, and A can still kill it.
    a.ok(Call {
        r#type: Some(call::Type::Reconcile as i32),
        reconcile: Some(call::Reconcile { tasks: vec![] }),
        ..Default::default()
    })
    .await;
    let u = a.update(5).await;
    assert_eq!(
        (u.task_id.value.as_str(), u.state),
        ("secret", TaskState::TaskRunning as i32)
    );
    a.ok(kill("secret")).await;
    a.await_state("secret", TaskState::TaskKilled, 5).await;
    master.abort();
}

/// `run_tasks` ACLs: a task to run as a user the principal may not use
/// fails with TASK_ERROR (REASON_TASK_UNAUTHORIZED); the rest of the
/// ACCEPT goes ahead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_tasks_acls_refuse_tasks_of_unauthorized_users() {
    let mut config = common::config();
    config.auth.acls = tepui_proto::auth::Acls::parse(
        r#"{"run_tasks": [
            {"principals": {"type": "ANY"}, "users": {"values": ["root"]}},
            {"principals": {"type": "ANY"}, "users": {"type": "NONE"}}]}"#,
    )
    .unwrap();
    let master = common::master_with(config).await;
    let _agent = TestAgent::start(master.addr, "cpus:4;mem:4096", false).await;
    let mut s =
        Scheduler::subscribe(master.addr, Format::Protobuf, framework("acl", &["web"])).await;
    let offers = s.offers(5).await;
    let mut call = launch(&offers[0], "as-root", "cpus:1;mem:128");
    let op = &mut call.accept.as_mut().unwrap().operations[0];
    let tasks = &mut op.launch.as_mut().unwrap().task_infos;
    let mut other = tasks[0].clone();
    other.task_id.value = "as-nobody".into();
    other.command.as_mut().unwrap().user = Some("nobody".into());
    tasks.push(other);
    s.ok(call).await;
    let refused = s.await_state("as-nobody", TaskState::TaskError, 5).await;
    assert_eq!(refused.reason, Some(Reason::TaskUnauthorized as i32));
    assert!(
        refused
            .message
            .as_deref()
            .unwrap_or("")
            .contains("run_tasks"),
        "{refused:?}"
    );
    s.await_state("as-root", TaskState::TaskRunning, 5).await;
    master.abort();
}

/// A RECONCILE answered for more tasks than the stream's queue holds:
/// every answer arrives for a scheduler that keeps reading, none is lost
/// and the framework stays connected (before, the answers were queued all
/// at once and the queue's cap cut the stream).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciling_more_tasks_than_the_queue_holds_keeps_the_framework() {
    let tasks: usize = std::env::var("TEPUI_RECONCILE_TASKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3_000);
    let mut config = common::config();
    config.subscriber_queue = std::env::var("TEPUI_RECONCILE_QUEUE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);
    assert!(tasks > config.subscriber_queue);
    let master = common::master_with(config).await;
    let agent = TestAgent::start(
        master.addr,
        &format!("cpus:{};mem:{}", tasks, tasks * 32),
        false,
    )
    .await;
    let mut s =
        Scheduler::subscribe(master.addr, Format::Protobuf, framework("many", &["*"])).await;
    let offers = s.offers(5).await;
    let mut accept = launch(&offers[0], "t0", "cpus:0.5;mem:16");
    let template = accept.accept.as_ref().unwrap().operations[0]
        .launch
        .as_ref()
        .unwrap()
        .task_infos[0]
        .clone();
    let infos = &mut accept.accept.as_mut().unwrap().operations[0]
        .launch
        .as_mut()
        .unwrap()
        .task_infos;
    for i in 1..tasks {
        let mut t = template.clone();
        t.task_id.value = format!("t{i}");
        infos.push(t);
    }
    s.ok(accept).await;
    common::eventually(120, async || (agent.running_tasks() == tasks).then_some(())).await;
    // The RUNNING updates, read and acknowledged lazily: drain them.
    let mut running = 0;
    while running < tasks {
        if s.update(30).await.state == TaskState::TaskRunning as i32 {
            running += 1;
        }
    }
    let started = std::time::Instant::now();
    s.ok(Call {
        r#type: Some(call::Type::Reconcile as i32),
        reconcile: Some(call::Reconcile { tasks: vec![] }),
        ..Default::default()
    })
    .await;
    let mut answered = std::collections::HashSet::new();
    while answered.len() < tasks {
        let u = s.update(30).await;
        assert_eq!(u.reason, Some(Reason::Reconciliation as i32));
        assert_eq!(u.state, TaskState::TaskRunning as i32);
        answered.insert(u.task_id.value);
    }
    println!(
        "implicit RECONCILE of {tasks} tasks through a queue of {}: all answered in {:?}",
        master.shared.lock().config.subscriber_queue,
        started.elapsed()
    );
    let m = master.shared.lock();
    let fw = m
        .frameworks
        .values()
        .find(|f| f.info.name == "many")
        .unwrap();
    assert!(fw.conn.is_some(), "the framework is still connected");
    drop(m);
    master.abort();
}
