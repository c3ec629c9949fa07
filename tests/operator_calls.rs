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
}
