//! The v1 operator calls tools use beyond GET_STATE, on a real master and
//! agent: the agent's history in GET_STATE / GET_EXECUTORS /
//! GET_FRAMEWORKS / GET_TASKS (src/slave/http.cpp, `Http::_getState` and
//! friends), the master's GET_TASKS with the tasks of completed frameworks
//! (src/master/http.cpp, `Master::Http::_getTasks`), and the calls Mesos
//! 1.11 answers that tepui answered 501 before (GET_OPERATIONS,
//! GET_MAINTENANCE_*, GET/SET_LOGGING_LEVEL, LIST_FILES/READ_FILE on the
//! master; GET_OPERATIONS and GET_RESOURCE_PROVIDERS on the agent).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use common::json_scheduler::{JsonScheduler, command_task};
use common::mesos_cluster::{Cluster, WAIT, dechunk, get_json, wait_until};
use serde_json::{Value, json};

/// POST a JSON v1 call: (status, body as JSON or text).
fn call(addr: &str, path: &str, body: &Value) -> (u16, Value) {
    let body = body.to_string();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nAccept: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let text = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

#[test]
fn history_and_the_calls_mesos_answers() {
    let test = "history_and_the_calls_mesos_answers";
    if !common::require_root(test) {
        return;
    }
    let cluster = Cluster::start();
    let (master, agent) = (cluster.master_addr.clone(), cluster.agent_addr.clone());
    wait_until("the agent to register", || {
        std::net::TcpStream::connect(&master).is_ok()
            && get_json(&master, "/master/slaves")["slaves"]
                .as_array()
                .is_some_and(|a| a.len() == 1)
    });
    let status = Command::new(common::tepui_bin())
        .args(["run", &format!("--master={master}"), "--", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    wait_until("the framework to complete", || {
        get_json(&master, "/master/frameworks")["completed_frameworks"]
            .as_array()
            .is_some_and(|a| a.len() == 1)
    });
    let framework = get_json(&master, "/master/frameworks")["completed_frameworks"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    // The agent's history: the finished executor, its task, its framework.
    wait_until("the executor to end", || {
        call(&agent, "/api/v1", &json!({"type": "GET_EXECUTORS"})).1["get_executors"]
            ["completed_executors"]
            .as_array()
            .is_some_and(|a| a.len() == 1)
    });
    let (status, state) = call(&agent, "/api/v1", &json!({"type": "GET_STATE"}));
    assert_eq!(status, 200, "{state}");
    let state = &state["get_state"];
    let completed = &state["get_executors"]["completed_executors"];
    assert_eq!(completed.as_array().map(Vec::len), Some(1), "{state}");
    assert_eq!(
        completed[0]["executor_info"]["framework_id"]["value"],
        json!(framework)
    );
    let tasks = &state["get_tasks"]["completed_tasks"];
    assert_eq!(tasks[0]["state"], "TASK_FINISHED", "{state}");
    assert_eq!(
        state["get_frameworks"]["completed_frameworks"][0]["framework_info"]["id"]["value"],
        json!(framework),
        "{state}"
    );
    assert!(
        state["get_frameworks"]
            .get("frameworks")
            .is_none_or(|f| f.as_array().unwrap().is_empty()),
        "{state}"
    );
    for (kind, key, list) in [
        ("GET_TASKS", "get_tasks", "completed_tasks"),
        ("GET_EXECUTORS", "get_executors", "completed_executors"),
        ("GET_FRAMEWORKS", "get_frameworks", "completed_frameworks"),
    ] {
        let (status, answer) = call(&agent, "/api/v1", &json!({ "type": kind }));
        assert_eq!(status, 200, "{kind}: {answer}");
        assert_eq!(
            answer[key][list].as_array().map(Vec::len),
            Some(1),
            "{kind}: {answer}"
        );
    }
    // The master's GET_TASKS includes the completed framework's task.
    let (status, answer) = call(&master, "/api/v1", &json!({"type": "GET_TASKS"}));
    assert_eq!(status, 200, "{answer}");
    let completed = answer["get_tasks"]["completed_tasks"].as_array().unwrap();
    assert!(
        completed.iter().any(
            |t| t["framework_id"]["value"] == json!(framework) && t["state"] == "TASK_FINISHED"
        ),
        "{answer}"
    );

    // `/flags` lists every flag with its effective value, defaults too
    // (src/master/http.cpp, `Master::Http::_flags`; src/slave/http.cpp,
    // `Http::_flags`), as does `/state`.
    let flags = get_json(&master, "/master/flags")["flags"].clone();
    assert_eq!(flags["allocation_interval"], "100ms", "{flags}");
    assert_eq!(flags["agent_ping_timeout"], "15secs", "{flags}");
    assert_eq!(flags["max_agent_ping_timeouts"], "5", "{flags}");
    assert_eq!(get_json(&master, "/master/state")["flags"], flags);
    let flags = get_json(&agent, "/slave(1)/flags")["flags"].clone();
    assert_eq!(flags["executor_registration_timeout"], "1mins", "{flags}");
    assert_eq!(flags["executor_shutdown_grace_period"], "5secs", "{flags}");
    assert!(flags["work_dir"].is_string(), "{flags}");
    assert_eq!(get_json(&agent, "/slave(1)/state")["flags"], flags);

    // Calls Mesos 1.11 implements, no longer 501.
    let (status, a) = call(&master, "/api/v1", &json!({"type": "GET_OPERATIONS"}));
    assert_eq!(
        (status, a["type"].clone()),
        (200, json!("GET_OPERATIONS")),
        "{a}"
    );
    let (status, a) = call(
        &master,
        "/api/v1",
        &json!({"type": "GET_MAINTENANCE_SCHEDULE"}),
    );
    assert_eq!(status, 200, "{a}");
    assert!(a["get_maintenance_schedule"]["schedule"].is_object(), "{a}");
    let (status, a) = call(
        &master,
        "/api/v1",
        &json!({"type": "GET_MAINTENANCE_STATUS"}),
    );
    assert_eq!(status, 200, "{a}");
    assert!(a["get_maintenance_status"]["status"].is_object(), "{a}");
    let (status, a) = call(
        &master,
        "/api/v1",
        &json!({"type": "SET_LOGGING_LEVEL",
                "set_logging_level": {"level": 2, "duration": {"nanoseconds": 1000000000}}}),
    );
    assert!(status == 200 || status == 202, "{status} {a}");
    let (status, a) = call(&master, "/api/v1", &json!({"type": "GET_LOGGING_LEVEL"}));
    assert_eq!(status, 200, "{a}");
    assert_eq!(a["get_logging_level"]["level"], 2, "{a}");
    // The master attaches no file without --log_dir: 404 as Mesos's files.
    let (status, a) = call(
        &master,
        "/api/v1",
        &json!({"type": "LIST_FILES", "list_files": {"path": "/master/log"}}),
    );
    assert_eq!(status, 404, "{a}");
    for (kind, key) in [
        ("GET_OPERATIONS", "get_operations"),
        ("GET_RESOURCE_PROVIDERS", "get_resource_providers"),
    ] {
        let (status, a) = call(&agent, "/api/v1", &json!({ "type": kind }));
        assert_eq!(status, 200, "{kind}: {a}");
        assert_eq!(a["type"], kind, "{a}");
        assert!(a[key].is_object(), "{kind}: {a}");
    }
    // Resource provider configs: answered as a Mesos agent without
    // --resource_provider_config_dir answers (tepui runs no local resource
    // providers), after the presence check; no call is left at 501.
    let info = json!({"type": "org.apache.mesos.rp.local.storage", "name": "lvm"});
    for (kind, key, body) in [
        (
            "ADD_RESOURCE_PROVIDER_CONFIG",
            "add_resource_provider_config",
            json!({"info": info}),
        ),
        (
            "UPDATE_RESOURCE_PROVIDER_CONFIG",
            "update_resource_provider_config",
            json!({"info": info}),
        ),
        (
            "REMOVE_RESOURCE_PROVIDER_CONFIG",
            "remove_resource_provider_config",
            json!({"type": "org.apache.mesos.rp.local.storage", "name": "lvm"}),
        ),
    ] {
        let (status, _) = call(&agent, "/api/v1", &json!({ "type": kind }));
        assert_eq!(status, 400, "{kind} without '{key}'");
        let (status, _) = call(&agent, "/api/v1", &json!({ "type": kind, key: body }));
        assert_eq!(status, 500, "{kind}");
    }
    let (status, a) = call(
        &agent,
        "/api/v1",
        &json!({"type": "MARK_RESOURCE_PROVIDER_GONE",
                "mark_resource_provider_gone": {"resource_provider_id": {"value": "rp-1"}}}),
    );
    assert_eq!(status, 200, "{a}");

    // A framework torn down while connected is unregistered when the
    // master removes it (src/master/master.cpp, `Master::removeFramework`
    // sets `unregisteredTime`), in v0 and in v1 (src/master/http.cpp,
    // `model(const Framework&)`); 0 / absent before.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let scheduler = runtime.block_on(JsonScheduler::subscribe(
        &format!("http://{master}"),
        "torn",
    ));
    let id = scheduler.framework_id.clone();
    let live = get_json(&master, "/master/frameworks")["frameworks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == json!(id))
        .cloned()
        .unwrap();
    assert_eq!(live["unregistered_time"], json!(0.0), "{live}");
    let secs = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    };
    let before = secs();
    let (status, _, body) = common::mesos_cluster::http(
        &master,
        "POST",
        "/master/teardown",
        &format!("frameworkId={id}"),
    );
    assert_eq!(status, 200, "{body}");
    let after = secs();
    let completed = get_json(&master, "/master/frameworks")["completed_frameworks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == json!(id))
        .cloned()
        .unwrap();
    let unregistered = completed["unregistered_time"].as_f64().unwrap();
    assert!(
        before <= unregistered && unregistered <= after,
        "{before} <= {unregistered} <= {after}: {completed}"
    );
    let (_, a) = call(&master, "/api/v1", &json!({"type": "GET_FRAMEWORKS"}));
    let v1 = a["get_frameworks"]["completed_frameworks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["framework_info"]["id"]["value"] == json!(id))
        .cloned()
        .unwrap();
    let nanos = v1["unregistered_time"]["nanoseconds"].as_i64().unwrap();
    assert!(
        (nanos as f64 / 1e9 - unregistered).abs() < 1e-3,
        "{v1} vs {unregistered}"
    );
    drop(scheduler);
}

/// The machine tests/common/mesos_cluster.rs's agent runs on: its
/// `--hostname` and the `--ip` it serves on.
fn agent_machine() -> Value {
    json!({"hostname": "127.0.0.1", "ip": "127.0.0.1"})
}

fn maintenance_call(master: &str, body: Value) -> (u16, Value) {
    call(master, "/api/v1", &body)
}

fn schedule_call(windows: Value) -> Value {
    json!({"type": "UPDATE_MAINTENANCE_SCHEDULE",
           "update_maintenance_schedule": {"schedule": {"windows": windows}}})
}

/// What the master's registry file holds of maintenance.
fn stored_maintenance(cluster: &Cluster) -> Value {
    let text =
        std::fs::read_to_string(cluster.dir.join("master/registry.json")).unwrap_or_default();
    serde_json::from_str::<Value>(&text).unwrap_or(Value::Null)["maintenance"].clone()
}

fn agents(master: &str) -> usize {
    get_json(master, "/master/slaves")["slaves"]
        .as_array()
        .map_or(0, Vec::len)
}

/// Maintenance on a real master and agent, as Mesos's docs/maintenance.md
/// walks it: schedule (src/master/http.cpp,
/// `Master::Http::_updateMaintenanceSchedule`), offers of the DRAINING
/// machine carry its unavailability (src/master/master.cpp,
/// `Master::offer`), START_MAINTENANCE takes it DOWN (`_startMaintenance`:
/// the agent is removed, its tasks TASK_LOST with REASON_SLAVE_REMOVED, and
/// it may not register again), the schedule survives a master restart (the
/// registry), STOP_MAINTENANCE brings it UP (`_stopMaintenance`); each bad
/// request is a 400 naming the problem (src/master/maintenance.cpp,
/// `validation::*`) and changes nothing; the v0 endpoints do the same.
#[test]
fn maintenance_schedule_down_and_up() {
    let test = "maintenance_schedule_down_and_up";
    if !common::require_root(test) {
        return;
    }
    let mut cluster = Cluster::start();
    let master = cluster.master_addr.clone();
    wait_until("the agent to register", || {
        std::net::TcpStream::connect(&master).is_ok() && agents(&master) == 1
    });
    let machine = agent_machine();
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let unavailability = json!({"start": {"nanoseconds": now_ns + 3_600_000_000_000i64},
                                "duration": {"nanoseconds": 3_600_000_000_000i64}});

    // Bad input: 400 naming the problem, nothing stored.
    wait_until("the registry to be written", || {
        !stored_maintenance(&cluster).is_null()
    });
    let before = stored_maintenance(&cluster);
    assert_eq!(before, json!({"machines": []}));
    let bad = [
        (
            schedule_call(json!([{"machine_ids": [], "unavailability": unavailability}])),
            "List of machines in the maintenance window is empty",
        ),
        (
            schedule_call(json!([{"machine_ids": [machine],
                "unavailability": {"start": {"nanoseconds": 1}, "duration": {"nanoseconds": -1}}}])),
            "Unavailability 'duration' is negative",
        ),
        (
            schedule_call(json!([{"machine_ids": [{}], "unavailability": unavailability}])),
            "Both 'hostname' and 'ip' for a machine are empty",
        ),
        (
            schedule_call(
                json!([{"machine_ids": [{"hostname": "x", "ip": "300.1.1.1"}],
                "unavailability": unavailability}]),
            ),
            "Failed to parse IPv4: 300.1.1.1",
        ),
        (
            schedule_call(json!([
                {"machine_ids": [machine], "unavailability": unavailability},
                {"machine_ids": [{"hostname": "127.0.0.1", "ip": "127.0.0.1"}],
                 "unavailability": unavailability}])),
            "appears more than once in the schedule",
        ),
        (
            schedule_call(json!([{"machine_ids": [machine]}])),
            "unavailability",
        ),
        (
            json!({"type": "START_MAINTENANCE", "start_maintenance": {"machines": []}}),
            "List of machines is empty",
        ),
        (
            json!({"type": "START_MAINTENANCE", "start_maintenance": {"machines": [machine]}}),
            "is not part of a maintenance schedule",
        ),
        (
            json!({"type": "STOP_MAINTENANCE", "stop_maintenance": {"machines": [machine]}}),
            "is not part of a maintenance schedule",
        ),
    ];
    for (body, reason) in &bad {
        let (status, answer) = maintenance_call(&master, body.clone());
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(answer.to_string().contains(reason), "{body}: {answer}");
    }
    assert_eq!(stored_maintenance(&cluster), before);
    let (_, a) = maintenance_call(&master, json!({"type": "GET_MAINTENANCE_SCHEDULE"}));
    assert!(
        a["get_maintenance_schedule"]["schedule"]
            .get("windows")
            .is_none(),
        "{a}"
    );

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let base = format!("http://{master}");
    let mut scheduler = runtime.block_on(JsonScheduler::subscribe(&base, "maintenance"));
    let offers = runtime.block_on(scheduler.next("OFFERS"));
    let offer = offers["offers"]["offers"][0].clone();
    assert!(offer.get("unavailability").is_none(), "{offer}");
    let agent_id = offer["agent_id"].clone();
    let launch = json!({"type": "ACCEPT", "accept": {
        "offer_ids": [offer["id"]],
        "operations": [{"type": "LAUNCH", "launch": {"task_infos": [
            command_task("sleeper", &agent_id, "sleep 1000")]}}]}});
    assert_eq!(runtime.block_on(scheduler.call(launch)), 202);
    runtime.block_on(scheduler.await_all(&["sleeper"], "TASK_RUNNING"));

    // The machine is scheduled: DRAINING, its offers say when it goes.
    let (status, a) = maintenance_call(
        &master,
        schedule_call(json!([{"machine_ids": [machine], "unavailability": unavailability}])),
    );
    assert_eq!(status, 200, "{a}");
    let offered_with = loop {
        let offers = runtime.block_on(scheduler.next("OFFERS"));
        let offer = offers["offers"]["offers"][0].clone();
        if offer.get("unavailability").is_some() {
            break offer;
        }
    };
    assert_eq!(
        offered_with["unavailability"], unavailability,
        "{offered_with}"
    );
    let (status, a) = maintenance_call(&master, json!({"type": "GET_MAINTENANCE_STATUS"}));
    assert_eq!(status, 200, "{a}");
    assert_eq!(
        a["get_maintenance_status"]["status"]["draining_machines"][0]["id"], machine,
        "{a}"
    );
    let (_, a) = maintenance_call(&master, json!({"type": "GET_MAINTENANCE_SCHEDULE"}));
    assert_eq!(
        a["get_maintenance_schedule"]["schedule"]["windows"][0],
        json!({"machine_ids": [machine], "unavailability": unavailability}),
        "{a}"
    );
    assert_eq!(
        get_json(&master, "/master/maintenance/schedule")["windows"][0]["machine_ids"][0],
        machine
    );
    assert_eq!(
        get_json(&master, "/master/maintenance/status")["draining_machines"][0]["id"],
        machine
    );
    // Only DOWN machines may be brought up.
    let (status, a) = maintenance_call(
        &master,
        json!({"type": "STOP_MAINTENANCE", "stop_maintenance": {"machines": [machine]}}),
    );
    assert_eq!(status, 400, "{a}");
    assert!(a.to_string().contains("is not in DOWN mode"), "{a}");

    // DOWN: the agent is removed, its task lost, and it stays out.
    let (status, a) = maintenance_call(
        &master,
        json!({"type": "START_MAINTENANCE", "start_maintenance": {"machines": [machine]}}),
    );
    assert_eq!(status, 200, "{a}");
    let lost = runtime.block_on(scheduler.update());
    assert_eq!(lost["state"], "TASK_LOST", "{lost}");
    assert_eq!(lost["reason"], "REASON_AGENT_REMOVED", "{lost}");
    assert_eq!(lost["source"], "SOURCE_MASTER", "{lost}");
    assert_eq!(
        lost["message"], "Agent 127.0.0.1 removed: Operator initiated 'Machine DOWN'",
        "{lost}"
    );
    let failure = runtime.block_on(scheduler.next("FAILURE"));
    assert_eq!(failure["failure"]["agent_id"], agent_id, "{failure}");
    assert_eq!(agents(&master), 0);
    wait_until("the agent to be refused", || {
        cluster.log("agent.log").contains("is `DOWN`")
    });
    // The framework's executor was shut down on the agent.
    wait_until("the task's executor to end", || {
        get_json(&cluster.agent_addr, "/state")["frameworks"]
            .as_array()
            .is_none_or(|f| {
                f.iter()
                    .all(|f| f["executors"].as_array().is_none_or(Vec::is_empty))
            })
    });
    let (_, a) = maintenance_call(&master, json!({"type": "GET_MAINTENANCE_STATUS"}));
    assert_eq!(
        a["get_maintenance_status"]["status"]["down_machines"],
        json!([machine]),
        "{a}"
    );
    for (body, reason) in [
        (
            schedule_call(json!([])),
            "is deactivated and cannot be removed from the schedule",
        ),
        (
            json!({"type": "START_MAINTENANCE", "start_maintenance": {"machines": [machine]}}),
            "is not in DRAINING mode and cannot be brought down",
        ),
    ] {
        let (status, a) = maintenance_call(&master, body.clone());
        assert_eq!(status, 400, "{body}: {a}");
        assert!(a.to_string().contains(reason), "{body}: {a}");
    }
    drop(scheduler);

    // The schedule and the DOWN machine survive a master restart.
    let stored = stored_maintenance(&cluster);
    cluster.master.kill().unwrap();
    cluster.master.wait().unwrap();
    let port = master.rsplit(':').next().unwrap().to_string();
    cluster.master = Command::new(common::tepui_bin())
        .args([
            "master".to_string(),
            "--ip=127.0.0.1".into(),
            format!("--port={port}"),
            format!("--work_dir={}", cluster.dir.join("master").display()),
            "--allocation_interval=100ms".into(),
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(cluster.dir.join("master2.log")).unwrap())
        .spawn()
        .unwrap();
    wait_until("the master to serve again", || {
        std::net::TcpStream::connect(&master).is_ok()
    });
    let (_, a) = maintenance_call(&master, json!({"type": "GET_MAINTENANCE_STATUS"}));
    assert_eq!(
        a["get_maintenance_status"]["status"]["down_machines"],
        json!([machine]),
        "{a}"
    );
    let (_, a) = maintenance_call(&master, json!({"type": "GET_MAINTENANCE_SCHEDULE"}));
    assert_eq!(
        a["get_maintenance_schedule"]["schedule"]["windows"][0]["machine_ids"],
        json!([machine]),
        "{a}"
    );
    assert_eq!(stored_maintenance(&cluster), stored);
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(agents(&master), 0, "a DOWN machine's agent registered");

    // UP: the machine leaves the schedule and its agent comes back.
    let (status, a) = maintenance_call(
        &master,
        json!({"type": "STOP_MAINTENANCE", "stop_maintenance": {"machines": [machine]}}),
    );
    assert_eq!(status, 200, "{a}");
    let (_, a) = maintenance_call(&master, json!({"type": "GET_MAINTENANCE_SCHEDULE"}));
    assert!(
        a["get_maintenance_schedule"]["schedule"]
            .get("windows")
            .is_none(),
        "{a}"
    );
    wait_until("the agent to register again", || agents(&master) == 1);

    // The v0 endpoints: the same cycle, and their bad bodies.
    let v0 = |path: &str, body: &str| common::mesos_cluster::http(&master, "POST", path, body);
    let (status, _, body) = v0("/master/maintenance/schedule", "{nope");
    assert_eq!(status, 400, "{body}");
    let (status, _, body) = v0("/master/machine/down", "{}");
    assert_eq!(status, 400, "{body}");
    let schedule =
        json!({"windows": [{"machine_ids": [machine], "unavailability": unavailability}]});
    let (status, _, body) = v0("/master/maintenance/schedule", &schedule.to_string());
    assert_eq!(status, 200, "{body}");
    assert_eq!(get_json(&master, "/master/maintenance/schedule"), schedule);
    // JSONP, as the web UI's MaintenanceCtrl reads it.
    let (status, kind, body) =
        common::mesos_cluster::http(&master, "GET", "/master/maintenance/schedule?jsonp=cb", "");
    assert_eq!((status, kind.as_str()), (200, "text/javascript"), "{body}");
    let inner = body.strip_prefix("cb(").and_then(|b| b.strip_suffix(')'));
    assert_eq!(
        inner.and_then(|b| serde_json::from_str::<Value>(b).ok()),
        Some(schedule.clone()),
        "{body}"
    );
    let (status, _, body) = v0("/master/machine/up", &json!([machine]).to_string());
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("is not in DOWN mode"), "{body}");
    let (status, _, body) = v0("/master/machine/down", &json!([machine]).to_string());
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        get_json(&master, "/master/maintenance/status")["down_machines"],
        json!([machine])
    );
    wait_until("the agent to be removed", || agents(&master) == 0);
    let (status, _, body) = v0("/master/machine/up", &json!([machine]).to_string());
    assert_eq!(status, 200, "{body}");
    assert_eq!(get_json(&master, "/master/maintenance/schedule"), json!({}));
    wait_until("the agent to register again", || agents(&master) == 1);
}
