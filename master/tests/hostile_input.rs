//! Hostile input to the master, in-process over real HTTP: ids that are not
//! one path component (`..`, `/`, NUL, 256 bytes) are refused on every call
//! that introduces one, with the field named; failover timeouts no Duration
//! holds are refused; ACCEPT operations of an unknown type are refused
//! before the offer is used; and the agent link caps unauthenticated bodies
//! like every other endpoint.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::agent::TestAgent;
use common::scheduler::{Format, Scheduler, framework};
use tepui_proto::v1::offer::{Operation, operation};
use tepui_proto::v1::scheduler::{Call, call};
use tepui_proto::v1::{
    CommandInfo, ExecutorId, ExecutorInfo, FrameworkId, Offer, TaskGroupInfo, TaskId, TaskInfo,
    TaskState, executor_info, task_status::Reason,
};

fn bad_ids() -> Vec<String> {
    vec![
        "../../../../../tmp/x".into(),
        "a/b".into(),
        "..".into(),
        "a\0b".into(),
        "x".repeat(256),
        "y".repeat(10_000),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_refuses_framework_ids_that_are_not_one_path_component() {
    let master = common::master().await;
    for id in bad_ids() {
        let mut info = framework("bad", &["*"]);
        info.id = Some(FrameworkId { value: id.clone() });
        let (status, body) = Scheduler::try_subscribe(master.addr, Format::Protobuf, info)
            .await
            .err()
            .unwrap_or_else(|| panic!("{id:?} was accepted"));
        assert_eq!(status, 400, "{id:?}: {body}");
        assert!(body.contains("'framework_info.id'"), "{id:?}: {body}");
        assert!(body.len() < 400, "the message quotes a short id: {body}");
    }
    // The master keeps serving, and a chosen valid id is kept.
    let mut info = framework("good", &["*"]);
    info.id = Some(FrameworkId {
        value: "my-framework.1".into(),
    });
    let s = Scheduler::subscribe(master.addr, Format::Json, info).await;
    assert_eq!(s.framework_id, "my-framework.1");
    master.abort();
}

/// Mesos's `validateFailoverTimeout`: a value no Duration holds is refused;
/// a negative one is a valid Duration in Mesos ("fail over at once").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_refuses_failover_timeouts_no_duration_holds() {
    let master = common::master().await;
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e300] {
        let mut info = framework("bad", &["*"]);
        info.failover_timeout = Some(bad);
        let (status, body) = Scheduler::try_subscribe(master.addr, Format::Protobuf, info)
            .await
            .err()
            .unwrap_or_else(|| panic!("{bad} was accepted"));
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(
            body.contains("'framework_info.failover_timeout'"),
            "{bad}: {body}"
        );
    }
    let mut info = framework("negative", &["*"]);
    info.failover_timeout = Some(-1.0);
    Scheduler::subscribe(master.addr, Format::Protobuf, info).await;
    master.abort();
}

fn resources(offer: &Offer, text: &str) -> Vec<tepui_proto::v1::Resource> {
    let mut r = tepui_proto::resources::parse_resources(text, "*").unwrap();
    r.allocate(
        offer
            .allocation_info
            .as_ref()
            .and_then(|a| a.role.as_deref())
            .unwrap(),
    );
    r.into_vec()
}

fn task(offer: &Offer, id: &str) -> TaskInfo {
    TaskInfo {
        name: "t".into(),
        task_id: TaskId { value: id.into() },
        agent_id: offer.agent_id.clone(),
        resources: resources(offer, "cpus:0.1;mem:32"),
        command: Some(CommandInfo {
            value: Some("sleep 1000".into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn executor(offer: &Offer, id: &str, kind: executor_info::Type) -> ExecutorInfo {
    ExecutorInfo {
        r#type: Some(kind as i32),
        executor_id: ExecutorId { value: id.into() },
        resources: resources(offer, "cpus:0.1;mem:32"),
        command: (kind == executor_info::Type::Custom).then(|| CommandInfo {
            value: Some("true".into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn accept(offer: &Offer, operations: Vec<Operation>) -> Call {
    Call {
        r#type: Some(call::Type::Accept as i32),
        accept: Some(call::Accept {
            offer_ids: vec![offer.id.clone()],
            operations,
            filters: Some(tepui_proto::v1::Filters {
                refuse_seconds: Some(0.0),
            }),
        }),
        ..Default::default()
    }
}

fn launch(tasks: Vec<TaskInfo>) -> Operation {
    Operation {
        r#type: Some(operation::Type::Launch as i32),
        launch: Some(operation::Launch { task_infos: tasks }),
        ..Default::default()
    }
}

fn launch_group(executor: ExecutorInfo, tasks: Vec<TaskInfo>) -> Operation {
    let tasks = tasks
        .into_iter()
        .map(|mut t| {
            t.command = Some(CommandInfo {
                value: Some("sleep 1000".into()),
                ..Default::default()
            });
            t
        })
        .collect();
    Operation {
        r#type: Some(operation::Type::LaunchGroup as i32),
        launch_group: Some(operation::LaunchGroup {
            executor,
            task_group: TaskGroupInfo { tasks },
        }),
        ..Default::default()
    }
}

/// The next `n` updates of `s`, each a TASK_ERROR: (task id, message).
async fn errors(s: &mut Scheduler, n: usize) -> Vec<(String, String)> {
    let mut out = Vec::new();
    while out.len() < n {
        let status = s.update(5).await;
        assert_eq!(status.state, TaskState::TaskError as i32, "{status:?}");
        // Mesos's reasons: TASK_INVALID, TASK_GROUP_INVALID for a group.
        assert!(
            [Reason::TaskInvalid as i32, Reason::TaskGroupInvalid as i32]
                .contains(&status.reason.unwrap_or_default()),
            "{status:?}"
        );
        out.push((status.task_id.value, status.message.unwrap_or_default()));
    }
    out
}

/// ACCEPT's LAUNCH and LAUNCH_GROUP: a bad task or executor id ends the
/// task TASK_ERROR (REASON_TASK_INVALID) naming the field; nothing reaches
/// the agent and the master keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_refuses_task_and_executor_ids_that_are_not_one_path_component() {
    let master = common::master().await;
    let agent = TestAgent::start(master.addr, "cpus:64;mem:65536", false).await;
    let mut s = Scheduler::subscribe(master.addr, Format::Protobuf, framework("ids", &["*"])).await;
    let bad = bad_ids();

    // LAUNCH: a bad task id; a good task under a custom executor with a bad id.
    let offer = s.offers(5).await.remove(0);
    let mut ops = Vec::new();
    for (i, id) in bad.iter().enumerate() {
        ops.push(launch(vec![task(&offer, id)]));
        let mut t = task(&offer, &format!("custom-{i}"));
        t.command = None;
        t.executor = Some(executor(&offer, id, executor_info::Type::Custom));
        ops.push(launch(vec![t]));
    }
    s.ok(accept(&offer, ops)).await;
    let got = errors(&mut s, 2 * bad.len()).await;
    for (i, id) in bad.iter().enumerate() {
        let msg = &got.iter().find(|(t, _)| t == id).unwrap().1;
        assert!(msg.contains("'task_id'"), "{id:?}: {msg}");
        let custom = format!("custom-{i}");
        let msg = &got.iter().find(|(t, _)| *t == custom).unwrap().1;
        assert!(msg.contains("'executor.executor_id'"), "{id:?}: {msg}");
    }

    // LAUNCH_GROUP: a bad executor id; a bad task id in a group.
    let offer = s.offers(5).await.remove(0);
    let mut ops = Vec::new();
    for (i, id) in bad.iter().enumerate() {
        ops.push(launch_group(
            executor(&offer, id, executor_info::Type::Default),
            vec![task(&offer, &format!("in-bad-pod-{i}"))],
        ));
        ops.push(launch_group(
            executor(&offer, &format!("pod-{i}"), executor_info::Type::Default),
            vec![task(&offer, id)],
        ));
    }
    s.ok(accept(&offer, ops)).await;
    let got = errors(&mut s, 2 * bad.len()).await;
    for (i, id) in bad.iter().enumerate() {
        let member = format!("in-bad-pod-{i}");
        let msg = &got.iter().find(|(t, _)| *t == member).unwrap().1;
        assert!(msg.contains("'executor.executor_id'"), "{id:?}: {msg}");
        let msg = &got.iter().find(|(t, _)| t == id).unwrap().1;
        assert!(msg.contains("'task_id'"), "{id:?}: {msg}");
    }
    assert!(agent.state.lock().unwrap().tasks.is_empty());

    // The master keeps serving: a good task runs.
    let offer = s.offers(5).await.remove(0);
    s.ok(accept(&offer, vec![launch(vec![task(&offer, "good")])]))
        .await;
    s.await_state("good", TaskState::TaskRunning, 5).await;
    master.abort();
}

/// An operation of a type the master does not apply is a 400 naming the
/// field, and the offer is still there to use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_refuses_unknown_operation_types_before_using_the_offer() {
    let master = common::master().await;
    let _agent = TestAgent::start(master.addr, "cpus:4;mem:4096", false).await;
    let mut s = Scheduler::subscribe(master.addr, Format::Protobuf, framework("ops", &["*"])).await;
    let offer = s.offers(5).await.remove(0);
    for kind in [
        None,
        Some(99),
        Some(operation::Type::Unknown as i32),
        // Resource-provider operations: not applied by this master.
        Some(operation::Type::CreateDisk as i32),
    ] {
        let op = Operation {
            r#type: kind,
            ..Default::default()
        };
        let (status, body) = s.send(accept(&offer, vec![op])).await;
        assert_eq!(status, 400, "{kind:?}: {body}");
        assert!(
            body.contains("'accept.operations[0].type'"),
            "{kind:?}: {body}"
        );
    }
    let op = Operation {
        r#type: Some(operation::Type::Launch as i32),
        id: Some(tepui_proto::v1::OperationId {
            value: "a/b".into(),
        }),
        launch: Some(operation::Launch {
            task_infos: vec![task(&offer, "t")],
        }),
        ..Default::default()
    };
    let (status, body) = s.send(accept(&offer, vec![op])).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("'accept.operations[0].id'"), "{body}");
    // The same offer launches a task.
    s.ok(accept(&offer, vec![launch(vec![task(&offer, "t")])]))
        .await;
    s.await_state("t", TaskState::TaskRunning, 5).await;
    master.abort();
}

/// POSTs `bytes` of JSON whitespace to the agent link; the status line.
async fn post_link(addr: std::net::SocketAddr, bytes: usize, auth: Option<&str>) -> String {
    // Raw TCP: a master that refuses a body early answers, then stops
    // reading; the write may then break (EPIPE) while the answer waits to
    // be read. The body goes from its own thread, write errors ignored.
    let auth = auth.map(str::to_string);
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        let mut head = format!(
            "POST /tepui/link/v1 HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {bytes}\r\nconnection: close\r\n"
        );
        if let Some(a) = &auth {
            head.push_str(&format!("authorization: {a}\r\n"));
        }
        head.push_str("\r\n");
        let mut writer = stream.try_clone().unwrap();
        let sender = std::thread::spawn(move || {
            if writer.write_all(head.as_bytes()).is_err() {
                return;
            }
            let chunk = vec![b' '; 64 << 10];
            let mut left = bytes;
            while left > 0 {
                let n = left.min(chunk.len());
                if writer.write_all(&chunk[..n]).is_err() {
                    return;
                }
                left -= n;
            }
        });
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        let _ = sender.join();
        let text = String::from_utf8_lossy(&answer).into_owned();
        // "HTTP/1.1 413 Payload Too Large\r\n...\r\n\r\nbody" -> "413 body"
        let status = text.split_whitespace().nth(1).unwrap_or("").to_string();
        let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_string();
        format!("{status} {body}")
    })
    .await
    .unwrap()
}

/// Unauthenticated link callers get the 8 MiB cap of every endpoint; an
/// agent that authenticated may send more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_link_caps_bodies_by_trust() {
    let master = common::master().await;
    let answer = post_link(master.addr, 9 << 20, None).await;
    assert!(answer.starts_with("413"), "{answer}");
    let answer = post_link(master.addr, 1 << 20, None).await;
    assert!(answer.starts_with("400"), "a small body is read: {answer}");
    master.abort();

    let mut config = common::config();
    config.auth.authenticate_agents = true;
    config.auth.authenticator.credentials = vec![tepui_proto::auth::Credential {
        principal: "agent".into(),
        secret: "s3cret".into(),
    }];
    let master = common::master_with(config).await;
    let basic = tepui_proto::auth::basic_header("agent", "s3cret");
    let answer = post_link(master.addr, 9 << 20, Some(&basic)).await;
    assert!(
        answer.starts_with("400"),
        "read, then refused as JSON: {answer}"
    );
    let answer = post_link(master.addr, 9 << 20, None).await;
    assert!(answer.starts_with("401"), "{answer}");
    master.abort();
}

/// Mesos's `quota::validate`: NaN, infinite, negative and too large values
/// are refused, as is a quota on the default role `*`; a good one applies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_quota_refuses_values_no_quota_can_have() {
    use prost::Message;
    use tepui_proto::v1::master::{Call as OperatorCall, call as op};
    use tepui_proto::v1::quota::QuotaConfig;
    let master = common::master().await;
    let post = |role: &str, field: &str, name: &str, value: f64| {
        let mut config = QuotaConfig {
            role: role.into(),
            ..Default::default()
        };
        let scalar = tepui_proto::v1::value::Scalar { value };
        match field {
            "guarantees" => config.guarantees.insert(name.into(), scalar),
            _ => config.limits.insert(name.into(), scalar),
        };
        let call = OperatorCall {
            r#type: Some(op::Type::UpdateQuota as i32),
            update_quota: Some(op::UpdateQuota {
                quota_configs: vec![config],
                force: None,
            }),
            ..Default::default()
        };
        let addr = master.addr;
        async move {
            let (status, _, body) = common::http::call(
                addr,
                "POST",
                "/api/v1",
                &[("content-type", "application/x-protobuf")],
                call.encode_to_vec(),
            )
            .await;
            (status, String::from_utf8_lossy(&body).into_owned())
        }
    };
    for (field, name, value) in [
        ("guarantees", "cpus", f64::NAN),
        ("limits", "cpus", f64::NAN),
        ("guarantees", "cpus", -1.0),
        ("limits", "mem", -5.0),
        ("limits", "mem", f64::INFINITY),
        ("guarantees", "mem", 1e300),
        ("limits", "cpus", 1e13),
    ] {
        let (status, body) = post("q", field, name, value).await;
        assert_eq!(status, 400, "{field} {name} {value}: {body}");
        assert!(
            body.contains(&format!("'QuotaConfig.{field}'")) && body.contains(name),
            "{body}"
        );
    }
    let (status, body) = post("*", "guarantees", "cpus", 1.0).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("'*'"), "{body}");
    let (status, body) = post("q", "guarantees", "cpus", 1.0).await;
    assert_eq!(status, 200, "{body}");
    master.abort();
}
