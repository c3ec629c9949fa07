//! Highly available masters on a real ZooKeeper: three masters (each in its
//! own runtime, killed as abruptly as SIGKILL) with `--zk`, exactly one
//! leads, the standbys redirect, and when the leader dies another takes over
//! with the registry: the agent re-registers with its task and the framework
//! re-subscribes with its id and gets offers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::MasterProcess;
use common::agent::TestAgent;
use common::scheduler::{Format, Scheduler, framework};
use tepui_proto::v1::scheduler::{Call, call};
use tepui_proto::v1::{FrameworkId, TaskState};
use tepui_proto::zk::testing::ZkServer;

async fn get(addr: SocketAddr, path: &str) -> (u16, Option<String>) {
    let (status, headers, _) = common::http::call(addr, "GET", path, &[], Vec::new()).await;
    let location = headers
        .get("location")
        .map(|l| l.to_str().unwrap().to_string());
    (status, location)
}

/// The masters answering `/master/state` themselves (leaders).
async fn leaders(addrs: &[SocketAddr]) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for &addr in addrs {
        if get(addr, "/master/state").await.0 == 200 {
            out.push(addr);
        }
    }
    out
}

async fn one_leader(addrs: &[SocketAddr], secs: u64) -> SocketAddr {
    common::eventually(secs, async || {
        let l = leaders(addrs).await;
        (l.len() == 1).then(|| l[0])
    })
    .await
}

fn launch(offer: &tepui_proto::v1::Offer, id: &str) -> Call {
    let mut r = tepui_proto::resources::parse_resources("cpus:0.5;mem:64", "*").unwrap();
    r.allocate(
        offer
            .allocation_info
            .as_ref()
            .unwrap()
            .role
            .as_deref()
            .unwrap(),
    );
    let task = tepui_proto::v1::TaskInfo {
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
    };
    Call {
        r#type: Some(call::Type::Accept as i32),
        accept: Some(call::Accept {
            offer_ids: vec![offer.id.clone()],
            operations: vec![tepui_proto::v1::offer::Operation {
                r#type: Some(tepui_proto::v1::offer::operation::Type::Launch as i32),
                launch: Some(tepui_proto::v1::offer::operation::Launch {
                    task_infos: vec![task],
                }),
                ..Default::default()
            }],
            filters: None,
        }),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_standbys_redirect_and_a_new_leader_takes_over() {
    let zk = ZkServer::start().expect("zookeeper (apt-get install libzookeeper-java)");
    let mut config = common::config();
    config.zk = Some(zk.url("/tepui/masters"));
    config.zk_session_timeout = Duration::from_secs(2);
    config.quorum = Some(2);
    let mut masters: Vec<MasterProcess> = (0..3)
        .map(|_| MasterProcess::start(config.clone()))
        .collect();
    let addrs: Vec<SocketAddr> = masters.iter().map(|m| m.addr).collect();

    // Exactly one leads; the standbys redirect every API to it.
    let leader = one_leader(&addrs, 20).await;
    for &standby in addrs.iter().filter(|&&a| a != leader) {
        // 503 until the standby has seen the leader's znode.
        let (status, location) = common::eventually(10, async || {
            let answer = get(standby, "/master/state?jsonp=x").await;
            (answer.0 != 503).then_some(answer)
        })
        .await;
        assert_eq!(status, 307);
        assert_eq!(
            location.as_deref(),
            Some(&*format!("//{leader}/master/state?jsonp=x"))
        );
        let (status, location) = get(standby, "/redirect").await;
        assert_eq!(status, 307);
        assert_eq!(location.as_deref(), Some(&*format!("//{leader}")));
        let (status, _, _) = common::http::call(
            standby,
            "POST",
            "/api/v1/scheduler",
            &[("content-type", "application/json")],
            b"{}".to_vec(),
        )
        .await;
        assert_eq!(status, 307);
        assert_eq!(get(standby, "/health").await.0, 200);
        let metrics = common::http::get_json(standby, "/metrics/snapshot").await;
        assert_eq!(metrics["master/elected"], 0.0);
    }
    let metrics = common::http::get_json(leader, "/metrics/snapshot").await;
    assert_eq!(metrics["master/elected"], 1.0);
    let (status, location) = get(leader, "/master/redirect").await;
    assert_eq!((status, location), (307, Some(format!("//{leader}"))));

    // An agent with a running task and a framework on the leader.
    let agent = TestAgent::start(leader, "cpus:4;mem:1024", false).await;
    let agent_id = agent.id();
    let mut info = framework("ha", &["*"]);
    info.failover_timeout = Some(60.0);
    let mut s = Scheduler::subscribe(leader, Format::Json, info.clone()).await;
    let offers = s.offers(5).await;
    s.ok(launch(&offers[0], "t")).await;
    s.await_state("t", TaskState::TaskRunning, 5).await;
    let framework_id = s.framework_id.clone();
    // Let the registry reach ZooKeeper (written once per allocation interval).
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The leader dies.
    let index = addrs.iter().position(|&a| a == leader).unwrap();
    masters.remove(index).kill();
    let died = Instant::now();
    drop(s);
    let survivors: Vec<SocketAddr> = addrs.iter().copied().filter(|&a| a != leader).collect();
    let next = one_leader(&survivors, 30).await;
    let elected = died.elapsed();
    assert_ne!(next, leader);

    // The agent follows and re-registers with its id and task; the framework
    // re-subscribes with its id and gets offers from the new leader.
    *agent.master.lock().unwrap() = next;
    agent.connect().await;
    assert_eq!(agent.id(), agent_id);
    info.id = Some(FrameworkId {
        value: framework_id.clone(),
    });
    let mut s = Scheduler::subscribe(next, Format::Json, info).await;
    assert_eq!(s.framework_id, framework_id);
    let offers = s.offers(10).await;
    let first_offer = died.elapsed();
    assert_eq!(offers[0].agent_id.value, agent_id);
    println!(
        "HA failover (zk_session_timeout=2secs): new leader after {:.2}s, first offer from it after {:.2}s",
        elected.as_secs_f64(),
        first_offer.as_secs_f64()
    );
    assert!(
        first_offer < Duration::from_secs(10),
        "failover took {first_offer:?}"
    );
    s.ok(Call {
        r#type: Some(call::Type::Reconcile as i32),
        reconcile: Some(call::Reconcile { tasks: vec![] }),
        ..Default::default()
    })
    .await;
    let u = s.update(5).await;
    assert_eq!(u.task_id.value, "t");
    assert_eq!(u.state, TaskState::TaskRunning as i32);
    // The agent admitted by the first leader was in the ZooKeeper registry.
    let state = common::http::get_json(next, "/master/state").await;
    assert_eq!(state["slaves"][0]["id"], agent_id.as_str());
    for m in masters {
        m.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_registry_was_claimed_by_another_steps_down_without_writing() {
    let zk = ZkServer::start().expect("zookeeper (apt-get install libzookeeper-java)");
    let mut config = common::config();
    config.zk = Some(zk.url("/tepui"));
    config.zk_session_timeout = Duration::from_secs(2);
    let master = common::master_with(config).await;
    common::eventually(10, async || master.leading().then_some(())).await;
    let agent = TestAgent::start(master.addr, "cpus:1;mem:128", false).await;
    let agent_id = agent.id();
    // The admitted agent reaches the registry znode.
    let url = tepui_proto::zk::ZkUrl::parse(&zk.url("/tepui")).unwrap();
    let client = url.connect(Duration::from_secs(2)).await.unwrap();
    common::eventually(10, async || {
        let data = tepui_proto::zk::VersionedNode::peek(&client, "/tepui/registry")
            .await
            .ok()??;
        String::from_utf8_lossy(&data)
            .contains(&agent_id)
            .then_some(())
    })
    .await;

    // A successor claims the registry (as a newly elected leader does).
    let (mut successor, _) =
        tepui_proto::zk::VersionedNode::open(client.clone(), "/tepui/registry")
            .await
            .unwrap();
    successor.write(b"{}").await.unwrap();

    // The old leader's next registry write is refused: it steps down and
    // stops serving, and the successor's registry stays as written.
    let (status, _, _) = common::http::call(
        master.addr,
        "POST",
        "/api/v1",
        &[("content-type", "application/json")],
        br#"{"type": "UPDATE_WEIGHTS", "update_weights": {"weight_infos": [{"role": "r", "weight": 2.0}]}}"#.to_vec(),
    )
    .await;
    assert_eq!(status, 200);
    let reason = tokio::time::timeout(Duration::from_secs(10), master.deposed())
        .await
        .expect("deposed");
    assert!(reason.contains("registry write refused"), "{reason}");
    assert!(!master.leading());
    assert_eq!(get(master.addr, "/master/state").await.0, 503);
    let data = tepui_proto::zk::VersionedNode::peek(&client, "/tepui/registry")
        .await
        .unwrap();
    assert_eq!(data.as_deref(), Some(&b"{}"[..]));
    master.abort();
}
