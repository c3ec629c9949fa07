//! Allocation behaviour through the public APIs: weighted DRF, quota
//! guarantees, static and dynamic reservations, offer filters, SUPPRESS and
//! REVIVE.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;

use common::agent::TestAgent;
use common::scheduler::{Format, Scheduler, framework};
use tepui_proto::resources::{ResourceExt, Resources, dynamic_reservation};
use tepui_proto::v1::offer::{Operation, operation};
use tepui_proto::v1::scheduler::{Call, call};
use tepui_proto::v1::{Offer, TaskState};

async fn operator(addr: SocketAddr, body: serde_json::Value) -> (u16, String) {
    let (status, _, body) = common::http::call(
        addr,
        "POST",
        "/api/v1",
        &[
            ("content-type", "application/json"),
            ("accept", "application/json"),
        ],
        body.to_string().into_bytes(),
    )
    .await;
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn offered(offers: &[Offer]) -> Resources {
    let mut r = Resources::new();
    for o in offers {
        r += Resources::from(o.resources.clone());
    }
    r
}

/// Accepts every offer with one long-running task using all of it.
async fn take_all(s: &mut Scheduler, offers: &[Offer], prefix: &str, n: &mut usize) {
    for o in offers {
        *n += 1;
        let c = Call {
            r#type: Some(call::Type::Accept as i32),
            accept: Some(call::Accept {
                offer_ids: vec![o.id.clone()],
                operations: vec![Operation {
                    r#type: Some(operation::Type::Launch as i32),
                    launch: Some(operation::Launch {
                        task_infos: vec![tepui_proto::v1::TaskInfo {
                            name: "t".into(),
                            task_id: tepui_proto::v1::TaskId {
                                value: format!("{prefix}-{n}"),
                            },
                            agent_id: o.agent_id.clone(),
                            resources: o.resources.clone(),
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
        };
        s.ok(c).await;
    }
}

fn cpus(offers: &[Offer]) -> f64 {
    offered(offers).cpus().unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weights_one_and_two_converge_to_a_one_to_two_split() {
    let master = common::master().await;
    let (status, body) = operator(
        master.addr,
        serde_json::json!({"type": "UPDATE_WEIGHTS", "update_weights": {"weight_infos": [
            {"role": "one", "weight": 1.0}, {"role": "two", "weight": 2.0}]}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let mut a = Scheduler::subscribe(master.addr, Format::Json, framework("a", &["one"])).await;
    let mut b = Scheduler::subscribe(master.addr, Format::Protobuf, framework("b", &["two"])).await;
    let mut agents = Vec::new();
    for _ in 0..12 {
        agents.push(TestAgent::start(master.addr, "cpus:1;mem:256", false).await);
    }
    let (mut got_a, mut got_b, mut n) = (0.0, 0.0, 0);
    while got_a + got_b < 12.0 {
        tokio::select! {
            e = a.offers(10) => { got_a += cpus(&e); take_all(&mut a, &e, "a", &mut n).await; }
            e = b.offers(10) => { got_b += cpus(&e); take_all(&mut b, &e, "b", &mut n).await; }
        }
    }
    assert_eq!((got_a, got_b), (4.0, 8.0));
    // GET_ROLES reports both with their weights.
    let roles = common::http::get_json(master.addr, "/roles").await;
    let weights: Vec<(String, f64)> = roles["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                r["weight"].as_f64().unwrap(),
            )
        })
        .collect();
    assert!(weights.contains(&("two".into(), 2.0)), "{weights:?}");
    master.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_guarantee_holds_while_another_role_saturates() {
    let master = common::master().await;
    let (status, body) = operator(
        master.addr,
        serde_json::json!({"type": "UPDATE_QUOTA", "update_quota": {"quota_configs": [
            {"role": "q", "guarantees": {"cpus": 3}}]}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let _a1 = TestAgent::start(master.addr, "cpus:4;mem:1024", false).await;
    let _a2 = TestAgent::start(master.addr, "cpus:4;mem:1024", false).await;
    let mut greedy = Scheduler::subscribe(master.addr, Format::Json, framework("g", &["g"])).await;
    let mut taken = 0.0;
    let mut n = 0;
    loop {
        tokio::select! {
            e = greedy.offers(10) => { taken += cpus(&e); take_all(&mut greedy, &e, "g", &mut n).await; }
            _ = tokio::time::sleep(std::time::Duration::from_millis(700)) => break,
        }
    }
    assert_eq!(taken, 5.0, "the greedy role must leave the guarantee free");
    let mut q = Scheduler::subscribe(master.addr, Format::Json, framework("q", &["q"])).await;
    let offers = q.offers(5).await;
    assert!(cpus(&offers) >= 3.0, "{offers:?}");
    let quota = common::http::call(
        master.addr,
        "POST",
        "/api/v1",
        &[("content-type", "application/json")],
        br#"{"type":"GET_QUOTA"}"#.to_vec(),
    )
    .await;
    assert!(String::from_utf8_lossy(&quota.2).contains("\"role\":\"q\""));
    master.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_reservation_is_offered_only_to_its_role() {
    let master = common::master().await;
    let _agent = TestAgent::start(master.addr, "cpus(baeldung):8;cpus:2;mem:1024", false).await;
    let mut other =
        Scheduler::subscribe(master.addr, Format::Json, framework("o", &["other"])).await;
    let offers = other.offers(5).await;
    let r = offered(&offers);
    assert_eq!(r.cpus(), Some(2.0));
    assert!(r.iter().all(|x| x.is_unreserved()));
    other.simple(call::Type::Suppress).await;
    other.decline(&offers, Some(0.0)).await;
    let mut b =
        Scheduler::subscribe(master.addr, Format::Json, framework("b", &["baeldung"])).await;
    let offers = b.offers(5).await;
    let r = offered(&offers);
    assert_eq!(r.reserved(Some("baeldung")).cpus(), Some(8.0));
    master.abort();
}

fn reserve_call(offer: &Offer, resources: Resources, unreserve: bool) -> Call {
    let op = if unreserve {
        Operation {
            r#type: Some(operation::Type::Unreserve as i32),
            unreserve: Some(operation::Unreserve {
                resources: resources.into_vec(),
            }),
            ..Default::default()
        }
    } else {
        Operation {
            r#type: Some(operation::Type::Reserve as i32),
            reserve: Some(operation::Reserve {
                source: vec![],
                resources: resources.into_vec(),
            }),
            ..Default::default()
        }
    };
    Call {
        r#type: Some(call::Type::Accept as i32),
        accept: Some(call::Accept {
            offer_ids: vec![offer.id.clone()],
            operations: vec![op],
            filters: Some(tepui_proto::v1::Filters {
                refuse_seconds: Some(0.0),
            }),
        }),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserve_then_unreserve() {
    let master = common::master().await;
    let agent = TestAgent::start(master.addr, "cpus:4;mem:1024", false).await;
    let mut info = framework("r", &["ops"]);
    info.principal = Some("ops-principal".into());
    let mut s = Scheduler::subscribe(master.addr, Format::Json, info).await;
    let offers = s.offers(5).await;
    let mut want = tepui_proto::resources::parse_resources("cpus:2", "*").unwrap();
    want.allocate("ops");
    let reserved = want
        .push_reservation(&dynamic_reservation("ops", Some("ops-principal")))
        .unwrap();
    s.ok(reserve_call(&offers[0], reserved.clone(), false))
        .await;
    let offers = s.offers(5).await;
    let r = offered(&offers);
    assert_eq!(r.reserved(Some("ops")).cpus(), Some(2.0), "{r:?}");
    assert_eq!(r.unreserved().cpus(), Some(2.0));
    assert_eq!(agent.state.lock().unwrap().applied_operations, 1);
    s.ok(reserve_call(&offers[0], r.reserved(Some("ops")), true))
        .await;
    let offers = s.offers(5).await;
    let r = offered(&offers);
    assert!(r.reserved(None).is_empty(), "{r:?}");
    assert_eq!(r.cpus(), Some(4.0));

    // The operator API does the same on free resources.
    let (status, body) = operator(
        master.addr,
        serde_json::json!({"type": "RESERVE_RESOURCES", "reserve_resources": {
            "agent_id": {"value": agent.id()},
            "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 1},
                "reservations": [{"type": "DYNAMIC", "role": "ops", "principal": "op"}]}]}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let offers = s.offers(5).await;
    assert_eq!(offered(&offers).reserved(Some("ops")).cpus(), Some(1.0));
    let state = common::http::get_json(master.addr, "/master/state").await;
    assert_eq!(state["slaves"][0]["reserved_resources"]["ops"]["cpus"], 1.0);
    assert_eq!(
        state["slaves"][0]["pid"],
        format!("slave(1)@127.0.0.1:5051")
    );
    master.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuse_seconds_is_honoured() {
    let master = common::master().await;
    let _agent = TestAgent::start(master.addr, "cpus:2;mem:512", false).await;
    let mut s = Scheduler::subscribe(master.addr, Format::Json, framework("f", &["*"])).await;
    let offers = s.offers(5).await;
    let declined = std::time::Instant::now();
    s.decline(&offers, Some(2.0)).await;
    assert!(s.no_offers(1500).await, "offered again inside the filter");
    let _ = s.offers(5).await;
    let waited = declined.elapsed().as_secs_f64();
    assert!((2.0..4.0).contains(&waited), "re-offered after {waited}s");
    master.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suppress_stops_offers_and_revive_resumes_them() {
    let master = common::master().await;
    let _agent = TestAgent::start(master.addr, "cpus:2;mem:512", false).await;
    let mut s =
        Scheduler::subscribe(master.addr, Format::Protobuf, framework("f", &["a", "b"])).await;
    let offers = s.offers(5).await;
    s.simple(call::Type::Suppress).await;
    s.decline(&offers, Some(0.0)).await;
    assert!(s.no_offers(800).await, "offers while suppressed");
    // REVIVE of one role: offers come back, allocated to that role.
    s.ok(Call {
        r#type: Some(call::Type::Revive as i32),
        revive: Some(call::Revive {
            roles: vec!["b".into()],
        }),
        ..Default::default()
    })
    .await;
    let offers = s.offers(5).await;
    assert!(
        offers
            .iter()
            .all(|o| o.allocation_info.as_ref().unwrap().role.as_deref() == Some("b"))
    );
    // A long filter is cleared by REVIVE too.
    s.decline(&offers, Some(1000.0)).await;
    assert!(s.no_offers(300).await);
    s.simple(call::Type::Revive).await;
    let _ = s.offers(5).await;
    let _ = TaskState::TaskRunning;
    master.abort();
}
