//! Persistent volumes end to end: an operator reserves disk for a role and
//! creates a volume on the agent (v1 operator API); a framework of that
//! role is offered it, one task writes into it and a later one reads it
//! back; the volume cannot be destroyed while a task uses it, and once
//! destroyed its directory is gone. Bad input is refused 400/409.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::json_scheduler::{JsonScheduler, scalar};
use common::mesos_cluster::{Cluster, get_json};
use serde_json::{Value, json};

async fn operator(master: &str, body: Value) -> (u16, String) {
    let resp = reqwest::Client::new()
        .post(format!("http://{master}/api/v1"))
        .header("Content-Type", "application/json")
        .header("Accept", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let code = resp.status().as_u16();
    (code, resp.text().await.unwrap())
}

fn disk(mb: f64) -> Value {
    json!({"name": "disk", "type": "SCALAR", "scalar": {"value": mb},
        "reservations": [{"type": "DYNAMIC", "role": "web"}]})
}

fn volume(id: &str, mb: f64) -> Value {
    let mut v = disk(mb);
    v["disk"] = json!({"persistence": {"id": id},
        "volume": {"container_path": "data", "mode": "RW"}});
    v
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An offer holding the volume `id`, and that volume as offered.
async fn offer_with_volume(s: &mut JsonScheduler, id: &str) -> (Value, Value) {
    loop {
        let offers = s.next("OFFERS").await["offers"]["offers"].clone();
        for offer in offers.as_array().into_iter().flatten() {
            for r in offer["resources"].as_array().into_iter().flatten() {
                if r["disk"]["persistence"]["id"] == id {
                    return (offer.clone(), r.clone());
                }
            }
        }
        for offer in offers.as_array().into_iter().flatten() {
            let decline = json!({"type": "DECLINE", "decline": {"offer_ids": [offer["id"]],
                "filters": {"refuse_seconds": 0.1}}});
            s.call(decline).await;
        }
    }
}

async fn launch(s: &mut JsonScheduler, id: &str, command: &str) {
    let (offer, vol) = offer_with_volume(s, "v1").await;
    let alloc = json!({"role": "web"});
    let mut cpus = scalar("cpus", 0.2);
    cpus["allocation_info"] = alloc.clone();
    let mut mem = scalar("mem", 64.0);
    mem["allocation_info"] = alloc;
    let task = json!({"name": id, "task_id": {"value": id}, "agent_id": offer["agent_id"],
        "resources": [cpus, mem, vol], "command": {"value": command}});
    let accept = json!({"type": "ACCEPT", "accept": {"offer_ids": [offer["id"]],
        "operations": [{"type": "LAUNCH", "launch": {"task_infos": [task]}}]}});
    assert_eq!(s.call(accept).await, 202);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volume_outlives_its_tasks_until_destroyed() {
    if !common::require_root("a_volume_outlives_its_tasks_until_destroyed") {
        return;
    }
    let cluster = Cluster::start();
    let master = cluster.master_addr.clone();
    let mut agent_id = String::new();
    wait_for("the agent registers", || {
        // The master may not listen yet.
        let Ok(slaves) = std::panic::catch_unwind(|| get_json(&master, "/master/slaves")) else {
            return false;
        };
        agent_id = slaves["slaves"][0]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        !agent_id.is_empty()
    })
    .await;
    let agent = json!({"value": agent_id});

    let (code, body) = operator(
        &master,
        json!({"type": "RESERVE_RESOURCES", "reserve_resources": {
            "agent_id": agent, "resources": [disk(64.0)]}}),
    )
    .await;
    assert_eq!(code, 200, "{body}");

    // Bad input: named, and nothing converted.
    let create = |agent: Value, volumes: Vec<Value>| json!({"type": "CREATE_VOLUMES", "create_volumes": {"agent_id": agent, "volumes": volumes}});
    for (call, want, says) in [
        (json!({"type": "CREATE_VOLUMES"}), 400, "create_volumes"),
        (
            create(json!({"value": "no-such-agent"}), vec![volume("v1", 64.0)]),
            400,
            "unknown agent",
        ),
        (create(agent.clone(), vec![disk(64.0)]), 400, "persistent"),
        (
            create(agent.clone(), vec![volume("..", 64.0)]),
            400,
            "persistence.id",
        ),
        (
            create(agent.clone(), vec![volume("v1", 4096.0)]),
            409,
            "does not have",
        ),
        (
            json!({"type": "DESTROY_VOLUMES", "destroy_volumes": {
                "agent_id": agent, "volumes": [volume("never", 64.0)]}}),
            409,
            "does not have",
        ),
        (
            json!({"type": "SHRINK_VOLUME", "shrink_volume": {
                "agent_id": agent, "volume": volume("v1", 64.0), "subtract": {"value": 1.0}}}),
            409,
            "does not have",
        ),
    ] {
        let (code, body) = operator(&master, call.clone()).await;
        assert_eq!(code, want, "{call}: {body}");
        assert!(body.contains(says), "{call}: {body}");
    }

    let (code, body) = operator(&master, create(agent.clone(), vec![volume("v1", 64.0)])).await;
    assert_eq!(code, 200, "{body}");
    let dir: PathBuf = cluster.dir.join("agent/work/volumes/roles/web/v1");
    wait_for("the agent creates the volume", || dir.is_dir()).await;

    // SHRINK then GROW back: the volume keeps its id and data.
    let (code, body) = operator(
        &master,
        json!({"type": "SHRINK_VOLUME", "shrink_volume": {
            "agent_id": agent, "volume": volume("v1", 64.0), "subtract": {"value": 64.0}}}),
    )
    .await;
    assert_eq!(code, 400, "shrinking it all away: {body}");
    let (code, body) = operator(
        &master,
        json!({"type": "SHRINK_VOLUME", "shrink_volume": {
            "agent_id": agent, "volume": volume("v1", 64.0), "subtract": {"value": 16.0}}}),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = operator(
        &master,
        json!({"type": "GROW_VOLUME", "grow_volume": {
            "agent_id": agent, "volume": volume("v1", 48.0), "addition": disk(16.0)}}),
    )
    .await;
    assert_eq!(code, 200, "{body}");

    let mut s =
        JsonScheduler::subscribe_with_roles(&format!("http://{master}"), "vol", &["web"]).await;
    launch(&mut s, "writer", "echo data > \"$MESOS_SANDBOX/data/file\"").await;
    s.await_all(&["writer"], "TASK_FINISHED").await;
    assert_eq!(std::fs::read_to_string(dir.join("file")).unwrap(), "data\n");

    // A later task (another container, another sandbox) reads it back,
    // then holds the volume.
    launch(
        &mut s,
        "reader",
        "grep -qx data \"$MESOS_SANDBOX/data/file\" && touch \"$MESOS_SANDBOX/data/read\" && exec sleep 600",
    )
    .await;
    s.await_all(&["reader"], "TASK_RUNNING").await;
    wait_for("the reader reads the volume", || dir.join("read").exists()).await;

    let destroy = json!({"type": "DESTROY_VOLUMES", "destroy_volumes": {
        "agent_id": agent, "volumes": [volume("v1", 64.0)]}});
    let (code, body) = operator(&master, destroy.clone()).await;
    assert_eq!(code, 409, "a volume in use: {body}");
    assert!(dir.join("file").exists());

    let kill = json!({"type": "KILL", "kill": {"task_id": {"value": "reader"}, "agent_id": agent}});
    assert_eq!(s.call(kill).await, 202);
    s.await_all(&["reader"], "TASK_KILLED").await;
    let agent_addr = cluster.agent_addr.clone();
    wait_for("the reader's executor ends", || {
        get_json(&agent_addr, "/state")["frameworks"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|f| f["executors"].as_array().is_none_or(|e| e.is_empty()))
    })
    .await;

    let (code, body) = operator(&master, destroy).await;
    assert_eq!(code, 200, "{body}");
    wait_for("the agent removes the volume", || !dir.exists()).await;
    assert!(cluster.dir.join("agent/work/volumes/roles/web").is_dir());
}
